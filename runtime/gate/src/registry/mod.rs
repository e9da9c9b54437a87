//! The rule registry: each tenant's compiled rule set, kept in memory across invocations
//! and revalidated against the store when older than the refresh interval.
//!
//! A revalidation is a conditional read (the ETag the registry holds). On change the new
//! manifest is validated, its modules fetched, verified against their sha256 and compiled,
//! and the new set replaces the old one atomically (an `Arc` swap: evaluations already
//! running keep the set they started with). Any failure — store error, invalid manifest,
//! missing module, digest mismatch, compile error — keeps the last known good set serving,
//! is logged, and is counted in [`Registry::refresh_failures`].
//!
//! # What the registry trusts
//! - **Manifests**: with [`RegistryConfig::trusted_keys`], a manifest is used only if it
//!   names this tenant and carries a valid signature by one of those keys
//!   ([`crate::trust`]). A warm registry also refuses a manifest whose revision is not
//!   newer than the one it holds (rollback is a new, higher revision), one whose
//!   `previous` does not name the revision it holds, and reads a manifest that disappears
//!   as a failed refresh, not as "no rules". Each refusal keeps the last known good set,
//!   is logged, counted, and answered as [`Lookup::Stale`] so the decision record says so.
//! - **Native code**: a precompiled artifact (`compiled/<compat>/<sha256>.cwasm`) is loaded
//!   only with this deployment's [`RegistryConfig::artifact_key`] and only if its tag
//!   verifies ([`portcullis_engine::artifact`]). A refused artifact is counted
//!   ([`Registry::artifact_refusals`]), the module is compiled from its verified `.wasm`,
//!   and the artifact is overwritten with a good one. Without a key, artifacts are neither
//!   read nor written.
//!
//! Modules are fetched in parallel. With [`RegistryConfig::write_back`] (and the artifact
//! key), a module compiled here has its artifact written back so the next cold start
//! skips compilation.
//!
//! A cold start has no last known good set. With a [`RegistryConfig::baseline`] store
//! (rules bundled with the deployment package), a tenant whose rules cannot be read from
//! the primary store is served from the baseline until the primary answers again.
//!
//! # Bounded memory
//! Only tenants that sign in are loaded, and at most [`RegistryConfig::max_loaded_rules`]
//! rules stay loaded: past it, the sets of the tenants whose last sign-in is oldest are
//! unloaded (counted in [`Registry::unloaded_sets`]); their next sign-in loads them again,
//! like a cold start. Never unloaded: the global rules, the sets of the tenant signing in,
//! and a set serving after a failed refresh (it is the only copy of those rules). An
//! unloaded live set leaves its revision and digest behind, so a reload still refuses a
//! rollback or a vanished manifest exactly as if the set were held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::data::LoadedRule;

mod error;
mod load;

use crate::manifest::CanaryTerms;
use crate::store::{Fetched, RuleStore, TenantId};
use crate::trust::TrustedKeys;
pub use error::RefreshError;
use portcullis_engine::artifact::ArtifactKey;
use portcullis_engine::digest::Sha256;
use portcullis_engine::sandbox::{CompiledPolicy, Engine};

/// A tenant's compiled rules at one revision.
#[derive(Debug)]
pub struct RuleSet {
    /// The tenant.
    pub tenant: TenantId,
    /// The manifest revision.
    pub revision: u64,
    /// The digest of the manifest ([`crate::trust::manifest_digest`]).
    pub digest: Sha256,
    /// The key that signed the manifest, when signatures are verified.
    pub signed_by: Option<String>,
    /// The rules in order, each with the data it declared.
    pub rules: Vec<LoadedRule>,
    /// Served from the baseline store because the primary could not be read.
    pub baseline: bool,
    /// When the set was loaded.
    pub loaded_at: Instant,
    /// Of the loading: compiling modules or loading precompiled artifacts, summed over
    /// the rules that needed it (zero when every policy was in memory already).
    pub compile: Duration,
    /// The digest of the revision the manifest names as the one it replaces.
    pub previous: Option<Sha256>,
    /// A staged canary's terms (only on a set from [`Registry::canary`]).
    pub canary: Option<CanaryTerms>,
}

impl RuleSet {
    fn mark(&self) -> Mark {
        Mark {
            revision: self.revision,
            digest: self.digest,
        }
    }

    /// Whether this set (a staged canary) is the revision right after `live`: a canary
    /// staged on another live revision decides for no one.
    pub fn follows(&self, live: &RuleSet) -> bool {
        !live.baseline
            && live.revision.checked_add(1) == Some(self.revision)
            && self.previous == Some(live.digest)
    }
}

