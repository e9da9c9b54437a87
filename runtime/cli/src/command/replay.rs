//! `portcullis replay`: which sign-ins a change would decide differently. A corpus of
//! Cognito events runs through two rule sets of one tenant — two revisions, or a revision
//! and a manifest not yet published — beside the same `_global` rules, at the same host
//! time, through the Lambda's own handler; every event whose answer differs is reported:
//! decision, deny message, ID/access claims added, changed or removed, scopes, groups,
//! rule failures. Exit codes make it a CI gate (`--fail-on`, `--max-changed`).
//!
//! Each side is laid out in a scratch directory store (its manifests and the modules they
//! name), so nothing is written to the real store and neither side sees the other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use portcullis_aws::StoreUrl;
use portcullis_gate::manifest::{Manifest, RuleEntry};
use portcullis_gate::store::RuleStore;
use portcullis_gate::{Answer, Handler, HandlerConfig, TenantFrom, TenantId};
use serde_json::{Value, json};

use crate::{Exit, input};

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
    /// The events: a directory of Cognito events (`*.json`) or one event file.
    #[arg(long)]
    events: PathBuf,
    /// The host time both sides decide at, in milliseconds since the Unix epoch (default:
    /// now).
    #[arg(long)]
    now_ms: Option<i64>,
    /// Where the tenant comes from, as the deployment has it.
    #[arg(long, default_value = "attribute:custom:tenant_id")]
    tenant_from: TenantFrom,
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

/// One event's difference between the baseline and the candidate.
#[derive(Debug, Default, serde::Serialize)]
struct Change {
    event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    claims: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    groups: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<String>,
}

impl Change {
    fn is_empty(&self) -> bool {
        self.decision.is_none()
            && self.message.is_none()
            && self.claims.is_empty()
            && self.scopes.is_empty()
            && !self.groups
            && self.failures.is_empty()
    }

    fn newly_denied(&self) -> bool {
        self.decision.as_deref() == Some("allow → deny")
    }

    fn tokens_changed(&self) -> bool {
        !self.claims.is_empty() || !self.scopes.is_empty() || self.groups
    }
}

