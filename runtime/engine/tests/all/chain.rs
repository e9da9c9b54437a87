//! Chains: order, first deny wins, on_error, shadow mode, claim merging, the deadline.

use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_engine::chain::{DataSet, Effect, FAIL_CLOSED_MESSAGE};
use portcullis_engine::{Budget, Chain, Decision, Mode, OnError, Rule, RuleName, Trigger};
use serde_json::json;

use crate::{engine, load, request};

fn rule(name: &str, path: &str, triggers: &[Trigger], config: serde_json::Value) -> Rule {
    Rule {
        origin: portcullis_engine::Origin::Tenant,
        name: RuleName::new(name).unwrap(),
        policy: load(path),
        triggers: triggers.to_vec(),
        budget: Budget::default(),
        on_error: OnError::Deny,
        mode: Mode::Enforce,
        config: config.to_string().into(),
    }
}

const PRE: &[Trigger] = &[Trigger::PreAuthentication];
const TOKEN: &[Trigger] = &[Trigger::PreTokenGeneration];

fn later() -> Instant {
    Instant::now() + Duration::from_secs(2)
}

#[test]
fn first_enforced_deny_wins_and_stops() {
    let chain = Chain {
        rules: vec![
            rule(
                "domains",
                art::EMAIL_DOMAIN,
                PRE,
                json!({"domains": ["other.test"], "message": "first"}),
            ),
            rule(
                "suspended",
                art::SUSPENDED_USERS,
                PRE,
                json!({"message": "second"}),
            ),
        ],
    };
    let mut r = request(Trigger::PreAuthentication);
    r.user_attributes
        .push(("custom:suspended".into(), "true".into()));
    let out = chain.evaluate(engine(), r.sign_in, &DataSet::default(), later());
    assert_eq!(
        out.decision,
        Decision::Deny {
            message: "first".into(),
            rule: RuleName::new("domains").unwrap()
        }
    );
    assert_eq!(out.reports.len(), 1);
    assert_eq!(out.reports[0].effect, Effect::Decided);
}

#[test]
fn shadow_deny_is_reported_not_applied() {
    let mut shadow = rule(
        "domains",
        art::EMAIL_DOMAIN,
        PRE,
        json!({"domains": ["other.test"]}),
    );
    shadow.mode = Mode::Shadow;
    let chain = Chain {
        rules: vec![shadow, rule("all", art::ALLOW_ALL, PRE, json!(null))],
    };
    let out = chain.evaluate(
        engine(),
        request(Trigger::PreAuthentication).sign_in,
        &DataSet::default(),
        later(),
    );
    assert_eq!(out.decision, Decision::Allow);
    assert_eq!(out.reports.len(), 2);
    assert_eq!(out.reports[0].effect, Effect::Shadowed);
    assert_eq!(out.reports[0].evaluation.outcome.kind(), "deny");
}

#[test]
fn on_error_deny_fails_closed_and_allow_fails_open() {
    let mut panics = rule("panics", art::PANICS, PRE, json!(null));
    let chain = Chain {
        rules: vec![
            panics.clone(),
            rule("all", art::ALLOW_ALL, PRE, json!(null)),
        ],
    };
    let out = chain.evaluate(
        engine(),
        request(Trigger::PreAuthentication).sign_in,
        &DataSet::default(),
        later(),
    );
    assert_eq!(
        out.decision,
        Decision::Deny {
            message: FAIL_CLOSED_MESSAGE.into(),
            rule: panics.name.clone()
        }
    );
    assert_eq!(out.reports[0].effect, Effect::FailedClosed);

    panics.on_error = OnError::Allow;
    let chain = Chain {
        rules: vec![panics, rule("all", art::ALLOW_ALL, PRE, json!(null))],
    };
    let out = chain.evaluate(
        engine(),
        request(Trigger::PreAuthentication).sign_in,
        &DataSet::default(),
        later(),
    );
    assert_eq!(out.decision, Decision::Allow);
    assert_eq!(out.reports[0].effect, Effect::FailedOpen);
    assert_eq!(out.reports[1].effect, Effect::Applied);
}

