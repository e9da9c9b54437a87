//! The handler's side effects after a decision: sign-in activity, audit entries and
//! captures for replay, each bounded by what is left of the invocation's deadline and never
//! fatal to the answer.

use std::time::{Duration, Instant};

use portcullis_engine::chain::RuleReport;
use portcullis_engine::contract::SignIn;

use super::{Handler, now_ms};
use crate::activity::{Location, SignInActivity};
use crate::capture::Captured;
use crate::data::LoadedRule;
use crate::data::counters::{self, Applying, LATE_AFTER};
use crate::record::DecisionRecord;
use crate::tenant::TenantId;

impl Handler {
    /// Applies the counter changes the trigger implies for the deciding rules, then those
    /// their applied verdicts asked for (bounded by the deadline, never fatal).
    pub(super) async fn count(
        &self,
        tenant: &TenantId,
        (rules, reports): (&[&LoadedRule], &[RuleReport]),
        sign_in: &SignIn,
        (start, answer_by): (Instant, Instant),
        raw: &serde_json::Value,
        record: &mut DecisionRecord,
    ) {
        let Some(store) = &self.counters else {
            return;
        };
        let mut changes = counters::changes(rules, sign_in);
        changes.extend(counters::requested(rules, reports, sign_in));
        if changes.is_empty() {
            return;
        }
        let applying = Applying {
            now_ms: sign_in.now_unix_ms,
            event: event_digest(raw),
            late: start.elapsed() > LATE_AFTER,
        };
        let Some(time) = self.record_time(answer_by) else {
            record
                .problems
                .push("counters: skipped, the invocation's deadline has passed".to_owned());
            return;
        };
        match tokio::time::timeout(time, store.apply(tenant, &changes, &applying, time)).await {
            Ok(Ok(applied)) => record.counters = Some(applied),
            Ok(Err(error)) => record.problems.push(format!("counters: {error}")),
            Err(_) => record.problems.push("counters: timed out".to_owned()),
        }
    }

    /// Records a post-authentication sign-in (bounded by the deadline, never fatal).
    pub(super) async fn activity(
        &self,
        tenant: &TenantId,
        sign_in: &SignIn,
        answer_by: Instant,
        record: &mut DecisionRecord,
    ) {
        let (Some(recorder), Some(user)) = (&self.recorder, &sign_in.user_name) else {
            return;
        };
        let activity = SignInActivity {
            tenant: tenant.clone(),
            user: user.clone(),
            new_device: sign_in.new_device_used.unwrap_or(false),
            at_ms: sign_in.now_unix_ms,
            location: Location::of(sign_in.trusted.as_ref()),
        };
        match self.record_time(answer_by) {
            None => record
                .problems
                .push("activity: skipped, the invocation's deadline has passed".to_owned()),
            Some(time) => match tokio::time::timeout(time, recorder.sign_in(&activity)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => record.problems.push(format!("activity: {error}")),
                Err(_) => record.problems.push("activity: timed out".to_owned()),
            },
        }
    }

    /// How long a record write may take: what is left before the deadline, at most
    /// `record_timeout`; `None` once the deadline has passed (the write is skipped).
    fn record_time(&self, answer_by: Instant) -> Option<Duration> {
        let left = answer_by.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| left.min(self.config.record_timeout))
    }

    /// Writes a captured sign-in (bounded, never fatal; the record says when it failed).
    pub(super) async fn write_capture(
        &self,
        captured: Captured,
        answer_by: Instant,
        record: &mut DecisionRecord,
    ) {
        let Some(capture) = &self.capture else {
            return;
        };
        let Some(time) = self.record_time(answer_by) else {
            record
                .problems
                .push("capture: skipped, the invocation's deadline has passed".to_owned());
            return;
        };
        let bytes = match serde_json::to_vec(&captured) {
            Ok(bytes) => bytes,
            Err(error) => return record.problems.push(format!("capture: {error}")),
        };
        match tokio::time::timeout(time, capture.sink.put(&captured.key(), bytes)).await {
            Ok(Ok(())) => record.captured = true,
            Ok(Err(error)) => record.problems.push(format!("capture: {error}")),
            Err(_) => record.problems.push("capture: timed out".to_owned()),
        }
    }

    /// Writes the decision's audit entries (bounded, never fatal).
    pub(super) async fn audit(&self, record: &mut DecisionRecord, user: &str, answer_by: Instant) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let entries = record.audit_entries(user, now_ms());
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
}

/// The sha256 of the event as received, hex: how Cognito's retry of it is known.
fn event_digest(raw: &serde_json::Value) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(raw).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(&bytes))
}