/// Runs `portcullis replay`.
pub fn run(args: Args) -> Result<Exit> {
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let tenant = &args.tenant;
    let current = runtime
        .block_on(store.current(tenant))?
        .map(|c| c.manifest.revision);
    // With trusted keys, only revisions a trusted key signed are replayed: a store's
    // content is as writable as the manifest (the candidate file is the publisher's own).
    let trusted = args.keys.trusted()?;
    let verified = |manifest: Manifest, of: &TenantId| -> Result<Manifest> {
        if let Some(trusted) = &trusted {
            trusted
                .verify(&manifest, of.as_str())
                .with_context(|| format!("revision {} of `{of}`", manifest.revision))?;
        }
        Ok(manifest)
    };
    let revision = |rev: u64| -> Result<Manifest> {
        let manifest = runtime
            .block_on(store.revision(tenant, rev))?
            .with_context(|| format!("tenant `{tenant}` has no revision {rev}"))?;
        verified(manifest, tenant)
    };
    let (from, candidate, label) = match (&args.manifest, args.to) {
        (Some(path), _) => {
            let from = args.from.or(current).unwrap_or(0);
            let manifest = Manifest::parse(&input::read(path)?)
                .with_context(|| format!("`{}`", path.display()))?;
            (from, manifest, format!("`{}`", path.display()))
        }
        (None, to) => {
            let to = to
                .or(current)
                .context("no candidate: pass --to or --manifest")?;
            let from = args.from.unwrap_or(to.saturating_sub(1));
            (from, revision(to)?, format!("revision {to}"))
        }
    };
    let baseline = if from == 0 {
        Manifest::default()
    } else {
        revision(from)?
    };
    let global = match runtime.block_on(store.current(&TenantId::global()))? {
        Some(current) => Some(verified(current.manifest, &TenantId::global())?),
        None => None,
    };
    let base = args.manifest.as_deref().and_then(Path::parent);
    let scratch = tempfile::tempdir().context("a scratch directory")?;
    let engine = Arc::new(input::engine()?);
    let config = HandlerConfig {
        tenant_from: args.tenant_from.clone(),
        clock_ms: Some(args.now_ms.unwrap_or_else(now_ms)),
        ..HandlerConfig::default()
    };
    let side = |name: &str, manifest: &Manifest, base: Option<&Path>| -> Result<Handler> {
        let local = RuleStore::dir(scratch.path().join(name));
        runtime.block_on(async {
            if let Some(global) = &global {
                copy(&store, &local, &TenantId::global(), &global.rules, None).await?;
            }
            copy(&store, &local, tenant, &manifest.rules, base).await
        })?;
        Ok(Handler::builder(local)
            .engine(Arc::clone(&engine))
            .config(config.clone())
            .build()?)
    };
    let before = side("baseline", &baseline, None)?;
    let after = side("candidate", &candidate, base)?;

    let events = event_files(&args.events)?;
    let mut changes = Vec::new();
    for path in &events {
        let event: Value = serde_json::from_slice(&input::read(path)?)
            .with_context(|| format!("`{}` is not JSON", path.display()))?;
        let a = runtime.block_on(before.handle(event.clone(), None));
        let b = runtime.block_on(after.handle(event, None));
        let mut change = compare(&a, &b);
        if !change.is_empty() {
            change.event = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            changes.push(change);
        }
    }

    let newly_denied = changes.iter().filter(|c| c.newly_denied()).count();
    let newly_allowed = changes
        .iter()
        .filter(|c| c.decision.as_deref() == Some("deny → allow"))
        .count();
    let token_changes = changes.iter().filter(|c| c.tokens_changed()).count();
    let mut claim_totals: BTreeMap<&str, usize> = BTreeMap::new();
    for change in &changes {
        for name in change.claims.values().flatten() {
            *claim_totals.entry(name.as_str()).or_default() += 1;
        }
    }
    if args.json {
        for change in &changes {
            println!("{}", serde_json::to_string(change)?);
        }
        println!(
            "{}",
            json!({
                "events": events.len(), "changed": changes.len(), "newly_denied": newly_denied,
                "newly_allowed": newly_allowed, "token_changes": token_changes,
                "claims": claim_totals,
            })
        );
    } else {
        for change in &changes {
            println!("{}", describe(change));
        }
        println!(
            "{} of {} sign-ins decided differently by {label} (from revision {from}): {newly_denied} newly blocked, {newly_allowed} newly allowed, {token_changes} with token changes{}",
            changes.len(),
            events.len(),
            if claim_totals.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    claim_totals
                        .iter()
                        .map(|(name, n)| format!("{n} × `{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    let failed = match args.fail_on {
        Some(FailOn::Any) => !changes.is_empty(),
        Some(FailOn::Deny) => newly_denied > 0,
        Some(FailOn::Claims) => token_changes > 0,
        None => false,
    } || args.max_changed.is_some_and(|max| changes.len() > max);
    Ok(if failed { Exit::Deny } else { Exit::Allow })
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

/// The events: every `*.json` in a directory (sorted), or one file.
fn event_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading `{}`", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no events (*.json) in `{}`", path.display());
    }
    Ok(files)
}

/// What differs between the baseline's answer `a` and the candidate's `b`.
fn compare(a: &Answer, b: &Answer) -> Change {
    let mut change = Change::default();
    match (&a.response, &b.response) {
        (Ok(_), Err(message)) => {
            change.decision = Some("allow → deny".into());
            change.message = Some(message.clone());
            change.denied_by.clone_from(&b.record.denied_by);
        }
        (Err(_), Ok(_)) => change.decision = Some("deny → allow".into()),
        (Err(old), Err(new)) if old != new => {
            change.message = Some(new.clone());
            change.denied_by.clone_from(&b.record.denied_by);
        }
        (Ok(old), Ok(new)) => {
            let (old, new) = (at(old, "/response"), at(new, "/response"));
            for (token, old_claims, new_claims) in [
                ("id", id_claims(old), id_claims(new)),
                ("access", access_claims(old), access_claims(new)),
            ] {
                let names = claim_changes(&old_claims, &new_claims);
                if !names.is_empty() {
                    change.claims.insert(token.to_owned(), names);
                }
            }
            let scopes = |v: &Value, field: &str| -> BTreeSet<String> {
                strings(at(
                    v,
                    &format!("/claimsAndScopeOverrideDetails/accessTokenGeneration/{field}"),
                ))
            };
            for (field, sign) in [("scopesToAdd", "+"), ("scopesToSuppress", "-")] {
                let (o, n) = (scopes(old, field), scopes(new, field));
                for s in n.symmetric_difference(&o) {
                    let mark = if n.contains(s) { sign } else { "~" };
                    change.scopes.push(format!("{mark}{s}"));
                }
            }
            change.groups = group_override(old) != group_override(new);
        }
        _ => {}
    }
    let failures = |answer: &Answer| -> BTreeSet<String> {
        answer
            .record
            .rules
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| format!("{} {}", r.rule, r.outcome))
            .collect()
    };
    change.failures = failures(b).difference(&failures(a)).cloned().collect();
    change
}

