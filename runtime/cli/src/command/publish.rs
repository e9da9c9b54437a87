//! `portcullis publish`: a tenant's rules checked, uploaded content-addressed, signed and
//! published under the revision check (the work is `portcullis_gate::publish`).
//!
//! `publish` reads a manifest whose `module` fields may name `.wasm` files instead of
//! digests; its `revision`, `tenant`, `previous` and `signature` are ignored (the store's
//! current revision + 1 is used, and the manifest is signed anew). A module with a test
//! file beside it (`x.wasm` → `x.tests.json`) must pass its tests first, and every policy
//! must declare the triggers its rule lists. When trusted keys are configured
//! (`--trusted-keys` or `PORTCULLIS_TRUSTED_KEYS`, as the deployment has them), a publish
//! without a trusted `--sign-key` is refused before anything is written. An enforced rule
//! that can deny but runs only in pre-authentication is warned about (`--strict`: refused),
//! naming the paths to a token that bypass it. `--canary PERCENT` stages the rules for a
//! share of the tenant's users instead (`portcullis promote`, `portcullis abort`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use portcullis_aws::StoreUrl;
use portcullis_engine::{CompiledPolicy, Language};
use portcullis_gate::TenantId;
use portcullis_gate::manifest::{CanaryTerms, Manifest, RuleEntry};
use portcullis_gate::publish::{
    Module, PublishError, PublishOptions, check_compiled, check_precompiling, run_tests,
    with_default_budget,
};

use crate::project::cache;
use crate::{Exit, input};

/// Arguments of `portcullis publish`.
#[derive(clap::Args)]
pub struct Args {
    /// The store: a directory, file://DIR or s3://bucket/prefix.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant (`_global` for rules that run for every tenant).
    #[arg(long)]
    tenant: TenantId,
    /// The manifest to publish; `module` may be a path to a .wasm file.
    #[arg(long)]
    manifest: PathBuf,
    /// Require precompiled artifacts for this machine's engine build, sealed with the
    /// deployment's artifact key (--artifact-key). With a key, every module is precompiled
    /// anyway; JavaScript and Python modules always need one.
    #[arg(long, conflicts_with = "no_precompile")]
    precompile: bool,
    /// Publish JavaScript or Python modules without an artifact key: cold starts then
    /// compile them, taking seconds (they fail closed while they do).
    #[arg(long)]
    no_precompile: bool,
    /// The publisher's signing key (`portcullis keygen --id ID`): the manifest is signed.
    #[arg(long)]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    keys: input::Keys,
    /// Refuse unless the tenant is at this revision (0: no manifest yet). Without it, the
    /// revision read just before writing is expected; a publish in between still loses.
    #[arg(long)]
    expect_revision: Option<u64>,
    /// Refuse, instead of warning about, an enforced rule that can deny but runs only in
    /// pre-authentication (refreshes and first federated sign-ins never pass there).
    #[arg(long)]
    strict: bool,
    /// Replay these events (a directory of Cognito events) through the current rules and
    /// this manifest first, and refuse the publish when the gate trips (`portcullis replay`).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// With --replay: what refuses the publish (default: a sign-in newly blocked).
    #[arg(long, value_enum, requires = "replay")]
    fail_on: Option<super::replay::FailOn>,
    /// With --replay: refuse when more than N sign-ins change.
    #[arg(long, requires = "replay")]
    max_changed: Option<usize>,
    /// Stage the rules as a canary for this percentage of the tenant's users (1–100, a
    /// stable hash of tenant and user) instead of making them live; the rest get them in
    /// shadow. `promote` makes them live, `abort` ends the canary.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    canary: Option<u8>,
}

/// Runs `portcullis publish`.
pub fn run(args: Args) -> Result<Exit> {
    let trusted = args.keys.trusted()?;
    let signer = input::signer(args.sign_key.as_deref(), trusted.as_ref())?;
    let manifest = Manifest::parse(&input::read(&args.manifest)?)
        .with_context(|| format!("`{}`", args.manifest.display()))?;
    let base = args.manifest.parent().unwrap_or(Path::new("."));
    let engine = input::engine()?;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let artifact_key = match (args.precompile, args.no_precompile) {
        (true, _) => Some(runtime.block_on(args.keys.artifact())?.context(
            "--precompile seals artifacts with the deployment's artifact key: pass --artifact-key (or set PORTCULLIS_ARTIFACT_KEY)",
        )?),
        (false, false) => runtime.block_on(args.keys.artifact())?,
        (false, true) => None,
    };
    let options = PublishOptions {
        precompile: artifact_key.as_ref(),
        compile_on_cold_start: args.no_precompile,
        expect_revision: args.expect_revision,
        strict: args.strict,
        canary: args.canary.map(CanaryTerms::new).transpose()?,
    };
    if !args.strict {
        for bypass in portcullis_gate::publish::bypasses(&manifest.rules) {
            eprintln!("warning: {bypass}");
        }
    }
    let manifest_for_replay = manifest.clone();
    let mut rules = Vec::with_capacity(manifest.rules.len());
    for entry in manifest.rules {
        let module = if entry.module.ends_with(".wasm") {
            let path = base.join(&entry.module);
            let bytes = input::read(&path)?;
            let language = Language::of(&bytes);
            check_precompiling(&entry, language, &options)?;
            // From the project's compile cache when the manifest sits in a project.
            let policy =
                cache::load(&engine, base, &bytes).map_err(|source| PublishError::Policy {
                    rule: entry.name.clone(),
                    module: entry.module.clone(),
                    source,
                })?;
            check_compiled(&engine, &entry, &policy)?;
            test(&engine, &entry, &path, &policy, language)?;
            Module::Checked { bytes, policy }
        } else {
            Module::Stored
        };
        rules.push((entry, module));
    }
    if let Some(events) = &args.replay {
        super::replay::gate_publish(
            &store,
            &args.tenant,
            trusted.as_ref(),
            &manifest_for_replay,
            Some(base),
            &super::replay::PublishGate {
                events: events.clone(),
                fail_on: args.fail_on,
                max_changed: args.max_changed,
            },
        )?;
    }
    let published = runtime.block_on(portcullis_gate::publish::publish(
        &store,
        &engine,
        &args.tenant,
        rules,
        signer.as_ref(),
        options,
    ))?;
    println!(
        "{} {} revision {} ({} rules){}; {}",
        match published.canary {
            Some(terms) => format!("staged a {}% canary of", terms.percent),
            None => "published".to_owned(),
        },
        args.tenant,
        published.revision,
        published.rules.len(),
        if artifact_key.is_some() {
            format!("; precompiled for engine {}", engine.compat())
        } else {
            String::new()
        },
        input::signed_by(signer.as_ref())
    );
    Ok(Exit::Allow)
}

/// Runs the module's test cases (`x.tests.json` beside `x.wasm`), if it has any, under the
/// budget the rule will be published with.
fn test(
    engine: &portcullis_engine::Engine,
    entry: &RuleEntry,
    path: &Path,
    policy: &Arc<CompiledPolicy>,
    language: Language,
) -> Result<()> {
    let tests_path = path.with_extension("tests.json");
    if !tests_path.exists() {
        return Ok(());
    }
    let cases = super::test::read_cases(&tests_path)?;
    let mut entry = entry.clone();
    with_default_budget(&mut entry, language);
    run_tests(engine, &entry, policy, &cases)
        .with_context(|| format!("in `{}`", tests_path.display()))?;
    eprintln!("rule `{}`: {} tests passed", entry.name, cases.len());
    Ok(())
}
