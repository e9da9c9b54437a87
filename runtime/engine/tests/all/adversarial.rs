//! Each adversarial guest ends in its own typed outcome, the process survives, and a benign
//! rule evaluated right after still gives the right answer.

use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_engine::{Budget, Failure, InvalidOutput, LoadError, Outcome, Trigger};

use crate::{budget, engine, evaluate, load, request};

fn failure(path: &str, trigger: Trigger, budget: &Budget) -> Failure {
    let policy = load(path);
    let outcome = evaluate(&policy, &request(trigger), budget).outcome;
    let failure = match outcome {
        Outcome::Failed(f) => f,
        Outcome::Verdict(v) => panic!("{path} returned a verdict: {v:?}"),
    };
    benign_still_works();
    failure
}

fn benign_still_works() {
    let policy = load(art::SUSPENDED_USERS);
    let mut r = request(Trigger::PreAuthentication);
    r.user_attributes
        .push(("custom:suspended".into(), "true".into()));
    let outcome = evaluate(&policy, &r, &budget()).outcome;
    assert!(
        matches!(outcome, Outcome::Verdict(ref v) if v.deny.is_some()),
        "{outcome:?}"
    );
}

fn load_error(path: &str) -> LoadError {
    let bytes = std::fs::read(path).unwrap();
    let err = engine().load(&bytes).unwrap_err();
    benign_still_works();
    err
}

#[test]
fn infinite_loop_times_out_within_the_deadline() {
    let b = Budget {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(10),
        ..budget()
    };
    let policy = load(art::INFINITE_LOOP);
    let start = Instant::now();
    let outcome = evaluate(&policy, &request(Trigger::PreAuthentication), &b).outcome;
    let elapsed = start.elapsed();
    assert!(
        matches!(outcome, Outcome::Failed(Failure::Timeout(_))),
        "{outcome:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(10),
        "stopped before its budget: {elapsed:?}"
    );
    // Fuel alone would never stop it. The margin allows for a descheduled ticker thread on
    // a busy shared machine.
    assert!(
        elapsed < Duration::from_millis(100),
        "took {elapsed:?} for a 10 ms budget"
    );
    benign_still_works();
}

#[test]
fn infinite_loop_runs_out_of_fuel_deterministically() {
    let b = Budget {
        fuel: 1_000_000,
        timeout: Duration::from_secs(5),
        ..budget()
    };
    let policy = load(art::INFINITE_LOOP);
    let r = request(Trigger::PreAuthentication);
    let first = evaluate(&policy, &r, &b);
    let second = evaluate(&policy, &r, &b);
    assert!(
        matches!(
            first.outcome,
            Outcome::Failed(Failure::OutOfFuel(1_000_000))
        ),
        "{:?}",
        first.outcome
    );
    assert!(matches!(
        second.outcome,
        Outcome::Failed(Failure::OutOfFuel(_))
    ));
    assert_eq!(first.fuel_used, second.fuel_used);
    assert_eq!(first.fuel_used, 1_000_000);
    benign_still_works();
}

#[test]
fn fuel_used_is_deterministic_for_a_real_policy() {
    let policy = load(art::IP_ALLOWLIST);
    let mut r = request(Trigger::PreAuthentication);
    r.config = r#"{"allow": ["10.0.0.0/8"]}"#.into();
    r.client_metadata = vec![("ip".into(), "10.1.2.3".into())];
    let a = evaluate(&policy, &r, &budget());
    let b = evaluate(&policy, &r, &budget());
    assert!(a.fuel_used > 0);
    assert_eq!(a.fuel_used, b.fuel_used);
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let b = Budget {
        memory_bytes: 8 << 20,
        ..budget()
    };
    assert_eq!(
        failure(art::MEMORY_BOMB, Trigger::PreAuthentication, &b),
        Failure::MemoryLimit { limit: 8 << 20 }
    );
}

