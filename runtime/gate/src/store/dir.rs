//! [`DirStore`]: the local directory store, the embedded default for development, tests
//! and the demo.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{BoxFuture, Fetched, MAX_OBJECT_BYTES, ObjectStore, PutIf, StoreError};

/// The local directory store: object `k` is the file `<root>/k`; the ETag is the
/// content's CRC-64/NVME and length. Writes go through a temporary file and a rename, so
/// readers never see half a file; conditional writes hold a lock file while they check and
/// write.
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
            (PutIf::Matches(expected), Some(old)) => etag(&old) == *expected,
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
        Ok(etag(bytes))
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

/// An object's ETag: its CRC-64/NVME (S3's own full-object checksum) and its length, in
/// hex. An ETag only tells versions of an object apart, for revalidation and conditional
/// writes; what is trusted is checked elsewhere, whatever the store (the manifest's
/// signature, each module's sha256, each artifact's tag). It is computed on every read, and
/// a cryptographic hash here was most of a cold start's reading time (~0.4 ms for a 300 KB
/// artifact) for a guarantee nothing relies on.
fn etag(bytes: &[u8]) -> String {
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, bytes);
    format!("{crc:016x}-{:x}", bytes.len())
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
                    let etag = etag(&bytes);
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

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            match std::fs::remove_file(self.path(key)?) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("delete", key, e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{DirStore, etag};
    use crate::store::{Fetched, ObjectStore, PutIf, StoreError};
    use crate::tenant::TenantId;

    #[test]
    fn etags_tell_versions_apart_for_revalidation_and_conditional_writes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        rt.block_on(async {
            let first = store
                .put("m", b"one".to_vec(), PutIf::Absent)
                .await
                .unwrap();
            assert_eq!(first, etag(b"one"));
            // The same bytes, the same tag; other bytes (even of the same length), another.
            assert_ne!(etag(b"one"), etag(b"two"));
            assert_ne!(etag(b"one"), etag(b"one "));
            assert!(matches!(
                store.get("m", Some(&first)).await.unwrap(),
                Fetched::NotModified
            ));
            let second = store
                .put("m", b"two".to_vec(), PutIf::Matches(first.clone()))
                .await
                .unwrap();
            assert_ne!(first, second);
            // A changed object is served again, with its new tag.
            assert_eq!(
                store.get("m", Some(&first)).await.unwrap(),
                Fetched::Found {
                    bytes: b"two".to_vec(),
                    etag: second
                }
            );
            // A writer holding the old tag loses.
            assert!(matches!(
                store
                    .put("m", b"three".to_vec(), PutIf::Matches(first))
                    .await,
                Err(StoreError::PreconditionFailed(_))
            ));
        });
    }

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
