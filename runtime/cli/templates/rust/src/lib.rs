//! {{name}}: a Portcullis sign-in policy.
//!
//! Every path to a token (pre-authentication and pre token generation, so refreshes and
//! first federated sign-ins too): blocks users whose email is in one of `blocked_domains`.
//! Pre token generation: adds a `plan` claim to the ID token of everyone else.
//! Configuration (manifest.json, or a test case's `config`):
//! `{"blocked_domains": ["example.net"], "plan": "free"}`, both optional.

use portcullis_sdk::{EVERY_SIGN_IN, Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct Rule;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    blocked_domains: Vec<String>,
    plan: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            blocked_domains: Vec::new(),
            plan: "free".into(),
        }
    }
}

impl Policy for Rule {
    const DESCRIPTION: &'static str = "blocks configured email domains; adds a plan claim";
    const TRIGGERS: &'static [Trigger] = EVERY_SIGN_IN;

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let email = request.attr("email").unwrap_or_default();
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d).to_lowercase();
        if config.blocked_domains.iter().any(|d| d.to_lowercase() == domain) {
            return Ok(Verdict::deny("Sign-in with this email address is not allowed"));
        }
        if matches!(request.trigger(), Trigger::PreTokenGeneration) {
            return Ok(Verdict::allow().id_claim("plan", config.plan));
        }
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(Rule);

#[cfg(test)]
mod tests {
    use portcullis_sdk::{Policy, Trigger, json, testing};

    use super::Rule;

    #[test]
    fn a_blocked_domain_is_denied_and_others_are_not() {
        let config = json!({"blocked_domains": ["example.net"]});
        let blocked = testing::request(Trigger::PreAuthentication)
            .attr("email", "eve@Example.net")
            .config(config.clone())
            .build();
        assert!(!Rule::evaluate(&blocked).unwrap().is_allowed());
        let other = testing::request(Trigger::PreAuthentication)
            .attr("email", "ada@acme.example")
            .config(config)
            .build();
        assert!(Rule::evaluate(&other).unwrap().is_allowed());
    }

    #[test]
    fn tokens_carry_the_plan() {
        let request = testing::request(Trigger::PreTokenGeneration)
            .config(json!({"plan": "pro"}))
            .build();
        let verdict = Rule::evaluate(&request).unwrap();
        assert_eq!(verdict.id_claim_value("plan"), Some(json!("pro")));
    }
}
