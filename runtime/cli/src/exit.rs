//! The process exit codes, and which failures are the tool's own (a store, AWS or the
//! engine failing) rather than the caller's input.

use portcullis_gate::backend::BackendError;
use portcullis_gate::publish::PublishError;
use portcullis_gate::store::StoreError;

use crate::project::build::BuildError;

/// The exit codes, as `--help` shows them.
pub const HELP: &str = "Exit codes:
  0  allowed, published, verified: success
  1  input error: bad arguments, unreadable or invalid files, not a Cognito event,
     a refused publish (unsigned, conflicting revision, failed policy tests,
     a canary running)
  2  denied or blocked (`verify`: the store has refused items; `test`: a case failed)
  3  the rule failed (timeout, trap, out of fuel, invalid output) or could not be loaded
  4  tool failure: a store, AWS, the engine or a language's build tool could not do its
     part; retrying (or installing the tool) may help";

/// The process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Allowed, or the command succeeded.
    Allow = 0,
    /// Usage or input error.
    Input = 1,
    /// Denied, blocked or refused.
    Deny = 2,
    /// The rule failed or could not be loaded.
    RuleFailed = 3,
    /// The tool itself failed: a store, AWS or the engine.
    ToolFailure = 4,
}

/// The exit code of a failed command: [`Exit::ToolFailure`] when any cause in the chain is
/// a store that could not be reached, a backend call that failed, the engine that could
/// not be set up or a build tool that is not installed; [`Exit::Input`] otherwise (files the caller named, refusals, conflicts).
pub fn of_error(error: &anyhow::Error) -> Exit {
    let tool = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<StoreError>(),
            Some(StoreError::Io { .. } | StoreError::Timeout(_))
        ) || matches!(
            cause.downcast_ref::<BackendError>(),
            Some(BackendError::Call { .. } | BackendError::Timeout { .. })
        ) || matches!(
            cause.downcast_ref::<portcullis_engine::LoadError>(),
            Some(portcullis_engine::LoadError::Setup(_))
        ) || matches!(
            cause.downcast_ref::<BuildError>(),
            Some(BuildError::ToolMissing { .. })
        ) || matches!(
            cause.downcast_ref::<PublishError>(),
            Some(PublishError::Store(
                StoreError::Io { .. } | StoreError::Timeout(_)
            ))
        )
    });
    if tool { Exit::ToolFailure } else { Exit::Input }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_backend_failures_are_the_tools_input_errors_are_not() {
        let io = StoreError::Io {
            op: "get",
            key: "tenants/acme/manifest.json".into(),
            message: "connection refused".into(),
        };
        assert_eq!(
            of_error(&anyhow::Error::new(io).context("publishing")),
            Exit::ToolFailure
        );
        let timeout = BackendError::Timeout {
            operation: "dynamodb GetItem",
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(of_error(&anyhow::Error::new(timeout)), Exit::ToolFailure);
        assert_eq!(
            of_error(&anyhow::anyhow!("`x.json` is not JSON")),
            Exit::Input
        );
        let conflict = StoreError::PreconditionFailed("tenants/acme/manifest.json".into());
        assert_eq!(of_error(&anyhow::Error::new(conflict)), Exit::Input);
    }
}
