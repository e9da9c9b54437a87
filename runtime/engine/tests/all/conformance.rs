//! The same rule written in Rust and in Python decides alike through the real engine:
//! decision, deny message and outcome, case by case. The Python component is built by
//! `scripts/build-python` (componentize-py, `--stub-wasi`: no import beyond the contract).

use portcullis_artifacts as art;
use portcullis_engine::{DataItem, Outcome, Trigger};

use crate::{TestRequest, budget, evaluate, load, request};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/wasm/python");

fn python(name: &str) -> String {
    let path = format!("{PYTHON}/{name}.wasm");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/build-python (scripts/test does)"
    );
    path
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
fn suspended_users_in_rust_and_python_decide_alike() {
    let py = python("suspended-users");
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
        let python = decided(&py, r);
        assert_eq!(rust, python, "{name}");
        denied += usize::from(rust.0 == "deny");
    }
    // The cases exercise both answers and a failure, not one path.
    assert_eq!(denied, 4);
    assert_eq!(decided(&py, &cases[6].1).0, "policy_error");
}

#[test]
fn a_python_component_imports_nothing_outside_the_contract() {
    // `load` refuses any other import by name (see adversarial.rs); this one loads.
    let policy = load(&python("suspended-users"));
    let meta = crate::engine().describe(&policy, &budget()).unwrap();
    assert_eq!(meta.triggers, [Trigger::PreAuthentication]);
}

#[test]
fn a_python_component_with_wasi_imports_is_refused_naming_them() {
    let bytes = std::fs::read(python("with-wasi")).unwrap();
    match crate::engine().load(&bytes) {
        Err(portcullis_engine::LoadError::ForbiddenImports(names)) => {
            assert!(names.iter().any(|n| n.starts_with("wasi:")), "{names:?}")
        }
        other => panic!("expected the WASI imports refused, got {other:?}"),
    }
}
