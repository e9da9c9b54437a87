//! `portcullis build [DIR]`: a policy project (Rust, TypeScript or Python) built into
//! `NAME.wasm` with its language's tools and checked against the contract as publishing
//! checks it (see [`crate::project::build`]).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use portcullis_engine::{CompiledPolicy, Engine};

use crate::project::{Project, build};
use crate::{Exit, input};

/// Arguments of `portcullis build`.
#[derive(clap::Args)]
pub struct Args {
    /// The project's directory (default: the current one).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Runs `portcullis build`.
pub fn run(args: Args) -> Result<Exit> {
    let project = Project::find(&args.dir)?;
    let engine = input::engine()?;
    Ok(match build_and_report(&project, &engine)? {
        Ok(_) => Exit::Allow,
        Err(exit) => exit,
    })
}

/// Builds `project`, telling standard error what came out, and returns the compiled component — or the
/// exit code when it does not meet the contract ([`Exit::RuleFailed`], as `eval` has it).
pub fn build_and_report(
    project: &Project,
    engine: &Engine,
) -> Result<Result<Arc<CompiledPolicy>, Exit>> {
    eprintln!("building {} ({})", project.name, project.lang.name());
    match build::build(project, engine) {
        Ok(built) => {
            let triggers: Vec<&str> = built.metadata.triggers.iter().map(|t| t.as_str()).collect();
            eprintln!(
                "built {}: {} component, {:.1} MB, imports nothing beyond the contract; `{}` for {} (build {:.1} s, compile {:.2} s)",
                built.path.display(),
                built.language,
                built.size as f64 / 1e6,
                built.metadata.name,
                triggers.join(", "),
                built.build_time.as_secs_f64(),
                built.compile_time.as_secs_f64(),
            );
            Ok(Ok(built.policy))
        }
        Err(error @ (build::BuildError::Contract { .. } | build::BuildError::Describe { .. })) => {
            eprintln!("error: {error}");
            Ok(Err(Exit::RuleFailed))
        }
        Err(error) => Err(error.into()),
    }
}
