//! Tenant isolation, tried as a hostile tenant would: token changes that reach for another
//! tenant or the platform, data declarations that try to switch a global rule off, tenant
//! values that try to escape their tenant, and unknown users that must look like real ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::OnError;
use portcullis_gate::backend::BackendError;
use portcullis_gate::data::DataSource;
use portcullis_gate::manifest::{Manifest, RuleEntry};
use portcullis_gate::store::{BoxFuture, RuleStore, TenantId};
use portcullis_gate::{Handler, HandlerConfig, UNAVAILABLE_MESSAGE};
use serde_json::{Value, json};

use portcullis_testkit::rules::{entry, fixture, handle, publish};

/// A handler that revalidates on every invocation.
pub fn handler(store: &RuleStore, config: HandlerConfig) -> Handler {
    portcullis_testkit::rules::handler(store, config, Duration::ZERO)
}

/// A tenant's pre-token rule that emits what `config` says.
pub fn forger(config: Value) -> RuleEntry {
    entry(
        "tenant-tokens",
        art::TOKEN_FORGER,
        &["pre-token-generation"],
        config,
    )
}

/// `_global` sets the tenant claims; acme runs `forger` after it.
pub fn store_with(dir: &std::path::Path, acme: RuleEntry) -> RuleStore {
    let store = RuleStore::dir(dir);
    publish(
        &store,
        "_global",
        vec![entry(
            "platform-claims",
            art::TENANT_CLAIMS,
            &["pre-token-generation"],
            json!({"roles": ["member"]}),
        )],
    );
    publish(&store, "acme", vec![acme]);
    store
}

#[test]
fn a_tenant_rule_cannot_mint_another_tenants_or_the_platforms_tokens() {
    let attacks = [
        json!({"id": {"tenant_id": "globex"}}),
        json!({"id": {"custom:tenant_id": "globex"}}),
        json!({"access": {"tenant_id": "globex"}}),
        json!({"suppress": ["tenant_id"]}),
        json!({"id": {"roles": ["admin"]}}),
        json!({"scopes": ["tenant:globex"]}),
        json!({"scopes": ["globex-api/admin"]}),
        json!({"suppress_scopes": ["tenant:acme"]}),
        json!({"groups": ["platform-admins"]}),
        json!({"roles": ["arn:aws:iam::111122223333:role/PlatformAdmin"]}),
        json!({"groups": [], "preferred_role": "arn:aws:iam::111122223333:role/PlatformAdmin"}),
    ];
    for attack in attacks {
        for event in ["token-v2", "token-v1"] {
            let dir = tempfile::tempdir().unwrap();
            let store = store_with(dir.path(), forger(attack.clone()));
            let h = handler(&store, HandlerConfig::default());
            let answer = handle(&h, fixture(event));
            assert_eq!(
                answer.response,
                Err(UNAVAILABLE_MESSAGE.into()),
                "{attack} in {event}: the forging rule fails closed, no token"
            );
            let rule = &answer.record.rules[1];
            assert_eq!(rule.outcome, "invalid_output", "{attack}");
            assert!(
                rule.error.as_deref().unwrap_or("").contains("namespace"),
                "{attack}: {:?}",
                rule.error
            );
        }
    }

    // Within its own namespace a tenant rule is free, and the platform's claims stand.
    let dir = tempfile::tempdir().unwrap();
    let own = forger(json!({
        "id": {"department": "sales", "tenant_id": "acme", "roles": ["member"]},
        "scopes": ["acme:read", "acme-api/write"]
    }));
    let store = store_with(dir.path(), own);
    let h = handler(&store, HandlerConfig::default());
    let answer = handle(&h, fixture("token-v2"));
    let response = answer.response.expect("allowed");
    let details = &response["response"]["claimsAndScopeOverrideDetails"];
    let id = &details["idTokenGeneration"]["claimsToAddOrOverride"];
    assert_eq!(id["tenant_id"], "acme");
    assert_eq!(id["department"], "sales");
    assert_eq!(
        details["accessTokenGeneration"]["scopesToAdd"],
        json!(["tenant:acme", "acme:read", "acme-api/write"])
    );
}

#[test]
fn a_deployment_may_let_tenants_grant_their_own_groups_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let acme_role = "arn:aws:iam::111122223333:role/AcmeReader";
    let store = store_with(
        dir.path(),
        forger(json!({"groups": ["acme-readers"], "roles": [acme_role]})),
    );
    let config = HandlerConfig {
        tokens: portcullis_engine::namespace::TokenPolicy {
            tenant_groups: true,
            tenant_roles: [acme_role.to_owned()].into(),
            ..Default::default()
        },
        ..HandlerConfig::default()
    };
    let h = handler(&store, config);
    let response = handle(&h, fixture("token-v2")).response.expect("allowed");
    let groups = &response["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"];
    assert_eq!(groups["groupsToOverride"], json!(["acme-readers"]));
    assert_eq!(groups["iamRolesToOverride"], json!([acme_role]));
}

