//! `portcullis handle`: the Lambda's exact handler, run locally on one event against a
//! store (a local directory, or S3). Prints what Cognito would receive, or the message a blocked user would see.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use portcullis_aws::StoreUrl;
use portcullis_aws::dynamo::DynamoData;
use portcullis_gate::context::{ContextConfig, ContextKeys, ContextStatus, ContextVerifier};
use portcullis_gate::registry::RegistryConfig;
use portcullis_gate::{FailMode, Handler, HandlerConfig, TenantFrom};

use crate::{Exit, input};

/// Arguments of `portcullis handle`.
#[derive(clap::Args)]
pub struct Args {
    /// The store: a directory, file://DIR or s3://bucket/prefix.
    #[arg(long)]
    store: StoreUrl,
    /// A DynamoDB table of rule data (AWS environment), for rules that declare data.
    #[arg(long)]
    data_table: Option<String>,
    /// The Cognito event (AWS-shaped JSON).
    #[arg(long)]
    event: PathBuf,
    /// Tenant resolution: user-pool, client-id or attribute:NAME.
    #[arg(long, default_value = "attribute:custom:tenant_id")]
    tenant_from: TenantFrom,
    /// Tenants without a manifest: open (global rules only) or closed.
    #[arg(long, default_value = "open")]
    missing_tenant: FailMode,
    /// Portcullis failures: open or closed.
    #[arg(long, default_value = "closed")]
    fail_mode: FailMode,
    /// Print one JSON object: {"blocked", "response", "record"}.
    #[arg(long)]
    json: bool,
    /// Without loaded `_global` rules, sign-ins follow the fail mode.
    #[arg(long, env = "PORTCULLIS_REQUIRE_GLOBAL")]
    require_global: bool,
    /// The tenants' context keys, a JSON file `{"acme": "KEY"}` (as PORTCULLIS_CONTEXT_KEYS
    /// holds them): envelopes signed with them reach rules as trusted context.
    #[arg(long, env = "PORTCULLIS_CONTEXT_KEYS_FILE")]
    context_keys: Option<PathBuf>,
    #[command(flatten)]
    keys: input::Keys,
}

/// Runs `portcullis handle`.
pub fn run(args: Args) -> Result<Exit> {
    let bytes = input::read(&args.event)?;
    let event: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("`{}` is not JSON: {e}", args.event.display()))?;
    if event
        .get("triggerSource")
        .and_then(|t| t.as_str())
        .is_none()
    {
        anyhow::bail!(
            "`{}` is not a Cognito trigger event: it has no `triggerSource` (see runtime/fixtures/events/)",
            args.event.display()
        );
    }
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let artifact_key = runtime.block_on(args.keys.artifact())?;
    let mut gate = Handler::builder(store)
        .engine(Arc::new(input::engine()?))
        .config(HandlerConfig {
            tenant_from: args.tenant_from,
            missing_tenant: args.missing_tenant,
            fail_mode: args.fail_mode,
            require_global: args.require_global,
            ..HandlerConfig::default()
        })
        .registry(RegistryConfig {
            refresh: Duration::from_secs(60),
            // As the deployed function does: artifacts it compiles (or refuses) are
            // written back, sealed with its key.
            write_back: artifact_key.is_some(),
            artifact_key,
            trusted_keys: args.keys.trusted()?,
            baseline: None,
            ..RegistryConfig::default()
        });
    if let Some(path) = &args.context_keys {
        let text = String::from_utf8(input::read(path)?)
            .map_err(|_| anyhow::anyhow!("`{}` is not text", path.display()))?;
        let keys =
            ContextKeys::parse(&text).map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))?;
        gate = gate.context(ContextVerifier::new(keys, ContextConfig::default()));
    }
    if let Some(table) = &args.data_table {
        let aws = runtime.block_on(portcullis_aws::sdk_config());
        gate = gate.data(Arc::new(DynamoData::new(
            portcullis_aws::dynamo::client(&aws),
            table,
            Duration::ZERO,
        )));
    }
    // Counters last as long as this command: a rule that declares them runs, and its
    // counts start at zero.
    let handler = gate
        .counters(Arc::new(
            portcullis_gate::data::counters::MemoryCounters::new(),
        ))
        .build()?;
    let trigger = event
        .get("triggerSource")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_owned();
    let answer = runtime.block_on(handler.handle(event, None));

    let stage = match trigger.split('_').next() {
        Some("TokenGeneration") => "PreTokenGeneration",
        Some(other) => other,
        None => "Trigger",
    };
    if args.json {
        let (blocked, response) = match &answer.response {
            Ok(r) => (None, Some(r.clone())),
            Err(m) => (Some(format!("{stage} failed with error {m}.")), None),
        };
        let out =
            serde_json::json!({"blocked": blocked, "response": response, "record": answer.record});
        println!("{out}");
    } else {
        match &answer.response {
            // Cognito reads the `response` member of the event it gets back.
            Ok(event) => match event.get("response") {
                Some(response) => println!("allowed; response: {response}"),
                None => println!("allowed"),
            },
            Err(message) => println!("blocked: {stage} failed with error {message}."),
        }
        let r = &answer.record;
        let rules: Vec<String> = r
            .rules
            .iter()
            .map(|x| match x.mode {
                portcullis_engine::Mode::Shadow => format!("{}={} (shadow)", x.rule, x.outcome),
                portcullis_engine::Mode::Enforce => format!("{}={}", x.rule, x.outcome),
            })
            .collect();
        eprintln!(
            "tenant {} rev {} decision {} [{}] {} µs (loading rules {} µs, of which compiling or loading artifacts {} µs; running them {} µs)",
            r.tenant.as_deref().unwrap_or("-"),
            r.revision.map_or("-".into(), |v| v.to_string()),
            r.decision,
            rules.join(", "),
            r.duration_us,
            r.load_us,
            r.compile_us,
            r.rules_us
        );
        for rule in &r.rules {
            for line in &rule.logs {
                eprintln!("log {}: {line}", rule.rule);
            }
        }
        match &r.context {
            Some(ContextStatus::Trusted) => {
                eprintln!("context: trusted (the backend's envelope verified)")
            }
            Some(ContextStatus::Refused(why)) => eprintln!("context: refused, {why}"),
            None => {}
        }
        if let Some(reason) = r.unhandled {
            eprintln!("not handled: {}", reason.describe());
        }
        for problem in &r.problems {
            eprintln!("note: {problem}");
        }
    }
    Ok(if answer.response.is_ok() {
        Exit::Allow
    } else {
        Exit::Deny
    })
}
