//! [`InvalidOutput`]: the ways a verdict can break the contract, Cognito's rules or the
//! tenant's token namespace. A leaf: made by the verdict checks, the namespace and the
//! chain's merge, reported in an outcome.

/// Ways a verdict can break the contract or Cognito's rules. Messages name claims but
/// never include claim values (they may carry personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOutput {
    /// The verdict is larger than the host accepts.
    #[error("verdict is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size of the verdict's strings in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More claims and scopes than Cognito accepts in one response.
    #[error("{count} claims and scopes, over Cognito's limit of {limit}")]
    TooManyChanges {
        /// Claims and scopes in the verdict (or the merged chain).
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A claim that Cognito reserves.
    #[error("claim `{0}` is reserved by Cognito")]
    ReservedClaim(String),
    /// A `dev:` claim may only be suppressed.
    #[error("claim `{0}` may only be suppressed")]
    SuppressOnlyClaim(String),
    /// A claim name that is empty, too long or has control characters or spaces.
    #[error("bad claim name `{0}`")]
    BadClaimName(String),
    /// A claim value that is not JSON, is null, or is too large.
    #[error("claim `{name}` has a bad value: {reason}")]
    BadClaimValue {
        /// The claim name.
        name: String,
        /// What is wrong (never the value itself).
        reason: String,
    },
    /// A scope that is empty or has whitespace or control characters.
    #[error("bad scope `{0}`")]
    BadScope(String),
    /// A group or role name that is empty or has control characters.
    #[error("bad group override: {0}")]
    BadGroups(String),
    /// A deny message that cannot be shown to an end user.
    #[error("bad deny message: {0}")]
    BadDenyMessage(String),
    /// What the rule handed the host could not be read: over the host's transfer cap
    /// ([`crate::sandbox::MAX_HOST_TRANSFER`]) before any allocation for it, or malformed.
    #[error("the host could not read what the rule returned: {0}")]
    Unreadable(String),
    /// A tenant rule emitted something outside its tenant's token namespace
    /// ([`crate::namespace`]).
    #[error("outside the tenant's token namespace: {0}")]
    OutsideNamespace(String),
}
