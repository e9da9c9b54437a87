//! Capture for replay end to end against a real local store: a listed tenant's sign-ins are
//! written with only the fields its rules (and the gate) read, under a retention, and decided
//! again from the capture alone — trusted context included — exactly as they were live.

#![expect(
    clippy::indexing_slicing,
    reason = "tests build events and read captures by path: a missing field is a failed test"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_gate::capture::{CaptureConfig, Captured, StoreCapture};
use portcullis_gate::context::{
    Claims, ContextConfig, ContextKeys, ContextVerifier, METADATA_KEY, sign,
};
use portcullis_gate::store::{DirStore, RuleStore};
use portcullis_gate::{Answer, HandlerConfig};
use portcullis_testkit::rules::{entry, fixture, gate, handle, handler, publish};
use serde_json::{Value, json};

const KEY: &[u8] = b"acme-context-key-0123456789abcdef0123456789";
const WEEK: Duration = Duration::from_secs(7 * 86_400);

fn store(dir: &Path) -> RuleStore {
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
                "office-network",
                art::IP_ALLOWLIST,
                &["pre-authentication"],
                json!({"allow": ["10.0.0.0/8", "203.0.113.0/24"], "client_supplied": true}),
            ),
            entry(
                "claims",
                art::TENANT_CLAIMS,
                &["pre-token-generation"],
                json!({"roles": ["member"]}),
            ),
        ],
    );
    store
}

/// Every capture written under `root`.
fn captures(root: &Path) -> Vec<Captured> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("capture"), &mut files);
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect()
}

/// A pre-auth sign-in from 192.168.1.1 (outside the office) whose backend signed the
/// office address it saw.
fn with_trusted_office_address() -> Value {
    let mut event = fixture("pre-auth");
    event["request"]["validationData"]["ip"] = json!("192.168.1.1");
    let claims = Claims {
        tenant: "acme".into(),
        iat_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
        nonce: "n-1".into(),
        user: Some("ada".into()),
        ip: Some("203.0.113.7".into()),
        user_agent: None,
        device_id: None,
        fields: Default::default(),
    };
    event["request"]["validationData"][METADATA_KEY] = json!(sign(&claims, KEY).unwrap());
    event
}

#[test]
fn captures_keep_what_rules_read_and_replay_to_the_live_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let rules = store(dir.path());
    let mut keys = ContextKeys::default();
    keys.add("acme", KEY).unwrap();
    let capture_dir = dir.path().join("captures");
    let live = gate(&rules, HandlerConfig::default(), Duration::from_secs(60))
        .context(ContextVerifier::new(keys, ContextConfig::default()))
        .capture(
            CaptureConfig::parse("acme=1", WEEK).unwrap(),
            Arc::new(StoreCapture(Arc::new(DirStore::new(&capture_dir)))),
        )
        .build()
        .unwrap();
    let mut outside = fixture("pre-auth");
    outside["request"]["validationData"]["ip"] = json!("192.168.1.1");
    let events = [
        fixture("pre-auth"),
        fixture("pre-auth-suspended"),
        outside,
        with_trusted_office_address(),
        fixture("token-v2"),
        fixture("post-auth"),
    ];
    let answers: Vec<Answer> = events.iter().map(|e| handle(&live, e.clone())).collect();
    for answer in &answers {
        assert!(answer.record.captured, "{:?}", answer.record);
    }
    let decisions: Vec<&str> = answers.iter().map(|a| a.record.decision.as_str()).collect();
    assert_eq!(
        decisions,
        ["allow", "deny", "deny", "allow", "allow", "allow"]
    );

    let captured = captures(&capture_dir);
    assert_eq!(captured.len(), events.len());
    // Replayed by a deployment with no context keys and nothing to capture: the capture
    // alone decides.
    let replay = handler(&rules, HandlerConfig::default(), Duration::from_secs(60));
    for capture in &captured {
        let text = serde_json::to_string(capture).unwrap();
        let attributes = capture.event["request"]["userAttributes"]
            .as_object()
            .unwrap();
        for name in attributes.keys() {
            assert!(
                [
                    "email",
                    "email_verified",
                    "custom:tenant_id",
                    "custom:suspended"
                ]
                .contains(&name.as_str()),
                "`{name}` was captured though no rule read it: {text}"
            );
        }
        for unread in [
            "+15555550100",
            "risk_score",
            "4f8e6c1a",
            METADATA_KEY,
            "\"ada\"",
        ] {
            assert!(!text.contains(unread), "`{unread}` captured: {text}");
        }
        assert_eq!(
            capture.expires_at_ms - capture.at_ms,
            WEEK.as_millis() as i64
        );
        assert_eq!(capture.tenant, "acme");

        let live = answers
            .iter()
            .find(|a| a.record.decision_id == capture.decision_id)
            .unwrap();
        let again = portcullis_testkit::rules::block(replay.replay(capture));
        assert_eq!(again.record.decision.as_str(), capture.decision, "{text}");
        assert_eq!(again.record.decision, live.record.decision, "{text}");
        assert_eq!(again.record.denied_by, live.record.denied_by);
        match (&again.response, &live.response) {
            (Ok(a), Ok(b)) => assert_eq!(a["response"], b["response"], "{text}"),
            (Err(a), Err(b)) => assert_eq!(a, b),
            other => panic!("replay answered differently: {other:?}"),
        }
        assert!(!again.record.captured, "a replay captures nothing");
    }
    // The trusted address the office rule read is in its capture; the client's own, which
    // it never needed to read, is not.
    let trusted = captured
        .iter()
        .find(|c| c.trusted.is_some())
        .expect("the trusted sign-in's capture");
    assert_eq!(trusted.trusted.as_ref().unwrap()["ip"], "203.0.113.7");
    assert_eq!(trusted.event["request"]["validationData"], json!({}));
}

