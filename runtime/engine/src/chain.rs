//! Rule chains: a tenant's rules evaluated in order and their verdicts combined into one
//! [`ChainOutcome`].
//!
//! Combining:
//! - rules run in order; only the rules listed for the request's trigger run;
//! - in pre-authentication and pre token generation the first enforced deny wins and stops
//!   the chain; in post-authentication every rule runs (post-auth never blocks, the caller
//!   only logs a deny);
//! - a failed rule applies its `on_error`: `deny` fails closed with a generic client-safe
//!   message, `allow` fails open and the chain goes on;
//! - claims merge in order, a later rule overriding an earlier one (each override is
//!   reported as a [`Conflict`]); the merged changes stay within Cognito's 5,000 limit;
//! - `shadow` rules run and are reported but never change the decision or the claims;
//! - the whole chain runs under one deadline: a rule never gets more time than is left,
//!   and a rule reached after the deadline fails with a timeout without running.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::budget::Budget;
use crate::contract::{DataItem, GroupOverride, Request, Trigger};
use crate::namespace::{GlobalMarks, TokenPolicy};
use crate::outcome::{Evaluation, Failure, InvalidOutput, Outcome};
use crate::sandbox::{CompiledPolicy, Engine};
use crate::verdict::{ClaimChanges, MAX_CHANGES, ScopeChanges};

/// The client-safe message when a rule fails closed.
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
    pub config: String,
    /// The data it declared: alias and key template.
    pub data: Vec<(String, crate::data::KeyTemplate)>,
}

impl Rule {
    /// A rule from its validated manifest entry and its compiled policy.
    pub fn new(
        spec: crate::manifest::RuleSpec,
        policy: Arc<CompiledPolicy>,
    ) -> Result<Rule, String> {
        let data = spec
            .data
            .into_iter()
            .map(|(alias, template)| {
                crate::data::KeyTemplate::parse(&template)
                    .map(|t| (alias, t))
                    .map_err(|e| format!("rule `{}`: data: {e}", spec.name))
            })
            .collect::<Result<_, _>>()?;
        Ok(Rule {
            name: spec.name,
            origin: Origin::Tenant,
            policy,
            triggers: spec.triggers,
            budget: spec.budget,
            on_error: spec.on_error,
            mode: spec.mode,
            config: spec.config,
            data,
        })
    }

    /// The rule's identity in the chain.
    pub fn key(&self) -> RuleKey {
        (self.origin, self.name.clone())
    }
}

/// Prefetched data for a chain's rules, by rule (origin and name).
#[derive(Debug, Clone, Default)]
pub struct DataSet {
    /// Items per rule.
    pub items: HashMap<RuleKey, Vec<DataItem>>,
    /// Rules whose data could not be fetched, and why: each fails with data-unavailable.
    pub failed: HashMap<RuleKey, String>,
}

/// What became of a rule in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Its verdict was applied.
    Applied,
    /// Its verdict decided the chain (the deny that stopped it).
    Decided,
    /// Shadow mode: reported only.
    Shadowed,
    /// It failed and `on_error: allow` let the chain go on.
    FailedOpen,
    /// It failed and `on_error: deny` blocked the sign-in.
    FailedClosed,
    /// A deny in post-authentication: logged, never blocks.
    Ignored,
}

/// One rule's line in the decision log.
#[derive(Debug, Clone)]
pub struct RuleReport {
    /// The rule.
    pub rule: RuleName,
    /// Its manifest.
    pub origin: Origin,
    /// Its mode.
    pub mode: Mode,
    /// What became of it.
    pub effect: Effect,
    /// The evaluation and its measurements.
    pub evaluation: Evaluation,
}

/// A claim set by an earlier rule and changed by a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// `id` or `access`.
    pub token: &'static str,
    /// The claim name.
    pub claim: String,
    /// The later rule, whose change won.
    pub rule: RuleName,
}

/// The chain's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every enforced rule allowed (or failed open).
    Allow,
    /// A rule denied or failed closed.
    Deny {
        /// The client-safe message.
        message: String,
        /// The rule responsible.
        rule: RuleName,
    },
}

