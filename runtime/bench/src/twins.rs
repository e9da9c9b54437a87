//! The side-by-side comparison's rule in three forms — native Rust, a Cedar policy, and
//! the Portcullis policy `policies/domain-network` — and the sign-ins they are compared on.
//! Shared by `benches/versus.rs` (which times them) and `tests/agree.rs` (which checks
//! that all three decide alike on every sign-in of the set).
//!
//! The rule: deny a suspended user; otherwise allow only email addresses of the tenant's
//! domain signing in from the tenant's network (`10.0.0.0/8`). Each form reads the same
//! inputs: the tenant's configuration, the `custom:suspended` and `email` attributes and the
//! `ip` client-metadata key.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use portcullis_engine::{SignIn, Trigger};

/// The tenant's configuration, as the Portcullis rule receives it from its manifest.
pub const CONFIG: &str = r#"{"domain": "acme.example", "network": "10.0.0.0/8"}"#;

/// The Cedar twin. The tenant's domain and network are attributes of the tenant entity
/// (built per request, like everything else Cedar sees); the email's domain is computed
/// while building the user entity, since Cedar has no string functions beyond `like`.
pub const CEDAR: &str = r#"
forbid (principal, action == Action::"signIn", resource)
when { principal.suspended };

permit (principal, action == Action::"signIn", resource)
when {
  principal has email_domain &&
  principal.email_domain == resource.domain &&
  context has ip &&
  context.ip.isInRange(resource.network)
};
"#;

/// The set of sign-ins every form is checked on and timed over: each combination of a
/// suspension flag, an email and an address, allowed and denied ones alike.
pub fn sign_ins() -> Vec<Arc<SignIn>> {
    let suspended = [None, Some("false"), Some("true")];
    let emails = [
        Some("ada@acme.example"),
        Some("ADA@Acme.Example"),
        Some("eve@evil.example"),
        Some("eve@sub.acme.example"),
        Some("no-at-sign"),
        None,
    ];
    let ips = [
        Some("10.20.30.40"),
        Some("10.255.255.255"),
        Some("192.168.1.1"),
        Some("::ffff:10.1.2.3"),
        Some("not an address"),
        None,
    ];
    let mut out = Vec::new();
    for s in suspended {
        for e in emails {
            for i in ips {
                out.push(Arc::new(sign_in(s, e, i)));
            }
        }
    }
    out
}

fn sign_in(suspended: Option<&str>, email: Option<&str>, ip: Option<&str>) -> SignIn {
    let mut user_attributes = vec![
        ("sub".into(), "4f8e6c1a-8b0e-4a55-9d1c-0d6f2b7a9e10".into()),
        ("email_verified".into(), "true".into()),
    ];
    if let Some(email) = email {
        user_attributes.push(("email".into(), email.into()));
    }
    if let Some(s) = suspended {
        user_attributes.push(("custom:suspended".into(), s.into()));
    }
    SignIn {
        trigger: Trigger::PreAuthentication,
        trigger_source: "PreAuthentication_Authentication".into(),
        event_version: "1".into(),
        tenant: "acme".into(),
        user_pool_id: "us-east-1_Acme0001".into(),
        client_id: Some("acmewebclient0001".into()),
        user_name: Some("ada".into()),
        user_attributes,
        client_metadata: ip
            .map(|ip| vec![("ip".into(), ip.into())])
            .unwrap_or_default(),
        user_not_found: false,
        new_device_used: None,
        groups: vec![],
        scopes: vec![],
        now_unix_ms: 1_767_596_400_000,
        token_source: portcullis_engine::contract::TokenSource::None,
        federated: false,
        first_federated: false,
        trusted: None,
    }
}

/// The value of `key` among name-value pairs (attributes or client metadata).
fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn attr<'a>(sign_in: &'a SignIn, name: &str) -> Option<&'a str> {
    lookup(&sign_in.user_attributes, name)
}

