//! Data for rules: key templates such as `user#{sub}` that a rule declares in its manifest
//! entry, resolved against the sign-in before the chain runs.
//!
//! Placeholders: `{tenant}`, `{sub}` (the `sub` attribute), `{username}`, `{client_id}`,
//! `{user_pool_id}` and `{attr:NAME}` (any user attribute). A key whose placeholder has no
//! value (no such attribute) is not fetched: the rule sees the item as absent.
//!
//! [`prefetch`] resolves every key of every rule that runs for the sign-in and fetches them
//! in one call to a [`DataSource`] (the Lambda's reads DynamoDB with one `BatchGetItem`),
//! always scoped to the sign-in's tenant, before the chain runs. Rules stay pure: they only
//! see what was prefetched for them, under the aliases they declared, beside the sign-in.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use portcullis_engine::chain::{DataSet, Origin, Rule};
use portcullis_engine::contract::{DataItem, SignIn};
use portcullis_engine::reads::{Field, Reads};

use crate::backend::{BackendError, BoxFuture};
use crate::tenant::TenantId;

/// Where rule data comes from. Implementations must scope every key to `tenant`, so a rule
/// can never read another tenant's items.
pub trait DataSource: Send + Sync + std::fmt::Debug {
    /// Fetches `keys` of `tenant` within `timeout`: the items found (key → JSON text).
    /// A missing item is simply absent; an error means the fetch as a whole failed.
    fn fetch<'a>(
        &'a self,
        tenant: &'a TenantId,
        keys: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, BackendError>>;
}

/// A rule as the gate holds it: the engine's [`Rule`] and the data it declared (alias and
/// key template), which the gate fetches before the chain runs.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    /// The rule.
    pub rule: Rule,
    /// Its declared data: alias and key template.
    pub data: Vec<(String, KeyTemplate)>,
}

/// Data keys one fetch (one origin's rules in one chain) may ask for: DynamoDB's
/// `BatchGetItem` takes at most 100.
pub const MAX_KEYS_PER_FETCH: usize = 100;

/// Resolves and fetches the data of every rule in `rules` that runs for the request's
/// trigger. The `_global` rules' data and the tenant's are fetched apart (at the same
/// time) and fail apart, so nothing a tenant declares can make a global rule's data
/// unavailable. Without a tenant or a source, rules that declared data fail with a
/// data-unavailable outcome (their `on_error` decides).
pub async fn prefetch(
    source: Option<&dyn DataSource>,
    tenant: Option<&TenantId>,
    rules: &[&LoadedRule],
    sign_in: &SignIn,
    timeout: Duration,
) -> DataSet {
    let fetch = |origin| {
        let rules: Vec<&LoadedRule> = rules
            .iter()
            .copied()
            .filter(|r| r.rule.origin == origin)
            .collect();
        fetch_for(source, tenant, rules, sign_in, timeout)
    };
    let (global, own) =
        futures_util::future::join(fetch(Origin::Global), fetch(Origin::Tenant)).await;
    let mut set = global;
    set.items.extend(own.items);
    set.failed.extend(own.failed);
    set
}

/// One origin's rules: their keys in one call.
async fn fetch_for(
    source: Option<&dyn DataSource>,
    tenant: Option<&TenantId>,
    rules: Vec<&LoadedRule>,
    sign_in: &SignIn,
    timeout: Duration,
) -> DataSet {
    let mut set = DataSet::default();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut wanted = Vec::new();
    let mut resolved = Vec::new();
    for loaded in rules
        .into_iter()
        .filter(|r| !r.data.is_empty() && r.rule.triggers.contains(&sign_in.trigger))
    {
        let key_of_rule = loaded.rule.key();
        wanted.push(key_of_rule.clone());
        for (alias, template) in &loaded.data {
            match template.resolve(sign_in) {
                Ok(Some(key)) => {
                    keys.insert(key.clone());
                    resolved.push((key_of_rule.clone(), alias.clone(), key));
                }
                Ok(None) => {}
                // Never "absent": a deny-list lookup must not pass because a key is long.
                Err(error) => {
                    set.failed
                        .insert(key_of_rule.clone(), format!("data `{alias}`: {error}"));
                }
            }
        }
    }
    let fail = |set: &mut DataSet, error: String| {
        for rule in &wanted {
            set.failed.insert(rule.clone(), error.clone());
        }
    };
    if wanted.is_empty() {
        return set;
    }
    let (Some(source), Some(tenant)) = (source, tenant) else {
        fail(
            &mut set,
            match tenant {
                None => "no tenant: data is always scoped to a tenant".to_owned(),
                Some(_) => "no data store is configured".to_owned(),
            },
        );
        return set;
    };
    if keys.is_empty() {
        return set;
    }
    if keys.len() > MAX_KEYS_PER_FETCH {
        fail(
            &mut set,
            format!(
                "{} data keys, over the limit of {MAX_KEYS_PER_FETCH} per chain",
                keys.len()
            ),
        );
        return set;
    }
    let keys: Vec<String> = keys.into_iter().collect();
    match source.fetch(tenant, &keys, timeout).await {
        Ok(items) => {
            let mut found: HashMap<_, Vec<DataItem>> = HashMap::new();
            for (rule, alias, key) in resolved {
                if let Some(value) = items.get(&key) {
                    found.entry(rule).or_default().push(DataItem {
                        key: alias,
                        value: value.clone(),
                    });
                }
            }
            set.items.extend(
                found
                    .into_iter()
                    .map(|(rule, items)| (rule, Arc::from(items))),
            );
        }
        Err(error) => fail(&mut set, error.to_string()),
    }
    set
}

/// A part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Tenant,
    Sub,
    Username,
    ClientId,
    UserPoolId,
    Attr(String),
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
}

