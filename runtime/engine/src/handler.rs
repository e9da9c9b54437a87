//! The trigger handler: one Cognito event in, Cognito's answer out, and one decision record.
//!
//! This is the code the Lambda runs for every invocation and `portcullis handle` runs
//! locally. Data flows one way: event → tenant → rules → chain → response.
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
//! A failure of Portcullis itself (unreadable event, rules that cannot be loaded) follows
//! [`FailMode`], with a generic client-safe message; the detail goes to the log.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::activity::{AuditEntry, Recorder, SignIn};
use crate::chain::{ChainOutcome, Decision, Effect, Rule, evaluate_rules_with};
use crate::cognito::{self, Event, EventKind};
use crate::contract::Trigger;
use crate::data::{DataSource, prefetch};
use crate::outcome::Outcome;
use crate::registry::{Lookup, Registry, RuleSet};
use crate::sandbox::Engine;
use crate::store::TenantId;

/// How long Cognito waits for a trigger's answer.
pub const COGNITO_WAITS: Duration = Duration::from_secs(5);

/// The client-safe message when Portcullis itself fails closed.
pub const UNAVAILABLE_MESSAGE: &str = crate::chain::FAIL_CLOSED_MESSAGE;

/// Where the tenant of a sign-in comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantFrom {
    /// The user pool id (a pool per tenant).
    UserPool,
    /// The app client id (a client per tenant).
    ClientId,
    /// A user attribute such as `custom:tenant_id`. It must not be writable by app
    /// clients, or users could pick their tenant.
    Attribute(String),
}

impl std::str::FromStr for TenantFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user-pool" => Ok(TenantFrom::UserPool),
            "client-id" => Ok(TenantFrom::ClientId),
            other => match other.strip_prefix("attribute:") {
                Some(attr) if !attr.is_empty() => Ok(TenantFrom::Attribute(attr.to_owned())),
                _ => Err(format!(
                    "`{other}` is not user-pool, client-id or attribute:NAME"
                )),
            },
        }
    }
}

/// What a failure means when there is no rule-level `on_error` to consult.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Let the sign-in through (logged).
    Open,
    /// Block the sign-in with a generic message.
    Closed,
}

impl std::str::FromStr for FailMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" | "allow" => Ok(FailMode::Open),
            "closed" | "deny" => Ok(FailMode::Closed),
            other => Err(format!("`{other}` is not open or closed")),
        }
    }
}

/// Handler settings.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// Tenant resolution.
    pub tenant_from: TenantFrom,
    /// A tenant with no manifest (or no resolvable tenant): open runs only the `_global`
    /// rules (with a warning), closed blocks.
    pub missing_tenant: FailMode,
    /// Portcullis failures: unreadable events, rules that cannot be loaded.
    pub fail_mode: FailMode,
    /// The longest a chain may run.
    pub max_chain: Duration,
    /// Time kept back from the invocation's deadline for answering.
    pub safety_margin: Duration,
    /// The longest the data prefetch may take (also capped by half the chain's time).
    pub data_timeout: Duration,
    /// The longest an activity or audit write may hold the answer back.
    pub record_timeout: Duration,
    /// Per-tenant overrides of `fail_mode`.
    pub tenant_fail_modes: std::collections::HashMap<TenantId, FailMode>,
    /// `_global` rules must be loaded: without them a sign-in follows the fail mode.
    pub require_global: bool,
    /// What tenant rules may put into tokens.
    pub tokens: crate::namespace::TokenPolicy,
    /// Token changes the event cannot carry (access-token changes in V1): `open` delivers
    /// the rest and records the drop, `closed` blocks token issuance.
    pub dropped_changes: FailMode,
    /// App client → tenant. When set, a tenant resolved from an attribute must be the
    /// tenant of the app client the sign-in came through (an unlisted client fails closed).
    pub client_tenants: std::collections::HashMap<String, TenantId>,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            tenant_from: TenantFrom::Attribute("custom:tenant_id".into()),
            missing_tenant: FailMode::Open,
            fail_mode: FailMode::Closed,
            max_chain: Duration::from_millis(3000),
            safety_margin: Duration::from_millis(300),
            data_timeout: Duration::from_millis(500),
            record_timeout: Duration::from_millis(300),
            tenant_fail_modes: std::collections::HashMap::new(),
            require_global: false,
            tokens: crate::namespace::TokenPolicy::default(),
            dropped_changes: FailMode::Open,
            client_tenants: std::collections::HashMap::new(),
        }
    }
}

