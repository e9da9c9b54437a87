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
    /// Whether this set (a staged canary) is the revision right after `live`: a canary
    /// staged on another live revision decides for no one.
    pub fn follows(&self, live: &RuleSet) -> bool {
        !live.baseline
            && live.revision.checked_add(1) == Some(self.revision)
            && self.previous == Some(live.digest)
    }
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
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            refresh: Duration::from_secs(10),
            write_back: false,
            baseline: None,
            trusted_keys: None,
            artifact_key: None,
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

/// Compiled rule sets by tenant.
#[derive(Debug)]
pub struct Registry {
    store: RuleStore,
    engine: Arc<Engine>,
    config: RegistryConfig,
    compat: String,
    tenants: Mutex<HashMap<(TenantId, Slot), Entry>>,
    /// Policies a blocking compile finished after the invocation that started it gave up
    /// (its deadline passed): kept until a rule set takes them, so a slow compile is done
    /// once, not restarted by every invocation.
    finished: Arc<Mutex<HashMap<Sha256, Arc<CompiledPolicy>>>>,
    failures: AtomicU64,
    artifact_refusals: AtomicU64,
}

impl Registry {
    /// A registry over `store`.
    pub fn new(store: RuleStore, engine: Arc<Engine>, config: RegistryConfig) -> Registry {
        Registry {
            store,
            compat: engine.compat(),
            engine,
            config,
            tenants: Mutex::new(HashMap::new()),
            finished: Arc::new(Mutex::new(HashMap::new())),
            failures: AtomicU64::new(0),
            artifact_refusals: AtomicU64::new(0),
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

    /// How long the oldest rules still serving after a failed refresh have gone without
    /// the store confirming them (zero when every refresh succeeds): the age of the last
    /// known good set.
    pub fn last_known_good_age(&self) -> Duration {
        self.tenants.lock().map_or(Duration::ZERO, |tenants| {
            tenants
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
        let (known, etag, good_at) = {
            let Ok(tenants) = self.tenants.lock() else {
                return Lookup::Failed(Arc::new(RefreshError::Poisoned));
            };
            match tenants.get(&key) {
                Some(entry) if entry.checked.elapsed() < self.config.refresh => {
                    return entry.answer();
                }
                Some(entry) => (
                    Some(entry.set.clone()),
                    entry.etag.clone(),
                    Some(entry.good_at),
                ),
                None => (None, None, None),
            }
        };
        // The revision a new manifest must move forward from: a baseline set's revision
        // belongs to another store and says nothing about the primary's. A canary moves
        // with the live revision, not forward from the canary before it.
        let held = known
            .as_ref()
            .and_then(Option::as_ref)
            .filter(|s| !s.baseline && slot == Slot::Live)
            .cloned();
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
                Some(set) => {
                    let error = RefreshError::Vanished { held: set.revision };
                    self.keep_last_good(&key, known, error).await
                }
                None => self.remember(&key, None, None, None),
            },
            Ok(Fetched::Found {
                bytes,
                etag: new_etag,
            }) => match self.load(&self.store, &key, &bytes, held.as_deref()).await {
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
        let entry = Entry {
            set,
            etag,
            checked: Instant::now(),
            good_at,
            error,
        };
        let answer = entry.answer();
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.insert(key.clone(), entry);
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
