//! `bootstrap`: the Portcullis Lambda. Cognito calls it as the user pool's
//! PreAuthentication, PostAuthentication and PreTokenGeneration trigger; every invocation
//! goes through [`portcullis_gate::handler::Handler`], the same code `portcullis handle`
//! runs locally. A block is answered with an error whose message is client-safe: Cognito
//! shows it as `PreAuthentication failed with error <message>.`

mod after;
mod config;

use after::Outbox;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Diagnostic, LambdaEvent, Runtime, layers::TracingLayer, service_fn};
use portcullis_aws::StoreUrl;
use portcullis_aws::counters::DynamoCounters;
use portcullis_aws::dynamo::{DynamoData, DynamoRecorder};
use portcullis_aws::http::HyperClient;
use portcullis_aws::secrets::ManagedSecrets;
use portcullis_engine::{Engine, EngineConfig};
use portcullis_gate::Handler;
use portcullis_gate::context::{ContextKeys, ContextVerifier};
use portcullis_gate::data::lookups::Lookups;
use portcullis_gate::metrics::FunctionCounters;
use portcullis_gate::registry::RegistryConfig;
use portcullis_gate::report::Report;
use portcullis_gate::store::RuleStore;
use serde_json::Value;
use tokio::sync::OnceCell;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "portcullis failed to start");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = config::Config::from_lookup(|k| std::env::var(k).ok())?;
    // One rule may use at most half the function's memory (and never more than the
    // engine's own cap): a rule's budget must not be able to take the environment down.
    let function_mb = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    let defaults = EngineConfig::default();
    let max_memory_bytes = function_mb
        .map_or(defaults.max_memory_bytes, |mb| {
            (mb.saturating_mul(1 << 20) / 2).min(defaults.max_memory_bytes)
        })
        .max(1 << 20);
    let engine = Arc::new(Engine::new(EngineConfig {
        max_concurrent: 8,
        max_memory_bytes,
        // Finished instances wait for the reap after each response (`after.rs`), so a
        // chain never drops them on the sign-in's path: enough for a long chain and its
        // canary (the large pool keeps its default, `kept_large_instances`). Spares for
        // the next sign-ins are made there too: `spare_instances` (32) holds a 10-rule
        // chain of each of the three triggers.
        kept_instances: 32,
        // Precompiled code mapped from the function's ephemeral storage: only the pages
        // rules run stay resident (BENCHMARKS.md run 13).
        code_dir: Some(std::env::temp_dir().join("portcullis-code")),
        ..defaults
    })?);
    // No more helpers than the cores this process may use, less the one it runs on.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let helpers = config.chain_helpers.min(cores.saturating_sub(1));
    engine.start_helpers(helpers)?;
    tracing::info!(helpers, cores, "chain helper threads");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handler = Arc::new(runtime.block_on(build(config, Arc::clone(&engine)))?);
    let outbox = Arc::new(Outbox::new(Box::new(std::io::stdout())));
    let invocations = Runtime::new(service_fn({
        let outbox = Arc::clone(&outbox);
        move |event: LambdaEvent<Value>| {
            let (handler, outbox) = (Arc::clone(&handler), Arc::clone(&outbox));
            async move { invoke(&handler, &outbox, event).await }
        }
    }))
    .layer(TracingLayer::new())
    // Outermost: runs once the response is posted.
    .layer(after::AfterAnswerLayer { engine, outbox });
    runtime.block_on(invocations.run())
}