/// Counts what a recorder is asked to write.
#[derive(Debug, Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl portcullis_gate::activity::Recorder for Counting {
    fn sign_in<'a>(
        &'a self,
        _: &'a portcullis_gate::activity::SignInActivity,
    ) -> portcullis_gate::backend::BoxFuture<'a, Result<(), portcullis_gate::backend::BackendError>>
    {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }

    fn audit<'a>(
        &'a self,
        entries: &'a [portcullis_gate::activity::AuditEntry],
    ) -> portcullis_gate::backend::BoxFuture<'a, Result<(), portcullis_gate::backend::BackendError>>
    {
        self.0
            .fetch_add(entries.len(), std::sync::atomic::Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

#[test]
fn a_replay_records_no_activity_or_audit() {
    let dir = tempfile::tempdir().unwrap();
    let rules = store(dir.path());
    let capture_dir = dir.path().join("captures");
    let recorded = Arc::new(Counting::default());
    let live = gate(&rules, HandlerConfig::default(), Duration::from_secs(60))
        .recorder(recorded.clone())
        .capture(
            CaptureConfig::parse("acme=1", WEEK).unwrap(),
            Arc::new(StoreCapture(Arc::new(DirStore::new(&capture_dir)))),
        )
        .build()
        .unwrap();
    handle(&live, fixture("post-auth"));
    handle(&live, fixture("pre-auth-suspended"));
    let written = recorded.0.load(std::sync::atomic::Ordering::Relaxed);
    assert!(written >= 2, "the live sign-ins were recorded: {written}");
    let mut replayed = captures(&capture_dir);
    // And a capture that kept the user name (as one does when a rule reads it).
    let mut named = replayed[0].clone();
    named.event = fixture("post-auth");
    replayed.push(named);
    for capture in &replayed {
        portcullis_testkit::rules::block(live.replay(capture));
    }
    assert_eq!(
        recorded.0.load(std::sync::atomic::Ordering::Relaxed),
        written
    );
}

#[test]
fn only_listed_tenants_are_captured_at_their_rate() {
    let dir = tempfile::tempdir().unwrap();
    let rules = store(dir.path());
    let capture_dir = dir.path().join("captures");
    let h = gate(&rules, HandlerConfig::default(), Duration::from_secs(60))
        .capture(
            CaptureConfig::parse("acme=0, globex=1", WEEK).unwrap(),
            Arc::new(StoreCapture(Arc::new(DirStore::new(&capture_dir)))),
        )
        .build()
        .unwrap();
    for _ in 0..20 {
        assert!(!handle(&h, fixture("pre-auth")).record.captured);
    }
    assert!(captures(&capture_dir).is_empty());
}
