//! Loading one manifest into a rule set: its signature, tenant, place and direction checked,
//! then every module from memory, a sealed artifact, or compiled from its verified `.wasm`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portcullis_engine::artifact::ArtifactKey;
use portcullis_engine::chain::Origin;
use portcullis_engine::digest::Sha256;
use portcullis_engine::sandbox::CompiledPolicy;

use super::{Mark, RefreshError, Registry, RuleSet, Slot};
use crate::manifest::{Manifest, RuleSpec};
use crate::store::{RuleStore, TenantId};
use crate::trust::{SignatureError, manifest_digest};

impl Registry {
    /// Checks a manifest (signature, tenant, direction) and builds its rule set.
    pub(super) async fn load(
        &self,
        store: &RuleStore,
        (tenant, slot): &(TenantId, Slot),
        bytes: &[u8],
        held: Option<Mark>,
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
            (Slot::Canary, Some(_)) if tenant.is_global() => {
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
        // Each distinct module once (rules may share one), in the order rules first name
        // them, so a failure names the first rule that needs the module.
        let mut seen = HashSet::new();
        let distinct: Vec<&RuleSpec> = specs.iter().filter(|s| seen.insert(s.module)).collect();
        let loaded = futures_util::future::join_all(
            distinct
                .iter()
                .map(|spec| self.policy(store, spec, primary)),
        )
        .await;
        let mut policies = HashMap::with_capacity(distinct.len());
        let mut compile = Duration::ZERO;
        for (spec, policy) in distinct.iter().zip(loaded) {
            let (policy, took) = policy?;
            compile += took;
            policies.insert(spec.module, policy);
        }
        let origin = if tenant.is_global() {
            Origin::Global
        } else {
            Origin::Tenant
        };
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let policy =
                policies
                    .get(&spec.module)
                    .cloned()
                    .ok_or_else(|| RefreshError::MissingModule {
                        rule: spec.name.to_string(),
                        digest: spec.module,
                    })?;
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
        held: Option<Mark>,
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
                    // Checking the tag and deserializing is about a millisecond of CPU a
                    // module: on a blocking thread, so a set's modules load side by side
                    // (a cold start's first decision waits for all of them).
                    let engine = Arc::clone(&self.engine);
                    let (key, expected) = (key.clone(), *digest);
                    let loaded = tokio::task::spawn_blocking(move || {
                        let start = Instant::now();
                        let policy = engine.load_precompiled(&artifact, &expected, &key);
                        policy.map(|policy| (policy, start.elapsed()))
                    })
                    .await
                    .map_err(|_| RefreshError::Abandoned(spec.name.to_string()))?;
                    match loaded {
                        Ok(loaded) => return Ok(loaded),
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
