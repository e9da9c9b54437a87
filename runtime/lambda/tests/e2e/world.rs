//! Rules that need the world, through the real runtime API: the lockout example's counters
//! in the counter table (moto), and the risk-api example's HTTP lookup to a loopback server
//! with its secret from Secrets Manager (moto), configured as the template configures the
//! function.

use std::path::Path;

use portcullis_artifacts as art;
use portcullis_engine::OnError;
use portcullis_gate::manifest::{CounterEntry, LookupEntry};
use portcullis_gate::store::RuleStore;
use portcullis_testkit::http::{Reply, Stub};
use portcullis_testkit::lambda::{Invoked, Lambda};
use portcullis_testkit::moto::Moto;
use serde_json::json;

use super::runtime_api::{entry, fixture, publish};

const SECRET: &str = "e2e-risk-key-7781";

fn blocked(invoked: &Invoked) -> Option<&str> {
    match invoked {
        Invoked::Error { message, .. } => Some(message.as_str()),
        Invoked::Ok(_) => None,
    }
}

#[test]
fn counters_and_lookups_through_the_lambda_runtime_api() {
    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(moto.counter_table("counters"));
    rt.block_on(moto.secret("portcullis/acme/risk-api-key", SECRET));
    let stub = Stub::start(Reply::json(r#"{"score": 0.1}"#));
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let mut lockout = entry(
        "lockout",
        art::LOCKOUT,
        "pre-authentication",
        OnError::Deny,
        json!({"max_attempts": 2}),
    );
    lockout.counters.insert(
        "attempts".into(),
        CounterEntry {
            key: "user#{username}".into(),
            window_s: 900,
            count_on: None,
            reset_on: None,
        },
    );
    let mut risk = entry(
        "risk-api",
        art::RISK_API,
        "every-sign-in",
        OnError::Deny,
        json!({"deny_above": 0.8}),
    );
    risk.lookups.insert(
        "risk".into(),
        LookupEntry {
            method: None,
            url: format!("{}/v1/score?user={{sub}}", stub.origin()),
            headers: [(
                "authorization".to_owned(),
                "Bearer {secret:risk-api-key}".to_owned(),
            )]
            .into(),
            body: None,
            timeout_ms: Some(1_000),
            max_bytes: None,
            cache_s: None,
            fallback: true,
        },
    );
    publish(&store, "acme", vec![lockout, risk]);
    let mut env = moto.env();
    env.extend([
        (
            "PORTCULLIS_STORE",
            format!("file://{}", dir.path().display()),
        ),
        ("PORTCULLIS_COUNTER_TABLE", "counters".to_owned()),
        (
            "PORTCULLIS_LOOKUP_ORIGINS",
            format!("acme={}", stub.origin()),
        ),
        ("PORTCULLIS_DATA_TIMEOUT_MS", "2000".to_owned()),
    ]);
    let lambda = Lambda::start(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &env);

    // Two attempts pass (the risk service says 0.1); the third within the window is locked
    // out; a success resets; the next attempt passes.
    for attempt in 1..=2 {
        let invoked = lambda.invoke(&fixture("pre-auth"));
        assert_eq!(
            blocked(&invoked),
            None,
            "attempt {attempt}: {:?}",
            lambda.decisions()
        );
    }
    let locked = "Too many failed sign-in attempts. Try again later";
    assert_eq!(blocked(&lambda.invoke(&fixture("pre-auth"))), Some(locked));
    assert!(matches!(
        lambda.invoke(&fixture("post-auth")),
        Invoked::Ok(_)
    ));
    assert_eq!(blocked(&lambda.invoke(&fixture("pre-auth"))), None);
    // The risk service's answer decides; its key reached it and nothing else.
    stub.set(Reply::json(r#"{"score": 0.95}"#));
    let unusual = "This sign-in looks unusual. Contact your administrator";
    assert_eq!(blocked(&lambda.invoke(&fixture("token-v2"))), Some(unusual));
    let received = stub.received();
    assert!(!received.is_empty());
    assert!(received.iter().all(|r| {
        r.headers
            .iter()
            .any(|(n, v)| n == "authorization" && *v == format!("Bearer {SECRET}"))
    }));
    // Decisions first: they wait for every invocation's output, so the logs are whole.
    let decisions = lambda.decisions();
    let logs = lambda.logs().join("\n");
    assert!(!logs.contains(SECRET), "the secret was logged");
    assert!(
        decisions
            .iter()
            .any(|d| d["fields"]["counters"]["applied"] == 1),
        "{decisions:#?}"
    );
}
