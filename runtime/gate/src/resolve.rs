//! Which tenant a sign-in belongs to: read from where the deployment says
//! ([`TenantFrom`]), refused unless canonical, and checked against the app client's tenant
//! when clients are bound. Every refusal fails closed.

use std::collections::HashMap;

use portcullis_engine::contract::SignIn;

use crate::cognito::attribute;
use crate::config::TenantFrom;
use crate::tenant::TenantId;

/// A sign-in whose tenant value is refused (the record says why; the value itself is a
/// user's attribute and is never repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantRefused {
    /// Not a tenant id in its canonical form.
    #[error("the {0} does not name a tenant (refused: invalid or reserved tenant id)")]
    NotATenant(&'static str),
    /// A tenant other than the app client's.
    #[error("the {0} does not match the tenant of the app client (client binding)")]
    NotTheClients(&'static str),
}

/// The sign-in's tenant: `Ok(None)` when the event carries none, `Err` (a closed failure)
/// when it carries a value that is not a tenant id in its canonical form — invalid
/// characters or white space, a reserved `_…` name such as `_global`, or, from an
/// attribute, upper case (tenant ids in attributes are lower case, so `Acme` never falls
/// back to the global rules alone while `acme`'s rules would have blocked).
pub fn resolve_tenant(
    from: &TenantFrom,
    client_tenants: &HashMap<String, TenantId>,
    sign_in: &SignIn,
) -> Result<Option<TenantId>, TenantRefused> {
    let (raw, what) = match from {
        TenantFrom::UserPool => (Some(sign_in.user_pool_id.as_str()), "user pool id"),
        TenantFrom::ClientId => (sign_in.client_id.as_deref(), "app client id"),
        TenantFrom::Attribute(name) => (attribute(sign_in, name), "tenant attribute"),
    };
    let Some(raw) = raw else {
        return Ok(None);
    };
    let reserved = raw.starts_with('_');
    let from_attribute = matches!(from, TenantFrom::Attribute(_));
    let upper = raw.bytes().any(|b| b.is_ascii_uppercase());
    let canonical = !(reserved || (from_attribute && upper));
    let tenant = TenantId::new(raw)
        .filter(|_| canonical)
        .ok_or(TenantRefused::NotATenant(what))?;
    if !client_tenants.is_empty() && from_attribute {
        let bound = sign_in
            .client_id
            .as_deref()
            .and_then(|c| client_tenants.get(c));
        if bound != Some(&tenant) {
            return Err(TenantRefused::NotTheClients(what));
        }
    }
    Ok(Some(tenant))
}
