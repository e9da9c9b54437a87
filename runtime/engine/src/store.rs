//! Rule stores: where manifests, modules and compiled artifacts live. One layout for
//! every backend, written once here in [`RuleStore`]:
//!
//! ```text
//! tenants/<tenant>/manifest.json               mutable; carries a revision number
//! tenants/<tenant>/history/<rev>.json          immutable copy of every published manifest
//! modules/<sha256>.wasm                        immutable, content-addressed
//! compiled/<engine-compat>/<sha256>.cwasm      precompiled modules for one engine build
//! ```
//!
//! Backends implement [`ObjectStore`] — get (conditional), put (conditional), list — and
//! nothing else: [`DirStore`] is the local directory store, the embedded default for
//! development, tests and the demo; the S3 store (`portcullis-aws`) is the production one.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use crate::digest::Sha256;
use crate::manifest::{Manifest, RuleEntry};
use crate::trust::{ManifestSigner, manifest_digest};

/// A boxed, sendable future (stores are used behind `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest object a store reads: its size is checked before it is read (larger than any
/// module, [`crate::EngineConfig::max_module_bytes`], or artifact of one).
pub const MAX_OBJECT_BYTES: usize = 128 << 20;

/// The reserved tenant whose rules run before every tenant's own.
pub const GLOBAL_TENANT: &str = "_global";

/// A tenant id that is safe as a path segment and an S3 key part: 1–128 characters of
/// `A-Z a-z 0-9 _ . -`, not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Checks and wraps a tenant id.
    pub fn new(id: &str) -> Option<TenantId> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        ok.then(|| TenantId(id.to_owned()))
    }

    /// The `_global` tenant.
    pub fn global() -> TenantId {
        TenantId(GLOBAL_TENANT.to_owned())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of a (conditional) read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// There is no such object.
    NotFound,
    /// The object still has the ETag the caller holds.
    NotModified,
    /// The object and its ETag.
    Found {
        /// The bytes.
        bytes: Vec<u8>,
        /// Its entity tag.
        etag: String,
    },
}

/// The condition of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutIf {
    /// Unconditionally.
    Always,
    /// Only if there is no such object yet (`If-None-Match: *`).
    Absent,
    /// Only if the object still has this ETag (`If-Match`).
    Matches(String),
}

/// A store that could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("store {op} `{key}` failed: {message}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The key or path.
        key: String,
        /// The cause.
        message: String,
    },
    /// The store did not answer in time.
    #[error("store timed out on `{0}`")]
    Timeout(String),
    /// A conditional write's condition did not hold.
    #[error("`{0}` changed since it was read (conditional write refused)")]
    PreconditionFailed(String),
    /// An object larger than [`MAX_OBJECT_BYTES`], refused before it was read.
    #[error("`{key}` is {bytes} bytes, over the limit of {MAX_OBJECT_BYTES}: not read")]
    TooLarge {
        /// The key.
        key: String,
        /// Its size.
        bytes: u64,
    },
    /// A key that is not a plain relative path.
    #[error("`{0}` is not a valid store key")]
    BadKey(String),
    /// A stored document that cannot be used.
    #[error("`{key}` is unusable: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A publish lost: someone else changed the manifest first.
    #[error(
        "manifest of tenant `{tenant}` changed since revision {expected}: another publish won, fetch and retry"
    )]
    Conflict {
        /// The tenant.
        tenant: String,
        /// The revision the writer expected to replace.
        expected: u64,
    },
    /// A rollback to a revision the tenant never had.
    #[error("tenant `{tenant}` has no revision {revision}")]
    NoSuchRevision {
        /// The tenant.
        tenant: String,
        /// The revision asked for.
        revision: u64,
    },
    /// The tenant's revision cannot grow any further.
    #[error("tenant `{0}` is at the largest revision number; nothing can be published after it")]
    RevisionOverflow(String),
    /// A manifest names a module the store does not hold.
    #[error("module `{0}` is not in the store: upload it first")]
    MissingModule(Sha256),
}

