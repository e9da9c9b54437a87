//! `portcullis replay`: which sign-ins a change would decide differently. A corpus of
//! Cognito events runs through two rule sets of one tenant — two revisions, or a revision
//! and a manifest not yet published — beside the same `_global` rules, at the same host
//! time, through the Lambda's own handler; every event whose answer differs is reported:
//! decision, deny message, ID/access claims added, changed or removed, scopes, groups,
//! rule failures. Exit codes make it a CI gate (`--fail-on`, `--max-changed`).
//!
//! The events are Cognito events, or captures the Lambda wrote (`PORTCULLIS_CAPTURE`): each
//! capture decides at its own host time with the trusted context its rules saw.
//!
//! Each side is laid out in a scratch directory store (its manifests and the modules they
//! name), so nothing is written to the real store and neither side sees the other.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use portcullis_aws::StoreUrl;
use portcullis_gate::backend::{BackendError, BoxFuture};
use portcullis_gate::capture::Captured;
use portcullis_gate::data::DataSource;
use portcullis_gate::manifest::{Manifest, RuleEntry};
use portcullis_gate::store::RuleStore;
use portcullis_gate::trust::TrustedKeys;
use portcullis_gate::{Answer, Handler, HandlerConfig, TenantFrom, TenantId};
use serde_json::{Value, json};

use crate::{Exit, input};

mod diff;

use diff::{Change, compare, describe};

/// What makes `replay` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any difference.
    Any,
    /// A sign-in the candidate blocks that the baseline let through.
    Deny,
    /// Any token change (claims, scopes, groups).
    Claims,
}

/// Arguments of `portcullis replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// The tenant whose rules change.
    #[arg(long)]
    tenant: TenantId,
    /// The baseline revision (default: the current one, or the one before `--to`).
    #[arg(long)]
    from: Option<u64>,
    /// The candidate revision.
    #[arg(long, conflicts_with = "manifest")]
    to: Option<u64>,
    /// The candidate as a manifest file not yet published (`module` may be a .wasm path).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The events: a directory of Cognito events or captures (`*.json`, subdirectories
    /// included: a `capture/` tree copied from the store) or one file.
    #[arg(long)]
    events: PathBuf,
    /// The host time both sides decide at, in milliseconds since the Unix epoch (default:
    /// now).
    #[arg(long)]
    now_ms: Option<i64>,
    /// Where the tenant comes from, as the deployment has it.
    #[arg(long, default_value = "attribute:custom:tenant_id")]
    tenant_from: TenantFrom,
    /// A data snapshot both sides read instead of the live table: `{"tenant": {"key": item}}`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object per changed event, then the totals.
    #[arg(long)]
    json: bool,
    /// Exit 2 on this kind of difference.
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
    /// Exit 2 when more than N events change.
    #[arg(long)]
    max_changed: Option<usize>,
    #[command(flatten)]
    keys: input::Keys,
}

/// Runs `portcullis replay`.
pub fn run(args: Args) -> Result<Exit> {
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let trusted = args.keys.trusted()?;
    let replay = Replay {
        runtime: &runtime,
        store: &store,
        tenant: &args.tenant,
        trusted: trusted.as_ref(),
        tenant_from: args.tenant_from.clone(),
        now_ms: args.now_ms.unwrap_or_else(now_ms),
        data: match &args.data {
            Some(path) => Some(Arc::new(Snapshot::read(path)?)),
            None => None,
        },
    };
    let current = runtime
        .block_on(store.current(&args.tenant))?
        .map(|c| c.manifest.revision);
    let (from, candidate, base, label) = match (&args.manifest, args.to) {
        (Some(path), _) => {
            let manifest = Manifest::parse(&input::read(path)?)
                .with_context(|| format!("`{}`", path.display()))?;
            let base = path.parent().map(Path::to_owned);
            let from = args.from.or(current).unwrap_or(0);
            (from, manifest, base, format!("`{}`", path.display()))
        }
        (None, to) => {
            let to = to
                .or(current)
                .context("no candidate: pass --to or --manifest")?;
            let from = args.from.unwrap_or(to.saturating_sub(1));
            (from, replay.revision(to)?, None, format!("revision {to}"))
        }
    };
    let report = replay.run(from, &candidate, base.as_deref(), &args.events)?;
    report.print(args.json, &label, from)?;
    Ok(if report.fails(args.fail_on, args.max_changed) {
        Exit::Deny
    } else {
        Exit::Allow
    })
}

/// `publish --replay`: the events, and what refuses the publish.
#[derive(Debug, Clone)]
pub struct PublishGate {
    /// The events (a directory or one file).
    pub events: PathBuf,
    /// What refuses it (default: a sign-in newly blocked).
    pub fail_on: Option<FailOn>,
    /// Refuse when more events change.
    pub max_changed: Option<usize>,
}

