//! The gate's settings: where a sign-in's tenant comes from, what failures mean, the time
//! limits, and what tenant rules may put into tokens.

use std::collections::HashMap;
use std::time::Duration;

use portcullis_engine::namespace::TokenPolicy;

use crate::tenant::TenantId;

/// How long Cognito waits for a trigger's answer.
pub const COGNITO_WAITS: Duration = Duration::from_secs(5);

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

/// A setting value the gate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not {expected}")]
pub struct BadSetting {
    /// The value given.
    pub value: String,
    /// What it may be.
    pub expected: &'static str,
}

impl std::str::FromStr for TenantFrom {
    type Err = BadSetting;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user-pool" => Ok(TenantFrom::UserPool),
            "client-id" => Ok(TenantFrom::ClientId),
            other => match other.strip_prefix("attribute:") {
                Some(attr) if !attr.is_empty() => Ok(TenantFrom::Attribute(attr.to_owned())),
                _ => Err(BadSetting {
                    value: other.to_owned(),
                    expected: "user-pool, client-id or attribute:NAME",
                }),
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
    type Err = BadSetting;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" | "allow" => Ok(FailMode::Open),
            "closed" | "deny" => Ok(FailMode::Closed),
            other => Err(BadSetting {
                value: other.to_owned(),
                expected: "open or closed",
            }),
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
    pub tenant_fail_modes: HashMap<TenantId, FailMode>,
    /// `_global` rules must be loaded: without them a sign-in follows the fail mode.
    pub require_global: bool,
    /// What tenant rules may put into tokens.
    pub tokens: TokenPolicy,
    /// Token changes the event cannot carry (access-token changes in V1): `open` delivers
    /// the rest and records the drop, `closed` blocks token issuance.
    pub dropped_changes: FailMode,
    /// App client → tenant. When set, a tenant resolved from an attribute must be the
    /// tenant of the app client the sign-in came through (an unlisted client fails closed).
    pub client_tenants: HashMap<String, TenantId>,
    /// A fixed host time (milliseconds since the Unix epoch) instead of the clock: replays
    /// decide two rule sets at the same time.
    pub clock_ms: Option<i64>,
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
            tenant_fail_modes: HashMap::new(),
            require_global: false,
            tokens: TokenPolicy::default(),
            dropped_changes: FailMode::Open,
            client_tenants: HashMap::new(),
            clock_ms: None,
        }
    }
}
