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
//!   and a rule reached after the deadline fails with a timeout without running;
//! - with helper threads ([`Engine::start_helpers`]) the rules run side by side, and are
//!   still combined as above, one by one in order: the outcome is the same.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::contract::{DataItem, GroupOverride, Trigger};
use crate::namespace::{GlobalMarks, TokenPolicy};
use crate::outcome::{Evaluation, Failure, InvalidOutput, Outcome};
pub use crate::request::{RuleInput, SignIn};
pub use crate::rule::{FAIL_CLOSED_MESSAGE, Mode, OnError, Origin, Rule, RuleKey, RuleName};
use crate::sandbox::Engine;
use crate::sandbox::helpers::{Batch, Task};
use crate::verdict::{ClaimChanges, MAX_CHANGES, ScopeChanges, Verdict};

/// Prefetched data for a chain's rules, by rule (origin and name).
#[derive(Debug, Clone, Default)]
pub struct DataSet {
    /// Items per rule.
    pub items: HashMap<RuleKey, Arc<[DataItem]>>,
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
#[derive(Default)]
struct Merged {
    id: ClaimChanges,
    access: ClaimChanges,
    scopes: ScopeChanges,
    groups: Option<GroupOverride>,
}

/// An ordered list of rules (the `_global` rules first, then the tenant's).
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// The rules in order.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// Evaluates the chain for `sign_in` (each rule's configuration and data beside it).
    pub fn evaluate(
        &self,
        engine: &Engine,
        sign_in: impl Into<Arc<SignIn>>,
        data: &DataSet,
        deadline: Instant,
    ) -> ChainOutcome {
        evaluate_rules(&self.rules, engine, sign_in, data, deadline)
    }
}

/// Evaluates borrowed rules in order, as [`Chain::evaluate`] does (no rule is cloned: the
/// gate runs the rule sets it holds), with the default [`TokenPolicy`].
pub fn evaluate_rules<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    engine: &Engine,
    sign_in: impl Into<Arc<SignIn>>,
    data: &DataSet,
    deadline: Instant,
) -> ChainOutcome {
    evaluate_rules_with(
        rules,
        engine,
        sign_in,
        data,
        deadline,
        &TokenPolicy::default(),
    )
}

