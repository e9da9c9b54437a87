//! Memory at scale: the resident set of one process holding many distinct loaded rules,
//! after loading them from precompiled artifacts and after each has run once.
//!
//! `cargo bench -p portcullis-bench --bench scale` (`SCALE_RULES`, default 500). The rules
//! are the example policies made distinct — each copy carries its own custom section, so
//! each has its own digest and is compiled, sealed and loaded on its own, as 100 tenants of
//! five rules would be. Sealing happens in a child process (compiling leaves the allocator's
//! high-water mark behind), so the measuring process only ever loads artifacts, as a Lambda
//! does on a cold start. Two measuring processes: the code **copied** into anonymous
//! memory (`EngineConfig::code_dir` unset) and **mapped** from files in a private directory
//! (set, as the Lambda does). Figures from `/proc/self/status`: `VmRSS` and its anonymous
//! and file-backed parts.
//!
//! Then through the registry, as the Lambda holds rules: the same rules published for 100
//! tenants of five (a directory store with each module's sealed artifact), every tenant
//! signing in once, with the default cap on loaded rules (1,000: all stay loaded) and with
//! a cap of 250 (the coldest tenants' sets are unloaded).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "benchmarks: a failed set-up is a failed run"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_engine::{
    ArtifactKey, Budget, CompiledPolicy, Engine, EngineConfig, Mode, OnError, Outcome, RuleInput,
    Sha256,
};
use portcullis_gate::manifest::RuleEntry;
use portcullis_gate::registry::RegistryConfig;
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::{Handler, HandlerConfig};

use portcullis_bench::twins as versus;