/// Data for tests: items by key; a fetch that asks for a key starting with `fail_on`
/// fails as a whole (a throttled or overloaded table).
#[derive(Debug, Default)]
pub struct Items {
    pub items: HashMap<String, String>,
    pub fail_on: Option<String>,
}

impl DataSource for Items {
    fn fetch<'a>(
        &'a self,
        _tenant: &'a TenantId,
        keys: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, BackendError>> {
        Box::pin(async move {
            if let Some(prefix) = &self.fail_on
                && keys.iter().any(|k| k.starts_with(prefix.as_str()))
            {
                return Err(BackendError::Timeout {
                    operation: "BatchGetItem",
                    after: Duration::from_millis(100),
                });
            }
            Ok(keys
                .iter()
                .filter_map(|k| Some((k.clone(), self.items.get(k)?.clone())))
                .collect())
        })
    }
}

#[test]
fn a_tenant_cannot_switch_off_a_global_rule_through_data() {
    let sub = fixture("pre-auth")["request"]["userAttributes"]["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut global_rule = entry(
        "block-suspended",
        art::SUSPENDED_USERS,
        &["pre-authentication"],
        Value::Null,
    );
    global_rule.data = [("user".to_owned(), "user#{sub}".to_owned())].into();
    // The tenant names its rule like the global one and declares data whose fetch fails.
    let mut tenant_rule = entry(
        "block-suspended",
        art::ALLOW_ALL,
        &["pre-authentication"],
        Value::Null,
    );
    tenant_rule.on_error = OnError::Allow;
    tenant_rule.data = (0..16)
        .map(|i| (format!("a{i}"), format!("slow#{i}#{{sub}}")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "_global", vec![global_rule]);
    publish(&store, "acme", vec![tenant_rule]);
    let source = Items {
        items: [(
            format!("user#{sub}"),
            json!({"suspended": true}).to_string(),
        )]
        .into(),
        fail_on: Some("slow#".into()),
    };
    let h = portcullis_testkit::rules::gate(&store, HandlerConfig::default(), Duration::ZERO)
        .data(Arc::new(source))
        .build()
        .unwrap();
    let answer = handle(&h, fixture("pre-auth"));
    assert_eq!(
        answer.response,
        Err("Your account is suspended".into()),
        "the global rule got its own data: {:?}",
        answer.record
    );
    let global = &answer.record.rules[0];
    assert_eq!(global.outcome, "deny");
    assert_eq!(
        serde_json::to_value(global.origin).unwrap(),
        json!("global")
    );

    // A manifest that declares more data than a chain may fetch is refused outright.
    let mut greedy = entry(
        "greedy",
        art::ALLOW_ALL,
        &["pre-authentication"],
        Value::Null,
    );
    greedy.data = (0..20_000)
        .map(|i| (format!("a{i}"), format!("k#{i}")))
        .collect();
    let manifest = Manifest {
        revision: 1,
        rules: vec![greedy],
        ..Manifest::default()
    };
    assert!(manifest.validate().is_err());
    let split: Vec<RuleEntry> = (0..7)
        .map(|r| {
            let mut rule = entry(
                &format!("r{r}"),
                art::ALLOW_ALL,
                &["pre-authentication"],
                Value::Null,
            );
            rule.data = (0..16)
                .map(|i| (format!("a{i}"), format!("k#{r}#{i}")))
                .collect();
            rule
        })
        .collect();
    let manifest = Manifest {
        revision: 1,
        rules: split,
        ..Manifest::default()
    };
    assert!(
        manifest.validate().is_err(),
        "112 aliases over 7 rules: over the manifest's limit"
    );
}

#[test]
fn tenant_values_that_escape_their_tenant_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "acme",
        vec![entry(
            "company-email",
            art::EMAIL_DOMAIN,
            &["pre-authentication"],
            json!({"domains": ["globex.example"]}),
        )],
    );
    let h = handler(&store, HandlerConfig::default());
    assert!(
        handle(&h, fixture("pre-auth")).response.is_err(),
        "acme's rule blocks ada"
    );
    for value in [
        "Acme", "acme ", " acme", "_global", "_acme", "acme/x", "ACME", "",
    ] {
        let mut event = fixture("pre-auth");
        event["request"]["userAttributes"]["custom:tenant_id"] = json!(value);
        let answer = handle(&h, event);
        assert_eq!(
            answer.response,
            Err(UNAVAILABLE_MESSAGE.into()),
            "{value:?} fails closed"
        );
        assert_eq!(answer.record.tenant, None);
        assert!(
            !format!("{:?}", answer.record).contains(value) || value.len() < 2,
            "the value is never repeated"
        );
        // Post-auth is never failed.
        let mut post = fixture("post-auth");
        post["request"]["userAttributes"]["custom:tenant_id"] = json!(value);
        assert!(handle(&h, post).response.is_ok(), "{value:?}");
    }
}
