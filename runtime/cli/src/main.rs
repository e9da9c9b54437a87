//! `portcullis`: run, test and inspect Portcullis policies with the production engine.
//!
//! Exit codes: 0 allowed (or verified), 2 denied or blocked (or, for `verify`, refused),
//! 3 the rule failed (or could not be loaded), 1 usage or input error.

mod data;
mod eval;
mod handle;
mod input;
mod keygen;
mod publish;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Portcullis: sign-in policies for Amazon Cognito, as sandboxed WebAssembly.
#[derive(Parser)]
#[command(name = "portcullis", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one policy on one Cognito event with production limits.
    Eval(eval::Args),
    /// Run the Lambda's handler locally on one event against a store.
    Handle(handle::Args),
    /// Publish a tenant's rules: modules by digest, history, conditional manifest update.
    Publish(publish::Args),
    /// Make an earlier revision's rules current again (as a new revision).
    Rollback(publish::RollbackArgs),
    /// Show each tenant's revision, rules, digests and modes.
    Status(publish::StatusArgs),
    /// Show what changed between two revisions of a tenant.
    Diff(publish::DiffArgs),
    /// Check a store against the deployment's keys: signatures, history, modules, artifacts.
    Verify(verify::Args),
    /// Make a publisher's signing key pair, or a deployment's artifact key.
    Keygen(keygen::Args),
    /// Manage rule data in DynamoDB.
    Data(data::Args),
    /// Show a user's sign-in activity.
    Activity(data::ActivityArgs),
    /// Print the manifest JSON Schema.
    Schema,
}

/// The process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Allowed.
    Allow = 0,
    /// Usage or input error.
    Input = 1,
    /// Denied.
    Deny = 2,
    /// The rule failed or could not be loaded.
    RuleFailed = 3,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Input as u8 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Handle(args) => handle::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Rollback(args) => publish::rollback(args),
        Command::Status(args) => publish::status(args),
        Command::Diff(args) => publish::diff_cmd(args),
        Command::Verify(args) => verify::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Data(args) => data::run(args),
        Command::Activity(args) => data::activity(args),
        Command::Schema => {
            println!("{:#}", portcullis_engine::manifest::Manifest::schema());
            Ok(Exit::Allow)
        }
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(Exit::Input as u8)
        }
    }
}
