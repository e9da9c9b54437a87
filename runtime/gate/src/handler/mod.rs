//! The trigger handler: one Cognito event in, Cognito's answer out, and one decision record.
//!
//! This is the code the Lambda runs for every invocation and `portcullis handle` runs
//! locally. Data flows one way: event → sign-in and tenant → rules → data → chain →
//! decision → answer, record and side effects.
//!
//! - **Pre authentication**: a deny (or a rule failing closed) blocks: the answer is an
//!   error whose message is client-safe (Cognito shows `PreAuthentication failed with
//!   error <message>.`).
//! - **Post authentication**: rules run for their side effects; the answer is always the
//!   event unchanged, because an error here fails the sign-in in real Cognito.
//! - **Pre token generation**: merged claims go into the response for the event's
//!   version; a deny or a rule failing closed blocks token issuance.
//! - **Any other trigger**: the event unchanged, with a warning.
//!
//! While a tenant has a canary staged ([`crate::canary`]), the user's cohort picks the
//! revision that decides; the other one runs beside it for the record only.
//!
//! A failure of Portcullis itself (unreadable event, rules that cannot be loaded) follows
//! [`FailMode`], with a generic client-safe message; the detail goes to the record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis_engine::chain::{ChainOutcome, Decision, evaluate_rules_with};
use portcullis_engine::contract::{CLIENT_CREDENTIALS_SOURCE, SignIn, Trigger, TrustedContext};
use portcullis_engine::sandbox::Engine;
use serde_json::Value;

use crate::activity::Recorder;
use crate::canary::{self, CanaryRecord, Cohort};
use crate::capture::{self, CaptureConfig, CaptureSink, Captured};
use crate::cognito::{self, Event, EventKind, TokenVersion};
use crate::config::{COGNITO_WAITS, FailMode, HandlerConfig};
use crate::context::ContextVerifier;
use crate::data::counters::CounterStore;
use crate::data::lookups::Lookups;
use crate::data::{DataSource, LoadedRule};
use crate::record::{Decided, DecisionRecord, micros};
use crate::registry::{Lookup, Registry};
use crate::resolve::resolve_tenant;
use crate::tenant::TenantId;

mod effects;
mod lookup;

use lookup::{candidate_of, rules_of};

/// The client-safe message when Portcullis itself fails closed.
pub const UNAVAILABLE_MESSAGE: &str = portcullis_engine::rule::FAIL_CLOSED_MESSAGE;

/// The handler's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `Ok(response)` for Cognito, or `Err(message)`: block with this client-safe message.
    pub response: Result<Value, String>,
    /// The decision record.
    pub record: DecisionRecord,
}

/// The trigger handler. Built with [`Handler::builder`].
#[derive(Debug)]
pub struct Handler {
    pub(crate) engine: Arc<Engine>,
    pub(crate) registry: Registry,
    pub(crate) config: HandlerConfig,
    pub(crate) data: Option<Arc<dyn DataSource>>,
    pub(crate) counters: Option<Arc<dyn CounterStore>>,
    pub(crate) lookups: Option<Arc<Lookups>>,
    pub(crate) recorder: Option<Arc<dyn Recorder>>,
    pub(crate) context: ContextVerifier,
    pub(crate) capture: Option<Capture>,
}

/// Capture for replay: which sign-ins, and where they go.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) config: CaptureConfig,
    pub(crate) sink: Arc<dyn CaptureSink>,
}

/// What a replay of a captured sign-in fixes: the host time and the trusted context the
/// rules saw then (its envelope was verified and removed before it was captured).
#[derive(Debug, Default)]
struct Replayed {
    at_ms: Option<i64>,
    trusted: Option<TrustedContext>,
}

impl Handler {
    /// The rule registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Handles one event. `deadline` is the invocation's own deadline, if any.
    pub async fn handle(&self, event: Value, deadline: Option<Instant>) -> Answer {
        self.run(event, deadline, None).await
    }

