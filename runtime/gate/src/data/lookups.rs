//! Declared HTTP lookups: calls to an external service (a risk or fraud score) that a rule
//! declares in its manifest entry and the host makes before the chain, beside the data
//! prefetch, handing the JSON answer to the rule as the data item of the lookup's name.
//! Rules stay pure; the host does the I/O, bounded by the invocation's deadline.
//!
//! ```json
//! "lookups": {
//!   "risk": {"url": "https://risk.example.com/v1/score?user={sub}&ip={trusted:ip}",
//!            "headers": {"authorization": "Bearer {secret:risk-api-key}"},
//!            "timeout_ms": 300, "max_bytes": 16384, "cache_s": 60, "fallback": true}
//! }
//! ```
//!
//! - **Where.** The URL's origin (`scheme://host[:port]`) is fixed text: placeholders may
//!   only follow it, and their values are percent-encoded, so a value can never change the
//!   host, the path's structure or add a query parameter. The deployment allow-lists
//!   origins per tenant ([`Origins`]); a lookup to any other origin is refused before a
//!   connection is made. Redirects are never followed.
//! - **Secrets.** Header values may name secrets (`{secret:NAME}`), resolved by the host
//!   for the rule's owner (the tenant, or `_global` for global rules: one tenant's name
//!   never resolves another's secret), cached briefly, sent only in that header. Rules never
//!   see them; errors and records name lookups, never headers or values.
//! - **Bounds.** Each lookup has a timeout (at most what is left of the data prefetch's),
//!   a response-size cap checked while reading, and an optional cache TTL. A lookup that
//!   times out, answers an error status, sends more than its cap or something that is not
//!   JSON fails its rule with data-unavailable (its `on_error` decides) — or, with
//!   `"fallback": true`, the rule runs without the item and decides itself (allow with
//!   reduced functionality, say).
//! - **Cost.** Every lookup of a chain runs at the same time as the data and counter reads:
//!   the prefetch costs about the slowest of them, not their sum.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use portcullis_engine::chain::{DataSet, Origin};
use portcullis_engine::contract::{DataItem, SignIn};

use super::LoadedRule;
use super::template::{KeyTemplate, TemplateError};
use crate::backend::{BackendError, BoxFuture};
use crate::tenant::TenantId;

/// Lookups one rule may declare.
pub const MAX_LOOKUPS_PER_RULE: usize = 4;
/// Lookups one manifest may declare in all.
pub const MAX_LOOKUPS_PER_MANIFEST: usize = 8;
/// The longest URL template or URL.
pub const MAX_URL: usize = 2048;
/// The largest response a lookup may accept.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The longest per-lookup timeout.
pub const MAX_LOOKUP_TIMEOUT_MS: u64 = 3_000;
/// The longest a response may be cached.
pub const MAX_CACHE_S: u64 = 3_600;
/// Responses kept in the cache at most (the oldest goes first).
pub const CACHE_ENTRIES: usize = 4_096;
/// How long a resolved secret is reused.
pub const SECRET_TTL: Duration = Duration::from_secs(300);

/// A request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`, with the body template.
    Post,
}

/// A header value: text and secret names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderPart {
    /// Literal text.
    Text(String),
    /// A secret resolved by the host.
    Secret(String),
}

/// A validated lookup declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupSpec {
    /// The lookup's name: the data item the rule reads.
    pub name: String,
    /// The method.
    pub method: Method,
    /// The URL's origin, fixed (`https://host[:port]`).
    pub origin: String,
    /// The URL template (the origin and what follows it).
    pub url: KeyTemplate,
    /// Headers: name and value parts.
    pub headers: Vec<(String, Vec<HeaderPart>)>,
    /// The body template (`POST`), its values escaped for a JSON string.
    pub body: Option<KeyTemplate>,
    /// Its timeout.
    pub timeout: Duration,
    /// The largest response accepted.
    pub max_bytes: usize,
    /// How long a response is reused (zero: never).
    pub cache: Duration,
    /// A failed lookup lets the rule run without the item instead of failing it.
    pub fallback: bool,
}

/// One HTTP request the host makes.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: String,
    /// Headers, secrets resolved.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<String>,
    /// The largest response accepted.
    pub max_bytes: usize,
    /// The time it may take, connection included.
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the headers (secrets) nor the URL's values (user attributes).
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

