//! What differs between two answers to one event: the decision, the deny message and rule,
//! ID/access claims, scopes, group overrides and new rule failures.

use std::collections::{BTreeMap, BTreeSet};

use portcullis_gate::Answer;
use serde_json::Value;

/// One event's difference between the baseline and the candidate.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Change {
    pub(super) event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) claims: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    groups: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<String>,
}

impl Change {
    pub(super) fn is_empty(&self) -> bool {
        self.decision.is_none()
            && self.message.is_none()
            && self.claims.is_empty()
            && self.scopes.is_empty()
            && !self.groups
            && self.failures.is_empty()
    }

    pub(super) fn newly_denied(&self) -> bool {
        self.decision.as_deref() == Some("allow → deny")
    }

    pub(super) fn tokens_changed(&self) -> bool {
        !self.claims.is_empty() || !self.scopes.is_empty() || self.groups
    }
}

/// What differs between the baseline's answer `a` and the candidate's `b`.
pub(super) fn compare(a: &Answer, b: &Answer) -> Change {
    let mut change = Change::default();
    match (&a.response, &b.response) {
        (Ok(_), Err(message)) => {
            change.decision = Some("allow → deny".into());
            change.message = Some(message.clone());
            change.denied_by.clone_from(&b.record.denied_by);
        }
        (Err(_), Ok(_)) => change.decision = Some("deny → allow".into()),
        (Err(old), Err(new)) if old != new => {
            change.message = Some(new.clone());
            change.denied_by.clone_from(&b.record.denied_by);
        }
        (Ok(old), Ok(new)) => {
            let (old, new) = (at(old, "/response"), at(new, "/response"));
            for (token, old_claims, new_claims) in [
                ("id", id_claims(old), id_claims(new)),
                ("access", access_claims(old), access_claims(new)),
            ] {
                let names = claim_changes(&old_claims, &new_claims);
                if !names.is_empty() {
                    change.claims.insert(token.to_owned(), names);
                }
            }
            let scopes = |v: &Value, field: &str| -> BTreeSet<String> {
                strings(at(
                    v,
                    &format!("/claimsAndScopeOverrideDetails/accessTokenGeneration/{field}"),
                ))
            };
            for (field, sign) in [("scopesToAdd", "+"), ("scopesToSuppress", "-")] {
                let (o, n) = (scopes(old, field), scopes(new, field));
                for s in n.symmetric_difference(&o) {
                    let mark = if n.contains(s) { sign } else { "~" };
                    change.scopes.push(format!("{mark}{s}"));
                }
            }
            change.groups = group_override(old) != group_override(new);
        }
        _ => {}
    }
    let failures = |answer: &Answer| -> BTreeSet<String> {
        answer
            .record
            .rules
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| format!("{} {}", r.rule, r.outcome))
            .collect()
    };
    change.failures = failures(b).difference(&failures(a)).cloned().collect();
    change
}

/// The group override of a token answer (`null` when it has none).
fn group_override(response: &Value) -> &Value {
    let v2 = at(
        response,
        "/claimsAndScopeOverrideDetails/groupOverrideDetails",
    );
    if v2.is_null() {
        at(response, "/claimsOverrideDetails/groupOverrideDetails")
    } else {
        v2
    }
}

/// Claims added or overridden, and suppressed, by a token answer: name → value (`None`:
/// suppressed).
fn id_claims(response: &Value) -> BTreeMap<String, Option<Value>> {
    let v1 = at(response, "/claimsOverrideDetails");
    let v2 = at(response, "/claimsAndScopeOverrideDetails/idTokenGeneration");
    claims(if v1.is_object() { v1 } else { v2 })
}

fn access_claims(response: &Value) -> BTreeMap<String, Option<Value>> {
    claims(at(
        response,
        "/claimsAndScopeOverrideDetails/accessTokenGeneration",
    ))
}

fn claims(details: &Value) -> BTreeMap<String, Option<Value>> {
    let mut out = BTreeMap::new();
    if let Some(map) = at(details, "/claimsToAddOrOverride").as_object() {
        for (name, value) in map {
            out.insert(name.clone(), Some(value.clone()));
        }
    }
    for name in strings(at(details, "/claimsToSuppress")) {
        out.insert(name, None);
    }
    out
}

/// `+name` (newly set), `~name` (value changed), `-name` (newly suppressed), `=name` (no
/// longer set or suppressed).
fn claim_changes(
    old: &BTreeMap<String, Option<Value>>,
    new: &BTreeMap<String, Option<Value>>,
) -> Vec<String> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (old.get(name), new.get(name)) {
            (None, Some(Some(_))) => Some(format!("+{name}")),
            (Some(a), Some(b)) if a != b => Some(match b {
                Some(_) => format!("~{name}"),
                None => format!("-{name}"),
            }),
            (None, Some(None)) => Some(format!("-{name}")),
            (Some(_), None) => Some(format!("={name}")),
            _ => None,
        })
        .collect()
}

/// The value at a JSON pointer, `null` where there is none.
fn at<'v>(value: &'v Value, pointer: &str) -> &'v Value {
    static NULL: Value = Value::Null;
    value.pointer(pointer).unwrap_or(&NULL)
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn describe(change: &Change) -> String {
    let mut parts = Vec::new();
    if let Some(decision) = &change.decision {
        parts.push(match (&change.denied_by, &change.message) {
            (Some(rule), Some(message)) => format!("{decision} by `{rule}` ({message})"),
            _ => decision.clone(),
        });
    } else if let Some(message) = &change.message {
        parts.push(format!("deny message now \"{message}\""));
    }
    for (token, names) in &change.claims {
        parts.push(format!("{token} token {}", names.join(" ")));
    }
    if !change.scopes.is_empty() {
        parts.push(format!("scopes {}", change.scopes.join(" ")));
    }
    if change.groups {
        parts.push("group override changed".into());
    }
    if !change.failures.is_empty() {
        parts.push(format!("new failures: {}", change.failures.join(", ")));
    }
    format!("{}: {}", change.event, parts.join("; "))
}
