//! DynamoDB against a real DynamoDB-compatible server (moto): rule data prefetched in one
//! round trip and scoped to the tenant, activity counted right under retries, audit
//! entries, an outage that each rule's `on_error` handles while post-auth succeeds, and
//! rule counters.
#![expect(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_aws::dynamo::{DynamoData, DynamoRecorder, client};
use portcullis_engine::{Engine, EngineConfig, Mode, OnError};
use portcullis_gate::activity::{Location, Recorder, SignInActivity};
use portcullis_gate::manifest::RuleEntry;
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::{Answer, Handler, HandlerConfig};
use portcullis_testkit::moto::Moto;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");
const SUB: &str = "4f8e6c1a-8b0e-4a55-9d1c-0d6f2b7a9e10";

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}.json")).unwrap()).unwrap()
}

fn rule(
    name: &str,
    path: &str,
    trigger: &str,
    on_error: OnError,
    data: &[(&str, &str)],
) -> RuleEntry {
    RuleEntry {
        name: name.into(),
        module: path.into(),
        triggers: vec![trigger.into()],
        timeout_ms: None,
        fuel: None,
        memory_mb: None,
        on_error,
        mode: Mode::Enforce,
        config: Value::Null,
        data: data
            .iter()
            .map(|(a, t)| (a.to_string(), t.to_string()))
            .collect(),
        counters: Default::default(),
        lookups: Default::default(),
    }
}

async fn publish(store: &RuleStore, tenant: &str, mut rules: Vec<RuleEntry>) {
    for r in &mut rules {
        r.module = store
            .put_module(std::fs::read(&r.module).unwrap())
            .await
            .unwrap()
            .to_string();
    }
    store
        .publish(&TenantId::new(tenant).unwrap(), rules, 0)
        .await
        .unwrap();
}

struct Setup {
    moto: Moto,
    _dir: tempfile::TempDir,
    handler: Handler,
    data: Arc<DynamoData>,
    recorder: Arc<DynamoRecorder>,
}

/// acme: `block-suspended` reads `user#{sub}` (fails closed); `subscription` reads
/// `tenant#{tenant}` and `plan#{tenant}` (fails open); a post-auth rule reads data too.
async fn setup() -> Setup {
    let moto = Moto::start();
    moto.tables("data", "activity").await;
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "acme",
        vec![
            rule(
                "block-suspended",
                art::SUSPENDED_USERS,
                "pre-authentication",
                OnError::Deny,
                &[("user", "user#{sub}")],
            ),
            RuleEntry {
                config: json!({"missing": "allow"}),
                ..rule(
                    "subscription",
                    art::SUBSCRIPTION,
                    "pre-authentication",
                    OnError::Allow,
                    &[("tenant", "tenant#{tenant}"), ("plan", "plan#{tenant}")],
                )
            },
            rule(
                "new-device",
                art::NEW_DEVICE,
                "post-authentication",
                OnError::Deny,
                &[("user", "user#{sub}")],
            ),
        ],
    )
    .await;
    publish(
        &store,
        "globex",
        vec![rule(
            "subscription-note",
            art::ALLOW_ALL,
            "pre-authentication",
            OnError::Allow,
            &[("tenant", "tenant#{tenant}")],
        )],
    )
    .await;
    let aws = moto.sdk_config().await;
    let data = Arc::new(DynamoData::new(client(&aws), "data", Duration::ZERO));
    let recorder = Arc::new(
        DynamoRecorder::new(client(&aws), "activity", Some(Duration::from_secs(86_400)))
            .with_retry_window(0),
    );
    let engine = Arc::new(
        Engine::new(EngineConfig {
            max_concurrent: 2,
            ..EngineConfig::default()
        })
        .unwrap(),
    );
    let handler = Handler::builder(store)
        .engine(engine)
        .config(HandlerConfig {
            data_timeout: Duration::from_secs(2),
            record_timeout: Duration::from_secs(2),
            ..HandlerConfig::default()
        })
        .data(data.clone())
        .recorder(recorder.clone())
        .build()
        .unwrap();
    // Compile acme's rules before any sign-in: a sign-in's data prefetch gets what is left
    // of its deadline after loading them, and on a busy CI machine a cold compile can take
    // most of it (the fetch then times out and the rules fail closed, which is not what
    // these tests are about; the deadline itself is tested in gate's isolation tests).
    let loaded = handler.registry().get(&acme()).await;
    assert!(
        matches!(loaded, portcullis_gate::registry::Lookup::Found(_)),
        "{loaded:?}"
    );
    Setup {
        moto,
        _dir: dir,
        handler,
        data,
        recorder,
    }
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

