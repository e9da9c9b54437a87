//! `portcullis diff`: what changed between two revisions of a tenant's manifest, and who
//! signed each.

use anyhow::{Context, Result};
use portcullis_aws::StoreUrl;
use portcullis_gate::TenantId;
use portcullis_gate::manifest::{Manifest, RuleChange, diff};

use crate::{Exit, input};

/// Arguments of `portcullis diff`.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant.
    #[arg(long)]
    tenant: TenantId,
    /// The older revision (default: the one before `--to`).
    #[arg(long)]
    from: Option<u64>,
    /// The newer revision (default: the current one).
    #[arg(long)]
    to: Option<u64>,
}

/// Runs `portcullis diff`.
pub fn run(args: Args) -> Result<Exit> {
    let tenant = &args.tenant;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let to = match args.to {
        Some(to) => to,
        None => {
            runtime
                .block_on(store.current(tenant))?
                .with_context(|| format!("tenant `{tenant}` has no manifest"))?
                .manifest
                .revision
        }
    };
    let from = args.from.unwrap_or(to.saturating_sub(1));
    let load = |rev: u64| -> Result<Manifest> {
        if rev == 0 {
            return Ok(Manifest::default());
        }
        runtime
            .block_on(store.revision(tenant, rev))?
            .with_context(|| format!("tenant `{tenant}` has no revision {rev}"))
    };
    let (old, new) = (load(from)?, load(to)?);
    let signer = |m: &Manifest| {
        m.signature.as_ref().map_or_else(
            || "unsigned".to_owned(),
            |s| format!("signed by {}", s.key_id),
        )
    };
    let changes = diff(&old, &new);
    println!(
        "{tenant}: revision {from} -> {to} ({} -> {})",
        signer(&old),
        signer(&new)
    );
    if changes.is_empty() {
        println!("  no changes");
    }
    for change in changes {
        match change {
            RuleChange::Added { rule } => println!("  + {rule}"),
            RuleChange::Removed { rule } => println!("  - {rule}"),
            RuleChange::Changed { rule, fields } => {
                println!("  ~ {rule}");
                for f in fields {
                    println!("      {f}");
                }
            }
            RuleChange::Reordered { order } => println!("  order: {}", order.join(", ")),
        }
    }
    Ok(Exit::Allow)
}
