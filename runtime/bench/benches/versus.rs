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
//! the verdict. Each spent instance is dropped as its evaluation ends (`kept_instances: 0`),
//! and, as a second Portcullis contender, the Lambda's way: kept and reaped once the answer
//! is out and a spare instance made for the next decision (`Engine::reap` and
//! `Engine::replenish` after posting the response; each decision still has an instance of
//! its own, never called before), that work timed apart. Last, the
//! same rule ten times over through the chain (ten rule names, one module), each chain timed
//! alone: median, p99 and p99.9, split by whether the thread took a page fault or a context
//! switch meanwhile; then four ways side by side, interleaved chain by chain — alone or with
//! one helper thread (`Engine::start_helpers`: the rules run side by side, combined in
//! order), each with its instances dropped in place or reaped and replenished after the
//! answer — back to
//! back and after 3 ms asleep. `VERSUS_ONLY=cedar|portcullis|reaped|floor|chain` runs one
//! contender alone and untimed, for a profiler (`perf record`); `helped` the chain on an
//! engine with a helper, `chain-reaped` the chain reaped and replenished after each answer.

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
    let (engine, policy) = engine_with(false, 0);
    let (reaping, reaping_policy) = engine_with(true, 0);
    let budget = Budget::default();
    let input = RuleInput::with_config(versus::CONFIG);
    let native = versus::Native::default();
    let cedar = versus::Cedar::new().expect("cedar policies");
    let sign_ins = versus::sign_ins();

    let allowed_by = |engine: &Engine, policy: &CompiledPolicy, s| match engine
        .evaluate(policy, s, &input, &budget)
        .outcome
    {
        Outcome::Verdict(v) => v.is_allowed(),
        Outcome::Failed(f) => panic!("the rule failed: {f}"),
    };
    let portcullis = |s| allowed_by(&engine, &policy, s);
    let reaped = |s| allowed_by(&reaping, &reaping_policy, s);
    let mut allowed = 0;
    for s in &sign_ins {
        let n = native.allows(s);
        let c = cedar.allows(s).expect("cedar");
        let p = portcullis(s);
        let r = reaped(s);
        after_answer(&reaping);
        assert!(
            n == c && c == p && p == r,
            "disagreement (native {n}, cedar {c}, portcullis {p}, reaped {r}) on {s:?}"
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
    // (`VERSUS_ONLY=cedar|portcullis|reaped|floor|chain|helped|chain-reaped`).
    if let Ok(only) = std::env::var("VERSUS_ONLY") {
        for _ in 0..rounds {
            for s in &sign_ins {
                match only.as_str() {
                    "cedar" => black_box(cedar.allows(black_box(s)).unwrap_or(false)),
                    "portcullis" => black_box(portcullis(black_box(s))),
                    "reaped" => {
                        black_box(reaped(black_box(s)));
                        after_answer(&reaping);
                        true
                    }
                    "floor" => black_box(matches!(floor(black_box(s)), Outcome::Verdict(_))),
                    _ => break,
                };
            }
        }
        let way = match only.as_str() {
            "chain" => Some((false, 0)),
            "chain-reaped" => Some((true, 0)),
            "helped" => Some((false, 1)),
            _ => None,
        };
        if let Some((reap, helpers)) = way {
            let (engine, policy) = engine_with(reap, helpers);
            chain(&[Way::new("profiled", engine, &policy, reap)], rounds);
        }
        return;
    }

    // Native, Cedar, Portcullis dropping in place, the floor, the clock, Portcullis the
    // Lambda's way; and its work after the answer, timed right after the decision.
    let mut times: [Vec<u64>; 7] = Default::default();
    let time = |f: &mut dyn FnMut() -> bool| {
        let start = Instant::now();
        black_box(f());
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    };
    for round in 0..rounds {
        for (i, s) in sign_ins.iter().enumerate() {
            // Rotate who goes first, so no contender always runs on a cache its rival warmed.
            for k in 0..6 {
                let which = (k + round + i) % 6;
                let ns = match which {
                    0 => time(&mut || native.allows(black_box(s))),
                    1 => time(&mut || cedar.allows(black_box(s)).unwrap_or(false)),
                    2 => time(&mut || portcullis(black_box(s))),
                    3 => time(&mut || matches!(floor(black_box(s)), Outcome::Verdict(_))),
                    4 => time(&mut || black_box(true)),
                    _ => {
                        let ns = time(&mut || reaped(black_box(s)));
                        let reap = time(&mut || {
                            after_answer(&reaping);
                            true
                        });
                        if let Some(t) = times.get_mut(6) {
                            t.push(reap);
                        }
                        ns
                    }
                };
                if let Some(t) = times.get_mut(which) {
                    t.push(ns);
                }
            }
        }
    }

    let [
        native_t,
        cedar_t,
        portcullis_t,
        floor_t,
        clock_t,
        reaped_t,
        reap_t,
    ] = times.map(|mut t| {
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
            "Portcullis (`domain-network`, a fresh instance per decision, dropped as it ends)",
            &portcullis_t,
        ),
        (
            "Portcullis, the Lambda's way: the instance reaped and a spare made after the answer",
            &reaped_t,
        ),
        (
            "— the reap and the spare after it (not on the answer's path)",
            &reap_t,
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
    let ways = [(false, 0), (true, 0), (false, 1), (true, 1)].map(|(reap, helpers)| {
        let (engine, policy) = engine_with(reap, helpers);
        let name = match (reap, helpers) {
            (false, 0) => "alone, dropped in place",
            (true, 0) => "alone, reaped and replenished after the answer",
            (false, _) => "one helper, dropped in place",
            (true, _) => "one helper, reaped and replenished after the answer",
        };
        Way::new(name, engine, &policy, reap)
    });
    chain(&ways, rounds);
}

/// An engine with the side-by-side rule loaded: the Lambda's way (`reap`: spent instances
/// kept for [`after_answer`], which also makes spares) or every instance made on the
/// decision's path and dropped as its evaluation ends, with `helpers` threads.
fn engine_with(reap: bool, helpers: usize) -> (Arc<Engine>, Arc<CompiledPolicy>) {
    let engine = Arc::new(
        Engine::new(EngineConfig {
            kept_instances: if reap { 16 } else { 0 },
            kept_large_instances: if reap { 4 } else { 0 },
            spare_instances: if reap { 32 } else { 0 },
            spare_large_instances: if reap { 4 } else { 0 },
            ..EngineConfig::default()
        })
        .expect("engine"),
    );
    engine.start_helpers(helpers).expect("helper threads");
    let policy = engine
        .load(&std::fs::read(art::DOMAIN_NETWORK).expect("artifact"))
        .expect("load");
    engine.reap();
    (engine, policy)
}

/// What the Lambda does once an answer is out: spent instances dropped, spares made.
fn after_answer(engine: &Engine) {
    engine.reap();
    engine.replenish();
}

/// One way to run the 10-rule chain: the same rule ten times over (ten rule names, one
/// module) on an engine, its spent instances reaped after each answer or dropped in place.
struct Way {
    name: &'static str,
    engine: Arc<Engine>,
    chain: Chain,
    reap: bool,
}

impl Way {
    fn new(
        name: &'static str,
        engine: Arc<Engine>,
        policy: &Arc<CompiledPolicy>,
        reap: bool,
    ) -> Way {
        let chain = Chain {
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
        Way {
            name,
            engine,
            chain,
            reap,
        }
    }
}

/// The chain each way, on a sign-in every rule allows, each chain timed alone to its
/// answer (and the reap after it, apart). The first way's chains also record what happened
/// to this thread meanwhile (minor page faults, context switches, from
/// `getrusage(RUSAGE_THREAD)`) and how much of the chain was inside the ten evaluations, so
/// the tail can be told apart. The ways take turns chain by chain, back to back; every
/// tenth round each also runs after 3 ms asleep (sign-ins reach a function that far apart
/// or more, and a helper has gone to sleep), its helpers primed first as the gate does.
fn chain(ways: &[Way], rounds: usize) {
    let data = DataSet::default();
    let sign_in = versus::sign_ins().into_iter().next().expect("a sign-in");
    // One chain, timed alone: its time in ns, the time inside its ten evaluations, and the
    // reap after it.
    let timed = |way: &Way| {
        let start = Instant::now();
        let outcome = way.chain.evaluate(
            &way.engine,
            Arc::clone(&sign_in),
            &data,
            start + Duration::from_secs(1),
        );
        let ns = nanos(start.elapsed());
        assert!(outcome.decision == Decision::Allow && outcome.reports.len() == 10);
        let inside: Duration = outcome.reports.iter().map(|r| r.evaluation.duration).sum();
        let reap = way.reap.then(|| {
            let start = Instant::now();
            after_answer(&way.engine);
            nanos(start.elapsed())
        });
        (ns, nanos(inside), reap)
    };
    let mut runs = Vec::with_capacity(rounds * 20);
    // Per way: back to back, after 3 ms asleep, reaps.
    let mut times: Vec<[Vec<u64>; 3]> = ways.iter().map(|_| Default::default()).collect();
    for round in 0..rounds * 20 {
        for k in 0..ways.len() {
            let w = (k + round) % ways.len();
            let (Some(way), Some([hot, _, reaps])) = (ways.get(w), times.get_mut(w)) else {
                continue;
            };
            let before = Usage::now();
            let (ns, inside_ns, reap) = timed(way);
            let after = Usage::now();
            hot.push(ns);
            reaps.extend(reap);
            if w == 0 {
                runs.push(ChainRun {
                    ns,
                    inside_ns,
                    faults: after.faults.saturating_sub(before.faults),
                    switches: after.switches.saturating_sub(before.switches),
                });
            }
        }
        if round % 10 == 0 {
            for (way, [_, asleep, reaps]) in ways.iter().zip(times.iter_mut()) {
                std::thread::sleep(Duration::from_millis(3));
                way.engine.prime_helpers();
                let (ns, _, reap) = timed(way);
                asleep.push(ns);
                reaps.extend(reap);
            }
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
    let first = ways.first().map_or("", |w| w.name);
    println!(
        "\n10-rule chain of the same rule ({first}), {} chains; figures in µs; `outside` is the chain's time not inside the ten evaluations (store drop and memory reset, merging, reports)",
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
    let times: Vec<[Vec<u64>; 3]> = times
        .into_iter()
        .map(|t| {
            t.map(|mut t| {
                t.sort_unstable();
                t
            })
        })
        .collect();
    let Some([base_hot, base_asleep, _]) = times.first() else {
        return;
    };
    println!(
        "\nthe chain four ways, interleaved; figures in µs to the answer, ratios against the first way's in the same state; the work after the answer (reap, replenish) apart\n| chain | back to back: median | p99 | p99.9 | after 3 ms asleep: median | p99 | median ratio | p99 ratio | asleep median ratio | after-answer median | after-answer p99 |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (way, [hot, asleep, reaps]) in ways.iter().zip(&times) {
        let ratio =
            |t: &[u64], base: &[u64], q| quantile(t, q) as f64 / quantile(base, q).max(1) as f64;
        let reap = |q| {
            if reaps.is_empty() {
                "—".to_owned()
            } else {
                format!("{:.1}", us(quantile(reaps, q)))
            }
        };
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3}× | {:.3}× | {:.3}× | {} | {} |",
            way.name,
            us(quantile(hot, 0.5)),
            us(quantile(hot, 0.99)),
            us(quantile(hot, 0.999)),
            us(quantile(asleep, 0.5)),
            us(quantile(asleep, 0.99)),
            ratio(hot, base_hot, 0.5),
            ratio(hot, base_hot, 0.99),
            ratio(asleep, base_asleep, 0.5),
            reap(0.5),
            reap(0.99),
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
