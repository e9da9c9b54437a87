//! Reading the command line's inputs: files, inline-or-`@file` JSON, Cognito events.

use std::path::Path;

use anyhow::{Context, Result};
use portcullis_engine::cognito::Event;

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))
}

/// Parses `text` as JSON, or the file it names when it starts with `@`.
pub fn json_arg(text: &str, what: &str) -> Result<serde_json::Value> {
    let (source, bytes) = match text.strip_prefix('@') {
        Some(path) => (format!("`{path}`"), read(Path::new(path))?),
        None => ("the argument".to_owned(), text.as_bytes().to_vec()),
    };
    serde_json::from_slice(&bytes).with_context(|| format!("{what}: {source} is not valid JSON"))
}

/// Reads and parses a Cognito event file.
pub fn event(path: &Path) -> Result<Event> {
    let bytes = read(path)?;
    Event::from_slice(&bytes).with_context(|| format!("`{}`", path.display()))
}

/// A current-thread async runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Opens a rule store URL (`file://DIR`, a plain directory, or `s3://bucket/prefix`).
pub async fn store(url: &portcullis_aws::StoreUrl) -> portcullis_engine::store::RuleStore {
    url.open(std::time::Duration::from_secs(10)).await
}

/// The deployment's keys, as the Lambda takes them: the publishers' trusted public keys
/// (when set, manifests must be signed) and the artifact key (when set, precompiled
/// artifacts are sealed and checked with it).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Keys {
    /// Trusted publisher keys: ID=HEX or .pub files, joined with commas. When set, every
    /// manifest must be signed by one of them.
    #[arg(long, env = "PORTCULLIS_TRUSTED_KEYS")]
    pub trusted_keys: Option<String>,
    /// The artifact key: a key file (`portcullis keygen --artifact`), file:PATH or
    /// secretsmanager:ID. Without it precompiled artifacts are neither loaded nor written.
    #[arg(long, env = "PORTCULLIS_ARTIFACT_KEY")]
    pub artifact_key: Option<portcullis_aws::keys::KeySource>,
}

impl Keys {
    /// The trusted keys, if any are configured (a configured but empty list is an error).
    pub fn trusted(&self) -> Result<Option<portcullis_engine::trust::TrustedKeys>> {
        self.trusted_keys
            .as_deref()
            .map(portcullis_engine::trust::TrustedKeys::parse)
            .transpose()
            .context("--trusted-keys / PORTCULLIS_TRUSTED_KEYS")
    }

    /// The artifact key, if one is configured.
    pub async fn artifact(&self) -> Result<Option<portcullis_engine::ArtifactKey>> {
        let Some(source) = &self.artifact_key else {
            return Ok(None);
        };
        let key = source
            .load(
                portcullis_aws::sdk_config,
                std::time::Duration::from_secs(10),
            )
            .await?;
        Ok(Some(key))
    }
}
