//! HTTP lookups against a real loopback server, with secrets from a real Secrets
//! Manager-compatible server (moto): the answer reaches the rule, a secret reaches only the
//! server's headers (never a record or a log line), a slow server is cut at its timeout and
//! the rule's `on_error` (or its own fallback) decides, oversize answers and origins
//! outside the allow-list are refused, and one tenant's secret names never resolve another
//! tenant's secrets.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed step is a failed test"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_aws::http::HyperClient;
use portcullis_aws::secrets::{DEFAULT_PREFIX, ManagedSecrets};
use portcullis_engine::{Engine, EngineConfig, OnError};
use portcullis_gate::data::lookups::{Lookups, Origins};
use portcullis_gate::manifest::{LookupEntry, RuleEntry};
use portcullis_gate::store::RuleStore;
use portcullis_gate::{Answer, Handler, HandlerConfig, UNAVAILABLE_MESSAGE as FAIL_CLOSED_MESSAGE};
use portcullis_testkit::http::{Reply, Stub};
use portcullis_testkit::moto::Moto;
use portcullis_testkit::rules::{entry, fixture, publish};
use serde_json::{Value, json};

const SECRET: &str = "s3cr3t-risk-key-0042";
const UNUSUAL: &str = "This sign-in looks unusual. Contact your administrator";

fn risk_rule(url: String, lookup: impl FnOnce(&mut LookupEntry)) -> RuleEntry {
    let mut rule = entry(
        "risk-api",
        art::RISK_API,
        &["every-sign-in"],
        json!({"deny_above": 0.8}),
    );
    let mut spec = LookupEntry {
        method: None,
        url,
        headers: [(
            "authorization".to_owned(),
            "Bearer {secret:risk-api-key}".to_owned(),
        )]
        .into(),
        body: None,
        timeout_ms: Some(1_000),
        max_bytes: None,
        cache_s: None,
        fallback: false,
    };
    lookup(&mut spec);
    rule.lookups.insert("risk".into(), spec);
    rule
}

struct World {
    rt: tokio::runtime::Runtime,
    _moto: Moto,
    _dir: tempfile::TempDir,
    store: RuleStore,
    stub: Stub,
    handler: Handler,
}

