//! Spare instances ([`Engine::replenish`]): made once an answer is out for the policies that
//! ran, taken once by a later evaluation of the same policy, bounded, and indistinguishable
//! from an instance made on the spot — the same outcome, fuel, memory, logs and reads, no
//! state from whoever ran before, and no budget stretched by the budget it was made under.

use portcullis_artifacts as art;
use portcullis_engine::{
    Budget, CompiledPolicy, Engine, EngineConfig, Evaluation, Failure, Outcome, Trigger,
};
use serde_json::json;

use portcullis_testkit::sign_in::{TestRequest, evaluate};

use crate::{budget, request};

fn engine_with(spare_instances: u32, spare_large_instances: u32) -> Engine {
    Engine::new(EngineConfig {
        spare_instances,
        spare_large_instances,
        ..EngineConfig::default()
    })
    .expect("engine")
}

fn load(engine: &Engine, path: &str) -> std::sync::Arc<CompiledPolicy> {
    engine
        .load(&std::fs::read(path).expect("artifact"))
        .expect("load")
}

/// What an evaluation showed of itself, its wall time left out.
fn seen(evaluation: &Evaluation) -> String {
    let outcome = match &evaluation.outcome {
        Outcome::Failed(Failure::Timeout(_)) => "timeout".to_owned(),
        other => format!("{other:?}"),
    };
    format!(
        "{outcome} fuel={} memory={} logs={:?} dropped={} reads={:?} counts={:?}",
        evaluation.fuel_used,
        evaluation.peak_memory,
        evaluation.logs,
        evaluation.logs_dropped,
        evaluation.reads,
        evaluation.counts
    )
}

#[test]
fn a_spare_is_made_after_the_answer_and_taken_once_by_the_next_evaluation() {
    let engine = engine_with(4, 4);
    let policy = load(&engine, art::SUSPENDED_USERS);
    let req = request(Trigger::PreAuthentication);
    // Nothing is made ahead until a policy has run and the engine is asked to.
    assert_eq!(engine.replenish(), 0);
    let first = evaluate(&engine, &policy, &req, &budget());
    assert_eq!(engine.spares(), 0);
    engine.reap();
    assert_eq!(engine.replenish(), 1);
    assert_eq!(engine.spares(), 1);
    let second = evaluate(&engine, &policy, &req, &budget());
    assert_eq!(engine.spares(), 0, "the spare was taken");
    assert_eq!(seen(&first), seen(&second));
    // Taken spares are not given back: the next is made again after the next answer.
    assert_eq!(engine.replenish(), 1);
}

#[test]
fn an_evaluation_in_a_spare_is_the_evaluation_in_a_fresh_instance() {
    // Every example policy and the guests that misbehave at run time, with and without a
    // spare (each spare made by a *different* request's evaluation), compared field by
    // field.
    let fresh = engine_with(0, 0);
    let spared = engine_with(8, 8);
    let mut paths: Vec<&str> = art::examples().map(|(_, path)| path).collect();
    paths.extend([
        art::LEAK_PROBE,
        art::REQUEST_ECHO,
        art::COUNTER_ASKER,
        art::PANICS,
        art::HUGE_VERDICT,
        art::MEMORY_BOMB,
        art::DEEP_RECURSION,
        art::INFINITE_LOOP,
    ]);
    let mut other = request(Trigger::PreTokenGeneration);
    other.sign_in.tenant = "another-tenant".into();
    other.sign_in.user_name = Some("someone-else".into());
    other.config = json!({"domain": "elsewhere.example", "max": 1}).to_string();
    let small = Budget {
        fuel: 2_000_000,
        ..budget()
    };
    for path in paths {
        let (a, b) = (load(&fresh, path), load(&spared, path));
        for trigger in [Trigger::PreAuthentication, Trigger::PreTokenGeneration] {
            let req = request(trigger);
            // A spare made by someone else's sign-in, then taken by this one.
            evaluate(&spared, &b, &other, &small);
            spared.reap();
            assert!(spared.replenish() >= 1, "{path}");
            let ready = spared.spares();
            let with_spare = evaluate(&spared, &b, &req, &small);
            assert_eq!(spared.spares(), ready - 1, "{path}: no spare was taken");
            let on_the_spot = evaluate(&fresh, &a, &req, &small);
            assert_eq!(seen(&with_spare), seen(&on_the_spot), "{path}, {trigger:?}");
            spared.reap();
            fresh.reap();
        }
    }
}

