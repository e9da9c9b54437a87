//! Capture for replay: a sample of a tenant's decided sign-ins, each kept with only what
//! decided it, so `portcullis replay` can run real traffic through a change.
//!
//! Off by default, opt-in per tenant with a sampling rate ([`CaptureConfig`]). A captured
//! sign-in ([`Captured`]) is the Cognito event cut down to the fields the rules read — the
//! host notes every attribute, client-metadata key and field a rule asks for
//! ([`portcullis_engine::reads`]) — and those the gate itself decides from (the tenant
//! attribute, data key templates, a canary's cohort), with the trusted context when a rule
//! read it, the host time and the decision. Everything else (other attributes, metadata,
//! groups, the context envelope) is dropped before it is written. It goes to a
//! [`CaptureSink`] under `capture/<tenant>/<yyyy-mm-dd>/`: in AWS, S3 encrypted with a KMS
//! key, the prefix expired by a lifecycle rule after the retention; locally, the store's
//! directory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_engine::chain::ChainOutcome;
use portcullis_engine::contract::TrustedContext;
use portcullis_engine::digest::Sha256;
use portcullis_engine::reads::{Field, Names, Reads};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::backend::{BackendError, BoxFuture};
use crate::config::TenantFrom;
use crate::data::LoadedRule;
use crate::record::DecisionRecord;
use crate::store::{ObjectStore, PutIf};
use crate::tenant::TenantId;

/// The capture format's version, the value of [`Captured::portcullis_capture`].
pub const FORMAT: u32 = 1;

/// The prefix every capture is written under.
pub const PREFIX: &str = "capture";

/// Which tenants' sign-ins are captured, and for how long they are kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureConfig {
    /// Tenant → the share of its sign-ins captured (0 to 1).
    pub rates: BTreeMap<TenantId, f64>,
    /// How long a capture is kept (the store's lifecycle rule enforces it; each capture
    /// states when it expires).
    pub retention: Duration,
}

/// A capture setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "capture setting `{0}`: expected TENANT=RATE entries (a rate from 0 to 1) joined with commas"
)]
pub struct BadCapture(pub String);

impl CaptureConfig {
    /// Parses `acme=0.05,globex=1` (tenant = the share of its sign-ins captured).
    pub fn parse(spec: &str, retention: Duration) -> Result<CaptureConfig, BadCapture> {
        let mut rates = BTreeMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || BadCapture(entry.to_owned());
            let (tenant, rate) = entry.split_once('=').ok_or_else(bad)?;
            let tenant = TenantId::new(tenant.trim()).ok_or_else(bad)?;
            let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(bad());
            }
            rates.insert(tenant, rate);
        }
        Ok(CaptureConfig { rates, retention })
    }

    /// Whether the sign-in with `decision_id` of `tenant` is in the sample: a hash of the
    /// (random) decision id against the tenant's rate; never for a tenant not listed.
    pub fn sampled(&self, tenant: &TenantId, decision_id: &str) -> bool {
        let Some(&rate) = self.rates.get(tenant) else {
            return false;
        };
        let digest = Sha256::of(decision_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        // The top 53 bits as a fraction in [0, 1).
        let fraction = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
        fraction < rate
    }
}

/// Where captures are written.
pub trait CaptureSink: Send + Sync + std::fmt::Debug {
    /// Writes one capture under `key` (`capture/<tenant>/<day>/<name>.json`).
    fn put<'a>(&'a self, key: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, Result<(), BackendError>>;
}

/// Captures written into an object store as plain objects: the local directory store (the
/// S3 sink, with KMS encryption, is `portcullis-aws`'s).
#[derive(Debug, Clone)]
pub struct StoreCapture(pub Arc<dyn ObjectStore>);

impl CaptureSink for StoreCapture {
    fn put<'a>(&'a self, key: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.0
                .put(key, bytes, PutIf::Always)
                .await
                .map(drop)
                .map_err(|e| BackendError::Call {
                    operation: "capture write",
                    source: Box::new(e),
                })
        })
    }
}

/// One captured sign-in: what replay needs to decide it again, and nothing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Captured {
    /// [`FORMAT`]: marks a file as a capture rather than a bare Cognito event.
    pub portcullis_capture: u32,
    /// The decision's id (its log line and metrics carry the same).
    pub decision_id: String,
    /// The tenant.
    pub tenant: String,
    /// The tenant's revision that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The `_global` revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_revision: Option<u64>,
    /// What was decided (`allow`, `deny`, `error`).
    pub decision: String,
    /// The host time the rules saw, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// When the capture expires (the store's lifecycle rule deletes it).
    pub expires_at_ms: i64,
    /// The trusted context the rules read, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<Value>,
    /// The Cognito event, cut down to what decided it.
    pub event: Value,
}