#[test]
fn claims_merge_in_order_and_conflicts_are_reported() {
    let chain = Chain {
        rules: vec![
            rule(
                "first",
                art::TENANT_CLAIMS,
                TOKEN,
                json!({"roles": ["member"], "suppress": ["phone_number"]}),
            ),
            rule(
                "second",
                art::TENANT_CLAIMS,
                TOKEN,
                json!({"roles": ["admin"]}),
            ),
        ],
    };
    let out = chain.evaluate(
        engine(),
        request(Trigger::PreTokenGeneration).sign_in,
        &DataSet::default(),
        later(),
    );
    assert_eq!(out.decision, Decision::Allow);
    assert_eq!(out.id.get("roles"), Some(&json!(["admin"])));
    assert_eq!(out.id.suppress, ["phone_number"]);
    assert!(
        out.conflicts
            .iter()
            .any(|c| c.claim == "roles" && c.rule.as_str() == "second" && c.token == "id")
    );
}

#[test]
fn only_rules_for_the_trigger_run() {
    let chain = Chain {
        rules: vec![
            rule("claims", art::TENANT_CLAIMS, TOKEN, json!(null)),
            rule("all", art::ALLOW_ALL, PRE, json!(null)),
        ],
    };
    let out = chain.evaluate(
        engine(),
        request(Trigger::PreAuthentication).sign_in,
        &DataSet::default(),
        later(),
    );
    assert_eq!(out.reports.len(), 1);
    assert_eq!(out.reports[0].rule.as_str(), "all");
    assert!(out.id.is_empty());
}

#[test]
fn post_auth_deny_never_stops_the_chain() {
    let post = &[Trigger::PostAuthentication];
    let chain = Chain {
        rules: vec![
            rule("panics", art::PANICS, post, json!(null)),
            rule("device", art::NEW_DEVICE, post, json!(null)),
        ],
    };
    let out = chain.evaluate(
        engine(),
        request(Trigger::PostAuthentication).sign_in,
        &DataSet::default(),
        later(),
    );
    assert_eq!(
        out.reports.len(),
        2,
        "post-auth rules all run for their side effects"
    );
}

#[test]
fn global_deadline_bounds_the_chain() {
    let mut spin = rule("spin", art::INFINITE_LOOP, PRE, json!(null));
    spin.budget = Budget {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(10),
        ..Budget::default()
    };
    spin.on_error = OnError::Allow;
    let mut second = spin.clone();
    second.name = RuleName::new("spin-again").unwrap();
    let chain = Chain {
        rules: vec![spin, second],
    };
    let start = Instant::now();
    let out = chain.evaluate(
        engine(),
        request(Trigger::PreAuthentication).sign_in,
        &DataSet::default(),
        Instant::now() + Duration::from_millis(20),
    );
    // Each rule alone may run 10 s; the 20 ms chain deadline stops both.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.reports[0].evaluation.outcome.kind(), "timeout");
    assert_eq!(
        out.reports[1].evaluation.outcome.kind(),
        "timeout",
        "the second rule gets only what is left"
    );
    assert_eq!(out.decision, Decision::Allow, "both failed open");
}

#[test]
fn data_failure_applies_on_error() {
    let mut suspended = rule("suspended", art::SUSPENDED_USERS, PRE, json!(null));
    suspended.on_error = OnError::Deny;
    let data = DataSet {
        failed: [(suspended.key(), "table unreachable".to_owned())].into(),
        ..DataSet::default()
    };
    let chain = Chain {
        rules: vec![suspended],
    };
    let out = chain.evaluate(
        engine(),
        request(Trigger::PreAuthentication).sign_in,
        &data,
        later(),
    );
    assert_eq!(out.reports[0].evaluation.outcome.kind(), "data_unavailable");
    assert!(matches!(out.decision, Decision::Deny { .. }));
}
