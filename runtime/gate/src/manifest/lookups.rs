//! A rule's `lookups` as written in a manifest, and their validation into [`LookupSpec`]s
//! (what a lookup does is [`crate::data::lookups`]).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::RuleProblem;
use crate::data::KeyTemplate;
use crate::data::lookups::{
    HeaderPart, LookupSpec, MAX_CACHE_S, MAX_LOOKUP_TIMEOUT_MS, MAX_LOOKUPS_PER_RULE,
    MAX_RESPONSE_BYTES, Method, parse_url,
};

/// One HTTP lookup as written in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupEntry {
    /// `GET` (the default) or `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The URL: `https://host[:port]` then a path and query that may hold placeholders
    /// (`{sub}`, `{attr:NAME}`, `{trusted:ip}`, …), percent-encoded. The origin must be
    /// allow-listed for the tenant by the deployment.
    pub url: String,
    /// Headers; values may name secrets as `{secret:NAME}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body of a `POST`: text whose placeholders are escaped for a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Timeout in milliseconds (default 250, at most 3000; never past the prefetch's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The largest response accepted, in bytes (default 65536, at most 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// Seconds an answer is reused for the same request (default 0, at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_s: Option<u64>,
    /// When the lookup fails, run the rule without the item (it decides) instead of
    /// failing it with data-unavailable (its `on_error` decides).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
}

/// Headers the host sets itself.
const RESERVED_HEADERS: &[&str] = &["host", "content-length", "transfer-encoding", "connection"];

/// Validates a rule's lookups; names must differ from its data aliases and counters.
pub(super) fn validate<'a>(
    lookups: impl ExactSizeIterator<Item = (&'a String, &'a LookupEntry)>,
    taken: &[&str],
) -> Result<Vec<LookupSpec>, RuleProblem> {
    let problem = |name: &str, why: String| RuleProblem::Lookup {
        name: name.to_owned(),
        problem: why,
    };
    if lookups.len() > MAX_LOOKUPS_PER_RULE {
        return Err(problem(
            "",
            format!(
                "declares {} lookups, over the limit of {MAX_LOOKUPS_PER_RULE}",
                lookups.len()
            ),
        ));
    }
    lookups
        .map(|(name, entry)| {
            entry
                .validate(name, taken)
                .map_err(|why| problem(name, why))
        })
        .collect()
}

fn within(
    field: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, String> {
    let value = value.unwrap_or(default);
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{field} must be {min} to {max}, not {value}"))
    }
}

impl LookupEntry {
    fn validate(&self, name: &str, taken: &[&str]) -> Result<LookupSpec, String> {
        if name.is_empty() || name.len() > 64 || taken.contains(&name) {
            return Err(
                "lookup name must be 1 to 64 characters and not also a data alias or counter"
                    .into(),
            );
        }
        let method = match self.method.as_deref().unwrap_or("GET") {
            "GET" => Method::Get,
            "POST" => Method::Post,
            other => return Err(format!("method must be GET or POST, not `{other}`")),
        };
        let (origin, url) = parse_url(&self.url)?;
        let body = match (&self.body, method) {
            (None, _) => None,
            (Some(_), Method::Get) => return Err("a GET lookup has no body".into()),
            (Some(body), Method::Post) => {
                Some(KeyTemplate::parse(body).map_err(|e| format!("body: {e}"))?)
            }
        };
        let mut headers = Vec::with_capacity(self.headers.len());
        for (header, value) in &self.headers {
            let header = header.to_ascii_lowercase();
            let token = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token || RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(format!("header `{header}` cannot be set"));
            }
            headers.push((header, header_parts(value)?));
        }
        let timeout_ms = within("timeout_ms", self.timeout_ms, 250, 1, MAX_LOOKUP_TIMEOUT_MS)?;
        let max_bytes = within(
            "max_bytes",
            self.max_bytes.map(|b| b as u64),
            64 << 10,
            1,
            MAX_RESPONSE_BYTES as u64,
        )?;
        let cache_s = within("cache_s", self.cache_s, 0, 0, MAX_CACHE_S)?;
        Ok(LookupSpec {
            name: name.to_owned(),
            method,
            origin,
            url,
            headers,
            body,
            timeout: Duration::from_millis(timeout_ms),
            max_bytes: usize::try_from(max_bytes).unwrap_or(MAX_RESPONSE_BYTES),
            cache: Duration::from_secs(cache_s),
            fallback: self.fallback,
        })
    }
}

