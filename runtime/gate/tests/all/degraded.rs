//! Failures that must not open a hole between tenants or leak who has an account: unknown
//! users answered like real ones, a tenant whose rules fail still under the global rules,
//! audit entries without typed names, V1 events and their dropped changes, writable
//! attributes, client binding, stalled stores, malformed events, group overrides and
//! budgets the deployment cannot give.

use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::{Engine, EngineConfig};
use portcullis_gate::backend::BackendError;
use portcullis_gate::store::{BoxFuture, RuleStore, TenantId};
use portcullis_gate::{FailMode, Handler, HandlerConfig, UNAVAILABLE_MESSAGE};
use serde_json::{Value, json};

use portcullis_testkit::rules::{block, entry, fixture, handle, publish};

use super::isolation::{Items, forger, handler, store_with};

#[test]
fn unknown_users_are_answered_like_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "_global", vec![crate::block_suspended()]);
    publish(
        &store,
        "acme",
        vec![entry(
            "allow",
            art::ALLOW_ALL,
            &["pre-authentication"],
            Value::Null,
        )],
    );
    let closed = HandlerConfig {
        missing_tenant: FailMode::Closed,
        ..HandlerConfig::default()
    };
    let h = handler(&store, closed);
    // With PreventUserExistenceErrors Cognito calls pre-auth for unknown users, with no
    // attributes, so no tenant. A block here while real users pass would tell an attacker
    // which names have accounts: the unknown user takes the real users' path instead.
    let unknown = handle(&h, fixture("pre-auth-user-not-found"));
    let real = handle(&h, fixture("pre-auth"));
    assert!(real.response.is_ok(), "{:?}", real.record);
    assert!(unknown.response.is_ok(), "{:?}", unknown.record);
    assert_eq!(unknown.record.decision, real.record.decision);
    assert_eq!(
        unknown.record.rules[0].rule, "block-suspended",
        "the global rules ran"
    );
    // Without `userNotFound`, the same attribute-less event is a real user with no tenant:
    // the closed mode blocks it.
    let mut no_tenant = fixture("pre-auth-user-not-found");
    no_tenant["request"]["userNotFound"] = json!(false);
    assert_eq!(
        handle(&h, no_tenant).response,
        Err(UNAVAILABLE_MESSAGE.into())
    );
}

#[test]
fn a_tenant_whose_rules_fail_to_load_still_gets_the_global_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "_global", vec![crate::block_suspended()]);
    std::fs::create_dir_all(dir.path().join("tenants/acme")).unwrap();
    std::fs::write(dir.path().join("tenants/acme/manifest.json"), b"{broken").unwrap();
    let open = HandlerConfig {
        fail_mode: FailMode::Open,
        ..HandlerConfig::default()
    };
    let h = handler(&store, open);
    let answer = handle(&h, fixture("pre-auth-suspended"));
    assert_eq!(
        answer.response,
        Err("Your account is suspended".into()),
        "fail open never skips the global rules"
    );
    assert!(handle(&h, fixture("pre-auth")).response.is_ok());
    // Closed: the global deny still decides with its own message; what the global rules
    // allow is then blocked by the fail mode.
    let h = handler(&store, HandlerConfig::default());
    let answer = handle(&h, fixture("pre-auth-suspended"));
    assert_eq!(answer.response, Err("Your account is suspended".into()));
    assert_eq!(answer.record.denied_by.as_deref(), Some("block-suspended"));
    assert_eq!(
        handle(&h, fixture("pre-auth")).response,
        Err(UNAVAILABLE_MESSAGE.into())
    );
}

/// Audit entries kept in memory.
#[derive(Debug, Default)]
struct Audit(std::sync::Mutex<Vec<portcullis_gate::activity::AuditEntry>>);

impl portcullis_gate::activity::Recorder for Audit {
    fn sign_in<'a>(
        &'a self,
        _sign_in: &'a portcullis_gate::activity::SignInActivity,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    fn audit<'a>(
        &'a self,
        entries: &'a [portcullis_gate::activity::AuditEntry],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.0.lock().unwrap().extend(entries.iter().cloned());
            Ok(())
        })
    }
}

