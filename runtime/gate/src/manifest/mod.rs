//! Tenant manifests: the JSON document that lists a tenant's rules, parsed strictly
//! ([`Manifest`], unknown fields refused) and validated into typed [`RuleSpec`]s.
//!
//! ```json
//! {
//!   "revision": 3,
//!   "rules": [
//!     {
//!       "name": "block-suspended",
//!       "module": "sha256:<64 hex digits>",
//!       "triggers": ["every-sign-in"],
//!       "timeout_ms": 50, "fuel": 20000000, "memory_mb": 64,
//!       "on_error": "deny",
//!       "mode": "enforce",
//!       "config": {"message": "Your account is suspended"},
//!       "data": {"user": "user#{sub}"}
//!     }
//!   ]
//! }
//! ```
//!
//! `triggers` names the contract's triggers (`pre-authentication`, `post-authentication`,
//! `pre-token-generation`) or [`EVERY_SIGN_IN`], every path to a token: a block listed
//! only for pre-authentication is bypassed by refreshes and first federated sign-ins
//! ([`crate::publish::bypasses`]).
//!
//! The JSON Schema is `deploy/manifest.schema.json` (`portcullis schema` prints it).
//! [`diff`] tells two revisions apart rule by rule.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use portcullis_engine::budget::Budget;
use portcullis_engine::contract::{Trigger, UnknownTrigger};
use portcullis_engine::digest::{BadDigest, Sha256};
use portcullis_engine::rule::{BadRuleName, Mode, OnError, Origin, Rule, RuleName};
use portcullis_engine::sandbox::CompiledPolicy;

use crate::data::counters::MAX_COUNTERS_PER_MANIFEST;
use crate::data::lookups::{LookupSpec, MAX_LOOKUPS_PER_MANIFEST};
use crate::data::{CounterSpec, KeyTemplate, LoadedRule, TemplateError};

mod counters;
mod diff;
mod lookups;

pub use counters::{CounterEntry, CounterProblem};
pub use diff::{RuleChange, diff};
pub use lookups::LookupEntry;

/// Most rules one manifest may hold.
pub const MAX_RULES: usize = 64;
/// The longest per-rule timeout.
pub const MAX_TIMEOUT_MS: u64 = 3_000;
/// The largest per-rule memory limit.
pub const MAX_MEMORY_MB: usize = 512;
/// The largest per-rule fuel budget.
pub const MAX_FUEL: u64 = 10_000_000_000;
/// The largest configuration, serialized.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Data aliases one rule may declare.
pub const MAX_DATA_PER_RULE: usize = 16;
/// Data aliases one manifest may declare in all (one chain's fetch takes at most 100 keys).
pub const MAX_DATA_PER_MANIFEST: usize = 100;

/// The manifest's name for every path to a token: pre-authentication (sign-ins through the
/// API, passwordless included) and pre token generation (every token source: sign-ins,
/// managed login and first federated sign-ins, both kinds of refresh, device and
/// new-password sign-ins). A deny in either blocks.
pub const EVERY_SIGN_IN: &str = "every-sign-in";

/// The triggers a manifest's trigger name stands for.
pub fn triggers_named(name: &str) -> Result<&'static [Trigger], UnknownTrigger> {
    const EVERY: &[Trigger] = &[Trigger::PreAuthentication, Trigger::PreTokenGeneration];
    Ok(match name {
        EVERY_SIGN_IN => EVERY,
        name => match name.parse::<Trigger>()? {
            Trigger::PreAuthentication => &[Trigger::PreAuthentication],
            Trigger::PostAuthentication => &[Trigger::PostAuthentication],
            Trigger::PreTokenGeneration => &[Trigger::PreTokenGeneration],
        },
    })
}

/// A tenant manifest as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The tenant the manifest is for; set by `publish` and covered by the signature, so a
    /// manifest cannot be copied to another tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Increases by one with every publish; history keeps every revision.
    pub revision: u64,
    /// The digest of the revision this one replaced (`sha256:<hex>` over its canonical
    /// JSON, see [`crate::trust::manifest_digest`]); absent for a tenant's first revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The rules, in evaluation order.
    pub rules: Vec<RuleEntry>,
    /// Set on a staged canary only (`tenants/<tenant>/canary.json`): this revision decides
    /// for the share of users its terms give, the live revision for the rest. Covered by
    /// the signature, so neither a live manifest nor a canary can pass for the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryTerms>,
    /// The publisher's signature over everything above ([`crate::trust`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ManifestSignature>,
}

/// The terms of a staged canary: which share of a tenant's users its revision decides for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryTerms {
    /// The percentage of the tenant's users (1 to 100) the candidate decides for, chosen by
    /// a stable hash of tenant and user ([`crate::canary::cohort`]).
    pub percent: u8,
}