#[test]
fn a_module_with_several_memories_is_refused_at_load() {
    // Four memories of 25 MiB in one core module: each would fit the 64 MiB budget. The
    // pool gives a core module one memory, so it never runs; memories spread over several
    // core instances of a component are held to the rule's limit together (the limiter
    // sums them: `budget.rs`).
    let err = load_error(art::MULTI_MEMORY);
    assert!(
        matches!(&err, LoadError::Invalid(why) if why.contains("memories")),
        "{err:?}"
    );
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let f = failure(art::DEEP_RECURSION, Trigger::PreAuthentication, &budget());
    assert!(matches!(f, Failure::Trap { .. }), "{f:?}");
}

#[test]
fn huge_verdict_is_invalid_output() {
    // Enough fuel and time to build all 10 MB: the output size is what is under attack.
    let b = Budget {
        fuel: 2_000_000_000,
        timeout: Duration::from_secs(10),
        ..budget()
    };
    let f = failure(art::HUGE_VERDICT, Trigger::PreTokenGeneration, &b);
    // 10 MB is over the host's transfer cap: refused while it is read, before the host
    // allocates for all of it (a verdict under the cap but over the string limit is
    // `TooLarge`, see verdict.rs).
    assert!(
        matches!(f, Failure::InvalidOutput(InvalidOutput::Unreadable(_))),
        "{f:?}"
    );
}

#[test]
fn reserved_claim_is_invalid_output() {
    let f = failure(art::RESERVED_CLAIM, Trigger::PreTokenGeneration, &budget());
    assert_eq!(
        f,
        Failure::InvalidOutput(InvalidOutput::ReservedClaim("sub".into()))
    );
}

#[test]
fn panic_is_a_trap() {
    let f = failure(art::PANICS, Trigger::PreAuthentication, &budget());
    assert_eq!(
        f,
        Failure::Trap {
            code: wasmtime::Trap::UnreachableCodeReached
        }
    );
}

#[test]
fn wasi_guest_refused_at_load_naming_the_import() {
    match load_error(art::WASI_STD) {
        LoadError::ForbiddenImports(names) => {
            assert!(names.iter().any(|n| n.starts_with("wasi:")), "{names:?}");
            let message = LoadError::ForbiddenImports(names).to_string();
            assert!(message.contains("`wasi:"), "{message}");
        }
        other => panic!("expected forbidden imports, got {other:?}"),
    }
}

#[test]
fn unknown_import_refused_at_load() {
    assert_eq!(
        load_error(art::UNKNOWN_IMPORT),
        LoadError::ForbiddenImports(vec!["evil:net/socket@1.0.0".into()])
    );
}

/// Imports are read from the bytes before anything is compiled: a component importing
/// outside the contract is refused for that import even when its code would not compile,
/// and a nested component's own imports (satisfied inside the component) are not its.
#[test]
fn forbidden_imports_are_refused_before_compiling() {
    let bytes = wat::parse_str(
        r#"(component
            (import "portcullis:policy/types@0.2.1" (instance))
            (import "request" (type (sub resource)))
            (import "evil:net/socket@1.0.0" (instance))
            (component (import "wasi:cli/stdout@0.2.0" (instance)))
            (core module (func (result i32) i64.const 0))
        )"#,
    )
    .unwrap();
    assert_eq!(
        engine().load(&bytes).unwrap_err(),
        LoadError::ForbiddenImports(vec!["evil:net/socket@1.0.0".into()])
    );
    benign_still_works();
}

#[test]
fn wrong_export_types_refused_at_load() {
    let err = load_error(art::WRONG_SIGNATURE);
    assert!(
        matches!(&err, LoadError::Contract(why) if why.contains("`evaluate`")),
        "{err:?}"
    );
}

#[test]
fn core_module_refused() {
    assert_eq!(load_error(art::CORE_MODULE), LoadError::NotAComponent);
}

#[test]
fn malformed_bytes_refused() {
    assert!(matches!(load_error(art::MALFORMED), LoadError::Invalid(_)));
}

#[test]
fn oversized_module_refused() {
    let engine = portcullis_engine::Engine::new(portcullis_engine::EngineConfig {
        max_module_bytes: 1024,
        ..Default::default()
    })
    .unwrap();
    let bytes = std::fs::read(art::ALLOW_ALL).unwrap();
    assert!(matches!(
        engine.load(&bytes),
        Err(LoadError::TooLarge { limit: 1024, .. })
    ));
}
