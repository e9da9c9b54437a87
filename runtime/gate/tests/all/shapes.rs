//! Every Cognito event shape Portcullis must understand (`runtime/fixtures/events/shapes`),
//! answered through the gate and kept as golden snapshots; and a block that holds on every
//! path to a token.
//!
//! The rules: a global `suspended-users` on `every-sign-in` (pre-authentication and every
//! pre token generation source), the tenant's `company-email` in pre-authentication and
//! `tenant-claims` in pre token generation. Whatever the shape, the answer never changes
//! anything but `response`, never writes a group override no rule asked for (an empty or
//! partial one would wipe the user's groups), and answers inbound federation with the one
//! map that drops no attribute.

#![expect(
    clippy::indexing_slicing,
    reason = "tests read JSON answers by path: a missing field is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_gate::store::RuleStore;
use portcullis_gate::{Answer, Handler, HandlerConfig};
use portcullis_testkit::rules::{FIXTURES, entry, fixture, handle, handler, publish};
use serde_json::{Value, json};

fn setup(dir: &Path) -> Handler {
    let store = RuleStore::dir(dir);
    publish(
        &store,
        "_global",
        vec![entry(
            "block-suspended",
            art::SUSPENDED_USERS,
            &["every-sign-in"],
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
                &["pre-authentication"],
                json!({"domains": ["acme.example"]}),
            ),
            entry(
                "claims",
                art::TENANT_CLAIMS,
                &["pre-token-generation"],
                json!({"roles": ["member"]}),
            ),
        ],
    );
    handler(&store, HandlerConfig::default(), Duration::from_secs(60))
}

/// What the snapshot keeps of an answer: Cognito's `response` (or the block), the decision
/// and why an event was left alone. Timings are left out.
fn golden(answer: &Answer) -> Value {
    let r = &answer.record;
    json!({
        "answer": match &answer.response {
            Ok(event) => json!({"response": event.get("response")}),
            Err(message) => json!({"error": message}),
        },
        "decision": r.decision,
        "denied_by": r.denied_by,
        "unhandled": r.unhandled,
        "rules": r.rules.iter().map(|rule| format!("{} {}", rule.rule, rule.outcome)).collect::<Vec<_>>(),
        "problems": r.problems,
    })
}

/// The invariants every answer keeps, whatever the shape.
fn check(name: &str, event: &Value, answer: &Answer) {
    let Ok(out) = &answer.response else {
        assert!(
            name.contains("suspended"),
            "{name}: only suspended users are blocked here: {:?}",
            answer.response
        );
        return;
    };
    assert!(
        !name.contains("suspended"),
        "{name}: a suspended user got through"
    );
    // Nothing but `response` changes.
    for (key, value) in event.as_object().unwrap() {
        if key != "response" {
            assert_eq!(out.get(key), Some(value), "{name}: `{key}` changed");
        }
    }
    let response = out["response"].to_string();
    assert!(
        !response.contains("groupOverrideDetails"),
        "{name}: a group override no rule asked for"
    );
    let source = event["triggerSource"].as_str().unwrap();
    if source == "InboundFederation_ExternalProvider" {
        assert_eq!(
            out["response"]["userAttributesToMap"],
            json!({}),
            "{name}: only an empty map keeps every federated attribute"
        );
        assert!(answer.record.unhandled.is_some());
    } else if !source.starts_with("TokenGeneration_") {
        assert_eq!(out, event, "{name}: returned unchanged");
    }
}

#[test]
fn every_event_shape_gets_its_golden_answer() {
    let dir = tempfile::tempdir().unwrap();
    let h = setup(dir.path());
    let mut names: Vec<String> = std::fs::read_dir(format!("{FIXTURES}/shapes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 25, "{names:?}");
    for name in names {
        let event = fixture(&format!("shapes/{name}"));
        let answer = handle(&h, event.clone());
        check(&name, &event, &answer);
        // Keys sorted whichever JSON map the build links (a workspace build with the bench
        // crate's Cedar keeps insertion order).
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!(format!("shape-{name}"), golden(&answer));
        });
    }
}

/// A suspended user is refused a token on every path, with the rule's own message.
#[test]
fn a_suspended_user_gets_no_token_on_any_path() {
    let dir = tempfile::tempdir().unwrap();
    let h = setup(dir.path());
    for (path, shape) in [
        ("REFRESH_TOKEN_AUTH, V1", "refresh-tokens-v1-suspended"),
        ("REFRESH_TOKEN_AUTH, V2", "refresh-tokens-v2-suspended"),
        (
            "GetTokensFromRefreshToken",
            "inferred-get-tokens-from-refresh-token-suspended",
        ),
        (
            "first federated sign-in",
            "first-federated-hosted-auth-suspended",
        ),
    ] {
        let answer = handle(&h, fixture(&format!("shapes/{shape}")));
        assert_eq!(
            answer.response,
            Err("Your account is suspended".into()),
            "{path}"
        );
        assert_eq!(
            answer.record.denied_by.as_deref(),
            Some("block-suspended"),
            "{path}"
        );
    }
    // The same user, not suspended, gets tokens on each path.
    for shape in [
        "refresh-tokens-v1",
        "refresh-tokens-v2",
        "inferred-get-tokens-from-refresh-token",
        "federated-returning-hosted-auth",
    ] {
        assert!(
            handle(&h, fixture(&format!("shapes/{shape}")))
                .response
                .is_ok(),
            "{shape}"
        );
    }
}

/// A rule bound only to pre-authentication is walked around by a refresh: the reason
/// `every-sign-in` exists and `publish` warns.
#[test]
fn a_pre_authentication_only_block_is_bypassed_by_a_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let rules = vec![entry(
        "block-suspended",
        art::SUSPENDED_USERS,
        &["pre-authentication"],
        json!(null),
    )];
    assert_eq!(
        portcullis_gate::publish::bypasses(&rules)
            .iter()
            .map(|b| b.rule.as_str())
            .collect::<Vec<_>>(),
        ["block-suspended"]
    );
    publish(&store, "_global", rules);
    let h = handler(&store, HandlerConfig::default(), Duration::from_secs(60));
    let refresh = handle(&h, fixture("shapes/refresh-tokens-v2-suspended"));
    assert!(refresh.response.is_ok(), "the bypass the warning names");
}
