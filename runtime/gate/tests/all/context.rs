//! Trusted context through the gate: a backend-signed envelope reaches the rule as trusted
//! context; a tampered, replayed, another tenant's or unsigned one does not, and the
//! client's own metadata stays visible to the rule as client metadata either way.

#![expect(
    clippy::indexing_slicing,
    reason = "tests read JSON answers by path: a missing field is a failed test"
)]

use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::contract::TrustedContext;
use portcullis_gate::context::{
    Claims, ContextConfig, ContextKeys, ContextStatus, ContextVerifier, KeysError, MAX_ENVELOPE,
    METADATA_KEY, Refused, sign,
};
use portcullis_gate::store::RuleStore;
use portcullis_gate::tenant::TenantId;
use portcullis_gate::{Answer, Handler, HandlerConfig};
use portcullis_testkit::rules::{entry, fixture, gate, handle, publish};
use serde_json::{Value, json};

mod verify {
    //! The verifier alone, at a fixed time.
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-acme";
    const NOW: i64 = 1_767_268_800_000;

    fn acme() -> TenantId {
        "acme".parse().unwrap()
    }

    fn claims() -> Claims {
        Claims {
            tenant: "acme".into(),
            iat_ms: NOW - 1_000,
            nonce: "n-1".into(),
            user: Some("ada".into()),
            ip: Some("203.0.113.7".into()),
            user_agent: None,
            device_id: Some("d-1".into()),
            fields: [("risk_score".to_owned(), "12".to_owned())].into(),
        }
    }

    fn verifier() -> ContextVerifier {
        let mut keys = ContextKeys::default();
        keys.add("acme", KEY).unwrap();
        keys.add("globex", b"globex-key-globex-key-globex-key-0")
            .unwrap();
        ContextVerifier::new(keys, ContextConfig::default())
    }

    fn verify(v: &ContextVerifier, envelope: &str) -> Result<TrustedContext, Refused> {
        v.verify(envelope, &acme(), Some("ada"), NOW)
    }

