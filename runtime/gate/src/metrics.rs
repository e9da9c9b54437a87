//! Metrics as CloudWatch Embedded Metric Format (EMF) documents, built from a decision
//! record: one log line each, which CloudWatch turns into metrics with no API call.
//!
//! Per invocation (dimensions `Tenant`, and none): `Decisions`, `Allows`, `Denies`,
//! `Errors`, `FailOpen`, `FailClosed`, `Passes`, `CanaryDecisions` (decided by a canary's
//! candidate), `CanaryDisagreements` (live and candidate decide differently),
//! `ContextRefusals`, `DataFetchFailures`, `DurationMs`. Per rule (dimensions
//! `Tenant`+`Rule`, and `Tenant`+`Rule`+`Outcome` for each failure kind): `Evaluations`,
//! `Denies`, `Failures`, `ShadowDisagreements`, `DurationMs`. Per function
//! (no dimension), from [`FunctionCounters`]: `ColdStarts`, `RefreshFailures`,
//! `ArtifactRefusals`, `RuleSetsUnloaded`, `LastKnownGoodAge` (seconds). Tenant `-` is a
//! sign-in without a tenant. No user, attribute or claim value is ever a dimension.

use serde::ser::{Serialize, SerializeMap, Serializer};

use portcullis_engine::chain::Effect;
use portcullis_engine::rule::Mode;

use crate::canary::{CanaryRecord, Cohort};
use crate::context::ContextStatus;
use crate::record::{Decided, DecisionRecord};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Portcullis";

/// What the function counted since its last report (deltas, not totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionCounters {
    /// 1 on the first invocation of an instance.
    pub cold_starts: u64,
    /// Rule refreshes that failed (the last known good rules kept deciding).
    pub refresh_failures: u64,
    /// Precompiled artifacts refused (compiled from the verified module instead).
    pub artifact_refusals: u64,
    /// Rule sets unloaded to keep within the cap on loaded rules (their tenants' next
    /// sign-ins load them again).
    pub rule_sets_unloaded: u64,
    /// A gauge, not a delta: how long the oldest rules still serving after failed
    /// refreshes have gone unconfirmed by the store, in seconds (0: every refresh succeeds).
    pub last_known_good_age_s: u64,
}

/// The EMF documents for one decision: `answered_ok` is whether Cognito got the event
/// back (rather than an error), which tells a Portcullis failure answered open from one
/// answered closed.
pub fn documents(
    record: &DecisionRecord,
    answered_ok: bool,
    function: FunctionCounters,
    at_ms: i64,
) -> Vec<Document<'_>> {
    let tenant = record.tenant.as_deref().unwrap_or("-");
    let flag = |b: bool| u64::from(b);
    let error = record.decision == Decided::Error;
    let mut docs = vec![document(
        at_ms,
        &[&["Tenant"], &[]],
        &[("Tenant", tenant), ("DecisionId", &record.decision_id)],
        &[
            ("Decisions", flag(record.decision != Decided::Pass), "Count"),
            ("Allows", flag(record.decision == Decided::Allow), "Count"),
            ("Denies", flag(record.decision == Decided::Deny), "Count"),
            ("Errors", flag(error), "Count"),
            ("FailOpen", flag(error && answered_ok), "Count"),
            (
                "FailClosed",
                flag(!answered_ok && record.denied_by.is_none()),
                "Count",
            ),
            ("Passes", flag(record.decision == Decided::Pass), "Count"),
            (
                "CanaryDecisions",
                flag(
                    record
                        .canary
                        .as_ref()
                        .is_some_and(|c| c.cohort == Cohort::Candidate),
                ),
                "Count",
            ),
            (
                "CanaryDisagreements",
                flag(record.canary.as_ref().is_some_and(CanaryRecord::disagrees)),
                "Count",
            ),
            (
                "ContextRefusals",
                flag(matches!(record.context, Some(ContextStatus::Refused(_)))),
                "Count",
            ),
            (
                "DataFetchFailures",
                flag(
                    record
                        .problems
                        .iter()
                        .any(|p| p.starts_with("data prefetch")),
                ),
                "Count",
            ),
            ("DurationMs", record.duration_us / 1000, "Milliseconds"),
        ],
    )];
    let denied = record.decision == Decided::Deny;
    for rule in &record.rules {
        let failed = rule.error.is_some();
        let disagrees = rule.mode == Mode::Shadow
            && !failed
            && (rule.outcome == "deny") != denied
            && rule.effect == Effect::Shadowed;
        docs.push(document(
            at_ms,
            &[&["Tenant", "Rule"], &["Tenant", "Rule", "Outcome"]],
            &[
                ("Tenant", tenant),
                ("Rule", &rule.rule),
                ("Outcome", rule.outcome),
            ],
            &[
                ("Evaluations", 1, "Count"),
                ("Denies", flag(rule.outcome == "deny"), "Count"),
                ("Failures", flag(failed), "Count"),
                ("ShadowDisagreements", flag(disagrees), "Count"),
                ("DurationMs", rule.duration_us / 1000, "Milliseconds"),
            ],
        ));
    }
    if function != FunctionCounters::default() {
        docs.push(document(
            at_ms,
            &[&[]],
            &[],
            &[
                ("ColdStarts", function.cold_starts, "Count"),
                ("RefreshFailures", function.refresh_failures, "Count"),
                ("ArtifactRefusals", function.artifact_refusals, "Count"),
                ("RuleSetsUnloaded", function.rule_sets_unloaded, "Count"),
                (
                    "LastKnownGoodAge",
                    function.last_known_good_age_s,
                    "Seconds",
                ),
            ],
        ));
    }
    docs
}

/// One EMF document: the `_aws` directive naming the metrics and dimension sets, and the
/// dimension values (and other properties) and metric values beside it. It serializes
/// straight to its JSON object (no `serde_json::Value` in between: building those took
/// most of a report's time, `cargo bench -p portcullis-gate --bench report`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    at_ms: i64,
    dimensions: &'static [&'static [&'static str]],
    values: Vec<(&'static str, &'a str)>,
    metrics: Vec<(&'static str, u64, &'static str)>,
}

fn document<'a>(
    at_ms: i64,
    dimensions: &'static [&'static [&'static str]],
    values: &[(&'static str, &'a str)],
    metrics: &[(&'static str, u64, &'static str)],
) -> Document<'a> {
    Document {
        at_ms,
        dimensions,
        values: values.to_vec(),
        metrics: metrics.to_vec(),
    }
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + self.values.len() + self.metrics.len()))?;
        map.serialize_entry(
            "_aws",
            &Aws {
                timestamp: self.at_ms,
                cloud_watch_metrics: [Directive {
                    namespace: NAMESPACE,
                    dimensions: self.dimensions,
                    metrics: Names(&self.metrics),
                }],
            },
        )?;
        for (name, value) in &self.values {
            map.serialize_entry(name, value)?;
        }
        for (name, value, _) in &self.metrics {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The `_aws` member of a document.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Aws<'d> {
    timestamp: i64,
    cloud_watch_metrics: [Directive<'d>; 1],
}

/// A metric directive: the namespace, dimension sets and the metrics' names and units.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'d> {
    namespace: &'static str,
    dimensions: &'static [&'static [&'static str]],
    metrics: Names<'d>,
}

/// The metrics' `{"Name", "Unit"}` list.
struct Names<'d>(&'d [(&'static str, u64, &'static str)]);

impl Serialize for Names<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|&(name, _, unit)| Name { name, unit }))
    }
}

/// One metric's name and unit.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Name {
    name: &'static str,
    unit: &'static str,
}
