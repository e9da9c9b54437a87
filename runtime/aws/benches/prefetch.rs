//! The prefetch costs one round trip: a chain whose rule declares two DynamoDB items, two
//! counters and two HTTP lookups waits about as long as the slowest of them, not their
//! sum. Each kind alone and all together, rounds interleaved, against real servers on
//! loopback: moto (DynamoDB) and two HTTP stubs that answer after 20 ms and 40 ms (a
//! risk service is far slower than loopback; the delays make the sum and the maximum
//! tell apart). The figure is the decision record's `prefetch_us`, warm.
//!
//! `cargo bench -p portcullis-aws --bench prefetch`
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmarks: a failed set-up is a failed run"
)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_aws::counters::DynamoCounters;
use portcullis_aws::dynamo::{DynamoData, client};
use portcullis_aws::http::HyperClient;
use portcullis_engine::{Engine, EngineConfig};
use portcullis_gate::data::lookups::{Lookups, Origins};
use portcullis_gate::manifest::{CounterEntry, LookupEntry, RuleEntry};
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::{Handler, HandlerConfig};
use portcullis_testkit::http::{Reply, Stub};
use portcullis_testkit::moto::Moto;
use portcullis_testkit::rules::{entry, publish};
use serde_json::{Value, json};

const EVENT: &str = include_str!("../../fixtures/events/pre-auth.json");
const ROUNDS: usize = 200;

fn counter(key: &str) -> CounterEntry {
    CounterEntry {
        key: key.into(),
        window_s: 3_600,
        count_on: Some(vec!["post-authentication".into()]),
        reset_on: Some(vec![]),
    }
}

fn lookup(origin: &str) -> LookupEntry {
    LookupEntry {
        method: None,
        url: format!("{origin}/score?user={{sub}}"),
        headers: Default::default(),
        body: None,
        timeout_ms: Some(1_000),
        max_bytes: None,
        cache_s: None,
        fallback: false,
    }
}

/// One rule declaring `what` of: data items, counters, lookup a, lookup b.
fn rule(data: bool, counters: bool, a: Option<&str>, b: Option<&str>) -> RuleEntry {
    let mut rule = entry(
        "allow",
        art::ALLOW_ALL,
        &["pre-authentication"],
        Value::Null,
    );
    if data {
        rule.data.insert("user".into(), "user#{sub}".into());
        rule.data.insert("tenant".into(), "tenant#{tenant}".into());
    }
    if counters {
        rule.counters
            .insert("attempts".into(), counter("user#{sub}"));
        rule.counters
            .insert("client".into(), counter("client#{client_id}"));
    }
    if let Some(origin) = a {
        rule.lookups.insert("risk".into(), lookup(origin));
    }
    if let Some(origin) = b {
        rule.lookups.insert("fraud".into(), lookup(origin));
    }
    rule
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let moto = Moto::start();
    rt.block_on(moto.tables("data", "activity"));
    rt.block_on(moto.counter_table("counters"));
    let aws = rt.block_on(moto.sdk_config());
    let a = Stub::start(Reply {
        delay: Duration::from_millis(20),
        ..Reply::json(r#"{"score": 0.1}"#)
    });
    let b = Stub::start(Reply {
        delay: Duration::from_millis(40),
        ..Reply::json(r#"{"score": 0.2}"#)
    });
    let kinds: [(&str, RuleEntry); 5] = [
        ("dynamodb items (2)", rule(true, false, None, None)),
        ("counters (2)", rule(false, true, None, None)),
        (
            "lookup, 20 ms server",
            rule(false, false, Some(&a.origin()), None),
        ),
        (
            "lookup, 40 ms server",
            rule(false, false, None, Some(&b.origin())),
        ),
        (
            "all of them",
            rule(true, true, Some(&a.origin()), Some(&b.origin())),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let mut origins = Vec::new();
    for (i, (_, rule)) in kinds.iter().enumerate() {
        publish(&store, &format!("t{i}"), vec![rule.clone()]);
        origins.push(format!("t{i}={}|{}", a.origin(), b.origin()));
    }
    let data = DynamoData::new(client(&aws), "data", Duration::ZERO);
    for i in 0..kinds.len() {
        let tenant = TenantId::new(&format!("t{i}")).unwrap();
        rt.block_on(data.put(&tenant, "user#4f8e6c1a-8b0e-4a55-9d1c-0d6f2b7a9e10", "{}"))
            .unwrap();
        rt.block_on(data.put(&tenant, &format!("tenant#t{i}"), r#"{"active": true}"#))
            .unwrap();
    }
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
            ..HandlerConfig::default()
        })
        .data(Arc::new(data))
        .counters(Arc::new(DynamoCounters::new(client(&aws), "counters")))
        .lookups(Lookups::new(
            Arc::new(HyperClient::new().unwrap()),
            None,
            Origins::parse(&origins.join(";")).unwrap(),
        ))
        .build()
        .unwrap();
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let for_tenant = |i: usize| {
        let mut event = event.clone();
        event["request"]["userAttributes"]["custom:tenant_id"] = json!(format!("t{i}"));
        event
    };
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); kinds.len()];
    for round in 0..ROUNDS + 10 {
        for (i, sample) in samples.iter_mut().enumerate() {
            let answer = rt.block_on(handler.handle(for_tenant(i), None));
            assert!(answer.response.is_ok(), "{:?}", answer.record);
            assert!(
                answer.record.problems.is_empty(),
                "{:?}",
                answer.record.problems
            );
            // The first rounds load the rules and open the connections.
            if round >= 10 {
                sample.push(answer.record.prefetch_us);
            }
        }
    }
    let medians: Vec<u64> = samples
        .iter_mut()
        .map(|s| {
            s.sort_unstable();
            percentile(s, 0.5)
        })
        .collect();
    println!("prefetch, warm, {ROUNDS} interleaved rounds (decision record `prefetch_us`)");
    println!("{:<24} {:>12} {:>12}", "declared", "median µs", "p99 µs");
    for ((name, _), s) in kinds.iter().zip(&samples) {
        println!(
            "{name:<24} {:>12} {:>12}",
            percentile(s, 0.5),
            percentile(s, 0.99)
        );
    }
    let parts = &medians[..4];
    let sum: u64 = parts.iter().sum();
    let max = parts.iter().copied().max().unwrap_or(1);
    let all = medians[4];
    println!(
        "all together: {:.2}× the slowest alone, {:.2}× the sum of the four",
        all as f64 / max as f64,
        all as f64 / sum as f64
    );
}
