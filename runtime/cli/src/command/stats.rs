//! `portcullis stats`: a decision log summarised per tenant and per rule — the view the
//! Lambda's metrics give in CloudWatch, from a file: the Lambda's log lines (a CloudWatch
//! export; lines may carry a timestamp before the JSON) or `portcullis handle --json` output.
//! A canary's counts (decisions per cohort, disagreements by kind) come from the same lines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::{Exit, input};

/// Arguments of `portcullis stats`.
#[derive(clap::Args)]
pub struct Args {
    /// The decision log file.
    log: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Counts for one tenant.
#[derive(Debug, Default, serde::Serialize)]
struct TenantStats {
    decisions: u64,
    allow: u64,
    deny: u64,
    error: u64,
    pass: u64,
    /// Per canary revision seen.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    canary: BTreeMap<u64, CanaryStats>,
}

/// What a canary decided, from the records of the sign-ins it saw.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CanaryStats {
    /// Sign-ins decided while it ran.
    pub decisions: u64,
    /// Of which the candidate decided.
    pub candidate: u64,
    /// Sign-ins the two revisions decided differently, in either cohort.
    pub disagreements: u64,
    /// Of which: the candidate denies what the live revision allows.
    pub newly_denied: u64,
    /// Of which: the candidate allows what the live revision denies.
    pub newly_allowed: u64,
    /// Of which: the decision agrees but tokens (claims, scopes, groups) differ.
    pub tokens: u64,
}

impl CanaryStats {
    fn count(&mut self, canary: &Value) {
        let text = |field: &str| canary.get(field).and_then(Value::as_str);
        self.decisions += 1;
        self.candidate += u64::from(text("cohort") == Some("candidate"));
        let differs: Vec<&str> = canary
            .get("differs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if differs.is_empty() {
            return;
        }
        self.disagreements += 1;
        match (text("live"), text("candidate")) {
            (Some("allow"), Some("deny")) => self.newly_denied += 1,
            (Some("deny"), Some("allow")) => self.newly_allowed += 1,
            _ => self.tokens += u64::from(!differs.contains(&"decision")),
        }
    }

    /// One line: `N decisions (M by the candidate), D disagreements: …`.
    pub fn describe(&self) -> String {
        format!(
            "{} decisions ({} by the candidate), {} disagreements: {} newly denied, {} newly allowed, {} token changes",
            self.decisions,
            self.candidate,
            self.disagreements,
            self.newly_denied,
            self.newly_allowed,
            self.tokens
        )
    }
}

/// The canary counts of `tenant`'s revision `revision` in a decision log's text.
pub fn canary_stats(text: &str, tenant: &str, revision: u64) -> CanaryStats {
    let mut stats = CanaryStats::default();
    for record in text.lines().filter_map(record_of) {
        if record.get("tenant").and_then(Value::as_str) != Some(tenant) {
            continue;
        }
        if let Some(canary) = record.get("canary")
            && canary.get("revision").and_then(Value::as_u64) == Some(revision)
        {
            stats.count(canary);
        }
    }
    stats
}

/// Counts for one rule of one tenant.
#[derive(Debug, Default, serde::Serialize)]
struct RuleStats {
    evaluations: u64,
    denies: u64,
    failures: BTreeMap<String, u64>,
    shadow_disagreements: u64,
    #[serde(skip)]
    durations_us: Vec<u64>,
    median_us: u64,
    p99_us: u64,
}

