//! What the contract's shape costs a rule: the side-by-side rule (`domain-network`) and an
//! allow-everything floor, each under contract 0.2 (the sign-in lent, read through host
//! calls; a Rust policy that reads strings is three core instances) and under the draft
//! one-core-instance world of `policies/draft` (the sign-in lowered as `evaluate`'s
//! parameter), beside Cedar and the engine itself, in one process, interleaved sign-in by
//! sign-in.
//!
//! `cargo bench -p portcullis-bench --bench contract` (`CONTRACT_ROUNDS`, default 400,
//! rounds over the 108 sign-ins of `versus`). The harness (`src/draft.rs`) runs a fresh
//! store and instance per decision on the engine's own wasmtime settings, without the
//! engine's admission, checks and report; the engine's own figure for the 0.2 rule is
//! printed beside it, and each draft figure is also given as the engine would likely run
//! it: plus the engine's measured overhead over the harness for the same 0.2 rule.

#![expect(
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmarks: a failed set-up or a disagreement is a failed run; indices come \
              from the ranges of what they index"
)]

use std::hint::black_box;
use std::time::Instant;

use portcullis_artifacts as art;
use portcullis_bench::draft::{self, Harness};
use portcullis_bench::{quantile, twins, us};
use portcullis_engine::{Budget, Engine, EngineConfig, Outcome, RuleInput};

/// The contenders, in the order of the table: each one's name and its component (none for
/// Cedar), whose core instances the table counts.
const CONTENDERS: [(&str, Option<&str>); 10] = [
    (
        "Cedar 4 (entities built per request, policies parsed once)",
        None,
    ),
    (
        "engine, 0.2: `domain-network` (4 host reads)",
        Some(art::DOMAIN_NETWORK),
    ),
    (
        "engine, 0.2: `allow-all` (the SDK; reads nothing)",
        Some(art::ALLOW_ALL),
    ),
    (
        "engine, 0.2: `contract-allow-all` (a core module by hand; reads nothing)",
        Some(art::CONTRACT_ALLOW_ALL),
    ),
    ("harness, 0.2: `domain-network`", Some(art::DOMAIN_NETWORK)),
    ("harness, 0.2: `allow-all`", Some(art::ALLOW_ALL)),
    (
        "harness, 0.2: `contract-allow-all`",
        Some(art::CONTRACT_ALLOW_ALL),
    ),
    (
        "harness, draft: `draft-domain-network`, the whole sign-in lowered",
        Some(art::DRAFT_DOMAIN_NETWORK),
    ),
    (
        "harness, draft: `draft-domain-network`, the declared fields lowered",
        Some(art::DRAFT_DOMAIN_NETWORK),
    ),
    (
        "harness, draft: `draft-allow-all`, the whole sign-in lowered",
        Some(art::DRAFT_ALLOW_ALL),
    ),
];