#[test]
fn the_audit_never_keeps_the_name_an_unknown_user_typed() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "_global",
        vec![entry(
            "closed",
            art::PANICS,
            &["pre-authentication"],
            Value::Null,
        )],
    );
    let audit = Arc::new(Audit::default());
    let h = portcullis_testkit::rules::gate(&store, HandlerConfig::default(), Duration::ZERO)
        .recorder(audit.clone())
        .build()
        .unwrap();
    let mut unknown = fixture("pre-auth-user-not-found");
    unknown["userName"] = json!("hunter2-typed-as-a-name");
    let answer = handle(&h, unknown);
    assert!(answer.response.is_err(), "the failing rule fails closed");
    let entries = audit.0.lock().unwrap().clone();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e.user.is_empty()), "{entries:?}");
    handle(&h, fixture("pre-auth"));
    assert!(audit.0.lock().unwrap().iter().any(|e| e.user == "ada"));
}

#[test]
fn v1_events_record_the_changes_they_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), forger(json!({"access": {"acme_level": 2}})));
    let h = handler(&store, HandlerConfig::default());
    let answer = handle(&h, fixture("token-v1"));
    assert!(answer.response.is_ok());
    assert!(
        answer.record.problems.iter().any(|p| p.contains("V1_0")),
        "{:?}",
        answer.record.problems
    );
    let strict = HandlerConfig {
        dropped_changes: FailMode::Closed,
        ..HandlerConfig::default()
    };
    let h = handler(&store, strict);
    assert_eq!(
        handle(&h, fixture("token-v1")).response,
        Err(UNAVAILABLE_MESSAGE.into())
    );
    // V2 carries them: nothing dropped.
    let answer = handle(&h, fixture("token-v2"));
    assert!(answer.response.is_ok());
    assert!(
        answer.record.problems.is_empty(),
        "{:?}",
        answer.record.problems
    );
}

#[test]
fn a_writable_attribute_cannot_steer_a_data_key() {
    let mut rule = crate::block_suspended();
    rule.data = [("user".to_owned(), "user#{attr:custom:handle}".to_owned())].into();
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "_global", vec![rule]);
    let source = Items {
        items: [
            (
                "user#ada".to_owned(),
                json!({"suspended": true}).to_string(),
            ),
            // What `ada#x` would have reached without escaping, and a key for a long value.
            (
                "user#ada#x".to_owned(),
                json!({"suspended": false}).to_string(),
            ),
        ]
        .into(),
        fail_on: None,
    };
    let h = portcullis_testkit::rules::gate(&store, HandlerConfig::default(), Duration::ZERO)
        .data(Arc::new(source))
        .build()
        .unwrap();
    let with = |handle_value: &str| {
        let mut event = fixture("pre-auth");
        event["request"]["userAttributes"]["custom:handle"] = json!(handle_value);
        portcullis_testkit::rules::handle(&h, event)
    };
    assert!(with("ada").response.is_err(), "the item is found");
    assert!(with("ada#x").response.is_ok(), "escaped: no such item");
    let long = with(&"a".repeat(600));
    assert_eq!(
        long.response,
        Err(UNAVAILABLE_MESSAGE.into()),
        "an over-long key is data_unavailable (the rule fails closed), never absent"
    );
    assert_eq!(long.record.rules[0].outcome, "data_unavailable");
}

#[test]
fn client_binding_ties_the_tenant_attribute_to_the_app_client() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "acme",
        vec![entry(
            "allow",
            art::ALLOW_ALL,
            &["pre-authentication"],
            Value::Null,
        )],
    );
    let bound = |client: &str, tenant: &str| HandlerConfig {
        client_tenants: [(client.to_owned(), TenantId::new(tenant).unwrap())].into(),
        ..HandlerConfig::default()
    };
    let client = fixture("pre-auth")["callerContext"]["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    let h = handler(&store, bound(&client, "acme"));
    assert!(handle(&h, fixture("pre-auth")).response.is_ok());
    // The attribute says acme, the client belongs to globex: refused.
    let h = handler(&store, bound(&client, "globex"));
    let answer = handle(&h, fixture("pre-auth"));
    assert_eq!(answer.response, Err(UNAVAILABLE_MESSAGE.into()));
    assert!(answer.record.problems[0].contains("client binding"));
    // A client the binding does not list: refused too.
    let h = handler(&store, bound("another-client", "acme"));
    assert!(handle(&h, fixture("pre-auth")).response.is_err());
}

/// A store that never answers (a stalled S3 endpoint).
#[derive(Debug)]
struct Stalled;

impl portcullis_gate::store::ObjectStore for Stalled {
    fn url(&self) -> String {
        "stalled://".into()
    }

    fn get<'a>(
        &'a self,
        _key: &'a str,
        _if_none_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<portcullis_gate::store::Fetched, portcullis_gate::store::StoreError>>
    {
        Box::pin(std::future::pending())
    }

