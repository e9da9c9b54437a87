//! Evaluation cost: one rule (a fresh store and instance from the cached `InstancePre`, plus
//! the call) for a trivial, a realistic and a large-memory policy, a 10-rule chain, and the
//! instance-reset levers (the memset pool, the dirty-page pool, nothing kept resident).
//!
//! `cargo bench -p portcullis-engine --bench evaluate`; BENCHMARKS.md has the figures.

#![expect(
    clippy::expect_used,
    reason = "benchmarks: a failed set-up is a failed run"
)]
#![expect(missing_docs, reason = "criterion generates undocumented items")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_artifacts as art;
use portcullis_engine::chain::DataSet;
use portcullis_engine::{
    Budget, Chain, Engine, EngineConfig, Mode, OnError, Origin, Rule, RuleInput, RuleName, SignIn,
    Trigger,
};

fn request() -> SignIn {
    SignIn {
        trigger: Trigger::PreAuthentication,
        trigger_source: "PreAuthentication_Authentication".into(),
        event_version: "1".into(),
        tenant: "acme".into(),
        user_pool_id: "us-east-1_Acme0001".into(),
        client_id: Some("acmewebclient0001".into()),
        user_name: Some("ada".into()),
        user_attributes: vec![
            ("sub".into(), "4f8e6c1a-8b0e-4a55-9d1c-0d6f2b7a9e10".into()),
            ("email".into(), "ada@acme.example".into()),
            ("email_verified".into(), "true".into()),
            ("custom:tenant_id".into(), "acme".into()),
        ],
        client_metadata: vec![("ip".into(), "10.20.30.40".into())],
        user_not_found: false,
        new_device_used: None,
        groups: vec!["staff".into()],
        scopes: vec![],
        now_unix_ms: 1_767_596_400_000,
        token_source: portcullis_engine::contract::TokenSource::None,
        federated: false,
        first_federated: false,
        trusted: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("evaluate");
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let budget = Budget::default();

    let trivial = engine
        .load(&std::fs::read(art::ALLOW_ALL).expect("artifact"))
        .expect("load");
    let r = Arc::new(request());
    let none = RuleInput::default();
    group.bench_function("trivial (allow-all)", |b| {
        b.iter(|| black_box(engine.evaluate(&trivial, &r, &none, &budget)))
    });

    // The floor under any rule: a fresh instance and a call that takes nothing in
    // (`describe`). The request is lent, not copied, so its size does not matter to a rule
    // that does not read it: the same trivial rule on a request with 50 attributes.
    group.bench_function("floor: describe (fresh instance, nothing lent)", |b| {
        b.iter(|| black_box(engine.describe(&trivial, &budget)))
    });
    let mut big = request();
    big.user_attributes
        .extend((0..46).map(|i| (format!("custom:a{i}"), format!("value {i}"))));
    let big = Arc::new(big);
    group.bench_function("trivial, request with 50 attributes", |b| {
        b.iter(|| black_box(engine.evaluate(&trivial, &big, &none, &budget)))
    });

    let realistic = engine
        .load(&std::fs::read(art::IP_ALLOWLIST).expect("artifact"))
        .expect("load");
    let allowlist = RuleInput::with_config(
        r#"{"allow": ["10.0.0.0/8", "192.168.0.0/16"], "deny": ["10.6.6.0/24"], "client_supplied": true}"#,
    );
    group.bench_function("realistic (ip-allowlist)", |b| {
        b.iter(|| black_box(engine.evaluate(&realistic, &r, &allowlist, &budget)))
    });

    let suspended = engine
        .load(&std::fs::read(art::SUSPENDED_USERS).expect("artifact"))
        .expect("load");
    let rules: Vec<Rule> = (0..10)
        .map(|i| Rule {
            name: RuleName::new(&format!("rule-{i}")).expect("name"),
            origin: Origin::Tenant,
            policy: if i % 2 == 0 {
                realistic.clone()
            } else {
                suspended.clone()
            },
            triggers: vec![Trigger::PreAuthentication],
            budget,
            on_error: OnError::Deny,
            mode: Mode::Enforce,
            config: if i % 2 == 0 {
                Arc::clone(&allowlist.config)
            } else {
                Arc::from("null")
            },
        })
        .collect();
    let chain = Chain { rules };
    let data = DataSet::default();
    group.bench_function("chain of 10 rules", |b| {
        b.iter(|| {
            let deadline = Instant::now() + Duration::from_secs(1);
            black_box(chain.evaluate(&engine, Arc::clone(&r), &data, deadline))
        })
    });

    // A policy with a large memory (time-zone data: 15 pages), under the default reset.
    let hours = engine
        .load(&std::fs::read(art::SIGNIN_HOURS).expect("artifact"))
        .expect("load");
    let berlin = RuleInput::with_config(
        r#"{"time_zone": "Europe/Berlin", "start": "08:00", "end": "18:00"}"#,
    );
    group.bench_function("large memory (signin-hours)", |b| {
        b.iter(|| black_box(engine.evaluate(&hours, &r, &berlin, &budget)))
    });

    // The instance-reset levers: every policy in the dirty-page pool, every policy in the
    // memset pool, and nothing kept resident.
    for (name, small, large) in [
        ("all in the dirty-page (PAGEMAP_SCAN) pool", 0, 1 << 20),
        ("all in the memset pool", 2 << 20, 1 << 20),
        ("nothing kept resident", 0, 0),
    ] {
        let variant = Engine::new(EngineConfig {
            small_memory_bytes: small,
            large_keep_resident_bytes: large,
            ..EngineConfig::default()
        })
        .expect("engine");
        for (policy, path, input) in [
            ("trivial", art::ALLOW_ALL, &none),
            ("large memory", art::SIGNIN_HOURS, &berlin),
        ] {
            let loaded = variant
                .load(&std::fs::read(path).expect("artifact"))
                .expect("load");
            group.bench_function(format!("{policy}, {name}"), |b| {
                b.iter(|| black_box(variant.evaluate(&loaded, &r, input, &budget)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