/// The longest key template or resolved key.
pub const MAX_KEY: usize = 512;

impl KeyTemplate {
    /// Parses a template, refusing unknown placeholders and unbalanced braces.
    pub fn parse(template: &str) -> Result<KeyTemplate, TemplateError> {
        if template.is_empty() || template.len() > MAX_KEY {
            return Err(TemplateError::Length);
        }
        let unbalanced = || TemplateError::Unbalanced(template.to_owned());
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (text, after) = rest.split_at(open);
            if text.contains('}') {
                return Err(unbalanced());
            }
            if !text.is_empty() {
                parts.push(Part::Text(text.to_owned()));
            }
            let after = after.get(1..).unwrap_or("");
            let close = after.find('}').ok_or_else(unbalanced)?;
            let (name, tail) = after.split_at(close);
            parts.push(match name {
                "tenant" => Part::Tenant,
                "sub" => Part::Sub,
                "username" => Part::Username,
                "client_id" => Part::ClientId,
                "user_pool_id" => Part::UserPoolId,
                other => match other.strip_prefix("attr:") {
                    Some(attr) if !attr.is_empty() => Part::Attr(attr.to_owned()),
                    _ => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
                },
            });
            rest = tail.get(1..).unwrap_or("");
        }
        if rest.contains('}') {
            return Err(unbalanced());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(KeyTemplate { parts })
    }

    /// Notes in `reads` what of the sign-in this template resolves from (a capture keeps it).
    pub fn note_reads(&self, reads: &mut Reads) {
        for part in &self.parts {
            match part {
                Part::Sub => reads.attributes.note("sub"),
                Part::Attr(name) => reads.attributes.note(name),
                Part::Username => reads.field(Field::UserName),
                Part::ClientId => reads.field(Field::ClientId),
                Part::UserPoolId => reads.field(Field::UserPoolId),
                Part::Text(_) | Part::Tenant => {}
            }
        }
    }

    /// The key for this request, or `None` when a placeholder has no value. Values from the
    /// sign-in are escaped (`%`, `#`, `{`, `}`, `/`, white space and control characters as
    /// `%XX`), so a value can never reach another item by carrying the key's separators.
    /// A key over [`MAX_KEY`] bytes is an error, never "absent".
    pub fn resolve(&self, request: &SignIn) -> Result<Option<String>, KeyTooLong> {
        let attr = |name: &str| {
            request
                .user_attributes
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut key = String::new();
        for part in &self.parts {
            let value = match part {
                Part::Text(t) => {
                    key.push_str(t);
                    continue;
                }
                Part::Tenant => Some(request.tenant.as_str()),
                Part::Sub => attr("sub"),
                Part::Username => request.user_name.as_deref(),
                Part::ClientId => request.client_id.as_deref(),
                Part::UserPoolId => Some(request.user_pool_id.as_str()),
                Part::Attr(name) => attr(name),
            };
            let Some(value) = value else {
                return Ok(None);
            };
            escape_into(value, &mut key);
            if key.len() > MAX_KEY {
                return Err(KeyTooLong);
            }
        }
        if key.len() > MAX_KEY {
            return Err(KeyTooLong);
        }
        Ok(Some(key))
    }
}

/// A key template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Empty or over [`MAX_KEY`] bytes.
    #[error("key template must be 1 to {MAX_KEY} characters")]
    Length,
    /// A `{` without its `}` or the other way round.
    #[error("unbalanced braces in `{0}`")]
    Unbalanced(String),
    /// A placeholder the gate does not know.
    #[error(
        "unknown placeholder `{{{0}}}` (use tenant, sub, username, client_id, user_pool_id or attr:NAME)"
    )]
    UnknownPlaceholder(String),
}

/// A resolved key over [`MAX_KEY`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key is over {MAX_KEY} bytes")]
pub struct KeyTooLong;

/// Appends `value` with the key's structural characters percent-encoded.
fn escape_into(value: &str, key: &mut String) {
    for c in value.chars() {
        if matches!(c, '%' | '#' | '{' | '}' | '/') || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                key.push_str(&format!("%{b:02X}"));
            }
        } else {
            key.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let mut r = crate::cognito::Event::from_value(serde_json::json!({
            "triggerSource": "PreAuthentication_Authentication", "userPoolId": "p", "userName": "ada",
            "request": {"userAttributes": {"sub": "s-1", "email": "a@b.c"}}
        }))
        .unwrap()
        .sign_in;
        r.tenant = "acme".into();
        let t = KeyTemplate::parse("user#{sub}#{attr:email}@{tenant}").unwrap();
        assert_eq!(
            t.resolve(&r).unwrap().as_deref(),
            Some("user#s-1#a@b.c@acme")
        );
        // A value carrying the separators stays inside its placeholder.
        r.user_attributes = vec![
            ("sub".into(), "x#admin".into()),
            ("email".into(), "a b%{c}/d".into()),
        ];
        assert_eq!(
            t.resolve(&r).unwrap().as_deref(),
            Some("user#x%23admin#a%20b%25%7Bc%7D%2Fd@acme")
        );
        // Over-long is an error, never absent.
        r.user_attributes = vec![
            ("sub".into(), "s".repeat(600)),
            ("email".into(), "e".into()),
        ];
        assert_eq!(t.resolve(&r), Err(KeyTooLong));
        r.user_attributes.clear();
        assert_eq!(t.resolve(&r), Ok(None));
        assert_eq!(
            KeyTemplate::parse("plain")
                .unwrap()
                .resolve(&r)
                .unwrap()
                .as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in ["", "user#{", "user#}", "{nope}", "{attr:}", "a}{b"] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