/// What a new manifest must move forward from: the revision and digest of the live set the
/// registry holds, or held before it unloaded it.
#[derive(Debug, Clone, Copy)]
struct Mark {
    revision: u64,
    digest: Sha256,
}

/// Which of a tenant's manifests: the live one or a staged canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Live,
    Canary,
}

/// Registry settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// How old a manifest may get before it is revalidated.
    pub refresh: Duration,
    /// Write precompiled artifacts back to the store after compiling a `.wasm` (needs
    /// [`RegistryConfig::artifact_key`]).
    pub write_back: bool,
    /// Rules to serve when the primary store cannot be read and nothing is known yet.
    pub baseline: Option<RuleStore>,
    /// The publishers' keys. When set, every manifest (the baseline's too) must be signed
    /// by one of them; when unset, signatures are not checked.
    pub trusted_keys: Option<TrustedKeys>,
    /// This deployment's artifact key. Without it, precompiled artifacts are never loaded
    /// or written: every module is compiled from its verified `.wasm`.
    pub artifact_key: Option<ArtifactKey>,
    /// The most rules kept loaded across tenants (each rule of each held set counts).
    /// Past it the coldest tenants' sets are unloaded (see the module documentation).
    pub max_loaded_rules: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            refresh: Duration::from_secs(10),
            write_back: false,
            baseline: None,
            trusted_keys: None,
            artifact_key: None,
            max_loaded_rules: 1000,
        }
    }
}

/// What the registry knows about a tenant.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The tenant's current rules.
    Found(Arc<RuleSet>),
    /// The tenant has no manifest.
    Missing,
    /// No rules could be loaded and none were known before.
    Failed(Arc<RefreshError>),
    /// The last refresh failed or was refused; the last known good answer still stands
    /// (`known`: its rules, or `None` if the tenant was known to have none).
    Stale {
        /// The last known good rules.
        known: Option<Arc<RuleSet>>,
        /// Why the refresh failed.
        error: Arc<RefreshError>,
    },
}

#[derive(Debug)]
struct Entry {
    set: Option<Arc<RuleSet>>,
    etag: Option<String>,
    checked: Instant,
    /// When the store last confirmed `set` (loaded it, or answered that it had not changed).
    good_at: Instant,
    /// The failure of the last refresh, while it lasts.
    error: Option<Arc<RefreshError>>,
    /// When a sign-in last asked for it.
    used: Instant,
}

impl Entry {
    fn answer(&self) -> Lookup {
        match &self.error {
            Some(error) => Lookup::Stale {
                known: self.set.clone(),
                error: Arc::clone(error),
            },
            None => self.set.clone().map_or(Lookup::Missing, Lookup::Found),
        }
    }
}

/// What a slot held before a refresh: its set (`None`: never loaded), ETag, and when the
/// store last confirmed it.
struct Known {
    set: Option<Option<Arc<RuleSet>>>,
    etag: Option<String>,
    good_at: Option<Instant>,
}

/// What the registry holds, under one lock.
#[derive(Debug, Default)]
struct Tenants {
    entries: HashMap<(TenantId, Slot), Entry>,
    /// The marks of live sets unloaded to stay within the cap.
    unloaded: HashMap<TenantId, Mark>,
}

impl Tenants {
    /// Unloads the coldest sets until at most `cap` rules are held, sparing `keep`'s (the
    /// tenant signing in: its live set and its canary), the global rules and sets serving
    /// after a failed refresh. Returns how many it unloaded.
    fn shrink(&mut self, cap: usize, keep: &TenantId) -> u64 {
        let held = |e: &Entry| e.set.as_ref().map_or(0, |s| s.rules.len());
        let mut total: usize = self.entries.values().map(held).sum();
        if total <= cap {
            return 0;
        }
        let mut coldest: Vec<(Instant, (TenantId, Slot))> = self
            .entries
            .iter()
            .filter(|(key, entry)| {
                key.0 != *keep && !key.0.is_global() && entry.error.is_none() && held(entry) > 0
            })
            .map(|(key, entry)| (entry.used, key.clone()))
            .collect();
        coldest.sort_by_key(|(used, _)| *used);
        let mut unloaded = 0;
        for (_, key) in coldest {
            if total <= cap {
                break;
            }
            let Some(set) = self.entries.remove(&key).and_then(|e| e.set) else {
                continue;
            };
            total = total.saturating_sub(set.rules.len());
            if key.1 == Slot::Live && !set.baseline {
                self.unloaded.insert(key.0.clone(), set.mark());
            }
            unloaded += 1;
            tracing::info!(tenant = %key.0, canary = key.1 == Slot::Canary, revision = set.revision, rules = set.rules.len(), cap, "rule set unloaded (coldest tenant; loaded again on its next sign-in)");
        }
        unloaded
    }
}

