//! Where a warm sign-in's time goes outside its rules: the handler answering the fixture
//! `pre-auth` for a tenant of ten rules already loaded (a directory store, no refresh),
//! timed to the answer, beside the chain's own time as the decision record tells it
//! (`rules_us`) and the rest (the event parsed, the tenant resolved, the rules looked up,
//! the answer and the record built). After each answer, timed apart, the work the Lambda
//! does then: spent instances reaped, and spare instances made for the next sign-in
//! (`Engine::replenish`). Two engines interleaved, the Lambda's settings with spares and
//! the same without them. Medians, p99 and p99.9 side by side.
//!
//! `cargo bench -p portcullis-gate --bench handle` (`HANDLE_ROUNDS`: how many, 4,000 by
//! default; more, for a profiler to see mostly the warm path; `HANDLE_ONLY=spares|none`:
//! one way alone, for a profiler).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a benchmark: a failed step is a failed run; indexes are in range by construction"
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_engine::{Engine, EngineConfig};
use portcullis_gate::registry::RegistryConfig;
use portcullis_gate::store::RuleStore;
use portcullis_gate::{Handler, HandlerConfig};
use portcullis_testkit::rules::{fixture, publish, ten_pre_auth_rules};
use support::{header, row, stats};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "acme", ten_pre_auth_rules());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = fixture("pre-auth");
    // The Lambda's engine settings, and the same without spares.
    let ways: Vec<(&str, Arc<Engine>, Handler)> = [
        ("spares made after each answer (the Lambda)", (32, 4)),
        ("no spares: every rule instantiated on the path", (0, 0)),
    ]
    .into_iter()
    .filter(
        |(_, (spares, _))| match std::env::var("HANDLE_ONLY").as_deref() {
            Ok("spares") => *spares > 0,
            Ok("none") => *spares == 0,
            _ => true,
        },
    )
    .map(|(name, (spare_instances, spare_large_instances))| {
        let engine = Arc::new(
            Engine::new(EngineConfig {
                max_concurrent: 8,
                kept_instances: 32,
                spare_instances,
                spare_large_instances,
                ..EngineConfig::default()
            })
            .unwrap(),
        );
        let handler = Handler::builder(store.clone())
            .engine(Arc::clone(&engine))
            .config(HandlerConfig::default())
            .registry(RegistryConfig {
                refresh: Duration::from_secs(3600),
                ..RegistryConfig::default()
            })
            .build()
            .unwrap();
        let first = rt.block_on(handler.handle(event.clone(), None));
        assert!(first.response.is_ok(), "{:?}", first.record);
        assert_eq!(first.record.rules.len(), 10);
        engine.reap();
        engine.replenish();
        (name, engine, handler)
    })
    .collect();

    let rounds: usize = std::env::var("HANDLE_ROUNDS").map_or(4_000, |n| n.parse().unwrap());
    let mut samples: Vec<[Vec<Duration>; 4]> = ways.iter().map(|_| Default::default()).collect();
    // Rounds interleaved, so the machine's noise falls on every way alike.
    for _ in 0..rounds {
        for ((_, engine, handler), [answer, rules, rest, after]) in ways.iter().zip(&mut samples) {
            let event = event.clone();
            let start = Instant::now();
            let answered = rt.block_on(handler.handle(event, None));
            let took = start.elapsed();
            let start = Instant::now();
            engine.reap();
            engine.replenish();
            after.push(start.elapsed());
            assert!(answered.response.is_ok());
            let chain = Duration::from_micros(answered.record.rules_us);
            answer.push(took);
            rules.push(chain);
            rest.push(took.saturating_sub(chain));
        }
    }
    let base = stats(samples[0][0].clone()).0;
    println!("{rounds} warm sign-ins each way, 10 rules; µs, ratios to the first way's answer");
    header(48);
    for ((way, _, _), [answer, rules, rest, after]) in ways.iter().zip(samples) {
        println!("{way}");
        for (name, samples) in [
            ("to the answer", answer),
            ("- the chain (the record's rules_us)", rules),
            ("- the rest", rest),
            ("after it: reap + replenish (off the path)", after),
        ] {
            row(&format!("  {name}"), 48, samples, base);
        }
    }
}