/// One rule's line in the decision record. No user attribute values, no claim values.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRecord {
    /// The rule.
    pub rule: String,
    /// `global` (a `_global` rule) or `tenant`.
    pub origin: crate::chain::Origin,
    /// `enforce` or `shadow`.
    pub mode: crate::chain::Mode,
    /// What became of it.
    pub effect: Effect,
    /// `allow`, `deny`, `timeout`, …
    pub outcome: &'static str,
    /// The failure, for failed rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time in microseconds.
    pub duration_us: u64,
    /// Peak linear memory in bytes.
    pub peak_memory: usize,
    /// Log lines the rule wrote.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

/// The decision record: one per invocation, logged as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// The tenant, when resolved.
    pub tenant: Option<String>,
    /// The raw trigger source.
    pub trigger: String,
    /// The tenant's manifest revision, when it has one.
    pub revision: Option<u64>,
    /// The `_global` manifest revision, when there is one.
    pub global_revision: Option<u64>,
    /// `allow`, `deny`, `pass` (trigger not handled) or `error` (Portcullis failed).
    pub decision: &'static str,
    /// The rule that denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    /// Rule reports, in order.
    pub rules: Vec<RuleRecord>,
    /// Claims one rule set and a later one changed (names only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<crate::chain::Conflict>,
    /// Whether the tenant's rules came from the baseline store.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
    /// Portcullis-level problems (not rule failures).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Wall time of the whole invocation in microseconds.
    pub duration_us: u64,
    /// Of which: reading, verifying and compiling (or loading precompiled) the rules.
    pub load_us: u64,
    /// Of which: running the chain.
    pub rules_us: u64,
}

/// The handler's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `Ok(response)` for Cognito, or `Err(message)`: block with this client-safe message.
    pub response: Result<Value, String>,
    /// The decision record.
    pub record: DecisionRecord,
}

/// The trigger handler.
#[derive(Debug)]
pub struct Handler {
    engine: Arc<Engine>,
    registry: Registry,
    config: HandlerConfig,
    data: Option<Arc<dyn DataSource>>,
    recorder: Option<Arc<dyn Recorder>>,
}

impl Handler {
    /// A handler over `registry` (which reads the rules) with `engine` running them.
    pub fn new(engine: Arc<Engine>, registry: Registry, config: HandlerConfig) -> Handler {
        Handler {
            engine,
            registry,
            config,
            data: None,
            recorder: None,
        }
    }

    /// Rules' declared data is fetched from `source`.
    pub fn with_data(mut self, source: Arc<dyn DataSource>) -> Handler {
        self.data = Some(source);
        self
    }

