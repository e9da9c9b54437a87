//! The pre token generation answer: the chain's merged claim changes written into the
//! event's `response` in the shape its version expects, never wiping the user's groups.

use serde_json::{Map, Value};

use portcullis_engine::contract::CLIENT_CREDENTIALS_SOURCE;

use crate::cognito::{EventKind, TokenVersion};

/// The pre token generation response for `event`: the chain's merged claim changes in the
/// shape the event's version expects, written into `response` of a copy of the event.
///
/// - V1 (`claimsOverrideDetails`): ID token only, string values. A non-string value
///   (number, boolean, array, object) is sent as its JSON text, e.g. `["a","b"]`: V1 cannot
///   carry JSON, and dropping a claim silently would be worse. Access-token changes and
///   scopes are ignored (logged by the caller).
/// - V2/V3 (`claimsAndScopeOverrideDetails`): ID and access tokens with JSON values, and
///   scopes. Client-credentials (machine-to-machine) tokens have no ID token, so ID changes
///   are left out there.
/// - `groupOverrideDetails` is written **only** when a rule overrides groups: an empty or
///   null override would remove every group of the user.
/// - With no change at all the event's `response` is returned as Cognito sent it.
pub fn token_response(
    mut raw: Value,
    kind: EventKind,
    trigger_source: &str,
    outcome: &portcullis_engine::chain::ChainOutcome,
) -> Value {
    let EventKind::PreTokenGeneration(version) = kind else {
        return raw;
    };
    let machine_to_machine = trigger_source == CLIENT_CREDENTIALS_SOURCE;
    // An override replaces the user's groups, roles and preferred role together: roles the
    // rule does not name are the user's current ones, so a group-only override keeps them.
    let current = raw.pointer("/request/groupConfiguration").cloned();
    let groups = outcome.groups.as_ref().map(|over| {
        let mut json = portcullis_engine::verdict::groups_json(over);
        if let (Some(obj), Some(current)) = (json.as_object_mut(), &current) {
            if over.iam_roles.is_empty()
                && let Some(roles) = current.get("iamRolesToOverride")
            {
                obj.insert("iamRolesToOverride".into(), roles.clone());
            }
            if over.preferred_role.is_none()
                && let Some(role) = current.get("preferredRole")
            {
                obj.insert("preferredRole".into(), role.clone());
            }
        }
        json
    });
    let details = match version {
        TokenVersion::V1 => {
            if outcome.id.is_empty() && groups.is_none() {
                return raw;
            }
            let claims: Map<String, Value> = outcome
                .id
                .add
                .iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (name.clone(), Value::String(text))
                })
                .collect();
            let mut details = serde_json::json!({
                "claimsToAddOrOverride": claims,
                "claimsToSuppress": outcome.id.suppress,
            });
            if let (Some(groups), Some(obj)) = (groups, details.as_object_mut()) {
                obj.insert("groupOverrideDetails".into(), groups);
            }
            ("claimsOverrideDetails", details)
        }
        TokenVersion::V2 | TokenVersion::V3 => {
            let no_access = outcome.access.is_empty()
                && outcome.scopes.add.is_empty()
                && outcome.scopes.suppress.is_empty();
            if outcome.id.is_empty() && no_access && groups.is_none() {
                return raw;
            }
            let mut details = Map::new();
            if !machine_to_machine {
                details.insert(
                    "idTokenGeneration".into(),
                    serde_json::json!({
                        "claimsToAddOrOverride": outcome.id.to_json(),
                        "claimsToSuppress": outcome.id.suppress,
                    }),
                );
            }
            details.insert(
                "accessTokenGeneration".into(),
                serde_json::json!({
                    "claimsToAddOrOverride": outcome.access.to_json(),
                    "claimsToSuppress": outcome.access.suppress,
                    "scopesToAdd": outcome.scopes.add,
                    "scopesToSuppress": outcome.scopes.suppress,
                }),
            );
            if let Some(groups) = groups {
                details.insert("groupOverrideDetails".into(), groups);
            }
            ("claimsAndScopeOverrideDetails", Value::Object(details))
        }
    };
    if let Some(obj) = raw.as_object_mut() {
        let response = obj
            .entry("response")
            .or_insert_with(|| Value::Object(Map::new()));
        if !response.is_object() {
            *response = Value::Object(Map::new());
        }
        if let Some(response) = response.as_object_mut() {
            response.insert(details.0.into(), details.1);
        }
    }
    raw
}
