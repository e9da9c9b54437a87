//! `portcullis new NAME --lang rust|ts|python`: a policy project (see
//! [`crate::project::scaffold`]) in `./NAME`, or `--dir`, with an artifact key for its
//! local store.

use std::path::PathBuf;

use anyhow::{Context, Result};
use portcullis_engine::ArtifactKey;

use crate::Exit;
use crate::project::{Lang, scaffold};

/// Arguments of `portcullis new`.
#[derive(clap::Args)]
pub struct Args {
    /// The policy's name: lower-case letters, digits and `-` (it names `NAME.wasm`).
    name: String,
    /// The language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to make it (default `./NAME`); it must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Runs `portcullis new`.
pub fn run(args: Args) -> Result<Exit> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let written = scaffold::write(&dir, &args.name, args.lang)?;
    // The local store's artifact key: `publish` seals precompiled rules with it.
    let key = ArtifactKey::generate_text().context("no randomness for a new key")?;
    super::keygen::write_new(&dir.join("artifact.key"), &format!("{key}\n"), true)?;
    println!(
        "made `{}`: a {} policy ({} files); next: cd {} and follow README.md",
        dir.display(),
        args.lang.name(),
        written.len() + 1,
        dir.display()
    );
    Ok(Exit::Allow)
}
