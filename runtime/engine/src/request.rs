//! The host's side of one sign-in: the data behind the contract's `request` resource, and
//! the methods a policy reads it through.

use wasmtime::component::Resource;

use crate::contract::portcullis::policy::types::HostRequest;
use crate::contract::{DataItem, Trigger};
use crate::sandbox::HostState;

/// One sign-in, as the host holds it: the data behind the contract's `request` resource.
///
/// A policy never receives this struct: the host lends it a handle, and the policy reads
/// the fields it needs through the resource's methods (see `sdk/wit/policy.wit`), each
/// copied into its memory on demand.
#[derive(Debug, Clone)]
pub struct Request {
    /// The trigger kind.
    pub trigger: Trigger,
    /// The raw Cognito `triggerSource`, e.g. `TokenGeneration_RefreshTokens`.
    pub trigger_source: String,
    /// The raw Cognito event `version`.
    pub event_version: String,
    /// The tenant the host resolved for this sign-in.
    pub tenant: String,
    /// The Cognito user pool id.
    pub user_pool_id: String,
    /// The app client id, when the event carries one.
    pub client_id: Option<String>,
    /// The Cognito user name (absent for machine-to-machine tokens).
    pub user_name: Option<String>,
    /// The user's attributes, in the event's order.
    pub user_attributes: Vec<(String, String)>,
    /// Pre-auth `validationData` or the trigger's `clientMetadata`.
    pub client_metadata: Vec<(String, String)>,
    /// Pre-auth with `PreventUserExistenceErrors`: the user does not exist.
    pub user_not_found: bool,
    /// Post-auth: whether a new device was used, when Cognito says.
    pub new_device_used: Option<bool>,
    /// The user's groups.
    pub groups: Vec<String>,
    /// Requested scopes (pre token generation V2/V3).
    pub scopes: Vec<String>,
    /// The rule's own configuration, as JSON text (`null` if none); set per rule.
    pub config: String,
    /// The data items the rule declared and the host found; set per rule.
    pub data: Vec<DataItem>,
    /// The current time in milliseconds since the Unix epoch.
    pub now_unix_ms: i64,
}

/// What the resource's methods read when no request is lent (never: the only handle a
/// policy can hold is the one `evaluate` lends it).
pub(crate) static NO_REQUEST: Request = Request {
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
    config: String::new(),
    data: Vec::new(),
    now_unix_ms: 0,
};

/// The value for `key` in `pairs`.
fn lookup(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The `request` resource's methods. A store holds at most one request, so the handle's
/// representation is not consulted: wasmtime only lets a policy call these methods with a
/// handle the host lent it, and only for the length of that call.
impl HostRequest for HostState {
    fn trigger(&mut self, _: Resource<Request>) -> Trigger {
        self.read().trigger
    }

    fn trigger_source(&mut self, _: Resource<Request>) -> String {
        self.read().trigger_source.clone()
    }

    fn event_version(&mut self, _: Resource<Request>) -> String {
        self.read().event_version.clone()
    }

    fn tenant(&mut self, _: Resource<Request>) -> String {
        self.read().tenant.clone()
    }

    fn user_pool_id(&mut self, _: Resource<Request>) -> String {
        self.read().user_pool_id.clone()
    }

    fn client_id(&mut self, _: Resource<Request>) -> Option<String> {
        self.read().client_id.clone()
    }

    fn user_name(&mut self, _: Resource<Request>) -> Option<String> {
        self.read().user_name.clone()
    }

    fn user_attribute(&mut self, _: Resource<Request>, name: String) -> Option<String> {
        lookup(&self.read().user_attributes, &name)
    }

    fn user_attributes(&mut self, _: Resource<Request>) -> Vec<(String, String)> {
        self.read().user_attributes.clone()
    }

    fn client_metadata_value(&mut self, _: Resource<Request>, key: String) -> Option<String> {
        lookup(&self.read().client_metadata, &key)
    }

    fn client_metadata(&mut self, _: Resource<Request>) -> Vec<(String, String)> {
        self.read().client_metadata.clone()
    }

    fn user_not_found(&mut self, _: Resource<Request>) -> bool {
        self.read().user_not_found
    }

    fn new_device_used(&mut self, _: Resource<Request>) -> Option<bool> {
        self.read().new_device_used
    }

    fn groups(&mut self, _: Resource<Request>) -> Vec<String> {
        self.read().groups.clone()
    }

    fn scopes(&mut self, _: Resource<Request>) -> Vec<String> {
        self.read().scopes.clone()
    }

    fn config(&mut self, _: Resource<Request>) -> String {
        self.read().config.clone()
    }

    fn data_value(&mut self, _: Resource<Request>, key: String) -> Option<String> {
        self.read()
            .data
            .iter()
            .find(|item| item.key == key)
            .map(|item| item.value.clone())
    }

    fn data(&mut self, _: Resource<Request>) -> Vec<DataItem> {
        self.read().data.clone()
    }

    fn now_unix_ms(&mut self, _: Resource<Request>) -> i64 {
        self.read().now_unix_ms
    }

    fn drop(&mut self, _: Resource<Request>) -> wasmtime::Result<()> {
        // The host only lends the request; a lent handle is never the policy's to drop.
        Ok(())
    }
}

impl HostState {
    fn read(&self) -> &Request {
        self.request.as_deref().unwrap_or(&NO_REQUEST)
    }
}
