//! The deployment grants the function exactly the actions its code calls: every SDK call in
//! the source is in `iam::CALLS`, and `deploy/template.yaml` grants the function's actions
//! (each on its own resource), nothing more. The template is decoded by cfn-lint (the test
//! command installs it), which understands CloudFormation's short-form tags.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use portcullis_aws::iam::{CALLS, function_actions};
use serde_json::Value;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/template.yaml");

/// The SDK methods called on a `client` in `source`: the word `client` (`self.client`,
/// `client`), then `.method(`.
fn sdk_calls(source: &str) -> BTreeSet<String> {
    let mut calls = BTreeSet::new();
    let mut rest = source;
    while let Some(i) = rest.find("client") {
        let word = i == 0
            || !rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        rest = &rest[i + "client".len()..];
        if !word {
            continue;
        }
        let after = rest.trim_start();
        if let Some(method) = after.strip_prefix('.') {
            let name: String = method
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if method[name.len()..].starts_with('(') {
                calls.insert(name);
            }
        }
    }
    calls
}

fn template() -> Value {
    let script = "import json,sys\nfrom cfnlint.decode import decode\n\
                  t, m = decode(sys.argv[1])\nassert not m, m\nprint(json.dumps(t, default=str))";
    let out = Command::new("python3")
        .args(["-c", script, TEMPLATE])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "decoding the template (is cfn-lint installed? scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(list).collect(),
        other => vec![other.to_string()],
    }
}

#[test]
fn every_sdk_call_is_in_the_table() {
    let mut found = sdk_calls(include_str!("../src/s3.rs"));
    found.extend(sdk_calls(include_str!("../src/dynamo.rs")));
    found.extend(sdk_calls(include_str!("../src/keys.rs")));
    found.extend(sdk_calls(include_str!("../src/counters.rs")));
    let table: BTreeSet<String> = CALLS.iter().map(|c| c.sdk.to_owned()).collect();
    assert_eq!(
        found, table,
        "update iam::CALLS (and the template) with new calls"
    );
}

#[test]
fn the_function_gets_exactly_the_actions_it_uses() {
    let t = template();
    let function = &t["Resources"]["Function"]["Properties"];
    let statements: Vec<&Value> = function["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["Statement"].as_array().unwrap())
        .collect();
    let mut granted = BTreeSet::new();
    let mut resources: BTreeMap<String, String> = BTreeMap::new();
    let mut statements_of: BTreeMap<String, usize> = BTreeMap::new();
    for s in &statements {
        assert_eq!(s["Effect"], "Allow");
        let resource = serde_json::to_string(&s["Resource"]).unwrap();
        for action in list(&s["Action"]) {
            assert!(!action.contains('*'), "wildcard action {action}");
            resources
                .entry(action.clone())
                .or_default()
                .push_str(&resource);
            *statements_of.entry(action.clone()).or_default() += 1;
            granted.insert(action);
        }
    }
    let wanted: BTreeSet<String> = function_actions().iter().map(|a| a.to_string()).collect();
    assert_eq!(granted, wanted);

    // Each action on its own resource: reads under the prefix, writes only to compiled/,
    // data reads on the data table, activity writes on the activity table.
    assert!(resources["s3:GetObject"].contains("${PolicyPrefix}/*"));
    assert!(resources["s3:PutObject"].contains("${PolicyPrefix}/compiled/*"));
    assert!(resources["dynamodb:BatchGetItem"].contains("DataTable"));
    assert!(resources["dynamodb:UpdateItem"].contains("ActivityTable"));
    assert!(resources["dynamodb:BatchWriteItem"].contains("ActivityTable"));
    assert!(!resources["dynamodb:BatchGetItem"].contains("ActivityTable"));
    // Counters: read and written on the counter table; new windows and resets nowhere else.
    for action in ["BatchGetItem", "UpdateItem", "PutItem", "DeleteItem"] {
        let action = format!("dynamodb:{action}");
        assert!(resources[&action].contains("CounterTable"), "{action}");
    }
    for action in ["dynamodb:PutItem", "dynamodb:DeleteItem"] {
        assert_eq!(statements_of[action], 1, "{action}");
        assert!(!resources[action].contains("DataTable"), "{action}");
        assert!(!resources[action].contains("ActivityTable"), "{action}");
    }
    assert!(resources["secretsmanager:GetSecretValue"].contains("ArtifactKeySecret"));
}

#[test]
fn only_the_user_pool_may_invoke_and_the_basics_hold() {
    let t = template();
    let r = &t["Resources"];
    for name in [
        "CreatedPoolInvokePermission",
        "ExistingPoolInvokePermission",
    ] {
        let p = &r[name]["Properties"];
        assert_eq!(p["Principal"], "cognito-idp.amazonaws.com", "{name}");
        assert!(
            !p["SourceArn"].is_null(),
            "{name} must be limited by source ARN"
        );
        assert!(!p["SourceAccount"].is_null(), "{name}");
    }
    let f = &r["Function"]["Properties"];
    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(f["Architectures"], serde_json::json!(["arm64"]));
    assert!(f["Timeout"].as_u64().unwrap() <= 5, "Cognito waits 5 s");
    let bucket = &r["PolicyBucket"]["Properties"];
    assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
    let block = &bucket["PublicAccessBlockConfiguration"];
    for k in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[k], true, "{k}");
    }
    assert_eq!(
        r["ActivityTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"],
        "expires_at"
    );
    for table in ["DataTable", "ActivityTable"] {
        let p = &r[table]["Properties"];
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
    }
    assert!(r["FunctionLogGroup"]["Properties"]["RetentionInDays"].is_object());
}
