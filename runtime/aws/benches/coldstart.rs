//! Cold start and revalidation, measured: a fresh engine and registry (what a new Lambda
//! environment has) up to the first decision on a 10-rule chain, from precompiled artifacts
//! against compiling the `.wasm`; and a warm invocation whose manifest revalidation against
//! S3 (moto on loopback) answers 304, against one within the refresh interval.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/moto/mod.rs"]
mod moto;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_artifacts as art;
use portcullis_aws::s3::{S3Objects, client};
use portcullis_engine::handler::{Handler, HandlerConfig};
use portcullis_engine::manifest::RuleEntry;
use portcullis_engine::registry::{Registry, RegistryConfig};
use portcullis_engine::store::{RuleStore, TenantId};
use portcullis_engine::{Engine, EngineConfig, Mode, OnError};
use serde_json::Value;

const EVENT: &str = include_str!("../../fixtures/events/pre-auth.json");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Ten pre-auth rules that all allow the fixture's user (8 distinct modules).
fn rules() -> Vec<(String, &'static str, Value)> {
    let mut rules: Vec<(String, &'static str, Value)> = vec![
        (
            "email".into(),
            art::EMAIL_DOMAIN,
            serde_json::json!({"domains": ["acme.example"]}),
        ),
        ("suspended".into(), art::SUSPENDED_USERS, Value::Null),
        (
            "ip".into(),
            art::IP_ALLOWLIST,
            serde_json::json!({"allow": ["10.0.0.0/8"]}),
        ),
        (
            "risk".into(),
            art::RISK_SCORE,
            serde_json::json!({"max": 70}),
        ),
        (
            "hours".into(),
            art::SIGNIN_HOURS,
            serde_json::json!({"time_zone": "UTC", "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "start": "00:00", "end": "23:59"}),
        ),
        ("claims".into(), art::TENANT_CLAIMS, Value::Null),
        ("device".into(), art::NEW_DEVICE, Value::Null),
        ("allow".into(), art::ALLOW_ALL, Value::Null),
    ];
    rules.push(("allow-2".into(), art::ALLOW_ALL, Value::Null));
    rules.push((
        "email-2".into(),
        art::EMAIL_DOMAIN,
        serde_json::json!({"domains": ["acme.example"]}),
    ));
    rules
}

async fn seed(store: &RuleStore, engine: Option<&Engine>) {
    let mut entries = Vec::new();
    for (name, path, config) in rules() {
        let bytes = std::fs::read(path).unwrap();
        let digest = store.put_module(bytes.clone()).await.unwrap();
        if let Some(engine) = engine {
            let policy = engine.load(&bytes).unwrap();
            store
                .put_compiled(&engine.compat(), &digest, engine.artifact(&policy).unwrap())
                .await
                .unwrap();
        }
        entries.push(RuleEntry {
            name,
            module: digest.to_string(),
            triggers: vec!["pre-authentication".into()],
            timeout_ms: None,
            fuel: None,
            memory_mb: None,
            on_error: OnError::Allow,
            mode: Mode::Enforce,
            config,
            data: Default::default(),
        });
    }
    store
        .publish(&TenantId::new("acme").unwrap(), entries, 0)
        .await
        .unwrap();
}

fn handler(store: RuleStore, refresh: Duration) -> Handler {
    let engine = Arc::new(
        Engine::new(EngineConfig {
            max_concurrent: 8,
            ..EngineConfig::default()
        })
        .unwrap(),
    );
    let registry = Registry::new(
        store,
        engine.clone(),
        RegistryConfig {
            refresh,
            ..RegistryConfig::default()
        },
    );
    Handler::new(engine, registry, HandlerConfig::default())
}

fn cold_start(c: &mut Criterion) {
    let rt = runtime();
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let plain = tempfile::tempdir().unwrap();
    let compiled = tempfile::tempdir().unwrap();
    let builder = Engine::new(EngineConfig::default()).unwrap();
    rt.block_on(seed(&RuleStore::dir(plain.path()), None));
    rt.block_on(seed(&RuleStore::dir(compiled.path()), Some(&builder)));
    drop(builder);

    let mut group = c.benchmark_group("cold_start_10_rules");
    group.sample_size(10);
    for (name, dir) in [("compile_wasm", &plain), ("precompiled", &compiled)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let h = handler(RuleStore::dir(dir.path()), Duration::from_secs(60));
                let answer = rt.block_on(h.handle(event.clone(), None));
                assert!(answer.response.is_ok(), "{:?}", answer.record);
                assert_eq!(answer.record.rules.len(), 10);
            })
        });
    }
    group.finish();
}

fn warm(c: &mut Criterion) {
    let rt = runtime();
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let moto = moto::Moto::start();
    rt.block_on(moto.bucket("rules"));
    let objects = Arc::new(S3Objects::new(
        client(&rt.block_on(moto.sdk_config())),
        "rules",
        "bench",
        Duration::from_secs(2),
    ));
    let store = RuleStore::new(objects);
    rt.block_on(seed(&store, None));

    let mut group = c.benchmark_group("warm_10_rules_s3");
    for (name, refresh) in [
        ("cached", Duration::from_secs(3600)),
        ("revalidate_304", Duration::ZERO),
    ] {
        let h = handler(store.clone(), refresh);
        assert!(rt.block_on(h.handle(event.clone(), None)).response.is_ok());
        group.bench_function(name, |b| {
            b.iter(|| {
                let answer = rt.block_on(h.handle(event.clone(), None));
                assert_eq!(answer.record.revision, Some(1));
            })
        });
        assert_eq!(h.registry().refresh_failures(), 0);
    }
    group.finish();
}

criterion_group!(benches, cold_start, warm);
criterion_main!(benches);
