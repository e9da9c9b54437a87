//! Evaluation cost: one rule (a fresh store and instance from the cached `InstancePre`, plus
//! the call) for a trivial and a realistic policy, a 10-rule chain, and the instance-reset
//! levers (keep-resident size, resetting only dirtied pages with `PAGEMAP_SCAN`).
//!
//! `cargo bench -p portcullis-engine --bench evaluate`; BENCHMARKS.md has the figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_artifacts as art;
use portcullis_engine::chain::DataSet;
use portcullis_engine::{
    Budget, Chain, Engine, EngineConfig, Mode, OnError, Request, Rule, RuleName, Trigger,
};

fn request() -> Request {
    Request {
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
        config: "null".into(),
        data: vec![],
        now_unix_ms: 1_767_596_400_000,
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
    let r = request();
    group.bench_function("trivial (allow-all)", |b| {
        b.iter(|| black_box(engine.evaluate(&trivial, &r, &budget)))
    });

    let realistic = engine
        .load(&std::fs::read(art::IP_ALLOWLIST).expect("artifact"))
        .expect("load");
    let mut r2 = request();
    r2.config = r#"{"allow": ["10.0.0.0/8", "192.168.0.0/16"], "deny": ["10.6.6.0/24"]}"#.into();
    group.bench_function("realistic (ip-allowlist)", |b| {
        b.iter(|| black_box(engine.evaluate(&realistic, &r2, &budget)))
    });

    let suspended = engine
        .load(&std::fs::read(art::SUSPENDED_USERS).expect("artifact"))
        .expect("load");
    let rules: Vec<Rule> = (0..10)
        .map(|i| Rule {
            name: RuleName::new(&format!("rule-{i}")).expect("name"),
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
                r2.config.clone()
            } else {
                "null".into()
            },
            data: Vec::new(),
        })
        .collect();
    let chain = Chain { rules };
    let data = DataSet::default();
    group.bench_function("chain of 10 rules", |b| {
        b.iter(|| {
            let deadline = Instant::now() + Duration::from_secs(1);
            black_box(chain.evaluate(&engine, r.clone(), &data, deadline))
        })
    });

    // The instance-reset levers, on the trivial policy.
    for (name, keep, dirty_only) in [
        (
            "trivial, 256K resident, memset all (no pagemap_scan)",
            256 << 10,
            false,
        ),
        ("trivial, 1M resident, dirty pages only", 1 << 20, true),
        ("trivial, keep_resident 0", 0, true),
    ] {
        let variant = Engine::new(EngineConfig {
            keep_resident_bytes: keep,
            reset_dirty_only: dirty_only,
            ..EngineConfig::default()
        })
        .expect("engine");
        let policy = variant
            .load(&std::fs::read(art::ALLOW_ALL).expect("artifact"))
            .expect("load");
        group.bench_function(name, |b| {
            b.iter(|| black_box(variant.evaluate(&policy, &r, &budget)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
