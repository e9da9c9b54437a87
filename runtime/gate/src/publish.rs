//! Publishing as a library (the `portcullis` commands call it): a rule's module checked —
//! loaded, described, its triggers against the manifest's, its test cases run — then
//! uploaded content-addressed (and precompiled, sealed: always for JavaScript and Python,
//! which take seconds to compile), its budget completed with its language's defaults, and
//! the manifest published or rolled back (or staged as a canary, promoted, aborted), signed,
//! under the trusted keys' rules. Nothing is written unless every check passed.

use std::sync::Arc;

use portcullis_engine::artifact::ArtifactKey;
use portcullis_engine::budget::Budget;
use portcullis_engine::contract::Trigger;
use portcullis_engine::language::Language;
use portcullis_engine::outcome::Failure;
use portcullis_engine::rule::Mode;
use portcullis_engine::sandbox::{CompiledPolicy, Engine, LoadError};

use crate::cases::{self, Case, RuleUnderTest};
use crate::manifest::{
    CanaryTerms, EVERY_SIGN_IN, Manifest, ManifestError, RuleEntry, triggers_named,
};
use crate::store::{RuleStore, StoreError};
use crate::tenant::TenantId;
use crate::trust::{ManifestSigner, SignatureError, TrustedKeys, follows};

/// Why a publish or rollback was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Trusted keys are configured and no signing key was given.
    #[error(
        "this deployment requires signed manifests (trusted keys are configured): pass --sign-key KEY; nothing was written"
    )]
    Unsigned,
    /// The signing key is not one of the trusted keys.
    #[error("signing key `{key}` is not one of the trusted keys ({trusted}); nothing was written")]
    UntrustedSigner {
        /// The signing key's id.
        key: String,
        /// The trusted keys' ids.
        trusted: String,
    },
    /// A rule's module is not a policy this engine accepts.
    #[error("rule `{rule}`: `{module}` is not a valid policy: {source}")]
    Policy {
        /// The rule.
        rule: String,
        /// The module as the manifest names it.
        module: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// A rule's policy could not describe itself.
    #[error("rule `{rule}`: describe failed: {source}")]
    Describe {
        /// The rule.
        rule: String,
        /// Why.
        #[source]
        source: Failure,
    },
    /// The manifest lists a trigger the policy does not declare it was written for.
    #[error(
        "rule `{rule}`: the manifest runs it for {trigger}, but policy `{policy}` declares only {declared}"
    )]
    UndeclaredTrigger {
        /// The rule.
        rule: String,
        /// The policy's own name.
        policy: String,
        /// The trigger the manifest lists.
        trigger: Trigger,
        /// What the policy declares.
        declared: String,
    },
    /// A rule's test cases failed.
    #[error("rule `{rule}`: {} of {total} tests failed:\n  {}", failures.len(), failures.join("\n  "))]
    TestsFailed {
        /// The rule.
        rule: String,
        /// How many cases ran.
        total: usize,
        /// One line per failed case.
        failures: Vec<String>,
    },
    /// A module named by digest is not in the store.
    #[error("rule `{rule}`: module `{module}` is not in the store")]
    MissingModule {
        /// The rule.
        rule: String,
        /// Its module.
        module: String,
    },
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The rules rolled back to were not signed by a trusted key.
    #[error(
        "revision {revision} of `{tenant}` cannot be rolled back to; nothing was written: {source}"
    )]
    Rollback {
        /// The tenant.
        tenant: TenantId,
        /// The revision asked for.
        revision: u64,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// The tenant has no manifest to roll back.
    #[error("tenant `{0}` has no manifest")]
    NoManifest(TenantId),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A JavaScript or Python module would be published without a precompiled artifact.
    #[error(
        "rule `{rule}` is a {language} component: compiling it takes seconds, longer than a sign-in can wait, so it is published precompiled, sealed with the deployment's artifact key. Pass --artifact-key (for a local store, make one with `portcullis keygen --artifact`), or --no-precompile to let cold starts compile it (they fail closed while they do); nothing was written"
    )]
    NeedsArtifact {
        /// The rule.
        rule: String,
        /// Its module's language.
        language: Language,
    },
    /// `--strict`: enforced rules that block only in pre-authentication.
    #[error("{} (--strict); nothing was written", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Bypassable(Vec<Bypass>),
    /// A canary is staged: publishing past it would leave it following nothing.
    #[error(
        "tenant `{tenant}` has a canary staged (revision {revision}): promote or abort it first; nothing was written"
    )]
    CanaryStaged {
        /// The tenant.
        tenant: TenantId,
        /// The canary's revision.
        revision: u64,
    },
    /// Promote without a staged canary.
    #[error("tenant `{0}` has no canary staged")]
    NoCanary(TenantId),
    /// The staged canary does not follow the live revision (published or rolled back past
    /// it): it decides for no one and cannot be promoted.
    #[error(
        "the canary of `{tenant}` (revision {canary}) does not follow the live revision {live}: abort it and stage it again; nothing was written"
    )]
    CanaryStale {
        /// The tenant.
        tenant: TenantId,
        /// The canary's revision.
        canary: u64,
        /// The live revision.
        live: u64,
    },
    /// The staged canary's signature was refused.
    #[error("the canary of `{tenant}` cannot be promoted; nothing was written: {source}")]
    CanarySignature {
        /// The tenant.
        tenant: TenantId,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// A sealed artifact could not be made.
    #[error("precompiling rule `{rule}`: {source}")]
    Precompile {
        /// The rule.
        rule: String,
        /// Why.
        #[source]
        source: LoadError,
    },
}

