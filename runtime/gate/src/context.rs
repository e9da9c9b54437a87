//! Trusted context: what the app's backend vouches for about a sign-in (the end user's IP,
//! user agent, device and free fields), carried in a signed envelope through Cognito's
//! client metadata and verified here before any rule sees it.
//!
//! A public client sets `ClientMetadata`/`validationData` to whatever it likes, and
//! Cognito's own signals never reach a trigger. So the backend signs what it saw with the
//! tenant's context key and passes the envelope under [`METADATA_KEY`]; the host checks
//! the signature, the tenant, the user (when the envelope names one), the freshness and
//! replays, and hands the rules a `trusted-context`. The client's own metadata stays
//! visible to rules as client metadata; the envelope itself is taken out of it.
//!
//! The envelope is three dot-separated parts, `v1.<payload>.<mac>`: the payload is
//! base64url (no padding) of a JSON object, the MAC is base64url of HMAC-SHA256 with the
//! tenant's key over `portcullis-context.v1.<tenant>.<payload>`:
//!
//! ```json
//! {"tenant": "acme", "iat_ms": 1767268800000, "nonce": "5f0c…", "user": "ada",
//!  "ip": "203.0.113.7", "user_agent": "…", "device_id": "…", "fields": {"risk_score": "12"}}
//! ```
//!
//! `tenant`, `iat_ms` and `nonce` are required; the rest is optional. Signing helpers:
//! [`sign`] (Rust, `portcullis context sign`), `@portcullis/sdk/context` (Node) and
//! `portcullis.context` (Python). No key, signature or value is ever logged: refusals are
//! recorded by kind only.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use portcullis_engine::contract::{SignIn, TrustedContext};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::tenant::TenantId;

/// The client metadata (and pre-auth validation data) key the envelope travels under.
pub const METADATA_KEY: &str = "portcullis_context";
/// The longest envelope read; longer ones are refused before decoding.
pub const MAX_ENVELOPE: usize = 4096;
/// The most free fields an envelope may carry.
pub const MAX_FIELDS: usize = 32;
/// The shortest context key, in bytes.
pub const MIN_KEY: usize = 32;
/// The envelope format's version prefix.
const VERSION: &str = "v1";
/// What the MAC covers before the tenant and the payload.
const DOMAIN: &str = "portcullis-context.v1.";

type HmacSha256 = Hmac<Sha256>;

/// The signed payload of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The tenant the envelope is for.
    pub tenant: String,
    /// When the backend signed it, in milliseconds since the Unix epoch.
    pub iat_ms: i64,
    /// A value unique to this envelope (replays are recognised by it).
    pub nonce: String,
    /// The Cognito user name the envelope is for; when present, it must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The end user's IP address as the backend saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The end user's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The backend's device identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Other fields the backend vouches for.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Why an envelope was not trusted. Recorded by kind; never with its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The sign-in has no tenant, or the tenant has no context key.
    #[error("no context key for this tenant")]
    NoKey,
    /// Over [`MAX_ENVELOPE`] bytes.
    #[error("envelope is over {MAX_ENVELOPE} bytes")]
    TooLarge,
    /// Not `v1.<payload>.<mac>`, or the payload is not the expected JSON.
    #[error("envelope is malformed: {0}")]
    Malformed(&'static str),
    /// The MAC does not verify with any of the tenant's keys.
    #[error("signature does not verify")]
    BadSignature,
    /// Signed for another tenant.
    #[error("envelope is for another tenant")]
    WrongTenant,
    /// Signed for another user.
    #[error("envelope is for another user")]
    WrongUser,
    /// Older than the maximum age.
    #[error("envelope expired")]
    Expired,
    /// Issued later than now, beyond the allowed clock skew.
    #[error("envelope is issued in the future")]
    FromTheFuture,
    /// Its nonce was first seen longer ago than the reuse window.
    #[error("envelope was replayed")]
    Replayed,
}

/// What became of a sign-in's envelope (the decision record's `context`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContextStatus {
    /// Verified: the rules see it as trusted context.
    Trusted,
    /// Present but not trusted, for this reason.
    Refused(String),
}

/// The deployment's context keys: each tenant's, newest first (more than one while a key
/// is rotated).
#[derive(Clone, Default)]
pub struct ContextKeys {
    keys: HashMap<TenantId, Vec<HmacSha256>>,
}