#[tokio::test]
async fn a_flagged_user_is_blocked_until_the_item_is_deleted() {
    let s = setup().await;
    let key = format!("user#{SUB}");
    s.data
        .put(&acme(), &key, r#"{"suspended": true}"#)
        .await
        .unwrap();
    let answer: Answer = s.handler.handle(fixture("pre-auth"), None).await;
    assert_eq!(answer.response, Err("Your account is suspended".into()));
    // One BatchGetItem for the whole chain (three keys, two rules).
    assert_eq!(s.data.requests(), 1);

    // The block is audited (no attribute values: user name, rule, outcome, revision).
    let audit = s.recorder.audit_entries("acme").await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["rule"], "block-suspended");
    assert_eq!(audit[0]["outcome"], "deny");
    assert_eq!(audit[0]["user"], "ada");
    assert!(audit[0].contains_key("expires_at"));

    assert!(s.data.delete(&acme(), &key).await.unwrap());
    let answer = s.handler.handle(fixture("pre-auth"), None).await;
    assert!(answer.response.is_ok(), "{:?}", answer.record);
    assert_eq!(s.data.requests(), 2);
}

#[tokio::test]
async fn an_inactive_subscription_blocks_the_whole_tenant() {
    let s = setup().await;
    s.data
        .put(
            &acme(),
            "tenant#acme",
            r#"{"active": false, "plan": "pro"}"#,
        )
        .await
        .unwrap();
    let answer = s.handler.handle(fixture("pre-auth"), None).await;
    assert_eq!(
        answer.response,
        Err("Your organisation's subscription is not active".into())
    );
    assert_eq!(answer.record.denied_by.as_deref(), Some("subscription"));
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_items() {
    let s = setup().await;
    // globex has an item with exactly the key acme's rule asks for.
    let globex = TenantId::new("globex").unwrap();
    s.data
        .put(&globex, &format!("user#{SUB}"), r#"{"suspended": true}"#)
        .await
        .unwrap();
    let answer = s.handler.handle(fixture("pre-auth"), None).await;
    assert!(
        answer.response.is_ok(),
        "acme's rule must not see globex's item"
    );
    assert_eq!(
        s.data
            .get(&globex, &format!("user#{SUB}"))
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"suspended": true}"#)
    );
}

#[tokio::test]
async fn activity_counts_sign_ins_and_new_devices() {
    let s = setup().await;
    let mut event = fixture("post-auth");
    for new_device in [true, false, true] {
        event["request"]["newDeviceUsed"] = json!(new_device);
        let answer = s.handler.handle(event.clone(), None).await;
        assert_eq!(answer.response, Ok(event.clone()));
        assert!(
            answer.record.problems.is_empty(),
            "{:?}",
            answer.record.problems
        );
    }
    let activity = s.recorder.activity(&acme(), "ada").await.unwrap().unwrap();
    assert_eq!(activity.sign_ins, 3);
    assert_eq!(activity.new_device_sign_ins, 2);
    assert!(activity.last_new_device);
}

#[tokio::test]
async fn a_retried_post_auth_counts_once() {
    let moto = Moto::start();
    moto.tables("data", "activity").await;
    let recorder = DynamoRecorder::new(client(&moto.sdk_config().await), "activity", None);
    let sign_in = SignInActivity {
        tenant: acme(),
        user: "ada".into(),
        new_device: true,
        at_ms: 1_800_000_000_000,
        location: None,
    };
    recorder.sign_in(&sign_in).await.unwrap();
    // Cognito retried the same sign-in a second later.
    let retry = SignInActivity {
        at_ms: sign_in.at_ms + 1_000,
        ..sign_in.clone()
    };
    recorder.sign_in(&retry).await.unwrap();
    let a = recorder.activity(&acme(), "ada").await.unwrap().unwrap();
    assert_eq!((a.sign_ins, a.new_device_sign_ins), (1, 1));
    // A real second sign-in a minute later counts.
    let later = SignInActivity {
        at_ms: sign_in.at_ms + 60_000,
        new_device: false,
        ..sign_in
    };
    recorder.sign_in(&later).await.unwrap();
    let a = recorder.activity(&acme(), "ada").await.unwrap().unwrap();
    assert_eq!((a.sign_ins, a.new_device_sign_ins), (2, 1));
    assert!(!a.last_new_device);
}

/// The last trusted location is kept only when the deployment asks, only from trusted
/// context, with a TTL; a sign-in without trusted context leaves the last one alone.
#[tokio::test]
async fn the_last_trusted_location_is_kept_only_when_asked() {
    let moto = Moto::start();
    moto.tables("data", "activity").await;
    let sdk = client(&moto.sdk_config().await);
    let located = SignInActivity {
        tenant: acme(),
        user: "ada".into(),
        new_device: false,
        at_ms: 1_800_000_000_000,
        location: Some(Location {
            ip: "203.0.113.7".into(),
            country: Some("NL".into()),
        }),
    };
    let off = DynamoRecorder::new(sdk.clone(), "activity", None);
    off.sign_in(&located).await.unwrap();
    assert_eq!(
        off.location(&acme(), "ada").await.unwrap(),
        None,
        "off by default"
    );
    let on = DynamoRecorder::new(sdk, "activity", None).with_location(Duration::from_secs(86_400));
    on.sign_in(&located).await.unwrap();
    assert_eq!(
        on.location(&acme(), "ada").await.unwrap(),
        located.location.clone()
    );
    let elsewhere = SignInActivity {
        at_ms: located.at_ms + 60_000,
        location: Some(Location {
            ip: "198.51.100.4".into(),
            country: None,
        }),
        ..located.clone()
    };
    on.sign_in(&elsewhere).await.unwrap();
    assert_eq!(
        on.location(&acme(), "ada").await.unwrap(),
        elsewhere.location
    );
    let untrusted = SignInActivity {
        at_ms: located.at_ms + 120_000,
        location: None,
        ..located
    };
    on.sign_in(&untrusted).await.unwrap();
    assert_eq!(
        on.location(&acme(), "ada")
            .await
            .unwrap()
            .map(|l| l.ip)
            .as_deref(),
        Some("198.51.100.4")
    );
}

#[tokio::test]
async fn with_dynamodb_down_on_error_decides_and_post_auth_succeeds() {
    let mut s = setup().await;
    s.moto.stop();
    let answer = s.handler.handle(fixture("pre-auth"), None).await;
    // block-suspended fails closed; the chain stops there.
    assert!(answer.response.is_err(), "{:?}", answer.record);
    assert_eq!(answer.record.rules[0].outcome, "data_unavailable");
    assert_eq!(answer.record.denied_by.as_deref(), Some("block-suspended"));

    // post-auth never fails, whatever the data and activity writes do.
    let answer = s.handler.handle(fixture("post-auth"), None).await;
    assert_eq!(answer.response, Ok(fixture("post-auth")));
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.starts_with("activity")),
        "{:?}",
        answer.record.problems
    );
}

