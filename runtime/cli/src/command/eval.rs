//! `portcullis eval`: one policy, one Cognito event, production limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use portcullis_engine::Outcome;

use crate::{Exit, input};

/// Arguments of `portcullis eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The policy component (.wasm).
    #[arg(long)]
    policy: PathBuf,
    /// The Cognito event (AWS-shaped JSON of a pre-auth, post-auth or pre-token event).
    #[arg(long)]
    event: PathBuf,
    /// The rule's configuration: JSON, or @FILE.
    #[arg(long)]
    config: Option<String>,
    /// Prefetched data items as a JSON object {"alias": value}, or @FILE.
    #[arg(long)]
    data: Option<String>,
    /// The tenant the rule sees (default: the event's user pool id).
    #[arg(long)]
    tenant: Option<String>,
    #[command(flatten)]
    budget: input::BudgetArgs,
    /// The host time in milliseconds since the Unix epoch (default: now).
    #[arg(long)]
    now_ms: Option<i64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `portcullis eval`.
pub fn run(args: Args) -> Result<Exit> {
    let event = input::event(&args.event)?;
    let tenant = args
        .tenant
        .clone()
        .unwrap_or_else(|| event.sign_in.user_pool_id.clone());
    let now = match args.now_ms {
        Some(ms) => ms,
        None => i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?,
    };
    let Some(sign_in) = event.to_request(&tenant, now) else {
        bail!(
            "trigger source `{}` is not one Portcullis handles",
            event.sign_in.trigger_source
        );
    };
    let input = input::rule_input(args.config.as_deref(), args.data.as_deref())?;
    let engine = input::engine()?;
    let bytes = input::read(&args.policy)?;
    let budget = args
        .budget
        .budget_for(portcullis_engine::Language::of(&bytes))?;
    let policy = match engine.load(&bytes) {
        Ok(policy) => policy,
        Err(error) => {
            if args.json {
                let out = serde_json::json!({"outcome": "load_error", "error": error.to_string()});
                println!("{out}");
            } else {
                println!("load error: {error}");
            }
            return Ok(Exit::RuleFailed);
        }
    };
    let evaluation = engine.evaluate(&policy, &Arc::new(sign_in), &input, &budget);

    if args.json {
        let mut out = evaluation.to_json();
        if let Some(obj) = out.as_object_mut() {
            obj.insert("policy".into(), policy.digest().to_string().into());
        }
        println!("{out}");
    } else {
        print_text(&evaluation);
    }
    Ok(match &evaluation.outcome {
        Outcome::Verdict(v) if v.is_allowed() => Exit::Allow,
        Outcome::Verdict(_) => Exit::Deny,
        Outcome::Failed(_) => Exit::RuleFailed,
    })
}

fn print_text(evaluation: &portcullis_engine::Evaluation) {
    match &evaluation.outcome {
        Outcome::Verdict(v) => {
            match &v.deny {
                None => println!("allow"),
                Some(message) => println!("deny: {message}"),
            }
            for (token, changes) in [("id", &v.id), ("access", &v.access)] {
                for (name, value) in &changes.add {
                    println!("  {token} claim  {name} = {value}");
                }
                for name in &changes.suppress {
                    println!("  {token} suppress  {name}");
                }
            }
            for scope in &v.scopes.add {
                println!("  scope add  {scope}");
            }
            for scope in &v.scopes.suppress {
                println!("  scope suppress  {scope}");
            }
            if let Some(groups) = &v.groups {
                println!("  groups  {:?}", groups.groups);
            }
        }
        Outcome::Failed(failure) => println!("{}: rule {failure}", evaluation.outcome.kind()),
    }
    for line in &evaluation.logs {
        println!("  log {}: {}", line.level.as_str(), line.message);
    }
    println!(
        "fuel {}  time {:.3} ms  peak memory {} KiB",
        evaluation.fuel_used,
        evaluation.duration.as_secs_f64() * 1000.0,
        evaluation.peak_memory / 1024
    );
}
