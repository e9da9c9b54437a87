//! `portcullis build [DIR]`: a policy project (Rust, TypeScript or Python) built into
//! `NAME.wasm` with its language's tools and checked against the contract as publishing
//! checks it (see [`crate::project::build`]).

use std::path::PathBuf;

use anyhow::Result;

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
    build_and_report(&project, &engine)
}

/// Builds `project`, printing what came out; the exit code says whether it meets the
/// contract (a component that does not is [`Exit::RuleFailed`], as `eval` has it).
pub fn build_and_report(project: &Project, engine: &portcullis_engine::Engine) -> Result<Exit> {
    eprintln!("building {} ({})", project.name, project.lang.name());
    match build::build(project, engine) {
        Ok(built) => {
            let triggers: Vec<&str> = built.metadata.triggers.iter().map(|t| t.as_str()).collect();
            println!(
                "built {}: {} component, {:.1} MB, imports nothing beyond the contract; `{}` for {} (build {:.1} s, compile {:.2} s)",
                built.path.display(),
                built.language,
                built.size as f64 / 1e6,
                built.metadata.name,
                triggers.join(", "),
                built.build_time.as_secs_f64(),
                built.compile_time.as_secs_f64(),
            );
            Ok(Exit::Allow)
        }
        Err(error @ (build::BuildError::Contract { .. } | build::BuildError::Describe { .. })) => {
            eprintln!("error: {error}");
            Ok(Exit::RuleFailed)
        }
        Err(error) => Err(error.into()),
    }
}