    /// Decides a captured sign-in again ([`crate::capture`]): at the host time it was
    /// decided, with the trusted context its rules saw then. Nothing is recorded or
    /// captured.
    pub async fn replay(&self, captured: &Captured) -> Answer {
        let replayed = Replayed {
            at_ms: Some(captured.at_ms),
            trusted: captured.trusted_context(),
        };
        self.run(captured.event.clone(), None, Some(replayed)).await
    }

    async fn run(
        &self,
        event: Value,
        deadline: Option<Instant>,
        replayed: Option<Replayed>,
    ) -> Answer {
        let start = Instant::now();
        // A sleeping helper thread can take longer to wake than a chain: wake it now, so
        // it waits hot for this sign-in's chain.
        self.engine.prime_helpers();
        let mut captured = None;
        let answer_by = self.answer_by(start, deadline);
        let (mut record, response, user) = match Event::parse(event) {
            Ok(event) => {
                let mut record = DecisionRecord::new(event.sign_in.trigger_source.clone());
                // Only when there is an audit. The typed name of an unknown user is often a
                // mistyped password: never stored.
                let user =
                    self.recorder
                        .as_ref()
                        .filter(|_| replayed.is_none())
                        .map(|_| match event.sign_in.user_not_found {
                            true => String::new(),
                            false => event.sign_in.user_name.clone().unwrap_or_default(),
                        });
                let response = self
                    .decide(
                        event,
                        start,
                        answer_by,
                        &mut record,
                        (replayed, &mut captured),
                    )
                    .await;
                (record, response, user)
            }
            Err((error, raw)) => {
                let source = raw.get("triggerSource").and_then(Value::as_str);
                let mut record = DecisionRecord::new(source.unwrap_or("").to_owned());
                record.problems.push(error.to_string());
                // Post-auth is known from the raw `triggerSource` alone, and never fails.
                let trigger = source.and_then(Trigger::from_source);
                let user = self
                    .recorder
                    .as_ref()
                    .filter(|_| replayed.is_none())
                    .map(|_| {
                        let unknown =
                            raw.pointer("/request/userNotFound") == Some(&Value::Bool(true));
                        let name = raw.get("userName").and_then(Value::as_str);
                        name.filter(|_| !unknown).unwrap_or("").to_owned()
                    });
                let response = self.fail(raw, trigger, None, &mut record);
                (record, response, user)
            }
        };
        if let Some(user) = user {
            self.audit(&mut record, &user, answer_by).await;
        }
        if let Some(mut captured) = captured {
            captured.decision = record.decision.as_str().to_owned();
            self.write_capture(captured, answer_by, &mut record).await;
        }
        record.duration_us = micros(start.elapsed());
        Answer { response, record }
    }

    /// The one deadline of an invocation: everything (revalidation, module fetch and
    /// compile, prefetch, chain, records) must be done by then. The Lambda's own deadline
    /// less the safety margin, and never later than Cognito's 5 s less the margin.
    fn answer_by(&self, start: Instant, deadline: Option<Instant>) -> Instant {
        let cognito = start + COGNITO_WAITS.saturating_sub(self.config.safety_margin);
        match deadline.and_then(|d| d.checked_sub(self.config.safety_margin)) {
            Some(d) if d < cognito => d,
            _ => cognito,
        }
    }

