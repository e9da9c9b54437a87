//! Key templates such as `user#{sub}`: parsed from a manifest, resolved against a sign-in
//! with every value escaped so that no value can reach another item.

use portcullis_engine::contract::SignIn;
use portcullis_engine::reads::{Field, Reads};

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
    /// A field of the context the app's backend signed (`ip`, `user_agent`, `device_id` or
    /// one of its other fields): never what the client says about itself.
    Trusted(String),
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
        Self::parse_within(template, MAX_KEY)
    }

    /// Parses a template of at most `max` bytes.
    pub(super) fn parse_within(template: &str, max: usize) -> Result<KeyTemplate, TemplateError> {
        if template.is_empty() || template.len() > max {
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
                other => match (other.strip_prefix("attr:"), other.strip_prefix("trusted:")) {
                    (Some(attr), _) if !attr.is_empty() => Part::Attr(attr.to_owned()),
                    (_, Some(field)) if !field.is_empty() => Part::Trusted(field.to_owned()),
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
                Part::Trusted(_) => reads.field(Field::TrustedContext),
                Part::Text(_) | Part::Tenant => {}
            }
        }
    }

    /// The key for this request, or `None` when a placeholder has no value. Values from the
    /// sign-in are escaped (`%`, `#`, `{`, `}`, `/`, white space and control characters as
    /// `%XX`), so a value can never reach another item by carrying the key's separators.
    /// A key over [`MAX_KEY`] bytes is an error, never "absent".
    pub fn resolve(&self, request: &SignIn) -> Result<Option<String>, KeyTooLong> {
        self.resolve_with(request, MAX_KEY, escape_into)
    }

    /// The text for this request with each value escaped by `escape`, or `None` when a
    /// placeholder has no value; over `max` bytes is an error.
    pub(super) fn resolve_with(
        &self,
        request: &SignIn,
        max: usize,
        escape: fn(&str, &mut String),
    ) -> Result<Option<String>, KeyTooLong> {
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
                Part::Trusted(field) => {
                    request.trusted.as_ref().and_then(|t| match field.as_str() {
                        "ip" => t.ip.as_deref(),
                        "user_agent" => t.user_agent.as_deref(),
                        "device_id" => t.device_id.as_deref(),
                        other => t
                            .fields
                            .iter()
                            .find(|(k, _)| k == other)
                            .map(|(_, v)| v.as_str()),
                    })
                }
            };
            let Some(value) = value else {
                return Ok(None);
            };
            escape(value, &mut key);
            if key.len() > max {
                return Err(KeyTooLong);
            }
        }
        if key.len() > max {
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
        "unknown placeholder `{{{0}}}` (use tenant, sub, username, client_id, user_pool_id, attr:NAME or trusted:FIELD)"
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
    fn trusted_placeholders_read_only_the_verified_context() {
        let mut r = crate::cognito::Event::from_value(serde_json::json!({
            "triggerSource": "PreAuthentication_Authentication", "userPoolId": "p", "userName": "ada",
            "request": {"userAttributes": {}, "validationData": {"ip": "6.6.6.6"}}
        }))
        .unwrap()
        .sign_in;
        let t = KeyTemplate::parse("ip#{trusted:ip}#{trusted:site}").unwrap();
        // The client's own `ip` is not a trusted one: no key, nothing read or counted.
        assert_eq!(t.resolve(&r), Ok(None));
        r.trusted = Some(portcullis_engine::contract::TrustedContext {
            ip: Some("10.0.0.1".into()),
            user_agent: None,
            device_id: None,
            issued_at_ms: 0,
            fields: vec![("site".into(), "hq/1".into())],
        });
        assert_eq!(
            t.resolve(&r).unwrap().as_deref(),
            Some("ip#10.0.0.1#hq%2F1")
        );
        let mut reads = Reads::default();
        t.note_reads(&mut reads);
        assert!(reads.has(Field::TrustedContext));
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in [
            "",
            "user#{",
            "user#}",
            "{nope}",
            "{attr:}",
            "{trusted:}",
            "a}{b",
        ] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
