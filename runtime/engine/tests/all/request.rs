//! The request is lent to the policy: every one of the `request` resource's methods, read
//! through the SDK inside a real instance, gives back what the host holds, and a policy
//! that reads without end still ends in its budget (the host's methods run on the rule's
//! wall clock and fill its memory).

use portcullis_artifacts as art;
use portcullis_engine::{DataItem, Failure, Outcome, Trigger};
use serde_json::{Value, json};

use crate::{budget, evaluate, load, request};

fn echo(config: &str) -> Outcome {
    let mut r = request(Trigger::PreTokenGeneration);
    r.trigger_source = "TokenGeneration_RefreshTokens".into();
    r.event_version = "2".into();
    r.user_name = None;
    r.user_attributes
        .push(("custom:tenant_id".into(), "acme".into()));
    r.client_metadata = vec![
        ("ip".into(), "10.1.2.3".into()),
        ("app".into(), "web".into()),
    ];
    r.new_device_used = Some(true);
    r.groups = vec!["staff".into(), "admins".into()];
    r.scopes = vec!["openid".into()];
    r.token_source = portcullis_engine::contract::TokenSource::RefreshTokens;
    r.federated = true;
    r.first_federated = false;
    r.trusted = Some(portcullis_engine::contract::TrustedContext {
        ip: Some("203.0.113.7".into()),
        user_agent: None,
        device_id: Some("d-1".into()),
        issued_at_ms: 1_767_596_399_000,
        fields: vec![("risk_score".into(), "12".into())],
    });
    r.config = config.into();
    r.data = vec![DataItem {
        key: "member".into(),
        value: r#"{"roles":["owner"]}"#.into(),
    }];
    evaluate(&load(art::REQUEST_ECHO), &r, &budget()).outcome
}

#[test]
fn every_field_reaches_the_policy_as_the_host_holds_it() {
    let verdict = match echo("null") {
        Outcome::Verdict(v) => v,
        Outcome::Failed(f) => panic!("{f}"),
    };
    let (name, echoed) = verdict.id.add.first().expect("one claim");
    assert_eq!(name, "echo");
    let expected = json!({
        "trigger": "Trigger::PreTokenGeneration",
        "trigger_source": "TokenGeneration_RefreshTokens",
        "event_version": "2",
        "tenant": "acme",
        "user_pool_id": "us-east-1_test",
        "client_id": "client",
        "user_name": Value::Null,
        "email": "ada@example.com",
        "missing_attr": Value::Null,
        "attrs": [["email", "ada@example.com"], ["custom:tenant_id", "acme"]],
        "ip": "10.1.2.3",
        "client_metadata": [["ip", "10.1.2.3"], ["app", "web"]],
        "user_not_found": false,
        "new_device_used": true,
        "groups": ["staff", "admins"],
        "scopes": ["openid"],
        "config": "null",
        "member": r#"{"roles":["owner"]}"#,
        "data_keys": ["member"],
        "now_unix_ms": 1_767_596_400_000_i64,
        "token_source": "TokenSource::RefreshTokens",
        "federated": true,
        "first_federated": false,
        "trusted": {
            "ip": "203.0.113.7",
            "user_agent": Value::Null,
            "device_id": "d-1",
            "issued_at_ms": 1_767_596_399_000_i64,
            "fields": [["risk_score", "12"]],
        },
    });
    assert_eq!(echoed, &expected);
}

#[test]
fn a_policy_that_reads_without_end_ends_in_its_budget() {
    match echo(r#"{"repeat": 100000000}"#) {
        Outcome::Failed(
            Failure::OutOfFuel(_) | Failure::MemoryLimit { .. } | Failure::Timeout(_),
        ) => {}
        other => panic!("expected the budget to run out, got {other:?}"),
    }
}