    fn put<'a>(
        &'a self,
        _key: &'a str,
        _bytes: Vec<u8>,
        _condition: portcullis_gate::store::PutIf,
    ) -> BoxFuture<'a, Result<String, portcullis_gate::store::StoreError>> {
        Box::pin(std::future::pending())
    }

    fn list<'a>(
        &'a self,
        _prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, portcullis_gate::store::StoreError>> {
        Box::pin(std::future::pending())
    }

    fn delete<'a>(
        &'a self,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<(), portcullis_gate::store::StoreError>> {
        Box::pin(std::future::pending())
    }
}

#[test]
fn a_stalled_store_is_answered_within_the_invocations_deadline() {
    let store = RuleStore::new(Arc::new(Stalled));
    for (mode, expect_blocked) in [(FailMode::Closed, true), (FailMode::Open, false)] {
        let h = handler(
            &store,
            HandlerConfig {
                fail_mode: mode,
                safety_margin: Duration::from_millis(100),
                ..HandlerConfig::default()
            },
        );
        let start = std::time::Instant::now();
        let deadline = start + Duration::from_millis(400);
        let answer = block(h.handle(fixture("pre-auth"), Some(deadline)));
        let took = start.elapsed();
        // Answered by the deadline less the margin (300 ms), well before Lambda's 400 ms.
        assert!(took < Duration::from_millis(400), "{mode:?}: took {took:?}");
        assert_eq!(answer.response.is_err(), expect_blocked, "{mode:?}");
        assert!(
            answer
                .record
                .problems
                .iter()
                .any(|p| p.contains("deadline")),
            "{:?}",
            answer.record.problems
        );
        // Post-auth is answered without error whatever the store does.
        let answer = block(h.handle(
            fixture("post-auth"),
            Some(std::time::Instant::now() + Duration::from_millis(300)),
        ));
        assert!(answer.response.is_ok());
    }
}

#[test]
fn a_malformed_post_auth_event_is_never_answered_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let h = handler(&store, HandlerConfig::default());
    for broken in [
        json!(["not", "a", "map"]),
        json!(42),
        json!({"nested": {"deeper": true}}),
    ] {
        let mut event = fixture("post-auth");
        event["request"]["clientMetadata"] = broken.clone();
        let answer = handle(&h, event.clone());
        assert_eq!(answer.response, Ok(event), "{broken}");
    }
    // The same shape in pre-auth follows the fail mode (closed).
    let mut event = fixture("pre-auth");
    event["request"]["validationData"] = json!(["x"]);
    assert!(handle(&h, event).response.is_err());
}

#[test]
fn a_group_only_override_keeps_the_users_roles() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "_global",
        vec![entry(
            "platform-groups",
            art::TOKEN_FORGER,
            &["pre-token-generation"],
            json!({"groups": ["readers"]}),
        )],
    );
    let h = handler(&store, HandlerConfig::default());
    let mut event = fixture("token-v2");
    event["request"]["groupConfiguration"] = json!({
        "groupsToOverride": ["admins"],
        "iamRolesToOverride": ["arn:aws:iam::1:role/UserRole"],
        "preferredRole": "arn:aws:iam::1:role/UserRole"
    });
    let response = handle(&h, event).response.expect("allowed");
    let groups = &response["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"];
    assert_eq!(groups["groupsToOverride"], json!(["readers"]));
    assert_eq!(
        groups["iamRolesToOverride"],
        json!(["arn:aws:iam::1:role/UserRole"])
    );
    assert_eq!(groups["preferredRole"], "arn:aws:iam::1:role/UserRole");
}

#[test]
fn a_memory_budget_the_deployment_cannot_give_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let mut rule = entry("big", art::ALLOW_ALL, &["pre-authentication"], Value::Null);
    rule.memory_mb = Some(256);
    publish(&store, "acme", vec![rule]);
    let engine = Arc::new(
        Engine::new(EngineConfig {
            max_concurrent: 2,
            max_memory_bytes: 128 << 20,
            ..EngineConfig::default()
        })
        .unwrap(),
    );
    let h = Handler::builder(store).engine(engine).build().unwrap();
    let answer = handle(&h, fixture("pre-auth"));
    assert_eq!(answer.response, Err(UNAVAILABLE_MESSAGE.into()));
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.contains("over this deployment's limit")),
        "{:?}",
        answer.record.problems
    );
}
