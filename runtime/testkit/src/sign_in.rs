//! Sign-ins built by hand for engine tests: the contract's `SignIn` with the rule's own
//! configuration and data beside it, as the chain hands them to a rule.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use portcullis_engine::{
    Budget, CompiledPolicy, DataItem, Engine, Evaluation, RuleInput, SignIn, Trigger,
};

/// A sign-in and one rule's input. Derefs to the [`SignIn`], so a test sets
/// `r.user_attributes` and `r.config` alike.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// The sign-in.
    pub sign_in: SignIn,
    /// The rule's configuration, JSON text.
    pub config: String,
    /// The rule's prefetched data.
    pub data: Vec<DataItem>,
}

impl Deref for TestRequest {
    type Target = SignIn;

    fn deref(&self) -> &SignIn {
        &self.sign_in
    }
}

impl DerefMut for TestRequest {
    fn deref_mut(&mut self) -> &mut SignIn {
        &mut self.sign_in
    }
}

impl TestRequest {
    /// The rule's input, as the chain builds it.
    pub fn input(&self) -> RuleInput {
        RuleInput {
            config: Arc::from(self.config.as_str()),
            data: Arc::from(self.data.clone()),
        }
    }
}

/// A sign-in like the SDK's test helper builds: tenant `acme`, user `ada` with an email.
pub fn request(trigger: Trigger) -> TestRequest {
    TestRequest {
        sign_in: SignIn {
            trigger,
            trigger_source: trigger.sign_in_source().into(),
            event_version: "1".into(),
            tenant: "acme".into(),
            user_pool_id: "us-east-1_test".into(),
            client_id: Some("client".into()),
            user_name: Some("ada".into()),
            user_attributes: vec![("email".into(), "ada@example.com".into())],
            client_metadata: vec![],
            user_not_found: false,
            new_device_used: None,
            groups: vec![],
            scopes: vec![],
            now_unix_ms: 1_767_596_400_000,
            token_source: portcullis_engine::contract::TokenSource::from_source(
                trigger.sign_in_source(),
            ),
            federated: false,
            first_federated: false,
            trusted: None,
        },
        config: "null".into(),
        data: vec![],
    }
}

/// Evaluates `policy` on `request` with `engine`, as one rule of a chain.
pub fn evaluate(
    engine: &Engine,
    policy: &CompiledPolicy,
    request: &TestRequest,
    budget: &Budget,
) -> Evaluation {
    engine.evaluate(
        policy,
        &Arc::new(request.sign_in.clone()),
        &request.input(),
        budget,
    )
}
