//! Allows or denies sign-in by client IP address, read from a validation-data (client
//! metadata) key, against CIDR lists.
//!
//! Configuration: `{"key": "ip", "allow": ["10.0.0.0/8"], "deny": ["10.6.6.0/24"],
//! "missing": "deny", "message": "Sign-in is not allowed from this network"}`. A denied
//! network always wins; with a non-empty `allow` list, an address outside it is denied. An
//! absent address follows `missing` (`allow` or `deny`); an address that does not parse is
//! denied.
//!
//! **The address is the client's own claim.** `ClientMetadata` comes from the app: a
//! public client (a browser or mobile app) sends whatever the user makes it send, and
//! Cognito's own view of the caller's IP never reaches a trigger. An allow-list over it
//! only holds when your backend (a confidential client) sends the address it saw.

use std::net::IpAddr;

use ipnet::IpNet;
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct IpAllowlist;

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Missing {
    Allow,
    #[default]
    Deny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_key")]
    key: String,
    #[serde(default)]
    allow: Vec<IpNet>,
    #[serde(default)]
    deny: Vec<IpNet>,
    #[serde(default)]
    missing: Missing,
    #[serde(default = "default_message")]
    message: String,
}

fn default_key() -> String {
    "ip".into()
}

fn default_message() -> String {
    "Sign-in is not allowed from this network".into()
}

impl Policy for IpAllowlist {
    const DESCRIPTION: &'static str = "allows or denies sign-in by client IP against CIDR lists";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let Some(raw) = request.client_meta(&config.key) else {
            return Ok(match config.missing {
                Missing::Allow => Verdict::allow(),
                Missing::Deny => Verdict::deny(config.message),
            });
        };
        let Ok(ip) = raw.trim().parse::<IpAddr>() else {
            return Ok(Verdict::deny(config.message));
        };
        let denied = config.deny.iter().any(|net| net.contains(&ip));
        let allowed = config.allow.is_empty() || config.allow.iter().any(|net| net.contains(&ip));
        if denied || !allowed {
            return Ok(Verdict::deny(config.message));
        }
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(IpAllowlist);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(ip: Option<&str>) -> Verdict {
        let mut r = request(Trigger::PreAuthentication)
            .config(json!({"allow": ["10.0.0.0/8", "2001:db8::/32"], "deny": ["10.6.6.0/24"]}));
        if let Some(ip) = ip {
            r = r.client_meta("ip", ip);
        }
        IpAllowlist::evaluate(&r.build()).unwrap()
    }

    #[test]
    fn inside_allow_list() {
        assert!(eval(Some("10.1.2.3")).is_allowed());
        assert!(eval(Some("2001:db8::1")).is_allowed());
    }

    #[test]
    fn deny_list_wins() {
        assert!(!eval(Some("10.6.6.7")).is_allowed());
    }

    #[test]
    fn outside_allow_list() {
        assert!(!eval(Some("192.0.2.1")).is_allowed());
    }

    #[test]
    fn missing_and_garbage_denied() {
        assert!(!eval(None).is_allowed());
        assert!(!eval(Some("not-an-ip")).is_allowed());
    }

    #[test]
    fn bad_cidr_in_config_is_a_rule_error() {
        let r = request(Trigger::PreAuthentication)
            .config(json!({"allow": ["10.0.0.0/99"]}))
            .build();
        assert!(IpAllowlist::evaluate(&r).is_err());
    }
}
