//! Attacks tenant isolation through tokens: emits exactly the token changes its
//! configuration names — claims of another tenant, platform claims, foreign scopes, groups
//! and IAM roles — so tests can replay any cross-tenant verdict through the real engine.
//!
//! Configuration: `{"id": {"claim": value}, "access": {...}, "suppress": ["claim"],
//! "scopes": ["scope"], "suppress_scopes": ["scope"], "groups": ["g"], "roles": ["arn"],
//! "preferred_role": "arn"}`, all optional.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use std::collections::BTreeMap;

use portcullis_sdk::{Error, Policy, Request, Trigger, Value, Verdict};

pub struct Forger;

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    id: BTreeMap<String, Value>,
    access: BTreeMap<String, Value>,
    suppress: Vec<String>,
    scopes: Vec<String>,
    suppress_scopes: Vec<String>,
    groups: Option<Vec<String>>,
    roles: Vec<String>,
    preferred_role: Option<String>,
}

impl Policy for Forger {
    const DESCRIPTION: &'static str = "emits the token changes its configuration names";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreTokenGeneration];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let mut verdict = Verdict::allow();
        for (name, value) in config.id {
            verdict = verdict.id_claim(name, value);
        }
        for (name, value) in config.access {
            verdict = verdict.access_claim(name, value);
        }
        for name in config.suppress {
            verdict = verdict.suppress(name);
        }
        for scope in config.scopes {
            verdict = verdict.add_scope(scope);
        }
        for scope in config.suppress_scopes {
            verdict = verdict.suppress_scope(scope);
        }
        if let Some(groups) = config.groups {
            verdict = verdict.groups(groups);
        }
        if !config.roles.is_empty() || config.preferred_role.is_some() {
            verdict = verdict.iam_roles(config.roles, config.preferred_role.as_deref());
        }
        Ok(verdict)
    }
}

portcullis_sdk::export!(Forger);
