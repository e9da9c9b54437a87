//! Allows sign-in only for users whose `email` is in one of the configured domains, and
//! verified: an unverified address is only what the user typed (many pools let users set
//! their own email), so by default it is denied like a foreign one.
//!
//! Configuration: `{"domains": ["example.com"], "subdomains": false,
//! "require_verified": true, "message": "Sign-in is restricted to company accounts"}`.
//! Domains compare case-insensitively; with `subdomains`, `eu.example.com` matches
//! `example.com`.

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct EmailDomain;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    domains: Vec<String>,
    #[serde(default)]
    subdomains: bool,
    #[serde(default = "yes")]
    require_verified: bool,
    #[serde(default = "default_message")]
    message: String,
}

fn yes() -> bool {
    true
}

fn default_message() -> String {
    "Sign-in is restricted to approved email domains".into()
}

fn domain_allowed(domain: &str, config: &Config) -> bool {
    config.domains.iter().any(|allowed| {
        let allowed = allowed.trim_start_matches('@');
        domain.eq_ignore_ascii_case(allowed)
            || (config.subdomains
                && domain.len() > allowed.len()
                && domain
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", allowed.to_ascii_lowercase())))
    })
}

impl Policy for EmailDomain {
    const DESCRIPTION: &'static str = "allows only email addresses in the configured domains";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        if request.user_not_found() {
            return Ok(Verdict::allow());
        }
        if config.require_verified && request.attr("email_verified").as_deref() != Some("true") {
            return Ok(Verdict::deny(config.message));
        }
        let email = request.attr("email");
        let domain = email
            .as_deref()
            .and_then(|email| email.rsplit_once('@'))
            .map(|(_, d)| d);
        match domain {
            Some(domain) if domain_allowed(domain, &config) => Ok(Verdict::allow()),
            _ => Ok(Verdict::deny(config.message)),
        }
    }
}

portcullis_sdk::export!(EmailDomain);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(email: Option<&str>, config: portcullis_sdk::Value) -> Verdict {
        let mut r = request(Trigger::PreAuthentication).config(config);
        if let Some(email) = email {
            r = r.attr("email", email).attr("email_verified", "true");
        }
        EmailDomain::evaluate(&r.build()).unwrap()
    }

    #[test]
    fn allowed_domain() {
        assert!(eval(Some("ada@Example.COM"), json!({"domains": ["example.com"]})).is_allowed());
    }

    #[test]
    fn other_domain_denied() {
        let v = eval(Some("eve@evil.test"), json!({"domains": ["example.com"]}));
        assert_eq!(
            v.deny_message(),
            Some("Sign-in is restricted to approved email domains")
        );
    }

    #[test]
    fn lookalike_domain_denied() {
        let config = json!({"domains": ["example.com"], "subdomains": true});
        assert!(!eval(Some("eve@evilexample.com"), config.clone()).is_allowed());
        assert!(eval(Some("ada@eu.example.com"), config).is_allowed());
    }

    #[test]
    fn an_unverified_address_is_denied_unless_configured() {
        let r = |config| {
            request(Trigger::PreAuthentication)
                .attr("email", "ada@example.com")
                .attr("email_verified", "false")
                .config(config)
                .build()
        };
        let v = EmailDomain::evaluate(&r(json!({"domains": ["example.com"]}))).unwrap();
        assert!(!v.is_allowed());
        let lenient = json!({"domains": ["example.com"], "require_verified": false});
        assert!(EmailDomain::evaluate(&r(lenient)).unwrap().is_allowed());
    }

    #[test]
    fn missing_email_denied() {
        assert!(!eval(None, json!({"domains": ["example.com"]})).is_allowed());
    }

    #[test]
    fn missing_config_is_a_rule_error() {
        let r = request(Trigger::PreAuthentication)
            .attr("email", "a@b.c")
            .build();
        assert!(EmailDomain::evaluate(&r).is_err());
    }
}