impl CanaryTerms {
    /// Terms for `percent` of users, if it is 1 to 100.
    pub fn new(percent: u8) -> Result<CanaryTerms, ManifestError> {
        match percent {
            1..=100 => Ok(CanaryTerms { percent }),
            _ => Err(ManifestError::CanaryPercent(percent)),
        }
    }
}

/// A publisher's Ed25519 signature over a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    /// The id of the signing key, as the deployment's trusted keys name it.
    pub key_id: String,
    /// The signature, base64.
    pub ed25519: String,
}

/// One rule as written in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// The rule's name: 1–64 characters of `a-z`, `0-9`, `-`, `_`, `.`; unique in the manifest.
    pub name: String,
    /// The module's sha256 (`sha256:<hex>` or `<hex>`), stored as `modules/<hex>.wasm`.
    pub module: String,
    /// The triggers the rule runs for: `pre-authentication`, `post-authentication`,
    /// `pre-token-generation`, or `every-sign-in` (pre-authentication and pre token
    /// generation: every path to a token).
    pub triggers: Vec<String>,
    /// Wall-clock budget in milliseconds (default 100, at most 3000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Fuel budget (default 20,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Memory limit in MiB (default 64, at most 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<usize>,
    /// `deny` (fail closed, the default) or `allow` (fail open).
    #[serde(default)]
    pub on_error: OnError,
    /// `enforce` (the default) or `shadow` (evaluated and logged, never applied).
    #[serde(default)]
    pub mode: Mode,
    /// The rule's configuration, handed to it as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
    /// Data items the rule needs: alias → key template such as `user#{sub}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Counters the host keeps for the rule (`crate::data::counters`): name → key
    /// template, window and the triggers that count and reset it. The rule reads each as
    /// the data item of its name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, CounterEntry>,
    /// HTTP lookups the host makes for the rule (`crate::data::lookups`): name → URL,
    /// headers, timeout, size cap, cache. The rule reads each answer as the data item of
    /// its name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookups: BTreeMap<String, LookupEntry>,
}

/// A validated rule, ready to be paired with its compiled module.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The name.
    pub name: RuleName,
    /// The module digest.
    pub module: Sha256,
    /// The triggers.
    pub triggers: Vec<Trigger>,
    /// The budget.
    pub budget: Budget,
    /// What its failure means.
    pub on_error: OnError,
    /// Enforce or shadow.
    pub mode: Mode,
    /// The configuration as JSON text.
    pub config: String,
    /// Data aliases and their parsed key templates.
    pub data: Vec<(String, KeyTemplate)>,
    /// Counters.
    pub counters: Vec<CounterSpec>,
    /// HTTP lookups.
    pub lookups: Vec<LookupSpec>,
}

impl RuleSpec {
    /// The rule, from `origin`'s manifest, running `policy` (the module this spec names).
    pub fn into_rule(self, origin: Origin, policy: Arc<CompiledPolicy>) -> LoadedRule {
        LoadedRule {
            rule: Rule {
                name: self.name,
                origin,
                policy,
                triggers: self.triggers,
                budget: self.budget,
                on_error: self.on_error,
                mode: self.mode,
                config: Arc::from(self.config),
            },
            data: self.data,
            counters: self.counters,
            lookups: self.lookups,
        }
    }
}

/// A manifest that cannot be used. Each names the rule and field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not valid JSON or not the manifest's shape.
    #[error("manifest is malformed: {0}")]
    Malformed(String),
    /// Too many rules.
    #[error("manifest has {0} rules, over the limit of {MAX_RULES}")]
    TooManyRules(usize),
    /// More data aliases than one chain's fetch may ask for.
    #[error("manifest declares {0} data items, over the limit of {MAX_DATA_PER_MANIFEST}")]
    TooMuchData(usize),
    /// More counters than one chain may read and change.
    #[error("manifest declares {0} counters, over the limit of {MAX_COUNTERS_PER_MANIFEST}")]
    TooManyCounters(usize),
    /// More lookups than one chain may make.
    #[error("manifest declares {0} lookups, over the limit of {MAX_LOOKUPS_PER_MANIFEST}")]
    TooManyLookups(usize),
    /// A canary's percentage outside 1 to 100.
    #[error("canary percent must be 1 to 100, not {0}")]
    CanaryPercent(u8),
    /// Two rules share a name.
    #[error("rule `{0}` appears twice")]
    DuplicateRule(String),
    /// A field of a rule is invalid.
    #[error("rule `{rule}`: {problem}")]
    Rule {
        /// The rule's name (as written).
        rule: String,
        /// What is wrong.
        #[source]
        problem: RuleProblem,
    },
}

