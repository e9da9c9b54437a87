//! What the CLI's end-to-end tests share: running the real binary without the deployment's
//! keys from the environment, and showing what it printed.

#![expect(clippy::panic, reason = "tests: a failed step is a failed test")]

use std::process::{Command, Output};

/// Runs `portcullis ARGS` with `env` set and no trusted or artifact key inherited.
pub fn portcullis(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .args(args)
        .env_remove("PORTCULLIS_TRUSTED_KEYS")
        .env_remove("PORTCULLIS_ARTIFACT_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    match command.output() {
        Ok(out) => out,
        Err(e) => panic!("run portcullis: {e}"),
    }
}

/// The exit code and both streams, for an assertion's message.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
