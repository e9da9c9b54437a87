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
//! Modules are fetched in parallel. A precompiled artifact for this engine build
//! (`compiled/<compat>/<sha256>.cwasm`) is used when the store has one and it checks out;
//! otherwise the `.wasm` is compiled and, with [`RegistryConfig::write_back`], its artifact
//! is written back so the next cold start skips compilation.
//!
//! A cold start has no last known good set. With a [`RegistryConfig::baseline`] store
//! (rules bundled with the deployment package), a tenant whose rules cannot be read from
//! the primary store is served from the baseline until the primary answers again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::chain::Rule;
use crate::digest::Sha256;
use crate::manifest::{Manifest, RuleSpec};
use crate::sandbox::{CompiledPolicy, Engine};
use crate::store::{Fetched, RuleStore, TenantId};

/// A tenant's compiled rules at one revision.
#[derive(Debug)]
pub struct RuleSet {
    /// The tenant.
    pub tenant: TenantId,
    /// The manifest revision.
    pub revision: u64,
    /// The rules in order.
    pub rules: Vec<Rule>,
    /// Served from the baseline store because the primary could not be read.
    pub baseline: bool,
}

/// Registry settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// How old a manifest may get before it is revalidated.
    pub refresh: Duration,
    /// Write precompiled artifacts back to the store after compiling a `.wasm`.
    pub write_back: bool,
    /// Rules to serve when the primary store cannot be read and nothing is known yet.
    pub baseline: Option<RuleStore>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            refresh: Duration::from_secs(10),
            write_back: false,
            baseline: None,
        }
    }
}

/// What the registry knows about a tenant.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The tenant's rules (possibly the last known good set, if a refresh failed).
    Found(Arc<RuleSet>),
    /// The tenant has no manifest.
    Missing,
    /// No rules could be loaded and none were known before.
    Failed(String),
}

#[derive(Debug)]
struct Entry {
    set: Option<Arc<RuleSet>>,
    etag: Option<String>,
    checked: Instant,
}

/// Compiled rule sets by tenant.
#[derive(Debug)]
pub struct Registry {
    store: RuleStore,
    engine: Arc<Engine>,
    config: RegistryConfig,
    compat: String,
    tenants: Mutex<HashMap<TenantId, Entry>>,
    failures: AtomicU64,
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
            failures: AtomicU64::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &RuleStore {
        &self.store
    }

    /// Refreshes that failed and kept the last known good set (or left none).
    pub fn refresh_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The tenant's rules, revalidated if older than the refresh interval.
    pub async fn get(&self, tenant: &TenantId) -> Lookup {
        let (known, etag) = {
            let Ok(tenants) = self.tenants.lock() else {
                return Lookup::Failed("registry lock poisoned".into());
            };
            match tenants.get(tenant) {
                Some(entry) if entry.checked.elapsed() < self.config.refresh => {
                    return entry.set.clone().map_or(Lookup::Missing, Lookup::Found);
                }
                Some(entry) => (Some(entry.set.clone()), entry.etag.clone()),
                None => (None, None),
            }
        };
        let fetched = self.store.manifest(tenant, etag.as_deref()).await;
        let (set, etag) = match fetched {
            Ok(Fetched::NotModified) => (known.flatten(), etag),
            Ok(Fetched::NotFound) => (None, None),
            Ok(Fetched::Found {
                bytes,
                etag: new_etag,
            }) => match self.load(&self.store, tenant, &bytes).await {
                Ok(set) => {
                    tracing::info!(tenant = %tenant, revision = set.revision, rules = set.rules.len(), "rule set loaded");
                    (Some(Arc::new(set)), Some(new_etag))
                }
                Err(error) => return self.keep_last_good(tenant, known, error).await,
            },
            Err(error) => return self.keep_last_good(tenant, known, error.to_string()).await,
        };
        self.remember(tenant, set, etag)
    }

