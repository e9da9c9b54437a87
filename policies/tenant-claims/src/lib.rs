//! Adds tenant claims to tokens in pre token generation: `tenant_id` (the resolved tenant)
//! and `roles` (from the prefetched data item `member`, else from configuration), to the ID
//! token and, for V2/V3 events, the access token with a `tenant:<id>` scope; suppresses the
//! configured claims.
//!
//! Configuration: `{"roles": ["member"], "suppress": ["phone_number"], "scope_prefix":
//! "tenant:"}`, all optional. Data item `member`: `{"roles": ["admin"]}`.

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct TenantClaims;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    roles: Vec<String>,
    suppress: Vec<String>,
    scope_prefix: Option<String>,
}

#[derive(Deserialize)]
struct Member {
    #[serde(default)]
    roles: Vec<String>,
}

impl Policy for TenantClaims {
    const DESCRIPTION: &'static str =
        "adds tenant_id and roles claims and suppresses configured claims";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreTokenGeneration];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let roles = match request.data_as::<Member>("member")? {
            Some(member) => member.roles,
            None => config.roles,
        };
        let tenant = request.tenant();
        let tenant = tenant.as_str();
        let scope = format!(
            "{}{tenant}",
            config.scope_prefix.as_deref().unwrap_or("tenant:")
        );
        let mut verdict = Verdict::allow()
            .id_claim("tenant_id", tenant)
            .id_claim("roles", roles.clone())
            .access_claim("tenant_id", tenant)
            .access_claim("roles", roles)
            .add_scope(scope);
        for claim in config.suppress {
            verdict = verdict.suppress(claim);
        }
        Ok(verdict)
    }
}

portcullis_sdk::export!(TenantClaims);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    #[test]
    fn adds_tenant_and_configured_roles() {
        let r = request(Trigger::PreTokenGeneration)
            .tenant("acme")
            .config(json!({"roles": ["member"], "suppress": ["phone_number"]}))
            .build();
        let v = TenantClaims::evaluate(&r).unwrap();
        assert_eq!(v.id_claim_value("tenant_id"), Some(json!("acme")));
        assert_eq!(v.id_claim_value("roles"), Some(json!(["member"])));
        assert_eq!(v.access_claim_value("tenant_id"), Some(json!("acme")));
        assert_eq!(v.suppressed(), ["phone_number".to_string()]);
        assert_eq!(v.scopes_added(), ["tenant:acme".to_string()]);
    }

    #[test]
    fn roles_from_data_win() {
        let r = request(Trigger::PreTokenGeneration)
            .config(json!({"roles": ["member"]}))
            .data("member", json!({"roles": ["admin", "billing"]}))
            .build();
        let v = TenantClaims::evaluate(&r).unwrap();
        assert_eq!(v.id_claim_value("roles"), Some(json!(["admin", "billing"])));
    }
}