/// The paths to a token that never pass pre-authentication, as [`bypasses`] names them.
pub const PATHS_PAST_PRE_AUTHENTICATION: &[&str] = &[
    "token refresh (REFRESH_TOKEN_AUTH: TokenGeneration_RefreshTokens)",
    "refresh-token rotation (GetTokensFromRefreshToken: TokenGeneration_Authentication)",
    "first federated sign-in (TokenGeneration_HostedAuth)",
];

/// An enforced rule that can block in pre-authentication but never runs in pre token
/// generation: the paths in [`PATHS_PAST_PRE_AUTHENTICATION`] issue tokens without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "rule `{rule}` can deny but runs only in pre-authentication: {} issue tokens without it; list `{EVERY_SIGN_IN}` in its triggers to hold the block on every path",
    PATHS_PAST_PRE_AUTHENTICATION.join(", ")
)]
pub struct Bypass {
    /// The rule.
    pub rule: String,
}

/// The enforced rules of `entries` whose block a user can walk around. In pre-authentication
/// a rule's only effect is to deny (or fail closed), so every enforced rule there can deny;
/// shadow rules decide nothing. Unknown trigger names are the manifest validation's error.
pub fn bypasses(entries: &[RuleEntry]) -> Vec<Bypass> {
    entries
        .iter()
        .filter(|entry| entry.mode == Mode::Enforce)
        .filter(|entry| {
            let triggers: Vec<Trigger> = entry
                .triggers
                .iter()
                .filter_map(|name| triggers_named(name).ok())
                .flatten()
                .copied()
                .collect();
            triggers.contains(&Trigger::PreAuthentication)
                && !triggers.contains(&Trigger::PreTokenGeneration)
        })
        .map(|entry| Bypass {
            rule: entry.name.clone(),
        })
        .collect()
}

/// The signing key, checked against the trusted keys before anything is written: when keys
/// are configured, a publish or rollback must be signed by one of them.
pub fn check_signer(
    trusted: Option<&TrustedKeys>,
    signer: Option<&ManifestSigner>,
) -> Result<(), PublishError> {
    match (trusted, signer) {
        (Some(_), None) => Err(PublishError::Unsigned),
        (Some(trusted), Some(signer)) if !trusted.trusts(signer) => {
            Err(PublishError::UntrustedSigner {
                key: signer.id().to_owned(),
                trusted: trusted.ids().collect::<Vec<_>>().join(", "),
            })
        }
        _ => Ok(()),
    }
}

/// Loads a rule's module and checks it against its manifest entry: a valid policy, whose
/// `describe` answers and declares every trigger the entry lists.
pub fn check_policy(
    engine: &Engine,
    entry: &RuleEntry,
    bytes: &[u8],
) -> Result<Arc<CompiledPolicy>, PublishError> {
    let policy = engine.load(bytes).map_err(|source| PublishError::Policy {
        rule: entry.name.clone(),
        module: entry.module.clone(),
        source,
    })?;
    check_compiled(engine, entry, &policy)?;
    Ok(policy)
}