    /// The decision for a parsed event, and its answer.
    async fn decide(
        &self,
        event: Event,
        start: Instant,
        answer_by: Instant,
        record: &mut DecisionRecord,
        (replayed, captured): (Option<Replayed>, &mut Option<Captured>),
    ) -> Result<Value, String> {
        let Event {
            raw,
            kind,
            mut sign_in,
        } = event;
        let trigger = match kind.trigger() {
            Ok(trigger) => trigger,
            Err(reason) => {
                record.decision = Decided::Pass;
                record.unhandled = Some(reason);
                tracing::info!(
                    trigger_source = %sign_in.trigger_source,
                    reason = reason.describe(),
                    "trigger not handled"
                );
                return Ok(reason.answer(raw));
            }
        };

        let tenant = match resolve_tenant(
            &self.config.tenant_from,
            &self.config.client_tenants,
            &sign_in,
        ) {
            Ok(tenant) => tenant,
            Err(refused) => {
                record.problems.push(refused.to_string());
                if trigger == Trigger::PostAuthentication {
                    record.decision = Decided::Error;
                    return Ok(raw);
                }
                record.decision = Decided::Deny;
                return Err(UNAVAILABLE_MESSAGE.to_owned());
            }
        };
        record.tenant = tenant.as_ref().map(TenantId::to_string);
        let loading = Instant::now();
        // Nothing about a tenant's rules can skip the global ones: the global and tenant sets
        // are looked up side by side, but once the global rules are known the tenant's
        // lookups must leave them their time, and a tenant whose rules cannot be loaded
        // still gets them (then its fail mode decides what they allowed).
        let (max_chain, require_global) = (self.config.max_chain, self.config.require_global);
        let tenant_by = |global: &Lookup| {
            let set = match global {
                Lookup::Found(set) => Some(set),
                Lookup::Stale { known, .. } => known.as_ref(),
                Lookup::Missing if !require_global => None,
                // The fail mode answers: the tenant's rules would not be used.
                Lookup::Missing | Lookup::Failed(_) => return Instant::now(),
            };
            let global_time = set
                .iter()
                .flat_map(|set| set.rules.iter())
                .filter(|loaded| loaded.rule.triggers.contains(&trigger))
                .map(|loaded| loaded.rule.budget.timeout)
                .sum::<Duration>()
                .min(max_chain);
            answer_by
                .checked_sub(global_time)
                .unwrap_or(answer_by)
                .max(Instant::now())
        };
        let (global, tenant_sets) = self
            .lookup_sets(tenant.as_ref(), answer_by, tenant_by)
            .await;
        let Ok(global) = rules_of(global, "global", record) else {
            return self.fail(raw, Some(trigger), tenant.as_ref(), record);
        };
        if global.is_none() && self.config.require_global {
            record.problems.push(
                "global rules are required (PORTCULLIS_REQUIRE_GLOBAL) and none are loaded".into(),
            );
            return self.fail(raw, Some(trigger), tenant.as_ref(), record);
        }
        record.global_revision = global.as_ref().map(|s| s.revision);

        let mut tenant_failed = false;
        let (tenant_set, candidate) = match tenant_sets {
            None => (None, None),
            Some((live, canary)) => match rules_of(live, "tenant", record) {
                Ok(set) => {
                    let candidate = candidate_of(canary, set.as_ref(), record);
                    (set, candidate)
                }
                Err(()) => {
                    tenant_failed = true;
                    record.decision = Decided::Error;
                    (None, None)
                }
            },
        };
        record.load_us = micros(loading.elapsed());
        // While a canary runs, the user's cohort picks the set that decides; the other one
        // is evaluated beside it.
        let tenant_name = tenant.as_ref().map_or("", TenantId::as_str);
        let cohort = candidate.as_ref().and_then(|c| c.canary).map(|terms| {
            (
                terms.percent,
                canary::cohort(tenant_name, &sign_in, terms.percent),
            )
        });
        let (deciding, beside) = match cohort {
            Some((_, Cohort::Candidate)) => (candidate.clone(), tenant_set.clone()),
            Some((_, Cohort::Live)) => (tenant_set.clone(), candidate.clone()),
            None => (tenant_set.clone(), None),
        };
        let sets = || global.iter().chain(deciding.iter());
        // Compiling this invocation paid for: sets loaded since it started.
        record.compile_us = micros(
            sets()
                .chain(beside.iter())
                .filter(|s| s.loaded_at >= start)
                .map(|s| s.compile)
                .sum(),
        );
        record.revision = deciding.as_ref().map(|s| s.revision);
        record.baseline = sets().any(|s| s.baseline);
        if tenant_set.is_none() && !tenant_failed {
            record.problems.push(match &tenant {
                None => "no tenant could be resolved for this sign-in".to_owned(),
                Some(t) => format!("tenant `{t}` has no manifest"),
            });
            // An unknown user (`userNotFound`, PreventUserExistenceErrors) has no
            // attributes and so no tenant: blocking it here, while real users pass, would
            // tell who has an account. It takes the same path as a real user without a
            // tenant: the global rules.
            if self.config.missing_tenant == FailMode::Closed
                && trigger != Trigger::PostAuthentication
                && !sign_in.user_not_found
            {
                record.decision = Decided::Deny;
                return Err(UNAVAILABLE_MESSAGE.to_owned());
            }
        }

        let replaying = replayed.is_some();
        let (now, trusted) = match replayed {
            Some(replayed) => (replayed.at_ms, replayed.trusted),
            None => (None, None),
        };
        let now = now.or(self.config.clock_ms).unwrap_or_else(now_ms);
        record.context = self.context.apply(&mut sign_in, tenant.as_ref(), now);
        if let Some(trusted) = trusted {
            sign_in.trusted = Some(trusted);
        }
        cognito::stamp(&mut sign_in, tenant_name, now);
        let sign_in = Arc::new(sign_in);
        let rules: Vec<&LoadedRule> = sets().flat_map(|set| set.rules.iter()).collect();
        let beside_rules: Vec<&LoadedRule> = match &beside {
            Some(set) => global
                .iter()
                .chain([set])
                .flat_map(|s| s.rules.iter())
                .collect(),
            None => Vec::new(),
        };
        let chain_deadline = answer_by.min(Instant::now() + self.config.max_chain);
        let data_timeout = self
            .config
            .data_timeout
            .min(chain_deadline.saturating_duration_since(Instant::now()) / 2);
        let fetch = |rules| self.fetch(tenant.as_ref(), rules, &sign_in, data_timeout);
        let prefetching = Instant::now();
        let (data, beside_data) = futures_util::future::join(
            fetch(&rules),
            futures_util::future::OptionFuture::from(beside.as_ref().map(|_| fetch(&beside_rules))),
        )
        .await;
        let declared =
            |r: &&LoadedRule| !(r.data.is_empty() && r.counters.is_empty() && r.lookups.is_empty());
        if rules.iter().chain(&beside_rules).any(declared) {
            record.prefetch_us = micros(prefetching.elapsed()).max(1);
        }
        let mut failed: Vec<&String> = data.failed.values().collect();
        failed.sort();
        failed.dedup();
        for error in failed {
            record.problems.push(format!("data prefetch: {error}"));
        }
        let outcome = evaluate_rules_with(
            rules.iter().map(|loaded| &loaded.rule),
            &self.engine,
            Arc::clone(&sign_in),
            &data,
            chain_deadline,
            &self.config.tokens,
        );
        record.chain(&outcome);
        let mut other = None;
        if let (Some(beside_data), Some((percent, cohort)), Some(candidate)) =
            (beside_data, cohort, &candidate)
        {
            // The other revision, for the record only: never part of the answer.
            let beside = evaluate_rules_with(
                beside_rules.iter().map(|loaded| &loaded.rule),
                &self.engine,
                Arc::clone(&sign_in),
                &beside_data,
                chain_deadline,
                &self.config.tokens,
            );
            let (live, candidate_outcome) = match cohort {
                Cohort::Candidate => (&beside, &outcome),
                Cohort::Live => (&outcome, &beside),
            };
            record.canary = Some(CanaryRecord::new(
                candidate.revision,
                percent,
                cohort,
                live,
                candidate_outcome,
            ));
            other = Some(beside);
        }
        if let (Some(capture), Some(tenant)) = (&self.capture, &tenant)
            && !replaying
            && capture.config.sampled(tenant, &record.decision_id)
        {
            let reads = capture::decided_from(
                [Some(&outcome), other.as_ref()].into_iter().flatten(),
                rules.iter().chain(&beside_rules).copied(),
                &self.config.tenant_from,
                record.canary.is_some(),
                &raw,
            );
            *captured = Some(Captured::new(
                record,
                tenant,
                now,
                capture.config.retention,
                &raw,
                &reads,
                sign_in.trusted.as_ref(),
            ));
        }
        if tenant_failed
            && outcome.decision == Decision::Allow
            && trigger != Trigger::PostAuthentication
            && self.fail_mode(tenant.as_ref()) == FailMode::Closed
        {
            return Err(UNAVAILABLE_MESSAGE.to_owned());
        }
        // A replay decides again; it never counts or records a sign-in that already
        // happened.
        if !replaying && let Some(tenant) = &tenant {
            let reports = &outcome.reports;
            self.count(
                tenant,
                (&rules, reports),
                &sign_in,
                (start, answer_by),
                &raw,
                record,
            )
            .await;
        }
        if kind == EventKind::PostAuthentication
            && !replaying
            && let Some(tenant) = &tenant
        {
            self.activity(tenant, &sign_in, answer_by, record).await;
        }
        self.answer(raw, kind, &sign_in, &outcome, record)
    }