/// Why a lookup gave no answer. Never carries a header, a URL or a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// An answer with a status outside 200–299.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// More than the cap.
    #[error("answered more than {0} bytes")]
    TooLarge(usize),
    /// Not JSON.
    #[error("answered something that is not JSON")]
    NotJson,
    /// The origin is not allow-listed for the rule's owner.
    #[error("origin `{0}` is not allowed for this tenant")]
    NotAllowed(String),
    /// A secret could not be resolved.
    #[error("secret `{0}` could not be resolved")]
    Secret(String),
    /// A URL placeholder has no value for this sign-in, or the URL is too long.
    #[error("{0}")]
    Url(String),
    /// Connecting, TLS or the exchange failed.
    #[error("transport: {0}")]
    Transport(String),
}

/// Makes HTTP requests: TLS, no redirects, the cap enforced while reading.
pub trait HttpClient: Send + Sync + std::fmt::Debug {
    /// Sends `request`; the body of a 2xx answer.
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<Vec<u8>, LookupError>>;
}

/// Resolves secrets by name for their owner.
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    /// The secret `name` of `owner` (a tenant, or `_global`).
    fn secret<'a>(
        &'a self,
        owner: &'a TenantId,
        name: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, BackendError>>;
}

/// The origins each owner's lookups may call (`_global` for global rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(HashMap<TenantId, Vec<String>>);

