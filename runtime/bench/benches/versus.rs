//! The same rule as native Rust, as a Cedar policy and as a Portcullis policy, side by side
//! in one process: each decision timed alone, the three interleaved sign-in by sign-in (so
//! a noisy moment of this shared machine hits all three alike), medians, p99 and p99.9, and
//! the ratios printed. Before any timing, all three must agree on every sign-in of the set.
//!
//! `cargo bench -p portcullis-bench --bench versus` (`VERSUS_ROUNDS`, default 1000, rounds
//! over the 108 sign-ins). Portcullis evaluates with a **fresh instance per decision**, as
//! in production. The sign-in is parsed once per event by the gate whatever decides it, so
//! it is built before timing; what each contender does with it is timed: the native rule
//! reads it, Cedar builds its entities, context and request from it and authorizes, and
//! Portcullis instantiates the rule, lends it the sign-in and its configuration, and lifts
//! the verdict. Last, the same rule ten times over through the chain (ten rule names, one
//! module), each chain timed alone: median, p99 and p99.9, split by whether the thread took
//! a page fault or a context switch meanwhile, and beside it the same chain on an engine
//! with one helper thread (`Engine::start_helpers`: the rules run side by side, combined in
//! order), the two interleaved chain by chain. `VERSUS_ONLY=cedar|portcullis|floor|chain`
//! runs one contender alone and untimed, for a profiler (`perf record`); `helped` the
//! chain on the engine with a helper.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "benchmarks: a failed set-up or a disagreement is a failed run"
)]

use portcullis_bench::twins as versus;
use portcullis_bench::{quantile, us};

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
    let native = versus::Native::default();
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

    // The floor under any Rust rule: `allow-all`, one call that reads nothing, one core
    // instance. A rule that reads strings (`domain-network`) is three: its imports return
    // strings, which need its `cabi_realloc`, so wit-component adds a shim and a fixup
    // (BENCHMARKS.md run 18; `--bench contract` measures what that costs).
    let floor_policy = engine
        .load(&std::fs::read(art::ALLOW_ALL).expect("artifact"))
        .expect("load");
    let none = RuleInput::default();
    let floor = |s| engine.evaluate(&floor_policy, s, &none, &budget).outcome;

    // For a profiler: one contender alone, untimed
    // (`VERSUS_ONLY=cedar|portcullis|floor|chain|helped`).
    if let Ok(only) = std::env::var("VERSUS_ONLY") {
        for _ in 0..rounds {
            for s in &sign_ins {
                match only.as_str() {
                    "cedar" => black_box(cedar.allows(black_box(s)).unwrap_or(false)),
                    "portcullis" => black_box(portcullis(black_box(s))),
                    "floor" => black_box(matches!(floor(black_box(s)), Outcome::Verdict(_))),
                    _ => break,
                };
            }
        }
        if only == "chain" {
            chain(&engine, &policy, None, rounds);
        }
        if only == "helped" {
            let (helped, helped_policy) = helped();
            chain(&helped, &helped_policy, None, rounds);
        }
        return;
    }

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
    let (helped, helped_policy) = helped();
    chain(&engine, &policy, Some((&helped, &helped_policy)), rounds);
}

/// A second engine, with one helper thread, and the rule loaded there.
fn helped() -> (Arc<Engine>, Arc<CompiledPolicy>) {
    let engine = Arc::new(Engine::new(EngineConfig::default()).expect("engine"));
    engine.start_helpers(1).expect("a helper thread");
    let policy = engine
        .load(&std::fs::read(art::DOMAIN_NETWORK).expect("artifact"))
        .expect("load");
    (engine, policy)
}

