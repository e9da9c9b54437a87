//! The commands, one file each: arguments (clap) and a `run` that returns the [`Exit`].

use clap::Subcommand;

use crate::Exit;

pub mod activity;
pub mod bench;
pub mod build;
pub mod canary;
pub mod context;
pub mod data;
pub mod diff;
pub mod eval;
pub mod handle;
pub mod keygen;
pub mod new;
pub mod publish;
pub mod replay;
pub mod rollback;
pub mod schema;
pub mod stats;
pub mod status;
pub mod test;
pub mod verify;

/// The `portcullis` commands.
#[derive(Subcommand)]
pub enum Command {
    /// Make a policy project: the rule, unit tests, events, test cases, a manifest.
    New(new::Args),
    /// Build a policy project into a component and check it against the contract.
    Build(build::Args),
    /// Run one policy on one Cognito event with production limits.
    Eval(eval::Args),
    /// Run a policy's test cases (`x.tests.json`) through the engine: pass/fail, fuel, time.
    Test(test::Args),
    /// Time one policy on one event, a fresh instance per evaluation: median, p99, fuel.
    Bench(bench::Args),
    /// Run the Lambda's handler locally on one event against a store.
    Handle(handle::Args),
    /// Publish a tenant's rules: modules by digest, history, conditional manifest update.
    Publish(publish::Args),
    /// Make an earlier revision's rules current again (as a new revision); ends a canary.
    Rollback(rollback::Args),
    /// Make a tenant's canary (`publish --canary`) live for every user.
    Promote(canary::PromoteArgs),
    /// End a tenant's canary: its users go back to the live rules.
    Abort(canary::AbortArgs),
    /// Run recorded events through two rule sets of a tenant and report what decides differently.
    Replay(replay::Args),
    /// Show each tenant's revision, rules, digests and modes, and its canary.
    Status(status::Args),
    /// Summarise a decision log per tenant and rule (decisions, denies, failures, timing).
    Stats(stats::Args),
    /// Show what changed between two revisions of a tenant.
    Diff(diff::Args),
    /// Check a store against the deployment's keys: signatures, history, modules, artifacts.
    Verify(verify::Args),
    /// Make a publisher's signing key pair, or a deployment's artifact key.
    Keygen(keygen::Args),
    /// Sign a trusted context envelope as an app's backend does (for ClientMetadata).
    Context(context::Args),
    /// Manage rule data in DynamoDB.
    Data(data::Args),
    /// Show a user's sign-in activity.
    Activity(activity::Args),
    /// Print the manifest JSON Schema.
    Schema,
}

impl Command {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<Exit> {
        match self {
            Command::New(args) => new::run(args),
            Command::Build(args) => build::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Test(args) => test::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Handle(args) => handle::run(args),
            Command::Publish(args) => publish::run(args),
            Command::Rollback(args) => rollback::run(args),
            Command::Promote(args) => canary::promote(args),
            Command::Abort(args) => canary::abort(args),
            Command::Replay(args) => replay::run(args),
            Command::Status(args) => status::run(args),
            Command::Stats(args) => stats::run(args),
            Command::Diff(args) => diff::run(args),
            Command::Verify(args) => verify::run(args),
            Command::Keygen(args) => keygen::run(args),
            Command::Context(args) => context::run(args),
            Command::Data(args) => data::run(args),
            Command::Activity(args) => activity::run(args),
            Command::Schema => schema::run(),
        }
    }
}
