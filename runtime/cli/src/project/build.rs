//! Building a project into a component with its language's tools — cargo and
//! `wit-component` (Rust), tsc, rolldown and `jco componentize -d all` (TypeScript),
//! `componentize-py --stub-wasi` (Python) — then checking it as publishing will: loaded by
//! the engine (nothing imported beyond the contract, the exports it needs, the size limit)
//! and described.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_engine::contract::Metadata;
use portcullis_engine::{Budget, CompiledPolicy, Engine, Language, LoadError};

use super::{Lang, Project};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A tool the language needs is not installed.
    #[error("`{tool}` is not installed ({why}): {install}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// What starting it said.
        why: String,
        /// How to install it.
        install: &'static str,
    },
    /// A step failed (its own output says why, above).
    #[error("{step} failed ({status}); its output is above")]
    StepFailed {
        /// The step.
        step: String,
        /// How it exited.
        status: String,
    },
    /// Cargo built no WebAssembly library.
    #[error("cargo built no .wasm library: the project needs a library target (`src/lib.rs`)")]
    NoCargoArtifact,
    /// `wit-component` could not wrap the module.
    #[error("wrapping the module into a component: {0}")]
    Wrap(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The component is not a policy the engine accepts.
    #[error("`{path}` does not meet the contract: {source}")]
    Contract {
        /// The component.
        path: PathBuf,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// Its `describe` failed.
    #[error("`{path}`: describe failed: {reason}")]
    Describe {
        /// The component.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A built and checked component.
#[derive(Debug)]
pub struct Built {
    /// Where it was written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: usize,
    /// The language the engine reads from it.
    pub language: Language,
    /// What it says of itself.
    pub metadata: Metadata,
    /// Running the language's tools.
    pub build_time: Duration,
    /// Compiling it to native code (what a cold start without an artifact pays).
    pub compile_time: Duration,
    /// The compiled component.
    pub policy: Arc<CompiledPolicy>,
}

/// Builds `project` into `NAME.wasm` and checks it with `engine`.
pub fn build(project: &Project, engine: &Engine) -> Result<Built, BuildError> {
    let path = project.module();
    let started = Instant::now();
    match project.lang {
        Lang::Rust => rust(project, &path)?,
        Lang::Ts => typescript(project, &path)?,
        Lang::Python => python(project, &path)?,
    }
    let build_time = started.elapsed();
    let bytes = std::fs::read(&path).map_err(|source| BuildError::Io {
        path: path.clone(),
        source,
    })?;
    let started = Instant::now();
    let policy = super::cache::load(engine, &project.dir, &bytes).map_err(|source| {
        BuildError::Contract {
            path: path.clone(),
            source,
        }
    })?;
    let compile_time = started.elapsed();
    let metadata = engine
        .describe(&policy, &Budget::off_path())
        .map_err(|failure| BuildError::Describe {
            path: path.clone(),
            reason: failure.to_string(),
        })?;
    Ok(Built {
        size: bytes.len(),
        language: Language::of(&bytes),
        path,
        metadata,
        build_time,
        compile_time,
        policy,
    })
}

/// Runs one step in the project's directory and returns its standard output; its standard
/// error goes to the terminal, and so does its standard output when it fails (tsc reports
/// type errors there).
fn step(
    project: &Project,
    what: &str,
    mut command: Command,
    install: &'static str,
) -> Result<Vec<u8>, BuildError> {
    let tool = command.get_program().to_string_lossy().into_owned();
    let output = command
        .current_dir(&project.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BuildError::ToolMissing {
            tool,
            why: e.to_string(),
            install,
        })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
    Err(BuildError::StepFailed {
        step: what.to_owned(),
        status: output.status.to_string(),
    })
}

/// Rust: the library built for wasm32-unknown-unknown (release, a 32 KiB stack) as a
/// cdylib alone, wrapped into a component (the contract's types are embedded by
/// `wit-bindgen`). `cargo rustc --crate-type cdylib`, not `cargo build`: cargo skips the
/// profile's `lto` for a library that is also an `rlib` (as the template's is, for native
/// tests), and without LTO a policy carries code it never calls (`domain-network`: 82 KB of
/// code instead of 52 KB, float formatting included).
fn rust(project: &Project, out: &Path) -> Result<(), BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    command
        .args(["rustc", "--lib", "--crate-type", "cdylib", "--release"])
        .args(["--target", "wasm32-unknown-unknown"])
        .args(["--message-format", "json-render-diagnostics"])
        .env("CARGO_ENCODED_RUSTFLAGS", "-Clink-arg=-zstack-size=32768")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    let install =
        "install Rust with rustup (https://rustup.rs); rust-toolchain.toml adds the wasm32 target";
    let messages = step(project, "cargo rustc", command, install)?;
    let core = cargo_wasm(&messages).ok_or(BuildError::NoCargoArtifact)?;
    let bytes = std::fs::read(&core).map_err(|source| BuildError::Io {
        path: core.clone(),
        source,
    })?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| BuildError::Wrap(format!("{e:#}")))?;
    std::fs::write(out, component).map_err(|source| BuildError::Io {
        path: out.to_owned(),
        source,
    })
}

/// The `.wasm` library among cargo's JSON messages (the last one built).
fn cargo_wasm(stdout: &[u8]) -> Option<PathBuf> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message.get("reason").and_then(|r| r.as_str()) == Some("compiler-artifact")
        })
        .filter_map(|message| {
            message
                .get("filenames")?
                .as_array()?
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
        })
        .next_back()
}

