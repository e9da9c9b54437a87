//! Declared counters through the handler: the lockout and velocity examples block at their
//! limits and let users in after the window or a success, a late invocation's retry counts
//! once, and counters never cross tenants, origins or rules.
#![expect(
    clippy::indexing_slicing,
    reason = "tests: a missing field is a failed test"
)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::rule::{Mode, OnError};
use portcullis_gate::data::counters::{CounterStore, MemoryCounters};
use portcullis_gate::manifest::{CounterEntry, RuleEntry};
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::{Answer, Handler, HandlerConfig};
use serde_json::{Value, json};

use portcullis_testkit::rules::{block, entry, fixture, gate, handle, publish};

const MESSAGE: &str = "Too many failed sign-in attempts. Try again later";
const T0: i64 = 1_767_268_800_000;

/// The lockout example: 3 failed attempts per user name within 60 s.
fn lockout(key: &str) -> RuleEntry {
    let mut rule = entry(
        "lockout",
        art::LOCKOUT,
        &["pre-authentication"],
        json!({"max_attempts": 3}),
    );
    rule.counters.insert(
        "attempts".into(),
        CounterEntry {
            key: key.into(),
            window_s: 60,
            count_on: None,
            reset_on: None,
        },
    );
    rule
}

/// A handler at host time `at_ms` over `store`, counting in `counters`.
fn at(store: &RuleStore, counters: &Arc<MemoryCounters>, at_ms: i64) -> Handler {
    let config = HandlerConfig {
        clock_ms: Some(at_ms),
        ..HandlerConfig::default()
    };
    warm(
        gate(store, config, Duration::from_secs(60))
            .counters(Arc::clone(counters) as Arc<dyn CounterStore>)
            .build()
            .unwrap(),
    )
}

/// `h` with every set these tests publish loaded: compiling a rule on a busy machine can
/// take an invocation past [`LATE_AFTER`](portcullis_gate::data::counters::LATE_AFTER),
/// and a late invocation's identical retry rightly counts once, which is not what these
/// tests are about.
fn warm(h: Handler) -> Handler {
    for tenant in ["_global", "acme", "globex"] {
        block(h.registry().get(&TenantId::new(tenant).unwrap()));
    }
    h
}

fn blocked(answer: &Answer) -> bool {
    answer.response == Err(MESSAGE.to_owned())
}

fn sign_in(tenant: &str, user: &str) -> Value {
    let mut event = fixture("pre-auth");
    event["userName"] = json!(user);
    event["request"]["userAttributes"]["custom:tenant_id"] = json!(tenant);
    event
}

#[test]
fn the_attempt_after_the_limit_is_blocked_until_the_window_is_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "acme", vec![lockout("user#{username}")]);
    let counters = Arc::new(MemoryCounters::new());
    let now = at(&store, &counters, T0);
    for attempt in 1..=3 {
        let answer = handle(&now, sign_in("acme", "ada"));
        assert!(
            answer.response.is_ok(),
            "attempt {attempt}: {:?}",
            answer.record
        );
        assert_eq!(
            answer.record.counters.unwrap().applied,
            1,
            "{:?}",
            answer.record
        );
    }
    // The fourth within the window, and every one after it, is blocked (and counted).
    assert!(blocked(&handle(&now, sign_in("acme", "ada"))));
    assert!(blocked(&handle(
        &at(&store, &counters, T0 + 59_999),
        sign_in("acme", "ada")
    )));
    // Another user is not locked out by ada's failures.
    assert!(handle(&now, sign_in("acme", "grace")).response.is_ok());
    // Once the window the first failure started is over, ada gets in again.
    let later = at(&store, &counters, T0 + 60_000);
    assert!(handle(&later, sign_in("acme", "ada")).response.is_ok());
}