/// Replays the gate's events for `publish --replay`: the tenant's current rules against the
/// manifest about to be published (`.wasm` modules under `base`); an error when the gate
/// trips, so nothing is written.
pub fn gate_publish(
    store: &RuleStore,
    tenant: &TenantId,
    trusted: Option<&TrustedKeys>,
    candidate: &Manifest,
    base: Option<&Path>,
    gate: &PublishGate,
) -> Result<()> {
    let runtime = input::runtime()?;
    let replay = Replay {
        runtime: &runtime,
        store,
        tenant,
        trusted,
        tenant_from: HandlerConfig::default().tenant_from,
        now_ms: now_ms(),
        data: None,
    };
    let from = runtime
        .block_on(store.current(tenant))?
        .map_or(0, |c| c.manifest.revision);
    let report = replay.run(from, candidate, base, &gate.events)?;
    report.print(false, "this manifest", from)?;
    if report.fails(Some(gate.fail_on.unwrap_or(FailOn::Deny)), gate.max_changed) {
        bail!("the replay gate refused the change (--replay); nothing was written");
    }
    Ok(())
}

/// One replay's settings: where the rules come from, and how both sides decide.
struct Replay<'a> {
    runtime: &'a tokio::runtime::Runtime,
    store: &'a RuleStore,
    tenant: &'a TenantId,
    trusted: Option<&'a TrustedKeys>,
    tenant_from: TenantFrom,
    now_ms: i64,
    data: Option<Arc<Snapshot>>,
}

/// What a replay found.
struct Report {
    events: usize,
    changes: Vec<Change>,
}

impl Replay<'_> {
    /// A stored revision of the tenant, verified when trusted keys are set (a store's content
    /// is as writable as the manifest).
    fn revision(&self, rev: u64) -> Result<Manifest> {
        let manifest = self
            .runtime
            .block_on(self.store.revision(self.tenant, rev))?
            .with_context(|| format!("tenant `{}` has no revision {rev}", self.tenant))?;
        self.verified(manifest, self.tenant)
    }

    fn verified(&self, manifest: Manifest, of: &TenantId) -> Result<Manifest> {
        if let Some(trusted) = self.trusted {
            trusted
                .verify(&manifest, of.as_str())
                .with_context(|| format!("revision {} of `{of}`", manifest.revision))?;
        }
        Ok(manifest)
    }

    /// Runs every event through revision `from` and `candidate` and compares the answers.
    fn run(
        &self,
        from: u64,
        candidate: &Manifest,
        base: Option<&Path>,
        events: &Path,
    ) -> Result<Report> {
        let baseline = if from == 0 {
            Manifest::default()
        } else {
            self.revision(from)?
        };
        let global = match self
            .runtime
            .block_on(self.store.current(&TenantId::global()))?
        {
            Some(current) => Some(self.verified(current.manifest, &TenantId::global())?),
            None => None,
        };
        let scratch = tempfile::tempdir().context("a scratch directory")?;
        // Both sides' rules run turn about: a slot per module keeps each module's memory
        // image mapped (with two slots, every instance would map its image in again).
        let modules = baseline.rules.len()
            + candidate.rules.len()
            + global.as_ref().map_or(0, |g| g.rules.len());
        let engine = Arc::new(input::engine_with_slots(
            u32::try_from(modules).unwrap_or(u32::MAX).clamp(2, 64),
        )?);
        let config = HandlerConfig {
            tenant_from: self.tenant_from.clone(),
            clock_ms: Some(self.now_ms),
            ..HandlerConfig::default()
        };
        let side = |name: &str, manifest: &Manifest, base: Option<&Path>| -> Result<Handler> {
            let local = RuleStore::dir(scratch.path().join(name));
            self.runtime.block_on(async {
                if let Some(global) = &global {
                    copy(self.store, &local, &TenantId::global(), &global.rules, None).await?;
                }
                copy(self.store, &local, self.tenant, &manifest.rules, base).await
            })?;
            let mut gate = Handler::builder(local)
                .engine(Arc::clone(&engine))
                .config(config.clone());
            if let Some(data) = &self.data {
                gate = gate.data(Arc::clone(data) as Arc<dyn DataSource>);
            }
            Ok(gate.build()?)
        };
        let before = side("baseline", &baseline, None)?;
        let after = side("candidate", candidate, base)?;
        let files = event_files(events)?;
        let mut changes = Vec::new();
        for path in &files {
            let event: Value = serde_json::from_slice(&input::read(path)?)
                .with_context(|| format!("`{}` is not JSON", path.display()))?;
            // A capture decides at its own host time, with the trusted context it had.
            let input =
                match Captured::of(&event) {
                    None => Input::Event(event),
                    Some(captured) => Input::Captured(Box::new(captured.with_context(|| {
                        format!("`{}` is not a valid capture", path.display())
                    })?)),
                };
            let a = self.runtime.block_on(decide(&before, input.clone()));
            let b = self.runtime.block_on(decide(&after, input));
            let mut change = compare(&a, &b);
            if !change.is_empty() {
                change.event = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                changes.push(change);
            }
        }
        Ok(Report {
            events: files.len(),
            changes,
        })
    }
}

/// One replayed input: a Cognito event, or a capture.
#[derive(Clone)]
enum Input {
    Event(Value),
    Captured(Box<Captured>),
}