    #[test]
    fn a_signed_envelope_is_trusted() {
        let v = verifier();
        let context = verify(&v, &sign(&claims(), KEY).unwrap()).unwrap();
        assert_eq!(context.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(context.device_id.as_deref(), Some("d-1"));
        assert_eq!(context.issued_at_ms, NOW - 1_000);
        assert_eq!(context.fields, [("risk_score".into(), "12".into())]);
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let v = verifier();
        let envelope = sign(&claims(), KEY).unwrap();
        let mut forged = claims();
        forged.ip = Some("10.0.0.1".into());
        let forged_payload = sign(&forged, KEY).unwrap();
        let payload = forged_payload.split('.').nth(1).unwrap();
        let mac = envelope.split('.').nth(2).unwrap();
        let forged = format!("v1.{payload}.{mac}");
        assert_eq!(verify(&v, &forged).err(), Some(Refused::BadSignature));
        // Signed with a key that is not the tenant's.
        let other = sign(&claims(), b"someone-elses-key-someone-elses-key").unwrap();
        assert_eq!((verify(&v, &other)).err(), Some(Refused::BadSignature));
    }

    #[test]
    fn another_tenants_envelope_is_refused() {
        let v = verifier();
        // globex's backend signs an envelope for its own tenant; presented to acme.
        let mut theirs = claims();
        theirs.tenant = "globex".into();
        let envelope = sign(&theirs, b"globex-key-globex-key-globex-key-0").unwrap();
        assert_eq!((verify(&v, &envelope)).err(), Some(Refused::BadSignature));
        // Even signed with acme's key, a payload naming globex is not acme's.
        let envelope = sign(&theirs, KEY).unwrap();
        assert_eq!((verify(&v, &envelope)).err(), Some(Refused::BadSignature));
        // A tenant without keys trusts nothing.
        assert_eq!(
            (v.verify(
                &sign(&claims(), KEY).unwrap(),
                &"initech".parse().unwrap(),
                None,
                NOW
            ))
            .err(),
            Some(Refused::NoKey)
        );
    }

    #[test]
    fn another_users_envelope_is_refused() {
        let v = verifier();
        let envelope = sign(&claims(), KEY).unwrap();
        assert_eq!(
            (v.verify(&envelope, &acme(), Some("mallory"), NOW)).err(),
            Some(Refused::WrongUser)
        );
    }

    #[test]
    fn stale_and_future_envelopes_are_refused() {
        let v = verifier();
        let mut old = claims();
        old.iat_ms = NOW - 121_000;
        assert_eq!(
            (verify(&v, &sign(&old, KEY).unwrap())).err(),
            Some(Refused::Expired)
        );
        let mut future = claims();
        future.iat_ms = NOW + 60_000;
        assert_eq!(
            (verify(&v, &sign(&future, KEY).unwrap())).err(),
            Some(Refused::FromTheFuture)
        );
    }

    #[test]
    fn a_replay_after_the_reuse_window_is_refused() {
        let v = verifier();
        let envelope = sign(&claims(), KEY).unwrap();
        assert!(verify(&v, &envelope).is_ok());
        // The same sign-in's other triggers, and Cognito's retries, within the window.
        assert!(
            v.verify(&envelope, &acme(), Some("ada"), NOW + 29_000)
                .is_ok()
        );
        assert_eq!(
            (v.verify(&envelope, &acme(), Some("ada"), NOW + 31_000)).err(),
            Some(Refused::Replayed)
        );
    }

    #[test]
    fn malformed_envelopes_are_refused_by_kind() {
        let v = verifier();
        for bad in ["", "v1", "v1.a", "v2.a.b", "v1.a.b.c", "v1.a.!!!"] {
            assert!(
                matches!(verify(&v, bad), Err(Refused::Malformed(_))),
                "{bad}: {:?}",
                verify(&v, bad)
            );
        }
        assert_eq!(
            (verify(&v, &"x".repeat(MAX_ENVELOPE + 1))).err(),
            Some(Refused::TooLarge)
        );
    }

    #[test]
    fn apply_takes_the_envelope_out_of_client_metadata() {
        let v = verifier();
        let mut sign_in = portcullis_gate::cognito::Event::from_value(serde_json::json!({
            "triggerSource": "PreAuthentication_Authentication", "userPoolId": "p",
            "userName": "ada",
            "request": {"userAttributes": {}, "validationData": {
                "ip": "10.9.9.9",
                METADATA_KEY: sign(&claims(), KEY).unwrap(),
            }}
        }))
        .unwrap()
        .sign_in;
        assert_eq!(
            v.apply(&mut sign_in, Some(&acme()), NOW),
            Some(ContextStatus::Trusted)
        );
        assert_eq!(sign_in.client_metadata, [("ip".into(), "10.9.9.9".into())]);
        assert_eq!(
            sign_in.trusted.and_then(|t| t.ip).as_deref(),
            Some("203.0.113.7")
        );
        // No envelope: nothing to say.
        let mut plain = portcullis_gate::cognito::Event::from_value(serde_json::json!({
            "triggerSource": "PreAuthentication_Authentication", "userPoolId": "p"
        }))
        .unwrap()
        .sign_in;
        assert_eq!(v.apply(&mut plain, Some(&acme()), NOW), None);
    }

    #[test]
    fn keys_parse_and_refuse_weak_ones() {
        let keys = ContextKeys::parse(
            r#"{"acme": "0123456789abcdef0123456789abcdef", "globex": ["0123456789abcdef0123456789abcdeX", "0123456789abcdef0123456789abcdeY"]}"#,
        )
        .unwrap();
        assert_eq!(keys.tenants(), 2);
        assert!(matches!(
            ContextKeys::parse(r#"{"acme": "short"}"#),
            Err(KeysError::Weak { .. })
        ));
        assert!(ContextKeys::parse("[]").is_err());
        assert!(ContextKeys::parse(r#"{"../x": "0123456789abcdef0123456789abcdef"}"#).is_err());
    }
}

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
        // Counted: the invocation's metric document says so.
        let docs = portcullis_gate::metrics::documents(&answer.record, true, Default::default(), 0);
        let first = serde_json::to_value(&docs[0]).unwrap();
        assert_eq!(first["ContextRefusals"], 1, "{reason}");
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