/// The result of a chain: decision, merged claim changes and one report per rule run.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    /// Allow or deny.
    pub decision: Decision,
    /// Merged ID-token changes.
    pub id: ClaimChanges,
    /// Merged access-token changes.
    pub access: ClaimChanges,
    /// Merged scope changes.
    pub scopes: ScopeChanges,
    /// The last group override, if any rule made one.
    pub groups: Option<GroupOverride>,
    /// One report per rule that ran (or was due to run), in order.
    pub reports: Vec<RuleReport>,
    /// Claims overridden between rules.
    pub conflicts: Vec<Conflict>,
    /// Wall time of the whole chain.
    pub duration: Duration,
}

/// Merged claim state while a chain runs.
#[derive(Clone, Default)]
struct Merged {
    id: ClaimChanges,
    access: ClaimChanges,
    scopes: ScopeChanges,
    groups: Option<GroupOverride>,
}

impl Merged {
    fn count(&self) -> usize {
        self.id.len() + self.access.len() + self.scopes.add.len() + self.scopes.suppress.len()
    }
}

/// An ordered list of rules (the `_global` rules first, then the tenant's).
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// The rules in order.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// Evaluates the chain for `request` (whose `config` and `data` are filled per rule).
    pub fn evaluate(
        &self,
        engine: &Engine,
        request: Request,
        data: &DataSet,
        deadline: Instant,
    ) -> ChainOutcome {
        evaluate_rules(&self.rules, engine, request, data, deadline)
    }
}

/// Evaluates borrowed rules in order, as [`Chain::evaluate`] does (no rule is cloned: the
/// handler runs the rule sets it holds), with the default [`TokenPolicy`].
pub fn evaluate_rules<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    engine: &Engine,
    request: Request,
    data: &DataSet,
    deadline: Instant,
) -> ChainOutcome {
    evaluate_rules_with(
        rules,
        engine,
        request,
        data,
        deadline,
        &TokenPolicy::default(),
    )
}

/// Evaluates borrowed rules in order; tenant rules' token changes are checked against
/// `tokens` ([`crate::namespace`]).
pub fn evaluate_rules_with<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    engine: &Engine,
    request: Request,
    data: &DataSet,
    deadline: Instant,
    tokens: &TokenPolicy,
) -> ChainOutcome {
    {
        // Shared with each rule's store while it runs and released when it returns, so
        // filling in the next rule's configuration and data never copies the request.
        let mut request = Arc::new(request);
        let start = Instant::now();
        let trigger = request.trigger;
        let stop_on_deny = trigger != Trigger::PostAuthentication;
        let mut merged = Merged::default();
        let mut namespace = Namespace {
            policy: tokens,
            global: GlobalMarks::default(),
        };
        let mut conflicts = Vec::new();
        let mut reports = Vec::new();
        let mut decision = Decision::Allow;

        for rule in rules.into_iter().filter(|r| r.triggers.contains(&trigger)) {
            let evaluation = match prepare(rule, Arc::make_mut(&mut request), data) {
                Err(failure) => skipped(failure),
                Ok(()) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        skipped(Failure::Timeout(Duration::ZERO))
                    } else {
                        let budget = Budget {
                            timeout: rule.budget.timeout.min(remaining),
                            ..rule.budget
                        };
                        engine.evaluate(&rule.policy, &request, &budget)
                    }
                }
            };
            let (effect, evaluation) = if rule.mode == Mode::Shadow {
                (Effect::Shadowed, evaluation)
            } else {
                apply(
                    rule,
                    evaluation,
                    (trigger, request.tenant.as_str()),
                    &mut namespace,
                    &mut merged,
                    &mut conflicts,
                    &mut decision,
                )
            };
            reports.push(RuleReport {
                rule: rule.name.clone(),
                origin: rule.origin,
                mode: rule.mode,
                effect,
                evaluation,
            });
            if stop_on_deny && decision != Decision::Allow {
                break;
            }
        }

        ChainOutcome {
            decision,
            id: merged.id,
            access: merged.access,
            scopes: merged.scopes,
            groups: merged.groups,
            reports,
            conflicts,
            duration: start.elapsed(),
        }
    }
}

/// Fills the rule's configuration and data into the request.
fn prepare(rule: &Rule, request: &mut Request, data: &DataSet) -> Result<(), Failure> {
    request.config.clone_from(&rule.config);
    request.data.clear();
    let key = rule.key();
    if let Some(error) = data.failed.get(&key) {
        return Err(Failure::DataUnavailable(error.clone()));
    }
    if let Some(items) = data.items.get(&key) {
        request.data.extend(items.iter().cloned());
    }
    Ok(())
}

