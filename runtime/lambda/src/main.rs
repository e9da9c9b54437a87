//! `bootstrap`: the Portcullis Lambda. Cognito calls it as the user pool's
//! PreAuthentication, PostAuthentication and PreTokenGeneration trigger; every invocation
//! goes through [`portcullis_engine::handler::Handler`], the same code `portcullis handle`
//! runs locally. A block is answered with an error whose message is client-safe: Cognito
//! shows it as `PreAuthentication failed with error <message>.`

mod config;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use portcullis_engine::handler::Handler;
use portcullis_engine::store::DirStore;
use portcullis_engine::{Engine, EngineConfig};
use serde_json::Value;

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
    let engine = Arc::new(Engine::new(EngineConfig {
        max_concurrent: 8,
        ..EngineConfig::default()
    })?);
    let store = Arc::new(DirStore::new(&config.store));
    tracing::info!(store = %config.store.display(), refresh_secs = config.refresh.as_secs(), "portcullis starting");
    let handler = Arc::new(Handler::new(engine, store, config.refresh, config.handler));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| {
            let handler = Arc::clone(&handler);
            async move { invoke(&handler, event).await }
        },
    )))
}

async fn invoke(handler: &Handler, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let deadline = deadline_instant(event.context.deadline);
    let answer = handler.handle(event.payload, deadline).await;
    answer.record.emit();
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