impl Captured {
    /// Parses a capture; `None` when `value` is not one (a bare Cognito event).
    pub fn of(value: &Value) -> Option<Result<Captured, serde_json::Error>> {
        value
            .get("portcullis_capture")
            .map(|_| serde_json::from_value(value.clone()))
    }

    /// The store key: `capture/<tenant>/<yyyy-mm-dd>/<at_ms>-<decision_id>.json`.
    pub fn key(&self) -> String {
        format!(
            "{PREFIX}/{}/{}/{}-{}.json",
            self.tenant,
            day(self.at_ms),
            self.at_ms,
            self.decision_id
        )
    }

    /// The trusted context to hand the rules again.
    pub fn trusted_context(&self) -> Option<TrustedContext> {
        self.trusted.as_ref().map(trusted_from_json)
    }
}

impl Captured {
    /// The capture of a sign-in of `tenant` decided at `at_ms` (the decision is filled in
    /// once the answer is known): `raw` cut down to `reads`, with the trusted context when
    /// the rules read it.
    pub fn new(
        record: &DecisionRecord,
        tenant: &TenantId,
        at_ms: i64,
        retention: Duration,
        raw: &Value,
        reads: &Reads,
        trusted: Option<&TrustedContext>,
    ) -> Captured {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        Captured {
            portcullis_capture: FORMAT,
            decision_id: record.decision_id.clone(),
            tenant: tenant.to_string(),
            revision: record.revision,
            global_revision: record.global_revision,
            decision: record.decision.as_str().to_owned(),
            at_ms,
            expires_at_ms: at_ms.saturating_add(retention_ms),
            trusted: trusted
                .filter(|_| reads.has(Field::TrustedContext))
                .map(trusted_to_json),
            event: minimise(raw, reads),
        }
    }
}

/// Everything of the sign-in one decision used: what its rules read (every report of
/// `outcomes`), what the data templates of `rules` resolve from, and what the gate decides
/// from (the tenant attribute; the `sub`, else the user name, for a canary's cohort; the
/// attributes federation is derived from, when a rule asked).
pub fn decided_from<'a>(
    outcomes: impl IntoIterator<Item = &'a ChainOutcome>,
    rules: impl IntoIterator<Item = &'a LoadedRule>,
    tenant_from: &TenantFrom,
    canary: bool,
    raw: &Value,
) -> Reads {
    let mut reads = Reads::default();
    for outcome in outcomes {
        for report in &outcome.reports {
            reads.merge(&report.evaluation.reads);
        }
    }
    for rule in rules {
        let counters = rule.counters.iter().map(|c| &c.key);
        for template in rule.data.iter().map(|(_, t)| t).chain(counters) {
            template.note_reads(&mut reads);
        }
    }
    if let TenantFrom::Attribute(name) = tenant_from {
        reads.attributes.note(name);
    }
    if canary {
        reads.attributes.note("sub");
        if raw.pointer("/request/userAttributes/sub").is_none() {
            reads.field(Field::UserName);
        }
    }
    if reads.has(Field::Federated) {
        reads.attributes.note("identities");
        reads.attributes.note("cognito:user_status");
    }
    reads
}

/// A trusted context as a capture writes it.
pub fn trusted_to_json(context: &TrustedContext) -> Value {
    json!({
        "ip": context.ip,
        "user_agent": context.user_agent,
        "device_id": context.device_id,
        "issued_at_ms": context.issued_at_ms,
        "fields": context.fields.iter().cloned().collect::<BTreeMap<String, String>>(),
    })
}

