//! `portcullis publish`: validates a tenant's rules and publishes them to a local store —
//! every module checked against the contract and stored under its digest, the manifest
//! written to history and then made current, refused if someone published in between.
//!
//! The input is a manifest whose `module` fields may name `.wasm` files instead of digests;
//! its `revision` is ignored (the store's current revision + 1 is used).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use portcullis_engine::manifest::Manifest;
use portcullis_engine::store::{DirStore, TenantId};
use portcullis_engine::{Budget, Engine, EngineConfig};

use crate::{Exit, input};

/// Arguments of `portcullis publish`.
#[derive(clap::Args)]
pub struct Args {
    /// The local store directory.
    #[arg(long)]
    store: PathBuf,
    /// The tenant (`_global` for rules that run for every tenant).
    #[arg(long)]
    tenant: String,
    /// The manifest to publish; `module` may be a path to a .wasm file.
    #[arg(long)]
    manifest: PathBuf,
}

/// Runs `portcullis publish`.
pub fn run(args: Args) -> Result<Exit> {
    let Some(tenant) = TenantId::new(&args.tenant) else {
        bail!(
            "`{}` is not a valid tenant id (1-128 of A-Z a-z 0-9 _ . -)",
            args.tenant
        );
    };
    let mut manifest = Manifest::parse(&input::read(&args.manifest)?)
        .with_context(|| format!("`{}`", args.manifest.display()))?;
    let base = args.manifest.parent().unwrap_or(Path::new("."));
    let store = DirStore::new(&args.store);
    let engine = Engine::new(EngineConfig {
        max_concurrent: 2,
        ..EngineConfig::default()
    })?;
    for rule in &mut manifest.rules {
        if rule.module.ends_with(".wasm") {
            let path = base.join(&rule.module);
            let bytes = input::read(&path)?;
            let policy = engine.load(&bytes).with_context(|| {
                format!(
                    "rule `{}`: `{}` is not a valid policy",
                    rule.name,
                    path.display()
                )
            })?;
            engine
                .describe(&policy, &Budget::default())
                .with_context(|| format!("rule `{}`: describe failed", rule.name))?;
            rule.module = format!("sha256:{}", store.put_module(&bytes)?);
        }
    }
    manifest.validate()?;
    let current = store.revision(&tenant)?;
    manifest.revision = current + 1;
    store.put_manifest(&tenant, &manifest, current)?;
    println!(
        "published {tenant} revision {} ({} rules)",
        manifest.revision,
        manifest.rules.len()
    );
    Ok(Exit::Allow)
}