fn client_meta<'a>(sign_in: &'a SignIn, key: &str) -> Option<&'a str> {
    lookup(&sign_in.client_metadata, key)
}

/// The rule as native Rust, its configuration parsed once.
pub struct Native {
    domain: String,
    network: IpAddr,
    prefix: u32,
}

impl Default for Native {
    /// The configuration of [`CONFIG`].
    fn default() -> Self {
        Native {
            domain: "acme.example".into(),
            network: IpAddr::from([10, 0, 0, 0]),
            prefix: 8,
        }
    }
}

impl Native {
    /// Whether the sign-in is allowed.
    pub fn allows(&self, sign_in: &SignIn) -> bool {
        if attr(sign_in, "custom:suspended") == Some("true") {
            return false;
        }
        let in_domain = attr(sign_in, "email")
            .and_then(|email| email.rsplit_once('@'))
            .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&self.domain));
        let on_network = client_meta(sign_in, "ip")
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| self.contains(ip));
        in_domain && on_network
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The rule as a Cedar policy set, parsed once; entities, context and request are built per
/// decision from the sign-in.
pub struct Cedar {
    policies: PolicySet,
    authorizer: Authorizer,
    user: EntityTypeName,
    tenant: EntityTypeName,
    action: EntityUid,
}

impl Cedar {
    /// Parses [`CEDAR`].
    pub fn new() -> Result<Self, Box<dyn std::error::Error>> {
        Ok(Cedar {
            policies: PolicySet::from_str(CEDAR)?,
            authorizer: Authorizer::new(),
            user: EntityTypeName::from_str("User")?,
            tenant: EntityTypeName::from_str("Tenant")?,
            action: EntityUid::from_str(r#"Action::"signIn""#)?,
        })
    }

    /// Whether the sign-in is allowed: the entities and the request are built here.
    pub fn allows(&self, sign_in: &SignIn) -> Result<bool, Box<dyn std::error::Error>> {
        let principal = EntityUid::from_type_name_and_id(
            self.user.clone(),
            EntityId::new(sign_in.user_name.as_deref().unwrap_or_default()),
        );
        let resource =
            EntityUid::from_type_name_and_id(self.tenant.clone(), EntityId::new(&sign_in.tenant));
        let mut attrs = HashMap::from([(
            "suspended".to_owned(),
            RestrictedExpression::new_bool(attr(sign_in, "custom:suspended") == Some("true")),
        )]);
        if let Some((_, domain)) = attr(sign_in, "email").and_then(|e| e.rsplit_once('@')) {
            attrs.insert(
                "email_domain".to_owned(),
                RestrictedExpression::new_string(domain.to_ascii_lowercase()),
            );
        }
        let user = Entity::new(principal.clone(), attrs, HashSet::new())?;
        let tenant = Entity::new(
            resource.clone(),
            HashMap::from([
                (
                    "domain".to_owned(),
                    RestrictedExpression::new_string("acme.example".to_owned()),
                ),
                (
                    "network".to_owned(),
                    RestrictedExpression::new_ip("10.0.0.0/8"),
                ),
            ]),
            HashSet::new(),
        )?;
        let entities = Entities::from_entities([user, tenant], None)?;
        // Cedar's `ip()` refuses what does not parse, and IPv4 embedded in IPv6
        // (`::ffff:10.1.2.3`, which is IPv6 to `std` and outside `10.0.0.0/8`): such an
        // address is left out, like a missing one, and the rule denies either way.
        let cedar_ip = |ip: &&str| {
            ip.parse::<IpAddr>()
                .is_ok_and(|a| a.is_ipv4() || !ip.contains('.'))
        };
        let context = match client_meta(sign_in, "ip").filter(cedar_ip) {
            Some(ip) => Context::from_pairs([("ip".to_owned(), RestrictedExpression::new_ip(ip))])?,
            None => Context::empty(),
        };
        let request = Request::new(principal, self.action.clone(), resource, context, None)?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        Ok(response.decision() == Decision::Allow)
    }
}
