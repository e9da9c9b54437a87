//! Side effects of a decision: sign-in activity (post-auth) and the audit trail (blocked
//! sign-ins and failed rules). The [`Recorder`] trait is what the handler calls; the
//! Lambda's implementation writes DynamoDB. A recorder failure is logged and never changes
//! a decision.

use serde::Serialize;

use crate::backend::{BackendError, BoxFuture};
use crate::tenant::TenantId;

/// One sign-in, for the activity record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInActivity {
    /// The tenant.
    pub tenant: TenantId,
    /// Cognito's user name (an identifier, not an attribute value).
    pub user: String,
    /// Whether Cognito reported a new device.
    pub new_device: bool,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Where from, when the app's backend vouched for it (trusted context only; never a
    /// client's own claim). Kept only where the deployment asks for it.
    pub location: Option<Location>,
}

/// Where a sign-in came from, as the app's backend signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The trusted IP address.
    pub ip: String,
    /// The trusted `country` field, when the backend signed one.
    pub country: Option<String>,
}

impl Location {
    /// The location of a sign-in whose trusted context carries an IP address.
    pub fn of(trusted: Option<&portcullis_engine::contract::TrustedContext>) -> Option<Location> {
        let trusted = trusted?;
        Some(Location {
            ip: trusted.ip.clone()?,
            country: trusted
                .fields
                .iter()
                .find(|(name, _)| name == "country")
                .map(|(_, value)| value.clone()),
        })
    }
}

/// One audit entry: a blocked sign-in or a failed rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// The tenant (empty when none was resolved).
    pub tenant: String,
    /// Cognito's user name.
    pub user: String,
    /// The raw trigger source.
    pub trigger: String,
    /// The rule concerned (empty for a Portcullis-level block).
    pub rule: String,
    /// `deny`, `timeout`, `trap`, … or `error`.
    pub outcome: String,
    /// The tenant's manifest revision.
    pub revision: Option<u64>,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// Where activity and audit entries go.
pub trait Recorder: Send + Sync + std::fmt::Debug {
    /// Records a successful sign-in (post-auth). Must be safe under Cognito's retries.
    fn sign_in<'a>(
        &'a self,
        sign_in: &'a SignInActivity,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Records audit entries.
    fn audit<'a>(&'a self, entries: &'a [AuditEntry]) -> BoxFuture<'a, Result<(), BackendError>>;
}