/// What is wrong with one rule of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    /// The name breaks the naming rules.
    #[error(transparent)]
    Name(#[from] BadRuleName),
    /// The module is not a sha256 digest.
    #[error("module: {0}")]
    Module(#[from] BadDigest),
    /// No triggers listed.
    #[error("triggers: list at least one trigger")]
    NoTriggers,
    /// A trigger the contract does not have.
    #[error("triggers: {0}")]
    Trigger(#[from] UnknownTrigger),
    /// A budget field out of its range.
    #[error("{field} must be 1 to {max}, not {value}")]
    OutOfRange {
        /// `timeout_ms`, `fuel` or `memory_mb`.
        field: &'static str,
        /// The largest allowed.
        max: u64,
        /// The value given.
        value: u64,
    },
    /// The configuration is too large.
    #[error("config is {0} bytes, over the limit of {MAX_CONFIG_BYTES}")]
    ConfigTooLarge(usize),
    /// Too many data items.
    #[error("declares {0} data items, over the limit of {MAX_DATA_PER_RULE}")]
    TooMuchData(usize),
    /// A data alias that is empty or too long.
    #[error("data alias `{0}` must be 1 to 64 characters")]
    BadAlias(String),
    /// A counter that cannot be used.
    #[error("counter `{name}`: {problem}")]
    Counter {
        /// The counter's name.
        name: String,
        /// Why.
        problem: CounterProblem,
    },
    /// A lookup that cannot be used.
    #[error("lookup `{name}`: {problem}")]
    Lookup {
        /// The lookup's name.
        name: String,
        /// Why.
        problem: String,
    },
    /// A data key template that cannot be used.
    #[error("data `{alias}`: {source}")]
    Template {
        /// The alias.
        alias: String,
        /// Why.
        #[source]
        source: TemplateError,
    },
}

impl Manifest {
    /// Parses a manifest strictly.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))
    }

    /// Validates every rule.
    pub fn validate(&self) -> Result<Vec<RuleSpec>, ManifestError> {
        if let Some(terms) = self.canary {
            CanaryTerms::new(terms.percent)?;
        }
        if self.rules.len() > MAX_RULES {
            return Err(ManifestError::TooManyRules(self.rules.len()));
        }
        let aliases: usize = self.rules.iter().map(|r| r.data.len()).sum();
        if aliases > MAX_DATA_PER_MANIFEST {
            return Err(ManifestError::TooMuchData(aliases));
        }
        let counters: usize = self.rules.iter().map(|r| r.counters.len()).sum();
        if counters > MAX_COUNTERS_PER_MANIFEST {
            return Err(ManifestError::TooManyCounters(counters));
        }
        let lookups: usize = self.rules.iter().map(|r| r.lookups.len()).sum();
        if lookups > MAX_LOOKUPS_PER_MANIFEST {
            return Err(ManifestError::TooManyLookups(lookups));
        }
        let mut seen = std::collections::HashSet::new();
        let mut specs = Vec::with_capacity(self.rules.len());
        for entry in &self.rules {
            if !seen.insert(entry.name.as_str()) {
                return Err(ManifestError::DuplicateRule(entry.name.clone()));
            }
            specs.push(entry.validate().map_err(|problem| ManifestError::Rule {
                rule: entry.name.clone(),
                problem,
            })?);
        }
        Ok(specs)
    }

    /// The JSON Schema of a manifest, every object's keys in sorted order (so the published
    /// file is the same whichever `serde_json` map a build links).
    pub fn schema() -> serde_json::Value {
        sorted_keys(serde_json::to_value(schemars::schema_for!(Manifest)).unwrap_or_default())
    }
}

/// `value` with every object's keys in sorted order, however the map keeps them.
fn sorted_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sorted_keys(value)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted_keys).collect())
        }
        other => other,
    }
}