/// The group override of a token answer (`null` when it has none).
fn group_override(response: &Value) -> &Value {
    let v2 = at(
        response,
        "/claimsAndScopeOverrideDetails/groupOverrideDetails",
    );
    if v2.is_null() {
        at(response, "/claimsOverrideDetails/groupOverrideDetails")
    } else {
        v2
    }
}

/// Claims added or overridden, and suppressed, by a token answer: name → value (`None`:
/// suppressed).
fn id_claims(response: &Value) -> BTreeMap<String, Option<Value>> {
    let v1 = at(response, "/claimsOverrideDetails");
    let v2 = at(response, "/claimsAndScopeOverrideDetails/idTokenGeneration");
    claims(if v1.is_object() { v1 } else { v2 })
}

fn access_claims(response: &Value) -> BTreeMap<String, Option<Value>> {
    claims(at(
        response,
        "/claimsAndScopeOverrideDetails/accessTokenGeneration",
    ))
}

fn claims(details: &Value) -> BTreeMap<String, Option<Value>> {
    let mut out = BTreeMap::new();
    if let Some(map) = at(details, "/claimsToAddOrOverride").as_object() {
        for (name, value) in map {
            out.insert(name.clone(), Some(value.clone()));
        }
    }
    for name in strings(at(details, "/claimsToSuppress")) {
        out.insert(name, None);
    }
    out
}

/// `+name` (newly set), `~name` (value changed), `-name` (newly suppressed), `=name` (no
/// longer set or suppressed).
fn claim_changes(
    old: &BTreeMap<String, Option<Value>>,
    new: &BTreeMap<String, Option<Value>>,
) -> Vec<String> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (old.get(name), new.get(name)) {
            (None, Some(Some(_))) => Some(format!("+{name}")),
            (Some(a), Some(b)) if a != b => Some(match b {
                Some(_) => format!("~{name}"),
                None => format!("-{name}"),
            }),
            (None, Some(None)) => Some(format!("-{name}")),
            (Some(_), None) => Some(format!("={name}")),
            _ => None,
        })
        .collect()
}

/// The value at a JSON pointer, `null` where there is none.
fn at<'v>(value: &'v Value, pointer: &str) -> &'v Value {
    static NULL: Value = Value::Null;
    value.pointer(pointer).unwrap_or(&NULL)
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn describe(change: &Change) -> String {
    let mut parts = Vec::new();
    if let Some(decision) = &change.decision {
        parts.push(match (&change.denied_by, &change.message) {
            (Some(rule), Some(message)) => format!("{decision} by `{rule}` ({message})"),
            _ => decision.clone(),
        });
    } else if let Some(message) = &change.message {
        parts.push(format!("deny message now \"{message}\""));
    }
    for (token, names) in &change.claims {
        parts.push(format!("{token} token {}", names.join(" ")));
    }
    if !change.scopes.is_empty() {
        parts.push(format!("scopes {}", change.scopes.join(" ")));
    }
    if change.groups {
        parts.push("group override changed".into());
    }
    if !change.failures.is_empty() {
        parts.push(format!("new failures: {}", change.failures.join(", ")));
    }
    format!("{}: {}", change.event, parts.join("; "))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
