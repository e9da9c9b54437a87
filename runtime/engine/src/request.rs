//! What one evaluation reads: the [`SignIn`] (generated from the contract's `sign-in`
//! record, shared by every rule of a chain) and, beside it, the running rule's own
//! [`RuleInput`] — its configuration and the data prefetched for it.

use std::sync::Arc;

pub use crate::contract::SignIn;
use crate::contract::{DataItem, TokenSource, Trigger};

/// What a rule reads besides the sign-in: its own configuration and data. Both are shared
/// (`Arc`), so handing them to an evaluation copies nothing.
#[derive(Debug, Clone)]
pub struct RuleInput {
    /// The rule's configuration from the manifest, as JSON text (`null` when none).
    pub config: Arc<str>,
    /// The data items the rule declared and the host found.
    pub data: Arc<[DataItem]>,
}

impl Default for RuleInput {
    fn default() -> Self {
        RuleInput {
            config: Arc::from("null"),
            data: Arc::from([]),
        }
    }
}

impl RuleInput {
    /// A rule input with this configuration (JSON text) and no data.
    pub fn with_config(config: impl Into<Arc<str>>) -> RuleInput {
        RuleInput {
            config: config.into(),
            ..RuleInput::default()
        }
    }
}

/// A sign-in with every field empty (pre-authentication, no tenant, time zero): what the
/// `request` resource's methods read when no sign-in is lent (only while a policy is
/// prepared or described: the only handle a policy can hold is the one `evaluate` lends
/// it), and the base of a sign-in built field by field.
pub static NO_SIGN_IN: SignIn = SignIn {
    trigger: Trigger::PreAuthentication,
    trigger_source: String::new(),
    event_version: String::new(),
    tenant: String::new(),
    user_pool_id: String::new(),
    client_id: None,
    user_name: None,
    user_attributes: Vec::new(),
    client_metadata: Vec::new(),
    user_not_found: false,
    new_device_used: None,
    groups: Vec::new(),
    scopes: Vec::new(),
    now_unix_ms: 0,
    token_source: TokenSource::None,
    federated: false,
    first_federated: false,
    trusted: None,
};