#[tokio::test]
async fn a_rule_failing_open_lets_the_sign_in_through_an_outage() {
    let mut s = setup().await;
    s.moto.stop();
    // globex's only data rule fails open.
    let mut event = fixture("pre-auth");
    event["request"]["userAttributes"]["custom:tenant_id"] = json!("globex");
    let answer = s.handler.handle(event, None).await;
    assert!(answer.response.is_ok(), "{:?}", answer.record);
    assert_eq!(answer.record.rules[0].outcome, "data_unavailable");
}

mod counters {
    //! Rule counters in the counter table: windows, resets, a late invocation's retry, and
    //! tenants apart; the lockout example through the handler.

    use portcullis_aws::counters::DynamoCounters;
    use portcullis_gate::data::counters::{
        Applied, Applying, Change, ChangeKind, CounterStore, RETRY_WINDOW_MS,
    };
    use portcullis_gate::manifest::CounterEntry;

    use super::*;

    const T0: i64 = 1_767_268_800_000;
    const WINDOW: i64 = 60_000;

    fn add(id: &str) -> Change {
        Change {
            id: id.into(),
            kind: ChangeKind::Add(1),
            window_ms: WINDOW,
        }
    }

    fn at(now_ms: i64, event: &str, late: bool) -> Applying {
        Applying {
            now_ms,
            event: event.into(),
            late,
        }
    }

    async fn count(store: &DynamoCounters, tenant: &str, id: &str, now: i64) -> u64 {
        let tenant = TenantId::new(tenant).unwrap();
        let ids = [id.to_owned()];
        let read = store
            .read(&tenant, &ids, Duration::from_secs(5))
            .await
            .unwrap();
        read.get(id).map_or(0, |w| w.count_at(now, WINDOW))
    }