fn trusted_from_json(value: &Value) -> TrustedContext {
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    TrustedContext {
        ip: text("ip"),
        user_agent: text("user_agent"),
        device_id: text("device_id"),
        issued_at_ms: value
            .get("issued_at_ms")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        fields: value
            .get("fields")
            .and_then(Value::as_object)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The Cognito event `raw` cut down to what `reads` names: the event's frame (version,
/// trigger source, region, pool, app client, `userNotFound`, `newDeviceUsed`, the empty
/// response) always; the user name, attributes, client metadata (or pre-auth
/// `validationData`), groups and scopes only as read.
pub fn minimise(raw: &Value, reads: &Reads) -> Value {
    let mut out = Map::new();
    let copy = |out: &mut Map<String, Value>, from: &Value, key: &str| {
        if let Some(value) = from.get(key) {
            out.insert(key.to_owned(), value.clone());
        }
    };
    for key in [
        "version",
        "triggerSource",
        "region",
        "userPoolId",
        "response",
    ] {
        copy(&mut out, raw, key);
    }
    if let Some(caller) = raw.get("callerContext") {
        let mut kept = Map::new();
        copy(&mut kept, caller, "clientId");
        copy(&mut kept, caller, "awsSdkVersion");
        out.insert("callerContext".into(), Value::Object(kept));
    }
    if reads.has(Field::UserName) {
        copy(&mut out, raw, "userName");
    }
    let request = raw.get("request").unwrap_or(&Value::Null);
    let mut kept = Map::new();
    let only = |value: Option<&Value>, names: &Names| -> Value {
        let Some(map) = value.and_then(Value::as_object) else {
            return Value::Object(Map::new());
        };
        Value::Object(
            map.iter()
                .filter(|(name, _)| names.contains(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    kept.insert(
        "userAttributes".into(),
        only(request.get("userAttributes"), &reads.attributes),
    );
    for metadata in ["validationData", "clientMetadata"] {
        if request.get(metadata).is_some_and(Value::is_object) {
            kept.insert(
                metadata.into(),
                only(request.get(metadata), &reads.client_metadata),
            );
        }
    }
    for key in ["userNotFound", "newDeviceUsed"] {
        copy(&mut kept, request, key);
    }
    if reads.has(Field::Groups) {
        copy(&mut kept, request, "groupConfiguration");
    }
    if reads.has(Field::Scopes) {
        copy(&mut kept, request, "scopes");
    }
    out.insert("request".into(), Value::Object(kept));
    Value::Object(out)
}

/// `yyyy-mm-dd` (UTC) of a time in milliseconds since the Unix epoch.
fn day(at_ms: i64) -> String {
    // Howard Hinnant's days-to-civil.
    let z = at_ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_dates() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(1_767_596_400_000), "2026-01-05");
        assert_eq!(day(951_782_400_000), "2000-02-29");
        assert_eq!(day(-1), "1969-12-31");
    }

    #[test]
    fn rates_parse_and_sample_about_their_share() {
        let config = CaptureConfig::parse("acme=0.25, globex=1", Duration::ZERO).unwrap();
        let acme = TenantId::new("acme").unwrap();
        let sampled = (0..4000)
            .filter(|i| config.sampled(&acme, &format!("{i:032x}")))
            .count();
        assert!((800..1200).contains(&sampled), "{sampled} of 4000 at 0.25");
        let globex = TenantId::new("globex").unwrap();
        assert!(config.sampled(&globex, "any"));
        assert!(!config.sampled(&TenantId::new("initech").unwrap(), "any"));
        for bad in ["acme", "acme=2", "acme=x", "../x=1"] {
            assert!(CaptureConfig::parse(bad, Duration::ZERO).is_err(), "{bad}");
        }
    }

    #[test]
    fn minimise_keeps_the_frame_and_only_what_was_read() {
        let raw = json!({
            "version": "2", "triggerSource": "TokenGeneration_Authentication",
            "region": "us-east-1", "userPoolId": "p", "userName": "ada@example.com",
            "callerContext": {"clientId": "c", "awsSdkVersion": "v", "extra": 1},
            "request": {
                "userAttributes": {"sub": "s", "email": "ada@example.com", "phone_number": "+1"},
                "clientMetadata": {"ip": "1.2.3.4", "secret": "x"},
                "groupConfiguration": {"groupsToOverride": ["a"]},
                "scopes": ["openid"],
            },
            "response": {"claimsAndScopeOverrideDetails": null},
        });
        let mut reads = Reads::default();
        reads.attributes.note("email");
        reads.client_metadata.note("ip");
        let kept = minimise(&raw, &reads);
        assert_eq!(
            kept,
            json!({
                "version": "2", "triggerSource": "TokenGeneration_Authentication",
                "region": "us-east-1", "userPoolId": "p",
                "callerContext": {"clientId": "c", "awsSdkVersion": "v"},
                "request": {
                    "userAttributes": {"email": "ada@example.com"},
                    "clientMetadata": {"ip": "1.2.3.4"},
                },
                "response": {"claimsAndScopeOverrideDetails": null},
            })
        );
        reads.field(Field::UserName);
        reads.field(Field::Groups);
        reads.attributes = Names::All;
        let kept = minimise(&raw, &reads);
        assert_eq!(kept["userName"], "ada@example.com");
        assert_eq!(kept["request"]["userAttributes"]["phone_number"], "+1");
        assert!(kept["request"].get("groupConfiguration").is_some());
        assert!(kept["request"].get("scopes").is_none());
    }

    #[test]
    fn a_trusted_context_survives_the_round_trip() {
        let context = TrustedContext {
            ip: Some("203.0.113.7".into()),
            user_agent: None,
            device_id: Some("d".into()),
            issued_at_ms: 5,
            fields: vec![("country".into(), "NL".into())],
        };
        let back = trusted_from_json(&trusted_to_json(&context));
        assert_eq!(
            (back.ip, back.device_id, back.issued_at_ms, back.fields),
            (context.ip, context.device_id, 5, context.fields)
        );
    }
}
