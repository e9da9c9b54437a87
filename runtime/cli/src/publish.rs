//! The ops commands on a rule store (`file://` or `s3://` alike): `publish` (validate,
//! upload content-addressed, sign, update the manifest with a conditional write, write
//! history), `rollback`, `status` and `diff`.
//!
//! `publish` reads a manifest whose `module` fields may name `.wasm` files instead of
//! digests; its `revision`, `tenant`, `previous` and `signature` are ignored (the store's
//! current revision + 1 is used, and the manifest is signed anew). A module with a test
//! file beside it (`x.wasm` → `x.tests.json`) must pass its tests first. When trusted keys
//! are configured (`--trusted-keys` or `PORTCULLIS_TRUSTED_KEYS`, as the deployment has
//! them), a publish or rollback without a trusted `--sign-key` is refused before anything
//! is written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_aws::StoreUrl;
use portcullis_engine::chain::{DataSet, Decision, Rule, evaluate_rules};
use portcullis_engine::manifest::{Manifest, RuleChange, diff};
use portcullis_engine::store::TenantId;
use portcullis_engine::trust::ManifestSigner;
use portcullis_engine::{Budget, Engine, EngineConfig};
use serde::Deserialize;

use crate::{Exit, input};

fn tenant(id: &str) -> Result<TenantId> {
    TenantId::new(id).with_context(|| {
        format!("`{id}` is not a valid tenant id (1-128 of A-Z a-z 0-9 _ . -, not starting with .)")
    })
}

fn engine() -> Result<Engine> {
    Ok(Engine::new(EngineConfig {
        max_concurrent: 2,
        ..EngineConfig::default()
    })?)
}

/// Arguments of `portcullis publish`.
#[derive(clap::Args)]
pub struct Args {
    /// The store: a directory, file://DIR or s3://bucket/prefix.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant (`_global` for rules that run for every tenant).
    #[arg(long)]
    tenant: String,
    /// The manifest to publish; `module` may be a path to a .wasm file.
    #[arg(long)]
    manifest: PathBuf,
    /// Also store precompiled artifacts for this machine's engine build, sealed with the
    /// deployment's artifact key (--artifact-key).
    #[arg(long)]
    precompile: bool,
    /// The publisher's signing key (`portcullis keygen --id ID`): the manifest is signed.
    #[arg(long)]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    keys: input::Keys,
    /// Refuse unless the tenant is at this revision (0: no manifest yet). Without it, the
    /// revision read just before writing is expected; a publish in between still loses.
    #[arg(long)]
    expect_revision: Option<u64>,
}

/// A policy's test case, in `<module>.tests.json` (a list of these).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    /// What it checks.
    name: String,
    /// A Cognito event, inline or as a path relative to the test file.
    event: serde_json::Value,
    /// Overrides the rule's configuration from the manifest.
    #[serde(default)]
    config: Option<serde_json::Value>,
    /// `allow` or `deny`.
    expect: String,
}

/// The signing key, checked against the trusted keys before anything is written: when keys
/// are configured, a publish must be signed by one of them.
fn signer(path: Option<&Path>, keys: &input::Keys) -> Result<Option<ManifestSigner>> {
    let trusted = keys.trusted()?;
    let signer = path
        .map(|p| ManifestSigner::from_file(p).with_context(|| format!("`{}`", p.display())))
        .transpose()?;
    match (&trusted, &signer) {
        (Some(_), None) => bail!(
            "this deployment requires signed manifests (trusted keys are configured): pass --sign-key KEY; nothing was written"
        ),
        (Some(trusted), Some(signer)) if !trusted.trusts(signer) => bail!(
            "signing key `{}` is not one of the trusted keys ({}); nothing was written",
            signer.id(),
            trusted.ids().collect::<Vec<_>>().join(", ")
        ),
        _ => Ok(signer),
    }
}

fn signed_by(signer: Option<&ManifestSigner>) -> String {
    signer.map_or_else(
        || "unsigned".to_owned(),
        |s| format!("signed by `{}`", s.id()),
    )
}

