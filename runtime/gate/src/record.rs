//! The decision record: one per invocation, built from the typed outcome of the decision
//! (never parsed back from strings), logged as one JSON object ([`crate::report`]), and
//! the source of the audit entries. No user attribute values, no claim values.

use std::time::Duration;

use portcullis_engine::chain::Effect;
use portcullis_engine::chain::{ChainOutcome, Conflict, Decision};
use portcullis_engine::outcome::Outcome;
use portcullis_engine::rule::{Mode, Origin};
use serde::Serialize;

use crate::activity::AuditEntry;
use crate::canary::CanaryRecord;
use crate::cognito::Unhandled;
use crate::context::ContextStatus;
use crate::data::counters::Applied;

/// What the gate decided for one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decided {
    /// The sign-in goes on.
    #[default]
    Allow,
    /// The sign-in is blocked.
    Deny,
    /// The trigger is not one Portcullis handles: the event went back unchanged.
    Pass,
    /// Portcullis itself failed; the fail mode decided the answer.
    Error,
}

impl Decided {
    /// The record's name of the decision.
    pub fn as_str(self) -> &'static str {
        match self {
            Decided::Allow => "allow",
            Decided::Deny => "deny",
            Decided::Pass => "pass",
            Decided::Error => "error",
        }
    }
}

impl std::fmt::Display for Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Decided {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One rule's line in the decision record. No user attribute values, no claim values.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRecord {
    /// The rule.
    pub rule: String,
    /// `global` (a `_global` rule) or `tenant`.
    pub origin: Origin,
    /// `enforce` or `shadow`.
    pub mode: Mode,
    /// What became of it.
    pub effect: Effect,
    /// `allow`, `deny`, `timeout`, …
    pub outcome: &'static str,
    /// The failure, for failed rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time in microseconds.
    pub duration_us: u64,
    /// Peak linear memory in bytes.
    pub peak_memory: usize,
    /// Log lines the rule wrote.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

/// The decision record: one per invocation, logged as one JSON object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DecisionRecord {
    /// This decision's id (128 random bits, hex): ties its log line and its metric
    /// documents together.
    pub decision_id: String,
    /// The tenant, when resolved.
    pub tenant: Option<String>,
    /// The raw trigger source.
    pub trigger: String,
    /// The tenant's manifest revision, when it has one.
    pub revision: Option<u64>,
    /// The `_global` manifest revision, when there is one.
    pub global_revision: Option<u64>,
    /// What was decided.
    pub decision: Decided,
    /// The rule that denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    /// What became of the backend's context envelope, when the sign-in carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextStatus>,
    /// The tenant's canary, while one runs: the candidate revision, which cohort decided,
    /// and what the other revision would have decided differently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRecord>,
    /// What became of the counter changes the sign-in implied ([`crate::data::counters`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<Applied>,
    /// Whether this sign-in was captured for replay ([`crate::capture`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub captured: bool,
    /// Why the event was left alone (decision `pass`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhandled: Option<Unhandled>,
    /// Rule reports, in order.
    pub rules: Vec<RuleRecord>,
    /// Claims one rule set and a later one changed (names only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    /// Whether the tenant's rules came from the baseline store.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
    /// Portcullis-level problems (not rule failures).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Wall time of the whole invocation in microseconds.
    pub duration_us: u64,
    /// Of which: getting the rules (cache, store reads, verification and compiling).
    pub load_us: u64,
    /// Of the load: compiling modules (or loading precompiled artifacts) this invocation
    /// had to do; 0 when the rules were already loaded.
    pub compile_us: u64,
    /// Of which: running the chain.
    pub rules_us: u64,
    /// Of which: fetching what the rules declared (data, counters, HTTP lookups: all at
    /// once); absent when they declared nothing.
    #[serde(skip_serializing_if = "is_zero")]
    pub prefetch_us: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl DecisionRecord {
    /// A record for an event with this trigger source.
    pub fn new(trigger: String) -> DecisionRecord {
        DecisionRecord {
            decision_id: decision_id(),
            trigger,
            ..DecisionRecord::default()
        }
    }

    /// Fills in what the chain decided: the deny, conflicts and one line per rule.
    pub fn chain(&mut self, outcome: &ChainOutcome) {
        if let Decision::Deny { rule, .. } = &outcome.decision {
            self.decision = Decided::Deny;
            self.denied_by = Some(rule.to_string());
        }
        self.conflicts.clone_from(&outcome.conflicts);
        self.rules_us = micros(outcome.duration);
        self.rules = outcome
            .reports
            .iter()
            .map(|report| {
                let e = &report.evaluation;
                RuleRecord {
                    rule: report.rule.to_string(),
                    origin: report.origin,
                    mode: report.mode,
                    effect: report.effect,
                    outcome: e.outcome.kind(),
                    error: match &e.outcome {
                        Outcome::Failed(f) => Some(f.to_string()),
                        Outcome::Verdict(_) => None,
                    },
                    fuel: e.fuel_used,
                    duration_us: micros(e.duration),
                    peak_memory: e.peak_memory,
                    logs: e
                        .logs
                        .iter()
                        .map(|l| format!("{}: {}", l.level.as_str(), l.message))
                        .collect(),
                }
            })
            .collect();
    }

    /// The audit entries of this decision for `user` at `at_ms`: one per failed rule, and
    /// one for a block (or a Portcullis failure) no failed rule already explains.
    pub fn audit_entries(&self, user: &str, at_ms: i64) -> Vec<AuditEntry> {
        let entry = |rule: &str, outcome: &str| AuditEntry {
            tenant: self.tenant.clone().unwrap_or_default(),
            user: user.to_owned(),
            trigger: self.trigger.clone(),
            rule: rule.to_owned(),
            outcome: outcome.to_owned(),
            revision: self.revision,
            at_ms,
        };
        let mut entries: Vec<AuditEntry> = self
            .rules
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| entry(&r.rule, r.outcome))
            .collect();
        match (self.decision, &self.denied_by) {
            (Decided::Deny, Some(rule)) if !entries.iter().any(|e| e.rule == *rule) => {
                entries.push(entry(rule, Decided::Deny.as_str()))
            }
            (Decided::Deny, None) | (Decided::Error, _) => {
                entries.push(entry("", self.decision.as_str()))
            }
            _ => {}
        }
        entries
    }
}

/// A fresh decision id; without randomness (never expected), the time in nanoseconds.
fn decision_id() -> String {
    let mut bytes = [0u8; 16];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => hex::encode(bytes),
        Err(_) => format!(
            "t{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ),
    }
}

/// A duration in whole microseconds.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
