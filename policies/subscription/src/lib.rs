//! Blocks sign-in for tenants whose subscription is not active, from a prefetched data item
//! (alias `tenant` by default, e.g. `"data": {"tenant": "tenant#{tenant}"}`):
//! `{"active": true, "plan": "pro", "expires_ms": 1893456000000}`. In pre token generation
//! it adds the plan as the `plan` claim (ID token, and access token on V2/V3).
//!
//! Configuration (all optional): `{"data": "tenant", "missing": "deny",
//! "message": "Your organisation's subscription is not active"}`. `missing` decides for a
//! tenant with no item (`deny`, the default, or `allow`).

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct Subscription;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    data: String,
    missing: String,
    message: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: "tenant".into(),
            missing: "deny".into(),
            message: "Your organisation's subscription is not active".into(),
        }
    }
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    active: bool,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    expires_ms: Option<i64>,
}

impl Policy for Subscription {
    const DESCRIPTION: &'static str =
        "blocks tenants without an active subscription (data item); adds the plan claim";
    const TRIGGERS: &'static [Trigger] = portcullis_sdk::EVERY_SIGN_IN;

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let Some(item) = request.data_as::<Item>(&config.data)? else {
            return match config.missing.as_str() {
                "deny" => Ok(Verdict::deny(config.message)),
                "allow" => Ok(Verdict::allow()),
                other => Err(Error::msg(format!(
                    "`missing` must be allow or deny, not `{other}`"
                ))),
            };
        };
        let expired = item
            .expires_ms
            .is_some_and(|expires| request.now_unix_ms() >= expires);
        if !item.active || expired {
            return Ok(Verdict::deny(config.message));
        }
        let mut verdict = Verdict::allow();
        if request.trigger() == Trigger::PreTokenGeneration
            && let Some(plan) = item.plan
        {
            verdict = verdict
                .id_claim("plan", plan.clone())
                .access_claim("plan", plan);
        }
        Ok(verdict)
    }
}

portcullis_sdk::export!(Subscription);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(trigger: Trigger, item: Option<portcullis_sdk::Value>) -> Verdict {
        let mut r = request(trigger).now_unix_ms(1_000);
        if let Some(item) = item {
            r = r.data("tenant", item);
        }
        Subscription::evaluate(&r.build()).unwrap()
    }

    #[test]
    fn active_subscription_allowed_with_plan_claim() {
        let item = json!({"active": true, "plan": "pro", "expires_ms": 2_000});
        assert!(eval(Trigger::PreAuthentication, Some(item.clone())).is_allowed());
        let token = eval(Trigger::PreTokenGeneration, Some(item));
        assert_eq!(token.id_claim_value("plan"), Some(json!("pro")));
    }

    #[test]
    fn inactive_expired_or_missing_denied() {
        for item in [
            Some(json!({"active": false})),
            Some(json!({"active": true, "expires_ms": 1_000})),
            None,
        ] {
            let verdict = eval(Trigger::PreAuthentication, item);
            assert_eq!(
                verdict.deny_message(),
                Some("Your organisation's subscription is not active")
            );
        }
    }

    #[test]
    fn missing_can_be_allowed_and_garbage_is_an_error() {
        let r = request(Trigger::PreAuthentication)
            .config(json!({"missing": "allow"}))
            .build();
        assert!(Subscription::evaluate(&r).unwrap().is_allowed());
        let r = request(Trigger::PreAuthentication)
            .data("tenant", json!({"active": "yes"}))
            .build();
        assert!(Subscription::evaluate(&r).is_err());
    }
}
