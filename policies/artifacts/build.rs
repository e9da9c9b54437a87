//! Builds every policy in `policies/` into a WebAssembly component.
//!
//! Rust policies are compiled for `wasm32-unknown-unknown` with the `policy` profile (fat
//! LTO: their crates are `cdylib` alone, since cargo skips LTO for one that is also an
//! `rlib`) and a 32 KiB stack (a small policy's whole memory is then one 64 KiB page), then
//! wrapped into components by `wit-component` (no WASI imports at all). `wasi-std` is
//! compiled for `wasm32-wasip2`, whose linker emits a component that imports WASI: that is
//! the point of it. The `.wat` guests are assembled (the `.core.wat` ones embedded with
//! their world's WIT and wrapped like a compiled policy), and a truncated component stands
//! for malformed bytes. `policies/draft` targets a draft world measured by the contract
//! benchmark.
//! Everything lands in `OUT_DIR`; `artifacts.rs` lists the paths.
//!
//! The nested `cargo` uses its own target directory (`target/policies`) so it never waits
//! on the outer build's lock, and is incremental across builds.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Policies built for wasm32-unknown-unknown: (crate name, artifact name).
const POLICIES: &[&str] = &[
    "allow-all",
    "suspended-users",
    "email-domain",
    "ip-allowlist",
    "signin-hours",
    "risk-score",
    "tenant-claims",
    "new-device",
    "subscription",
    "lockout",
    "velocity",
    "risk-api",
    "domain-network",
];
/// Hand-written core modules, each wrapped with the WIT of the `policy` world it targets like
/// a compiled policy: (artifact name, source, WIT directory), paths from the repository root.
const CORE_WAT: &[(&str, &str, &str)] = &[
    (
        "multi-memory",
        "policies/adversarial/multi-memory.core.wat",
        "sdk/wit",
    ),
    (
        "contract-allow-all",
        "policies/draft/contract-allow-all.core.wat",
        "sdk/wit",
    ),
    (
        "draft-allow-all",
        "policies/draft/allow-all.core.wat",
        "policies/draft/wit",
    ),
];
/// Policies against the draft one-core-instance world (`policies/draft`), for the contract
/// benchmark: the artifact `draft-NAME` from the crate `policies/draft/NAME`.
const DRAFT: &[&str] = &["domain-network"];
const ADVERSARIAL: &[&str] = &[
    "infinite-loop",
    "memory-bomb",
    "deep-recursion",
    "huge-verdict",
    "reserved-claim",
    "panics",
    "leak-probe",
    "request-echo",
    "token-forger",
    "counter-asker",
];

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("../..").canonicalize()?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let target_dir = env::var_os("PORTCULLIS_POLICY_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/policies"));
    for dir in ["sdk", "policies"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=PORTCULLIS_POLICY_TARGET_DIR");

    let mut listing = String::new();
    let mut all = Vec::new();

    // (artifact name, crate) of every Rust guest built for wasm32-unknown-unknown.
    let crates: Vec<(String, String)> = POLICIES
        .iter()
        .map(|p| (p.to_string(), format!("policy-{p}")))
        .chain(
            ADVERSARIAL
                .iter()
                .map(|p| (p.to_string(), format!("adversarial-{p}"))),
        )
        .chain(
            DRAFT
                .iter()
                .map(|p| (format!("draft-{p}"), format!("draft-{p}"))),
        )
        .collect();
    let packages: Vec<String> = crates.iter().map(|(_, krate)| krate.clone()).collect();
    cargo_build(&root, &target_dir, "wasm32-unknown-unknown", &packages)?;
    cargo_build(
        &root,
        &target_dir,
        "wasm32-wasip2",
        &["adversarial-wasi-std".to_owned()],
    )?;

    let wasm_dir = |target: &str| target_dir.join(target).join("policy");
    for (name, krate) in &crates {
        let name = name.as_str();
        let file = format!("{}.wasm", krate.replace('-', "_"));
        let core = fs::read(wasm_dir("wasm32-unknown-unknown").join(file))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&core)?
            .validate(true)
            .encode()?;
        let path = write(&out, name, &component)?;
        entry(
            &mut listing,
            &mut all,
            name,
            &path,
            POLICIES.contains(&name),
        );
    }

    let wasi = fs::read(wasm_dir("wasm32-wasip2").join("adversarial_wasi_std.wasm"))?;
    let path = write(&out, "wasi-std", &wasi)?;
    entry(&mut listing, &mut all, "wasi-std", &path, false);

    // Core modules written by hand: their world's WIT is embedded and the module wrapped
    // like a compiled policy.
    for (name, source, wit) in CORE_WAT {
        let mut resolve = wit_parser::Resolve::default();
        let (package, _) = resolve.push_dir(root.join(wit))?;
        let world = resolve.select_world(&[package], Some("policy"))?;
        let mut core = wat::parse_file(root.join(source))?;
        wit_component::embed_component_metadata(
            &mut core,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )?;
        let component = wit_component::ComponentEncoder::default()
            .module(&core)?
            .validate(true)
            .encode()?;
        let path = write(&out, name, &component)?;
        entry(&mut listing, &mut all, name, &path, false);
    }

    for name in ["unknown-import", "core-module", "wrong-signature"] {
        let source = root.join(format!("policies/adversarial/{name}.wat"));
        let bytes = wat::parse_file(&source)?;
        let path = write(&out, name, &bytes)?;
        entry(&mut listing, &mut all, name, &path, false);
    }

    // Malformed bytes: a real component cut short in the middle of its sections.
    let whole = fs::read(out.join("allow-all.wasm"))?;
    let cut = whole.get(..whole.len() / 3).ok_or("component too small")?;
    let path = write(&out, "malformed", cut)?;
    entry(&mut listing, &mut all, "malformed", &path, false);

    writeln!(
        listing,
        "/// Every artifact: (name, path, is an example policy)."
    )?;
    writeln!(listing, "pub const ALL: &[(&str, &str, bool)] = &[")?;
    for (name, path, example) in &all {
        writeln!(listing, "    ({name:?}, {path:?}, {example}),")?;
    }
    writeln!(listing, "];")?;
    fs::write(out.join("artifacts.rs"), listing)?;
    Ok(())
}

fn cargo_build(root: &Path, target_dir: &Path, target: &str, packages: &[String]) -> Result<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--quiet",
            "--profile",
            "policy",
            "--target",
            target,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Clink-arg=-zstack-size=32768")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    for package in packages {
        cmd.args(["-p", package]);
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("building policies for {target} failed: {status}").into());
    }
    Ok(())
}

fn write(out: &Path, name: &str, bytes: &[u8]) -> Result<String> {
    let path = out.join(format!("{name}.wasm"));
    fs::write(&path, bytes)?;
    Ok(path.display().to_string())
}

fn entry(
    listing: &mut String,
    all: &mut Vec<(String, String, bool)>,
    name: &str,
    path: &str,
    example: bool,
) {
    let constant = name.replace('-', "_").to_uppercase();
    let _ = writeln!(listing, "/// The `{name}` component.");
    let _ = writeln!(listing, "pub const {constant}: &str = {path:?};");
    all.push((name.to_owned(), path.to_owned(), example));
}