/// Runs `portcullis stats`.
pub fn run(args: Args) -> Result<Exit> {
    let text = String::from_utf8_lossy(&input::read(&args.log)?).into_owned();
    let mut tenants: BTreeMap<String, TenantStats> = BTreeMap::new();
    let mut rules: BTreeMap<(String, String), RuleStats> = BTreeMap::new();
    let mut records = 0u64;
    for line in text.lines() {
        let Some(record) = record_of(line) else {
            continue;
        };
        records += 1;
        let tenant = record
            .get("tenant")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned();
        let decision = record.get("decision").and_then(Value::as_str).unwrap_or("");
        let t = tenants.entry(tenant.clone()).or_default();
        match decision {
            "allow" => t.allow += 1,
            "deny" => t.deny += 1,
            "error" => t.error += 1,
            "pass" => t.pass += 1,
            _ => {}
        }
        if decision != "pass" {
            t.decisions += 1;
        }
        if let Some(canary) = record.get("canary")
            && let Some(revision) = canary.get("revision").and_then(Value::as_u64)
        {
            t.canary.entry(revision).or_default().count(canary);
        }
        for rule in record
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = rule.get("rule").and_then(Value::as_str).unwrap_or("?");
            let outcome = rule.get("outcome").and_then(Value::as_str).unwrap_or("?");
            let r = rules.entry((tenant.clone(), name.to_owned())).or_default();
            r.evaluations += 1;
            if outcome == "deny" {
                r.denies += 1;
            }
            if rule.get("error").is_some_and(|e| !e.is_null()) {
                *r.failures.entry(outcome.to_owned()).or_default() += 1;
            } else if rule.get("mode").and_then(Value::as_str) == Some("shadow")
                && (outcome == "deny") != (decision == "deny")
            {
                r.shadow_disagreements += 1;
            }
            if let Some(us) = rule.get("duration_us").and_then(Value::as_u64) {
                r.durations_us.push(us);
            }
        }
    }
    if records == 0 {
        bail!(
            "no decision records in `{}` (expected the Lambda's log lines or `portcullis handle --json` output)",
            args.log.display()
        );
    }
    for r in rules.values_mut() {
        r.durations_us.sort_unstable();
        let at = |q: f64| {
            let n = r.durations_us.len();
            let i = ((n.saturating_sub(1)) as f64 * q).round() as usize;
            r.durations_us.get(i).copied().unwrap_or(0)
        };
        (r.median_us, r.p99_us) = (at(0.5), at(0.99));
    }
    if args.json {
        let rules: Vec<Value> = rules
            .iter()
            .map(|((tenant, rule), s)| json!({"tenant": tenant, "rule": rule, "stats": s}))
            .collect();
        println!(
            "{}",
            json!({"records": records, "tenants": tenants, "rules": rules})
        );
        return Ok(Exit::Allow);
    }
    println!("{records} decisions");
    println!(
        "{:<20} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "tenant", "decisions", "allow", "deny", "error", "pass"
    );
    for (tenant, t) in &tenants {
        println!(
            "{tenant:<20} {:>9} {:>7} {:>7} {:>7} {:>7}",
            t.decisions, t.allow, t.deny, t.error, t.pass
        );
    }
    for (tenant, t) in &tenants {
        for (revision, c) in &t.canary {
            println!("{tenant:<20} canary revision {revision}: {}", c.describe());
        }
    }
    println!();
    println!(
        "{:<20} {:<24} {:>6} {:>6} {:>8} {:>7} {:>9} {:>9}",
        "tenant", "rule", "evals", "denies", "failures", "shadow≠", "median µs", "p99 µs"
    );
    for ((tenant, rule), r) in &rules {
        let failures: u64 = r.failures.values().sum();
        println!(
            "{tenant:<20} {rule:<24} {:>6} {:>6} {:>8} {:>7} {:>9} {:>9}",
            r.evaluations, r.denies, failures, r.shadow_disagreements, r.median_us, r.p99_us
        );
        for (kind, n) in &r.failures {
            println!("{:<45} {kind}: {n}", "");
        }
    }
    Ok(Exit::Allow)
}

/// The decision record in one log line, if it holds one: `handle --json` output
/// (`record`), a Lambda log line (`fields` of target `portcullis::decision`), or a bare
/// record; a CloudWatch export may put a timestamp before the JSON.
fn record_of(line: &str) -> Option<Value> {
    let start = line.find('{')?;
    let value: Value = serde_json::from_str(line.get(start..)?).ok()?;
    if let Some(record) = value.get("record") {
        return Some(record.clone());
    }
    if value.get("target").and_then(Value::as_str) == Some("portcullis::decision") {
        return value.get("fields").cloned();
    }
    (value.get("decision").is_some() && value.get("rules").is_some()).then_some(value)
}
