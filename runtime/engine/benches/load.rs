//! Loading a policy into a fresh cache: from its precompiled artifact (the cold-start path)
//! and by compiling the `.wasm`, for a small-memory policy (`allow-all`, memset pool) and a
//! large-memory one (`signin-hours`, 15 pages of time-zone data, dirty-page pool).
//!
//! `cargo bench -p portcullis-engine --bench load`; BENCHMARKS.md has the figures. The file
//! uses only `Engine::{new, load, artifact, load_precompiled}`, so it runs unchanged against
//! earlier engine versions for before/after comparisons.

#![expect(
    clippy::expect_used,
    reason = "benchmarks: a failed set-up is a failed run"
)]
#![expect(missing_docs, reason = "criterion generates undocumented items")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_artifacts as art;
use portcullis_engine::{ArtifactKey, Engine, EngineConfig};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(40);
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let key = ArtifactKey::new(vec![7; 32]).expect("key");
    for (name, path) in [
        ("small memory (allow-all)", art::ALLOW_ALL),
        ("large memory (signin-hours)", art::SIGNIN_HOURS),
    ] {
        let bytes = std::fs::read(path).expect("artifact");
        let (artifact, digest) = {
            let policy = engine.load(&bytes).expect("load");
            (
                engine.artifact(&policy, &key).expect("seal"),
                policy.digest(),
            )
        };
        // Each iteration drops the policy, so the next one misses the engine's cache.
        group.bench_function(format!("precompiled, {name}"), |b| {
            b.iter(|| {
                black_box(
                    engine
                        .load_precompiled(&artifact, &digest, &key)
                        .expect("precompiled"),
                )
            })
        });
        group.bench_function(format!("compiled from .wasm, {name}"), |b| {
            b.iter(|| black_box(engine.load(&bytes).expect("load")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