impl Origins {
    /// Parses `acme=https://risk.example.com|https://fraud.example.com;_global=https://…`.
    pub fn parse(text: &str) -> Result<Origins, String> {
        let mut out: HashMap<TenantId, Vec<String>> = HashMap::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (tenant, origins) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{entry}`: expected TENANT=ORIGIN|ORIGIN"))?;
            let tenant = TenantId::new(tenant.trim())
                .ok_or_else(|| format!("`{}` is not a tenant id", tenant.trim()))?;
            for origin in origins.split('|').map(str::trim).filter(|o| !o.is_empty()) {
                let parsed = origin_of(origin).filter(|o| o == origin).ok_or_else(|| {
                    format!("`{origin}` is not an origin (scheme://host[:port], no path)")
                })?;
                out.entry(tenant.clone()).or_default().push(parsed);
            }
        }
        Ok(Origins(out))
    }

    /// Whether `owner` may call `origin`.
    pub fn allows(&self, owner: &TenantId, origin: &str) -> bool {
        self.0
            .get(owner)
            .is_some_and(|list| list.iter().any(|o| o == origin))
    }
}

/// The origin of an URL (`http(s)://host[:port]`, lower-cased), when it has one.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let valid = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    valid.then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// Percent-encodes everything but RFC 3986's unreserved characters; a value that is all
/// dots (`.`, `..`) is encoded whole, so it can never be a path's dot segment.
pub(super) fn escape_url(value: &str, out: &mut String) {
    if !value.is_empty() && value.bytes().all(|b| b == b'.') {
        out.push_str(&"%2E".repeat(value.len()));
        return;
    }
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Escapes a value for the inside of a JSON string.
pub(super) fn escape_json(value: &str, out: &mut String) {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    out.push_str(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or(""));
}

/// Parses a URL template: an origin, then text and placeholders.
pub(crate) fn parse_url(template: &str) -> Result<(String, KeyTemplate), String> {
    let origin = origin_of(template).ok_or("url must start with https:// or http:// and a host")?;
    let fixed = template.get(..origin.len()).unwrap_or("");
    if !fixed.eq_ignore_ascii_case(&origin)
        || template
            .get(origin.len()..)
            .is_some_and(|r| !r.is_empty() && !r.starts_with(['/', '?']))
    {
        return Err("url: placeholders may only follow the host".into());
    }
    let url = KeyTemplate::parse_within(template, MAX_URL).map_err(|e| match e {
        TemplateError::Length => format!("url must be 1 to {MAX_URL} characters"),
        other => format!("url: {other}"),
    })?;
    Ok((origin, url))
}

type CacheKey = (TenantId, Method, String, Option<String>);

/// The host's lookups: its HTTP client, secrets, allow-list and response cache.
#[derive(Debug)]
pub struct Lookups {
    client: Arc<dyn HttpClient>,
    secrets: Option<Arc<dyn SecretSource>>,
    origins: Origins,
    cache: Mutex<HashMap<CacheKey, (String, Instant)>>,
    secret_cache: Mutex<HashMap<(TenantId, String), (String, Instant)>>,
}

impl Lookups {
    /// Lookups through `client` to the allow-listed `origins`, with secrets from `secrets`.
    pub fn new(
        client: Arc<dyn HttpClient>,
        secrets: Option<Arc<dyn SecretSource>>,
        origins: Origins,
    ) -> Self {
        Lookups {
            client,
            secrets,
            origins,
            cache: Mutex::new(HashMap::new()),
            secret_cache: Mutex::new(HashMap::new()),
        }
    }

    async fn secret(
        &self,
        owner: &TenantId,
        name: &str,
        timeout: Duration,
    ) -> Result<String, LookupError> {
        let key = (owner.clone(), name.to_owned());
        if let Some((value, at)) = self
            .secret_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            && at.elapsed() < SECRET_TTL
        {
            return Ok(value.clone());
        }
        let source = self
            .secrets
            .as_ref()
            .ok_or_else(|| LookupError::Secret(name.to_owned()))?;
        match source.secret(owner, name, timeout).await {
            Ok(value) => {
                self.secret_cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, (value.clone(), Instant::now()));
                Ok(value)
            }
            Err(error) => {
                tracing::warn!(secret = name, owner = %owner, %error, "secret not resolved");
                Err(LookupError::Secret(name.to_owned()))
            }
        }
    }

    /// One lookup for the sign-in: the JSON text of the answer.
    async fn one(
        &self,
        owner: &TenantId,
        spec: &LookupSpec,
        sign_in: &SignIn,
        timeout: Duration,
    ) -> Result<String, LookupError> {
        if !self.origins.allows(owner, &spec.origin) {
            return Err(LookupError::NotAllowed(spec.origin.clone()));
        }
        let url = match spec.url.resolve_with(sign_in, MAX_URL, escape_url) {
            Ok(Some(url)) => url,
            Ok(None) => {
                return Err(LookupError::Url(
                    "a placeholder of its url has no value".into(),
                ));
            }
            Err(_) => return Err(LookupError::Url(format!("its url is over {MAX_URL} bytes"))),
        };
        let body = match &spec.body {
            None => None,
            Some(body) => match body.resolve_with(sign_in, MAX_URL * 8, escape_json) {
                Ok(Some(body)) => Some(body),
                Ok(None) => {
                    return Err(LookupError::Url(
                        "a placeholder of its body has no value".into(),
                    ));
                }
                Err(_) => return Err(LookupError::Url("its body is too long".into())),
            },
        };
        let key = (owner.clone(), spec.method, url.clone(), body.clone());
        if !spec.cache.is_zero()
            && let Some((value, at)) = self
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
            && at.elapsed() < spec.cache
        {
            return Ok(value.clone());
        }
        let started = Instant::now();
        let mut headers = Vec::with_capacity(spec.headers.len());
        for (name, parts) in &spec.headers {
            let mut value = String::new();
            for part in parts {
                match part {
                    HeaderPart::Text(text) => value.push_str(text),
                    HeaderPart::Secret(secret) => {
                        value.push_str(&self.secret(owner, secret, timeout).await?)
                    }
                }
            }
            headers.push((name.clone(), value));
        }
        let left = timeout.saturating_sub(started.elapsed());
        let request = HttpRequest {
            method: spec.method,
            url,
            headers,
            body,
            max_bytes: spec.max_bytes,
            timeout: left,
        };
        let answer = tokio::time::timeout(left, self.client.send(request))
            .await
            .map_err(|_| LookupError::Timeout(timeout))??;
        let json: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|_| LookupError::NotJson)?;
        let text = json.to_string();
        if !spec.cache.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(MAX_CACHE_S));
                if cache.len() >= CACHE_ENTRIES
                    && let Some(oldest) = cache
                        .iter()
                        .min_by_key(|(_, (_, at))| *at)
                        .map(|(k, _)| k.clone())
                {
                    cache.remove(&oldest);
                }
            }
            cache.insert(key, (text.clone(), Instant::now()));
        }
        Ok(text)
    }
}

