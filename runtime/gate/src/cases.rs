//! A rule's test cases: a Cognito event, the rule's configuration and data, and what must
//! come out — the decision, the deny message, token claims, the outcome kind, a fuel
//! ceiling. Each case runs the compiled policy through the real engine under production
//! limits; `portcullis test` prints the results and `publish` refuses a module whose cases
//! fail.
//!
//! The file format (`<module>.tests.json`, a list):
//!
//! ```json
//! [{"name": "suspended users are blocked",
//!   "event": "events/pre-auth.json",            // a path beside the file, or inline JSON
//!   "config": {"message": "Account suspended"},  // optional, replaces the rule's
//!   "data": {"user": {"suspended": true}},       // optional: prefetched items by alias
//!   "expect": "deny",                            // allow | deny
//!   "message": "Account suspended",              // optional: the deny message
//!   "claims": {"id": {"tenant_id": "acme"}},     // optional: claims that must be set
//!   "outcome": "deny",                           // optional: allow, deny, timeout, trap, …
//!   "max_fuel": 2000000}]                        // optional: a fuel ceiling
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_engine::budget::Budget;
use portcullis_engine::contract::DataItem;
use portcullis_engine::outcome::{Evaluation, Outcome};
use portcullis_engine::request::RuleInput;
use portcullis_engine::rule::OnError;
use portcullis_engine::sandbox::{CompiledPolicy, Engine};
use serde::Deserialize;
use serde_json::Value;

use crate::cognito::{Event, EventError};

/// One case as written in a test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// What it checks.
    pub name: String,
    /// A Cognito event, inline, or the path of one relative to the test file.
    pub event: Value,
    /// Replaces the rule's configuration.
    #[serde(default)]
    pub config: Option<Value>,
    /// Prefetched data items, by alias (each value JSON).
    #[serde(default)]
    pub data: BTreeMap<String, Value>,
    /// `allow` or `deny`.
    pub expect: Decision,
    /// The deny message expected.
    #[serde(default)]
    pub message: Option<String>,
    /// Claims that must be set: `{"id": {...}, "access": {...}}`.
    #[serde(default)]
    pub claims: ExpectedClaims,
    /// The outcome kind expected (`allow`, `deny`, `timeout`, `out_of_fuel`, `trap`, …).
    #[serde(default)]
    pub outcome: Option<String>,
    /// The most fuel the evaluation may use.
    #[serde(default)]
    pub max_fuel: Option<u64>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The sign-in goes on.
    Allow,
    /// The sign-in is blocked.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Claims a case expects, per token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedClaims {
    /// ID-token claims and their values.
    #[serde(default)]
    pub id: BTreeMap<String, Value>,
    /// Access-token claims and their values.
    #[serde(default)]
    pub access: BTreeMap<String, Value>,
}

/// A case ready to run: its event parsed.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case as written (its `event` field is no longer needed).
    pub spec: CaseFile,
    /// The parsed event.
    pub event: Event,
}

impl Case {
    /// Parses the case's event: inline JSON, or the text `read` returns for a path.
    pub fn new<E: From<EventError>>(
        spec: CaseFile,
        read: impl FnOnce(&str) -> Result<Vec<u8>, E>,
    ) -> Result<Case, E> {
        let event = match &spec.event {
            Value::String(path) => Event::from_slice(&read(path)?)?,
            inline => Event::from_value(inline.clone())?,
        };
        Ok(Case { spec, event })
    }
}

/// What one case gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    /// The case.
    pub name: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// One line per expectation that did not hold.
    pub failures: Vec<String>,
    /// The decision: the verdict's, or the rule's `on_error` for a failure.
    pub decision: Decision,
    /// The outcome kind (`allow`, `deny`, `timeout`, …).
    pub outcome: &'static str,
    /// The deny message or the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fuel used.
    pub fuel: u64,
    /// Wall time in microseconds.
    pub duration_us: u64,
    /// Peak linear memory in bytes.
    pub peak_memory: usize,
}

/// The rule a case runs as: its configuration (JSON text), budget and `on_error`.
#[derive(Debug, Clone)]
pub struct RuleUnderTest {
    /// The rule's own configuration, replaced by a case's `config`.
    pub config: String,
    /// Its budget.
    pub budget: Budget,
    /// What a failure decides.
    pub on_error: OnError,
}

