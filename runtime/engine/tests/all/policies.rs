//! Every example policy through the engine: allow and deny paths, claims, errors.

use portcullis_artifacts as art;
use portcullis_engine::{DataItem, Failure, Outcome, Trigger, Verdict};
use serde_json::json;

use crate::{TestRequest, budget, engine, evaluate, load, request};

fn verdict(path: &str, req: &TestRequest) -> Verdict {
    let policy = load(path);
    match evaluate(&policy, req, &budget()).outcome {
        Outcome::Verdict(v) => v,
        Outcome::Failed(f) => panic!("{path} failed: {f}"),
    }
}

#[test]
fn allow_all_allows_every_trigger() {
    for trigger in [
        Trigger::PreAuthentication,
        Trigger::PostAuthentication,
        Trigger::PreTokenGeneration,
    ] {
        assert!(verdict(art::ALLOW_ALL, &request(trigger)).is_allowed());
    }
}

#[test]
fn suspended_users_by_attribute_and_by_data() {
    let mut r = request(Trigger::PreAuthentication);
    assert!(verdict(art::SUSPENDED_USERS, &r).is_allowed());
    r.user_attributes
        .push(("custom:suspended".into(), "true".into()));
    assert_eq!(
        verdict(art::SUSPENDED_USERS, &r).deny.as_deref(),
        Some("Your account is suspended")
    );
    let mut r = request(Trigger::PreAuthentication);
    r.data.push(DataItem {
        key: "user".into(),
        value: json!({"suspended": true}).to_string(),
    });
    assert!(!verdict(art::SUSPENDED_USERS, &r).is_allowed());
}

#[test]
fn email_domain_allow_list() {
    let mut r = request(Trigger::PreAuthentication);
    r.config = json!({"domains": ["example.com"]}).to_string();
    r.user_attributes
        .push(("email_verified".into(), "true".into()));
    assert!(verdict(art::EMAIL_DOMAIN, &r).is_allowed());
    r.user_attributes = vec![
        ("email".into(), "eve@evil.test".into()),
        ("email_verified".into(), "true".into()),
    ];
    assert!(!verdict(art::EMAIL_DOMAIN, &r).is_allowed());
}

#[test]
fn email_domain_without_config_is_a_policy_error() {
    let policy = load(art::EMAIL_DOMAIN);
    let outcome = evaluate(&policy, &request(Trigger::PreAuthentication), &budget()).outcome;
    assert!(
        matches!(outcome, Outcome::Failed(Failure::PolicyError(ref m)) if m.contains("domains")),
        "{outcome:?}"
    );
}

#[test]
fn ip_allowlist_by_cidr() {
    let mut r = request(Trigger::PreAuthentication);
    r.config = json!({"allow": ["10.0.0.0/8"], "deny": ["10.6.6.0/24"]}).to_string();
    r.trusted = Some(trusted(&[], Some("10.1.2.3")));
    assert!(verdict(art::IP_ALLOWLIST, &r).is_allowed());
    r.trusted = Some(trusted(&[], Some("10.6.6.6")));
    assert_eq!(
        verdict(art::IP_ALLOWLIST, &r).deny.as_deref(),
        Some("Sign-in is not allowed from this network")
    );
    // The client's own claim counts only when the rule is configured to accept it.
    r.trusted = None;
    r.client_metadata = vec![("ip".into(), "10.1.2.3".into())];
    assert!(!verdict(art::IP_ALLOWLIST, &r).is_allowed());
    r.config = json!({"allow": ["10.0.0.0/8"], "client_supplied": true}).to_string();
    assert!(verdict(art::IP_ALLOWLIST, &r).is_allowed());
}

fn trusted(
    fields: &[(&str, &str)],
    ip: Option<&str>,
) -> portcullis_engine::contract::TrustedContext {
    portcullis_engine::contract::TrustedContext {
        ip: ip.map(str::to_owned),
        user_agent: None,
        device_id: None,
        issued_at_ms: 0,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[test]
fn signin_hours_uses_host_time() {
    let mut r = request(Trigger::PreAuthentication);
    r.config = json!({"time_zone": "Europe/Berlin", "start": "08:00", "end": "18:00"}).to_string();
    // Monday 07:00 UTC = 08:00 Berlin.
    assert!(verdict(art::SIGNIN_HOURS, &r).is_allowed());
    r.now_unix_ms -= 3_600_000;
    assert!(!verdict(art::SIGNIN_HOURS, &r).is_allowed());
}

#[test]
fn risk_score_threshold() {
    let mut r = request(Trigger::PreAuthentication);
    r.config = json!({"max": 70}).to_string();
    r.trusted = Some(trusted(&[("risk_score", "30")], None));
    assert!(verdict(art::RISK_SCORE, &r).is_allowed());
    r.trusted = Some(trusted(&[("risk_score", "90")], None));
    assert!(!verdict(art::RISK_SCORE, &r).is_allowed());
    // A client-supplied score is not a trusted one.
    r.trusted = None;
    r.client_metadata = vec![("risk_score".into(), "30".into())];
    assert!(!verdict(art::RISK_SCORE, &r).is_allowed());
}

#[test]
fn tenant_claims_add_and_suppress() {
    let mut r = request(Trigger::PreTokenGeneration);
    r.config = json!({"roles": ["member"], "suppress": ["phone_number"]}).to_string();
    let v = verdict(art::TENANT_CLAIMS, &r);
    assert_eq!(v.id.get("tenant_id"), Some(&json!("acme")));
    assert_eq!(v.id.get("roles"), Some(&json!(["member"])));
    assert_eq!(v.id.suppress, ["phone_number"]);
    assert_eq!(v.access.get("tenant_id"), Some(&json!("acme")));
    assert_eq!(v.scopes.add, ["tenant:acme"]);
}

#[test]
fn new_device_logs_through_the_bounded_import() {
    let policy = load(art::NEW_DEVICE);
    let mut r = request(Trigger::PostAuthentication);
    r.new_device_used = Some(true);
    let evaluation = evaluate(&policy, &r, &budget());
    assert!(matches!(evaluation.outcome, Outcome::Verdict(ref v) if v.is_allowed()));
    assert_eq!(evaluation.logs.len(), 1);
    assert_eq!(evaluation.logs[0].message, "new device used for sign-in");
    r.new_device_used = Some(false);
    assert!(evaluate(&policy, &r, &budget()).logs.is_empty());
}

#[test]
fn describe_reports_metadata() {
    let policy = load(art::SUSPENDED_USERS);
    let meta = engine().describe(&policy, &budget()).unwrap();
    assert_eq!(meta.name, "policy-suspended-users");
    assert_eq!(
        meta.triggers,
        [Trigger::PreAuthentication, Trigger::PreTokenGeneration]
    );
}

#[test]
fn every_example_loads_and_is_cached_by_digest() {
    for (name, path) in art::examples() {
        let bytes = std::fs::read(path).unwrap();
        let a = engine()
            .load(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = engine().load(&bytes).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b), "{name} compiled twice");
        assert_eq!(a.digest(), portcullis_engine::Sha256::of(&bytes));
    }
}

#[test]
fn digest_mismatch_refused() {
    let bytes = std::fs::read(art::ALLOW_ALL).unwrap();
    let wrong = portcullis_engine::Sha256::of(b"something else");
    let err = engine().load_verified(&bytes, &wrong).unwrap_err();
    assert!(matches!(
        err,
        portcullis_engine::LoadError::DigestMismatch { .. }
    ));
}
