//! Asks an external risk service about each sign-in, through a lookup the host makes (the
//! rule itself has no network): a score above the limit blocks; otherwise the tokens say
//! how risky the sign-in looked, so apps can reduce what a risky session may do. When the
//! service is slow or down, the sign-in is allowed **with reduced functionality**: the
//! tokens carry `risk_level: "unknown"`.
//!
//! The manifest entry declares the lookup, with `fallback` so that a failed lookup lets
//! the rule decide instead of failing it:
//!
//! ```json
//! {"name": "risk-api", "triggers": ["every-sign-in"], "module": "sha256:…",
//!  "lookups": {"risk": {"url": "https://risk.example.com/v1/score?user={sub}&ip={trusted:ip}",
//!                       "headers": {"authorization": "Bearer {secret:risk-api-key}"},
//!                       "timeout_ms": 300, "cache_s": 30, "fallback": true}},
//!  "config": {"deny_above": 0.8}}
//! ```
//!
//! The service answers `{"score": 0.0–1.0}`. Configuration (all optional): `{"lookup":
//! "risk", "deny_above": 0.8, "elevated_above": 0.5, "message": "This sign-in looks
//! unusual. Contact your administrator"}`. A score above `deny_above` is denied; above
//! `elevated_above`, `risk_level` is `elevated`; else `low` (ID and access token).

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct RiskApi;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    lookup: String,
    deny_above: f64,
    elevated_above: f64,
    message: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lookup: "risk".into(),
            deny_above: 0.8,
            elevated_above: 0.5,
            message: "This sign-in looks unusual. Contact your administrator".into(),
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    score: f64,
}

impl Policy for RiskApi {
    const DESCRIPTION: &'static str = "blocks sign-ins a risk service scores high (HTTP lookup); marks tokens with the risk level";
    const TRIGGERS: &'static [Trigger] = portcullis_sdk::EVERY_SIGN_IN;

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let level = match request.data_as::<Answer>(&config.lookup)? {
            None => "unknown",
            Some(answer) if !(0.0..=1.0).contains(&answer.score) => {
                return Err(Error::msg("the risk service's score is outside 0 to 1"));
            }
            Some(answer) if answer.score > config.deny_above => {
                return Ok(Verdict::deny(config.message));
            }
            Some(answer) if answer.score > config.elevated_above => "elevated",
            Some(_) => "low",
        };
        let mut verdict = Verdict::allow();
        if request.trigger() == Trigger::PreTokenGeneration {
            verdict = verdict
                .id_claim("risk_level", level)
                .access_claim("risk_level", level);
        }
        Ok(verdict)
    }
}

portcullis_sdk::export!(RiskApi);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(trigger: Trigger, answer: Option<portcullis_sdk::Value>) -> Result<Verdict, Error> {
        let mut r = request(trigger);
        if let Some(answer) = answer {
            r = r.data("risk", answer);
        }
        RiskApi::evaluate(&r.build())
    }

    #[test]
    fn a_high_score_is_denied_and_tokens_carry_the_level() {
        let high = eval(Trigger::PreAuthentication, Some(json!({"score": 0.93}))).unwrap();
        assert!(!high.is_allowed());
        let token = eval(Trigger::PreTokenGeneration, Some(json!({"score": 0.6}))).unwrap();
        assert_eq!(token.id_claim_value("risk_level"), Some(json!("elevated")));
        let token = eval(Trigger::PreTokenGeneration, Some(json!({"score": 0.1}))).unwrap();
        assert_eq!(token.id_claim_value("risk_level"), Some(json!("low")));
    }

    #[test]
    fn without_an_answer_the_sign_in_is_allowed_with_reduced_functionality() {
        assert!(eval(Trigger::PreAuthentication, None).unwrap().is_allowed());
        let token = eval(Trigger::PreTokenGeneration, None).unwrap();
        assert_eq!(token.id_claim_value("risk_level"), Some(json!("unknown")));
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        assert!(eval(Trigger::PreAuthentication, Some(json!({"score": 7}))).is_err());
        assert!(eval(Trigger::PreAuthentication, Some(json!({"risk": "high"}))).is_err());
    }
}
