//! The same rule written in Rust, Python and JavaScript decides alike through the real
//! engine: decision, deny message and outcome, case by case. The other languages'
//! components are built by `scripts/build-python` (componentize-py, `--stub-wasi`) and
//! `scripts/build-js` (jco componentize, `-d all`): no import beyond the contract.

use portcullis_artifacts as art;
use portcullis_engine::{DataItem, Outcome, Trigger};

use crate::{TestRequest, budget, evaluate, load, request};

const BUILT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/wasm");

/// A component built by `scripts/build-<lang>`.
fn built(lang: &str, name: &str) -> String {
    let path = format!("{BUILT}/{lang}/{name}.wasm");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/build-{lang} (scripts/test does)"
    );
    path
}

fn python(name: &str) -> String {
    built("python", name)
}

fn js(name: &str) -> String {
    built("js", name)
}

/// What a rule gave, in the terms the two languages must agree on.
fn decided(path: &str, r: &TestRequest) -> (&'static str, Option<String>) {
    let outcome = evaluate(&load(path), r, &budget()).outcome;
    let kind = outcome.kind();
    match outcome {
        Outcome::Verdict(v) => (kind, v.deny),
        Outcome::Failed(_) => (kind, None),
    }
}

#[test]
fn suspended_users_in_rust_python_and_javascript_decide_alike() {
    let py = python("suspended-users");
    let javascript = js("suspended-users");
    let pre = || request(Trigger::PreAuthentication);
    let mut cases: Vec<(&str, TestRequest)> = Vec::new();
    cases.push(("an active user", pre()));
    let mut r = pre();
    r.user_attributes
        .push(("custom:suspended".into(), "true".into()));
    cases.push(("suspended by attribute", r));
    let mut r = pre();
    r.user_attributes
        .push(("custom:suspended".into(), "TRUE".into()));
    cases.push(("suspended, upper case", r));
    let mut r = pre();
    r.data = vec![DataItem {
        key: "user".into(),
        value: r#"{"suspended": true}"#.into(),
    }];
    cases.push(("suspended by data", r));
    let mut r = pre();
    r.data = vec![DataItem {
        key: "account".into(),
        value: r#"{"suspended": true}"#.into(),
    }];
    r.config = r#"{"data": "account", "message": "Account on hold"}"#.into();
    cases.push(("configured alias and message", r));
    let mut r = pre();
    r.user_attributes
        .push(("custom:suspended".into(), "true".into()));
    r.user_not_found = true;
    cases.push(("an unknown user", r));
    let mut r = pre();
    r.config = r#"{"unknown": 1}"#.into();
    cases.push(("a configuration with an unknown field", r));

    let mut denied = 0;
    for (name, r) in &cases {
        let rust = decided(art::SUSPENDED_USERS, r);
        assert_eq!(rust, decided(&py, r), "{name}: Python");
        assert_eq!(rust, decided(&javascript, r), "{name}: JavaScript");
        denied += usize::from(rust.0 == "deny");
    }
    // The cases exercise both answers and a failure, not one path.
    assert_eq!(denied, 4);
    assert_eq!(decided(&py, &cases[6].1).0, "policy_error");
    assert_eq!(decided(&javascript, &cases[6].1).0, "policy_error");
}

#[test]
fn python_and_javascript_components_import_nothing_outside_the_contract() {
    // `load` refuses any other import by name (see adversarial.rs); these load.
    for path in [python("suspended-users"), js("suspended-users")] {
        let policy = load(&path);
        let meta = crate::engine().describe(&policy, &budget()).unwrap();
        assert_eq!(meta.triggers, [Trigger::PreAuthentication], "{path}");
    }
}

#[test]
fn python_and_javascript_components_with_wasi_imports_are_refused_naming_them() {
    for path in [python("with-wasi"), js("with-wasi")] {
        let bytes = std::fs::read(&path).unwrap();
        match crate::engine().load(&bytes) {
            Err(portcullis_engine::LoadError::ForbiddenImports(names)) => {
                assert!(names.iter().any(|n| n.starts_with("wasi:")), "{path}: {names:?}")
            }
            other => panic!("{path}: expected the WASI imports refused, got {other:?}"),
        }
    }
}