    /// Cognito's answer for the chain's outcome.
    fn answer(
        &self,
        raw: Value,
        kind: EventKind,
        sign_in: &SignIn,
        outcome: &ChainOutcome,
        record: &mut DecisionRecord,
    ) -> Result<Value, String> {
        match (&outcome.decision, kind) {
            (_, EventKind::PostAuthentication) => Ok(raw),
            (Decision::Deny { message, .. }, _) => Err(message.clone()),
            (Decision::Allow, EventKind::PreTokenGeneration(version)) => {
                let dropped = dropped_changes(version, &sign_in.trigger_source, outcome);
                if let Some(dropped) = dropped {
                    record.problems.push(dropped);
                    if self.config.dropped_changes == FailMode::Closed {
                        record.decision = Decided::Deny;
                        return Err(UNAVAILABLE_MESSAGE.to_owned());
                    }
                }
                Ok(crate::tokens::token_response(
                    raw,
                    kind,
                    &sign_in.trigger_source,
                    outcome,
                ))
            }
            (Decision::Allow, _) => Ok(raw),
        }
    }

    /// The fail mode for `tenant` (its override, else the deployment's).
    fn fail_mode(&self, tenant: Option<&TenantId>) -> FailMode {
        tenant
            .and_then(|t| self.config.tenant_fail_modes.get(t).copied())
            .unwrap_or(self.config.fail_mode)
    }

