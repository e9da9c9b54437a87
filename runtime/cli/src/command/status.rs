//! `portcullis status`: each tenant's current revision, signer, and rules with their
//! digests, modes and triggers.

use anyhow::{Result, bail};
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
}

/// Runs `portcullis status`.
pub fn run(args: Args) -> Result<Exit> {
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let tenants = match &args.tenant {
        Some(t) => vec![t.clone()],
        None => runtime.block_on(store.tenants())?,
    };
    let mut all = Vec::new();
    for t in tenants {
        let Some(current) = runtime.block_on(store.current(&t))? else {
            bail!("tenant `{t}` has no manifest in {}", store.url());
        };
        all.push((t, current.manifest));
    }
    if args.json {
        let out: serde_json::Map<String, serde_json::Value> = all
            .iter()
            .map(|(t, m)| (t.to_string(), serde_json::to_value(m).unwrap_or_default()))
            .collect();
        println!("{}", serde_json::Value::Object(out));
        return Ok(Exit::Allow);
    }
    println!("store {}", store.url());
    for (t, m) in &all {
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
    }
    Ok(Exit::Allow)
}