fn skipped(failure: Failure) -> Evaluation {
    Evaluation {
        outcome: Outcome::Failed(failure),
        fuel_used: 0,
        duration: Duration::ZERO,
        peak_memory: 0,
        logs: Vec::new(),
        logs_dropped: 0,
    }
}

/// The token namespace while a chain runs: the policy, and what global rules set so far.
struct Namespace<'p> {
    policy: &'p TokenPolicy,
    global: GlobalMarks,
}

/// Applies an enforced rule's evaluation to the chain state.
fn apply(
    rule: &Rule,
    mut evaluation: Evaluation,
    (trigger, tenant): (Trigger, &str),
    namespace: &mut Namespace<'_>,
    merged: &mut Merged,
    conflicts: &mut Vec<Conflict>,
    decision: &mut Decision,
) -> (Effect, Evaluation) {
    let first_deny = *decision == Decision::Allow;
    let deny = |message: String, decision: &mut Decision| {
        if first_deny {
            *decision = Decision::Deny {
                message,
                rule: rule.name.clone(),
            };
        }
    };
    let verdict = match &evaluation.outcome {
        Outcome::Failed(_) => {
            return match rule.on_error {
                OnError::Allow => (Effect::FailedOpen, evaluation),
                OnError::Deny => {
                    deny(FAIL_CLOSED_MESSAGE.to_owned(), decision);
                    (Effect::FailedClosed, evaluation)
                }
            };
        }
        Outcome::Verdict(verdict) => verdict,
    };
    if let Some(message) = &verdict.deny {
        deny(message.clone(), decision);
        let effect = if trigger == Trigger::PostAuthentication {
            Effect::Ignored
        } else {
            Effect::Decided
        };
        return (effect, evaluation);
    }
    let checked = match rule.origin {
        Origin::Tenant => namespace.policy.check(tenant, verdict, &namespace.global),
        Origin::Global => Ok(()),
    };
    match checked.and_then(|()| merge(rule, verdict, merged)) {
        Ok((next, new_conflicts)) => {
            if rule.origin == Origin::Global {
                namespace.global.mark(verdict);
            }
            *merged = next;
            conflicts.extend(new_conflicts);
            (Effect::Applied, evaluation)
        }
        // Outside the tenant's namespace, or over Cognito's limit once merged: the rule
        // failed, and its `on_error` decides.
        Err(invalid) => {
            evaluation.outcome = Outcome::Failed(Failure::InvalidOutput(invalid));
            apply(
                rule,
                evaluation,
                (trigger, tenant),
                namespace,
                merged,
                conflicts,
                decision,
            )
        }
    }
}

/// The chain's token changes with `verdict`'s merged in (a later rule overrides an earlier
/// one, each override a [`Conflict`]), refused over Cognito's limit. `merged` itself is
/// untouched, so a refused verdict leaves nothing behind.
fn merge(
    rule: &Rule,
    verdict: &crate::verdict::Verdict,
    merged: &Merged,
) -> Result<(Merged, Vec<Conflict>), InvalidOutput> {
    let mut next = merged.clone();
    let mut new_conflicts = Vec::new();
    for (token, changes, target) in [
        ("id", &verdict.id, &mut next.id),
        ("access", &verdict.access, &mut next.access),
    ] {
        for (name, value) in &changes.add {
            if target.set(name.clone(), value.clone()) {
                new_conflicts.push(Conflict {
                    token,
                    claim: name.clone(),
                    rule: rule.name.clone(),
                });
            }
        }
        for name in &changes.suppress {
            if target.remove(name.clone()) {
                new_conflicts.push(Conflict {
                    token,
                    claim: name.clone(),
                    rule: rule.name.clone(),
                });
            }
        }
    }
    for scope in &verdict.scopes.add {
        next.scopes.suppress.retain(|s| s != scope);
        if !next.scopes.add.contains(scope) {
            next.scopes.add.push(scope.clone());
        }
    }
    for scope in &verdict.scopes.suppress {
        next.scopes.add.retain(|s| s != scope);
        if !next.scopes.suppress.contains(scope) {
            next.scopes.suppress.push(scope.clone());
        }
    }
    if verdict.groups.is_some() {
        next.groups.clone_from(&verdict.groups);
    }
    let count = next.count();
    if count > MAX_CHANGES {
        return Err(InvalidOutput::TooManyChanges {
            count,
            limit: MAX_CHANGES,
        });
    }
    Ok((next, new_conflicts))
}
