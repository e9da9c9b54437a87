//! `portcullis status`: each tenant's current revision, signer, and rules with their
//! digests, modes and triggers, and its staged canary: the candidate revision, its share of
//! users, whether it still follows the live revision, and (`--log`) what it decided
//! differently in a decision log.

use std::path::PathBuf;

use anyhow::{Result, bail};
use portcullis_gate::manifest::Manifest;
use portcullis_gate::trust::follows;

use super::stats::{CanaryStats, canary_stats};
use portcullis_aws::StoreUrl;
use portcullis_gate::TenantId;

use crate::{Exit, input};

/// Arguments of `portcullis status`.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// One tenant only.
    #[arg(long)]
    tenant: Option<TenantId>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// A decision log (the Lambda's log lines or `handle --json` output): count what each
    /// canary decided differently from the live rules.
    #[arg(long)]
    log: Option<PathBuf>,
}

/// Runs `portcullis status`.
pub fn run(args: Args) -> Result<Exit> {
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let tenants = match &args.tenant {
        Some(t) => vec![t.clone()],
        None => runtime.block_on(store.tenants())?,
    };
    let log = match &args.log {
        Some(path) => Some(String::from_utf8_lossy(&input::read(path)?).into_owned()),
        None => None,
    };
    let mut all = Vec::new();
    for t in tenants {
        let Some(current) = runtime.block_on(store.current(&t))? else {
            bail!("tenant `{t}` has no manifest in {}", store.url());
        };
        let canary = runtime.block_on(store.staged(&t))?.map(|staged| {
            let follows = follows(&staged, &current.manifest);
            let counts = log
                .as_deref()
                .map(|text| canary_stats(text, t.as_str(), staged.revision));
            Canary {
                percent: staged.canary.map_or(0, |c| c.percent),
                follows,
                counts,
                manifest: staged,
            }
        });
        all.push((t, current.manifest, canary));
    }
    if args.json {
        let out: serde_json::Map<String, serde_json::Value> = all
            .iter()
            .map(|(t, m, canary)| {
                let mut value = serde_json::to_value(m).unwrap_or_default();
                if let (Some(canary), Some(object)) = (canary, value.as_object_mut()) {
                    object.insert(
                        "staged_canary".into(),
                        serde_json::to_value(canary).unwrap_or_default(),
                    );
                }
                (t.to_string(), value)
            })
            .collect();
        println!("{}", serde_json::Value::Object(out));
        return Ok(Exit::Allow);
    }
    println!("store {}", store.url());
    for (t, m, canary) in &all {
        let signed = m.signature.as_ref().map_or_else(
            || "unsigned".to_owned(),
            |s| format!("signed by {}", s.key_id),
        );
        println!(
            "{t}  revision {}  {} rules  {signed}",
            m.revision,
            m.rules.len()
        );
        for r in &m.rules {
            let digest = r.module.strip_prefix("sha256:").unwrap_or(&r.module);
            println!(
                "  {:<20} {:<8} {:<15} {}  {}",
                r.name,
                format!("{:?}", r.mode).to_lowercase(),
                format!("on_error={:?}", r.on_error).to_lowercase(),
                digest.get(..12).unwrap_or(digest),
                r.triggers.join(",")
            );
        }
        if let Some(c) = canary {
            println!(
                "  canary: revision {} for {}% of users, {}{}",
                c.manifest.revision,
                c.percent,
                c.manifest.signature.as_ref().map_or_else(
                    || "unsigned".to_owned(),
                    |s| format!("signed by {}", s.key_id)
                ),
                if c.follows {
                    ""
                } else {
                    "; does NOT follow the live revision: it decides for no one (abort it)"
                }
            );
            for r in &c.manifest.rules {
                let digest = r.module.strip_prefix("sha256:").unwrap_or(&r.module);
                println!(
                    "    {:<18} {:<8} {}  {}",
                    r.name,
                    format!("{:?}", r.mode).to_lowercase(),
                    digest.get(..12).unwrap_or(digest),
                    r.triggers.join(",")
                );
            }
            if let Some(counts) = &c.counts {
                println!("    live: {}", counts.describe());
            }
        }
    }
    Ok(Exit::Allow)
}

/// A tenant's staged canary as `status` shows it.
#[derive(serde::Serialize)]
struct Canary {
    manifest: Manifest,
    percent: u8,
    follows: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<CanaryStats>,
}
