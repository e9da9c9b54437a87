//! Gate integration tests: the trigger handler end to end against a real local store,
//! the trust chain (signed manifests, sealed artifacts) and tenant isolation.

#![expect(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

mod canary;
mod capture;
mod context;
mod counters;
mod degraded;
mod handler;
mod isolation;
mod metrics;
mod overlap;
mod shapes;
mod trust;
mod unload;

/// The global rule many of these tests publish: the suspended-users example on
/// pre-authentication, without configuration.
pub fn block_suspended() -> portcullis_gate::manifest::RuleEntry {
    portcullis_testkit::rules::entry(
        "block-suspended",
        portcullis_artifacts::SUSPENDED_USERS,
        &["pre-authentication"],
        serde_json::Value::Null,
    )
}
