//! `portcullis`: run, test, publish and inspect Portcullis policies with the production
//! engine and gate. Each command is one file under `command/`; [`exit`] maps every result
//! to the documented exit code.

mod command;
mod exit;
mod input;
mod project;

use std::process::ExitCode;

use clap::Parser;

pub use exit::Exit;

/// Portcullis: sign-in policies for Amazon Cognito, as sandboxed WebAssembly.
#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about,
    propagate_version = true,
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: command::Command,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Input as u8 } else { 0 };
            // Printing the usage error can only fail on a closed stderr: nothing to do.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command.run() {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::of_error(&e) as u8)
        }
    }
}