/// The same rule ten times over (ten rule names, one module), through the chain, on a
/// sign-in every rule allows: each chain timed alone, and what happened to this thread
/// meanwhile (minor page faults, context switches, from `getrusage(RUSAGE_THREAD)`) and how
/// much of the chain was inside the ten evaluations, so the tail can be told apart. With
/// `helped` (an engine with a helper thread and the same policy loaded there), its chains
/// are interleaved with these, one each in turn, and compared.
fn chain(
    engine: &Engine,
    policy: &Arc<CompiledPolicy>,
    helped: Option<(&Engine, &Arc<CompiledPolicy>)>,
    rounds: usize,
) {
    let chain_of = |policy: &Arc<CompiledPolicy>| Chain {
        rules: (0..10)
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
            .collect(),
    };
    let alone = chain_of(policy);
    let beside = helped.map(|(engine, policy)| (engine, chain_of(policy)));
    let data = DataSet::default();
    let sign_in = versus::sign_ins().into_iter().next().expect("a sign-in");
    // One chain, timed alone: its time in ns, and the time inside its ten evaluations.
    let timed = |engine: &Engine, chain: &Chain| {
        let start = Instant::now();
        let outcome = chain.evaluate(
            engine,
            Arc::clone(&sign_in),
            &data,
            start + Duration::from_secs(1),
        );
        let ns = nanos(start.elapsed());
        assert!(outcome.decision == Decision::Allow && outcome.reports.len() == 10);
        let inside: Duration = outcome.reports.iter().map(|r| r.evaluation.duration).sum();
        (ns, nanos(inside))
    };
    let mut runs = Vec::with_capacity(rounds * 20);
    // Side by side: alone and helped back to back (the helper still hot from the chain
    // before); every tenth round also after 3 ms idle (a sign-in's chains are that far apart
    // or more, and the helper has gone to sleep): alone, helped, and helped primed.
    let mut helped_ns: [Vec<u64>; 4] = Default::default();
    let idle = || std::thread::sleep(Duration::from_millis(3));
    for round in 0..rounds * 20 {
        let before = Usage::now();
        let (ns, inside_ns) = timed(engine, &alone);
        let after = Usage::now();
        runs.push(ChainRun {
            ns,
            inside_ns,
            faults: after.faults.saturating_sub(before.faults),
            switches: after.switches.saturating_sub(before.switches),
        });
        let Some((helped_engine, helped_chain)) = &beside else {
            continue;
        };
        let [hot, idle_alone, asleep, primed] = &mut helped_ns;
        hot.push(timed(helped_engine, helped_chain).0);
        if round % 10 == 0 {
            idle();
            idle_alone.push(timed(engine, &alone).0);
            idle();
            asleep.push(timed(helped_engine, helped_chain).0);
            idle();
            helped_engine.prime_helpers();
            primed.push(timed(helped_engine, helped_chain).0);
        }
    }
    if std::env::var_os("VERSUS_ONLY").is_some() {
        return;
    }
    runs.sort_unstable_by_key(|r| r.ns);
    let row = |name: &str, runs: &[&ChainRun]| {
        let ns: Vec<u64> = runs.iter().map(|r| r.ns).collect();
        let outside: Vec<u64> = runs
            .iter()
            .map(|r| r.ns.saturating_sub(r.inside_ns))
            .collect();
        let mut outside_sorted = outside.clone();
        outside_sorted.sort_unstable();
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            runs.len(),
            us(quantile(&ns, 0.5)),
            us(quantile(&ns, 0.99)),
            us(quantile(&ns, 0.999)),
            us(quantile(&outside_sorted, 0.5)),
        );
    };
    println!(
        "\n10-rule chain of the same rule, {} chains; figures in µs; `outside` is the chain's time not inside the ten evaluations (store drop and memory reset, merging, reports)",
        runs.len()
    );
    println!(
        "| chains | count | median | p99 | p99.9 | outside, median |\n|---|---|---|---|---|---|"
    );
    let all: Vec<&ChainRun> = runs.iter().collect();
    row("all", &all);
    let quiet: Vec<&ChainRun> = runs
        .iter()
        .filter(|r| r.faults == 0 && r.switches == 0)
        .collect();
    row("no page fault, no context switch", &quiet);
    let faulted: Vec<&ChainRun> = runs.iter().filter(|r| r.faults > 0).collect();
    row("at least one minor page fault", &faulted);
    let switched: Vec<&ChainRun> = runs.iter().filter(|r| r.switches > 0).collect();
    row("at least one context switch", &switched);
    let p99 = quantile(&runs.iter().map(|r| r.ns).collect::<Vec<_>>(), 0.99);
    let tail: Vec<&ChainRun> = runs.iter().filter(|r| r.ns >= p99).collect();
    let share = |f: &dyn Fn(&ChainRun) -> bool| {
        100.0 * tail.iter().filter(|r| f(r)).count() as f64 / tail.len().max(1) as f64
    };
    let mean = |f: &dyn Fn(&ChainRun) -> u64, set: &[&ChainRun]| {
        set.iter().map(|r| f(r)).sum::<u64>() as f64 / set.len().max(1) as f64
    };
    println!(
        "the slowest 1% ({} chains): {:.0}% had a page fault, {:.0}% a context switch; time outside the evaluations {:.1} µs on average there vs {:.1} µs over all; faults per chain {:.2} there vs {:.2} over all",
        tail.len(),
        share(&|r| r.faults > 0),
        share(&|r| r.switches > 0),
        us(mean(&|r| r.ns.saturating_sub(r.inside_ns), &tail) as u64),
        us(mean(&|r| r.ns.saturating_sub(r.inside_ns), &all) as u64),
        mean(&|r| r.faults, &tail),
        mean(&|r| r.faults, &all),
    );
    if beside.is_none() {
        return;
    }
    let alone_ns: Vec<u64> = runs.iter().map(|r| r.ns).collect();
    let [hot, idle_alone, asleep, primed] = helped_ns.map(|mut t| {
        t.sort_unstable();
        t
    });
    println!(
        "\nthe same chain alone and with one helper thread (`Engine::start_helpers`); figures in µs, ratios against the alone chain's in the same state\n| chain | count | median | p99 | p99.9 | median ratio | p99 ratio |\n|---|---|---|---|---|---|---|"
    );
    for (name, ns, base) in [
        ("alone, back to back", &alone_ns, &alone_ns),
        ("one helper, back to back (hot)", &hot, &alone_ns),
        ("alone, after 3 ms idle", &idle_alone, &idle_alone),
        ("one helper, after 3 ms idle (asleep)", &asleep, &idle_alone),
        (
            "one helper, after 3 ms idle, primed just before",
            &primed,
            &idle_alone,
        ),
    ] {
        let ratio = |q| quantile(ns, q) as f64 / quantile(base, q).max(1) as f64;
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.3}× | {:.3}× |",
            ns.len(),
            us(quantile(ns, 0.5)),
            us(quantile(ns, 0.99)),
            us(quantile(ns, 0.999)),
            ratio(0.5),
            ratio(0.99),
        );
    }
}

/// One timed chain and what happened to the thread meanwhile.
struct ChainRun {
    ns: u64,
    inside_ns: u64,
    faults: u64,
    switches: u64,
}

/// This thread's minor page faults and context switches so far.
struct Usage {
    faults: u64,
    switches: u64,
}

impl Usage {
    fn now() -> Usage {
        // SAFETY: `getrusage` writes one `rusage` into the zeroed value it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
            usage
        };
        let count = |n: libc::c_long| u64::try_from(n).unwrap_or(0);
        Usage {
            faults: count(usage.ru_minflt) + count(usage.ru_majflt),
            switches: count(usage.ru_nvcsw) + count(usage.ru_nivcsw),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
