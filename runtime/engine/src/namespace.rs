//! Token namespaces: what a tenant's own rules may put into that tenant's tokens.
//!
//! A tenant's rules decide the tenant's sign-ins and nothing else, so what they emit is
//! checked against a [`TokenPolicy`] the platform (the deployment) sets:
//! - **platform claims** (by default `tenant_id` and `custom:tenant_id`): a tenant rule may
//!   not suppress one, and may set one only to its own tenant id;
//! - **claims a `_global` rule set or suppressed are final**: no tenant rule may change
//!   them (setting the same value again is no change);
//! - **scopes**: a tenant rule may add only scopes matching the tenant's patterns (by default
//!   `{tenant}`, `{tenant}:*`, `{tenant}-*`, `{tenant}/*` and `tenant:{tenant}`); it may not
//!   suppress a scope a global rule added;
//! - **groups and IAM roles**: a tenant rule may override groups only when the deployment
//!   allows it, never the groups a global rule set, and IAM roles (and the preferred role)
//!   only from the deployment's allow-list (empty by default: no roles).
//!
//! A tenant rule that steps outside is that rule's `invalid_output`, named in the decision
//! record, and its `on_error` decides. Global rules are the platform's and are not limited.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::contract::GroupOverride;
use crate::invalid::InvalidOutput;
use crate::verdict::Verdict;

/// What tenant rules may emit. See the module documentation for the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Claims the platform owns (ID and access tokens alike).
    pub platform_claims: BTreeSet<String>,
    /// Scope patterns a tenant rule may add: exact, `prefix*` or `*suffix`, with `{tenant}`
    /// standing for the sign-in's tenant.
    pub tenant_scopes: Vec<String>,
    /// Whether tenant rules may override the user's groups at all.
    pub tenant_groups: bool,
    /// IAM role ARNs a tenant rule may put into a group override.
    pub tenant_roles: BTreeSet<String>,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            platform_claims: ["tenant_id", "custom:tenant_id"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            tenant_scopes: [
                "{tenant}",
                "{tenant}:*",
                "{tenant}-*",
                "{tenant}/*",
                "*:{tenant}",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            tenant_groups: false,
            tenant_roles: BTreeSet::new(),
        }
    }
}

/// What the `_global` rules of a chain have set so far: final for tenant rules.
#[derive(Debug, Clone, Default)]
pub struct GlobalMarks {
    /// ID-token claims set (`Some(value)`) or suppressed (`None`).
    pub id: BTreeMap<String, Option<Value>>,
    /// Access-token claims set or suppressed.
    pub access: BTreeMap<String, Option<Value>>,
    /// Scopes added.
    pub scopes: BTreeSet<String>,
    /// Whether a global rule overrode the groups.
    pub groups: bool,
}

impl GlobalMarks {
    /// Records what a global rule's verdict touched.
    pub fn mark(&mut self, verdict: &Verdict) {
        for (marks, changes) in [
            (&mut self.id, &verdict.id),
            (&mut self.access, &verdict.access),
        ] {
            for (name, value) in &changes.add {
                marks.insert(name.clone(), Some(value.clone()));
            }
            for name in &changes.suppress {
                marks.insert(name.clone(), None);
            }
        }
        self.scopes.extend(verdict.scopes.add.iter().cloned());
        self.groups |= verdict.groups.is_some();
    }
}

fn outside(why: String) -> InvalidOutput {
    InvalidOutput::OutsideNamespace(why)
}

impl TokenPolicy {
    /// Whether a tenant rule of `tenant` may add `scope`.
    pub fn scope_allowed(&self, tenant: &str, scope: &str) -> bool {
        self.tenant_scopes.iter().any(|pattern| {
            let pattern = pattern.replace("{tenant}", tenant);
            if let Some(prefix) = pattern.strip_suffix('*') {
                scope.starts_with(prefix) && scope.len() > prefix.len()
            } else if let Some(suffix) = pattern.strip_prefix('*') {
                scope.ends_with(suffix) && scope.len() > suffix.len()
            } else {
                scope == pattern
            }
        })
    }

    /// Checks a tenant rule's verdict for `tenant` against this policy and what the global
    /// rules set before it.
    pub fn check(
        &self,
        tenant: &str,
        verdict: &Verdict,
        global: &GlobalMarks,
    ) -> Result<(), InvalidOutput> {
        for (token, changes, finals) in [
            ("ID", &verdict.id, &global.id),
            ("access", &verdict.access, &global.access),
        ] {
            for (name, value) in &changes.add {
                if finals
                    .get(name)
                    .is_some_and(|set| set.as_ref() != Some(value))
                {
                    return Err(outside(format!(
                        "{token}-token claim `{name}` was set by a global rule and is final"
                    )));
                }
                if self.platform_claims.contains(name) && value.as_str() != Some(tenant) {
                    return Err(outside(format!(
                        "{token}-token claim `{name}` is the platform's: a tenant rule may only set it to its own tenant"
                    )));
                }
            }
            for name in &changes.suppress {
                let final_value = finals.get(name).is_some_and(Option::is_some);
                if final_value || self.platform_claims.contains(name) {
                    return Err(outside(format!(
                        "{token}-token claim `{name}` is the platform's: a tenant rule may not suppress it"
                    )));
                }
            }
        }
        if let Some(scope) = verdict
            .scopes
            .add
            .iter()
            .find(|s| !self.scope_allowed(tenant, s))
        {
            return Err(outside(format!(
                "scope `{scope}` is outside tenant `{tenant}`'s scopes"
            )));
        }
        if let Some(scope) = verdict
            .scopes
            .suppress
            .iter()
            .find(|s| global.scopes.contains(*s))
        {
            return Err(outside(format!(
                "scope `{scope}` was added by a global rule and is final"
            )));
        }
        if let Some(groups) = &verdict.groups {
            self.check_groups(groups, global)?;
        }
        Ok(())
    }

