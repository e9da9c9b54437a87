//! Allows or denies sign-in by the end user's IP address against CIDR lists. The address is
//! the **trusted** one: from the context envelope the app's backend signed and the host
//! verified (`Request::trusted_ip`).
//!
//! Configuration: `{"allow": ["10.0.0.0/8"], "deny": ["10.6.6.0/24"], "missing": "deny",
//! "message": "Sign-in is not allowed from this network", "client_supplied": false,
//! "key": "ip"}`. A denied
//! network always wins; with a non-empty `allow` list, an address outside it is denied. An
//! absent address follows `missing` (`allow` or `deny`); an address that does not parse is
//! denied.
//!
//! **A client-supplied address is the client's own claim.** `ClientMetadata` comes from the
//! app: a public client (a browser or mobile app) sends whatever the user makes it send, and
//! Cognito's own view of the caller's IP never reaches a trigger. Only with
//! `"client_supplied": true` does the rule fall back to the client metadata `key` when no
//! trusted address is present — for a confidential client that sends what it saw.

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
    /// Accept the client's own `key` metadata when no trusted context carries an address.
    #[serde(default)]
    client_supplied: bool,
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
        let address = match request.trusted_ip() {
            Some(ip) => Some(ip),
            None if config.client_supplied => request.client_meta(&config.key),
            None => None,
        };
        let Some(raw) = address else {
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
            r = r.trusted_ip(ip);
        }
        IpAllowlist::evaluate(&r.build()).unwrap()
    }

    #[test]
    fn client_supplied_addresses_only_when_configured() {
        let client = |config| {
            let r = request(Trigger::PreAuthentication)
                .config(config)
                .client_meta("ip", "10.1.2.3")
                .build();
            IpAllowlist::evaluate(&r).unwrap()
        };
        assert!(!client(json!({"allow": ["10.0.0.0/8"]})).is_allowed());
        assert!(client(json!({"allow": ["10.0.0.0/8"], "client_supplied": true})).is_allowed());
        // A trusted address wins over the client's.
        let r = request(Trigger::PreAuthentication)
            .config(json!({"allow": ["10.0.0.0/8"], "client_supplied": true}))
            .client_meta("ip", "10.1.2.3")
            .trusted_ip("192.0.2.1")
            .build();
        assert!(!IpAllowlist::evaluate(&r).unwrap().is_allowed());
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
