//! `portcullis verify`: checks a store offline the way the Lambda will: every manifest and
//! history revision signed by a trusted key and naming its tenant, the history a chain
//! (each revision's `previous` is the digest of the one before), the current manifest the
//! same as its history entry, every module present and matching its digest, and, with the
//! artifact key, every precompiled artifact authentic.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use portcullis_aws::StoreUrl;
use portcullis_engine::{ArtifactKey, Engine, EngineConfig, Sha256};
use portcullis_gate::manifest::Manifest;
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::trust::{TrustedKeys, manifest_digest};
use serde::Serialize;

use crate::{Exit, input};

/// Arguments of `portcullis verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    store: StoreUrl,
    /// One tenant only.
    #[arg(long)]
    tenant: Option<TenantId>,
    #[command(flatten)]
    keys: input::Keys,
    /// Print JSON (one object per tenant).
    #[arg(long)]
    json: bool,
}

/// What `verify` found for one tenant.
#[derive(Debug, Serialize)]
struct Report {
    tenant: String,
    revision: Option<u64>,
    signed_by: Option<String>,
    problems: Vec<String>,
}

/// Runs `portcullis verify`: exit 0 when everything verifies, 2 when anything is refused.
pub fn run(args: Args) -> Result<Exit> {
    let trusted = args
        .keys
        .trusted()?
        .context("verify checks against the deployment's keys: pass --trusted-keys (or set PORTCULLIS_TRUSTED_KEYS)")?;
    let runtime = input::runtime()?;
    let store = runtime.block_on(input::store(&args.store));
    let artifact_key = runtime.block_on(args.keys.artifact())?;
    let engine = match artifact_key {
        Some(_) => Some(Engine::new(EngineConfig {
            max_concurrent: 2,
            ..EngineConfig::default()
        })?),
        None => None,
    };
    let tenants = match &args.tenant {
        Some(t) => vec![t.clone()],
        None => runtime.block_on(store.tenants())?,
    };
    let mut refused = false;
    for tenant in tenants {
        let report = runtime.block_on(check(
            &store,
            &tenant,
            &trusted,
            engine.as_ref().zip(artifact_key.as_ref()),
        ));
        refused |= !report.problems.is_empty();
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
            continue;
        }
        let mut line = format!(
            "{}  revision {}  ",
            report.tenant,
            report.revision.map_or("-".into(), |r| r.to_string())
        );
        match (&report.signed_by, report.problems.is_empty()) {
            (Some(id), true) => {
                let _ = write!(line, "signed by {id}  ok");
            }
            _ => line.push_str("REFUSED"),
        }
        println!("{line}");
        for problem in &report.problems {
            println!("  {problem}");
        }
    }
    Ok(if refused { Exit::Deny } else { Exit::Allow })
}

async fn check(
    store: &RuleStore,
    tenant: &TenantId,
    trusted: &TrustedKeys,
    artifacts: Option<(&Engine, &ArtifactKey)>,
) -> Report {
    let mut report = Report {
        tenant: tenant.to_string(),
        revision: None,
        signed_by: None,
        problems: Vec::new(),
    };
    let problems = &mut report.problems;
    let current = match store.current(tenant).await {
        Ok(Some(current)) => Some(current.manifest),
        Ok(None) => {
            problems.push("no manifest".into());
            None
        }
        Err(e) => {
            problems.push(format!("manifest: {e}"));
            None
        }
    };
    if let Some(m) = &current {
        report.revision = Some(m.revision);
        match trusted.verify(m, tenant.as_str()) {
            Ok(id) => report.signed_by = Some(id.to_owned()),
            Err(e) => problems.push(format!("manifest: {e}")),
        }
    }
    let mut previous: Option<(u64, Sha256)> = None;
    match store.revisions(tenant).await {
        Err(e) => problems.push(format!("history: {e}")),
        Ok(revisions) => {
            for revision in revisions {
                let m = match store.revision(tenant, revision).await {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => {
                        problems.push(format!("history {revision}: {e}"));
                        continue;
                    }
                };
                if m.revision != revision {
                    problems.push(format!(
                        "history {revision}: holds revision {} (not a revision that was live)",
                        m.revision
                    ));
                }
                if let Err(e) = trusted.verify(&m, tenant.as_str()) {
                    problems.push(format!("history {revision}: {e}"));
                }
                let digest = manifest_digest(&m);
                if let Some((before, before_digest)) = previous
                    && before + 1 == revision
                    && m.previous.as_deref() != Some(format!("sha256:{before_digest}").as_str())
                {
                    problems.push(format!(
                        "history {revision}: does not follow revision {before} (its `previous` names another manifest)"
                    ));
                }
                if current.as_ref().is_some_and(|c| c.revision == revision)
                    && current.as_ref().map(manifest_digest) != Some(digest)
                {
                    problems.push(format!(
                        "the current manifest differs from history {revision}"
                    ));
                }
                previous = Some((revision, digest));
            }
        }
    }
    if let Some(m) = &current {
        modules(store, m, artifacts, problems).await;
    }
    report
}

/// Every module of `m` present and matching its digest; every artifact authentic.
async fn modules(
    store: &RuleStore,
    m: &Manifest,
    artifacts: Option<(&Engine, &ArtifactKey)>,
    problems: &mut Vec<String>,
) {
    for rule in &m.rules {
        let Ok(digest) = rule.module.parse::<Sha256>() else {
            problems.push(format!(
                "rule `{}`: `{}` is not a digest",
                rule.name, rule.module
            ));
            continue;
        };
        match store.module(&digest).await {
            Ok(Some(bytes)) if Sha256::of(&bytes) == digest => {}
            Ok(Some(_)) => problems.push(format!(
                "rule `{}`: module `{digest}` does not match its digest",
                rule.name
            )),
            Ok(None) => problems.push(format!(
                "rule `{}`: module `{digest}` is not in the store",
                rule.name
            )),
            Err(e) => problems.push(format!("rule `{}`: {e}", rule.name)),
        }
        let Some((engine, key)) = artifacts else {
            continue;
        };
        match store.compiled(&engine.compat(), &digest).await {
            Ok(Some(artifact)) => {
                if let Err(e) = engine.load_precompiled(&artifact, &digest, key) {
                    problems.push(format!("rule `{}`: {e}", rule.name));
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(format!("rule `{}`: artifact: {e}", rule.name)),
        }
    }
}
