//! Blocks suspended users: a user attribute (`custom:suspended` by default) set to `true`,
//! or a prefetched data item (alias `user` by default) whose `suspended` field is `true`.
//!
//! Configuration (all optional):
//! `{"attribute": "custom:suspended", "data": "user", "message": "Your account is suspended"}`.

use portcullis_sdk::{EVERY_SIGN_IN, Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct SuspendedUsers;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    attribute: String,
    data: String,
    message: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            attribute: "custom:suspended".into(),
            data: "user".into(),
            message: "Your account is suspended".into(),
        }
    }
}

#[derive(Deserialize)]
struct UserItem {
    #[serde(default)]
    suspended: bool,
}

impl Policy for SuspendedUsers {
    const DESCRIPTION: &'static str =
        "blocks users flagged suspended by an attribute or a prefetched data item";
    // Every path to a token: a refresh or a first federated sign-in never passes
    // pre-authentication, so the block runs in pre token generation too.
    const TRIGGERS: &'static [Trigger] = EVERY_SIGN_IN;

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        if request.user_not_found() {
            // Nothing to say about users that do not exist; Cognito fails them anyway.
            return Ok(Verdict::allow());
        }
        let by_attribute = request
            .attr(&config.attribute)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let by_data = request
            .data_as::<UserItem>(&config.data)?
            .is_some_and(|item| item.suspended);
        if by_attribute || by_data {
            return Ok(Verdict::deny(config.message));
        }
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(SuspendedUsers);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(r: portcullis_sdk::testing::RequestBuilder) -> Verdict {
        match SuspendedUsers::evaluate(&r.build()) {
            Ok(v) => v,
            Err(e) => panic!("policy failed: {e}"),
        }
    }

    #[test]
    fn suspended_attribute_denies() {
        let v = eval(request(Trigger::PreAuthentication).attr("custom:suspended", "true"));
        assert_eq!(v.deny_message(), Some("Your account is suspended"));
    }

    #[test]
    fn suspended_data_item_denies() {
        let v = eval(request(Trigger::PreAuthentication).data("user", json!({"suspended": true})));
        assert!(!v.is_allowed());
    }

    #[test]
    fn every_path_to_a_token_is_blocked() {
        for source in [
            "TokenGeneration_RefreshTokens",
            "TokenGeneration_Authentication",
            "TokenGeneration_HostedAuth",
        ] {
            let v = eval(
                request(Trigger::PreTokenGeneration)
                    .source(source, "2")
                    .attr("custom:suspended", "true"),
            );
            assert!(!v.is_allowed(), "{source}");
        }
    }

    #[test]
    fn active_user_allowed() {
        let v = eval(
            request(Trigger::PreAuthentication)
                .attr("custom:suspended", "false")
                .data("user", json!({"suspended": false})),
        );
        assert!(v.is_allowed());
    }

    #[test]
    fn custom_message_and_attribute() {
        let v = eval(
            request(Trigger::PreAuthentication)
                .config(json!({"attribute": "custom:locked", "message": "Locked"}))
                .attr("custom:locked", "1"),
        );
        assert_eq!(v.deny_message(), Some("Locked"));
    }

    #[test]
    fn malformed_data_item_is_a_rule_error() {
        let r = request(Trigger::PreAuthentication)
            .data("user", json!({"suspended": "yes"}))
            .build();
        assert!(SuspendedUsers::evaluate(&r).is_err());
    }
}
