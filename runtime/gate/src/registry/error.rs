//! Why a tenant's rules could not be (re)loaded: every refusal and failure of a refresh.

use std::sync::Arc;

use portcullis_engine::digest::Sha256;
use portcullis_engine::sandbox::LoadError;

use crate::manifest::ManifestError;
use crate::store::StoreError;
use crate::trust::SignatureError;

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
    /// A compile or an artifact's load was abandoned (its blocking task ended without an
    /// answer).
    #[error("loading rule `{0}` did not finish")]
    Abandoned(String),
    /// The registry's lock was poisoned.
    #[error("registry lock poisoned")]
    Poisoned,
}
