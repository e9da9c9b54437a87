//! Tenants: [`TenantId`] (checked once, then carried typed) and the reserved `_global`
//! tenant. A leaf: it names nothing else of the gate.

use std::fmt;

/// The reserved tenant whose rules run before every tenant's own.
pub const GLOBAL_TENANT: &str = "_global";

/// A tenant id that is safe as a path segment and an S3 key part: 1–128 characters of
/// `A-Z a-z 0-9 _ . -`, not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Checks and wraps a tenant id.
    pub fn new(id: &str) -> Option<TenantId> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        ok.then(|| TenantId(id.to_owned()))
    }

    /// The `_global` tenant.
    pub fn global() -> TenantId {
        TenantId(GLOBAL_TENANT.to_owned())
    }

    /// Whether this is the `_global` tenant, whose rules decide for every tenant.
    pub fn is_global(&self) -> bool {
        self.0 == GLOBAL_TENANT
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a tenant id (1 to 128 characters of A-Z, a-z, 0-9, `_`, `.` and `-`, not starting with `.`)"
)]
pub struct BadTenantId(pub String);

impl std::str::FromStr for TenantId {
    type Err = BadTenantId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::new(s).ok_or_else(|| BadTenantId(s.to_owned()))
    }
}
