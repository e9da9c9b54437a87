//! Validation of what a rule returns: a raw contract verdict becomes a checked [`Verdict`],
//! or an [`InvalidOutput`] that names what is wrong.
//!
//! The rules are Cognito's (docs/cognito.md): reserved claims may not be added, changed or
//! suppressed, `dev:` claims may only be suppressed, scopes have no spaces, and one
//! response holds at most 5,000 claims and scopes. On top, the host caps the verdict's size
//! and requires a deny message an end user can read.

use serde_json::Value;

use crate::contract::{Decision, GroupOverride, RawVerdict};
use crate::invalid::InvalidOutput;

/// Claims Cognito does not let a trigger add, change or suppress.
pub const RESERVED_CLAIMS: &[&str] = &[
    "acr",
    "amr",
    "at_hash",
    "aud",
    "auth_time",
    "azp",
    "client_id",
    "device_key",
    "event_id",
    "exp",
    "iat",
    "identities",
    "iss",
    "jti",
    "nbf",
    "nonce",
    "origin_jti",
    "sub",
    "token_use",
    "username",
    "version",
];
/// Cognito's limit on claims plus scopes in one response.
pub const MAX_CHANGES: usize = 5_000;
/// The host's limit on the total size of a verdict's strings.
pub const MAX_VERDICT_BYTES: usize = 256 * 1024;
/// The longest claim name accepted.
pub const MAX_CLAIM_NAME: usize = 256;
/// The longest deny message accepted, in characters.
pub const MAX_DENY_MESSAGE: usize = 256;
/// The deny message used when a rule denies with an empty one.
pub const DEFAULT_DENY_MESSAGE: &str = "Sign-in is not allowed";

/// Claim and scope changes for one token, in the order rules made them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimChanges {
    /// Claims to add or override, by name; a later rule's value replaces an earlier one.
    pub add: Vec<(String, Value)>,
    /// Claims to suppress.
    pub suppress: Vec<String>,
}

impl ClaimChanges {
    /// Number of claims changed.
    pub fn len(&self) -> usize {
        self.add.len() + self.suppress.len()
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.suppress.is_empty()
    }

    /// The claims to add as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.add.iter().cloned().collect())
    }

    /// The value to add for `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.add.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets `name` to `value` (replacing an earlier value and un-suppressing it); returns
    /// whether an earlier value was replaced.
    pub fn set(&mut self, name: String, value: Value) -> bool {
        self.suppress.retain(|s| *s != name);
        if let Some(slot) = self.add.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
            return true;
        }
        self.add.push((name, value));
        false
    }

    /// Suppresses `name` (dropping an earlier value); returns whether one was dropped.
    pub fn remove(&mut self, name: String) -> bool {
        let before = self.add.len();
        self.add.retain(|(n, _)| *n != name);
        if !self.suppress.contains(&name) {
            self.suppress.push(name);
        }
        before != self.add.len()
    }
}

/// Scope changes for the access token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeChanges {
    /// Scopes to add.
    pub add: Vec<String>,
    /// Scopes to suppress.
    pub suppress: Vec<String>,
}

/// A validated verdict. The default allows and changes nothing.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// `None` allows; `Some(message)` denies with a client-safe message.
    pub deny: Option<String>,
    /// ID-token changes.
    pub id: ClaimChanges,
    /// Access-token changes (V2/V3 events only).
    pub access: ClaimChanges,
    /// Scope changes (V2/V3 events only).
    pub scopes: ScopeChanges,
    /// Group override; `None` leaves the user's groups alone.
    pub groups: Option<GroupOverride>,
}

impl Verdict {
    /// Whether the verdict allows the sign-in.
    pub fn is_allowed(&self) -> bool {
        self.deny.is_none()
    }

    /// The verdict as JSON, for `--json` output and reports. Claim values are the rule's
    /// output: callers that log must not log them (they may carry personal data).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "decision": if self.is_allowed() { "allow" } else { "deny" },
            "message": self.deny,
            "id_claims": self.id.to_json(),
            "id_suppress": self.id.suppress,
            "access_claims": self.access.to_json(),
            "access_suppress": self.access.suppress,
            "scopes_add": self.scopes.add,
            "scopes_suppress": self.scopes.suppress,
            "groups": self.groups.as_ref().map(groups_json),
        })
    }

    /// Checks a raw verdict from a rule.
    pub fn validate(raw: RawVerdict) -> Result<Verdict, InvalidOutput> {
        let bytes = raw_size(&raw);
        if bytes > MAX_VERDICT_BYTES {
            return Err(InvalidOutput::TooLarge {
                bytes,
                limit: MAX_VERDICT_BYTES,
            });
        }
        let count = raw.id_claims.len()
            + raw.id_suppress.len()
            + raw.access_claims.len()
            + raw.access_suppress.len()
            + raw.scopes_add.len()
            + raw.scopes_suppress.len();
        if count > MAX_CHANGES {
            return Err(InvalidOutput::TooManyChanges {
                count,
                limit: MAX_CHANGES,
            });
        }
        let deny = match raw.decision {
            Decision::Allow => None,
            Decision::Deny(message) => Some(deny_message(&message)?),
        };
        let mut verdict = Verdict {
            deny,
            id: ClaimChanges::default(),
            access: ClaimChanges::default(),
            scopes: ScopeChanges::default(),
            groups: None,
        };
        for (claims, suppress, target, access) in [
            (raw.id_claims, raw.id_suppress, &mut verdict.id, false),
            (
                raw.access_claims,
                raw.access_suppress,
                &mut verdict.access,
                true,
            ),
        ] {
            for claim in claims {
                check_claim_name(&claim.name, false)?;
                // Scopes change only through scopesToAdd/ToSuppress, never as a claim.
                if access && claim.name == "scope" {
                    return Err(InvalidOutput::ReservedClaim(claim.name));
                }
                let value = claim_value(&claim.name, &claim.value)?;
                target.set(claim.name, value);
            }
            for name in suppress {
                check_claim_name(&name, true)?;
                target.remove(name);
            }
        }
        for scope in raw.scopes_add.iter().chain(&raw.scopes_suppress) {
            check_scope(scope)?;
        }
        verdict.scopes = ScopeChanges {
            add: raw.scopes_add,
            suppress: raw.scopes_suppress,
        };
        if let Some(groups) = raw.groups {
            check_groups(&groups)?;
            verdict.groups = Some(groups);
        }
        Ok(verdict)
    }
}

