//! The sign-in [`Request`] a policy reads: in a policy each read asks the host for one field,
//! in native tests the fields are held in memory (built with [`crate::testing`]).

use std::mem::ManuallyDrop;

use serde::de::DeserializeOwned;

use crate::bindings::portcullis::policy::types::{Request as HostRequest, SignIn};
use crate::{DataItem, Error, TokenSource, Trigger, TrustedContext};

/// One sign-in, as the host sees it.
///
/// In a policy the request stays in the host: each method copies one field into the policy
/// when it is called, so a rule pays only for what it reads (a field read twice is copied
/// twice; keep a value you need more than once). In native tests the same methods read a
/// request built with [`crate::testing::request`].
pub struct Request {
    source: Source,
}

enum Source {
    /// The host's request, lent to `evaluate` for the length of the call. `ManuallyDrop`:
    /// a lent handle is the host's to release, never the policy's.
    Host(ManuallyDrop<HostRequest>),
    /// A request held in memory (native tests).
    Fields(Box<Fields>),
}

/// A request held in memory (what [`crate::testing`] builds): the sign-in, generated
/// from the contract's `sign-in` record like the host's, and the rule's own input beside it.
#[derive(Clone, Debug)]
pub(crate) struct Fields {
    pub sign_in: SignIn,
    pub config: String,
    pub data: Vec<DataItem>,
}

/// A counter the host keeps for the rule (declared in its manifest entry), as of this
/// sign-in: the host counts after the decision, so an attempt does not see itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub struct Counter {
    /// Counts in the current window (0 when the window is over or nothing was counted).
    pub count: u64,
    /// The window, in seconds.
    pub window_s: u64,
    /// When the current window ends, in milliseconds since the Unix epoch (`None` at 0).
    pub resets_at_ms: Option<i64>,
}

/// A prefetched data item that is present but not of the expected shape.
#[derive(Debug)]
pub struct DataError {
    key: String,
    source: serde_json::Error,
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "data item `{}` is malformed: {}", self.key, self.source)
    }
}

impl std::error::Error for DataError {}

/// Reads one field: from the host, or from the fields held in memory.
macro_rules! read {
    ($self:ident, $host:ident => $from_host:expr, $fields:ident => $from_fields:expr) => {
        match &$self.source {
            Source::Host($host) => $from_host,
            Source::Fields($fields) => $from_fields,
        }
    };
}

impl Request {
    /// The request the host lent to this evaluation (used by [`crate::export!`]).
    ///
    /// # Safety
    /// `handle` must be the handle of the request borrowed by the current `evaluate`
    /// call, and the returned value must not outlive that call.
    #[doc(hidden)]
    pub unsafe fn __lent(handle: u32) -> Self {
        // SAFETY: the caller passes the handle of the borrowed request; `ManuallyDrop`
        // keeps the policy from dropping a handle it does not own.
        let host = unsafe { HostRequest::from_handle(handle) };
        Request {
            source: Source::Host(ManuallyDrop::new(host)),
        }
    }

    pub(crate) fn from_fields(fields: Fields) -> Self {
        Request {
            source: Source::Fields(Box::new(fields)),
        }
    }

    /// The trigger kind.
    pub fn trigger(&self) -> Trigger {
        read!(self, h => h.trigger(), f => f.sign_in.trigger)
    }

    /// The raw Cognito `triggerSource`, e.g. `TokenGeneration_RefreshTokens`.
    pub fn trigger_source(&self) -> String {
        read!(self, h => h.trigger_source(), f => f.sign_in.trigger_source.clone())
    }

    /// The raw Cognito event `version`.
    pub fn event_version(&self) -> String {
        read!(self, h => h.event_version(), f => f.sign_in.event_version.clone())
    }

    /// The tenant the host resolved for this sign-in.
    pub fn tenant(&self) -> String {
        read!(self, h => h.tenant(), f => f.sign_in.tenant.clone())
    }

    /// The Cognito user pool id.
    pub fn user_pool_id(&self) -> String {
        read!(self, h => h.user_pool_id(), f => f.sign_in.user_pool_id.clone())
    }

    /// The app client id, when the event carries one.
    pub fn client_id(&self) -> Option<String> {
        read!(self, h => h.client_id(), f => f.sign_in.client_id.clone())
    }

    /// The Cognito user name (absent for machine-to-machine tokens).
    pub fn user_name(&self) -> Option<String> {
        read!(self, h => h.user_name(), f => f.sign_in.user_name.clone())
    }

    /// The user attribute `name` (for example `email` or `custom:tenant_id`).
    pub fn attr(&self, name: &str) -> Option<String> {
        read!(self, h => h.user_attribute(name), f => lookup(&f.sign_in.user_attributes, name))
    }

    /// All the user's attributes, in the event's order.
    pub fn attrs(&self) -> Vec<(String, String)> {
        read!(self, h => h.user_attributes(), f => f.sign_in.user_attributes.clone())
    }

    /// The client metadata (pre-auth: `validationData`) value for `key`.
    pub fn client_meta(&self, key: &str) -> Option<String> {
        read!(self, h => h.client_metadata_value(key), f => lookup(&f.sign_in.client_metadata, key))
    }