/// Runs `portcullis publish`.
pub fn run(args: Args) -> Result<Exit> {
    let tenant = tenant(&args.tenant)?;
    let signer = signer(args.sign_key.as_deref(), &args.keys)?;
    let mut manifest = Manifest::parse(&input::read(&args.manifest)?)
        .with_context(|| format!("`{}`", args.manifest.display()))?;
    let base = args.manifest.parent().unwrap_or(Path::new("."));
    let engine = engine()?;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let compat = engine.compat();
    let artifact_key = match args.precompile {
        true => Some(runtime.block_on(args.keys.artifact())?.context(
            "--precompile seals artifacts with the deployment's artifact key: pass --artifact-key (or set PORTCULLIS_ARTIFACT_KEY)",
        )?),
        false => None,
    };
    for rule in &mut manifest.rules {
        let bytes = if rule.module.ends_with(".wasm") {
            let path = base.join(&rule.module);
            let bytes = input::read(&path)?;
            run_tests(&engine, rule, &path, &bytes)?;
            bytes
        } else {
            let digest = rule.module.parse()?;
            runtime.block_on(store.module(&digest))?.with_context(|| {
                format!(
                    "rule `{}`: module `{digest}` is not in the store",
                    rule.name
                )
            })?
        };
        let policy = engine.load(&bytes).with_context(|| {
            format!(
                "rule `{}`: `{}` is not a valid policy",
                rule.name, rule.module
            )
        })?;
        engine
            .describe(&policy, &Budget::default())
            .with_context(|| format!("rule `{}`: describe failed", rule.name))?;
        let digest = runtime.block_on(store.put_module(bytes))?;
        if let Some(key) = &artifact_key {
            let artifact = engine.artifact(&policy, key)?;
            runtime.block_on(store.put_compiled(&compat, &digest, artifact))?;
        }
        rule.module = format!("sha256:{digest}");
    }
    manifest.validate()?;
    let current = runtime.block_on(store.current(&tenant))?;
    let expected = args
        .expect_revision
        .unwrap_or_else(|| current.map_or(0, |c| c.manifest.revision));
    let published = runtime.block_on(store.publish_signed(
        &tenant,
        manifest.rules,
        expected,
        signer.as_ref(),
    ))?;
    println!(
        "published {tenant} revision {} ({} rules){}; {}",
        published.revision,
        published.rules.len(),
        if args.precompile {
            format!("; precompiled for engine {compat}")
        } else {
            String::new()
        },
        signed_by(signer.as_ref())
    );
    Ok(Exit::Allow)
}

