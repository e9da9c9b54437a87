//! Denies sign-in when the risk score is above a threshold. The score is a **trusted** one:
//! a field (`key`) of the context envelope the app's backend signed and the host verified.
//!
//! **A client-supplied score is the client's own claim.** `ClientMetadata` comes from the
//! app: a public client (a browser or mobile app) sets it to whatever the user likes, and
//! hosted login cannot send it at all. Only with `"client_supplied": true` does the rule
//! fall back to the client metadata `key` when no trusted score is present. Since a
//! missing score is exactly what an attacker would send, it is denied by default.
//!
//! Configuration: `{"key": "risk_score", "max": 70, "missing": "deny",
//! "message": "Sign-in blocked for your protection", "client_supplied": false}`. The score
//! is a number from 0 to 100; a score that does not parse is a rule error (the rule's
//! `on_error` applies).

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct RiskScore;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_key")]
    key: String,
    max: f64,
    #[serde(default = "default_missing")]
    missing: String,
    #[serde(default = "default_message")]
    message: String,
    #[serde(default)]
    client_supplied: bool,
}

fn default_key() -> String {
    "risk_score".into()
}

fn default_missing() -> String {
    "deny".into()
}

fn default_message() -> String {
    "Sign-in blocked for your protection".into()
}

impl Policy for RiskScore {
    const DESCRIPTION: &'static str = "denies sign-in above a backend-signed risk score";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let trusted = request.trusted().and_then(|context| {
            context
                .fields
                .into_iter()
                .find(|(name, _)| *name == config.key)
                .map(|(_, value)| value)
        });
        let score = match trusted {
            Some(score) => Some(score),
            None if config.client_supplied => request.client_meta(&config.key),
            None => None,
        };
        let Some(raw) = score else {
            return match config.missing.as_str() {
                "allow" => Ok(Verdict::allow()),
                "deny" => Ok(Verdict::deny(config.message)),
                other => Err(Error::msg(format!(
                    "`missing` must be allow or deny, not `{other}`"
                ))),
            };
        };
        let score: f64 = raw
            .trim()
            .parse()
            .map_err(|_| Error::msg(format!("risk score `{}` is not a number", config.key)))?;
        if !(0.0..=100.0).contains(&score) {
            return Err(Error::msg(format!(
                "risk score out of range 0..=100: {score}"
            )));
        }
        if score > config.max {
            return Ok(Verdict::deny(config.message));
        }
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(RiskScore);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(score: Option<&str>) -> Result<Verdict, Error> {
        let mut r = request(Trigger::PreAuthentication).config(json!({"max": 70}));
        if let Some(score) = score {
            r = r.trusted(portcullis_sdk::TrustedContext {
                ip: None,
                user_agent: None,
                device_id: None,
                issued_at_ms: 0,
                fields: vec![("risk_score".into(), score.into())],
            });
        }
        RiskScore::evaluate(&r.build())
    }

    #[test]
    fn client_supplied_scores_only_when_configured() {
        let client = |config| {
            let r = request(Trigger::PreAuthentication)
                .config(config)
                .client_meta("risk_score", "10")
                .build();
            RiskScore::evaluate(&r).unwrap()
        };
        assert!(!client(json!({"max": 70})).is_allowed());
        assert!(client(json!({"max": 70, "client_supplied": true})).is_allowed());
    }

    #[test]
    fn low_score_allowed() {
        assert!(eval(Some("12.5")).unwrap().is_allowed());
        assert!(eval(Some("70")).unwrap().is_allowed());
    }

    #[test]
    fn high_score_denied() {
        assert_eq!(
            eval(Some("71")).unwrap().deny_message(),
            Some("Sign-in blocked for your protection")
        );
    }

    #[test]
    fn a_missing_score_is_denied_unless_configured() {
        assert!(!eval(None).unwrap().is_allowed());
        let lenient = request(Trigger::PreAuthentication)
            .config(json!({"max": 70, "missing": "allow"}))
            .build();
        assert!(RiskScore::evaluate(&lenient).unwrap().is_allowed());
    }

    #[test]
    fn garbage_is_a_rule_error() {
        assert!(eval(Some("high")).is_err());
        assert!(eval(Some("400")).is_err());
    }
}
