//! `portcullis context`: signs a trusted context envelope as an app's backend would, with the
//! tenant's context key — for trying rules that read trusted values (`portcullis handle
//! --context-keys`), and as the reference for the Node and Python signing helpers.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use portcullis_gate::context::{Claims, METADATA_KEY, nonce, sign};

use crate::{Exit, input};

/// Arguments of `portcullis context`.
#[derive(clap::Args)]
pub struct Args {
    /// The tenant's context key file (any secret of at least 32 bytes; `portcullis keygen
    /// --artifact --out FILE` makes one).
    #[arg(long)]
    key: PathBuf,
    /// The tenant the envelope is for.
    #[arg(long)]
    tenant: String,
    /// Bind the envelope to this Cognito user name.
    #[arg(long)]
    user: Option<String>,
    /// The end user's IP address as the backend saw it.
    #[arg(long)]
    ip: Option<String>,
    /// The end user's user agent.
    #[arg(long)]
    user_agent: Option<String>,
    /// The backend's device identifier.
    #[arg(long)]
    device_id: Option<String>,
    /// Another signed field, NAME=VALUE (repeatable).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// The signing time in milliseconds since the Unix epoch (default: now).
    #[arg(long)]
    now_ms: Option<i64>,
    /// Print `{"portcullis_context": ENVELOPE}`, ready to merge into ClientMetadata.
    #[arg(long)]
    json: bool,
}

/// Runs `portcullis context`.
pub fn run(args: Args) -> Result<Exit> {
    let key = input::read(&args.key)?;
    let text = String::from_utf8(key).context("the context key file is not text")?;
    let mut fields = std::collections::BTreeMap::new();
    for field in &args.fields {
        let Some((name, value)) = field.split_once('=') else {
            bail!("--field `{field}`: expected NAME=VALUE");
        };
        fields.insert(name.to_owned(), value.to_owned());
    }
    let now = match args.now_ms {
        Some(now) => now,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .context("the system clock is before 1970")?,
    };
    let claims = Claims {
        tenant: args.tenant,
        iat_ms: now,
        nonce: nonce().map_err(|e| anyhow::anyhow!("no randomness for a nonce: {e}"))?,
        user: args.user,
        ip: args.ip,
        user_agent: args.user_agent,
        device_id: args.device_id,
        fields,
    };
    let envelope = sign(&claims, text.trim().as_bytes())?;
    if args.json {
        println!("{}", serde_json::json!({ METADATA_KEY: envelope }));
    } else {
        println!("{envelope}");
    }
    Ok(Exit::Allow)
}