/// A group override as JSON, in Cognito's field names.
pub fn groups_json(groups: &GroupOverride) -> Value {
    serde_json::json!({
        "groupsToOverride": groups.groups,
        "iamRolesToOverride": groups.iam_roles,
        "preferredRole": groups.preferred_role,
    })
}

fn raw_size(raw: &RawVerdict) -> usize {
    let claims = |c: &[crate::contract::Claim]| {
        c.iter()
            .map(|c| c.name.len() + c.value.len())
            .sum::<usize>()
    };
    let strings = |s: &[String]| s.iter().map(String::len).sum::<usize>();
    let deny = match &raw.decision {
        Decision::Allow => 0,
        Decision::Deny(m) => m.len(),
    };
    let groups = raw.groups.as_ref().map_or(0, |g| {
        strings(&g.groups)
            + strings(&g.iam_roles)
            + g.preferred_role.as_ref().map_or(0, String::len)
    });
    deny + claims(&raw.id_claims)
        + claims(&raw.access_claims)
        + strings(&raw.id_suppress)
        + strings(&raw.access_suppress)
        + strings(&raw.scopes_add)
        + strings(&raw.scopes_suppress)
        + groups
}

/// Whether Cognito reserves `name` (it may not be added, changed or suppressed).
pub fn is_reserved(name: &str) -> bool {
    RESERVED_CLAIMS.contains(&name) || name.starts_with("cognito:")
}

fn check_claim_name(name: &str, suppressing: bool) -> Result<(), InvalidOutput> {
    if name.is_empty()
        || name.len() > MAX_CLAIM_NAME
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(InvalidOutput::BadClaimName(printable(name)));
    }
    if is_reserved(name) {
        return Err(InvalidOutput::ReservedClaim(name.to_owned()));
    }
    if name.starts_with("dev:") && !suppressing {
        return Err(InvalidOutput::SuppressOnlyClaim(name.to_owned()));
    }
    Ok(())
}

fn claim_value(name: &str, text: &str) -> Result<Value, InvalidOutput> {
    let bad = |reason: &str| InvalidOutput::BadClaimValue {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Null) => Err(bad("null (suppress the claim instead)")),
        Ok(value) => Ok(value),
        Err(e) => Err(bad(&format!("not JSON ({})", e.classify_name()))),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "bad data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

fn check_scope(scope: &str) -> Result<(), InvalidOutput> {
    if scope.is_empty()
        || scope.len() > MAX_CLAIM_NAME
        || scope.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(InvalidOutput::BadScope(printable(scope)));
    }
    Ok(())
}

/// The longest group name Cognito accepts.
pub const MAX_GROUP_NAME: usize = 128;
/// The longest IAM role ARN accepted.
pub const MAX_ROLE_ARN: usize = 2048;

fn check_groups(groups: &GroupOverride) -> Result<(), InvalidOutput> {
    let bad =
        |s: &String, max: usize| s.is_empty() || s.len() > max || s.chars().any(char::is_control);
    if let Some(bad) = groups
        .groups
        .iter()
        .find(|s| bad(s, MAX_GROUP_NAME))
        .or_else(|| groups.iam_roles.iter().find(|s| bad(s, MAX_ROLE_ARN)))
    {
        return Err(InvalidOutput::BadGroups(format!(
            "bad name `{}`",
            printable(bad)
        )));
    }
    if let Some(role) = &groups.preferred_role
        && bad(role, MAX_ROLE_ARN)
    {
        return Err(InvalidOutput::BadGroups("bad preferred role".into()));
    }
    Ok(())
}

/// Unicode format characters (general category Cf) and other invisible characters that can
/// reorder or hide text an end user reads: bidi controls, zero-width characters, the BOM.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Normalises a deny message for Cognito: trims it, drops a final period (Cognito adds
/// one), and refuses control characters and overlong text. An empty message becomes
/// [`DEFAULT_DENY_MESSAGE`].
fn deny_message(message: &str) -> Result<String, InvalidOutput> {
    let trimmed = message.trim().trim_end_matches('.').trim_end();
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidOutput::BadDenyMessage(
            "contains control characters".into(),
        ));
    }
    if trimmed.chars().any(is_format) {
        return Err(InvalidOutput::BadDenyMessage(
            "contains invisible or bidirectional formatting characters".into(),
        ));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_DENY_MESSAGE {
        return Err(InvalidOutput::BadDenyMessage(format!(
            "{chars} characters, over the limit of {MAX_DENY_MESSAGE}"
        )));
    }
    if trimmed.is_empty() {
        return Ok(DEFAULT_DENY_MESSAGE.to_owned());
    }
    Ok(trimmed.to_owned())
}

/// A name shortened and escaped for an error message.
fn printable(name: &str) -> String {
    let mut out: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
