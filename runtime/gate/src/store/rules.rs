//! [`RuleStore`]: the rule layout (manifests, their history, modules and compiled
//! artifacts) over any [`ObjectStore`], with signed, revision-checked publish, rollback and
//! canaries.

use std::path::PathBuf;
use std::sync::Arc;

use portcullis_engine::digest::Sha256;

use super::{DirStore, Fetched, ObjectStore, PutIf, StoreError};
use crate::manifest::{CanaryTerms, Manifest, RuleEntry};
use crate::tenant::TenantId;
use crate::trust::{ManifestSigner, manifest_digest};

/// The current manifest of a tenant, with the ETag a publish must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// The manifest.
    pub manifest: Manifest,
    /// Its ETag.
    pub etag: String,
}

/// The rule store: the layout above over any [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct RuleStore {
    objects: Arc<dyn ObjectStore>,
}

impl RuleStore {
    /// The layout over `objects`.
    pub fn new(objects: Arc<dyn ObjectStore>) -> RuleStore {
        RuleStore { objects }
    }

    /// A local directory store.
    pub fn dir(root: impl Into<PathBuf>) -> RuleStore {
        RuleStore::new(Arc::new(DirStore::new(root)))
    }

    /// The backend's URL.
    pub fn url(&self) -> String {
        self.objects.url()
    }

    fn manifest_key(tenant: &TenantId) -> String {
        format!("tenants/{tenant}/manifest.json")
    }

    fn history_key(tenant: &TenantId, revision: u64) -> String {
        format!("tenants/{tenant}/history/{revision}.json")
    }

    fn canary_key(tenant: &TenantId) -> String {
        format!("tenants/{tenant}/canary.json")
    }

    fn module_key(digest: &Sha256) -> String {
        format!("modules/{digest}.wasm")
    }

    fn compiled_key(compat: &str, digest: &Sha256) -> String {
        format!("compiled/{compat}/{digest}.cwasm")
    }

    /// Reads a tenant's manifest; with `etag`, answers `NotModified` if it still matches.
    pub async fn manifest(
        &self,
        tenant: &TenantId,
        etag: Option<&str>,
    ) -> Result<Fetched, StoreError> {
        self.objects.get(&Self::manifest_key(tenant), etag).await
    }

    /// The tenant's current manifest, parsed (`None` when it has none).
    pub async fn current(&self, tenant: &TenantId) -> Result<Option<Current>, StoreError> {
        let key = Self::manifest_key(tenant);
        match self.objects.get(&key, None).await? {
            Fetched::Found { bytes, etag } => Ok(Some(Current {
                manifest: parse_manifest(&key, &bytes)?,
                etag,
            })),
            Fetched::NotFound | Fetched::NotModified => Ok(None),
        }
    }

    /// Reads a tenant's staged canary; with `etag`, answers `NotModified` if it still
    /// matches.
    pub async fn canary(
        &self,
        tenant: &TenantId,
        etag: Option<&str>,
    ) -> Result<Fetched, StoreError> {
        self.objects.get(&Self::canary_key(tenant), etag).await
    }

    /// The tenant's staged canary, parsed (`None` when none is staged).
    pub async fn staged(&self, tenant: &TenantId) -> Result<Option<Manifest>, StoreError> {
        let key = Self::canary_key(tenant);
        found(self.objects.get(&key, None).await?)?
            .map(|bytes| parse_manifest(&key, &bytes))
            .transpose()
    }

    /// Stages `rules` as a canary of `tenant` for `terms`: the revision after the current
    /// one (which must exist and be at `expected`), naming it as `previous`, signed by
    /// `signer`, replacing any canary staged before. Every module must already be stored.
    /// The live manifest is not touched: the canary decides for its share of users only
    /// while the live revision is the one it follows.
    pub async fn stage_canary(
        &self,
        tenant: &TenantId,
        rules: Vec<RuleEntry>,
        expected: u64,
        terms: CanaryTerms,
        signer: Option<&ManifestSigner>,
    ) -> Result<Manifest, StoreError> {
        let current = self.current(tenant).await?;
        let Some(current) = current.filter(|c| c.manifest.revision == expected) else {
            return Err(StoreError::Conflict {
                tenant: tenant.to_string(),
                expected,
            });
        };
        self.check_modules(&rules).await?;
        let mut manifest = Manifest {
            tenant: Some(tenant.to_string()),
            revision: next_revision(tenant, expected)?,
            previous: Some(format!("sha256:{}", manifest_digest(&current.manifest))),
            rules,
            canary: Some(terms),
            signature: None,
        };
        if let Some(signer) = signer {
            signer.sign(&mut manifest);
        }
        let bytes = manifest_bytes(tenant, &manifest)?;
        self.objects
            .put(&Self::canary_key(tenant), bytes, PutIf::Always)
            .await?;
        Ok(manifest)
    }

