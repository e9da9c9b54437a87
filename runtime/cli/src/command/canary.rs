//! `portcullis promote` and `portcullis abort`: the end of a tenant's canary (staged with
//! `publish --canary`). Promote publishes the canary's rules as the next live revision,
//! signed anew; abort sends the canary's users back to the live rules.

use std::path::PathBuf;

use anyhow::Result;
use portcullis_aws::StoreUrl;
use portcullis_gate::TenantId;

use crate::{Exit, input};

/// Arguments of `portcullis promote`.
#[derive(clap::Args)]
pub struct PromoteArgs {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant.
    #[arg(long)]
    tenant: TenantId,
    /// The publisher's signing key: the live revision is signed.
    #[arg(long)]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    keys: input::Keys,
}

/// Arguments of `portcullis abort`.
#[derive(clap::Args)]
pub struct AbortArgs {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant.
    #[arg(long)]
    tenant: TenantId,
}

/// Runs `portcullis promote`.
pub fn promote(args: PromoteArgs) -> Result<Exit> {
    let trusted = args.keys.trusted()?;
    let signer = input::signer(args.sign_key.as_deref(), trusted.as_ref())?;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let published = runtime.block_on(portcullis_gate::publish::promote(
        &store,
        &args.tenant,
        trusted.as_ref(),
        signer.as_ref(),
    ))?;
    println!(
        "promoted the canary of {}: revision {} is live for every user ({})",
        args.tenant,
        published.revision,
        input::signed_by(signer.as_ref())
    );
    Ok(Exit::Allow)
}

/// Runs `portcullis abort`.
pub fn abort(args: AbortArgs) -> Result<Exit> {
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    match runtime.block_on(portcullis_gate::publish::abort(&store, &args.tenant))? {
        Some(revision) => println!(
            "aborted the canary of {} (revision {revision}): the live rules decide for every user",
            args.tenant
        ),
        None => println!("{} has no canary staged", args.tenant),
    }
    Ok(Exit::Allow)
}
