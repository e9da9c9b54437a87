//! `portcullis bench`: how long one rule takes on one event with a fresh instance per
//! evaluation, as production runs it — the median and p99 over many runs, and the fuel.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::{Exit, input};

/// Arguments of `portcullis bench`.
#[derive(clap::Args)]
pub struct Args {
    /// The policy component (.wasm).
    #[arg(long)]
    policy: std::path::PathBuf,
    /// The Cognito event (AWS-shaped JSON).
    #[arg(long)]
    event: std::path::PathBuf,
    /// The rule's configuration (JSON, or @file).
    #[arg(long)]
    config: Option<String>,
    /// Prefetched data items (a JSON object: alias → value, or @file).
    #[arg(long)]
    data: Option<String>,
    /// Timed evaluations (after 10 % as many untimed warm-up ones).
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `portcullis bench`.
pub fn run(args: Args) -> Result<Exit> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let event = input::event(&args.event)?;
    let Some(sign_in) = event.to_request(&event.sign_in.user_pool_id, 1_767_596_400_000) else {
        bail!(
            "trigger source `{}` is not one Portcullis handles",
            event.sign_in.trigger_source
        );
    };
    let rule = input::rule_input(args.config.as_deref(), args.data.as_deref())?;
    let engine = input::engine()?;
    let bytes = input::read(&args.policy)?;
    let policy = match engine.load(&bytes) {
        Ok(policy) => policy,
        Err(error) => {
            eprintln!("load error: {error}");
            return Ok(Exit::RuleFailed);
        }
    };
    let sign_in = Arc::new(sign_in);
    let budget = portcullis_engine::Language::of(&bytes).default_budget();
    let run = || engine.evaluate(&policy, &sign_in, &rule, &budget);
    for _ in 0..args.iterations.div_ceil(10) {
        run();
    }
    let mut times = Vec::with_capacity(args.iterations);
    let mut last = run();
    for _ in 0..args.iterations {
        last = run();
        times.push(last.duration);
    }
    times.sort();
    let at = |q: f64| {
        let index = ((times.len() - 1) as f64 * q).round() as usize;
        times.get(index).copied().unwrap_or_default()
    };
    let (median, p99, min) = (at(0.5), at(0.99), at(0.0));
    let max = times.last().copied().unwrap_or_default();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if args.json {
        let out = serde_json::json!({
            "iterations": args.iterations,
            "outcome": last.outcome.kind(),
            "fuel": last.fuel_used,
            "peak_memory_bytes": last.peak_memory,
            "median_us": us(median),
            "p99_us": us(p99),
            "min_us": us(min),
            "max_us": us(max),
        });
        println!("{out}");
    } else {
        println!(
            "{}: {} evaluations, a fresh instance each: median {:.2} µs, p99 {:.2} µs (min {:.2}, max {:.2}); outcome {}, fuel {}, peak memory {} KiB",
            args.policy.display(),
            args.iterations,
            us(median),
            us(p99),
            us(min),
            us(max),
            last.outcome.kind(),
            last.fuel_used,
            last.peak_memory / 1024
        );
    }
    Ok(Exit::Allow)
}
