//! Typed results of one rule evaluation: [`Outcome`], [`Failure`] and [`InvalidOutput`],
//! plus the measurements in [`Evaluation`].
//!
//! Every way a rule can end has its own variant, so callers match on types, never on
//! message text.

use std::time::Duration;

use crate::contract::{CounterChange, Level};
pub use crate::invalid::InvalidOutput;
use crate::reads::Reads;
use crate::verdict::Verdict;

/// How one rule evaluation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The rule ran and returned a valid verdict (allow or deny, with claim changes).
    Verdict(Verdict),
    /// The rule did not produce a usable verdict; its `on_error` applies.
    Failed(Failure),
}

impl Outcome {
    /// A short, stable name for logs and `--json` output: `allow`, `deny`, `timeout`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Verdict(v) if v.is_allowed() => "allow",
            Outcome::Verdict(_) => "deny",
            Outcome::Failed(f) => f.kind(),
        }
    }
}

/// Why a rule produced no usable verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The wall-clock budget (or the chain's deadline) ran out.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The fuel budget ran out.
    #[error("ran out of fuel ({0} units)")]
    OutOfFuel(u64),
    /// The rule tried to grow its memory past its limit.
    #[error("exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// The rule exceeded a table or instance limit.
    #[error("exceeded a table or instance limit")]
    ResourceLimit,
    /// The rule trapped (a panic, stack overflow, out-of-bounds access, …).
    #[error("trapped: {code}")]
    Trap {
        /// The trap code.
        code: wasmtime::Trap,
    },
    /// The rule returned an error of its own.
    #[error("reported an error: {0}")]
    PolicyError(String),
    /// The rule returned a verdict that breaks the contract or Cognito's rules.
    #[error("returned an invalid verdict: {0}")]
    InvalidOutput(#[from] InvalidOutput),
    /// The data the rule declared could not be fetched.
    #[error("its data could not be fetched: {0}")]
    DataUnavailable(String),
    /// The engine could not run the rule (instantiation failed, pool exhausted, …).
    #[error("could not be run: {0}")]
    Host(String),
}

impl Failure {
    /// A short, stable name for logs and `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Timeout(_) => "timeout",
            Failure::OutOfFuel(_) => "out_of_fuel",
            Failure::MemoryLimit { .. } => "memory_limit",
            Failure::ResourceLimit => "resource_limit",
            Failure::Trap { .. } => "trap",
            Failure::PolicyError(_) => "policy_error",
            Failure::InvalidOutput(_) => "invalid_output",
            Failure::DataUnavailable(_) => "data_unavailable",
            Failure::Host(_) => "host_error",
        }
    }
}

impl Evaluation {
    /// The evaluation as JSON: outcome, verdict or error, and measurements.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = match &self.outcome {
            Outcome::Verdict(verdict) => verdict.to_json(),
            Outcome::Failed(failure) => serde_json::json!({"error": failure.to_string()}),
        };
        if let Some(obj) = out.as_object_mut() {
            obj.insert("outcome".into(), self.outcome.kind().into());
            obj.insert("fuel_used".into(), self.fuel_used.into());
            obj.insert(
                "duration_us".into(),
                u64::try_from(self.duration.as_micros())
                    .unwrap_or(u64::MAX)
                    .into(),
            );
            obj.insert("peak_memory_bytes".into(), self.peak_memory.into());
            let logs: Vec<serde_json::Value> = self
                .logs
                .iter()
                .map(|l| serde_json::json!({"level": l.level.as_str(), "message": l.message}))
                .collect();
            obj.insert("logs".into(), logs.into());
            obj.insert("logs_dropped".into(), self.logs_dropped.into());
        }
        out
    }
}

/// A rule's log line, captured through the bounded `log` import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// The message, truncated by the host.
    pub message: String,
}

/// One rule evaluation: its outcome and what it cost.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// How it ended.
    pub outcome: Outcome,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time, instantiation included (none when the evaluation took a spare instance,
    /// made before it: [`crate::Engine::replenish`]).
    pub duration: Duration,
    /// Peak linear memory in bytes.
    pub peak_memory: usize,
    /// Log lines the rule wrote (bounded).
    pub logs: Vec<LogLine>,
    /// Log lines dropped over the cap.
    pub logs_dropped: usize,
    /// What the rule read of the sign-in.
    pub reads: Reads,
    /// The counter changes the rule asked for, in order; empty unless it returned a
    /// verdict.
    pub counts: Vec<(String, CounterChange)>,
}