    /// Sign-in activity and audit entries go to `recorder`.
    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder>) -> Handler {
        self.recorder = Some(recorder);
        self
    }

    /// The rule registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Handles one event. `deadline` is the invocation's own deadline, if any.
    pub async fn handle(&self, event: Value, deadline: Option<Instant>) -> Answer {
        let start = Instant::now();
        let mut record = DecisionRecord {
            tenant: None,
            trigger: event
                .get("triggerSource")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            revision: None,
            global_revision: None,
            decision: "allow",
            denied_by: None,
            rules: Vec::new(),
            conflicts: Vec::new(),
            baseline: false,
            problems: Vec::new(),
            duration_us: 0,
            load_us: 0,
            rules_us: 0,
        };
        // Read before the event moves into `decide`, and only when there is an audit.
        // The typed name of an unknown user is often a mistyped password: never stored.
        let unknown_user = event
            .pointer("/request/userNotFound")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let user = self.recorder.as_ref().map(|_| {
            match unknown_user {
                true => "",
                false => event.get("userName").and_then(Value::as_str).unwrap_or(""),
            }
            .to_owned()
        });
        let answer_by = self.answer_by(start, deadline);
        let response = self.decide(event, answer_by, &mut record).await;
        if let Some(user) = user {
            self.audit(&mut record, user, answer_by).await;
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

    /// A registry lookup bounded by the invocation's deadline.
    async fn lookup(&self, tenant: &TenantId, answer_by: Instant) -> Lookup {
        let until = tokio::time::Instant::from_std(answer_by);
        match tokio::time::timeout_at(until, self.registry.get(tenant)).await {
            Ok(lookup) => lookup,
            Err(_) => Lookup::Failed(Arc::new(crate::registry::RefreshError::Deadline)),
        }
    }

    async fn decide(
        &self,
        raw: Value,
        answer_by: Instant,
        record: &mut DecisionRecord,
    ) -> Result<Value, String> {
        let event = match Event::parse(raw) {
            Ok(event) => event,
            Err((error, raw)) => {
                record.problems.push(error.to_string());
                // Post-auth is known from the raw `triggerSource` alone, and never fails.
                let post_auth = raw
                    .get("triggerSource")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.starts_with("PostAuthentication_"));
                let trigger = post_auth.then_some(Trigger::PostAuthentication);
                return self.fail(raw, trigger, None, record);
            }
        };
        let Some(trigger) = event.kind.trigger() else {
            record.decision = "pass";
            record.problems.push(format!(
                "trigger source `{}` is not handled; event returned unchanged",
                event.trigger_source
            ));
            return Ok(event.raw);
        };

        let tenant = match self.resolve_tenant(&event) {
            Ok(tenant) => tenant,
            Err(problem) => {
                record.problems.push(problem);
                if trigger == Trigger::PostAuthentication {
                    record.decision = "error";
                    return Ok(event.raw);
                }
                record.decision = "deny";
                return Err(UNAVAILABLE_MESSAGE.to_owned());
            }
        };
        record.tenant = tenant.as_ref().map(TenantId::to_string);
        let loading = Instant::now();
        let Ok(global) = rules_of(
            self.lookup(&TenantId::global(), answer_by).await,
            "global",
            record,
        ) else {
            return self.fail(event.raw, Some(trigger), tenant.as_ref(), record);
        };
        if global.is_none() && self.config.require_global {
            record.problems.push(
                "global rules are required (PORTCULLIS_REQUIRE_GLOBAL) and none are loaded".into(),
            );
            return self.fail(event.raw, Some(trigger), tenant.as_ref(), record);
        }
        record.global_revision = global.as_ref().map(|s| s.revision);

        // Nothing about a tenant's rules can skip the global ones: loading the tenant's
        // rules must leave the global rules their time, and a tenant whose rules cannot
        // be loaded still gets them (then its fail mode decides what they allowed).
        let global_time = global
            .iter()
            .flat_map(|set| set.rules.iter())
            .filter(|rule| rule.triggers.contains(&trigger))
            .map(|rule| rule.budget.timeout)
            .sum::<Duration>()
            .min(self.config.max_chain);
        let tenant_by = answer_by
            .checked_sub(global_time)
            .unwrap_or(answer_by)
            .max(Instant::now());
        let mut tenant_failed = false;
        let tenant_set = match &tenant {
            None => None,
            Some(tenant) => {
                match rules_of(self.lookup(tenant, tenant_by).await, "tenant", record) {
                    Ok(set) => set,
                    Err(()) => {
                        tenant_failed = true;
                        record.decision = "error";
                        None
                    }
                }
            }
        };
        record.load_us = micros(loading.elapsed());
        record.revision = tenant_set.as_ref().map(|s| s.revision);
        record.baseline = global.iter().chain(tenant_set.iter()).any(|s| s.baseline);
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
                && !event.user_not_found
            {
                record.decision = "deny";
                return Err(UNAVAILABLE_MESSAGE.to_owned());
            }
        }

        let tenant_name = tenant.as_ref().map_or("", TenantId::as_str);
        let now_ms = now_ms();
        let Some(request) = event.to_request(tenant_name, now_ms) else {
            return Ok(event.raw);
        };
        let rules: Vec<&Rule> = global
            .iter()
            .chain(tenant_set.iter())
            .flat_map(|set| set.rules.iter())
            .collect();
        let chain_deadline = self.chain_deadline(answer_by);
        let data_timeout = self
            .config
            .data_timeout
            .min(chain_deadline.saturating_duration_since(Instant::now()) / 2);
        let data = prefetch(
            self.data.as_deref(),
            tenant.as_ref(),
            &rules,
            &request,
            data_timeout,
        )
        .await;
        let mut failed: Vec<String> = data.failed.values().cloned().collect();
        failed.sort();
        failed.dedup();
        for error in failed {
            record.problems.push(format!("data prefetch: {error}"));
        }
        let outcome = evaluate_rules_with(
            rules,
            &self.engine,
            request,
            &data,
            chain_deadline,
            &self.config.tokens,
        );
        fill_record(record, &outcome);
        record.rules_us = micros(outcome.duration);
        if tenant_failed
            && outcome.decision == Decision::Allow
            && trigger != Trigger::PostAuthentication
            && self.fail_mode(tenant.as_ref()) == FailMode::Closed
        {
            return Err(UNAVAILABLE_MESSAGE.to_owned());
        }

        if event.kind == EventKind::PostAuthentication
            && let (Some(recorder), Some(tenant)) = (&self.recorder, &tenant)
            && let Some(user) = &event.user_name
        {
            let sign_in = SignIn {
                tenant: tenant.clone(),
                user: user.clone(),
                new_device: event.new_device_used.unwrap_or(false),
                at_ms: now_ms,
            };
            match self.record_time(answer_by) {
                None => record
                    .problems
                    .push("activity: skipped, the invocation's deadline has passed".to_owned()),
                Some(time) => match tokio::time::timeout(time, recorder.sign_in(&sign_in)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => record.problems.push(format!("activity: {error}")),
                    Err(_) => record.problems.push("activity: timed out".to_owned()),
                },
            }
        }

        match (&outcome.decision, event.kind) {
            (_, EventKind::PostAuthentication) => Ok(event.raw),
            (Decision::Deny { message, .. }, _) => Err(message.clone()),
            (Decision::Allow, EventKind::PreTokenGeneration(version)) => {
                let dropped = dropped_changes(version, &event.trigger_source, &outcome);
                if let Some(dropped) = dropped {
                    record.problems.push(dropped);
                    if self.config.dropped_changes == FailMode::Closed {
                        record.decision = "deny";
                        return Err(UNAVAILABLE_MESSAGE.to_owned());
                    }
                }
                Ok(cognito::token_response(event, &outcome))
            }
            (Decision::Allow, _) => Ok(event.raw),
        }
    }

    /// How long a record write may take: what is left before the deadline, at most
    /// `record_timeout`; `None` once the deadline has passed (the write is skipped).
    fn record_time(&self, answer_by: Instant) -> Option<Duration> {
        let left = answer_by.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| left.min(self.config.record_timeout))
    }

    /// Writes an audit entry for a block and for each failed rule (bounded, never fatal).
    async fn audit(&self, record: &mut DecisionRecord, user: String, answer_by: Instant) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let at_ms = now_ms();
        let entry = |rule: &str, outcome: &str| AuditEntry {
            tenant: record.tenant.clone().unwrap_or_default(),
            user: user.clone(),
            trigger: record.trigger.clone(),
            rule: rule.to_owned(),
            outcome: outcome.to_owned(),
            revision: record.revision,
            at_ms,
        };
        let mut entries: Vec<AuditEntry> = record
            .rules
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| entry(&r.rule, r.outcome))
            .collect();
        match (record.decision, &record.denied_by) {
            ("deny", Some(rule)) if !entries.iter().any(|e| e.rule == *rule) => {
                entries.push(entry(rule, "deny"))
            }
            ("deny", None) | ("error", _) => entries.push(entry("", record.decision)),
            _ => {}
        }
        if entries.is_empty() {
            return;
        }
        let Some(time) = self.record_time(answer_by) else {
            record
                .problems
                .push("audit: skipped, the invocation's deadline has passed".to_owned());
            return;
        };
        match tokio::time::timeout(time, recorder.audit(&entries)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "audit write failed"),
            Err(_) => tracing::warn!("audit write timed out"),
        }
    }

    /// The sign-in's tenant: `Ok(None)` when the event carries none, `Err` (a closed
    /// failure) when it carries a value that is not a tenant id in its canonical form —
    /// invalid characters or white space, a reserved `_…` name such as `_global`, or, from
    /// an attribute, upper case (tenant ids in attributes are lower case, so `Acme` never
    /// falls back to the global rules alone while `acme`'s rules would have blocked).
    fn resolve_tenant(&self, event: &Event) -> Result<Option<TenantId>, String> {
        let (raw, what) = match &self.config.tenant_from {
            TenantFrom::UserPool => (Some(event.user_pool_id.as_str()), "user pool id"),
            TenantFrom::ClientId => (event.client_id.as_deref(), "app client id"),
            TenantFrom::Attribute(name) => (event.attr(name), "tenant attribute"),
        };
        let Some(raw) = raw else {
            return Ok(None);
        };
        let reserved = raw.starts_with('_');
        let from_attribute = matches!(self.config.tenant_from, TenantFrom::Attribute(_));
        let upper = raw.bytes().any(|b| b.is_ascii_uppercase());
        let canonical = !(reserved || (from_attribute && upper));
        // The value is a user's attribute: never repeat it in the record.
        let tenant = TenantId::new(raw).filter(|_| canonical).ok_or_else(|| {
            format!("the {what} does not name a tenant (refused: invalid or reserved tenant id)")
        })?;
        if !self.config.client_tenants.is_empty()
            && matches!(self.config.tenant_from, TenantFrom::Attribute(_))
        {
            let bound = event
                .client_id
                .as_deref()
                .and_then(|c| self.config.client_tenants.get(c));
            if bound != Some(&tenant) {
                return Err(format!(
                    "the {what} does not match the tenant of the app client (client binding)"
                ));
            }
        }
        Ok(Some(tenant))
    }

    /// When the chain must end: the invocation's deadline, and at most `max_chain` from now.
    fn chain_deadline(&self, answer_by: Instant) -> Instant {
        answer_by.min(Instant::now() + self.config.max_chain)
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
        record.decision = "error";
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
    version: cognito::TokenVersion,
    trigger_source: &str,
    outcome: &ChainOutcome,
) -> Option<String> {
    let access = outcome.access.len() + outcome.scopes.add.len() + outcome.scopes.suppress.len();
    if version == cognito::TokenVersion::V1 && access > 0 {
        return Some(format!(
            "{access} access-token claim and scope changes dropped: a V1_0 event customizes the ID token only"
        ));
    }
    if trigger_source == "TokenGeneration_ClientCredentials" && !outcome.id.is_empty() {
        return Some(format!(
            "{} ID-token claim changes dropped: client credentials issue no ID token",
            outcome.id.len()
        ));
    }
    None
}