/// Evaluates borrowed rules in order; tenant rules' token changes are checked against
/// `tokens` ([`crate::namespace`]). Cedar's `is_authorized(request, policies, entities)`
/// shape: the sign-in, the rules and their already-fetched data in, the outcome out.
pub fn evaluate_rules_with<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    engine: &Engine,
    sign_in: impl Into<Arc<SignIn>>,
    data: &DataSet,
    deadline: Instant,
    tokens: &TokenPolicy,
) -> ChainOutcome {
    // Shared with each rule's store while it runs; each rule's own configuration and data
    // travel beside it.
    let sign_in: Arc<SignIn> = sign_in.into();
    let start = Instant::now();
    let trigger = sign_in.trigger;
    let stop_on_deny = trigger != Trigger::PostAuthentication;
    let mut merged = Merged::default();
    let mut namespace = Namespace {
        policy: tokens,
        global: GlobalMarks::default(),
    };
    let mut conflicts = Vec::new();
    let mut decision = Decision::Allow;

    let rules: Vec<&Rule> = rules
        .into_iter()
        .filter(|r| r.triggers.contains(&trigger))
        .collect();
    // A report per rule at most: the list never grows (and moves its reports) on the way.
    let mut reports = Vec::with_capacity(rules.len());
    let tasks = rules.iter().map(|rule| task_of(rule, data)).collect();
    let batch = Arc::new(Batch::new(Arc::clone(&sign_in), deadline, tasks));
    // With helper threads the rules run side by side; either way they are combined here,
    // one by one in order, and the first deny stops the chain.
    if let Some(helpers) = engine.helpers().filter(|_| rules.len() > 1) {
        helpers.offer(&batch);
    }
    for (i, rule) in rules.into_iter().enumerate() {
        let evaluation = batch.take(i, engine);
        let (effect, evaluation) = if rule.mode == Mode::Shadow {
            (Effect::Shadowed, evaluation)
        } else {
            apply(
                rule,
                evaluation,
                (trigger, sign_in.tenant.as_str()),
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
    batch.finish();

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

/// The rule's task: its policy with its own configuration and data, or why its data is
/// unavailable.
fn task_of(rule: &Rule, data: &DataSet) -> Task {
    let key = rule.key();
    if let Some(error) = data.failed.get(&key) {
        return Task::Skip(Failure::DataUnavailable(error.clone()));
    }
    Task::Run {
        policy: Arc::clone(&rule.policy),
        input: RuleInput {
            config: Arc::clone(&rule.config),
            data: data
                .items
                .get(&key)
                .cloned()
                .unwrap_or_else(|| Arc::from([])),
        },
        budget: rule.budget,
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
    match checked.and_then(|()| within_limit(verdict, merged)) {
        Ok(()) => {
            if rule.origin == Origin::Global {
                namespace.global.mark(verdict);
            }
            merge(&rule.name, verdict, merged, conflicts);
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

/// Refuses `verdict` when the chain's token changes with it merged in would be over
/// Cognito's limit. Counted without merging, so a refused verdict leaves nothing behind
/// and nothing is copied to be able to roll back.
fn within_limit(verdict: &Verdict, merged: &Merged) -> Result<(), InvalidOutput> {
    // A merge adds at most one change per change in the verdict: far from the limit (every
    // chain but a pathological one) nothing needs counting exactly.
    let held = merged.id.len()
        + merged.access.len()
        + merged.scopes.add.len()
        + merged.scopes.suppress.len();
    let offered = verdict.id.len()
        + verdict.access.len()
        + verdict.scopes.add.len()
        + verdict.scopes.suppress.len();
    if held + offered <= MAX_CHANGES {
        return Ok(());
    }
    let count = claims_after(&merged.id, &verdict.id)
        + claims_after(&merged.access, &verdict.access)
        + scopes_after(&merged.scopes, &verdict.scopes);
    if count > MAX_CHANGES {
        return Err(InvalidOutput::TooManyChanges {
            count,
            limit: MAX_CHANGES,
        });
    }
    Ok(())
}

/// How many claims `merged` changes once `changes` are merged into it ([`merge`]'s order:
/// every set, then every suppression).
fn claims_after(merged: &ClaimChanges, changes: &ClaimChanges) -> usize {
    let suppressed: HashSet<&str> = changes.suppress.iter().map(String::as_str).collect();
    let set: HashSet<&str> = changes.add.iter().map(|(n, _)| n.as_str()).collect();
    let added: HashSet<&str> = merged
        .add
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(set.iter().copied())
        .filter(|n| !suppressed.contains(n))
        .collect();
    let still_suppressed = merged
        .suppress
        .iter()
        .map(String::as_str)
        .filter(|n| !set.contains(n) && !suppressed.contains(n))
        .count();
    added.len() + still_suppressed + suppressed.len()
}

/// How many scope changes `merged` has once `changes` are merged into it.
fn scopes_after(merged: &ScopeChanges, changes: &ScopeChanges) -> usize {
    let add: HashSet<&str> = changes.add.iter().map(String::as_str).collect();
    let suppress: HashSet<&str> = changes.suppress.iter().map(String::as_str).collect();
    let added = merged
        .add
        .iter()
        .map(String::as_str)
        .chain(add.iter().copied())
        .filter(|s| !suppress.contains(s))
        .collect::<HashSet<_>>()
        .len();
    let suppressed = merged
        .suppress
        .iter()
        .map(String::as_str)
        .filter(|s| !add.contains(s))
        .chain(suppress.iter().copied())
        .collect::<HashSet<_>>()
        .len();
    added + suppressed
}

/// Merges `verdict`'s token changes into the chain's (a later rule overrides an earlier
/// one, each override a [`Conflict`]). [`within_limit`] has already admitted them.
fn merge(rule: &RuleName, verdict: &Verdict, merged: &mut Merged, conflicts: &mut Vec<Conflict>) {
    for (token, changes, target) in [
        ("id", &verdict.id, &mut merged.id),
        ("access", &verdict.access, &mut merged.access),
    ] {
        for (name, value) in &changes.add {
            if target.set(name.clone(), value.clone()) {
                conflicts.push(Conflict {
                    token,
                    claim: name.clone(),
                    rule: rule.clone(),
                });
            }
        }
        for name in &changes.suppress {
            if target.remove(name.clone()) {
                conflicts.push(Conflict {
                    token,
                    claim: name.clone(),
                    rule: rule.clone(),
                });
            }
        }
    }
    for scope in &verdict.scopes.add {
        merged.scopes.suppress.retain(|s| s != scope);
        if !merged.scopes.add.contains(scope) {
            merged.scopes.add.push(scope.clone());
        }
    }
    for scope in &verdict.scopes.suppress {
        merged.scopes.add.retain(|s| s != scope);
        if !merged.scopes.suppress.contains(scope) {
            merged.scopes.suppress.push(scope.clone());
        }
    }
    if verdict.groups.is_some() {
        merged.groups.clone_from(&verdict.groups);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn changes(add: &[&str], suppress: &[&str]) -> ClaimChanges {
        ClaimChanges {
            add: add.iter().map(|n| ((*n).to_owned(), json!(1))).collect(),
            suppress: suppress.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    fn scopes(add: &[&str], suppress: &[&str]) -> ScopeChanges {
        ScopeChanges {
            add: add.iter().map(|s| (*s).to_owned()).collect(),
            suppress: suppress.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The count `within_limit` admits a verdict by is the count the merge then has.
    #[test]
    fn the_limit_is_counted_as_the_merge_will_be() {
        let names = ["a", "b", "c", "d"];
        let subsets: Vec<Vec<&str>> = (0..16u8)
            .map(|bits| {
                names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, n)| *n)
                    .collect()
            })
            .collect();
        let rule = RuleName::new("r").unwrap();
        for held in subsets.iter().step_by(3) {
            for held_off in subsets.iter().step_by(5) {
                for add in &subsets {
                    for off in subsets.iter().step_by(2) {
                        let mut merged = Merged {
                            id: changes(held, held_off),
                            access: changes(add, held),
                            scopes: scopes(held, off),
                            groups: None,
                        };
                        // Normalise what the chain could hold: merged state comes from merges.
                        let mut start = Merged::default();
                        let seed = Verdict {
                            id: merged.id.clone(),
                            access: merged.access.clone(),
                            scopes: merged.scopes.clone(),
                            ..Verdict::default()
                        };
                        merge(&rule, &seed, &mut start, &mut Vec::new());
                        merged = start;
                        let verdict = Verdict {
                            id: changes(add, off),
                            access: changes(off, add),
                            scopes: scopes(off, add),
                            ..Verdict::default()
                        };
                        let counted = claims_after(&merged.id, &verdict.id)
                            + claims_after(&merged.access, &verdict.access)
                            + scopes_after(&merged.scopes, &verdict.scopes);
                        merge(&rule, &verdict, &mut merged, &mut Vec::new());
                        let actual = merged.id.len()
                            + merged.access.len()
                            + merged.scopes.add.len()
                            + merged.scopes.suppress.len();
                        assert_eq!(
                            counted, actual,
                            "{add:?} {off:?} onto {held:?}/{held_off:?}"
                        );
                    }
                }
            }
        }
    }
}
