//! Data for rules: key templates such as `user#{sub}` that a rule declares in its manifest
//! entry, resolved against the sign-in before the chain runs.
//!
//! Placeholders: `{tenant}`, `{sub}` (the `sub` attribute), `{username}`, `{client_id}`,
//! `{user_pool_id}` and `{attr:NAME}` (any user attribute). A key whose placeholder has no
//! value (no such attribute) is not fetched: the rule sees the item as absent. Fetching is
//! the caller's (the Lambda reads DynamoDB); keys are always scoped to the tenant there.

use crate::contract::Request;

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
    pub fn parse(template: &str) -> Result<KeyTemplate, String> {
        if template.is_empty() || template.len() > MAX_KEY {
            return Err(format!("key template must be 1 to {MAX_KEY} characters"));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (text, after) = rest.split_at(open);
            if text.contains('}') {
                return Err(format!("unbalanced `}}` in `{template}`"));
            }
            if !text.is_empty() {
                parts.push(Part::Text(text.to_owned()));
            }
            let after = after.get(1..).unwrap_or("");
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
            let (name, tail) = after.split_at(close);
            parts.push(match name {
                "tenant" => Part::Tenant,
                "sub" => Part::Sub,
                "username" => Part::Username,
                "client_id" => Part::ClientId,
                "user_pool_id" => Part::UserPoolId,
                other => match other.strip_prefix("attr:") {
                    Some(attr) if !attr.is_empty() => Part::Attr(attr.to_owned()),
                    _ => return Err(format!(
                        "unknown placeholder `{{{other}}}` (use tenant, sub, username, client_id, user_pool_id or attr:NAME)"
                    )),
                },
            });
            rest = tail.get(1..).unwrap_or("");
        }
        if rest.contains('}') {
            return Err(format!("unbalanced `}}` in `{template}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(KeyTemplate { parts })
    }

    /// The key for this request, or `None` when a placeholder has no value.
    pub fn resolve(&self, request: &Request) -> Option<String> {
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
                Part::Text(t) => t.as_str(),
                Part::Tenant => request.tenant.as_str(),
                Part::Sub => attr("sub")?,
                Part::Username => request.user_name.as_deref()?,
                Part::ClientId => request.client_id.as_deref()?,
                Part::UserPoolId => request.user_pool_id.as_str(),
                Part::Attr(name) => attr(name)?,
            };
            key.push_str(value);
        }
        (key.len() <= MAX_KEY).then_some(key)
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
        .to_request("acme", 0)
        .unwrap();
        let t = KeyTemplate::parse("user#{sub}#{attr:email}@{tenant}").unwrap();
        assert_eq!(t.resolve(&r).as_deref(), Some("user#s-1#a@b.c@acme"));
        r.user_attributes.clear();
        assert_eq!(t.resolve(&r), None);
        assert_eq!(
            KeyTemplate::parse("plain").unwrap().resolve(&r).as_deref(),
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
