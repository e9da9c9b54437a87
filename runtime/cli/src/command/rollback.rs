//! `portcullis rollback`: the rules of an earlier revision made current again, as a new
//! revision signed anew (with trusted keys, only rules a trusted key signed once).

use std::path::PathBuf;

use anyhow::Result;
use portcullis_aws::StoreUrl;
use portcullis_gate::TenantId;

use crate::{Exit, input};

/// Arguments of `portcullis rollback`.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant.
    #[arg(long)]
    tenant: TenantId,
    /// The revision whose rules become current again (as a new revision).
    #[arg(long)]
    to: u64,
    /// The publisher's signing key: the new revision is signed.
    #[arg(long)]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    keys: input::Keys,
}

/// Runs `portcullis rollback`.
pub fn run(args: Args) -> Result<Exit> {
    let trusted = args.keys.trusted()?;
    let signer = input::signer(args.sign_key.as_deref(), trusted.as_ref())?;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let published = runtime.block_on(portcullis_gate::publish::rollback(
        &store,
        &args.tenant,
        args.to,
        trusted.as_ref(),
        signer.as_ref(),
    ))?;
    println!(
        "rolled {} back to the rules of revision {}: now revision {} ({})",
        args.tenant,
        args.to,
        published.revision,
        input::signed_by(signer.as_ref())
    );
    Ok(Exit::Allow)
}