impl Default for RuleUnderTest {
    fn default() -> Self {
        RuleUnderTest {
            config: "null".to_owned(),
            budget: Budget::default(),
            on_error: OnError::Deny,
        }
    }
}

/// Runs `case` with `policy` as `rule`, in a fresh instance under the rule's budget, for a
/// tenant `test`, and checks every expectation.
pub fn run(
    engine: &Engine,
    policy: &CompiledPolicy,
    rule: &RuleUnderTest,
    case: &Case,
) -> CaseResult {
    let spec = &case.spec;
    let config = spec
        .config
        .as_ref()
        .map_or_else(|| rule.config.clone(), Value::to_string);
    let input = RuleInput {
        config: Arc::from(config),
        data: spec
            .data
            .iter()
            .map(|(key, value)| DataItem {
                key: key.clone(),
                value: value.to_string(),
            })
            .collect(),
    };
    let Some(sign_in) = case.event.to_request("test", CASE_NOW_MS) else {
        return CaseResult {
            name: spec.name.clone(),
            passed: false,
            failures: vec![format!(
                "trigger source `{}` is not one Portcullis handles",
                case.event.sign_in.trigger_source
            )],
            decision: Decision::Allow,
            outcome: "pass",
            message: None,
            fuel: 0,
            duration_us: 0,
            peak_memory: 0,
        };
    };
    let evaluation = engine.evaluate(policy, &Arc::new(sign_in), &input, &rule.budget);
    let mut failures = Vec::new();
    let (decision, message) = match &evaluation.outcome {
        Outcome::Verdict(v) => match &v.deny {
            None => (Decision::Allow, None),
            Some(message) => (Decision::Deny, Some(message.clone())),
        },
        Outcome::Failed(failure) => (
            match rule.on_error {
                OnError::Allow => Decision::Allow,
                OnError::Deny => Decision::Deny,
            },
            Some(failure.to_string()),
        ),
    };
    check(
        spec,
        &evaluation,
        decision,
        message.as_deref(),
        &mut failures,
    );
    CaseResult {
        name: spec.name.clone(),
        passed: failures.is_empty(),
        failures,
        decision,
        outcome: evaluation.outcome.kind(),
        message,
        fuel: evaluation.fuel_used,
        duration_us: micros(evaluation.duration),
        peak_memory: evaluation.peak_memory,
    }
}

/// The host time a case runs at (Cognito events carry no clock): fixed, so cases are
/// reproducible — Monday 2026-01-05, 07:00 UTC.
pub const CASE_NOW_MS: i64 = 1_767_596_400_000;

fn check(
    spec: &CaseFile,
    evaluation: &Evaluation,
    decision: Decision,
    message: Option<&str>,
    failures: &mut Vec<String>,
) {
    if decision != spec.expect {
        failures.push(format!(
            "expected {}, got {}{}",
            spec.expect.as_str(),
            decision.as_str(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ));
    }
    if let Some(expected) = &spec.message
        && message != Some(expected.as_str())
    {
        failures.push(format!(
            "expected the message {expected:?}, got {:?}",
            message.unwrap_or("")
        ));
    }
    if let Some(expected) = &spec.outcome
        && evaluation.outcome.kind() != expected
    {
        failures.push(format!(
            "expected the outcome {expected}, got {}",
            evaluation.outcome.kind()
        ));
    }
    if let Some(max) = spec.max_fuel
        && evaluation.fuel_used > max
    {
        failures.push(format!(
            "used {} fuel, over the ceiling of {max}",
            evaluation.fuel_used
        ));
    }
    let verdict = match &evaluation.outcome {
        Outcome::Verdict(v) => Some(v),
        Outcome::Failed(_) => None,
    };
    for (token, expected, set) in [
        ("id", &spec.claims.id, verdict.map(|v| &v.id)),
        ("access", &spec.claims.access, verdict.map(|v| &v.access)),
    ] {
        for (name, value) in expected {
            let got = set.and_then(|changes| changes.get(name));
            if got != Some(value) {
                failures.push(match got {
                    Some(got) => format!("{token} claim `{name}`: expected {value}, got {got}"),
                    None => format!("{token} claim `{name}`: expected {value}, not set"),
                });
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