/// Compiled rule sets by tenant.
#[derive(Debug)]
pub struct Registry {
    store: RuleStore,
    engine: Arc<Engine>,
    config: RegistryConfig,
    compat: String,
    tenants: Mutex<Tenants>,
    /// Policies a blocking compile finished after the invocation that started it gave up
    /// (its deadline passed): kept until a rule set takes them, so a slow compile is done
    /// once, not restarted by every invocation.
    finished: Arc<Mutex<HashMap<Sha256, Arc<CompiledPolicy>>>>,
    failures: AtomicU64,
    artifact_refusals: AtomicU64,
    unloaded: AtomicU64,
}

impl Registry {
    /// A registry over `store`.
    pub fn new(store: RuleStore, engine: Arc<Engine>, config: RegistryConfig) -> Registry {
        Registry {
            store,
            compat: engine.compat(),
            engine,
            config,
            tenants: Mutex::new(Tenants::default()),
            finished: Arc::new(Mutex::new(HashMap::new())),
            failures: AtomicU64::new(0),
            artifact_refusals: AtomicU64::new(0),
            unloaded: AtomicU64::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &RuleStore {
        &self.store
    }

    /// Refreshes that failed or were refused and kept the last known good set (or left
    /// none).
    pub fn refresh_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Precompiled artifacts refused because this deployment does not vouch for them (or
    /// they could not be used); each was replaced by compiling the module.
    pub fn artifact_refusals(&self) -> u64 {
        self.artifact_refusals.load(Ordering::Relaxed)
    }

    /// Rule sets unloaded to keep within [`RegistryConfig::max_loaded_rules`].
    pub fn unloaded_sets(&self) -> u64 {
        self.unloaded.load(Ordering::Relaxed)
    }

    /// How long the oldest rules still serving after a failed refresh have gone without
    /// the store confirming them (zero when every refresh succeeds): the age of the last
    /// known good set.
    pub fn last_known_good_age(&self) -> Duration {
        self.tenants.lock().map_or(Duration::ZERO, |tenants| {
            tenants
                .entries
                .values()
                .filter(|e| e.error.is_some() && e.set.is_some())
                .map(|e| e.good_at.elapsed())
                .max()
                .unwrap_or(Duration::ZERO)
        })
    }

    /// The tenant's rules, revalidated if older than the refresh interval.
    pub async fn get(&self, tenant: &TenantId) -> Lookup {
        self.slot(tenant, Slot::Live).await
    }

    /// The tenant's staged canary (`tenants/<tenant>/canary.json`), revalidated like its
    /// rules: [`Lookup::Missing`] when none is staged. Whether it decides for anyone is the
    /// caller's to check ([`RuleSet::follows`]).
    pub async fn canary(&self, tenant: &TenantId) -> Lookup {
        self.slot(tenant, Slot::Canary).await
    }

    async fn slot(&self, tenant: &TenantId, slot: Slot) -> Lookup {
        let key = (tenant.clone(), slot);
        let (known, etag, good_at, unloaded) = {
            let Ok(mut tenants) = self.tenants.lock() else {
                return Lookup::Failed(Arc::new(RefreshError::Poisoned));
            };
            let unloaded = tenants.unloaded.get(tenant).copied();
            match tenants.entries.get_mut(&key) {
                Some(entry) if entry.checked.elapsed() < self.config.refresh => {
                    entry.used = Instant::now();
                    return entry.answer();
                }
                Some(entry) => (
                    Some(entry.set.clone()),
                    entry.etag.clone(),
                    Some(entry.good_at),
                    unloaded,
                ),
                None => (None, None, None, unloaded),
            }
        };
        // The revision a new manifest must move forward from: the held set's, or the one
        // unloaded to stay within the cap. A baseline set's revision belongs to another
        // store and says nothing about the primary's. A canary moves with the live
        // revision, not forward from the canary before it.
        let held = match slot {
            Slot::Live => known
                .as_ref()
                .and_then(Option::as_ref)
                .filter(|s| !s.baseline)
                .map(|s| s.mark())
                .or(unloaded),
            Slot::Canary => None,
        };
        let fetched = match slot {
            Slot::Live => self.store.manifest(tenant, etag.as_deref()).await,
            Slot::Canary => self.store.canary(tenant, etag.as_deref()).await,
        };
        let known = Known {
            set: known,
            etag,
            good_at,
        };
        match fetched {
            Ok(Fetched::NotModified) => self.remember(&key, known.set.flatten(), known.etag, None),
            Ok(Fetched::NotFound) => match held {
                Some(mark) => {
                    let error = RefreshError::Vanished {
                        held: mark.revision,
                    };
                    self.keep_last_good(&key, known, error).await
                }
                None => self.remember(&key, None, None, None),
            },
            Ok(Fetched::Found {
                bytes,
                etag: new_etag,
            }) => match self.load(&self.store, &key, &bytes, held).await {
                Ok(set) => {
                    tracing::info!(tenant = %tenant, revision = set.revision, rules = set.rules.len(), signed_by = set.signed_by.as_deref(), canary = set.canary.map(|c| c.percent), "rule set loaded");
                    self.remember(&key, Some(Arc::new(set)), Some(new_etag), None)
                }
                Err(error) => self.keep_last_good(&key, known, error).await,
            },
            Err(error) => self.keep_last_good(&key, known, error.into()).await,
        }
    }

    /// Records what is now known of a tenant's slot (checked now) and answers with it.
    fn remember(
        &self,
        key: &(TenantId, Slot),
        set: Option<Arc<RuleSet>>,
        etag: Option<String>,
        error: Option<Arc<RefreshError>>,
    ) -> Lookup {
        self.remember_since(key, set, etag, error, Instant::now())
    }

    /// [`Registry::remember`], the set last confirmed good at `good_at`.
    fn remember_since(
        &self,
        key: &(TenantId, Slot),
        set: Option<Arc<RuleSet>>,
        etag: Option<String>,
        error: Option<Arc<RefreshError>>,
        good_at: Instant,
    ) -> Lookup {
        let now = Instant::now();
        let fresh_live = key.1 == Slot::Live && set.as_ref().is_some_and(|s| !s.baseline);
        let holds_rules = set.as_ref().is_some_and(|s| !s.rules.is_empty());
        let entry = Entry {
            set,
            etag,
            checked: now,
            good_at,
            error,
            used: now,
        };
        let answer = entry.answer();
        if let Ok(mut tenants) = self.tenants.lock() {
            if fresh_live {
                tenants.unloaded.remove(&key.0);
            }
            tenants.entries.insert(key.clone(), entry);
            // Only a tenant's set makes room, sparing that tenant: the global rules are
            // looked up beside a tenant's, and shrinking for them could unload the set
            // the same sign-in just loaded.
            if holds_rules && !key.0.is_global() {
                let unloaded = tenants.shrink(self.config.max_loaded_rules, &key.0);
                self.unloaded.fetch_add(unloaded, Ordering::Relaxed);
            }
        }
        answer
    }

    /// A failed or refused refresh: log, count, and keep serving what was known (with the
    /// ETag it had, so the next refresh reads the store in full again), re-checked after
    /// the refresh interval, not on every invocation.
    async fn keep_last_good(
        &self,
        key: &(TenantId, Slot),
        known: Known,
        error: RefreshError,
    ) -> Lookup {
        let (tenant, slot) = key;
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(tenant = %tenant, canary = *slot == Slot::Canary, store = %self.store.url(), error = %error, "rule refresh failed; keeping the last known good rules");
        let error = Arc::new(error);
        match (known.set, slot) {
            (Some(set), _) => self.remember_since(
                key,
                set,
                known.etag,
                Some(error),
                known.good_at.unwrap_or_else(Instant::now),
            ),
            (None, Slot::Live) => self.serve_baseline(key, error).await,
            // A canary is never served from the baseline: its users get the live rules.
            (None, Slot::Canary) => Lookup::Failed(error),
        }
    }

    /// Nothing known and the primary failed: serve the baseline store's rules, if any,
    /// until the primary answers again (retried after the refresh interval).
    async fn serve_baseline(&self, key: &(TenantId, Slot), error: Arc<RefreshError>) -> Lookup {
        let tenant = &key.0;
        let Some(baseline) = &self.config.baseline else {
            return Lookup::Failed(error);
        };
        let both = |e: RefreshError| {
            Lookup::Failed(Arc::new(RefreshError::Baseline {
                primary: Arc::clone(&error),
                baseline: Box::new(e),
            }))
        };
        let set = match baseline.manifest(tenant, None).await {
            Ok(Fetched::Found { bytes, .. }) => {
                match self.load(baseline, key, &bytes, None).await {
                    Ok(mut set) => {
                        set.baseline = true;
                        Some(Arc::new(set))
                    }
                    Err(e) => return both(e),
                }
            }
            Ok(Fetched::NotFound | Fetched::NotModified) => None,
            Err(e) => return both(e.into()),
        };
        tracing::warn!(tenant = %tenant, baseline = %baseline.url(), revision = set.as_ref().map(|s| s.revision), "serving baseline rules until the store answers");
        // No ETag: the next refresh reads the primary store in full.
        self.remember(key, set, None, None)
    }
}
