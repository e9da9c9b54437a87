//! The vocabulary of rules: a [`Rule`] (a compiled policy with its triggers, budget, mode
//! and configuration), its [`RuleName`], [`Origin`], [`Mode`] and [`OnError`]. A leaf for
//! everything that names rules: the chain here, manifests and the registry in the gate.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::budget::Budget;
use crate::contract::Trigger;
use crate::sandbox::CompiledPolicy;

/// The client-safe message when a rule fails closed (and when Portcullis itself does).
pub const FAIL_CLOSED_MESSAGE: &str = "Sign-in is temporarily unavailable, please try again later";

/// A rule's name: 1–64 characters of `a-z`, `0-9`, `-`, `_`, `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RuleName(String);

/// A rule name that breaks the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule name `{0}` must be 1 to 64 characters of a-z, 0-9, `-`, `_` and `.`")]
pub struct BadRuleName(pub String);

impl RuleName {
    /// Checks and wraps a name.
    pub fn new(name: &str) -> Result<Self, BadRuleName> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if ok {
            Ok(RuleName(name.to_owned()))
        } else {
            Err(BadRuleName(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a rule's verdict counts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Applied.
    #[default]
    Enforce,
    /// Evaluated and reported, never applied.
    Shadow,
}

/// What a failed rule means for the sign-in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Fail closed: block the sign-in with a generic message.
    #[default]
    Deny,
    /// Fail open: ignore the rule and go on.
    Allow,
}

/// Which manifest a rule comes from. Global rules run first for every tenant; a rule's
/// data and failures are its own, keyed by origin and name, so a tenant rule named like a
/// global rule never shares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The `_global` manifest.
    Global,
    /// The tenant's own manifest.
    #[default]
    Tenant,
}

/// A rule's identity within a chain: its origin and its name.
pub type RuleKey = (Origin, RuleName);

/// One rule of a chain: a compiled policy with its triggers, budget and configuration.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name in the manifest.
    pub name: RuleName,
    /// The manifest it comes from.
    pub origin: Origin,
    /// The compiled policy.
    pub policy: Arc<CompiledPolicy>,
    /// The triggers it runs for.
    pub triggers: Vec<Trigger>,
    /// Its budget.
    pub budget: Budget,
    /// What its failure means.
    pub on_error: OnError,
    /// Enforce or shadow.
    pub mode: Mode,
    /// Its configuration, as JSON text (`null` when none).
    pub config: Arc<str>,
}

impl Rule {
    /// The rule's identity in the chain.
    pub fn key(&self) -> RuleKey {
        (self.origin, self.name.clone())
    }
}
