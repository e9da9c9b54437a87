//! The same rule as native Rust, as a Cedar policy and as a Portcullis policy, side by side
//! in one process: each decision timed alone, the three interleaved sign-in by sign-in (so
//! a noisy moment of this shared machine hits all three alike), medians, p99 and p99.9, and
//! the ratios printed. Before any timing, all three must agree on every sign-in of the set.
//!
//! `cargo bench -p portcullis-engine --bench versus` (`VERSUS_ROUNDS`, default 1000, rounds
//! over the 108 sign-ins). Portcullis evaluates with a **fresh instance per decision**, as
//! in production. The sign-in is parsed once per event by the gate whatever decides it, so
//! it is built before timing; what each contender does with it is timed: the native rule
//! reads it, Cedar builds its entities, context and request from it and authorizes, and
//! Portcullis instantiates the rule, lends it the sign-in and its configuration, and lifts
//! the verdict. Last, the same rule ten times over through the chain (ten rule names, one
//! module), each chain timed alone: median, p99 and p99.9.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "benchmarks: a failed set-up or a disagreement is a failed run"
)]

#[path = "support/versus.rs"]
mod versus;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_engine::chain::DataSet;
use portcullis_engine::{
    Budget, Chain, CompiledPolicy, Decision, Engine, EngineConfig, Mode, OnError, Origin, Outcome,
    Rule, RuleInput, RuleName, Trigger,
};

fn main() {
    let rounds: usize = std::env::var("VERSUS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let policy = engine
        .load(&std::fs::read(art::DOMAIN_NETWORK).expect("artifact"))
        .expect("load");
    let budget = Budget::default();
    let input = RuleInput::with_config(versus::CONFIG);
    let native = versus::Native::new();
    let cedar = versus::Cedar::new().expect("cedar policies");
    let sign_ins = versus::sign_ins();

    let portcullis = |s| match engine.evaluate(&policy, s, &input, &budget).outcome {
        Outcome::Verdict(v) => v.is_allowed(),
        Outcome::Failed(f) => panic!("the rule failed: {f}"),
    };
    let mut allowed = 0;
    for s in &sign_ins {
        let n = native.allows(s);
        let c = cedar.allows(s).expect("cedar");
        let p = portcullis(s);
        assert!(
            n == c && c == p,
            "disagreement (native {n}, cedar {c}, portcullis {p}) on {s:?}"
        );
        allowed += usize::from(n);
    }
    println!(
        "agreement: native, Cedar and Portcullis decide alike on all {} sign-ins ({allowed} allowed)",
        sign_ins.len()
    );

    // The floor under any rule: `allow-all` is one core instance and one call that reads
    // nothing; `domain-network` reads strings, so its component is three core instances
    // (wit-component's shim and fixup, BENCHMARKS.md run 6) plus the guest's own work.
    let floor_policy = engine
        .load(&std::fs::read(art::ALLOW_ALL).expect("artifact"))
        .expect("load");
    let none = RuleInput::default();
    let floor = |s| engine.evaluate(&floor_policy, s, &none, &budget).outcome;

    let mut times: [Vec<u64>; 5] = Default::default();
    let time = |f: &mut dyn FnMut() -> bool| {
        let start = Instant::now();
        black_box(f());
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    };
    for round in 0..rounds {
        for (i, s) in sign_ins.iter().enumerate() {
            // Rotate who goes first, so no contender always runs on a cache its rival warmed.
            for k in 0..5 {
                let which = (k + round + i) % 5;
                let ns = match which {
                    0 => time(&mut || native.allows(black_box(s))),
                    1 => time(&mut || cedar.allows(black_box(s)).unwrap_or(false)),
                    2 => time(&mut || portcullis(black_box(s))),
                    3 => time(&mut || matches!(floor(black_box(s)), Outcome::Verdict(_))),
                    _ => time(&mut || black_box(true)),
                };
                if let Some(t) = times.get_mut(which) {
                    t.push(ns);
                }
            }
        }
    }

    let [native_t, cedar_t, portcullis_t, floor_t, clock_t] = times.map(|mut t| {
        t.sort_unstable();
        t
    });
    let cedar_median = quantile(&cedar_t, 0.5);
    println!(
        "{} decisions each, interleaved; figures in µs, ratios against Cedar's median",
        native_t.len()
    );
    println!("| contender | median | p99 | p99.9 | median / Cedar's |\n|---|---|---|---|---|");
    for (name, t) in [
        ("the rule as native Rust", &native_t),
        (
            "Cedar 4 (entities built per request, policies parsed once)",
            &cedar_t,
        ),
        (
            "Portcullis (`domain-network`, a fresh instance per decision)",
            &portcullis_t,
        ),
        (
            "the floor: `allow-all` (one core instance, a call that reads nothing)",
            &floor_t,
        ),
        ("the clock alone (an empty timed call)", &clock_t),
    ] {
        let median = quantile(t, 0.5);
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3}× |",
            us(median),
            us(quantile(t, 0.99)),
            us(quantile(t, 0.999)),
            median as f64 / cedar_median.max(1) as f64
        );
    }
    chain(&engine, &policy, rounds);
}

/// The same rule ten times over (ten rule names, one module), through the chain, on a
/// sign-in every rule allows: each chain timed alone.
fn chain(engine: &Engine, policy: &Arc<CompiledPolicy>, rounds: usize) {
    let rules: Vec<Rule> = (0..10)
        .map(|i| Rule {
            name: RuleName::new(&format!("rule-{i}")).expect("name"),
            origin: Origin::Tenant,
            policy: Arc::clone(policy),
            triggers: vec![Trigger::PreAuthentication],
            budget: Budget::default(),
            on_error: OnError::Deny,
            mode: Mode::Enforce,
            config: Arc::from(versus::CONFIG),
        })
        .collect();
    let chain = Chain { rules };
    let data = DataSet::default();
    let sign_in = versus::sign_ins().into_iter().next().expect("a sign-in");
    let mut times = Vec::with_capacity(rounds * 20);
    for _ in 0..rounds * 20 {
        let start = Instant::now();
        let outcome = chain.evaluate(
            engine,
            Arc::clone(&sign_in),
            &data,
            start + Duration::from_secs(1),
        );
        let elapsed = start.elapsed();
        assert!(outcome.decision == Decision::Allow && outcome.reports.len() == 10);
        times.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
    times.sort_unstable();
    println!(
        "| a 10-rule chain of the same rule ({} chains) | {:.1} | {:.1} | {:.1} | |",
        times.len(),
        us(quantile(&times, 0.5)),
        us(quantile(&times, 0.99)),
        us(quantile(&times, 0.999)),
    );
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    let last = sorted.len().saturating_sub(1);
    let index = ((last as f64) * q).round() as usize;
    sorted.get(index.min(last)).copied().unwrap_or(0)
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}