impl RuleEntry {
    fn validate(&self) -> Result<RuleSpec, RuleProblem> {
        let name = RuleName::new(&self.name)?;
        let module: Sha256 = self.module.parse()?;
        if self.triggers.is_empty() {
            return Err(RuleProblem::NoTriggers);
        }
        let mut triggers = Vec::new();
        for name in &self.triggers {
            for &trigger in triggers_named(name)? {
                if !triggers.contains(&trigger) {
                    triggers.push(trigger);
                }
            }
        }
        let in_range = |field, value: u64, max: u64| {
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(RuleProblem::OutOfRange { field, max, value })
            }
        };
        let timeout_ms = in_range(
            "timeout_ms",
            self.timeout_ms
                .unwrap_or(Budget::DEFAULT_TIMEOUT.as_millis() as u64),
            MAX_TIMEOUT_MS,
        )?;
        let fuel = in_range("fuel", self.fuel.unwrap_or(Budget::DEFAULT_FUEL), MAX_FUEL)?;
        let memory_mb = in_range(
            "memory_mb",
            self.memory_mb.unwrap_or(Budget::DEFAULT_MEMORY >> 20) as u64,
            MAX_MEMORY_MB as u64,
        )? as usize;
        let config = self.config.to_string();
        if config.len() > MAX_CONFIG_BYTES {
            return Err(RuleProblem::ConfigTooLarge(config.len()));
        }
        if self.data.len() > MAX_DATA_PER_RULE {
            return Err(RuleProblem::TooMuchData(self.data.len()));
        }
        let mut data = Vec::with_capacity(self.data.len());
        for (alias, template) in &self.data {
            if alias.is_empty() || alias.len() > 64 {
                return Err(RuleProblem::BadAlias(alias.clone()));
            }
            let template =
                KeyTemplate::parse(template).map_err(|source| RuleProblem::Template {
                    alias: alias.clone(),
                    source,
                })?;
            data.push((alias.clone(), template));
        }
        let counters = counters::validate(self.counters.iter(), &data)?;
        let taken: Vec<&str> = data
            .iter()
            .map(|(alias, _)| alias.as_str())
            .chain(counters.iter().map(|c| c.name.as_str()))
            .collect();
        let lookups = lookups::validate(self.lookups.iter(), &taken)?;
        Ok(RuleSpec {
            name,
            module,
            triggers,
            budget: Budget {
                fuel,
                timeout: Duration::from_millis(timeout_ms),
                memory_bytes: memory_mb << 20,
            },
            on_error: self.on_error,
            mode: self.mode,
            config,
            data,
            counters,
            lookups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", Sha256::of(b"m"))
    }

    fn manifest(rule: serde_json::Value) -> Result<Vec<RuleSpec>, ManifestError> {
        let doc = serde_json::json!({"revision": 1, "rules": [rule]});
        Manifest::parse(doc.to_string().as_bytes())?.validate()
    }

    #[test]
    fn minimal_rule_gets_defaults() {
        let specs = manifest(serde_json::json!({"name": "r", "module": digest(), "triggers": ["pre-authentication"]})).unwrap();
        assert_eq!(specs[0].budget, Budget::default());
        assert_eq!(specs[0].on_error, OnError::Deny);
        assert_eq!(specs[0].mode, Mode::Enforce);
        assert_eq!(specs[0].config, "null");
    }

    #[test]
    fn unknown_fields_and_bad_values_refused() {
        let base = serde_json::json!({"name": "r", "module": digest(), "triggers": ["pre-authentication"]});
        let with = |k: &str, v: serde_json::Value| {
            let mut r = base.clone();
            r[k] = v;
            manifest(r)
        };
        assert!(matches!(
            with("bogus", 1.into()),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            with("on_error", "maybe".into()),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            with("triggers", serde_json::json!(["sign-up"])),
            Err(ManifestError::Rule { .. })
        ));
        assert!(matches!(
            with("triggers", serde_json::json!([])),
            Err(ManifestError::Rule { .. })
        ));
        assert!(matches!(
            with("module", "abc".into()),
            Err(ManifestError::Rule { .. })
        ));
        assert!(matches!(
            with("timeout_ms", 0.into()),
            Err(ManifestError::Rule { .. })
        ));
        assert!(matches!(
            with("memory_mb", 4096.into()),
            Err(ManifestError::Rule { .. })
        ));
        assert!(matches!(
            with("name", "Bad Name".into()),
            Err(ManifestError::Rule { .. })
        ));
        assert!(matches!(
            with("data", serde_json::json!({"u": "user#{nope}"})),
            Err(ManifestError::Rule { .. })
        ));
    }

    #[test]
    fn duplicate_names_refused() {
        let r = serde_json::json!({"name": "r", "module": digest(), "triggers": ["pre-authentication"]});
        let doc = serde_json::json!({"revision": 1, "rules": [r.clone(), r]});
        let err = Manifest::parse(doc.to_string().as_bytes())
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err, ManifestError::DuplicateRule("r".into()));
    }

    #[test]
    fn published_schema_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/manifest.schema.json"
        );
        let current = serde_json::to_string_pretty(&Manifest::schema()).unwrap() + "\n";
        if std::env::var_os("PORTCULLIS_WRITE_SCHEMA").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let published = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            published == current,
            "deploy/manifest.schema.json is stale: run `PORTCULLIS_WRITE_SCHEMA=1 cargo test -p portcullis-gate --lib manifest`"
        );
    }
}