/// Checks a compiled policy against its manifest entry: its `describe` answers and declares
/// every trigger the entry lists.
pub fn check_compiled(
    engine: &Engine,
    entry: &RuleEntry,
    policy: &CompiledPolicy,
) -> Result<(), PublishError> {
    let metadata = engine
        .describe(policy, &Budget::off_path())
        .map_err(|source| PublishError::Describe {
            rule: entry.name.clone(),
            source,
        })?;
    // An unknown name is the manifest's error, reported by its validation.
    let listed = entry
        .triggers
        .iter()
        .filter_map(|name| triggers_named(name).ok())
        .flatten();
    for &trigger in listed {
        if !metadata.triggers.contains(&trigger) {
            return Err(PublishError::UndeclaredTrigger {
                rule: entry.name.clone(),
                policy: metadata.name,
                trigger,
                declared: metadata
                    .triggers
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// Runs `cases` against the rule `entry` with its compiled `policy` (the entry's
/// configuration, budget and `on_error`); every failed case is one line of
/// [`PublishError::TestsFailed`].
pub fn run_tests(
    engine: &Engine,
    entry: &RuleEntry,
    policy: &Arc<CompiledPolicy>,
    cases: &[Case],
) -> Result<(), PublishError> {
    let mut entry = entry.clone();
    entry.module = format!("sha256:{}", policy.digest());
    let spec = Manifest {
        revision: 1,
        rules: vec![entry.clone()],
        ..Manifest::default()
    }
    .validate()?;
    let rule = spec
        .into_iter()
        .next()
        .map(|spec| RuleUnderTest {
            config: spec.config,
            budget: spec.budget,
            on_error: spec.on_error,
        })
        .unwrap_or_default();
    let failures: Vec<String> = cases
        .iter()
        .map(|case| cases::run(engine, policy, &rule, case))
        .filter(|result| !result.passed)
        .map(|result| format!("`{}`: {}", result.name, result.failures.join("; ")))
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    Err(PublishError::TestsFailed {
        rule: entry.name,
        total: cases.len(),
        failures,
    })
}

/// A rule's module, as the publisher has it.
#[derive(Debug, Clone)]
pub enum Module {
    /// The module's bytes (checked with [`check_policy`] and uploaded).
    Bytes(Vec<u8>),
    /// The module's bytes, already compiled and checked against the rule's entry
    /// ([`check_policy`], or [`check_compiled`] on a component compiled elsewhere): uploaded
    /// without compiling it again.
    Checked {
        /// The bytes.
        bytes: Vec<u8>,
        /// The component compiled from them.
        policy: Arc<CompiledPolicy>,
    },
    /// Already in the store under the entry's `module` digest (checked again).
    Stored,
}

/// What [`publish`] does besides publishing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishOptions<'k> {
    /// Seal and store precompiled artifacts of every module for this engine build with this
    /// key. Without it, a module whose language needs precompiling
    /// ([`Language::needs_precompiling`]) is refused, unless `compile_on_cold_start`.
    pub precompile: Option<&'k ArtifactKey>,
    /// Publish JavaScript and Python modules without artifacts anyway.
    pub compile_on_cold_start: bool,
    /// Refuse unless the tenant is at this revision (0: no manifest yet); without it, the
    /// revision read just before writing is expected.
    pub expect_revision: Option<u64>,
    /// Refuse enforced rules that block only in pre-authentication ([`bypasses`]) instead
    /// of leaving the warning to the caller.
    pub strict: bool,
    /// Stage the rules as a canary with these terms instead of making them live
    /// ([`RuleStore::stage_canary`]).
    pub canary: Option<CanaryTerms>,
}

/// Publishes `rules` as `tenant`'s next revision: every module checked and uploaded (and
/// precompiled when asked), the manifest validated, then signed by `signer` and written
/// under the revision check. Returns the published manifest.
pub async fn publish(
    store: &RuleStore,
    engine: &Engine,
    tenant: &TenantId,
    rules: Vec<(RuleEntry, Module)>,
    signer: Option<&ManifestSigner>,
    options: PublishOptions<'_>,
) -> Result<Manifest, PublishError> {
    // Every check before anything is written.
    let mut checked = Vec::with_capacity(rules.len());
    for (mut entry, module) in rules {
        let (bytes, checked_policy) = match module {
            Module::Bytes(bytes) => (bytes, None),
            Module::Checked { bytes, policy } => (bytes, Some(policy)),
            Module::Stored => {
                let missing = || PublishError::MissingModule {
                    rule: entry.name.clone(),
                    module: entry.module.clone(),
                };
                let digest = entry.module.parse().map_err(|_| missing())?;
                (store.module(&digest).await?.ok_or_else(missing)?, None)
            }
        };
        let language = Language::of(&bytes);
        check_precompiling(&entry, language, &options)?;
        let policy = match checked_policy {
            Some(policy) => policy,
            None => check_policy(engine, &entry, &bytes)?,
        };
        entry.module = format!("sha256:{}", policy.digest());
        with_default_budget(&mut entry, language);
        checked.push((entry, bytes, policy));
    }
    let entries: Vec<RuleEntry> = checked.iter().map(|(entry, ..)| entry.clone()).collect();
    Manifest {
        revision: 1,
        rules: entries.clone(),
        ..Manifest::default()
    }
    .validate()?;
    let bypassable = bypasses(&entries);
    if options.strict && !bypassable.is_empty() {
        return Err(PublishError::Bypassable(bypassable));
    }
    let compat = engine.compat();
    let mut entries = Vec::with_capacity(checked.len());
    for (entry, bytes, policy) in checked {
        let digest = store.put_module(bytes).await?;
        if let Some(key) = options.precompile {
            let artifact =
                engine
                    .artifact(&policy, key)
                    .map_err(|source| PublishError::Precompile {
                        rule: entry.name.clone(),
                        source,
                    })?;
            store.put_compiled(&compat, &digest, artifact).await?;
        }
        entries.push(entry);
    }
    let expected = match options.expect_revision {
        Some(revision) => revision,
        None => store
            .current(tenant)
            .await?
            .map_or(0, |c| c.manifest.revision),
    };
    if let Some(terms) = options.canary {
        return Ok(store
            .stage_canary(tenant, entries, expected, terms, signer)
            .await?);
    }
    if let Some(staged) = store.staged(tenant).await? {
        return Err(PublishError::CanaryStaged {
            tenant: tenant.clone(),
            revision: staged.revision,
        });
    }
    Ok(store
        .publish_signed(tenant, entries, expected, signer)
        .await?)
}

/// Makes the tenant's staged canary live: its rules published as the next revision (the
/// revision the canary already carries), signed by `signer`, then the canary ended. With
/// `trusted` keys the canary must be signed by one of them; it must follow the live
/// revision.
pub async fn promote(
    store: &RuleStore,
    tenant: &TenantId,
    trusted: Option<&TrustedKeys>,
    signer: Option<&ManifestSigner>,
) -> Result<Manifest, PublishError> {
    let staged = store
        .staged(tenant)
        .await?
        .ok_or_else(|| PublishError::NoCanary(tenant.clone()))?;
    if let Some(trusted) = trusted {
        trusted.verify(&staged, tenant.as_str()).map_err(|source| {
            PublishError::CanarySignature {
                tenant: tenant.clone(),
                source,
            }
        })?;
    }
    let current = store
        .current(tenant)
        .await?
        .ok_or_else(|| PublishError::NoManifest(tenant.clone()))?;
    if !follows(&staged, &current.manifest) {
        return Err(PublishError::CanaryStale {
            tenant: tenant.clone(),
            canary: staged.revision,
            live: current.manifest.revision,
        });
    }
    let published = store
        .publish_signed(tenant, staged.rules, current.manifest.revision, signer)
        .await?;
    store.end_canary(tenant).await?;
    Ok(published)
}

/// Ends the tenant's staged canary without making it live; the revision it staged, if one
/// was staged.
pub async fn abort(store: &RuleStore, tenant: &TenantId) -> Result<Option<u64>, PublishError> {
    let staged = store.staged(tenant).await?;
    store.end_canary(tenant).await?;
    Ok(staged.map(|m| m.revision))
}

/// Refuses a module whose language needs precompiling ([`Language::needs_precompiling`])
/// when `options` can store no artifact and do not accept compiling on cold starts.
pub fn check_precompiling(
    entry: &RuleEntry,
    language: Language,
    options: &PublishOptions<'_>,
) -> Result<(), PublishError> {
    if language.needs_precompiling()
        && options.precompile.is_none()
        && !options.compile_on_cold_start
    {
        return Err(PublishError::NeedsArtifact {
            rule: entry.name.clone(),
            language,
        });
    }
    Ok(())
}

/// Fills in the fuel and memory a manifest entry leaves out with its module's language's
/// defaults, so the signed manifest states every budget the rule runs under.
pub fn with_default_budget(entry: &mut RuleEntry, language: Language) {
    let budget = language.default_budget();
    entry.fuel.get_or_insert(budget.fuel);
    entry.memory_mb.get_or_insert(budget.memory_bytes >> 20);
}

/// Makes the rules of revision `to` current again, as a new revision signed by `signer`.
/// With `trusted` keys, the rules rolled back to must be rules a trusted key signed once
/// (history is as writable as the manifest).
pub async fn rollback(
    store: &RuleStore,
    tenant: &TenantId,
    to: u64,
    trusted: Option<&TrustedKeys>,
    signer: Option<&ManifestSigner>,
) -> Result<Manifest, PublishError> {
    let current = store
        .current(tenant)
        .await?
        .ok_or_else(|| PublishError::NoManifest(tenant.clone()))?;
    if let Some(trusted) = trusted {
        let old = store
            .revision(tenant, to)
            .await?
            .ok_or_else(|| StoreError::NoSuchRevision {
                tenant: tenant.to_string(),
                revision: to,
            })?;
        trusted
            .verify(&old, tenant.as_str())
            .map_err(|source| PublishError::Rollback {
                tenant: tenant.clone(),
                revision: to,
                source,
            })?;
    }
    let published = store
        .rollback_signed(tenant, to, current.manifest.revision, signer)
        .await?;
    // A rollback is the way back to known good rules: a canary staged on the rules rolled
    // away from ends with it.
    store.end_canary(tenant).await?;
    Ok(published)
}