/// A key-value object store: the backend of a [`RuleStore`]. Keys are `/`-separated
/// relative paths; ETags are opaque.
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// The store's URL, for logs.
    fn url(&self) -> String;

    /// Reads an object; with `if_none_match`, answers `NotModified` if its ETag still matches.
    fn get<'a>(
        &'a self,
        key: &'a str,
        if_none_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Fetched, StoreError>>;

    /// Writes an object under a condition and returns its new ETag.
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        condition: PutIf,
    ) -> BoxFuture<'a, Result<String, StoreError>>;

    /// Every key that starts with `prefix`, in order.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;
}

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
        let next = revision
            .checked_add(1)
            .ok_or_else(|| StoreError::RevisionOverflow(tenant.to_string()))?;
        for rule in &rules {
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

/// The local directory store: object `k` is the file `<root>/k`; the ETag is the
/// content's sha256. Writes go through a temporary file and a rename, so readers never
/// see half a file; conditional writes hold a lock file while they check and write.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let ok = !key.is_empty()
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !ok {
            return Err(StoreError::BadKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_OBJECT_BYTES as u64 => {
                return Err(StoreError::TooLarge {
                    key: key.to_owned(),
                    bytes: meta.len(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", key, e)),
        }
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", key, e)),
        }
    }

    fn write(&self, key: &str, bytes: &[u8], condition: &PutIf) -> Result<String, StoreError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err("create", key, e))?;
        }
        let _lock = match condition {
            PutIf::Always => None,
            PutIf::Absent | PutIf::Matches(_) => Some(Lock::take(&path, key)?),
        };
        let holds = match (condition, self.read(key)?) {
            (PutIf::Always, _) | (PutIf::Absent, None) => true,
            (PutIf::Absent, Some(_)) | (PutIf::Matches(_), None) => false,
            (PutIf::Matches(etag), Some(old)) => Sha256::of(&old).to_string() == *etag,
        };
        if !holds {
            return Err(StoreError::PreconditionFailed(key.to_owned()));
        }
        let tmp = path.with_extension(format!(
            "tmp{}.{}",
            std::process::id(),
            TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&tmp, bytes).map_err(|e| io_err("write", key, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err("rename", key, e))?;
        Ok(Sha256::of(bytes).to_string())
    }

    fn walk(&self, dir: &Path, out: &mut Vec<String>) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("list", &dir.display().to_string(), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list", &dir.display().to_string(), e))?;
            let path = entry.path();
            if path.is_dir() {
                self.walk(&path, out)?;
            } else if let Ok(rel) = path.strip_prefix(&self.root)
                && let Some(key) = rel.to_str()
                && !key.contains(".tmp")
                && !key.ends_with(".lock")
            {
                out.push(key.replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
        Ok(())
    }
}

static TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A lock file next to the object, held while a conditional write checks and writes.
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path, key: &str) -> Result<Lock, StoreError> {
        let lock = path.with_extension("lock");
        let start = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => return Ok(Lock(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() > std::time::Duration::from_secs(5) {
                        return Err(StoreError::Timeout(format!(
                            "{key} (lock `{}` held; remove it if no publish is running)",
                            lock.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(io_err("lock", key, e)),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn io_err(op: &'static str, key: &str, e: impl fmt::Display) -> StoreError {
    StoreError::Io {
        op,
        key: key.to_owned(),
        message: e.to_string(),
    }
}

impl ObjectStore for DirStore {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        if_none_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Fetched, StoreError>> {
        Box::pin(async move {
            Ok(match self.read(key)? {
                None => Fetched::NotFound,
                Some(bytes) => {
                    let etag = Sha256::of(&bytes).to_string();
                    if if_none_match == Some(etag.as_str()) {
                        Fetched::NotModified
                    } else {
                        Fetched::Found { bytes, etag }
                    }
                }
            })
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        condition: PutIf,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(async move { self.write(key, &bytes, &condition) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            // Walk only the deepest directory the prefix names.
            let dir = match prefix.rfind('/') {
                Some(i) => self.path(prefix.get(..i).unwrap_or(""))?,
                None => self.root.clone(),
            };
            let mut keys = Vec::new();
            self.walk(&dir, &mut keys)?;
            keys.retain(|k| k.starts_with(prefix));
            keys.sort();
            Ok(keys)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_path_safe() {
        for ok in ["acme", "us-east-1_Abc", "_global", "a.b"] {
            assert!(TenantId::new(ok).is_some(), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "a b", "ä"] {
            assert!(TenantId::new(bad).is_none(), "{bad}");
        }
    }
}
