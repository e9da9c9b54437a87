//! Components built against the contract file before the type-only `sign-in` record was
//! added (same version, 0.2.0) still load and read every field of the request.

use portcullis_engine::{DataItem, Outcome, Trigger};
use serde_json::Value;

use crate::{budget, evaluate, request};

const BEFORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/components");

fn load_before(name: &str) -> std::sync::Arc<portcullis_engine::CompiledPolicy> {
    let bytes = std::fs::read(format!("{BEFORE}/{name}-0.2.0.wasm")).unwrap();
    crate::engine().load(&bytes).unwrap()
}

#[test]
fn a_policy_built_before_the_sign_in_record_still_decides() {
    let policy = load_before("allow-all");
    let outcome = evaluate(&policy, &request(Trigger::PreAuthentication), &budget()).outcome;
    assert!(
        matches!(&outcome, Outcome::Verdict(v) if v.is_allowed()),
        "{outcome:?}"
    );
}

#[test]
fn a_guest_built_before_the_sign_in_record_reads_every_field() {
    let policy = load_before("request-echo");
    let mut r = request(Trigger::PreTokenGeneration);
    r.groups = vec!["staff".into()];
    r.config = r#"{"k": 1}"#.into();
    r.data = vec![DataItem {
        key: "member".into(),
        value: "true".into(),
    }];
    let verdict = match evaluate(&policy, &r, &budget()).outcome {
        Outcome::Verdict(v) => v,
        Outcome::Failed(f) => panic!("{f}"),
    };
    let echoed: Value = verdict.id.get("echo").cloned().unwrap();
    assert_eq!(echoed["tenant"], "acme");
    assert_eq!(echoed["groups"][0], "staff");
    assert_eq!(echoed["config"], r#"{"k": 1}"#);
    assert_eq!(echoed["data_keys"][0], "member");
    assert_eq!(echoed["member"], "true");
}
