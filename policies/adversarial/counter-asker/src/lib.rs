//! Asks the host for counter changes through the contract's `count`: exactly those its
//! configuration names, in order — declared or not, as many as it likes — and then allows,
//! denies or fails, so tests can check which requests the host applies.
//!
//! Configuration: `{"changes": [["attempts", 5], ["attempts", null], ["other", 1]],
//! "repeat": 1, "then": "allow" | "deny" | "fail"}` (`null` resets), all optional.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct CounterAsker;

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    changes: Vec<(String, Option<u32>)>,
    repeat: usize,
    then: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            changes: Vec::new(),
            repeat: 1,
            then: "allow".into(),
        }
    }
}

impl Policy for CounterAsker {
    const DESCRIPTION: &'static str = "asks for the counter changes its configuration names";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let mut verdict = match config.then.as_str() {
            "deny" => Verdict::deny("denied by the counter asker"),
            "fail" => return Err(Error::msg("failing after asking")),
            _ => Verdict::allow(),
        };
        for _ in 0..config.repeat {
            for (name, by) in &config.changes {
                verdict = match by {
                    Some(by) => verdict.count(name.as_str(), *by),
                    None => verdict.reset(name.as_str()),
                };
            }
        }
        Ok(verdict)
    }
}

portcullis_sdk::export!(CounterAsker);
