//! The Lambda as Cognito sees it: AWS-shaped events in over the Invoke API, answers out.

use std::path::Path;

use portcullis_artifacts as art;
use portcullis_engine::{Mode, OnError};
use portcullis_gate::manifest::RuleEntry;
use portcullis_gate::store::{RuleStore, TenantId};
use serde_json::{Value, json};

use portcullis_testkit::lambda::{Invoked, Lambda};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");

pub fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}.json")).unwrap()).unwrap()
}

pub fn entry(name: &str, path: &str, trigger: &str, on_error: OnError, config: Value) -> RuleEntry {
    RuleEntry {
        name: name.into(),
        module: path.into(),
        triggers: vec![trigger.into()],
        timeout_ms: None,
        fuel: None,
        memory_mb: None,
        on_error,
        mode: Mode::Enforce,
        config,
        data: Default::default(),
        counters: Default::default(),
        lookups: Default::default(),
    }
}

/// Publishes `rules` for `tenant`, storing the modules they name by path.
pub fn publish(store: &RuleStore, tenant: &str, mut rules: Vec<RuleEntry>) -> u64 {
    portcullis_testkit::rules::block(async {
        for rule in &mut rules {
            let bytes = std::fs::read(&rule.module).unwrap();
            rule.module = store.put_module(bytes).await.unwrap().to_string();
        }
        let tenant = TenantId::new(tenant).unwrap();
        let current = store
            .current(&tenant)
            .await
            .unwrap()
            .map_or(0, |c| c.manifest.revision);
        store
            .publish(&tenant, rules, current)
            .await
            .unwrap()
            .revision
    })
}

/// `_global` blocks suspended users; acme checks e-mail domains, adds claims, and has a
/// post-auth rule that traps.
fn seed(dir: &Path) {
    let store = RuleStore::dir(dir);
    publish(
        &store,
        "_global",
        vec![entry(
            "block-suspended",
            art::SUSPENDED_USERS,
            "pre-authentication",
            OnError::Deny,
            json!(null),
        )],
    );
    publish(
        &store,
        "acme",
        vec![
            entry(
                "company-email",
                art::EMAIL_DOMAIN,
                "pre-authentication",
                OnError::Deny,
                json!({"domains": ["acme.example"]}),
            ),
            entry(
                "claims",
                art::TENANT_CLAIMS,
                "pre-token-generation",
                OnError::Deny,
                json!({"roles": ["member"], "suppress": ["phone_number"]}),
            ),
            entry(
                "flaky",
                art::PANICS,
                "post-authentication",
                OnError::Deny,
                json!(null),
            ),
        ],
    );
}

fn start(dir: &Path) -> Lambda {
    Lambda::start(
        Path::new(env!("CARGO_BIN_EXE_bootstrap")),
        &[
            ("PORTCULLIS_STORE", format!("file://{}", dir.display())),
            // The reap after each answer (`after.rs`) logs at debug.
            ("PORTCULLIS_LOG", "info,portcullis::reap=debug".to_owned()),
        ],
    )
}

