//! Engine integration tests: every example policy and adversarial guest, compiled from
//! source by `portcullis-artifacts`, run through the real engine.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod adversarial;
mod chain;
mod handler;
mod isolation;
mod policies;
mod pools;
mod request;
mod trust;

use std::sync::{Arc, Mutex, OnceLock};

use portcullis_engine::{Budget, CompiledPolicy, Engine, EngineConfig, Request, Trigger};

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

/// A request like the SDK's test helper builds.
pub fn request(trigger: Trigger) -> Request {
    Request {
        trigger,
        trigger_source: match trigger {
            Trigger::PreAuthentication => "PreAuthentication_Authentication",
            Trigger::PostAuthentication => "PostAuthentication_Authentication",
            Trigger::PreTokenGeneration => "TokenGeneration_Authentication",
        }
        .into(),
        event_version: "1".into(),
        tenant: "acme".into(),
        user_pool_id: "us-east-1_test".into(),
        client_id: Some("client".into()),
        user_name: Some("ada".into()),
        user_attributes: vec![("email".into(), "ada@example.com".into())],
        client_metadata: vec![],
        user_not_found: false,
        new_device_used: None,
        groups: vec![],
        scopes: vec![],
        config: "null".into(),
        data: vec![],
        now_unix_ms: 1_767_596_400_000,
    }
}

/// The default budget.
pub fn budget() -> Budget {
    Budget::default()
}