    async fn apply(store: &DynamoCounters, tenant: &str, change: Change, a: Applying) -> Applied {
        let tenant = TenantId::new(tenant).unwrap();
        store
            .apply(&tenant, &[change], &a, Duration::from_secs(5))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn windows_resets_retries_and_tenants_apart() {
        let moto = Moto::start();
        moto.counter_table("counters").await;
        let store = DynamoCounters::new(client(&moto.sdk_config().await), "counters");
        let id = "tenant#lockout#attempts#user#ada";
        for i in 0..3 {
            let did = apply(&store, "acme", add(id), at(T0 + i, &format!("e{i}"), false)).await;
            assert_eq!(did.applied, 1);
        }
        assert_eq!(count(&store, "acme", id, T0 + 10).await, 3);
        // Another tenant's counter of the same id is its own.
        assert_eq!(count(&store, "globex", id, T0 + 10).await, 0);
        // Identical events answered in time count every time.
        apply(&store, "acme", add(id), at(T0 + 20, "same", false)).await;
        apply(&store, "acme", add(id), at(T0 + 21, "same", false)).await;
        assert_eq!(count(&store, "acme", id, T0 + 30).await, 5);
        // A late invocation marks the counter; Cognito's retry of that event does not
        // count; the one after it does.
        let late = apply(&store, "acme", add(id), at(T0 + 40, "slow", true)).await;
        assert_eq!(late.applied, 1);
        let retry = apply(&store, "acme", add(id), at(T0 + 5_040, "slow", false)).await;
        assert_eq!((retry.applied, retry.repeated), (0, 1));
        let next = apply(&store, "acme", add(id), at(T0 + 5_050, "slow", false)).await;
        assert_eq!(next.applied, 1);
        assert_eq!(count(&store, "acme", id, T0 + 5_060).await, 7);
        // The window is over: the count is 0 and the next addition starts a new one.
        assert_eq!(count(&store, "acme", id, T0 + WINDOW).await, 0);
        apply(&store, "acme", add(id), at(T0 + WINDOW, "e", false)).await;
        assert_eq!(count(&store, "acme", id, T0 + WINDOW + 1).await, 1);
        // A late change's mark expires with the retry window.
        let other = "tenant#lockout#attempts#user#grace";
        apply(&store, "acme", add(other), at(T0, "g", true)).await;
        let after = apply(
            &store,
            "acme",
            add(other),
            at(T0 + RETRY_WINDOW_MS, "g", false),
        )
        .await;
        assert_eq!(after.applied, 1);
        // A rule's own request may add more than one.
        let three = Change {
            kind: ChangeKind::Add(3),
            ..add("tenant#asker#attempts#user#ada")
        };
        apply(&store, "acme", three, at(T0, "x", false)).await;
        let asked = count(&store, "acme", "tenant#asker#attempts#user#ada", T0 + 1).await;
        assert_eq!(asked, 3);
        // A reset.
        let reset = Change {
            kind: ChangeKind::Reset,
            ..add(id)
        };
        apply(&store, "acme", reset, at(T0 + WINDOW + 2, "r", false)).await;
        assert_eq!(count(&store, "acme", id, T0 + WINDOW + 3).await, 0);
    }

    #[tokio::test]
    async fn the_lockout_example_blocks_past_its_limit_and_a_success_resets_it() {
        let moto = Moto::start();
        moto.counter_table("counters").await;
        let dir = tempfile::tempdir().unwrap();
        let store = RuleStore::dir(dir.path());
        let mut lockout = RuleEntry {
            config: json!({"max_attempts": 2}),
            ..rule(
                "lockout",
                art::LOCKOUT,
                "pre-authentication",
                OnError::Deny,
                &[],
            )
        };
        lockout.counters.insert(
            "attempts".into(),
            CounterEntry {
                key: "user#{username}".into(),
                window_s: 900,
                count_on: None,
                reset_on: None,
            },
        );
        publish(&store, "acme", vec![lockout]).await;
        let counters = DynamoCounters::new(client(&moto.sdk_config().await), "counters");
        let handler = Handler::builder(store)
            .engine(Arc::new(
                Engine::new(EngineConfig {
                    max_concurrent: 2,
                    ..EngineConfig::default()
                })
                .unwrap(),
            ))
            .config(HandlerConfig {
                data_timeout: Duration::from_secs(2),
                record_timeout: Duration::from_secs(2),
                ..HandlerConfig::default()
            })
            .counters(Arc::new(counters))
            .build()
            .unwrap();
        let loaded = handler.registry().get(&acme()).await;
        assert!(matches!(
            loaded,
            portcullis_gate::registry::Lookup::Found(_)
        ));
        let attempt = || handler.handle(fixture("pre-auth"), None);
        assert!(attempt().await.response.is_ok());
        assert!(attempt().await.response.is_ok());
        let third = attempt().await;
        assert_eq!(
            third.response,
            Err("Too many failed sign-in attempts. Try again later".to_owned()),
            "{:?}",
            third.record
        );
        let success = handler.handle(fixture("post-auth"), None).await;
        assert_eq!(success.record.counters.map(|c| c.applied), Some(1));
        assert!(attempt().await.response.is_ok());
    }
}
