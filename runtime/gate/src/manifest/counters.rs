//! A rule's `counters` as written in a manifest, and their validation into
//! [`CounterSpec`]s (what a counter does is [`crate::data::counters`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use portcullis_engine::contract::Trigger;

use super::{RuleProblem, triggers_named};
use crate::data::KeyTemplate;
use crate::data::counters::{CounterSpec, MAX_COUNTERS_PER_RULE, MAX_WINDOW_S};

/// One counter as written in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterEntry {
    /// Key template, e.g. `user#{sub}` or `ip#{trusted:ip}`.
    pub key: String,
    /// The window in seconds (1 to 604800): the first count starts it.
    pub window_s: u64,
    /// Triggers that add one (default `["pre-authentication"]`: an attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_on: Option<Vec<String>>,
    /// Triggers that reset it (default `["post-authentication"]`: a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_on: Option<Vec<String>>,
}

/// What is wrong with one counter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterProblem {
    /// Too many counters on one rule.
    #[error("declares {0} counters, over the limit of {MAX_COUNTERS_PER_RULE}")]
    TooMany(usize),
    /// A name that is empty, too long, or also a data alias.
    #[error("counter name must be 1 to 64 characters and not also a data alias")]
    Name,
    /// The window is out of range.
    #[error("window_s must be 1 to {MAX_WINDOW_S}, not {0}")]
    Window(u64),
    /// A trigger that is not one.
    #[error("{0}")]
    Trigger(String),
    /// A trigger both counts and resets.
    #[error("a trigger cannot both count and reset")]
    Both,
    /// The key template cannot be used.
    #[error("key: {0}")]
    Key(String),
}

/// Validates a rule's counters; `aliases` are its data aliases (names must differ).
pub(super) fn validate<'a>(
    counters: impl ExactSizeIterator<Item = (&'a String, &'a CounterEntry)>,
    aliases: &[(String, KeyTemplate)],
) -> Result<Vec<CounterSpec>, RuleProblem> {
    if counters.len() > MAX_COUNTERS_PER_RULE {
        return Err(RuleProblem::Counter {
            name: String::new(),
            problem: CounterProblem::TooMany(counters.len()),
        });
    }
    counters
        .map(|(name, entry)| {
            entry
                .validate(name, aliases)
                .map_err(|problem| RuleProblem::Counter {
                    name: name.clone(),
                    problem,
                })
        })
        .collect()
}

impl CounterEntry {
    fn validate(
        &self,
        name: &str,
        aliases: &[(String, KeyTemplate)],
    ) -> Result<CounterSpec, CounterProblem> {
        if name.is_empty() || name.len() > 64 || aliases.iter().any(|(a, _)| a == name) {
            return Err(CounterProblem::Name);
        }
        if !(1..=MAX_WINDOW_S).contains(&self.window_s) {
            return Err(CounterProblem::Window(self.window_s));
        }
        let key = KeyTemplate::parse(&self.key).map_err(|e| CounterProblem::Key(e.to_string()))?;
        let triggers = |names: &Option<Vec<String>>, default: Trigger| match names {
            None => Ok(vec![default]),
            Some(names) => {
                let mut out = Vec::new();
                for name in names {
                    let named =
                        triggers_named(name).map_err(|e| CounterProblem::Trigger(e.to_string()))?;
                    out.extend(
                        named
                            .iter()
                            .filter(|t| !out.contains(*t))
                            .copied()
                            .collect::<Vec<_>>(),
                    );
                }
                Ok(out)
            }
        };
        let count_on = triggers(&self.count_on, Trigger::PreAuthentication)?;
        let reset_on = triggers(&self.reset_on, Trigger::PostAuthentication)?;
        if count_on.iter().any(|t| reset_on.contains(t)) {
            return Err(CounterProblem::Both);
        }
        Ok(CounterSpec {
            name: name.to_owned(),
            key,
            window_ms: i64::try_from(self.window_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            count_on,
            reset_on,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Manifest, ManifestError};
    use super::*;

    fn rule(counters: serde_json::Value) -> Result<Vec<CounterSpec>, ManifestError> {
        let digest = format!("sha256:{}", portcullis_engine::digest::Sha256::of(b"m"));
        let doc = serde_json::json!({"revision": 1, "rules": [{
            "name": "lockout", "module": digest, "triggers": ["pre-authentication"],
            "data": {"user": "user#{sub}"}, "counters": counters,
        }]});
        let specs = Manifest::parse(doc.to_string().as_bytes())?.validate()?;
        Ok(specs
            .into_iter()
            .next()
            .map(|s| s.counters)
            .unwrap_or_default())
    }

    #[test]
    fn defaults_count_attempts_and_reset_on_success() {
        let specs = rule(serde_json::json!({
            "attempts": {"key": "user#{sub}", "window_s": 900},
            "ip": {"key": "ip#{trusted:ip}", "window_s": 60, "count_on": ["every-sign-in"], "reset_on": []},
        }))
        .unwrap();
        assert_eq!(specs.len(), 2);
        let attempts = specs.iter().find(|s| s.name == "attempts").unwrap();
        assert_eq!(attempts.window_ms, 900_000);
        assert_eq!(attempts.count_on, [Trigger::PreAuthentication]);
        assert_eq!(attempts.reset_on, [Trigger::PostAuthentication]);
        let ip = specs.iter().find(|s| s.name == "ip").unwrap();
        assert_eq!(
            ip.count_on,
            [Trigger::PreAuthentication, Trigger::PreTokenGeneration]
        );
        assert!(ip.reset_on.is_empty());
    }

    #[test]
    fn bad_counters_are_refused_with_the_counter_named() {
        for (bad, what) in [
            (
                serde_json::json!({"a": {"key": "k", "window_s": 0}}),
                "window_s",
            ),
            (
                serde_json::json!({"a": {"key": "k", "window_s": 604_801}}),
                "window_s",
            ),
            (
                serde_json::json!({"a": {"key": "{nope}", "window_s": 1}}),
                "placeholder",
            ),
            (
                serde_json::json!({"user": {"key": "k", "window_s": 1}}),
                "data alias",
            ),
            (
                serde_json::json!({"a": {"key": "k", "window_s": 1, "count_on": ["sometimes"]}}),
                "trigger",
            ),
            (
                serde_json::json!({"a": {"key": "k", "window_s": 1, "reset_on": ["pre-authentication"]}}),
                "both",
            ),
            (
                serde_json::json!({"a": {"key": "k", "window_s": 1, "by": 2}}),
                "unknown field",
            ),
            (
                serde_json::json!({"a": {"key": "k", "window_s": 1}, "b": {"key": "k", "window_s": 1},
                "c": {"key": "k", "window_s": 1}, "d": {"key": "k", "window_s": 1},
                "e": {"key": "k", "window_s": 1}}),
                "limit",
            ),
        ] {
            let error = rule(bad.clone()).unwrap_err().to_string();
            assert!(error.contains(what), "{bad}: {error}");
        }
    }
}