#[test]
fn a_spare_is_taken_only_when_the_budget_would_have_let_it_be_made() {
    // `signin-hours` starts with 960 KiB of memory: a spare made under a 64 MiB budget
    // must not let a rule with a 512 KiB budget past what its own instantiation would meet.
    let engine = engine_with(4, 4);
    let policy = load(&engine, art::SIGNIN_HOURS);
    let mut req = request(Trigger::PreAuthentication);
    req.config =
        json!({"time_zone": "Europe/Berlin", "start": "00:00", "end": "23:59"}).to_string();
    evaluate(&engine, &policy, &req, &budget());
    engine.reap();
    assert_eq!(engine.replenish(), 1);
    let tight = Budget {
        memory_bytes: 512 << 10,
        ..budget()
    };
    let refused = evaluate(&engine, &policy, &req, &tight);
    assert!(
        matches!(
            refused.outcome,
            Outcome::Failed(Failure::MemoryLimit { limit }) if limit == 512 << 10
        ),
        "{:?}",
        refused.outcome
    );
    assert_eq!(engine.spares(), 1, "the spare stays for a budget it fits");
    let allowed = evaluate(&engine, &policy, &req, &budget());
    assert!(
        matches!(allowed.outcome, Outcome::Verdict(_)),
        "{:?}",
        allowed.outcome
    );
    assert_eq!(engine.spares(), 0);
}

#[test]
fn spares_are_bounded_and_the_oldest_go_first() {
    let engine = engine_with(2, 0);
    let req = request(Trigger::PreAuthentication);
    let policies: Vec<_> = [art::ALLOW_ALL, art::SUSPENDED_USERS, art::EMAIL_DOMAIN]
        .into_iter()
        .map(|path| load(&engine, path))
        .collect();
    for policy in &policies[..2] {
        evaluate(&engine, policy, &req, &budget());
    }
    engine.reap();
    assert_eq!(engine.replenish(), 2);
    evaluate(&engine, &policies[2], &req, &budget());
    engine.reap();
    assert_eq!(engine.replenish(), 1);
    assert_eq!(engine.spares(), 2);
    // The first policy's spare went to make room for the third's; the last two are there.
    evaluate(&engine, &policies[0], &req, &budget());
    assert_eq!(engine.spares(), 2);
    evaluate(&engine, &policies[2], &req, &budget());
    assert_eq!(engine.spares(), 1);
    // The large pool makes none when its cap is 0.
    let large = load(&engine, art::SIGNIN_HOURS);
    evaluate(&engine, &large, &req, &budget());
    engine.reap();
    engine.replenish();
    evaluate(&engine, &large, &req, &budget());
    assert_eq!(engine.spares(), 2, "only small-pool spares were made");
}

#[test]
fn spares_never_cost_a_running_rule_its_place() {
    // One running place, one kept, two spares; six threads evaluate and one replenishes
    // and reaps all the while: every evaluation answers.
    let engine = Engine::new(EngineConfig {
        max_concurrent: 1,
        kept_instances: 1,
        spare_instances: 2,
        ..EngineConfig::default()
    })
    .expect("engine");
    let policies = [
        load(&engine, art::SUSPENDED_USERS),
        load(&engine, art::ALLOW_ALL),
    ];
    let req = request(Trigger::PreAuthentication);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|threads| {
        threads.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                engine.reap();
                engine.replenish();
            }
        });
        let running: Vec<_> = (0..6)
            .map(|n| {
                let (engine, policy, req) = (&engine, &policies[n % 2], &req);
                threads.spawn(move || failures(engine, policy, req, 40))
            })
            .collect();
        for (n, thread) in running.into_iter().enumerate() {
            assert_eq!(
                thread.join().expect("thread"),
                Vec::<String>::new(),
                "thread {n}"
            );
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(engine.spares() <= 2);
}

fn failures(
    engine: &Engine,
    policy: &CompiledPolicy,
    req: &TestRequest,
    runs: usize,
) -> Vec<String> {
    (0..runs)
        .filter_map(|_| match evaluate(engine, policy, req, &budget()).outcome {
            Outcome::Verdict(_) => None,
            Outcome::Failed(failure) => Some(failure.to_string()),
        })
        .collect()
}
