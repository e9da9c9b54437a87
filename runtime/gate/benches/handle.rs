//! Where a warm sign-in's time goes outside its rules: the handler answering the fixture
//! `pre-auth` for a tenant of ten rules already loaded (a directory store, no refresh),
//! timed to the answer, beside the chain's own time as the decision record tells it
//! (`rules_us`) and the rest (the event parsed, the tenant resolved, the rules looked up,
//! the answer and the record built). Spent instances are reaped after each answer, timed
//! apart, as the Lambda does; two engines interleaved, one keeping the large pool's spent
//! instances for the reap too, one dropping them in place. Medians and p99 side by side.
//!
//! `cargo bench -p portcullis-gate --bench handle` (`HANDLE_ROUNDS`: how many, 4,000 by
//! default; more, for a profiler to see mostly the warm path).

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
use support::{row, stats};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "acme", ten_pre_auth_rules());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = fixture("pre-auth");
    // The Lambda's engine settings, and the same without keeping large instances (the
    // tenant's `hours` rule runs in the large pool).
    let ways: Vec<(&str, Arc<Engine>, Handler)> = [
        ("large instances kept", 4),
        ("large instances dropped in place", 0),
    ]
    .into_iter()
    .map(|(name, kept_large_instances)| {
        let engine = Arc::new(
            Engine::new(EngineConfig {
                max_concurrent: 8,
                kept_instances: 32,
                kept_large_instances,
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
        (name, engine, handler)
    })
    .collect();

    let rounds: usize = std::env::var("HANDLE_ROUNDS").map_or(4_000, |n| n.parse().unwrap());
    let mut samples: Vec<[Vec<Duration>; 4]> = ways.iter().map(|_| Default::default()).collect();
    // Rounds interleaved, so the machine's noise falls on every way alike.
    for _ in 0..rounds {
        for ((_, engine, handler), [answer, rules, rest, reap]) in ways.iter().zip(&mut samples) {
            let event = event.clone();
            let start = Instant::now();
            let answered = rt.block_on(handler.handle(event, None));
            let took = start.elapsed();
            let start = Instant::now();
            engine.reap();
            reap.push(start.elapsed());
            assert!(answered.response.is_ok());
            let chain = Duration::from_micros(answered.record.rules_us);
            answer.push(took);
            rules.push(chain);
            rest.push(took.saturating_sub(chain));
        }
    }
    let base = stats(samples[0][0].clone()).0;
    println!("{rounds} warm sign-ins each way, 10 rules; µs, ratios to the first way's answer");
    println!("{:<48} {:>9} {:>9} {:>7}", "", "median", "p99", "ratio");
    for ((way, _, _), [answer, rules, rest, reap]) in ways.iter().zip(samples) {
        println!("{way}");
        for (name, samples) in [
            ("to the answer", answer),
            ("- the chain (the record's rules_us)", rules),
            ("- the rest", rest),
            ("the reap after it (not on the answer's path)", reap),
        ] {
            row(&format!("  {name}"), 48, samples, base);
        }
    }
}