/// Runs the module's test cases (`x.tests.json` beside `x.wasm`), if it has any.
fn run_tests(
    engine: &Engine,
    entry: &portcullis_engine::manifest::RuleEntry,
    path: &Path,
    bytes: &[u8],
) -> Result<()> {
    let tests_path = path.with_extension("tests.json");
    if !tests_path.exists() {
        return Ok(());
    }
    let cases: Vec<TestCase> = serde_json::from_slice(&input::read(&tests_path)?)
        .with_context(|| format!("`{}`", tests_path.display()))?;
    let dir = tests_path.parent().unwrap_or(Path::new("."));
    let policy = engine.load(bytes)?;
    let mut failures = Vec::new();
    for case in &cases {
        let event = match &case.event {
            serde_json::Value::String(file) => input::event(&dir.join(file))?,
            inline => portcullis_engine::cognito::Event::from_value(inline.clone())?,
        };
        let mut entry = entry.clone();
        entry.module = format!("sha256:{}", policy.digest());
        if let Some(config) = &case.config {
            entry.config = config.clone();
        }
        if let Some(trigger) = event.kind.trigger() {
            entry.triggers = vec![trigger.to_string()];
        }
        let spec = Manifest {
            revision: 1,
            rules: vec![entry],
            ..Manifest::default()
        }
        .validate()?
        .into_iter()
        .next()
        .context("no rule")?;
        let rule = Rule::new(spec, policy.clone()).map_err(anyhow::Error::msg)?;
        let request = event
            .to_request("test", 0)
            .with_context(|| format!("test `{}`: the event has no request", case.name))?;
        let outcome = evaluate_rules(
            [&rule],
            engine,
            request,
            &DataSet::default(),
            Instant::now() + Duration::from_secs(5),
        );
        let got = match outcome.decision {
            Decision::Allow => "allow",
            Decision::Deny { .. } => "deny",
        };
        if got != case.expect {
            failures.push(format!(
                "`{}`: expected {}, got {got}",
                case.name, case.expect
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "rule `{}`: {} of {} tests failed in `{}`:\n  {}",
            entry.name,
            failures.len(),
            cases.len(),
            tests_path.display(),
            failures.join("\n  ")
        );
    }
    eprintln!("rule `{}`: {} tests passed", entry.name, cases.len());
    Ok(())
}

/// Arguments of `portcullis rollback`.
#[derive(clap::Args)]
pub struct RollbackArgs {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The revision whose rules become current again (as a new revision).
    #[arg(long)]
    to: u64,
    /// The publisher's signing key: the new revision is signed.
    #[arg(long)]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    keys: input::Keys,
}

/// Runs `portcullis rollback`.
pub fn rollback(args: RollbackArgs) -> Result<Exit> {
    let tenant = tenant(&args.tenant)?;
    let signer = signer(args.sign_key.as_deref(), &args.keys)?;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let current = runtime
        .block_on(store.current(&tenant))?
        .with_context(|| format!("tenant `{tenant}` has no manifest"))?;
    // The rules rolled back to are re-signed: with trusted keys, they must be rules a
    // trusted key signed once (history is as writable as the manifest).
    if let Some(trusted) = args.keys.trusted()? {
        let old = runtime
            .block_on(store.revision(&tenant, args.to))?
            .with_context(|| format!("tenant `{tenant}` has no revision {}", args.to))?;
        trusted.verify(&old, tenant.as_str()).with_context(|| {
            format!(
                "revision {} of `{tenant}` cannot be rolled back to; nothing was written",
                args.to
            )
        })?;
    }
    let published = runtime.block_on(store.rollback_signed(
        &tenant,
        args.to,
        current.manifest.revision,
        signer.as_ref(),
    ))?;
    println!(
        "rolled {tenant} back to the rules of revision {}: now revision {} ({})",
        args.to,
        published.revision,
        signed_by(signer.as_ref())
    );
    Ok(Exit::Allow)
}

/// Arguments of `portcullis status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// One tenant only.
    #[arg(long)]
    tenant: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `portcullis status`.
pub fn status(args: StatusArgs) -> Result<Exit> {
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let tenants = match &args.tenant {
        Some(t) => vec![tenant(t)?],
        None => runtime.block_on(store.tenants())?,
    };
    let mut all = Vec::new();
    for t in tenants {
        let Some(current) = runtime.block_on(store.current(&t))? else {
            bail!("tenant `{t}` has no manifest in {}", store.url());
        };
        all.push((t, current.manifest));
    }
    if args.json {
        let out: serde_json::Map<String, serde_json::Value> = all
            .iter()
            .map(|(t, m)| (t.to_string(), serde_json::to_value(m).unwrap_or_default()))
            .collect();
        println!("{}", serde_json::Value::Object(out));
        return Ok(Exit::Allow);
    }
    println!("store {}", store.url());
    for (t, m) in &all {
        let signed = m.signature.as_ref().map_or_else(
            || "unsigned".to_owned(),
            |s| format!("signed by {}", s.key_id),
        );
        println!(
            "{t}  revision {}  {} rules  {signed}",
            m.revision,
            m.rules.len()
        );
        for r in &m.rules {
            let digest = r.module.strip_prefix("sha256:").unwrap_or(&r.module);
            println!(
                "  {:<20} {:<8} {:<15} {}  {}",
                r.name,
                format!("{:?}", r.mode).to_lowercase(),
                format!("on_error={:?}", r.on_error).to_lowercase(),
                digest.get(..12).unwrap_or(digest),
                r.triggers.join(",")
            );
        }
    }
    Ok(Exit::Allow)
}

/// Arguments of `portcullis diff`.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The older revision (default: the one before `--to`).
    #[arg(long)]
    from: Option<u64>,
    /// The newer revision (default: the current one).
    #[arg(long)]
    to: Option<u64>,
}

/// Runs `portcullis diff`.
pub fn diff_cmd(args: DiffArgs) -> Result<Exit> {
    let tenant = tenant(&args.tenant)?;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let to = match args.to {
        Some(to) => to,
        None => {
            runtime
                .block_on(store.current(&tenant))?
                .with_context(|| format!("tenant `{tenant}` has no manifest"))?
                .manifest
                .revision
        }
    };
    let from = args.from.unwrap_or(to.saturating_sub(1));
    let load = |rev: u64| -> Result<Manifest> {
        if rev == 0 {
            return Ok(Manifest::default());
        }
        runtime
            .block_on(store.revision(&tenant, rev))?
            .with_context(|| format!("tenant `{tenant}` has no revision {rev}"))
    };
    let (old, new) = (load(from)?, load(to)?);
    let signer = |m: &Manifest| {
        m.signature.as_ref().map_or_else(
            || "unsigned".to_owned(),
            |s| format!("signed by {}", s.key_id),
        )
    };
    let changes = diff(&old, &new);
    println!(
        "{tenant}: revision {from} -> {to} ({} -> {})",
        signer(&old),
        signer(&new)
    );
    if changes.is_empty() {
        println!("  no changes");
    }
    for change in changes {
        match change {
            RuleChange::Added { rule } => println!("  + {rule}"),
            RuleChange::Removed { rule } => println!("  - {rule}"),
            RuleChange::Changed { rule, fields } => {
                println!("  ~ {rule}");
                for f in fields {
                    println!("      {f}");
                }
            }
            RuleChange::Reordered { order } => println!("  order: {}", order.join(", ")),
        }
    }
    Ok(Exit::Allow)
}