/// `handler`'s answer to `input` (a capture at its own host time and trusted context).
async fn decide(handler: &Handler, input: Input) -> Answer {
    match input {
        Input::Event(event) => handler.handle(event, None).await,
        Input::Captured(captured) => handler.replay(&captured).await,
    }
}

impl Report {
    fn newly_denied(&self) -> usize {
        self.changes.iter().filter(|c| c.newly_denied()).count()
    }

    fn token_changes(&self) -> usize {
        self.changes.iter().filter(|c| c.tokens_changed()).count()
    }

    /// Whether the gate trips.
    fn fails(&self, fail_on: Option<FailOn>, max_changed: Option<usize>) -> bool {
        let kind = match fail_on {
            Some(FailOn::Any) => !self.changes.is_empty(),
            Some(FailOn::Deny) => self.newly_denied() > 0,
            Some(FailOn::Claims) => self.token_changes() > 0,
            None => false,
        };
        kind || max_changed.is_some_and(|max| self.changes.len() > max)
    }

    /// Every change, then the totals.
    fn print(&self, json: bool, label: &str, from: u64) -> Result<()> {
        let changes = &self.changes;
        let newly_denied = self.newly_denied();
        let newly_allowed = changes
            .iter()
            .filter(|c| c.decision.as_deref() == Some("deny → allow"))
            .count();
        let token_changes = self.token_changes();
        let mut claim_totals: BTreeMap<&str, usize> = BTreeMap::new();
        for change in changes {
            for name in change.claims.values().flatten() {
                *claim_totals.entry(name.as_str()).or_default() += 1;
            }
        }
        if json {
            for change in changes {
                println!("{}", serde_json::to_string(change)?);
            }
            println!(
                "{}",
                json!({
                    "events": self.events, "changed": changes.len(), "newly_denied": newly_denied,
                    "newly_allowed": newly_allowed, "token_changes": token_changes,
                    "claims": claim_totals,
                })
            );
            return Ok(());
        }
        for change in changes {
            println!("{}", describe(change));
        }
        let claims = if claim_totals.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = claim_totals
                .iter()
                .map(|(name, n)| format!("{n} × `{name}`"))
                .collect();
            format!(" ({})", list.join(", "))
        };
        println!(
            "{} of {} sign-ins decided differently by {label} (from revision {from}): {newly_denied} newly blocked, {newly_allowed} newly allowed, {token_changes} with token changes{claims}",
            changes.len(),
            self.events,
        );
        Ok(())
    }
}

/// A data snapshot: `{"tenant": {"key": item}}`, the items both sides read (instead of the
/// live table), so a replay decides on the same data every time.
#[derive(Debug)]
struct Snapshot(HashMap<String, HashMap<String, String>>);

impl Snapshot {
    fn read(path: &Path) -> Result<Snapshot> {
        let raw: HashMap<String, HashMap<String, Value>> =
            serde_json::from_slice(&input::read(path)?).with_context(|| {
                format!(
                    "`{}`: a data snapshot is {{\"tenant\": {{\"key\": item}}}}",
                    path.display()
                )
            })?;
        Ok(Snapshot(
            raw.into_iter()
                .map(|(tenant, items)| {
                    let items = items.into_iter().map(|(k, v)| (k, v.to_string())).collect();
                    (tenant, items)
                })
                .collect(),
        ))
    }
}

impl DataSource for Snapshot {
    fn fetch<'a>(
        &'a self,
        tenant: &'a TenantId,
        keys: &'a [String],
        _timeout: std::time::Duration,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, BackendError>> {
        let items = self.0.get(tenant.as_str());
        let found = keys
            .iter()
            .filter_map(|key| Some((key.clone(), items?.get(key)?.clone())))
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

/// Lays out `rules` as `tenant`'s manifest in `local`, with the modules they name (from
/// `store`, or `.wasm` files under `base` for an unpublished manifest).
async fn copy(
    store: &RuleStore,
    local: &RuleStore,
    tenant: &TenantId,
    rules: &[RuleEntry],
    base: Option<&Path>,
) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let mut entries = Vec::with_capacity(rules.len());
    for rule in rules {
        let mut entry = rule.clone();
        let bytes = match (base, entry.module.ends_with(".wasm")) {
            (Some(base), true) => input::read(&base.join(&entry.module))?,
            _ => {
                let digest = entry
                    .module
                    .parse()
                    .with_context(|| format!("rule `{}`: module", entry.name))?;
                store.module(&digest).await?.with_context(|| {
                    format!(
                        "rule `{}`: module `{}` is not in the store",
                        entry.name, entry.module
                    )
                })?
            }
        };
        entry.module = format!("sha256:{}", local.put_module(bytes).await?);
        entries.push(entry);
    }
    local.publish(tenant, entries, 0).await?;
    Ok(())
}

/// The events: every `*.json` under a directory, its subdirectories included (a capture
/// tree, `capture/<tenant>/<day>/`), sorted; or one file.
fn event_files(path: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("reading `{}`", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, files)?;
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
        Ok(())
    }
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    walk(path, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("no events (*.json) in `{}`", path.display());
    }
    Ok(files)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