fn main() {
    let rounds: usize = std::env::var("CONTRACT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(400);
    let read = |path: &str| std::fs::read(path).expect("artifact");
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let load = |path| engine.load(&read(path)).expect("load");
    let (dn, aa, one) = (
        load(art::DOMAIN_NETWORK),
        load(art::ALLOW_ALL),
        load(art::CONTRACT_ALLOW_ALL),
    );
    let harness = Harness::new().expect("harness");
    let lent = |path| harness.load_lent(&read(path)).expect("load");
    let lowered = |path| harness.load_lowered(&read(path)).expect("load");
    let (h_dn, h_aa, h_one) = (
        lent(art::DOMAIN_NETWORK),
        lent(art::ALLOW_ALL),
        lent(art::CONTRACT_ALLOW_ALL),
    );
    let (d_dn, d_aa) = (
        lowered(art::DRAFT_DOMAIN_NETWORK),
        lowered(art::DRAFT_ALLOW_ALL),
    );
    let cedar = twins::Cedar::new().expect("cedar policies");
    let budget = Budget::default();
    let config = RuleInput::with_config(twins::CONFIG);
    let none = RuleInput::default();
    let sign_ins = twins::sign_ins();
    let declared: Vec<_> = sign_ins
        .iter()
        .map(|s| std::sync::Arc::new(draft::declared(s)))
        .collect();

    let on_engine =
        |policy, s, input: &RuleInput| match engine.evaluate(policy, s, input, &budget).outcome {
            Outcome::Verdict(v) => v.is_allowed(),
            Outcome::Failed(f) => panic!("the rule failed: {f}"),
        };
    let ok = |r: Result<bool, draft::Error>| r.expect("harness run");
    let run = |which: usize, i: usize| -> bool {
        let (s, d) = (&sign_ins[i], &declared[i]);
        match which {
            0 => cedar.allows(s).expect("cedar"),
            1 => on_engine(&dn, s, &config),
            2 => on_engine(&aa, s, &none),
            3 => on_engine(&one, s, &none),
            4 => ok(harness.lent(&h_dn, s, twins::CONFIG)),
            5 => ok(harness.lent(&h_aa, s, "")),
            6 => ok(harness.lent(&h_one, s, "")),
            7 => ok(harness.lowered(&d_dn, s, twins::CONFIG)),
            8 => ok(harness.lowered(&d_dn, d, twins::CONFIG)),
            _ => ok(harness.lowered(&d_aa, s, "")),
        }
    };

    // Every form of the rule decides alike, and every floor allows, before any timing.
    for (i, s) in sign_ins.iter().enumerate() {
        let expected = run(0, i);
        for which in [1, 4, 7, 8] {
            assert_eq!(run(which, i), expected, "{} on {s:?}", CONTENDERS[which].0);
        }
        for which in [2, 3, 5, 6, 9] {
            assert!(run(which, i), "{} did not allow", CONTENDERS[which].0);
        }
    }
    println!(
        "agreement: every form of the rule decides as Cedar on all {} sign-ins",
        sign_ins.len()
    );

    let mut times: [Vec<u64>; 10] = Default::default();
    for round in 0..rounds {
        for i in 0..sign_ins.len() {
            // Rotate who goes first, so no contender always runs on a cache its rival warmed.
            for k in 0..CONTENDERS.len() {
                let which = (k + round + i) % CONTENDERS.len();
                let start = Instant::now();
                black_box(run(which, black_box(i)));
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                times[which].push(ns);
            }
        }
    }
    for t in &mut times {
        t.sort_unstable();
    }
    let median = |which: usize| quantile(&times[which], 0.5);
    let cedar = median(0) as f64;
    println!(
        "{} decisions each, interleaved; µs; ratios against Cedar's median",
        times[0].len()
    );
    println!(
        "| contender | core instances | median | p99 | median / Cedar's |\n|---|---|---|---|---|"
    );
    for ((name, component), t) in CONTENDERS.iter().zip(&times) {
        let instances = component.map_or_else(
            || "—".to_owned(),
            |path| {
                draft::core_instances(&read(path))
                    .expect("component")
                    .to_string()
            },
        );
        println!(
            "| {name} | {instances} | {:.2} | {:.2} | {:.3}× |",
            us(quantile(t, 0.5)),
            us(quantile(t, 0.99)),
            quantile(t, 0.5) as f64 / cedar
        );
    }
    // The engine's own work around a run (admission, checks, report), from the 0.2 rule.
    let overhead = median(1) as f64 - median(4) as f64;
    println!(
        "\nthe engine's overhead over the harness (0.2 `domain-network`): {:.2} µs",
        overhead / 1e3
    );
    for which in [7, 8] {
        let estimate = median(which) as f64 + overhead;
        println!(
            "{} through the engine, estimated: {:.2} µs, {:.3}× Cedar",
            CONTENDERS[which].0,
            estimate / 1e3,
            estimate / cedar
        );
    }
}
