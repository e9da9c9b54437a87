//! Rule stores: where manifests, modules and compiled artifacts live. One layout for
//! every backend, written once here in [`RuleStore`]:
//!
//! ```text
//! tenants/<tenant>/manifest.json               mutable; carries a revision number
//! tenants/<tenant>/history/<rev>.json          immutable copy of every published manifest
//! tenants/<tenant>/canary.json                 a staged canary: the next revision, signed
//! modules/<sha256>.wasm                        immutable, content-addressed
//! compiled/<engine-compat>/<sha256>.cwasm      precompiled modules for one engine build
//! capture/<tenant>/<day>/<time>-<id>.json      sampled sign-ins for replay (crate::capture)
//! ```
//!
//! Backends implement [`ObjectStore`] — get (conditional), put (conditional), list,
//! delete — and nothing else: [`DirStore`] is the local directory store, the embedded default for
//! development, tests and the demo; the S3 store (`portcullis-aws`) is the production one.

use std::fmt;

use portcullis_engine::digest::Sha256;

pub use crate::backend::BoxFuture;
pub use crate::tenant::{GLOBAL_TENANT, TenantId};

mod dir;
mod rules;

pub use dir::DirStore;
pub use rules::{Current, RuleStore};

/// The largest object a store reads: its size is checked before it is read (larger than any
/// module, [`portcullis_engine::EngineConfig::max_module_bytes`], or artifact of one).
pub const MAX_OBJECT_BYTES: usize = 128 << 20;

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

    /// Deletes an object; deleting one that is not there is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}