/// The handler from the configuration: stores, registry, DynamoDB. The AWS configuration
/// is loaded at most once, and only when something needs it.
async fn build(
    config: config::Config,
    engine: Arc<Engine>,
) -> Result<Handler, portcullis_engine::LoadError> {
    let aws = OnceCell::new();
    let open = async |url: &StoreUrl| match url {
        StoreUrl::Dir(path) => RuleStore::dir(path),
        StoreUrl::S3 { .. } => url.open_with(
            aws.get_or_init(portcullis_aws::sdk_config).await,
            config.store_timeout,
        ),
    };
    let store = open(&config.store).await;
    let baseline = match &config.baseline {
        Some(url) => Some(open(url).await),
        None => None,
    };
    // The artifact key, once per cold start. Without it nothing precompiled is trusted:
    // every module is compiled from its verified `.wasm` (slower, never unsafe).
    let artifact_key = match &config.artifact_key {
        Some(source) => {
            let aws = async || aws.get_or_init(portcullis_aws::sdk_config).await.clone();
            match source.load(aws, config.store_timeout).await {
                Ok(key) => Some(key),
                Err(error) => {
                    tracing::error!(error = %error, "artifact key unavailable; compiling every module from its .wasm");
                    None
                }
            }
        }
        None => None,
    };
    // The tenants' context keys, once per cold start. Without them no envelope is trusted:
    // rules see only what clients say.
    let context_keys = match &config.context_keys {
        Some(source) => {
            let aws = async || aws.get_or_init(portcullis_aws::sdk_config).await.clone();
            match source
                .text(aws, config.store_timeout)
                .await
                .map(|(name, text)| {
                    ContextKeys::parse(&text)
                        .map_err(|e| format!("context keys from `{name}`: {e}"))
                }) {
                Ok(Ok(keys)) => keys,
                Ok(Err(error)) => {
                    tracing::error!(error = %error, "context keys unusable; no context envelope is trusted");
                    ContextKeys::default()
                }
                Err(error) => {
                    tracing::error!(error = %error, "context keys unavailable; no context envelope is trusted");
                    ContextKeys::default()
                }
            }
        }
        None => ContextKeys::default(),
    };
    if config.trusted_keys.is_none() {
        tracing::warn!("PORTCULLIS_TRUSTED_KEYS is not set: manifests are not verified");
    }
    tracing::info!(store = %store.url(), baseline = baseline.as_ref().map(|b| b.url()), refresh_secs = config.refresh.as_secs(), compat = %engine.compat(), trusted_keys = ?config.trusted_keys, artifact_key = artifact_key.is_some(), "portcullis starting");
    let mut gate = Handler::builder(store)
        .engine(engine)
        .config(config.handler)
        .registry(RegistryConfig {
            refresh: config.refresh,
            write_back: config.write_back,
            baseline,
            trusted_keys: config.trusted_keys,
            artifact_key,
            max_loaded_rules: config.max_loaded_rules,
        })
        .context(ContextVerifier::new(context_keys, config.context));
    if let Some(capture) = config.capture {
        let sink = match &config.store {
            StoreUrl::Dir(path) => portcullis_aws::dir_capture(path),
            StoreUrl::S3 { .. } => config.store.capture_sink(
                aws.get_or_init(portcullis_aws::sdk_config).await,
                config.store_timeout,
                config.capture_kms_key,
            ),
        };
        tracing::info!(
            tenants = capture.rates.len(),
            "capturing sign-ins for replay"
        );
        gate = gate.capture(capture, sink);
    }
    // Without a client, rules' lookups fail (their `on_error` or fallback decides): never
    // the whole function.
    match (&config.lookup_origins, HyperClient::new()) {
        (None, _) => {}
        (Some(_), Err(error)) => {
            tracing::error!(error = %error, "no HTTP client for rules' lookups");
        }
        (Some(origins), Ok(client)) => {
            let secrets = ManagedSecrets::from_config(
                aws.get_or_init(portcullis_aws::sdk_config).await,
                &config.secret_prefix,
            );
            gate = gate.lookups(Lookups::new(
                Arc::new(client),
                Some(Arc::new(secrets)),
                origins.clone(),
            ));
        }
    }
    if config.data_table.is_some()
        || config.activity_table.is_some()
        || config.counter_table.is_some()
    {
        let dynamo =
            portcullis_aws::dynamo::client(aws.get_or_init(portcullis_aws::sdk_config).await);
        if let Some(table) = &config.data_table {
            gate = gate.data(Arc::new(DynamoData::new(
                dynamo.clone(),
                table,
                config.data_cache,
            )));
        }
        if let Some(table) = &config.counter_table {
            gate = gate.counters(Arc::new(DynamoCounters::new(dynamo.clone(), table)));
        }
        if let Some(table) = &config.activity_table {
            let mut recorder = DynamoRecorder::new(dynamo, table, config.audit);
            if let Some(ttl) = config.location {
                recorder = recorder.with_location(ttl);
            }
            gate = gate.recorder(Arc::new(recorder));
        }
    }
    gate.build()
}

/// What the function has counted since it last reported (metrics are deltas).
static COUNTED: std::sync::Mutex<Option<(u64, u64, u64)>> = std::sync::Mutex::new(None);

/// The function's counters since the last invocation: the first invocation of an instance
/// is its cold start.
fn function_counters(handler: &Handler) -> FunctionCounters {
    let now = (
        handler.registry().refresh_failures(),
        handler.registry().artifact_refusals(),
        handler.registry().unloaded_sets(),
    );
    let mut counted = COUNTED.lock().unwrap_or_else(|p| p.into_inner());
    let before = counted.replace(now);
    let (failures, refusals, unloaded) = before.unwrap_or((0, 0, 0));
    FunctionCounters {
        cold_starts: u64::from(before.is_none()),
        refresh_failures: now.0.saturating_sub(failures),
        artifact_refusals: now.1.saturating_sub(refusals),
        rule_sets_unloaded: now.2.saturating_sub(unloaded),
        last_known_good_age_s: handler.registry().last_known_good_age().as_secs(),
    }
}

async fn invoke(
    handler: &Handler,
    outbox: &Outbox,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let deadline = deadline_instant(event.context.deadline);
    let answer = handler.handle(event.payload, deadline).await;
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    // The decision record and the metrics (CloudWatch Embedded Metric Format: metrics
    // from log lines, no API call) are written once the answer is out (`after.rs`).
    outbox.post(Report {
        answered_ok: answer.response.is_ok(),
        function: function_counters(handler),
        at_ms,
        record: answer.record,
    });
    answer.response.map_err(|message| Diagnostic {
        error_type: "SignInBlocked".into(),
        error_message: message,
    })
}

/// The invocation deadline (milliseconds since the Unix epoch) as an `Instant`.
fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let left = u128::from(deadline_ms).checked_sub(now_ms)?;
    Instant::now().checked_add(Duration::from_millis(u64::try_from(left).ok()?))
}