/// acme may call the stub; globex may too (for the secret test) when `globex_allowed`.
fn world(globex_allowed: bool) -> World {
    // One runtime for the world: the client's pooled connections live on it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.sdk_config());
    rt.block_on(moto.secret(&format!("{DEFAULT_PREFIX}acme/risk-api-key"), SECRET));
    let stub = Stub::start(Reply::json(r#"{"score": 0.93}"#));
    let mut allowed = format!("acme={}", stub.origin());
    if globex_allowed {
        allowed.push_str(&format!(";globex={}", stub.origin()));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let secrets = ManagedSecrets::new(aws_sdk_secretsmanager::Client::new(&aws), DEFAULT_PREFIX);
    let lookups = Lookups::new(
        Arc::new(HyperClient::new().unwrap()),
        Some(Arc::new(secrets)),
        Origins::parse(&allowed).unwrap(),
    );
    let handler = Handler::builder(store.clone())
        .engine(Arc::new(
            Engine::new(EngineConfig {
                max_concurrent: 2,
                ..EngineConfig::default()
            })
            .unwrap(),
        ))
        .config(HandlerConfig {
            data_timeout: Duration::from_secs(2),
            ..HandlerConfig::default()
        })
        .lookups(lookups)
        .build()
        .unwrap();
    World {
        rt,
        _moto: moto,
        _dir: dir,
        store,
        stub,
        handler,
    }
}

fn handle(world: &World, event: Value) -> Answer {
    world.rt.block_on(world.handler.handle(event, None))
}

fn as_globex(mut event: Value) -> Value {
    event["request"]["userAttributes"]["custom:tenant_id"] = json!("globex");
    event
}

/// Log lines written while `f` runs, as text.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&lines.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn the_answer_reaches_the_rule_and_the_secret_only_the_server() {
    let w = world(false);
    let url = format!("{}/v1/score?user={{sub}}", w.stub.origin());
    publish(&w.store, "acme", vec![risk_rule(url, |_| {})]);
    let (denied, log) = logged(|| handle(&w, fixture("pre-auth")));
    assert_eq!(
        denied.response,
        Err(UNUSUAL.to_owned()),
        "{:?}",
        denied.record
    );
    let received = w.stub.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0]
            .line
            .starts_with("GET /v1/score?user=4f8e6c1a-8b0e-4a55-9d1c-0d6f2b7a9e10 "),
        "{}",
        received[0].line
    );
    let auth = received[0]
        .headers
        .iter()
        .find(|(n, _)| n == "authorization");
    assert_eq!(
        auth.map(|(_, v)| v.as_str()),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let record = serde_json::to_string(&denied.record).unwrap();
    assert!(
        !record.contains(SECRET) && !log.contains(SECRET),
        "{record}\n{log}"
    );
    // A low score: allowed, and the tokens say so.
    w.stub.set(Reply::json(r#"{"score": 0.12}"#));
    let token = handle(&w, fixture("token-v2"));
    let response = token.response.unwrap();
    let access = &response["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"];
    assert_eq!(
        access["claimsToAddOrOverride"]["risk_level"], "low",
        "{response}"
    );
}

#[test]
fn a_slow_service_is_cut_at_its_timeout_and_on_error_or_the_fallback_decides() {
    let w = world(true);
    w.stub.set(Reply {
        delay: Duration::from_secs(3),
        ..Reply::json(r#"{"score": 0.1}"#)
    });
    let url = format!("{}/v1/score", w.stub.origin());
    let mut closed = risk_rule(url.clone(), |l| l.timeout_ms = Some(200));
    closed.on_error = OnError::Deny;
    publish(&w.store, "acme", vec![closed]);
    // Load the rules first: the time measured is the lookup's.
    handle(&w, fixture("post-auth"));
    let started = Instant::now();
    let answer = handle(&w, fixture("pre-auth"));
    let took = started.elapsed();
    assert_eq!(answer.response, Err(FAIL_CLOSED_MESSAGE.to_owned()));
    assert_eq!(answer.record.rules[0].outcome, "data_unavailable");
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.contains("lookup `risk`: timed out")),
        "{:?}",
        answer.record.problems
    );
    // Cut at 200 ms, well within Cognito's 5 s (not the server's 3 s).
    assert!(took < Duration::from_millis(2_500), "{took:?}");
    // With `fallback`, the rule decides: allowed with reduced functionality (globex's
    // rule, without a secret).
    let open = risk_rule(url, |l| {
        l.timeout_ms = Some(200);
        l.fallback = true;
        l.headers.clear();
    });
    publish(&w.store, "globex", vec![open]);
    let answer = handle(&w, as_globex(fixture("token-v2")));
    assert!(w.stub.received().len() >= 2, "the lookup was made, and cut");
    let response = answer.response.unwrap();
    let id = &response["response"]["claimsAndScopeOverrideDetails"]["idTokenGeneration"];
    assert_eq!(
        id["claimsToAddOrOverride"]["risk_level"], "unknown",
        "{response}"
    );
}

#[test]
fn oversize_answers_and_origins_outside_the_allow_list_are_refused() {
    let w = world(false);
    let big = format!(r#"{{"score": 0.1, "pad": "{}"}}"#, "x".repeat(4_096));
    w.stub.set(Reply::json(&big));
    let url = format!("{}/v1/score", w.stub.origin());
    publish(
        &w.store,
        "acme",
        vec![risk_rule(url.clone(), |l| l.max_bytes = Some(1_024))],
    );
    let answer = handle(&w, fixture("pre-auth"));
    assert_eq!(answer.response, Err(FAIL_CLOSED_MESSAGE.to_owned()));
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.contains("more than 1024 bytes")),
        "{:?}",
        answer.record.problems
    );
    // globex may not call the stub: no request is made at all.
    let before = w.stub.received().len();
    publish(&w.store, "globex", vec![risk_rule(url, |_| {})]);
    let answer = handle(&w, as_globex(fixture("pre-auth")));
    assert_eq!(answer.response, Err(FAIL_CLOSED_MESSAGE.to_owned()));
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.contains("is not allowed for this tenant")),
        "{:?}",
        answer.record.problems
    );
    assert_eq!(w.stub.received().len(), before);
}

#[test]
fn a_tenant_never_resolves_another_tenants_secret() {
    let w = world(true);
    let url = format!("{}/v1/score", w.stub.origin());
    publish(&w.store, "globex", vec![risk_rule(url, |_| {})]);
    // globex names the same secret as acme: it resolves globex's own, which does not exist.
    let (answer, log) = logged(|| handle(&w, as_globex(fixture("pre-auth"))));
    assert_eq!(answer.response, Err(FAIL_CLOSED_MESSAGE.to_owned()));
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.contains("secret `risk-api-key` could not be resolved")),
        "{:?}",
        answer.record.problems
    );
    assert!(
        w.stub.received().is_empty(),
        "no request without its secret"
    );
    assert!(!log.contains(SECRET));
}
