//! The rule of the side-by-side benchmark against Cedar and native Rust
//! (`cargo bench -p portcullis-bench --bench versus`): deny a suspended user; otherwise
//! allow only email addresses of the tenant's domain, signing in from the tenant's network.
//!
//! Configuration: `{"domain": "acme.example", "network": "10.0.0.0/8"}`. It reads the
//! configuration, two attributes (`custom:suspended`, `email`) and one client-metadata key
//! (`ip`) — the shape of rule the comparison measures. The address is the **client's own
//! claim** (see `ip-allowlist` for the backend-signed one); the benchmark keeps it so that
//! every contender reads the same three inputs.

use std::net::IpAddr;

use ipnet::IpNet;
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct DomainNetwork;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    domain: String,
    network: IpNet,
}

/// The message a suspended user sees.
pub const SUSPENDED: &str = "This account is suspended";
/// The message anyone else outside the domain or the network sees.
pub const RESTRICTED: &str = "Sign-in is restricted to the tenant's accounts on its network";

impl Policy for DomainNetwork {
    const DESCRIPTION: &'static str =
        "denies suspended users; allows only the tenant's email domain from its network";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        if request.attr("custom:suspended").as_deref() == Some("true") {
            return Ok(Verdict::deny(SUSPENDED));
        }
        let email = request.attr("email");
        let in_domain = email
            .as_deref()
            .and_then(|email| email.rsplit_once('@'))
            .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&config.domain));
        let on_network = request
            .client_meta("ip")
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| config.network.contains(&ip));
        if in_domain && on_network {
            Ok(Verdict::allow())
        } else {
            Ok(Verdict::deny(RESTRICTED))
        }
    }
}

portcullis_sdk::export!(DomainNetwork);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    fn eval(suspended: Option<&str>, email: &str, ip: Option<&str>) -> Verdict {
        let mut r = request(Trigger::PreAuthentication)
            .config(json!({"domain": "acme.example", "network": "10.0.0.0/8"}))
            .attr("email", email);
        if let Some(s) = suspended {
            r = r.attr("custom:suspended", s);
        }
        if let Some(ip) = ip {
            r = r.client_meta("ip", ip);
        }
        DomainNetwork::evaluate(&r.build()).unwrap()
    }

    #[test]
    fn the_tenant_s_domain_from_its_network_is_allowed() {
        assert!(eval(None, "ada@acme.example", Some("10.1.2.3")).is_allowed());
        assert!(eval(Some("false"), "ada@ACME.example", Some("10.255.0.1")).is_allowed());
    }

    #[test]
    fn a_suspended_user_is_denied_whatever_else_holds() {
        let v = eval(Some("true"), "ada@acme.example", Some("10.1.2.3"));
        assert_eq!(v.deny_message(), Some(SUSPENDED));
    }

    #[test]
    fn another_domain_another_network_or_no_address_is_denied() {
        for v in [
            eval(None, "eve@evil.example", Some("10.1.2.3")),
            eval(None, "ada@acme.example", Some("192.168.1.1")),
            eval(None, "ada@acme.example", None),
            eval(None, "ada@acme.example", Some("not an address")),
            eval(None, "no-at-sign", Some("10.1.2.3")),
            eval(None, "eve@sub.acme.example", Some("10.1.2.3")),
        ] {
            assert_eq!(v.deny_message(), Some(RESTRICTED));
        }
    }

    #[test]
    fn missing_config_is_a_rule_error() {
        let r = request(Trigger::PreAuthentication).build();
        assert!(DomainNetwork::evaluate(&r).is_err());
    }
}