/// A header value's text and `{secret:NAME}` parts.
fn header_parts(value: &str) -> Result<Vec<HeaderPart>, String> {
    let bad = || format!("a header value must be text and {{secret:NAME}} parts, not `{value}`");
    if value.len() > 1024 || value.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad());
    }
    let mut parts = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find("{secret:") {
        let (text, after) = rest.split_at(open);
        if text.contains(['{', '}']) {
            return Err(bad());
        }
        if !text.is_empty() {
            parts.push(HeaderPart::Text(text.to_owned()));
        }
        let after = after.get("{secret:".len()..).unwrap_or("");
        let close = after.find('}').ok_or_else(bad)?;
        let (name, tail) = after.split_at(close);
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!(
                "secret names are 1 to 64 of A-Z a-z 0-9 - _, not `{name}`"
            ));
        }
        parts.push(HeaderPart::Secret(name.to_owned()));
        rest = tail.get(1..).unwrap_or("");
    }
    if rest.contains(['{', '}']) {
        return Err(bad());
    }
    if !rest.is_empty() {
        parts.push(HeaderPart::Text(rest.to_owned()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::super::Manifest;
    use super::*;

    fn lookups(lookups: serde_json::Value) -> Result<Vec<LookupSpec>, String> {
        let digest = format!("sha256:{}", portcullis_engine::digest::Sha256::of(b"m"));
        let doc = serde_json::json!({"revision": 1, "rules": [{
            "name": "risk", "module": digest, "triggers": ["pre-authentication"],
            "data": {"user": "user#{sub}"}, "lookups": lookups,
        }]});
        let specs = Manifest::parse(doc.to_string().as_bytes())
            .and_then(|m| m.validate())
            .map_err(|e| e.to_string())?;
        Ok(specs
            .into_iter()
            .next()
            .map(|s| s.lookups)
            .unwrap_or_default())
    }

    #[test]
    fn a_lookup_gets_defaults_and_its_secrets_named() {
        let specs = lookups(serde_json::json!({"score": {
            "url": "https://risk.example.com/v1/score?user={sub}",
            "headers": {"Authorization": "Bearer {secret:risk-key}", "x-client": "portcullis"},
        }}))
        .unwrap();
        let spec = &specs[0];
        assert_eq!(spec.origin, "https://risk.example.com");
        assert_eq!(spec.timeout, Duration::from_millis(250));
        assert_eq!(spec.max_bytes, 65536);
        assert!(spec.cache.is_zero() && !spec.fallback);
        assert_eq!(
            spec.headers[0],
            (
                "authorization".to_owned(),
                vec![
                    HeaderPart::Text("Bearer ".into()),
                    HeaderPart::Secret("risk-key".into())
                ]
            )
        );
    }

    #[test]
    fn bad_lookups_are_refused_with_the_lookup_named() {
        let url = "https://risk.example.com/s";
        for (bad, what) in [
            (
                serde_json::json!({"s": {"url": "https://{attr:h}/s"}}),
                "url",
            ),
            (
                serde_json::json!({"s": {"url": "file:///etc/passwd"}}),
                "url",
            ),
            (serde_json::json!({"user": {"url": url}}), "data alias"),
            (
                serde_json::json!({"s": {"url": url, "method": "DELETE"}}),
                "method",
            ),
            (serde_json::json!({"s": {"url": url, "body": "{}"}}), "body"),
            (
                serde_json::json!({"s": {"url": url, "timeout_ms": 5000}}),
                "timeout_ms",
            ),
            (
                serde_json::json!({"s": {"url": url, "max_bytes": 2_000_000}}),
                "max_bytes",
            ),
            (
                serde_json::json!({"s": {"url": url, "headers": {"host": "evil"}}}),
                "header",
            ),
            (
                serde_json::json!({"s": {"url": url, "headers": {"x": "a\r\nb: c"}}}),
                "header",
            ),
            (
                serde_json::json!({"s": {"url": url, "headers": {"x": "{secret:../acme/k}"}}}),
                "secret",
            ),
            (
                serde_json::json!({"s": {"url": url, "headers": {"x": "{sub}"}}}),
                "header",
            ),
        ] {
            let error = lookups(bad.clone()).unwrap_err();
            assert!(
                error.contains(what) && error.contains("lookup"),
                "{bad}: {error}"
            );
        }
    }
}
