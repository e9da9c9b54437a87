//! Trusted context through the gate: a backend-signed envelope reaches the rule as trusted
//! context; a tampered, replayed, another tenant's or unsigned one does not, and the
//! client's own metadata stays visible to the rule as client metadata either way.

use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_gate::context::{
    Claims, ContextConfig, ContextKeys, ContextStatus, ContextVerifier, METADATA_KEY, sign,
};
use portcullis_gate::store::RuleStore;
use portcullis_gate::{Answer, Handler, HandlerConfig};
use portcullis_testkit::rules::{entry, fixture, gate, handle, publish};
use serde_json::{Value, json};

const ACME: &[u8] = b"acme-context-key-0123456789abcdef0123456789";
const GLOBEX: &[u8] = b"globex-context-key-0123456789abcdef012345678";

fn setup(dir: &std::path::Path) -> Handler {
    let store = RuleStore::dir(dir);
    publish(
        &store,
        "acme",
        vec![entry(
            "echo",
            art::REQUEST_ECHO,
            &["pre-token-generation"],
            json!(null),
        )],
    );
    let mut keys = ContextKeys::default();
    keys.add("acme", ACME).unwrap();
    keys.add("globex", GLOBEX).unwrap();
    gate(&store, HandlerConfig::default(), Duration::from_secs(60))
        .context(ContextVerifier::new(
            keys,
            ContextConfig {
                // Any second use is a replay here, so the test need not wait 30 s.
                reuse_window: Duration::ZERO,
                ..ContextConfig::default()
            },
        ))
        .build()
        .unwrap()
}

fn claims(tenant: &str, nonce: &str) -> Claims {
    Claims {
        tenant: tenant.into(),
        iat_ms: now(),
        nonce: nonce.into(),
        user: Some("ada".into()),
        ip: Some("203.0.113.7".into()),
        user_agent: None,
        device_id: None,
        fields: Default::default(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A V2 token event whose client metadata carries the client's own `ip` and `envelope`.
fn sign_in(h: &Handler, envelope: &str) -> (Answer, Value) {
    let mut event = fixture("token-v2");
    event["request"]["clientMetadata"] = json!({"ip": "10.9.9.9", METADATA_KEY: envelope});
    let answer = handle(h, event);
    let echo = answer.response.as_ref().unwrap()["response"]["claimsAndScopeOverrideDetails"]
        ["idTokenGeneration"]["claimsToAddOrOverride"]["echo"]
        .clone();
    // The client's own value is there, named as the client's; the envelope is not.
    assert_eq!(echo["client_metadata"], json!([["ip", "10.9.9.9"]]));
    (answer, echo)
}

#[test]
fn only_a_valid_envelope_becomes_trusted_context() {
    let dir = tempfile::tempdir().unwrap();
    let h = setup(dir.path());
    let envelope = sign(&claims("acme", "n-1"), ACME).unwrap();
    let (answer, echo) = sign_in(&h, &envelope);
    assert_eq!(answer.record.context, Some(ContextStatus::Trusted));
    assert_eq!(echo["trusted"]["ip"], "203.0.113.7");

    let refused = |envelope: &str, reason: &str| {
        let (answer, echo) = sign_in(&h, envelope);
        assert_eq!(echo["trusted"], Value::Null, "{reason}");
        assert_eq!(
            answer.record.context,
            Some(ContextStatus::Refused(reason.into()))
        );
    };
    std::thread::sleep(Duration::from_millis(5));
    refused(&envelope, "envelope was replayed");
    let fresh = sign(&claims("acme", "n-2"), ACME).unwrap();
    let (head, mac) = fresh.rsplit_once('.').unwrap();
    let mut forged = claims("acme", "n-2");
    forged.ip = Some("10.0.0.1".into());
    let forged_payload = sign(&forged, b"not-the-key-not-the-key-not-the-key!").unwrap();
    let payload = forged_payload.split('.').nth(1).unwrap();
    refused(&format!("v1.{payload}.{mac}"), "signature does not verify");
    refused(
        &sign(&claims("globex", "n-3"), GLOBEX).unwrap(),
        "signature does not verify",
    );
    refused(head, "envelope is malformed: expected v1.<payload>.<mac>");
}
