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
use crate::manifest::{CanaryTerms, Manifest, ManifestError, RuleSpec};
use crate::store::{Fetched, RuleStore, StoreError, TenantId};
use crate::trust::{SignatureError, TrustedKeys, manifest_digest};
use portcullis_engine::artifact::ArtifactKey;
use portcullis_engine::chain::Origin;
use portcullis_engine::digest::Sha256;
use portcullis_engine::sandbox::{CompiledPolicy, Engine, LoadError};

/// A tenant's compiled rules at one revision.
#[derive(Debug)]
pub struct RuleSet {
    /// The tenant.
    pub tenant: TenantId,
    /// The manifest revision.
    pub revision: u64,
    /// The digest of the manifest ([`manifest_digest`]).
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

/// Why a tenant's rules could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest is malformed or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The manifest's signature was refused.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A manifest that would move the tenant's revision backwards (or sideways).
    #[error(
        "manifest revision {offered} is not newer than the loaded revision {held} (revisions only move forward; roll back by publishing)"
    )]
    NotNewer {
        /// The revision held.
        held: u64,
        /// The revision offered.
        offered: u64,
    },
    /// The next revision names another predecessor than the one held.
    #[error(
        "manifest revision {offered} does not follow the loaded revision {held}: its `previous` names another manifest"
    )]
    Forked {
        /// The revision held.
        held: u64,
        /// The revision offered.
        offered: u64,
    },
    /// The manifest of a loaded tenant disappeared from the store.
    #[error("the manifest disappeared from the store (revision {held} was loaded)")]
    Vanished {
        /// The revision held.
        held: u64,
    },
    /// A rule's module is not in the store.
    #[error("rule `{rule}`: module `{digest}` is not in the store")]
    MissingModule {
        /// The rule.
        rule: String,
        /// Its module.
        digest: Sha256,
    },
    /// A rule's module cannot be loaded.
    #[error("rule `{rule}`: {source}")]
    Module {
        /// The rule.
        rule: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// A rule asks for more memory than this deployment can give one rule.
    #[error("rule `{rule}`: memory_mb {asked} is over this deployment's limit of {limit} MiB")]
    OverMemory {
        /// The rule.
        rule: String,
        /// Its `memory_mb`.
        asked: usize,
        /// The deployment's limit in MiB.
        limit: usize,
    },
    /// Neither the primary store nor the baseline could be used.
    #[error("{primary}; baseline: {baseline}")]
    Baseline {
        /// The primary store's failure.
        primary: Arc<RefreshError>,
        /// The baseline's.
        baseline: Box<RefreshError>,
    },
    /// A manifest in the wrong place: canary terms on the live manifest, or a staged canary
    /// without them.
    #[error("{0}")]
    Misplaced(&'static str),
    /// The invocation's deadline passed before the rules were loaded.
    #[error("the rules could not be loaded before the invocation's deadline")]
    Deadline,
    /// A compile was abandoned (its blocking task ended without an answer).
    #[error("compiling rule `{0}` did not finish")]
    Abandoned(String),
    /// The registry's lock was poisoned.
    #[error("registry lock poisoned")]
    Poisoned,
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

    /// Checks a manifest (signature, tenant, direction) and builds its rule set.
    async fn load(
        &self,
        store: &RuleStore,
        (tenant, slot): &(TenantId, Slot),
        bytes: &[u8],
        held: Option<&RuleSet>,
    ) -> Result<RuleSet, RefreshError> {
        let manifest = Manifest::parse(bytes)?;
        let signed_by = self.check(&manifest, tenant, held)?;
        match (slot, manifest.canary) {
            (Slot::Live, Some(_)) => {
                return Err(RefreshError::Misplaced(
                    "the manifest carries canary terms: a staged canary is not a live manifest",
                ));
            }
            (Slot::Canary, None) => {
                return Err(RefreshError::Misplaced(
                    "the staged canary carries no canary terms: it is not a canary",
                ));
            }
            (Slot::Canary, Some(_)) if tenant.as_str() == crate::store::GLOBAL_TENANT => {
                return Err(RefreshError::Misplaced(
                    "the global rules cannot be canaried: they decide for every tenant",
                ));
            }
            _ => {}
        }
        let specs = manifest.validate()?;
        // A budget the deployment cannot give is refused, not silently cut down.
        let most = self.engine.config().max_memory_bytes;
        if let Some(spec) = specs.iter().find(|s| s.budget.memory_bytes > most) {
            return Err(RefreshError::OverMemory {
                rule: spec.name.to_string(),
                asked: spec.budget.memory_bytes >> 20,
                limit: most >> 20,
            });
        }
        let primary = std::ptr::eq(store, &self.store);
        let policies = futures_util::future::join_all(
            specs.iter().map(|spec| self.policy(store, spec, primary)),
        )
        .await;
        let origin = if tenant.as_str() == crate::store::GLOBAL_TENANT {
            Origin::Global
        } else {
            Origin::Tenant
        };
        let mut rules = Vec::with_capacity(specs.len());
        let mut compile = Duration::ZERO;
        for (spec, policy) in specs.into_iter().zip(policies) {
            let (policy, took) = policy?;
            compile += took;
            rules.push(spec.into_rule(origin, policy));
        }
        // The set holds its policies now; the compiles it used need no keeping.
        if let Ok(mut finished) = self.finished.lock() {
            for loaded in &rules {
                finished.remove(&loaded.rule.policy.digest());
            }
        }
        Ok(RuleSet {
            tenant: tenant.clone(),
            revision: manifest.revision,
            digest: manifest_digest(&manifest),
            signed_by,
            rules,
            baseline: false,
            loaded_at: Instant::now(),
            compile,
            previous: manifest.previous.as_deref().and_then(|p| p.parse().ok()),
            canary: manifest.canary,
        })
    }

    /// The manifest's signature (when keys are configured) and tenant, and that it moves
    /// the tenant forward from `held`. Returns the signing key's id.
    fn check(
        &self,
        manifest: &Manifest,
        tenant: &TenantId,
        held: Option<&RuleSet>,
    ) -> Result<Option<String>, RefreshError> {
        let signed_by = match &self.config.trusted_keys {
            Some(keys) => Some(keys.verify(manifest, tenant.as_str())?.to_owned()),
            None => match &manifest.tenant {
                Some(named) if named != tenant.as_str() => {
                    return Err(SignatureError::WrongTenant {
                        expected: tenant.to_string(),
                        found: named.clone(),
                    }
                    .into());
                }
                _ => None,
            },
        };
        if let Some(held) = held {
            let digest = manifest_digest(manifest);
            let offered = manifest.revision;
            if offered < held.revision || (offered == held.revision && digest != held.digest) {
                return Err(RefreshError::NotNewer {
                    held: held.revision,
                    offered,
                });
            }
            if Some(offered) == held.revision.checked_add(1)
                && let Some(previous) = &manifest.previous
                && previous.strip_prefix("sha256:").unwrap_or(previous) != held.digest.to_string()
            {
                return Err(RefreshError::Forked {
                    held: held.revision,
                    offered,
                });
            }
        }
        Ok(signed_by)
    }

    /// One rule's compiled policy: in memory already, else the store's precompiled
    /// artifact for this engine build if this deployment vouches for it, else the `.wasm`
    /// compiled (and its artifact written back, or overwritten if it was refused). With
    /// the time spent compiling or loading the artifact.
    async fn policy(
        &self,
        store: &RuleStore,
        spec: &RuleSpec,
        primary: bool,
    ) -> Result<(Arc<CompiledPolicy>, Duration), RefreshError> {
        let digest = &spec.module;
        if let Some(policy) = self.engine.loaded(digest) {
            return Ok((policy, Duration::ZERO));
        }
        let finished = self
            .finished
            .lock()
            .ok()
            .and_then(|f| f.get(digest).cloned());
        if let Some(policy) = finished {
            return Ok((policy, Duration::ZERO));
        }
        let mut refused = false;
        if let Some(key) = &self.config.artifact_key {
            match store.compiled(&self.compat, digest).await {
                Ok(Some(artifact)) => {
                    let start = Instant::now();
                    match self.engine.load_precompiled(&artifact, digest, key) {
                        Ok(policy) => return Ok((policy, start.elapsed())),
                        Err(error) => {
                            refused = true;
                            self.artifact_refusals.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(rule = %spec.name, module = %digest, error = %error, "precompiled artifact refused; compiling the module from its verified .wasm");
                        }
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(rule = %spec.name, error = %error, "precompiled artifact unreadable; compiling the module")
                }
            }
        }
        let module = store
            .module(digest)
            .await?
            .ok_or_else(|| RefreshError::MissingModule {
                rule: spec.name.to_string(),
                digest: *digest,
            })?;
        // Compiling takes milliseconds to seconds of CPU: on a blocking thread, so an
        // invocation whose deadline passes is answered (in its fail mode) meanwhile.
        let engine = Arc::clone(&self.engine);
        let expected = *digest;
        let finished = Arc::clone(&self.finished);
        let (policy, took) = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let loaded = engine.load_verified(&module, &expected);
            if let (Ok(policy), Ok(mut finished)) = (&loaded, finished.lock()) {
                finished.insert(expected, Arc::clone(policy));
            }
            loaded.map(|policy| (policy, start.elapsed()))
        })
        .await
        .map_err(|_| RefreshError::Abandoned(spec.name.to_string()))?
        .map_err(|source| RefreshError::Module {
            rule: spec.name.to_string(),
            source,
        })?;
        if primary
            && (refused || self.config.write_back)
            && let Some(key) = &self.config.artifact_key
        {
            self.write_back(store, digest, &policy, key).await;
        }
        Ok((policy, took))
    }

    async fn write_back(
        &self,
        store: &RuleStore,
        digest: &Sha256,
        policy: &CompiledPolicy,
        key: &ArtifactKey,
    ) {
        let result = match self.engine.artifact(policy, key) {
            Ok(artifact) => store
                .put_compiled(&self.compat, digest, artifact)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(module = %digest, error = %error, "writing the precompiled artifact back failed");
        }
    }
}