    /// Ends a tenant's canary (promoted, aborted or overtaken): its users go back to the
    /// live revision. Ending none is not an error.
    pub async fn end_canary(&self, tenant: &TenantId) -> Result<(), StoreError> {
        self.objects.delete(&Self::canary_key(tenant)).await
    }

    /// A published revision of a tenant's manifest (`None` if there is no such revision).
    pub async fn revision(
        &self,
        tenant: &TenantId,
        revision: u64,
    ) -> Result<Option<Manifest>, StoreError> {
        let key = Self::history_key(tenant, revision);
        match self.objects.get(&key, None).await? {
            Fetched::Found { bytes, .. } => parse_manifest(&key, &bytes).map(Some),
            Fetched::NotFound | Fetched::NotModified => Ok(None),
        }
    }

    /// Every published revision of a tenant, ascending.
    pub async fn revisions(&self, tenant: &TenantId) -> Result<Vec<u64>, StoreError> {
        let prefix = format!("tenants/{tenant}/history/");
        let mut revisions: Vec<u64> = self
            .objects
            .list(&prefix)
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix(".json")?.parse().ok())
            .collect();
        revisions.sort_unstable();
        Ok(revisions)
    }

    /// Every tenant with a manifest (including `_global`).
    pub async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let keys = self.objects.list("tenants/").await?;
        let mut tenants: Vec<TenantId> = keys
            .iter()
            .filter_map(|k| {
                let name = k.strip_prefix("tenants/")?.strip_suffix("/manifest.json")?;
                TenantId::new(name)
            })
            .collect();
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }

    /// Reads a module by digest; `None` if the store does not have it.
    pub async fn module(&self, digest: &Sha256) -> Result<Option<Vec<u8>>, StoreError> {
        found(self.objects.get(&Self::module_key(digest), None).await?)
    }

    /// Stores a module under its digest (idempotent) and returns the digest.
    pub async fn put_module(&self, bytes: Vec<u8>) -> Result<Sha256, StoreError> {
        let digest = Sha256::of(&bytes);
        match self
            .objects
            .put(&Self::module_key(&digest), bytes, PutIf::Absent)
            .await
        {
            Ok(_) | Err(StoreError::PreconditionFailed(_)) => Ok(digest),
            Err(e) => Err(e),
        }
    }

    /// Reads a precompiled artifact for engine build `compat`, if there is one.
    pub async fn compiled(
        &self,
        compat: &str,
        digest: &Sha256,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        found(
            self.objects
                .get(&Self::compiled_key(compat, digest), None)
                .await?,
        )
    }

    /// Stores a precompiled artifact for engine build `compat`, replacing any artifact
    /// already there: only holders of the artifact key make artifacts, and one that failed
    /// its check must be overwritten, never kept because it was written first.
    pub async fn put_compiled(
        &self,
        compat: &str,
        digest: &Sha256,
        artifact: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.objects
            .put(&Self::compiled_key(compat, digest), artifact, PutIf::Always)
            .await
            .map(drop)
    }

    /// Publishes `rules` as the tenant's next revision, unsigned: see
    /// [`RuleStore::publish_signed`].
    pub async fn publish(
        &self,
        tenant: &TenantId,
        rules: Vec<RuleEntry>,
        expected: u64,
    ) -> Result<Manifest, StoreError> {
        self.publish_signed(tenant, rules, expected, None).await
    }

    /// Publishes `rules` as the tenant's next revision, if the tenant is still at
    /// `expected` (`0`: it has no manifest yet), signed by `signer`. Every module must
    /// already be stored.
    ///
    /// The manifest is the truth and is written first, under `If-Match` (or
    /// `If-None-Match: *` for a first revision): of two concurrent publishers one wins and
    /// the other gets [`StoreError::Conflict`] having written nothing. `history/<rev>.json`
    /// is written after it (replacing whatever an interrupted publish left there), and
    /// before a publish the current revision's history file is written if it is missing,
    /// so a crash at any point never blocks the next publish, and history only holds
    /// revisions that were live. The new manifest names its tenant and the digest of the
    /// revision it replaces, both under the signature.
    pub async fn publish_signed(
        &self,
        tenant: &TenantId,
        rules: Vec<RuleEntry>,
        expected: u64,
        signer: Option<&ManifestSigner>,
    ) -> Result<Manifest, StoreError> {
        let conflict = || StoreError::Conflict {
            tenant: tenant.to_string(),
            expected,
        };
        let current = self.current(tenant).await?;
        let (revision, condition) = match &current {
            None => (0, PutIf::Absent),
            Some(c) => (c.manifest.revision, PutIf::Matches(c.etag.clone())),
        };
        if revision != expected {
            return Err(conflict());
        }
        let next = next_revision(tenant, revision)?;
        self.check_modules(&rules).await?;
        if let Some(current) = &current {
            self.repair_history(tenant, &current.manifest).await?;
        }
        let mut manifest = Manifest {
            tenant: Some(tenant.to_string()),
            revision: next,
            previous: current
                .as_ref()
                .map(|c| format!("sha256:{}", manifest_digest(&c.manifest))),
            rules,
            canary: None,
            signature: None,
        };
        if let Some(signer) = signer {
            signer.sign(&mut manifest);
        }
        let bytes = manifest_bytes(tenant, &manifest)?;
        self.objects
            .put(&Self::manifest_key(tenant), bytes.clone(), condition)
            .await
            .map_err(|e| match e {
                StoreError::PreconditionFailed(_) => conflict(),
                other => other,
            })?;
        // Live now; if this write fails, the next publish writes it (`repair_history`).
        self.objects
            .put(&Self::history_key(tenant, next), bytes, PutIf::Always)
            .await?;
        Ok(manifest)
    }

    /// Every module `rules` name must be in the store before a manifest names it.
    async fn check_modules(&self, rules: &[RuleEntry]) -> Result<(), StoreError> {
        for rule in rules {
            let digest = rule
                .module
                .parse::<Sha256>()
                .map_err(|e| StoreError::Corrupt {
                    key: rule.name.clone(),
                    message: e.to_string(),
                })?;
            if self.module(&digest).await?.is_none() {
                return Err(StoreError::MissingModule(digest));
            }
        }
        Ok(())
    }

    /// Writes `history/<rev>.json` of the current manifest when it is missing (a publish
    /// interrupted between its two writes). An existing entry is never replaced here: if
    /// it differs from the current manifest, the current one may be the forgery, and
    /// `portcullis verify` reports the difference.
    async fn repair_history(
        &self,
        tenant: &TenantId,
        current: &Manifest,
    ) -> Result<(), StoreError> {
        match self.revision(tenant, current.revision).await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) | Err(StoreError::Corrupt { .. }) => {}
            Err(e) => return Err(e),
        }
        self.objects
            .put(
                &Self::history_key(tenant, current.revision),
                manifest_bytes(tenant, current)?,
                PutIf::Always,
            )
            .await
            .map(drop)
    }

    /// Rolls a tenant back, unsigned: see [`RuleStore::rollback_signed`].
    pub async fn rollback(
        &self,
        tenant: &TenantId,
        to: u64,
        expected: u64,
    ) -> Result<Manifest, StoreError> {
        self.rollback_signed(tenant, to, expected, None).await
    }

    /// Rolls a tenant back: publishes the rules of revision `to` as a new revision (history
    /// only grows, revisions only move forward), if the tenant is still at `expected`.
    pub async fn rollback_signed(
        &self,
        tenant: &TenantId,
        to: u64,
        expected: u64,
        signer: Option<&ManifestSigner>,
    ) -> Result<Manifest, StoreError> {
        let Some(old) = self.revision(tenant, to).await? else {
            return Err(StoreError::NoSuchRevision {
                tenant: tenant.to_string(),
                revision: to,
            });
        };
        self.publish_signed(tenant, old.rules, expected, signer)
            .await
    }
}

fn manifest_bytes(tenant: &TenantId, manifest: &Manifest) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::Corrupt {
        key: tenant.to_string(),
        message: e.to_string(),
    })
}

fn next_revision(tenant: &TenantId, revision: u64) -> Result<u64, StoreError> {
    revision
        .checked_add(1)
        .ok_or_else(|| StoreError::RevisionOverflow(tenant.to_string()))
}

fn found(fetched: Fetched) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(match fetched {
        Fetched::Found { bytes, .. } => Some(bytes),
        Fetched::NotFound | Fetched::NotModified => None,
    })
}

fn parse_manifest(key: &str, bytes: &[u8]) -> Result<Manifest, StoreError> {
    Manifest::parse(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    })
}
