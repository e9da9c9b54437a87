//! The trigger handler end to end on AWS-shaped fixtures, against a real local store:
//! blocks, post-auth that never fails, V1/V2/V3 token responses that keep the groups,
//! fail modes, and hot swap with last-known-good.

use std::path::Path;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::OnError;
use portcullis_gate::manifest::Manifest;
use portcullis_gate::store::RuleStore;
use portcullis_gate::{FailMode, Handler, HandlerConfig, UNAVAILABLE_MESSAGE};
use portcullis_testkit::rules::{entry, fixture, handle, handler, publish};
use serde_json::json;

fn acme_store(dir: &Path) -> RuleStore {
    let store = RuleStore::dir(dir);
    publish(
        &store,
        "_global",
        vec![entry(
            "block-suspended",
            art::SUSPENDED_USERS,
            &["pre-authentication"],
            json!(null),
        )],
    );
    let mut failing = entry("flaky", art::PANICS, &["post-authentication"], json!(null));
    failing.on_error = OnError::Deny;
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
                json!({"roles": ["member"], "suppress": ["phone_number"]}),
            ),
            failing,
        ],
    );
    store
}

fn setup() -> (tempfile::TempDir, Handler) {
    let dir = tempfile::tempdir().unwrap();
    let store = acme_store(dir.path());
    let h = handler(&store, HandlerConfig::default(), Duration::from_secs(60));
    (dir, h)
}

#[test]
fn pre_auth_allows_and_blocks_with_the_rule_message() {
    let (_dir, h) = setup();
    let ok = handle(&h, fixture("pre-auth"));
    assert_eq!(
        ok.response,
        Ok(fixture("pre-auth")),
        "allowed: the event comes back unchanged"
    );
    assert_eq!(ok.record.tenant.as_deref(), Some("acme"));
    assert_eq!(ok.record.revision, Some(1));
    let blocked = handle(&h, fixture("pre-auth-suspended"));
    assert_eq!(blocked.response, Err("Your account is suspended".into()));
    assert_eq!(blocked.record.denied_by.as_deref(), Some("block-suspended"));
}

#[test]
fn post_auth_with_a_failing_rule_still_succeeds() {
    let (_dir, h) = setup();
    let answer = handle(&h, fixture("post-auth"));
    assert_eq!(answer.response, Ok(fixture("post-auth")));
    assert_eq!(answer.record.rules[0].outcome, "trap");
    let answer = handle(&h, fixture("post-auth-no-device-field"));
    assert!(answer.response.is_ok());
}

#[test]
fn token_v1_strings_and_groups_kept() {
    let (_dir, h) = setup();
    let response = handle(&h, fixture("token-v1")).response.unwrap();
    let details = &response["response"]["claimsOverrideDetails"];
    assert_eq!(details["claimsToAddOrOverride"]["tenant_id"], "acme");
    assert_eq!(
        details["claimsToAddOrOverride"]["roles"], "[\"member\"]",
        "V1 carries JSON text"
    );
    assert!(
        details.get("groupOverrideDetails").is_none(),
        "no override: Cognito keeps the groups"
    );
    insta::with_settings!({sort_maps => true}, {
        insta::assert_json_snapshot!("token_v1_response", response["response"]);
    });
}

#[test]
fn token_v2_json_values_scopes_and_groups_kept() {
    let (_dir, h) = setup();
    let response = handle(&h, fixture("token-v2")).response.unwrap();
    let details = &response["response"]["claimsAndScopeOverrideDetails"];
    assert_eq!(
        details["idTokenGeneration"]["claimsToAddOrOverride"]["roles"],
        json!(["member"])
    );
    assert_eq!(
        details["accessTokenGeneration"]["scopesToAdd"],
        json!(["tenant:acme"])
    );
    assert!(details.get("groupOverrideDetails").is_none());
    insta::with_settings!({sort_maps => true}, {
        insta::assert_json_snapshot!("token_v2_response", response["response"]);
    });
    let refresh = handle(&h, fixture("token-v2-no-scopes")).response.unwrap();
    assert!(refresh["response"]["claimsAndScopeOverrideDetails"].is_object());
}

#[test]
fn token_v3_client_credentials_has_no_id_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = acme_store(dir.path());
    let config = HandlerConfig {
        tenant_from: "client-id".parse().unwrap(),
        ..HandlerConfig::default()
    };
    publish(
        &store,
        "acmem2mclient0001",
        vec![entry(
            "claims",
            art::TENANT_CLAIMS,
            &["pre-token-generation"],
            json!(null),
        )],
    );
    let h = handler(&store, config, Duration::from_secs(60));
    let response = handle(&h, fixture("token-v3-client-credentials"))
        .response
        .unwrap();
    let details = &response["response"]["claimsAndScopeOverrideDetails"];
    assert!(details.get("idTokenGeneration").is_none());
    assert_eq!(
        details["accessTokenGeneration"]["claimsToAddOrOverride"]["tenant_id"],
        "acmem2mclient0001"
    );
}