    /// Records what is now known of a tenant (checked now) and answers with it.
    fn remember(
        &self,
        tenant: &TenantId,
        set: Option<Arc<RuleSet>>,
        etag: Option<String>,
    ) -> Lookup {
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.insert(
                tenant.clone(),
                Entry {
                    set: set.clone(),
                    etag,
                    checked: Instant::now(),
                },
            );
        }
        set.map_or(Lookup::Missing, Lookup::Found)
    }

    /// A failed refresh: log, count, and keep serving what was known (re-checked after the
    /// refresh interval, not on every invocation).
    async fn keep_last_good(
        &self,
        tenant: &TenantId,
        known: Option<Option<Arc<RuleSet>>>,
        error: String,
    ) -> Lookup {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(tenant = %tenant, store = %self.store.url(), error = %error, "rule refresh failed; keeping the last known good rules");
        let Some(known) = known else {
            return self.serve_baseline(tenant, error).await;
        };
        if let Ok(mut tenants) = self.tenants.lock()
            && let Some(entry) = tenants.get_mut(tenant)
        {
            entry.checked = Instant::now();
        }
        known.map_or(Lookup::Missing, Lookup::Found)
    }

    /// Nothing known and the primary failed: serve the baseline store's rules, if any,
    /// until the primary answers again (retried after the refresh interval).
    async fn serve_baseline(&self, tenant: &TenantId, error: String) -> Lookup {
        let Some(baseline) = &self.config.baseline else {
            return Lookup::Failed(error);
        };
        let set = match baseline.manifest(tenant, None).await {
            Ok(Fetched::Found { bytes, .. }) => match self.load(baseline, tenant, &bytes).await {
                Ok(mut set) => {
                    set.baseline = true;
                    Some(Arc::new(set))
                }
                Err(e) => return Lookup::Failed(format!("{error}; baseline: {e}")),
            },
            Ok(Fetched::NotFound | Fetched::NotModified) => None,
            Err(e) => return Lookup::Failed(format!("{error}; baseline: {e}")),
        };
        tracing::warn!(tenant = %tenant, baseline = %baseline.url(), revision = set.as_ref().map(|s| s.revision), "serving baseline rules until the store answers");
        // No ETag: the next refresh reads the primary store in full.
        self.remember(tenant, set, None)
    }

    async fn load(
        &self,
        store: &RuleStore,
        tenant: &TenantId,
        bytes: &[u8],
    ) -> Result<RuleSet, String> {
        let manifest = Manifest::parse(bytes).map_err(|e| e.to_string())?;
        let specs = manifest.validate().map_err(|e| e.to_string())?;
        let policies =
            futures_util::future::join_all(specs.iter().map(|spec| self.policy(store, spec))).await;
        let mut rules = Vec::with_capacity(specs.len());
        for (spec, policy) in specs.into_iter().zip(policies) {
            rules.push(Rule::new(spec, policy?).map_err(|e| e.to_string())?);
        }
        Ok(RuleSet {
            tenant: tenant.clone(),
            revision: manifest.revision,
            rules,
            baseline: false,
        })
    }

    /// One rule's compiled policy: in memory already, else the store's precompiled
    /// artifact for this engine build, else the `.wasm` compiled (and written back).
    async fn policy(
        &self,
        store: &RuleStore,
        spec: &RuleSpec,
    ) -> Result<Arc<CompiledPolicy>, String> {
        let digest = &spec.module;
        if let Some(policy) = self.engine.loaded(digest) {
            return Ok(policy);
        }
        match store.compiled(&self.compat, digest).await {
            Ok(Some(artifact)) => match self.engine.load_precompiled(&artifact, digest) {
                Ok(policy) => return Ok(policy),
                Err(e) => {
                    tracing::warn!(rule = %spec.name, module = %digest, error = %e, "precompiled artifact refused; compiling the module")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(rule = %spec.name, error = %e, "precompiled artifact unreadable; compiling the module")
            }
        }
        let module = store
            .module(digest)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "rule `{}`: module `{digest}` is not in the store",
                    spec.name
                )
            })?;
        let policy = self
            .engine
            .load_verified(&module, digest)
            .map_err(|e| format!("rule `{}`: {e}", spec.name))?;
        if self.config.write_back {
            self.write_back(store, digest, &policy).await;
        }
        Ok(policy)
    }

    async fn write_back(&self, store: &RuleStore, digest: &Sha256, policy: &CompiledPolicy) {
        let result = match self.engine.artifact(policy) {
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
