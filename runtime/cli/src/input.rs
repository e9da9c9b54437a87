//! The command line's inputs and shared set-up: files, inline-or-`@file` JSON, Cognito
//! events, stores, keys, the engine and the async runtime.

use std::path::Path;

use anyhow::{Context, Result};
use portcullis_gate::cognito::Event;

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
pub async fn store(url: &portcullis_aws::StoreUrl) -> portcullis_gate::store::RuleStore {
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
    pub fn trusted(&self) -> Result<Option<portcullis_gate::trust::TrustedKeys>> {
        self.trusted_keys
            .as_deref()
            .map(portcullis_gate::trust::TrustedKeys::parse)
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

/// The engine for one command (a small instance pool: commands run one rule at a time).
pub fn engine() -> Result<portcullis_engine::Engine> {
    engine_with_slots(2)
}

/// An engine whose pools hold `concurrent` instances (and twice as many memories). A pool
/// slot keeps the memory image of the last module that used it: with fewer slots than the
/// modules a command keeps running, each instance maps its module's image in again.
pub fn engine_with_slots(concurrent: u32) -> Result<portcullis_engine::Engine> {
    Ok(portcullis_engine::Engine::new(
        portcullis_engine::EngineConfig {
            max_concurrent: concurrent,
            ..portcullis_engine::EngineConfig::default()
        },
    )?)
}

/// The signing key at `path`, checked against the trusted keys before anything is
/// written: when keys are configured, a publish or rollback must be signed by one of them.
pub fn signer(
    path: Option<&Path>,
    trusted: Option<&portcullis_gate::trust::TrustedKeys>,
) -> Result<Option<portcullis_gate::trust::ManifestSigner>> {
    let signer = path
        .map(|p| {
            portcullis_gate::trust::ManifestSigner::from_file(p)
                .with_context(|| format!("`{}`", p.display()))
        })
        .transpose()?;
    portcullis_gate::publish::check_signer(trusted, signer.as_ref())?;
    Ok(signer)
}

/// How a revision was signed, for the commands' output.
pub fn signed_by(signer: Option<&portcullis_gate::trust::ManifestSigner>) -> String {
    signer.map_or_else(
        || "unsigned".to_owned(),
        |s| format!("signed by `{}`", s.id()),
    )
}

/// A rule's budget on the command line; what is not given is the module's language's
/// default ([`portcullis_engine::Language::default_budget`]), as publishing fills it in.
#[derive(clap::Args, Debug, Clone)]
pub struct BudgetArgs {
    /// Fuel budget (default: the module's language's; Rust 1 M, JavaScript 50 M, Python 20 M).
    #[arg(long)]
    fuel: Option<u64>,
    /// Wall-clock budget in milliseconds (default 100).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Memory limit in MiB (default: the module's language's; Rust 16, others 64).
    #[arg(long)]
    memory_mb: Option<usize>,
}

impl BudgetArgs {
    /// The budget for a module of `language`.
    pub fn budget_for(
        &self,
        language: portcullis_engine::Language,
    ) -> Result<portcullis_engine::Budget> {
        let default = language.default_budget();
        Ok(portcullis_engine::Budget {
            fuel: self.fuel.unwrap_or(default.fuel),
            timeout: self
                .timeout_ms
                .map_or(default.timeout, std::time::Duration::from_millis),
            memory_bytes: match self.memory_mb {
                Some(mb) => mb
                    .checked_mul(1 << 20)
                    .context("--memory-mb is too large")?,
                None => default.memory_bytes,
            },
        })
    }
}

/// A rule's own input from `--config` and `--data` (JSON, or @file): its configuration and
/// its prefetched data items by alias.
pub fn rule_input(
    config: Option<&str>,
    data: Option<&str>,
) -> Result<portcullis_engine::RuleInput> {
    let mut input = portcullis_engine::RuleInput::default();
    if let Some(config) = config {
        input.config = std::sync::Arc::from(json_arg(config, "--config")?.to_string());
    }
    if let Some(data) = data {
        let serde_json::Value::Object(items) = json_arg(data, "--data")? else {
            anyhow::bail!("--data must be a JSON object of data items");
        };
        input.data = items
            .into_iter()
            .map(|(key, v)| portcullis_engine::DataItem {
                key,
                value: v.to_string(),
            })
            .collect();
    }
    Ok(input)
}
