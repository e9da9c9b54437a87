//! Limits how often sign-ins may come from one IP address: a velocity limit over the
//! address the app's backend vouched for (a client's own claim could be anything).
//!
//! The host keeps the count ([`Request::counter`]); the manifest entry declares it, with
//! no reset (a success does not forgive a burst):
//!
//! ```json
//! {"name": "velocity", "triggers": ["pre-authentication"], "module": "sha256:…",
//!  "counters": {"ip": {"key": "ip#{trusted:ip}", "window_s": 60, "reset_on": []}},
//!  "config": {"max_per_window": 20}}
//! ```
//!
//! The `max_per_window` sign-ins of a window pass; later ones in it are blocked until it is
//! over. Configuration (all optional): `{"counter": "ip", "max_per_window": 20, "missing":
//! "allow", "message": "Too many sign-ins from your network. Try again in a minute"}`.
//! Without a verified address there is no count: `missing` decides (`allow` or `deny`).

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct Velocity;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    counter: String,
    max_per_window: u64,
    missing: String,
    message: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            counter: "ip".into(),
            max_per_window: 20,
            missing: "allow".into(),
            message: "Too many sign-ins from your network. Try again in a minute".into(),
        }
    }
}

impl Policy for Velocity {
    const DESCRIPTION: &'static str =
        "blocks sign-ins from an IP address over a rate (host-kept counter, trusted IP)";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let Some(counter) = request.counter(&config.counter)? else {
            return match config.missing.as_str() {
                "allow" => Ok(Verdict::allow()),
                "deny" => Ok(Verdict::deny(config.message)),
                other => Err(Error::msg(format!(
                    "`missing` must be allow or deny, not `{other}`"
                ))),
            };
        };
        if counter.count >= config.max_per_window {
            return Ok(Verdict::deny(config.message));
        }
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(Velocity);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(count: Option<u64>, config: portcullis_sdk::Value) -> Result<Verdict, Error> {
        let mut r = request(Trigger::PreAuthentication).config(config);
        if let Some(count) = count {
            r = r.counter("ip", count, 60, 1_000);
        }
        Velocity::evaluate(&r.build())
    }

    #[test]
    fn the_sign_in_over_the_rate_is_blocked() {
        let limit = json!({"max_per_window": 3});
        assert!(eval(Some(2), limit.clone()).unwrap().is_allowed());
        assert!(!eval(Some(3), limit).unwrap().is_allowed());
    }

    #[test]
    fn without_a_trusted_address_missing_decides() {
        assert!(eval(None, json!({})).unwrap().is_allowed());
        assert!(!eval(None, json!({"missing": "deny"})).unwrap().is_allowed());
        assert!(eval(None, json!({"missing": "maybe"})).is_err());
    }
}