impl std::fmt::Debug for ContextKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextKeys")
            .field("tenants", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Context keys that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// Not a JSON object of tenant → key (or list of keys).
    #[error("context keys must be a JSON object of tenant → key or [keys]: {0}")]
    Malformed(String),
    /// A tenant id that is not one.
    #[error("context keys: {0}")]
    Tenant(String),
    /// A key under [`MIN_KEY`] bytes.
    #[error("context key of tenant `{tenant}` is {len} bytes; at least {MIN_KEY} are needed")]
    Weak {
        /// The tenant.
        tenant: String,
        /// The key's length.
        len: usize,
    },
}

impl ContextKeys {
    /// Keys from their JSON text: `{"acme": "KEY", "globex": ["NEW", "OLD"]}`; a key is
    /// its trimmed text's bytes, at least [`MIN_KEY`] of them.
    pub fn parse(text: &str) -> Result<ContextKeys, KeysError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let raw: HashMap<String, OneOrMany> =
            serde_json::from_str(text).map_err(|e| KeysError::Malformed(e.to_string()))?;
        let mut keys = ContextKeys::default();
        for (tenant, value) in raw {
            let list = match value {
                OneOrMany::One(key) => vec![key],
                OneOrMany::Many(list) => list,
            };
            for key in list {
                keys.add(&tenant, key.trim().as_bytes())?;
            }
        }
        Ok(keys)
    }

    /// Adds `key` for `tenant` (after the keys it has).
    pub fn add(&mut self, tenant: &str, key: &[u8]) -> Result<(), KeysError> {
        let id: TenantId = tenant
            .parse()
            .map_err(|e: crate::tenant::BadTenantId| KeysError::Tenant(e.to_string()))?;
        if key.len() < MIN_KEY {
            return Err(KeysError::Weak {
                tenant: tenant.to_owned(),
                len: key.len(),
            });
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|_| KeysError::Weak {
            tenant: tenant.to_owned(),
            len: key.len(),
        })?;
        self.keys.entry(id).or_default().push(mac);
        Ok(())
    }

    /// How many tenants have keys.
    pub fn tenants(&self) -> usize {
        self.keys.len()
    }
}

/// How envelopes are judged.
#[derive(Debug, Clone)]
pub struct ContextConfig {
    /// The oldest envelope accepted (by its `iat_ms`).
    pub max_age: Duration,
    /// How long after its first use an envelope may be presented again: one sign-in shows
    /// it to several triggers (pre-authentication, post-authentication, token generation)
    /// and Cognito retries; any later use is a replay.
    pub reuse_window: Duration,
    /// How far in the future an `iat_ms` may be (clocks differ).
    pub skew: Duration,
    /// Nonces remembered at most; the oldest are forgotten first.
    pub max_nonces: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            max_age: Duration::from_secs(120),
            reuse_window: Duration::from_secs(30),
            skew: Duration::from_secs(5),
            // Far above what one instance signs in within an envelope's age (it handles one
            // invocation at a time), and a few MB at most.
            max_nonces: 20_000,
        }
    }
}

/// Verifies envelopes and remembers nonces (per process: a replay to another Lambda
/// instance within the envelope's age is not seen; the age bounds it).
#[derive(Debug)]
pub struct ContextVerifier {
    keys: ContextKeys,
    config: ContextConfig,
    seen: Mutex<Seen>,
}

/// Nonces seen: when each was first used, oldest first for eviction.
#[derive(Debug, Default)]
struct Seen {
    first_use: HashMap<(TenantId, String), i64>,
    order: VecDeque<(i64, TenantId, String)>,
}

