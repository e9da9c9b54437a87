//! Native test helpers: build a [`Request`] by hand and call the policy directly.
//!
//! ```
//! use portcullis_sdk::{testing, Trigger};
//! let request = testing::request(Trigger::PreTokenGeneration)
//!     .tenant("acme")
//!     .attr("email", "ada@example.com")
//!     .config(portcullis_sdk::json!({"domains": ["example.com"]}))
//!     .build();
//! assert_eq!(request.attr("email").as_deref(), Some("ada@example.com"));
//! ```
//!
//! These tests run the policy's Rust code natively; to run the compiled component under the
//! production engine and limits, use `portcullis eval` with a recorded event.

use serde_json::Value;

use crate::bindings::portcullis::policy::types::SignIn;
use crate::request::Fields;
use crate::{DataItem, Request, TokenSource, Trigger, TrustedContext};

/// Starts a request for `trigger` with sensible defaults: tenant `test`, pool
/// `us-east-1_test`, client `test-client`, user `test-user`, time 2026-01-01T12:00:00Z.
pub fn request(trigger: Trigger) -> RequestBuilder {
    RequestBuilder {
        request: Fields {
            sign_in: SignIn {
                trigger,
                trigger_source: trigger_source(trigger).to_owned(),
                event_version: "1".to_owned(),
                tenant: "test".to_owned(),
                user_pool_id: "us-east-1_test".to_owned(),
                client_id: Some("test-client".to_owned()),
                user_name: Some("test-user".to_owned()),
                user_attributes: Vec::new(),
                client_metadata: Vec::new(),
                user_not_found: false,
                new_device_used: None,
                groups: Vec::new(),
                scopes: Vec::new(),
                now_unix_ms: 1_767_268_800_000,
                token_source: TokenSource::from_source(trigger_source(trigger)),
                federated: false,
                first_federated: false,
                trusted: None,
            },
            config: "null".to_owned(),
            data: Vec::new(),
        },
    }
}

/// The `triggerSource` of an ordinary sign-in for `trigger` (the host's mapping, in
/// `portcullis_engine::contract`, is the same; the SDK is built for the guest and cannot
/// share its code).
fn trigger_source(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::PreAuthentication => "PreAuthentication_Authentication",
        Trigger::PostAuthentication => "PostAuthentication_Authentication",
        Trigger::PreTokenGeneration => "TokenGeneration_Authentication",
    }
}

/// Builds a [`Request`] for native tests.
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    request: Fields,
}

impl RequestBuilder {
    /// Sets the Cognito user name.
    pub fn user_name(mut self, name: &str) -> Self {
        self.request.sign_in.user_name = Some(name.to_owned());
        self
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.request.sign_in.tenant = tenant.to_owned();
        self
    }

    /// Sets the raw trigger source and event version.
    pub fn source(mut self, trigger_source: &str, event_version: &str) -> Self {
        self.request.sign_in.trigger_source = trigger_source.to_owned();
        self.request.sign_in.event_version = event_version.to_owned();
        self.request.sign_in.token_source = TokenSource::from_source(trigger_source);
        self
    }

    /// Marks the user as federated (`first`: this is the first federated sign-in).
    pub fn federated(mut self, first: bool) -> Self {
        self.request.sign_in.federated = true;
        self.request.sign_in.first_federated = first;
        self
    }

    /// Sets the context the host verified: what the app's backend signed.
    pub fn trusted(mut self, context: TrustedContext) -> Self {
        self.request.sign_in.trusted = Some(context);
        self
    }

    /// Sets a verified context carrying only `ip`.
    pub fn trusted_ip(self, ip: &str) -> Self {
        let now = self.request.sign_in.now_unix_ms;
        self.trusted(TrustedContext {
            ip: Some(ip.to_owned()),
            user_agent: None,
            device_id: None,
            issued_at_ms: now,
            fields: Vec::new(),
        })
    }

    /// Adds a user attribute.
    pub fn attr(mut self, name: &str, value: &str) -> Self {
        self.request
            .sign_in
            .user_attributes
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a client metadata (validation data) entry.
    pub fn client_meta(mut self, key: &str, value: &str) -> Self {
        self.request
            .sign_in
            .client_metadata
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets the rule configuration.
    pub fn config(mut self, config: Value) -> Self {
        self.request.config = config.to_string();
        self
    }

    /// Adds a prefetched data item.
    pub fn data(mut self, key: &str, value: Value) -> Self {
        self.request.data.push(DataItem {
            key: key.to_owned(),
            value: value.to_string(),
        });
        self
    }

    /// Sets the counter `name` to `count` in a window of `window_s` seconds ending at
    /// `resets_at_ms` (as the host hands a declared counter to the rule).
    pub fn counter(self, name: &str, count: u64, window_s: u64, resets_at_ms: i64) -> Self {
        let resets_at_ms = (count > 0).then_some(resets_at_ms);
        self.data(
            name,
            serde_json::json!({"count": count, "window_s": window_s, "resets_at_ms": resets_at_ms}),
        )
    }

    /// Adds a group.
    pub fn group(mut self, group: &str) -> Self {
        self.request.sign_in.groups.push(group.to_owned());
        self
    }

    /// Adds a requested scope.
    pub fn scope(mut self, scope: &str) -> Self {
        self.request.sign_in.scopes.push(scope.to_owned());
        self
    }

    /// Sets the host time in milliseconds since the Unix epoch.
    pub fn now_unix_ms(mut self, now: i64) -> Self {
        self.request.sign_in.now_unix_ms = now;
        self
    }

    /// Marks the user as not found (pre-auth with `PreventUserExistenceErrors`).
    pub fn user_not_found(mut self) -> Self {
        self.request.sign_in.user_not_found = true;
        self
    }

    /// Sets `newDeviceUsed`.
    pub fn new_device_used(mut self, used: bool) -> Self {
        self.request.sign_in.new_device_used = Some(used);
        self
    }

    /// The request.
    pub fn build(self) -> Request {
        Request::from_fields(self.request)
    }
}
