//! `portcullis new NAME --lang rust|ts|python`: a policy project (see
//! [`crate::project::scaffold`]) in `./NAME`, or `--dir`.

use std::path::PathBuf;

use anyhow::Result;

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
    println!(
        "made `{}`: a {} policy ({} files); next: cd {} and follow README.md",
        dir.display(),
        args.lang.name(),
        written.len(),
        dir.display()
    );
    Ok(Exit::Allow)
}
