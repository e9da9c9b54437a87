//! Rule stores: where manifests and modules live. One layout everywhere:
//!
//! ```text
//! tenants/<tenant>/manifest.json        mutable; carries a revision number
//! tenants/<tenant>/history/<rev>.json   immutable copy of every published manifest
//! modules/<sha256>.wasm                 immutable, content-addressed
//! ```
//!
//! [`Store`] is what the runtime reads through; [`DirStore`] is the local directory store,
//! the embedded default for development, tests and the demo. Other stores (S3) implement
//! the same trait.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use crate::digest::Sha256;
use crate::manifest::Manifest;

/// A boxed, sendable future (stores are used behind `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// The result of a (conditional) manifest read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The tenant has no manifest.
    NotFound,
    /// The manifest still has the ETag the caller holds.
    NotModified,
    /// The manifest and its ETag.
    Found {
        /// The manifest bytes.
        bytes: Vec<u8>,
        /// Its entity tag.
        etag: String,
    },
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
    /// A conditional write lost: someone else changed the manifest first.
    #[error(
        "manifest of tenant `{tenant}` changed since revision {expected}: another publish won, fetch and retry"
    )]
    Conflict {
        /// The tenant.
        tenant: String,
        /// The revision the writer expected to replace.
        expected: u64,
    },
}

/// Where manifests and modules are read from.
pub trait Store: Send + Sync + fmt::Debug {
    /// The store's URL, for logs.
    fn url(&self) -> String;

    /// Reads a tenant's manifest; with `etag`, answers `NotModified` if it still matches.
    fn manifest<'a>(
        &'a self,
        tenant: &'a TenantId,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Fetched, StoreError>>;

    /// Reads a module by digest; `None` if the store does not have it.
    fn module<'a>(
        &'a self,
        digest: &'a Sha256,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
}

/// The local directory store.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn manifest_path(&self, tenant: &TenantId) -> PathBuf {
        self.root
            .join("tenants")
            .join(tenant.as_str())
            .join("manifest.json")
    }

    fn module_path(&self, digest: &Sha256) -> PathBuf {
        self.root.join("modules").join(format!("{digest}.wasm"))
    }

    /// Stores a module under its digest (idempotent) and returns the digest.
    pub fn put_module(&self, bytes: &[u8]) -> Result<Sha256, StoreError> {
        let digest = Sha256::of(bytes);
        let path = self.module_path(&digest);
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    /// Publishes a manifest: writes `history/<rev>.json`, then replaces `manifest.json`,
    /// if the current revision is `expected` (`0` when the tenant has none yet).
    pub fn put_manifest(
        &self,
        tenant: &TenantId,
        manifest: &Manifest,
        expected: u64,
    ) -> Result<(), StoreError> {
        let current = self.revision(tenant)?;
        if current != expected {
            return Err(StoreError::Conflict {
                tenant: tenant.to_string(),
                expected,
            });
        }
        let bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| io_err("encode", tenant.as_str(), e))?;
        let dir = self.root.join("tenants").join(tenant.as_str());
        write_atomic(
            &dir.join("history")
                .join(format!("{}.json", manifest.revision)),
            &bytes,
        )?;
        write_atomic(&dir.join("manifest.json"), &bytes)
    }

    /// The tenant's current revision (`0` when it has no manifest).
    pub fn revision(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let path = self.manifest_path(tenant);
        match std::fs::read(&path) {
            Ok(bytes) => Manifest::parse(&bytes)
                .map(|m| m.revision)
                .map_err(|e| io_err("parse", &path.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err("read", &path.display().to_string(), e)),
        }
    }
}

fn io_err(op: &'static str, key: &str, e: impl fmt::Display) -> StoreError {
    StoreError::Io {
        op,
        key: key.to_owned(),
        message: e.to_string(),
    }
}

/// Writes through a temporary file and a rename, so readers never see half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let key = path.display().to_string();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create", &key, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| io_err("write", &key, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("rename", &key, e))
}

impl Store for DirStore {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn manifest<'a>(
        &'a self,
        tenant: &'a TenantId,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Fetched, StoreError>> {
        Box::pin(async move {
            let path = self.manifest_path(tenant);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let tag = Sha256::of(&bytes).to_string();
                    if etag == Some(tag.as_str()) {
                        return Ok(Fetched::NotModified);
                    }
                    Ok(Fetched::Found { bytes, etag: tag })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Fetched::NotFound),
                Err(e) => Err(io_err("read", &path.display().to_string(), e)),
            }
        })
    }

    fn module<'a>(
        &'a self,
        digest: &'a Sha256,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let path = self.module_path(digest);
            match std::fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err("read", &path.display().to_string(), e)),
            }
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