    /// All of the client metadata (pre-auth: `validationData`).
    pub fn client_metadata(&self) -> Vec<(String, String)> {
        read!(self, h => h.client_metadata(), f => f.sign_in.client_metadata.clone())
    }

    /// Pre-auth with `PreventUserExistenceErrors`: the user does not exist.
    pub fn user_not_found(&self) -> bool {
        read!(self, h => h.user_not_found(), f => f.sign_in.user_not_found)
    }

    /// Post-auth: whether a new device was used, when Cognito says.
    pub fn new_device_used(&self) -> Option<bool> {
        read!(self, h => h.new_device_used(), f => f.sign_in.new_device_used)
    }

    /// The user's groups.
    pub fn groups(&self) -> Vec<String> {
        read!(self, h => h.groups(), f => f.sign_in.groups.clone())
    }

    /// Whether the user belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups().iter().any(|g| g == group)
    }

    /// The requested scopes (pre token generation V2/V3).
    pub fn scopes(&self) -> Vec<String> {
        read!(self, h => h.scopes(), f => f.sign_in.scopes.clone())
    }

    /// The rule's configuration from the manifest, as JSON text (`null` when none).
    pub fn config_json(&self) -> String {
        read!(self, h => h.config(), f => f.config.clone())
    }

    /// The rule's configuration from the manifest, deserialized. A rule without
    /// configuration reads as `{}`, so a struct whose fields all have defaults works.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let text = self.config_json();
        let text = match text.trim() {
            "" | "null" => "{}",
            text => text,
        };
        serde_json::from_str(text)
            .map_err(|e| Error::msg(format!("invalid rule configuration: {e}")))
    }

    /// The prefetched data item `key` as JSON text; `None` when the host found no item.
    pub fn data_json(&self, key: &str) -> Option<String> {
        read!(self, h => h.data_value(key), f => f
            .data
            .iter()
            .find(|item| item.key == key)
            .map(|item| item.value.clone()))
    }

    /// The prefetched data item `key` as JSON; `None` when the host found no item.
    pub fn data(&self, key: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&self.data_json(key)?).ok()
    }

    /// The prefetched data item `key` deserialized into `T`; `Ok(None)` when absent.
    pub fn data_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        match self.data_json(key) {
            None => Ok(None),
            Some(value) => serde_json::from_str(&value)
                .map(Some)
                .map_err(|source| DataError {
                    key: key.to_owned(),
                    source,
                }),
        }
    }

    /// The counter `name` the rule declared in its manifest entry (`"counters"`): how many
    /// times it was counted in its current window. `Ok(None)` when the host has no count
    /// for this sign-in (its key has no value, e.g. no verified `{trusted:ip}`).
    pub fn counter(&self, name: &str) -> Result<Option<Counter>, DataError> {
        self.data_as(name)
    }

    /// All the data items the rule declared and the host found.
    pub fn data_items(&self) -> Vec<DataItem> {
        read!(self, h => h.data(), f => f.data.clone())
    }

    /// The current time in milliseconds since the Unix epoch, supplied by the host.
    pub fn now_unix_ms(&self) -> i64 {
        read!(self, h => h.now_unix_ms(), f => f.sign_in.now_unix_ms)
    }

    /// Which path to a token this is ([`TokenSource::None`] outside pre token generation).
    pub fn token_source(&self) -> TokenSource {
        read!(self, h => h.token_source(), f => f.sign_in.token_source)
    }

    /// A refresh through `REFRESH_TOKEN_AUTH` (`TokenGeneration_RefreshTokens`). A refresh
    /// through `GetTokensFromRefreshToken` arrives as `TokenGeneration_Authentication` and
    /// cannot be told from a sign-in: a block that must hold runs on every path.
    pub fn is_refresh(&self) -> bool {
        self.token_source() == TokenSource::RefreshTokens
    }

    /// A machine-to-machine token (client credentials): no user, no ID token.
    pub fn is_machine_to_machine(&self) -> bool {
        self.token_source() == TokenSource::ClientCredentials
    }

    /// The user signs in through an external identity provider.
    pub fn is_federated(&self) -> bool {
        read!(self, h => h.federated(), f => f.sign_in.federated)
    }

    /// The user's first sign-in through an external provider, where the event shows it.
    pub fn is_first_federated(&self) -> bool {
        read!(self, h => h.first_federated(), f => f.sign_in.first_federated)
    }

    /// The context the app's backend signed and the host verified (IP, user agent, device,
    /// signed fields), if any. [`Request::client_meta`] is what the client says; this is
    /// what the backend vouches for.
    pub fn trusted(&self) -> Option<TrustedContext> {
        read!(self, h => h.trusted_context(), f => f.sign_in.trusted.clone())
    }

    /// The trusted (backend-signed) IP address, if a verified context carries one.
    pub fn trusted_ip(&self) -> Option<String> {
        self.trusted().and_then(|context| context.ip)
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Host(host) => f
                .debug_struct("Request")
                .field("host_handle", &host.handle())
                .finish(),
            Source::Fields(fields) => fields.fmt(f),
        }
    }
}

fn lookup(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}