    /// A Portcullis failure: post-auth never fails; otherwise the fail mode decides.
    fn fail(
        &self,
        raw: Value,
        trigger: Option<Trigger>,
        tenant: Option<&TenantId>,
        record: &mut DecisionRecord,
    ) -> Result<Value, String> {
        record.decision = Decided::Error;
        if trigger == Some(Trigger::PostAuthentication) || self.fail_mode(tenant) == FailMode::Open
        {
            return Ok(raw);
        }
        Err(UNAVAILABLE_MESSAGE.to_owned())
    }
}

/// Token changes the event's shape cannot carry: access-token claims and scopes in a V1
/// event (ID token only), ID-token changes in a client-credentials event (no ID token).
fn dropped_changes(
    version: TokenVersion,
    trigger_source: &str,
    outcome: &ChainOutcome,
) -> Option<String> {
    let access = outcome.access.len() + outcome.scopes.add.len() + outcome.scopes.suppress.len();
    if version == TokenVersion::V1 && access > 0 {
        return Some(format!(
            "{access} access-token claim and scope changes dropped: a V1_0 event customizes the ID token only"
        ));
    }
    if trigger_source == CLIENT_CREDENTIALS_SOURCE && !outcome.id.is_empty() {
        return Some(format!(
            "{} ID-token claim changes dropped: client credentials issue no ID token",
            outcome.id.len()
        ));
    }
    None
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