/// The example policies that run with no configuration or a trivial one, with it.
const POLICIES: &[(&str, &str)] = &[
    (art::ALLOW_ALL, "null"),
    (art::SUSPENDED_USERS, "null"),
    (art::EMAIL_DOMAIN, r#"{"domains": ["acme.example"]}"#),
    (
        art::IP_ALLOWLIST,
        r#"{"allow": ["10.0.0.0/8"], "client_supplied": true}"#,
    ),
    (
        art::DOMAIN_NETWORK,
        r#"{"domain": "acme.example", "network": "10.0.0.0/8"}"#,
    ),
];

fn main() {
    let rules: usize = std::env::var("SCALE_RULES")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(500);
    let key = ArtifactKey::new(vec![7; 32]).expect("key");
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    match (args.next(), args.next(), args.next()) {
        (Some(verb), Some(dir), None) if verb == "seal" => {
            return seal(Path::new(&dir), rules, &key);
        }
        (Some(verb), Some(dir), Some(code)) if verb == "measure" => {
            return measure(Path::new(&dir), rules, &key, &code);
        }
        _ => {}
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let own = std::env::current_exe().expect("own path");
    let child = |args: &[&str]| {
        let status = std::process::Command::new(&own)
            .args(args)
            .status()
            .expect("a child process");
        assert!(status.success(), "{args:?} failed: {status}");
    };
    let sealing = Instant::now();
    let path = dir.path().display().to_string();
    child(&["seal", &path]);
    let bytes: u64 = (0..rules)
        .filter_map(|i| std::fs::metadata(artifact_path(dir.path(), i)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{rules} distinct rules compiled and sealed in {:.1} s (a child process); artifacts {:.0} KB each on average",
        sealing.elapsed().as_secs_f64(),
        bytes as f64 / 1024.0 / rules as f64
    );
    println!("| code | state | RSS | anonymous | file-backed | per rule over the engine alone |");
    println!("|---|---|---|---|---|---|");
    // Each in a fresh process, so none inherits another's allocations.
    for code in ["copied", "mapped", "registry-1000", "registry-250"] {
        child(&["measure", &path, code]);
    }
}

/// The `i`th distinct component: an example policy with a custom section naming `i`.
fn distinct(i: usize) -> (Vec<u8>, &'static str) {
    let (path, config) = POLICIES.get(i % POLICIES.len()).copied().expect("a policy");
    let mut bytes = std::fs::read(path).expect("artifact");
    let name = b"portcullis-scale";
    let payload = format!("{i:08}");
    let body = 1 + name.len() + payload.len();
    bytes.push(0);
    bytes.push(u8::try_from(body).expect("a short section"));
    bytes.push(u8::try_from(name.len()).expect("a short name"));
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload.as_bytes());
    (bytes, config)
}

fn seal(dir: &Path, rules: usize, key: &ArtifactKey) {
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    for i in 0..rules {
        let (bytes, _) = distinct(i);
        let policy = engine.load(&bytes).expect("load");
        let artifact = engine.artifact(&policy, key).expect("seal");
        std::fs::write(artifact_path(dir, i), artifact).expect("write");
        std::fs::write(dir.join(format!("{i}.digest")), policy.digest().to_string())
            .expect("write");
    }
    publish(dir, rules, &engine.compat());
}

/// The tenant owning rules `5t..5t+5`.
fn tenant(t: usize) -> TenantId {
    TenantId::new(&format!("tenant-{t:03}")).expect("a tenant id")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The rules published five to a tenant in a directory store (`<dir>/store`), each module
/// with its sealed artifact, as a deployment's bucket holds them.
fn publish(dir: &Path, rules: usize, compat: &str) {
    let store = RuleStore::dir(dir.join("store"));
    let rt = runtime();
    for t in 0..rules.div_ceil(5) {
        let mut entries = Vec::new();
        for i in (t * 5)..(t * 5 + 5).min(rules) {
            let (bytes, config) = distinct(i);
            let digest = rt.block_on(store.put_module(bytes)).expect("module");
            let artifact = std::fs::read(artifact_path(dir, i)).expect("artifact");
            rt.block_on(store.put_compiled(compat, &digest, artifact))
                .expect("artifact");
            entries.push(RuleEntry {
                name: format!("rule-{i}"),
                module: digest.to_string(),
                triggers: vec!["pre-authentication".into()],
                timeout_ms: None,
                fuel: None,
                memory_mb: None,
                on_error: OnError::Allow,
                mode: Mode::Enforce,
                config: serde_json::from_str(config).expect("config"),
                data: Default::default(),
                counters: Default::default(),
                lookups: Default::default(),
            });
        }
        rt.block_on(store.publish_signed(&tenant(t), entries, 0, None))
            .expect("publish");
    }
}

/// Every tenant signs in once through a Lambda-configured handler keeping at most `cap`
/// rules loaded (code mapped from files).
fn through_registry(dir: &Path, rules: usize, key: &ArtifactKey, cap: usize) {
    let code_dir = tempfile::tempdir().expect("temporary directory");
    let engine = Engine::new(EngineConfig {
        code_dir: Some(code_dir.path().join("code")),
        ..EngineConfig::default()
    })
    .expect("engine");
    let handler = Handler::builder(RuleStore::dir(dir.join("store")))
        .engine(Arc::new(engine))
        .config(HandlerConfig::default())
        .registry(RegistryConfig {
            refresh: Duration::from_secs(3600),
            artifact_key: Some(key.clone()),
            max_loaded_rules: cap,
            ..RegistryConfig::default()
        })
        .build()
        .expect("handler");
    let event: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/events/pre-auth.json")).expect("event");
    let rt = runtime();
    let before = Rss::now();
    let start = Instant::now();
    let tenants = rules.div_ceil(5);
    for t in 0..tenants {
        let mut event = event.clone();
        if let Some(id) = event.pointer_mut("/request/userAttributes/custom:tenant_id") {
            *id = serde_json::Value::from(tenant(t).as_str());
        }
        let answer = rt.block_on(handler.handle(event, None));
        assert_eq!(answer.record.tenant.as_deref(), Some(tenant(t).as_str()));
        assert_eq!(answer.record.rules.len(), 5, "{:?}", answer.record);
        assert!(answer.response.is_ok(), "{:?}", answer.record);
    }
    let took = start.elapsed();
    let after = Rss::now();
    println!(
        "| mapped, registry, cap {cap} | {tenants} tenants signed in once ({:.0} ms; {} sets unloaded) | {:.1} MB | {:.1} MB | {:.1} MB | {:.0} KB |",
        took.as_secs_f64() * 1e3,
        handler.registry().unloaded_sets(),
        mb(after.total),
        mb(after.anon),
        mb(after.file),
        after.total.saturating_sub(before.total) as f64 / rules as f64
    );
}

fn artifact_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("{i}.cwasm"))
}

fn measure(dir: &Path, rules: usize, key: &ArtifactKey, code: &str) {
    if let Some(cap) = code.strip_prefix("registry-") {
        return through_registry(dir, rules, key, cap.parse().expect("a cap"));
    }
    let code_dir = tempfile::tempdir().expect("temporary directory");
    let engine = Engine::new(EngineConfig {
        code_dir: (code == "mapped").then(|| code_dir.path().join("code")),
        ..EngineConfig::default()
    })
    .expect("engine");
    let before = Rss::now();
    let start = Instant::now();
    let mut loaded: Vec<(Arc<CompiledPolicy>, RuleInput)> = Vec::with_capacity(rules);
    for i in 0..rules {
        let artifact = std::fs::read(artifact_path(dir, i)).expect("read");
        let digest: Sha256 = std::fs::read_to_string(dir.join(format!("{i}.digest")))
            .expect("read")
            .parse()
            .expect("digest");
        let policy = engine
            .load_precompiled(&artifact, &digest, key)
            .expect("load");
        let (_, config) = distinct(i);
        loaded.push((policy, RuleInput::with_config(config)));
    }
    let load_time = start.elapsed();
    let after_load = Rss::now();
    // A sign-in every one of the five policies allows (the side-by-side bench's first).
    let sign_in = versus::sign_ins().into_iter().next().expect("a sign-in");
    for (policy, input) in &loaded {
        match engine
            .evaluate(policy, &sign_in, input, &Budget::default())
            .outcome
        {
            Outcome::Verdict(_) => {}
            Outcome::Failed(f) => panic!("a rule failed: {f}"),
        }
    }
    let after_run = Rss::now();
    for (name, rss) in [
        ("the engine alone", &before),
        (
            &format!(
                "all loaded ({:.0} ms, {:.2} ms each)",
                load_time.as_secs_f64() * 1e3,
                load_time.as_secs_f64() * 1e3 / rules as f64
            ),
            &after_load,
        ),
        ("each has run once", &after_run),
    ] {
        println!(
            "| {code} | {name} | {:.1} MB | {:.1} MB | {:.1} MB | {:.0} KB |",
            mb(rss.total),
            mb(rss.anon),
            mb(rss.file),
            rss.total.saturating_sub(before.total) as f64 / rules as f64
        );
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The resident set, in KiB.
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
}

impl Rss {
    fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        Rss {
            total: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:") + field("RssShmem:"),
        }
    }
}