#[test]
fn cognito_triggers_through_the_lambda_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let lambda = start(dir.path());

    // Pre-auth allowed: the event comes back unchanged.
    let Invoked::Ok(body) = lambda.invoke(&fixture("pre-auth")) else {
        panic!("pre-auth should be allowed")
    };
    assert_eq!(body, fixture("pre-auth"));

    // Pre-auth blocked: an error whose message is the rule's client-safe message.
    match lambda.invoke(&fixture("pre-auth-suspended")) {
        Invoked::Error {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "SignInBlocked");
            assert_eq!(message, "Your account is suspended");
        }
        other => panic!("suspended user should be blocked, got {other:?}"),
    }

    // Post-auth whose rule traps with on_error=deny: still succeeds, event unchanged.
    let Invoked::Ok(body) = lambda.invoke(&fixture("post-auth")) else {
        panic!("post-auth must never fail")
    };
    assert_eq!(body, fixture("post-auth"));

    // V1: merged claims as strings, no group override (Cognito keeps the groups).
    let Invoked::Ok(body) = lambda.invoke(&fixture("token-v1")) else {
        panic!("token v1 should succeed")
    };
    let details = &body["response"]["claimsOverrideDetails"];
    assert_eq!(details["claimsToAddOrOverride"]["tenant_id"], "acme");
    assert_eq!(details["claimsToSuppress"], json!(["phone_number"]));
    assert!(details.get("groupOverrideDetails").is_none(), "{details}");

    // V2: JSON claims in both tokens, scopes, groups kept.
    let Invoked::Ok(body) = lambda.invoke(&fixture("token-v2")) else {
        panic!("token v2 should succeed")
    };
    let details = &body["response"]["claimsAndScopeOverrideDetails"];
    assert_eq!(
        details["idTokenGeneration"]["claimsToAddOrOverride"]["roles"],
        json!(["member"])
    );
    assert_eq!(
        details["accessTokenGeneration"]["scopesToAdd"],
        json!(["tenant:acme"])
    );
    assert!(details.get("groupOverrideDetails").is_none(), "{details}");

    // A body that is not a Cognito event: fail closed with the generic message.
    match lambda.invoke(&json!({"hello": "world"})) {
        Invoked::Error { message, .. } => {
            assert_eq!(message, portcullis_gate::UNAVAILABLE_MESSAGE)
        }
        other => panic!("garbage should be refused, got {other:?}"),
    }

    // One decision line per invocation, and no user attribute values in any log line.
    let decisions = lambda.decisions();
    assert_eq!(decisions.len(), 6, "{decisions:#?}");
    let blocked = &decisions[1]["fields"];
    assert_eq!(blocked["decision"], "deny");
    assert_eq!(blocked["denied_by"], "block-suspended");
    // The record is one JSON object: the rules are an array, not JSON text in a string.
    assert!(
        decisions[2]["fields"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| rule["outcome"] == "trap")
    );
    // Each invocation's metrics came with its record (written together after the answer):
    // one invocation document each, tied to its record by the decision id.
    let ids: Vec<&Value> = decisions
        .iter()
        .map(|d| &d["fields"]["decision_id"])
        .collect();
    let invocation_documents: Vec<Value> = lambda
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["_aws"]["CloudWatchMetrics"].is_array() && v.get("Decisions").is_some())
        .collect();
    assert_eq!(invocation_documents.len(), 6, "{invocation_documents:#?}");
    assert!(
        invocation_documents
            .iter()
            .all(|d| ids.contains(&&d["DecisionId"])),
        "{invocation_documents:#?}"
    );
    // The rules' spent instances were dropped after the answers, not on their path, and
    // spare instances of the rules that ran were made for the next sign-ins.
    let after_answers: Vec<Value> = lambda
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "portcullis::reap")
        .collect();
    let count = |field: &str| -> Vec<u64> {
        after_answers
            .iter()
            .filter_map(|v| v["fields"][field].as_u64())
            .collect()
    };
    assert!(count("reaped").iter().any(|&n| n > 0), "{after_answers:?}");
    assert!(count("spares").iter().any(|&n| n > 0), "{after_answers:?}");
    for line in lambda.logs() {
        for secret in [
            "ada@acme.example",
            "+15555550100",
            "10.20.30.40",
            "4f8e6c1a",
        ] {
            assert!(
                !line.contains(secret),
                "log line leaks a user value: {line}"
            );
        }
    }
}

#[test]
fn a_bad_configuration_stops_the_function_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env("PORTCULLIS_STORE", "ftp://nowhere")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("PORTCULLIS_STORE"), "{text}");
}

/// `PORTCULLIS_CAPTURE` through the real runtime API: a listed tenant's sign-ins are written
/// under `capture/` in the store, cut down to what the rules read, and a replay of each
/// decides as the function did.
#[test]
fn captures_for_replay_through_the_lambda_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let lambda = Lambda::start(
        Path::new(env!("CARGO_BIN_EXE_bootstrap")),
        &[
            (
                "PORTCULLIS_STORE",
                format!("file://{}", dir.path().display()),
            ),
            ("PORTCULLIS_CAPTURE", "acme=1".to_owned()),
            ("PORTCULLIS_CAPTURE_DAYS", "3".to_owned()),
        ],
    );
    for event in ["pre-auth", "pre-auth-suspended", "token-v2"] {
        lambda.invoke(&fixture(event));
    }
    let decisions = lambda.decisions();
    assert!(
        decisions.iter().all(|d| d["fields"]["captured"] == true),
        "{decisions:#?}"
    );
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for day in std::fs::read_dir(dir.path().join("capture/acme")).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    assert_eq!(files.len(), 3);
    let replay = portcullis_testkit::rules::handler(
        &RuleStore::dir(dir.path()),
        portcullis_gate::HandlerConfig::default(),
        std::time::Duration::from_secs(60),
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for unread in ["+15555550100", "10.20.30.40", "4f8e6c1a", "\"ada\""] {
            assert!(!text.contains(unread), "`{unread}` captured: {text}");
        }
        let captured: portcullis_gate::capture::Captured = serde_json::from_str(&text).unwrap();
        assert_eq!(
            captured.expires_at_ms - captured.at_ms,
            3 * 86_400_000,
            "{text}"
        );
        let live = decisions
            .iter()
            .find(|d| d["fields"]["decision_id"] == captured.decision_id.as_str())
            .unwrap();
        let again = portcullis_testkit::rules::block(replay.replay(&captured));
        assert_eq!(
            again.record.decision.as_str(),
            live["fields"]["decision"],
            "{text}"
        );
    }
}
