//! Locks an identifier out after too many failed sign-in attempts within a window: the
//! configurable brute-force lockout Cognito's own (five failures, fixed back-off) is not.
//!
//! The host keeps the count ([`Request::counter`]); the manifest entry declares it, e.g.
//! per user, or per user and backend-vouched IP address:
//!
//! ```json
//! {"name": "lockout", "triggers": ["pre-authentication"], "module": "sha256:…",
//!  "counters": {"attempts": {"key": "user#{username}", "window_s": 900}},
//!  "config": {"max_attempts": 5, "allow_ips": ["10.0.0.0/8"]}}
//! ```
//!
//! By default the host adds one in pre-authentication (every attempt, before the password
//! is checked) and resets the count in post-authentication (a success): the count is the
//! failed attempts since the last success. With `max_attempts` of 5, attempts one to five
//! pass to Cognito's password check; from the sixth in the window on, the sign-in is
//! blocked until the window that the first failure started is over. A blocked attempt
//! counts too.
//!
//! Configuration (all optional): `{"counter": "attempts", "max_attempts": 5,
//! "allow_users": ["svc-monitor"], "allow_ips": ["10.0.0.0/8"], "action": "block",
//! "message": "Too many failed sign-in attempts. Try again later"}`. `allow_users` (user
//! names) and `allow_ips` (CIDRs, matched against the **trusted** IP only) are never locked
//! out. `action` `notify` allows the sign-in and logs a warning instead of blocking. No
//! count (the counter's key had no value) allows.

use std::net::IpAddr;

use ipnet::IpNet;
use portcullis_sdk::{Error, Level, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct Lockout;

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Action {
    #[default]
    Block,
    Notify,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    counter: String,
    max_attempts: u64,
    allow_users: Vec<String>,
    allow_ips: Vec<IpNet>,
    action: Action,
    message: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            counter: "attempts".into(),
            max_attempts: 5,
            allow_users: Vec::new(),
            allow_ips: Vec::new(),
            action: Action::Block,
            message: "Too many failed sign-in attempts. Try again later".into(),
        }
    }
}

impl Policy for Lockout {
    const DESCRIPTION: &'static str =
        "blocks an identifier after N failed attempts within a window (host-kept counter)";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        if config.max_attempts == 0 {
            return Err(Error::msg("`max_attempts` must be at least 1"));
        }
        let Some(counter) = request.counter(&config.counter)? else {
            return Ok(Verdict::allow());
        };
        if counter.count < config.max_attempts {
            return Ok(Verdict::allow());
        }
        let user = request.user_name();
        if user.is_some_and(|u| config.allow_users.contains(&u)) {
            return Ok(Verdict::allow());
        }
        let ip = request
            .trusted_ip()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        if ip.is_some_and(|ip| config.allow_ips.iter().any(|net| net.contains(&ip))) {
            return Ok(Verdict::allow());
        }
        match config.action {
            Action::Block => Ok(Verdict::deny(config.message)),
            Action::Notify => {
                portcullis_sdk::log(
                    Level::Warn,
                    &format!(
                        "lockout threshold reached: {} failed attempts (notify only)",
                        counter.count
                    ),
                );
                Ok(Verdict::allow())
            }
        }
    }
}

portcullis_sdk::export!(Lockout);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(count: Option<u64>, config: portcullis_sdk::Value) -> Verdict {
        let mut r = request(Trigger::PreAuthentication)
            .user_name("ada")
            .trusted_ip("10.1.2.3")
            .config(config);
        if let Some(count) = count {
            r = r.counter("attempts", count, 900, 1_000);
        }
        Lockout::evaluate(&r.build()).unwrap()
    }

    #[test]
    fn the_attempt_after_max_is_blocked() {
        for count in 0..5 {
            assert!(eval(Some(count), json!({})).is_allowed(), "{count}");
        }
        for count in [5, 6, 50] {
            assert_eq!(
                eval(Some(count), json!({})).deny_message(),
                Some("Too many failed sign-in attempts. Try again later")
            );
        }
        assert!(!eval(Some(3), json!({"max_attempts": 3})).is_allowed());
    }

    #[test]
    fn allow_lists_and_notify_let_the_user_through() {
        assert!(eval(Some(9), json!({"allow_users": ["ada"]})).is_allowed());
        assert!(eval(Some(9), json!({"allow_ips": ["10.0.0.0/8"]})).is_allowed());
        assert!(!eval(Some(9), json!({"allow_ips": ["192.168.0.0/16"]})).is_allowed());
        assert!(eval(Some(9), json!({"action": "notify"})).is_allowed());
        assert!(eval(None, json!({})).is_allowed());
    }

    #[test]
    fn bad_configuration_is_an_error() {
        let r = request(Trigger::PreAuthentication)
            .config(json!({"max_attempts": 0}))
            .build();
        assert!(Lockout::evaluate(&r).is_err());
        let r = request(Trigger::PreAuthentication)
            .config(json!({"action": "shout"}))
            .build();
        assert!(Lockout::evaluate(&r).is_err());
    }
}
