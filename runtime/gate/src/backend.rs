//! What the gate's backends (rule stores, data sources, recorders) share: [`BoxFuture`],
//! since they are used behind `dyn`, and [`BackendError`] for data and record calls. A leaf.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future (stores are used behind `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A data source or recorder call that failed. Messages name the operation, never a key's
/// or an item's value.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The call did not answer in time.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// The backend operation, e.g. `dynamodb BatchGetItem`.
        operation: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// The backend refused or failed the call.
    #[error("{operation}: {}", chain(source.as_ref()))]
    Call {
        /// The backend operation.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend answered with something that is not what the gate stores.
    #[error("{operation}: {what}")]
    Malformed {
        /// The backend operation.
        operation: &'static str,
        /// What was wrong with the answer.
        what: String,
    },
}

/// An error and its sources, joined (AWS SDK errors say little at the top level).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let more = source.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = source.source();
    }
    text
}
