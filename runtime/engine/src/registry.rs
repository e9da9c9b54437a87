//! The rule registry: each tenant's compiled rule set, kept in memory across invocations
//! and revalidated against the store when older than the refresh interval.
//!
//! A revalidation is a conditional read (the ETag the registry holds). On change the new
//! manifest is validated, its modules fetched, verified against their sha256 and compiled,
//! and the new set replaces the old one atomically (an `Arc` swap: evaluations already
//! running keep the set they started with). Any failure — store error, invalid manifest,
//! missing module, digest mismatch, compile error — keeps the last known good set serving,
//! is logged, and is counted in [`Registry::refresh_failures`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::chain::Rule;
use crate::manifest::Manifest;
use crate::sandbox::Engine;
use crate::store::{Fetched, Store, TenantId};

/// A tenant's compiled rules at one revision.
#[derive(Debug)]
pub struct RuleSet {
    /// The tenant.
    pub tenant: TenantId,
    /// The manifest revision.
    pub revision: u64,
    /// The rules in order.
    pub rules: Vec<Rule>,
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
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    refresh: Duration,
    tenants: Mutex<HashMap<TenantId, Entry>>,
    failures: AtomicU64,
}

impl Registry {
    /// A registry over `store`, revalidating entries older than `refresh`.
    pub fn new(store: Arc<dyn Store>, engine: Arc<Engine>, refresh: Duration) -> Registry {
        Registry {
            store,
            engine,
            refresh,
            tenants: Mutex::new(HashMap::new()),
            failures: AtomicU64::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
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
                Some(entry) if entry.checked.elapsed() < self.refresh => {
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
            }) => match self.load(tenant, &bytes).await {
                Ok(set) => {
                    tracing::info!(tenant = %tenant, revision = set.revision, rules = set.rules.len(), "rule set loaded");
                    (Some(Arc::new(set)), Some(new_etag))
                }
                Err(error) => return self.keep_last_good(tenant, known, error),
            },
            Err(error) => return self.keep_last_good(tenant, known, error.to_string()),
        };
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
    fn keep_last_good(
        &self,
        tenant: &TenantId,
        known: Option<Option<Arc<RuleSet>>>,
        error: String,
    ) -> Lookup {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(tenant = %tenant, store = %self.store.url(), error = %error, "rule refresh failed; keeping the last known good rules");
        let Some(known) = known else {
            return Lookup::Failed(error);
        };
        if let Ok(mut tenants) = self.tenants.lock()
            && let Some(entry) = tenants.get_mut(tenant)
        {
            entry.checked = Instant::now();
        }
        known.map_or(Lookup::Missing, Lookup::Found)
    }

    async fn load(&self, tenant: &TenantId, bytes: &[u8]) -> Result<RuleSet, String> {
        let manifest = Manifest::parse(bytes).map_err(|e| e.to_string())?;
        let specs = manifest.validate().map_err(|e| e.to_string())?;
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let module = self
                .store
                .module(&spec.module)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "rule `{}`: module `{}` is not in the store",
                        spec.name, spec.module
                    )
                })?;
            let policy = self
                .engine
                .load_verified(&module, &spec.module)
                .map_err(|e| format!("rule `{}`: {e}", spec.name))?;
            rules.push(Rule {
                name: spec.name,
                policy,
                triggers: spec.triggers,
                budget: spec.budget,
                on_error: spec.on_error,
                mode: spec.mode,
                config: spec.config,
            });
        }
        Ok(RuleSet {
            tenant: tenant.clone(),
            revision: manifest.revision,
            rules,
        })
    }
}