    fn check_groups(
        &self,
        groups: &GroupOverride,
        global: &GlobalMarks,
    ) -> Result<(), InvalidOutput> {
        if !self.tenant_groups {
            return Err(outside(
                "tenant rules may not override groups in this deployment".into(),
            ));
        }
        if global.groups {
            return Err(outside(
                "the groups were set by a global rule and are final".into(),
            ));
        }
        if let Some(role) = groups
            .iam_roles
            .iter()
            .chain(&groups.preferred_role)
            .find(|r| !self.tenant_roles.contains(*r))
        {
            return Err(outside(format!(
                "IAM role `{role}` is not one a tenant rule may grant"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verdict() -> Verdict {
        Verdict::default()
    }

    #[test]
    fn cross_tenant_claims_scopes_groups_and_roles_are_refused() {
        let policy = TokenPolicy::default();
        let none = GlobalMarks::default();
        let refused = |v: &Verdict| policy.check("acme", v, &none).is_err();
        let mut v = verdict();
        v.id.set("tenant_id".into(), json!("acme"));
        v.access.set("custom:tenant_id".into(), json!("acme"));
        v.id.set("department".into(), json!("sales"));
        v.scopes.add = vec![
            "acme:read".into(),
            "tenant:acme".into(),
            "acme-api/admin".into(),
        ];
        assert!(!refused(&v), "its own tenant and scopes are fine");

        for claim in ["tenant_id", "custom:tenant_id"] {
            let mut v = verdict();
            v.id.set(claim.into(), json!("globex"));
            assert!(refused(&v), "{claim}");
            let mut v = verdict();
            v.access.set(claim.into(), json!(["acme"]));
            assert!(refused(&v), "{claim} as a list");
            let mut v = verdict();
            v.id.remove(claim.into());
            assert!(refused(&v), "suppressing {claim}");
        }
        for scope in [
            "tenant:globex",
            "globex-api/admin",
            "admin",
            "acme",
            "acmex:read",
            "*",
        ] {
            let mut v = verdict();
            v.scopes.add = vec![scope.into()];
            assert_eq!(refused(&v), scope != "acme", "{scope}");
        }
        let mut v = verdict();
        v.groups = Some(GroupOverride {
            groups: vec!["platform-admins".into()],
            iam_roles: vec![],
            preferred_role: None,
        });
        assert!(refused(&v), "groups are off by default");
        let allowing = TokenPolicy {
            tenant_groups: true,
            tenant_roles: ["arn:aws:iam::1:role/AcmeReader".to_owned()].into(),
            ..TokenPolicy::default()
        };
        assert!(allowing.check("acme", &v, &none).is_ok());
        v.groups = Some(GroupOverride {
            groups: vec![],
            iam_roles: vec!["arn:aws:iam::111122223333:role/PlatformAdmin".into()],
            preferred_role: None,
        });
        assert!(
            allowing.check("acme", &v, &none).is_err(),
            "role off the list"
        );
        v.groups = Some(GroupOverride {
            groups: vec![],
            iam_roles: vec!["arn:aws:iam::1:role/AcmeReader".into()],
            preferred_role: Some("arn:aws:iam::111122223333:role/PlatformAdmin".into()),
        });
        assert!(
            allowing.check("acme", &v, &none).is_err(),
            "preferred role too"
        );
    }

    #[test]
    fn what_global_rules_set_is_final() {
        let policy = TokenPolicy::default();
        let mut global = GlobalMarks::default();
        let mut g = verdict();
        g.id.set("roles".into(), json!(["member"]));
        g.access.remove("phone_number".into());
        g.scopes.add = vec!["platform:base".into()];
        global.mark(&g);
        let mut v = verdict();
        v.id.set("roles".into(), json!(["admin"]));
        assert!(policy.check("acme", &v, &global).is_err());
        let mut v = verdict();
        v.access.set("phone_number".into(), json!("+1"));
        assert!(policy.check("acme", &v, &global).is_err());
        let mut v = verdict();
        v.scopes.suppress = vec!["platform:base".into()];
        assert!(policy.check("acme", &v, &global).is_err());
        let mut v = verdict();
        v.id.set("roles2".into(), json!(["admin"]));
        assert!(policy.check("acme", &v, &global).is_ok());
        // The same value again changes nothing and is fine.
        let mut v = verdict();
        v.id.set("roles".into(), json!(["member"]));
        assert!(policy.check("acme", &v, &global).is_ok());
    }
}