impl ContextVerifier {
    /// A verifier with these keys and settings.
    pub fn new(keys: ContextKeys, config: ContextConfig) -> ContextVerifier {
        ContextVerifier {
            keys,
            config,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Takes the envelope out of `sign_in`'s client metadata and, if it verifies for
    /// `tenant` at `now_ms`, sets `sign_in.trusted`. `None` when there was no envelope.
    pub fn apply(
        &self,
        sign_in: &mut SignIn,
        tenant: Option<&TenantId>,
        now_ms: i64,
    ) -> Option<ContextStatus> {
        let at = sign_in
            .client_metadata
            .iter()
            .position(|(key, _)| key == METADATA_KEY)?;
        let (_, envelope) = sign_in.client_metadata.remove(at);
        let verified = tenant.ok_or(Refused::NoKey).and_then(|tenant| {
            self.verify(&envelope, tenant, sign_in.user_name.as_deref(), now_ms)
        });
        Some(match verified {
            Ok(context) => {
                sign_in.trusted = Some(context);
                ContextStatus::Trusted
            }
            Err(refused) => ContextStatus::Refused(refused.to_string()),
        })
    }

    /// Verifies `envelope` for `tenant` (and `user`, when it names one) at `now_ms`.
    pub fn verify(
        &self,
        envelope: &str,
        tenant: &TenantId,
        user: Option<&str>,
        now_ms: i64,
    ) -> Result<TrustedContext, Refused> {
        let keys = self.keys.keys.get(tenant).ok_or(Refused::NoKey)?;
        let claims = open(envelope, tenant, keys)?;
        if claims.tenant != tenant.as_str() {
            return Err(Refused::WrongTenant);
        }
        if let Some(expected) = &claims.user
            && user != Some(expected.as_str())
        {
            return Err(Refused::WrongUser);
        }
        let age = now_ms.saturating_sub(claims.iat_ms);
        if age > millis(self.config.max_age) {
            return Err(Refused::Expired);
        }
        if age < -millis(self.config.skew) {
            return Err(Refused::FromTheFuture);
        }
        self.first_use(tenant, &claims.nonce, now_ms)?;
        Ok(TrustedContext {
            ip: claims.ip,
            user_agent: claims.user_agent,
            device_id: claims.device_id,
            issued_at_ms: claims.iat_ms,
            fields: claims.fields.into_iter().collect(),
        })
    }

    /// Records the nonce's first use, or refuses a use after the reuse window.
    fn first_use(&self, tenant: &TenantId, nonce: &str, now_ms: i64) -> Result<(), Refused> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget nonces whose envelopes have expired anyway, and the oldest over the cap.
        let horizon = now_ms - millis(self.config.max_age) - millis(self.config.skew);
        // An envelope first used before the horizon has expired by now, whatever its
        // `iat_ms` (at most `skew` after its first use).
        while let Some(&(first, ..)) = seen.order.front() {
            if first >= horizon && seen.order.len() < self.config.max_nonces {
                break;
            }
            if let Some((_, t, n)) = seen.order.pop_front() {
                seen.first_use.remove(&(t, n));
            }
        }
        let key = (tenant.clone(), nonce.to_owned());
        match seen.first_use.get(&key) {
            Some(first) if now_ms - first > millis(self.config.reuse_window) => {
                Err(Refused::Replayed)
            }
            Some(_) => Ok(()),
            None => {
                seen.first_use.insert(key, now_ms);
                seen.order
                    .push_back((now_ms, tenant.clone(), nonce.to_owned()));
                Ok(())
            }
        }
    }
}

/// The claims of `envelope` if its MAC verifies with one of `keys` for `tenant`.
fn open(envelope: &str, tenant: &TenantId, keys: &[HmacSha256]) -> Result<Claims, Refused> {
    if envelope.len() > MAX_ENVELOPE {
        return Err(Refused::TooLarge);
    }
    let mut parts = envelope.trim().split('.');
    let (Some(VERSION), Some(payload), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed("expected v1.<payload>.<mac>"));
    };
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| Refused::Malformed("the MAC is not base64url"))?;
    let verifies = keys.iter().any(|key| {
        let mut key = key.clone();
        feed(&mut key, tenant.as_str(), payload);
        key.verify_slice(&mac).is_ok()
    });
    if !verifies {
        return Err(Refused::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refused::Malformed("the payload is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&json)
        .map_err(|_| Refused::Malformed("the payload is not a context object"))?;
    if claims.fields.len() > MAX_FIELDS {
        return Err(Refused::Malformed("too many fields"));
    }
    if claims.nonce.is_empty() || claims.nonce.len() > 128 {
        return Err(Refused::Malformed("the nonce must be 1 to 128 characters"));
    }
    Ok(claims)
}

/// What the MAC covers: the domain, the tenant and the payload as sent.
fn feed(mac: &mut HmacSha256, tenant: &str, payload: &str) {
    mac.update(DOMAIN.as_bytes());
    mac.update(tenant.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
}

/// Signs `claims` with `key` (at least [`MIN_KEY`] bytes): the envelope a backend puts in
/// client metadata under [`METADATA_KEY`].
pub fn sign(claims: &Claims, key: &[u8]) -> Result<String, KeysError> {
    if key.len() < MIN_KEY {
        return Err(KeysError::Weak {
            tenant: claims.tenant.clone(),
            len: key.len(),
        });
    }
    let json = serde_json::to_vec(claims).map_err(|e| KeysError::Malformed(e.to_string()))?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| KeysError::Weak {
        tenant: claims.tenant.clone(),
        len: key.len(),
    })?;
    feed(&mut mac, &claims.tenant, &payload);
    let mac = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{VERSION}.{payload}.{mac}"))
}

/// A fresh random nonce (128 bits, hex).
pub fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