#[test]
fn a_successful_sign_in_resets_the_failures() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "acme", vec![lockout("user#{username}")]);
    let counters = Arc::new(MemoryCounters::new());
    let h = at(&store, &counters, T0);
    for _ in 0..3 {
        assert!(handle(&h, sign_in("acme", "ada")).response.is_ok());
    }
    // Post-authentication: the password was right. The rule does not run there; its
    // counter is reset all the same.
    let success = handle(&h, fixture("post-auth"));
    assert_eq!(success.record.counters.unwrap().applied, 1);
    for _ in 0..3 {
        assert!(handle(&h, sign_in("acme", "ada")).response.is_ok());
    }
    assert!(blocked(&handle(&h, sign_in("acme", "ada"))));
}

#[test]
fn counters_are_kept_apart_by_tenant_and_by_origin() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    // The global rule locks out after 3; acme declares a counter of the same rule name and
    // key that resets on every pre-authentication: it must not touch the global count.
    publish(&store, "_global", vec![lockout("user#{username}")]);
    let mut reset = lockout("user#{username}");
    reset.counters.insert(
        "attempts".into(),
        CounterEntry {
            key: "user#{username}".into(),
            window_s: 60,
            count_on: Some(vec!["post-authentication".into()]),
            reset_on: Some(vec!["pre-authentication".into()]),
        },
    );
    publish(&store, "acme", vec![reset]);
    publish(&store, "globex", vec![lockout("user#{username}")]);
    let counters = Arc::new(MemoryCounters::new());
    let h = at(&store, &counters, T0);
    for _ in 0..3 {
        assert!(handle(&h, sign_in("acme", "ada")).response.is_ok());
    }
    let fourth = handle(&h, sign_in("acme", "ada"));
    assert!(blocked(&fourth), "{:?}", fourth.record);
    assert_eq!(fourth.record.denied_by.as_deref(), Some("lockout"));
    // A user of the same name in globex starts from nothing, under both origins.
    for _ in 0..3 {
        assert!(handle(&h, sign_in("globex", "ada")).response.is_ok());
    }
    assert!(blocked(&handle(&h, sign_in("globex", "ada"))));
}

#[test]
fn a_velocity_limit_counts_per_trusted_address_and_is_not_reset_by_success() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let mut rule = entry(
        "velocity",
        art::VELOCITY,
        &["pre-authentication"],
        json!({"max_per_window": 2, "missing": "deny"}),
    );
    rule.counters.insert(
        "ip".into(),
        CounterEntry {
            key: "ip#{trusted:ip}".into(),
            window_s: 60,
            count_on: None,
            reset_on: Some(vec![]),
        },
    );
    publish(&store, "acme", vec![rule]);
    let counters = Arc::new(MemoryCounters::new());
    let h = at(&store, &counters, T0);
    // No verified address: no count, `missing` decides; a client's own `ip` is not one.
    let mut unvouched = sign_in("acme", "ada");
    unvouched["request"]["validationData"] = json!({"ip": "10.1.2.3"});
    let answer = handle(&h, unvouched);
    assert!(answer.response.is_err());
    assert!(answer.record.counters.is_none(), "{:?}", answer.record);
    drop(counters);
}

