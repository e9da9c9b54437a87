//! Cold start and revalidation, measured: a fresh engine and registry (what a new Lambda
//! environment has) up to the first decision on a 10-rule chain, from precompiled artifacts
//! (sealed with the artifact key, the manifest signed and verified; their code copied, or
//! mapped from files as the Lambda does) against compiling the `.wasm` and against the same
//! handler answering a tenant with no rules; what the trust checks alone cost on those 10
//! rules (the artifacts' HMAC, against the plain sha256 checksum it replaced, and the
//! manifest's Ed25519 signature); and a warm
//! invocation whose manifest revalidation against S3 (moto on loopback) answers 304,
//! against one within the refresh interval.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmarks: a failed set-up is a failed run"
)]

use portcullis_testkit::moto;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_aws::s3::{S3Objects, client};
use portcullis_engine::{ArtifactKey, Engine, EngineConfig, Sha256};
use portcullis_gate::registry::RegistryConfig;
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::trust::{ManifestSigner, TrustedKeys};
use portcullis_gate::{Handler, HandlerConfig};
use serde_json::Value;

const EVENT: &str = include_str!("../../fixtures/events/pre-auth.json");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The deployment's keys for the bench: an artifact key and a publisher.
struct Keys {
    artifact: ArtifactKey,
    signer: ManifestSigner,
    trusted: TrustedKeys,
}

fn keys() -> Keys {
    let signer = ManifestSigner::generate("bench").unwrap();
    Keys {
        artifact: ArtifactKey::new(vec![7; 32]).unwrap(),
        trusted: TrustedKeys::parse(&signer.public_line()).unwrap(),
        signer,
    }
}

async fn seed(store: &RuleStore, engine: Option<&Engine>, keys: &Keys) {
    let mut entries = Vec::new();
    for mut rule in portcullis_testkit::rules::ten_pre_auth_rules() {
        let bytes = std::fs::read(&rule.module).unwrap();
        let digest = store.put_module(bytes.clone()).await.unwrap();
        if let Some(engine) = engine {
            let policy = engine.load(&bytes).unwrap();
            store
                .put_compiled(
                    &engine.compat(),
                    &digest,
                    engine.artifact(&policy, &keys.artifact).unwrap(),
                )
                .await
                .unwrap();
        }
        rule.module = digest.to_string();
        entries.push(rule);
    }
    store
        .publish_signed(
            &TenantId::new("acme").unwrap(),
            entries,
            0,
            Some(&keys.signer),
        )
        .await
        .unwrap();
}

fn handler(store: RuleStore, refresh: Duration, keys: Option<&Keys>) -> Handler {
    handler_mapping(store, refresh, keys, None)
}

/// The Lambda's engine; with `code_dir`, precompiled code is mapped from files there, as
/// the Lambda does from its ephemeral storage.
fn handler_mapping(
    store: RuleStore,
    refresh: Duration,
    keys: Option<&Keys>,
    code_dir: Option<std::path::PathBuf>,
) -> Handler {
    let engine = Arc::new(
        Engine::new(EngineConfig {
            max_concurrent: 8,
            code_dir,
            ..EngineConfig::default()
        })
        .unwrap(),
    );
    Handler::builder(store)
        .engine(engine)
        .config(HandlerConfig::default())
        .registry(RegistryConfig {
            refresh,
            trusted_keys: keys.map(|k| k.trusted.clone()),
            artifact_key: keys.map(|k| k.artifact.clone()),
            ..RegistryConfig::default()
        })
        .build()
        .unwrap()
}