/// The lookups of `rules` that run for the sign-in's trigger, all at once, each bounded by
/// its timeout and `timeout`. Without a tenant or without lookups configured, rules that
/// declared lookups fail with data-unavailable (or run without them, with `fallback`).
pub async fn read(
    lookups: Option<&Lookups>,
    tenant: Option<&TenantId>,
    rules: &[&LoadedRule],
    sign_in: &SignIn,
    timeout: Duration,
) -> DataSet {
    let wanted: Vec<(&LoadedRule, &LookupSpec)> = rules
        .iter()
        .filter(|r| r.rule.triggers.contains(&sign_in.trigger))
        .flat_map(|r| r.lookups.iter().map(move |l| (*r, l)))
        .collect();
    let mut set = DataSet::default();
    if wanted.is_empty() {
        return set;
    }
    let global = TenantId::global();
    let global = &global;
    let results = futures_util::future::join_all(wanted.iter().map(|(rule, spec)| async move {
        let owner = match rule.rule.origin {
            Origin::Global => Some(global),
            Origin::Tenant => tenant,
        };
        match (lookups, owner, tenant) {
            (Some(lookups), Some(owner), Some(_)) => {
                lookups
                    .one(owner, spec, sign_in, spec.timeout.min(timeout))
                    .await
            }
            (None, _, _) => Err(LookupError::Transport(
                "no HTTP lookups are configured".into(),
            )),
            _ => Err(LookupError::Url(
                "no tenant: lookups are always made for a tenant".into(),
            )),
        }
    }))
    .await;
    let mut items: HashMap<_, Vec<DataItem>> = HashMap::new();
    for ((rule, spec), result) in wanted.into_iter().zip(results) {
        let key = rule.rule.key();
        match result {
            Ok(value) => items.entry(key).or_default().push(DataItem {
                key: spec.name.clone(),
                value,
            }),
            Err(error) if spec.fallback => {
                tracing::info!(rule = %rule.rule.name, lookup = %spec.name, %error, "lookup failed: the rule runs without it");
            }
            Err(error) => {
                set.failed
                    .insert(key, format!("lookup `{}`: {error}", spec.name));
            }
        }
    }
    set.items.extend(
        items
            .into_iter()
            .map(|(rule, items)| (rule, Arc::from(items))),
    );
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_fixed_and_values_cannot_move_them() {
        assert_eq!(
            origin_of("https://Risk.Example.com:8443/v1?x=1").as_deref(),
            Some("https://risk.example.com:8443")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("https://"), None);
        assert_eq!(origin_of("https://user@evil.example/"), None);
        assert!(parse_url("https://risk.example.com/score?u={sub}").is_ok());
        for bad in [
            "https://{attr:host}/x",
            "https://risk.example.com{sub}",
            "http://a.example:{sub}/",
            "risk.example.com/{sub}",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let mut out = String::new();
        escape_url("a b&c=d/e?#@ü", &mut out);
        assert_eq!(out, "a%20b%26c%3Dd%2Fe%3F%23%40%C3%BC");
        for (dots, escaped) in [("..", "%2E%2E"), (".", "%2E"), ("a.b", "a.b")] {
            let mut out = String::new();
            escape_url(dots, &mut out);
            assert_eq!(out, escaped);
        }
        let mut out = String::new();
        escape_json("say \"hi\"\n", &mut out);
        assert_eq!(out, "say \\\"hi\\\"\\n");
    }

    #[test]
    fn the_allow_list_names_origins_per_owner() {
        let origins = Origins::parse(
            "acme=https://risk.example.com|http://127.0.0.1:9000; _global=https://fraud.example",
        )
        .unwrap();
        let acme = TenantId::new("acme").unwrap();
        assert!(origins.allows(&acme, "https://risk.example.com"));
        assert!(origins.allows(&acme, "http://127.0.0.1:9000"));
        assert!(!origins.allows(&acme, "https://fraud.example"));
        assert!(origins.allows(&TenantId::global(), "https://fraud.example"));
        assert!(!origins.allows(
            &TenantId::new("globex").unwrap(),
            "https://risk.example.com"
        ));
        for bad in [
            "acme",
            "acme=https://risk.example.com/path",
            "ACME!=https://x",
        ] {
            assert!(Origins::parse(bad).is_err(), "{bad}");
        }
    }
}
