//! Rule builders over a real rule store: fixture events, manifest entries, publishing
//! (signed or not), canaries, and a handler assembled the way the Lambda assembles it.

use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::{Engine, EngineConfig, Mode, OnError};
use portcullis_gate::manifest::{CanaryTerms, Manifest, RuleEntry};
use portcullis_gate::registry::RegistryConfig;
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::trust::ManifestSigner;
use portcullis_gate::{Answer, GateBuilder, Handler, HandlerConfig};
use serde_json::{Value, json};

/// The AWS-shaped Cognito events in `runtime/fixtures/events`.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");

/// The fixture event `name` (without `.json`).
pub fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}.json")).unwrap()).unwrap()
}

/// A manifest entry for the module at `path` (an artifact path), enforced, failing closed.
pub fn entry(name: &str, path: &str, triggers: &[&str], config: Value) -> RuleEntry {
    RuleEntry {
        name: name.into(),
        module: path.into(),
        triggers: triggers.iter().map(|t| t.to_string()).collect(),
        timeout_ms: None,
        fuel: None,
        memory_mb: None,
        on_error: OnError::Deny,
        mode: Mode::Enforce,
        config,
        data: Default::default(),
        counters: Default::default(),
        lookups: Default::default(),
    }
}

/// Ten pre-authentication rules of eight distinct modules (one large-memory), all allowing
/// the fixture `pre-auth`, failing open, their modules named by artifact path: the
/// benches' realistic tenant.
pub fn ten_pre_auth_rules() -> Vec<RuleEntry> {
    let email = json!({"domains": ["acme.example"]});
    [
        ("email", art::EMAIL_DOMAIN, email.clone()),
        ("suspended", art::SUSPENDED_USERS, Value::Null),
        // The fixture's address and risk score are client metadata (the event has neither
        // a Cognito source IP nor a signed context envelope).
        (
            "ip",
            art::IP_ALLOWLIST,
            json!({"allow": ["10.0.0.0/8"], "client_supplied": true}),
        ),
        (
            "risk",
            art::RISK_SCORE,
            json!({"max": 70, "client_supplied": true}),
        ),
        (
            "hours",
            art::SIGNIN_HOURS,
            json!({"time_zone": "UTC", "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "start": "00:00", "end": "23:59"}),
        ),
        ("claims", art::TENANT_CLAIMS, Value::Null),
        ("device", art::NEW_DEVICE, Value::Null),
        ("allow", art::ALLOW_ALL, Value::Null),
        ("allow-2", art::ALLOW_ALL, Value::Null),
        ("email-2", art::EMAIL_DOMAIN, email),
    ]
    .into_iter()
    .map(|(name, path, config)| RuleEntry {
        on_error: OnError::Allow,
        ..entry(name, path, &["pre-authentication"], config)
    })
    .collect()
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Publishes `rules` for `tenant`, storing the modules they name by path.
pub fn publish(store: &RuleStore, tenant: &str, rules: Vec<RuleEntry>) {
    publish_signed(store, tenant, rules, None);
}

/// As [`publish`], signed by `signer`; returns the published manifest.
pub fn publish_signed(
    store: &RuleStore,
    tenant: &str,
    mut rules: Vec<RuleEntry>,
    signer: Option<&ManifestSigner>,
) -> Manifest {
    store_modules(store, &mut rules);
    let tenant = TenantId::new(tenant).unwrap();
    let current = block(store.current(&tenant))
        .unwrap()
        .map_or(0, |c| c.manifest.revision);
    block(store.publish_signed(&tenant, rules, current, signer)).unwrap()
}

/// Stages `rules` (modules by path) as a canary of `tenant` for `percent` percent of its
/// users, following its current revision, signed by `signer`.
pub fn stage_canary(
    store: &RuleStore,
    tenant: &str,
    mut rules: Vec<RuleEntry>,
    percent: u8,
    signer: Option<&ManifestSigner>,
) -> Manifest {
    store_modules(store, &mut rules);
    let tenant = TenantId::new(tenant).unwrap();
    let current = block(store.current(&tenant)).unwrap().unwrap();
    let terms = CanaryTerms::new(percent).unwrap();
    block(store.stage_canary(&tenant, rules, current.manifest.revision, terms, signer)).unwrap()
}

/// Stores the modules `rules` name by path, and names them by digest instead.
fn store_modules(store: &RuleStore, rules: &mut [RuleEntry]) {
    for rule in rules {
        let bytes = std::fs::read(&rule.module).unwrap();
        rule.module = block(store.put_module(bytes)).unwrap().to_string();
    }
}

/// A gate over `store` with a small engine, refreshing manifests every `refresh`, ready for
/// more parts (data, recorder) before it is built.
pub fn gate(store: &RuleStore, config: HandlerConfig, refresh: Duration) -> GateBuilder {
    let engine = Engine::new(EngineConfig {
        max_concurrent: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    Handler::builder(store.clone())
        .engine(Arc::new(engine))
        .config(config)
        .registry(RegistryConfig {
            refresh,
            ..RegistryConfig::default()
        })
}

/// A handler over `store` with a small engine, refreshing manifests every `refresh`.
pub fn handler(store: &RuleStore, config: HandlerConfig, refresh: Duration) -> Handler {
    gate(store, config, refresh).build().unwrap()
}

/// Handles `event` without an invocation deadline.
pub fn handle(handler: &Handler, event: Value) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(handler.handle(event, None))
}