#[test]
fn a_retry_of_a_late_invocation_counts_once_and_prompt_repeats_count_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    // Shadow rules that spin through their whole budgets (2.4 s together, leaving the
    // 4.4 s chain time for loading the rules on a busy machine): an invocation slow enough
    // that Cognito may have given up on it and will retry the same event.
    let spin = |name: &str| {
        let mut spin = entry(
            name,
            art::INFINITE_LOOP,
            &["pre-authentication"],
            Value::Null,
        );
        spin.timeout_ms = Some(800);
        spin.fuel = Some(10_000_000_000);
        spin.mode = Mode::Shadow;
        spin.on_error = OnError::Allow;
        spin
    };
    let rules = vec![
        lockout("user#{username}"),
        spin("spin-1"),
        spin("spin-2"),
        spin("spin-3"),
    ];
    publish(&store, "acme", rules);
    let counters = Arc::new(MemoryCounters::new());
    let config = HandlerConfig {
        clock_ms: Some(T0),
        max_chain: Duration::from_millis(4_400),
        ..HandlerConfig::default()
    };
    let slow = warm(
        gate(&store, config.clone(), Duration::from_secs(60))
            .counters(Arc::clone(&counters) as Arc<dyn CounterStore>)
            .build()
            .unwrap(),
    );
    let late = handle(&slow, sign_in("acme", "ada"));
    assert!(late.record.rules_us > 2_000_000, "{:?}", late.record);
    assert_eq!(
        late.record.counters.unwrap().applied,
        1,
        "{:?}",
        late.record
    );
    // Cognito gave up on that one and sends the same event again: it does not count again
    // (the retry is answered in time: the spinning rule is gone from the next revision).
    publish(&store, "acme", vec![lockout("user#{username}")]);
    let prompt = gate(&store, config, Duration::from_secs(60))
        .counters(Arc::clone(&counters) as Arc<dyn CounterStore>)
        .build()
        .unwrap();
    // Loaded (and compiled) by another user's sign-in first, so the retry itself is
    // prompt however busy the machine is.
    assert!(handle(&prompt, sign_in("acme", "grace")).response.is_ok());
    let retry = handle(&prompt, sign_in("acme", "ada"));
    assert_eq!(
        retry.record.counters.unwrap().repeated,
        1,
        "{:?}",
        retry.record
    );
    // A new attempt, answered in time, counts, even though its event is identical.
    let again = handle(&prompt, sign_in("acme", "ada"));
    assert_eq!(again.record.counters.unwrap().applied, 1);
    let again = handle(&prompt, sign_in("acme", "ada"));
    assert_eq!(again.record.counters.unwrap().applied, 1);
    assert!(blocked(&handle(&prompt, sign_in("acme", "ada"))));
}

/// The counter-asker guest with `changes`, declaring `attempts` (no implied changes).
fn asker(config: Value) -> RuleEntry {
    let mut rule = entry("asker", art::COUNTER_ASKER, &["pre-authentication"], config);
    rule.counters.insert(
        "attempts".into(),
        CounterEntry {
            key: "user#{username}".into(),
            window_s: 60,
            count_on: Some(vec![]),
            reset_on: Some(vec![]),
        },
    );
    rule
}

#[test]
fn a_rule_asks_for_counter_changes_and_only_what_it_may_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let counters = Arc::new(MemoryCounters::new());
    let h = at(&store, &counters, T0);
    let run = |config: Value| {
        publish(&store, "acme", vec![asker(config)]);
        let fresh = at(&store, &counters, T0);
        handle(&fresh, sign_in("acme", "ada")).record
    };
    drop(h);
    // Declared: applied in order (add 5, reset, add 2 → 2). Undeclared and out-of-range
    // requests are ignored.
    let record = run(
        json!({"changes": [["attempts", 5], ["attempts", null], ["attempts", 2],
        ["other", 1], ["attempts", 0], ["attempts", 1001]]}),
    );
    assert_eq!(record.counters.map(|c| c.applied), Some(3), "{record:?}");
    let seen = run(json!({"changes": []}));
    assert!(seen.counters.is_none());
    // The rule saw 2 (the next run reads it): ask for 1 per request, 20 requests → 16.
    let record = run(json!({"changes": [["attempts", 1]], "repeat": 20}));
    assert_eq!(record.counters.map(|c| c.applied), Some(16));
    let windows = portcullis_testkit::rules::block(counters.read(
        &portcullis_gate::TenantId::new("acme").unwrap(),
        &["tenant#asker#attempts#user#ada".to_owned()],
        Duration::from_secs(1),
    ))
    .unwrap();
    assert_eq!(windows["tenant#asker#attempts#user#ada"].count, 18);
    // A rule that fails, or runs in shadow, changes nothing.
    let record = run(json!({"changes": [["attempts", null]], "then": "fail"}));
    assert!(record.counters.is_none(), "{record:?}");
    let mut shadow = asker(json!({"changes": [["attempts", null]]}));
    shadow.mode = Mode::Shadow;
    publish(&store, "acme", vec![shadow]);
    let record = handle(&at(&store, &counters, T0), sign_in("acme", "ada")).record;
    assert!(record.counters.is_none(), "{record:?}");
    // A deny is applied: its requests are too.
    let record = run(json!({"changes": [["attempts", null]], "then": "deny"}));
    assert_eq!(record.counters.map(|c| c.applied), Some(1), "{record:?}");
}
