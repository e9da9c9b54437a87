//! `portcullis schema`: the manifest's JSON Schema.

use anyhow::Result;

use crate::Exit;

/// Runs `portcullis schema`.
pub fn run() -> Result<Exit> {
    println!("{:#}", portcullis_gate::manifest::Manifest::schema());
    Ok(Exit::Allow)
}
