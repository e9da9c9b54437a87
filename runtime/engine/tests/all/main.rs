//! Engine integration tests: every example policy and adversarial guest, compiled from
//! source by `portcullis-artifacts`, run through the real engine.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed step is a failed test"
)]

mod adversarial;
mod chain;
mod compat;
mod conformance;
mod helpers;
mod policies;
mod pools;
mod request;
mod spares;

use std::sync::{Arc, Mutex, OnceLock};

use portcullis_engine::{Budget, CompiledPolicy, Engine, EngineConfig};

/// One engine per test binary, shared like in production.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineConfig::default()).expect("engine"))
}

/// Loads an artifact by path, once per test binary (the engine's own cache only holds
/// policies some rule set still uses).
pub fn load(path: &str) -> Arc<CompiledPolicy> {
    static LOADED: Mutex<Vec<(String, Arc<CompiledPolicy>)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap();
    if let Some((_, policy)) = loaded.iter().find(|(p, _)| p == path) {
        return policy.clone();
    }
    let bytes = std::fs::read(path).expect("artifact");
    let policy = engine()
        .load(&bytes)
        .unwrap_or_else(|e| panic!("loading {path}: {e}"));
    loaded.push((path.to_owned(), policy.clone()));
    policy
}

pub use portcullis_testkit::sign_in::{TestRequest, request};

/// Evaluates `policy` on `request` with the shared engine, as one rule of a chain.
pub fn evaluate(
    policy: &CompiledPolicy,
    request: &TestRequest,
    budget: &Budget,
) -> portcullis_engine::Evaluation {
    portcullis_testkit::sign_in::evaluate(engine(), policy, request, budget)
}

/// The default budget.
pub fn budget() -> Budget {
    Budget::default()
}