#[test]
fn other_triggers_pass_through() {
    let (_dir, h) = setup();
    let answer = handle(&h, fixture("custom-message"));
    assert_eq!(answer.response, Ok(fixture("custom-message")));
    assert_eq!(answer.record.decision, "pass");
}

#[test]
fn unreadable_event_follows_the_fail_mode() {
    let (_dir, h) = setup();
    let answer = handle(&h, json!({"hello": "world"}));
    assert_eq!(answer.response, Err(UNAVAILABLE_MESSAGE.into()));
    assert_eq!(answer.record.decision, "error");
    let dir = tempfile::tempdir().unwrap();
    let open = handler(
        &acme_store(dir.path()),
        HandlerConfig {
            fail_mode: FailMode::Open,
            ..HandlerConfig::default()
        },
        Duration::from_secs(60),
    );
    assert_eq!(
        handle(&open, json!({"hello": "world"})).response,
        Ok(json!({"hello": "world"}))
    );
}

#[test]
fn missing_tenant_open_runs_global_rules_closed_blocks() {
    let mut event = fixture("pre-auth-suspended");
    event["request"]["userAttributes"]["custom:tenant_id"] = json!("unknown-co");
    let (_dir, h) = setup();
    let answer = handle(&h, event.clone());
    assert_eq!(
        answer.response,
        Err("Your account is suspended".into()),
        "global rules still run"
    );
    let dir = tempfile::tempdir().unwrap();
    let closed = handler(
        &acme_store(dir.path()),
        HandlerConfig {
            missing_tenant: FailMode::Closed,
            ..HandlerConfig::default()
        },
        Duration::from_secs(60),
    );
    let mut fine = fixture("pre-auth");
    fine["request"]["userAttributes"]["custom:tenant_id"] = json!("unknown-co");
    assert_eq!(
        handle(&closed, fine).response,
        Err(UNAVAILABLE_MESSAGE.into())
    );
}

#[test]
fn a_user_cannot_claim_the_global_tenant() {
    let (_dir, h) = setup();
    let mut event = fixture("pre-auth");
    event["request"]["userAttributes"]["custom:tenant_id"] = json!("_global");
    assert_eq!(handle(&h, event).record.tenant, None);
}

#[test]
fn hot_swap_and_last_known_good() {
    let dir = tempfile::tempdir().unwrap();
    let store = acme_store(dir.path());
    let h = handler(&store, HandlerConfig::default(), Duration::ZERO);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(
        rt.block_on(h.handle(fixture("pre-auth"), None))
            .response
            .is_ok()
    );

    // Revision 2 denies acme.example: picked up on the next invocation, no restart.
    publish(
        &store,
        "acme",
        vec![entry(
            "company-email",
            art::EMAIL_DOMAIN,
            &["pre-authentication"],
            json!({"domains": ["other.example"]}),
        )],
    );
    let answer = rt.block_on(h.handle(fixture("pre-auth"), None));
    assert_eq!(answer.record.revision, Some(2));
    assert!(answer.response.is_err());
    assert_eq!(h.registry().last_known_good_age(), Duration::ZERO);

    // A broken manifest never replaces the last known good set, which from then on ages:
    // the store has not confirmed it since the last good refresh.
    std::fs::write(dir.path().join("tenants/acme/manifest.json"), b"{not json").unwrap();
    let answer = rt.block_on(h.handle(fixture("pre-auth"), None));
    assert_eq!(answer.record.revision, Some(2));
    assert_eq!(h.registry().refresh_failures(), 1);
    std::thread::sleep(Duration::from_millis(30));
    let age = h.registry().last_known_good_age();
    assert!(age >= Duration::from_millis(30), "{age:?}");

    // Neither does a module that does not match its digest.
    let bad = Manifest {
        revision: 4,
        rules: vec![entry(
            "x",
            &"0".repeat(64),
            &["pre-authentication"],
            json!(null),
        )],
        ..Manifest::default()
    };
    std::fs::write(
        dir.path().join("tenants/acme/manifest.json"),
        serde_json::to_vec(&bad).unwrap(),
    )
    .unwrap();
    let answer = rt.block_on(h.handle(fixture("pre-auth"), None));
    assert_eq!(answer.record.revision, Some(2));
    assert_eq!(h.registry().refresh_failures(), 2);
    assert!(
        h.registry().last_known_good_age() >= age,
        "a failed refresh confirms nothing"
    );
}

#[test]
fn decision_record_has_no_attribute_values() {
    let (_dir, h) = setup();
    let answer = handle(&h, fixture("token-v2"));
    let record = serde_json::to_string(&answer.record).unwrap();
    for value in ["ada@acme.example", "+15555550100", "4f8e6c1a"] {
        assert!(
            !record.contains(value),
            "decision record leaks `{value}`: {record}"
        );
    }
}