/// The rules a lookup gives, noting a stale or failed refresh in the record; `Err` when
/// no rules could be loaded at all (the fail mode decides).
fn rules_of(
    lookup: Lookup,
    which: &str,
    record: &mut DecisionRecord,
) -> Result<Option<Arc<RuleSet>>, ()> {
    match lookup {
        Lookup::Found(set) => Ok(Some(set)),
        Lookup::Missing => Ok(None),
        Lookup::Stale { known, error } => {
            record.problems.push(format!(
                "{which} rules: refresh refused, keeping the last known good rules: {error}"
            ));
            Ok(known)
        }
        Lookup::Failed(error) => {
            record.problems.push(format!("{which} rules: {error}"));
            Err(())
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn fill_record(record: &mut DecisionRecord, outcome: &ChainOutcome) {
    if let Decision::Deny { rule, .. } = &outcome.decision {
        record.decision = "deny";
        record.denied_by = Some(rule.to_string());
    }
    record.conflicts.clone_from(&outcome.conflicts);
    record.rules = outcome
        .reports
        .iter()
        .map(|report| {
            let e = &report.evaluation;
            RuleRecord {
                rule: report.rule.to_string(),
                origin: report.origin,
                mode: report.mode,
                effect: report.effect,
                outcome: e.outcome.kind(),
                error: match &e.outcome {
                    Outcome::Failed(f) => Some(f.to_string()),
                    Outcome::Verdict(_) => None,
                },
                fuel: e.fuel_used,
                duration_us: micros(e.duration),
                peak_memory: e.peak_memory,
                logs: e
                    .logs
                    .iter()
                    .map(|l| format!("{}: {}", l.level.as_str(), l.message))
                    .collect(),
            }
        })
        .collect();
}

impl DecisionRecord {
    /// Writes the record as one structured log line (target `portcullis::decision`).
    pub fn emit(&self) {
        let rules = serde_json::to_string(&self.rules).unwrap_or_default();
        tracing::info!(
            target: "portcullis::decision",
            tenant = self.tenant.as_deref().unwrap_or(""),
            trigger = %self.trigger,
            revision = self.revision,
            global_revision = self.global_revision,
            decision = self.decision,
            denied_by = self.denied_by.as_deref(),
            rules = %rules,
            conflicts = self.conflicts.len(),
            baseline = self.baseline,
            problems = ?self.problems,
            duration_us = self.duration_us,
            load_us = self.load_us,
            rules_us = self.rules_us,
            "decision"
        );
    }
}
