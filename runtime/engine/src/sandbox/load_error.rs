//! Why a component could not be loaded: [`LoadError`].

#[cfg(doc)]
use super::EngineConfig;
use super::artifact::ArtifactError;
use crate::contract::CONTRACT_VERSION;
use crate::digest::Sha256;

/// Why a component could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The component is larger than [`EngineConfig::max_module_bytes`].
    #[error("module is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes do not hash to the digest the manifest names.
    #[error("module digest mismatch: expected `{expected}`, got `{actual}`")]
    DigestMismatch {
        /// The digest the manifest names.
        expected: Sha256,
        /// The digest of the bytes.
        actual: Sha256,
    },
    /// A core WebAssembly module where a component is required.
    #[error(
        "this is a core WebAssembly module, not a component: build it with the Portcullis build step (see README)"
    )]
    NotAComponent,
    /// The bytes are not a valid component.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component imports something outside the contract.
    #[error("component imports {} outside the policy contract (only `portcullis:policy` may be imported; WASI is not available)", quoted(.0))]
    ForbiddenImports(Vec<String>),
    /// The component does not export the contract's functions with the right types.
    #[error(
        "component does not implement the policy contract `portcullis:policy@{version}`: {0}",
        version = CONTRACT_VERSION
    )]
    Contract(String),
    /// A precompiled artifact that this deployment does not vouch for, or that cannot be
    /// used.
    #[error("precompiled artifact refused: {0}")]
    Artifact(#[from] ArtifactError),
    /// The engine could not be set up.
    #[error("engine setup failed: {0}")]
    Setup(String),
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