fn cold_start(c: &mut Criterion) {
    let rt = runtime();
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let plain = tempfile::tempdir().unwrap();
    let compiled = tempfile::tempdir().unwrap();
    let keys = keys();
    let builder = Engine::new(EngineConfig::default()).unwrap();
    rt.block_on(seed(&RuleStore::dir(plain.path()), None, &keys));
    rt.block_on(seed(
        &RuleStore::dir(compiled.path()),
        Some(&builder),
        &keys,
    ));

    // The trust checks alone, on the same 10 rules' artifacts and manifest.
    let store = RuleStore::dir(compiled.path());
    let acme = TenantId::new("acme").unwrap();
    let manifest = rt.block_on(store.current(&acme)).unwrap().unwrap().manifest;
    let artifacts: Vec<(Sha256, Vec<u8>)> = manifest
        .rules
        .iter()
        .map(|r| {
            let digest: Sha256 = r.module.parse().unwrap();
            let artifact = rt
                .block_on(store.compiled(&builder.compat(), &digest))
                .unwrap()
                .unwrap();
            (digest, artifact)
        })
        .collect();
    let compat = builder.compat();
    drop(builder);
    let mut group = c.benchmark_group("trust_checks_10_rules");
    group.bench_function("artifact_hmac", |b| {
        b.iter(|| {
            for (digest, artifact) in &artifacts {
                portcullis_engine::artifact::open(&keys.artifact, &compat, digest, artifact)
                    .unwrap();
            }
        })
    });
    group.bench_function("sha256_checksum_before", |b| {
        b.iter(|| {
            for (_, artifact) in &artifacts {
                std::hint::black_box(Sha256::of(
                    &artifact[portcullis_engine::artifact::HEADER_LEN..],
                ));
            }
        })
    });
    group.bench_function("manifest_signature", |b| {
        b.iter(|| keys.trusted.verify(&manifest, "acme").unwrap())
    });
    group.finish();

    // The baseline: the same handler and engine, built fresh, answering a tenant that has
    // published no rules (what a function without rules pays: the engine's pools, the
    // ticker, parsing the event and answering it).
    let empty = tempfile::tempdir().unwrap();
    let code = tempfile::tempdir().unwrap();
    let cases = [
        ("no_rules", &empty, 0, None),
        ("compile_wasm", &plain, 10, None),
        ("precompiled", &compiled, 10, None),
        (
            "precompiled_mapped",
            &compiled,
            10,
            Some(code.path().join("code")),
        ),
    ];
    let first_decision = |dir: &tempfile::TempDir, code_dir: Option<std::path::PathBuf>| {
        let start = std::time::Instant::now();
        let h = handler_mapping(
            RuleStore::dir(dir.path()),
            Duration::from_secs(60),
            Some(&keys),
            code_dir,
        );
        let answer = rt.block_on(h.handle(event.clone(), None));
        (answer, start.elapsed())
    };
    let mut group = c.benchmark_group("cold_start_10_rules");
    group.sample_size(10);
    for (name, dir, rules, code_dir) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let (answer, _) = first_decision(dir, code_dir.clone());
                assert!(answer.response.is_ok(), "{:?}", answer.record);
                assert_eq!(answer.record.rules.len(), *rules);
            })
        });
    }
    group.finish();

    // Where a cold start's time goes, from the decision record: loading the rules (of which
    // compiling or loading artifacts, summed over modules), running them, and the rest
    // (building the engine and handler, the event, the answer). Medians of 21 cold starts.
    println!(
        "cold start, medians: total | loading rules | of which compiling or deserializing (summed) | running the rules"
    );
    // `COLDSTART_CASE=<name>` keeps one case and `COLDSTART_RUNS=<n>` sets the count: a
    // profiler can then sample one kind of cold start many times.
    let only = std::env::var("COLDSTART_CASE").ok();
    let count: usize = std::env::var("COLDSTART_RUNS").map_or(21, |n| n.parse().unwrap());
    for (name, dir, _, code_dir) in &cases {
        if only.as_deref().is_some_and(|only| only != *name) {
            continue;
        }
        let mut runs: Vec<[u64; 4]> = (0..count)
            .map(|_| {
                let (answer, took) = first_decision(dir, code_dir.clone());
                let r = &answer.record;
                let total = u64::try_from(took.as_micros()).unwrap();
                [total, r.load_us, r.compile_us, r.rules_us]
            })
            .collect();
        let mut median = |i: usize| {
            runs.sort_by_key(|run| run[i]);
            runs[runs.len() / 2][i]
        };
        let [total, load, compile, rules] = [median(0), median(1), median(2), median(3)];
        println!("{name}: {total} us | {load} us | {compile} us | {rules} us");
    }
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
    rt.block_on(seed(&store, None, &keys()));

    let mut group = c.benchmark_group("warm_10_rules_s3");
    for (name, refresh) in [
        ("cached", Duration::from_secs(3600)),
        ("revalidate_304", Duration::ZERO),
    ] {
        let h = handler(store.clone(), refresh, None);
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