/// TypeScript: type checked (tsc), bundled with the SDK (rolldown), then `jco componentize
/// -d all`: no WASI, clocks or randomness, so nothing is imported beyond the contract.
fn typescript(project: &Project, out: &Path) -> Result<(), BuildError> {
    let install = "run `npm install` in the project (the tools are its devDependencies)";
    let bin = |tool: &str| project.dir.join("node_modules/.bin").join(tool);
    if !bin("jco").exists() {
        return Err(BuildError::ToolMissing {
            tool: "jco".into(),
            why: "node_modules/.bin/jco is missing".into(),
            install,
        });
    }
    let entry = ["app.ts", "app.js"]
        .into_iter()
        .find(|f| project.dir.join(f).is_file())
        .unwrap_or("app.ts");
    if project.dir.join("tsconfig.json").is_file() && bin("tsc").exists() {
        let mut tsc = Command::new(bin("tsc"));
        tsc.args(["-p", "."]);
        step(project, "type checking (tsc)", tsc, install)?;
    }
    let mut bundle = Command::new(bin("rolldown"));
    bundle.args([
        entry,
        "--file",
        "build/app.js",
        "--format",
        "esm",
        "--logLevel",
        "warn",
    ]);
    step(project, "bundling (rolldown)", bundle, install)?;
    let mut componentize = Command::new(bin("jco"));
    componentize
        .args(["componentize", "build/app.js", "--wit", "wit"])
        .args(["--world-name", "policy", "-d", "all", "--out"])
        .arg(absolute(out));
    step(project, "jco componentize", componentize, install).map(drop)
}

/// Python: `componentize-py --stub-wasi` over the project (`app.py` and the vendored
/// `portcullis` package): nothing imported beyond the contract.
fn python(project: &Project, out: &Path) -> Result<(), BuildError> {
    let mut command = Command::new("componentize-py");
    command
        .args(["-d", "wit", "-w", "policy", "componentize", "--stub-wasi"])
        .args(["-p", ".", "app", "-o"])
        .arg(absolute(out));
    step(
        project,
        "componentize-py",
        command,
        "pip install componentize-py==0.25.1",
    )
    .map(drop)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasm_library_is_found_among_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","filenames":["/t/libserde.rlib"]}"#,
            "\n",
            r#"{"reason":"compiler-artifact","filenames":["/t/w/release/my_rule.wasm","/t/w/release/libmy_rule.rlib"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            cargo_wasm(messages.as_bytes()),
            Some(PathBuf::from("/t/w/release/my_rule.wasm"))
        );
        assert_eq!(cargo_wasm(b"not json"), None);
    }
}
