//! `portcullis keygen`: a publisher's Ed25519 signing key pair, or a deployment's artifact
//! key. Secret files are created with mode 0600 and never overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use portcullis_engine::ArtifactKey;
use portcullis_gate::trust::ManifestSigner;

use crate::Exit;

/// Arguments of `portcullis keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// The key id of a new signing key pair (as `PORTCULLIS_TRUSTED_KEYS` will name it).
    #[arg(
        long,
        required_unless_present = "artifact",
        conflicts_with = "artifact"
    )]
    id: Option<String>,
    /// Make an artifact key (the deployment's HMAC key for precompiled code) instead.
    #[arg(long)]
    artifact: bool,
    /// For a key pair: the directory for ID.key (secret) and ID.pub. For an artifact key:
    /// the file.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `portcullis keygen`.
pub fn run(args: Args) -> Result<Exit> {
    if args.artifact {
        let text = ArtifactKey::generate_text().context("no randomness for a new key")?;
        write_new(&args.out, &format!("{text}\n"), true)?;
        println!("artifact key written to {}", args.out.display());
        return Ok(Exit::Allow);
    }
    let Some(id) = args.id else {
        bail!("give --id for a signing key pair, or --artifact");
    };
    let signer = ManifestSigner::generate(&id)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating `{}`", args.out.display()))?;
    let secret = args.out.join(format!("{id}.key"));
    let public = args.out.join(format!("{id}.pub"));
    write_new(&secret, &format!("{}\n", signer.secret_line()), true)?;
    write_new(&public, &format!("{}\n", signer.public_line()), false)?;
    eprintln!(
        "signing key `{id}`: {} (secret: sign with it, keep it with the publishers), {} (public: give it to the deployment)",
        secret.display(),
        public.display()
    );
    println!("{}", signer.public_line());
    Ok(Exit::Allow)
}

/// Creates `path` with `text`, refusing to overwrite; secrets get mode 0600.
pub fn write_new(path: &Path, text: &str, secret: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating `{}` (an existing key is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing `{}`", path.display()))
}
