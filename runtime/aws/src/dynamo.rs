//! DynamoDB: rule data ([`DynamoData`], one `BatchGetItem` round trip per chain, scoped to
//! the tenant, cached briefly across warm invocations), sign-in activity and the audit
//! trail ([`DynamoRecorder`]), and the admin operations behind `portcullis data` and
//! `portcullis activity`.
//!
//! Tables (see `deploy/template.yaml`):
//!
//! | table | keys | items |
//! |---|---|---|
//! | data | `tenant` (hash), `key` (range) | `value`: JSON text given to rules |
//! | activity | `pk` = tenant (hash), `sk` (range) | `user#<name>`: `last_sign_in_ms`, `sign_ins`, `new_device_sign_ins`; `location#<name>` (only with a location TTL): the last trusted `ip`, `country`, `at_ms`, with `expires_at` (TTL); `audit#<ms>#<n>`: audit entries with `expires_at` (TTL) |
//!
//! The tenant is part of every key, so a rule can never read another tenant's items.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use portcullis_gate::activity::{AuditEntry, Location, Recorder, SignInActivity};
use portcullis_gate::backend::BackendError;
use portcullis_gate::data::DataSource;
use portcullis_gate::store::{BoxFuture, TenantId};

/// Keys per `BatchGetItem` request (DynamoDB's limit).
pub const BATCH: usize = 100;
/// Sign-ins of one user closer together than this count once: Cognito retries a trigger
/// that times out, and a retried post-auth must not count twice.
pub const RETRY_WINDOW_MS: i64 = 10_000;

/// A DynamoDB client for `config`.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn err(operation: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Call {
        operation,
        source: Box::new(e),
    }
}

/// The items of `keys` in `table`, with `BatchGetItem` in batches of [`BATCH`], retrying
/// unprocessed keys with back-off until `deadline`; `sent` is called for each request.
pub(crate) async fn batch_get_items(
    client: &Client,
    table: &str,
    keys: Vec<HashMap<String, AttributeValue>>,
    consistent: bool,
    deadline: Instant,
    sent: &(dyn Fn() + Sync),
) -> Result<Vec<HashMap<String, AttributeValue>>, BackendError> {
    let mut found = Vec::new();
    let mut keys = keys.into_iter().peekable();
    while keys.peek().is_some() {
        let mut pending: Vec<_> = keys.by_ref().take(BATCH).collect();
        let mut backoff = Duration::from_millis(10);
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(consistent)
                .build()
                .map_err(|e| err("dynamodb BatchGetItem", e))?;
            sent();
            let output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| err("dynamodb BatchGetItem", e))?;
            if let Some(items) = output.responses().and_then(|r| r.get(table)) {
                found.extend(items.iter().cloned());
            }
            pending = output
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if !pending.is_empty() {
                if Instant::now() + backoff >= deadline {
                    return Err(BackendError::Malformed {
                        operation: "dynamodb BatchGetItem",
                        what: format!("{} keys still unprocessed at the deadline", pending.len()),
                    });
                }
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
    }
    Ok(found)
}

type CacheEntry = (Option<String>, Instant);

/// Rule data in the data table.
#[derive(Debug)]
pub struct DynamoData {
    client: Client,
    table: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<(TenantId, String), CacheEntry>>,
    requests: AtomicU64,
}

impl DynamoData {
    /// Data in `table`; items are cached for `cache_ttl` (zero: no cache).
    pub fn new(client: Client, table: &str, cache_ttl: Duration) -> DynamoData {
        DynamoData {
            client,
            table: table.to_owned(),
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        }
    }

    /// `BatchGetItem` requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn key(tenant: &TenantId, key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("tenant".to_owned(), s(tenant.as_str())),
            ("key".to_owned(), s(key)),
        ])
    }

    /// Fetches uncached keys with `BatchGetItem`, retrying unprocessed keys until `deadline`.
    async fn batch_get(
        &self,
        tenant: &TenantId,
        keys: &[String],
        deadline: Instant,
    ) -> Result<HashMap<String, String>, BackendError> {
        let keys = keys.iter().map(|k| Self::key(tenant, k)).collect();
        let items = batch_get_items(&self.client, &self.table, keys, false, deadline, &|| {
            self.requests.fetch_add(1, Ordering::Relaxed);
        })
        .await?;
        let mut found = HashMap::new();
        for item in items {
            // Only this tenant's items: the key says so, and we check.
            let (Some(AttributeValue::S(t)), Some(AttributeValue::S(k))) =
                (item.get("tenant"), item.get("key"))
            else {
                continue;
            };
            if t != tenant.as_str() {
                continue;
            }
            if let Some(AttributeValue::S(value)) = item.get("value") {
                found.insert(k.clone(), value.clone());
            }
        }
        Ok(found)
    }

    /// Writes an item of rule data (`value` must be JSON).
    pub async fn put(&self, tenant: &TenantId, key: &str, value: &str) -> Result<(), BackendError> {
        serde_json::from_str::<serde_json::Value>(value).map_err(|e| BackendError::Malformed {
            operation: "dynamodb PutItem",
            what: format!("value is not JSON: {e}"),
        })?;
        let mut item = Self::key(tenant, key);
        item.insert("value".to_owned(), s(value));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| err("dynamodb PutItem", e))?;
        Ok(())
    }

    /// Reads an item of rule data (uncached).
    pub async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<String>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("dynamodb GetItem", e))?;
        Ok(match output.item().and_then(|i| i.get("value")) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        })
    }

    /// Deletes an item of rule data; whether it existed.
    pub async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool, BackendError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, key)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| err("dynamodb DeleteItem", e))?;
        Ok(output.attributes().is_some())
    }
}

impl DataSource for DynamoData {
    fn fetch<'a>(
        &'a self,
        tenant: &'a TenantId,
        keys: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, BackendError>> {
        Box::pin(async move {
            let now = Instant::now();
            let deadline = now + timeout;
            let mut items = HashMap::new();
            let mut missing = Vec::new();
            if let Ok(cache) = self.cache.lock() {
                for key in keys {
                    match cache.get(&(tenant.clone(), key.clone())) {
                        Some((value, at)) if now.duration_since(*at) < self.cache_ttl => {
                            if let Some(value) = value {
                                items.insert(key.clone(), value.clone());
                            }
                        }
                        _ => missing.push(key.clone()),
                    }
                }
            } else {
                missing = keys.to_vec();
            }
            if missing.is_empty() {
                return Ok(items);
            }
            let fetched = tokio::time::timeout(timeout, self.batch_get(tenant, &missing, deadline))
                .await
                .map_err(|_| BackendError::Timeout {
                    operation: "dynamodb BatchGetItem",
                    after: timeout,
                })??;
            if !self.cache_ttl.is_zero()
                && let Ok(mut cache) = self.cache.lock()
            {
                let at = Instant::now();
                cache.retain(|_, (_, t)| at.duration_since(*t) < self.cache_ttl);
                for key in &missing {
                    cache.insert(
                        (tenant.clone(), key.clone()),
                        (fetched.get(key).cloned(), at),
                    );
                }
            }
            items.extend(fetched);
            Ok(items)
        })
    }
}

/// One user's sign-in activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Sign-ins counted.
    pub sign_ins: u64,
    /// Of which on a new device.
    pub new_device_sign_ins: u64,
    /// The last, in milliseconds since the Unix epoch.
    pub last_sign_in_ms: i64,
    /// Whether the last one was on a new device.
    pub last_new_device: bool,
}

/// Activity and audit in the activity table.
#[derive(Debug)]
pub struct DynamoRecorder {
    client: Client,
    table: String,
    /// How long audit entries live (`None`: audit off).
    audit_ttl: Option<Duration>,
    /// How long a user's last trusted location is kept (`None`: not kept).
    location_ttl: Option<Duration>,
    retry_window_ms: i64,
    sequence: AtomicU64,
}

impl DynamoRecorder {
    /// Records in `table`; audit entries expire after `audit_ttl` (`None`: no audit).
    pub fn new(client: Client, table: &str, audit_ttl: Option<Duration>) -> DynamoRecorder {
        DynamoRecorder {
            client,
            table: table.to_owned(),
            audit_ttl,
            location_ttl: None,
            retry_window_ms: RETRY_WINDOW_MS,
            sequence: AtomicU64::new(0),
        }
    }

    /// Sign-ins closer together than `ms` count once (default [`RETRY_WINDOW_MS`]).
    pub fn with_retry_window(mut self, ms: i64) -> DynamoRecorder {
        self.retry_window_ms = ms;
        self
    }

    fn user_key(tenant: &str, user: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(tenant)),
            ("sk".to_owned(), s(format!("user#{user}"))),
        ])
    }

    /// Keeps each user's last trusted location (IP and country from the backend's signed
    /// context) for `ttl` after their last sign-in. Off unless asked for.
    pub fn with_location(mut self, ttl: Duration) -> DynamoRecorder {
        self.location_ttl = Some(ttl);
        self
    }

    /// One user's last trusted location, if kept and not expired.
    pub async fn location(
        &self,
        tenant: &TenantId,
        user: &str,
    ) -> Result<Option<Location>, BackendError> {
        let Some(item) = self.item(Self::location_key(tenant.as_str(), user)).await? else {
            return Ok(None);
        };
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        Ok(text("ip").map(|ip| Location {
            ip,
            country: text("country"),
        }))
    }

    /// One item of the activity table, read consistently.
    async fn item(
        &self,
        key: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("dynamodb GetItem", e))?;
        Ok(output.item)
    }

    fn location_key(tenant: &str, user: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(tenant)),
            ("sk".to_owned(), s(format!("location#{user}"))),
        ])
    }

    /// Writes the user's last trusted location (idempotent: a retry writes the same).
    async fn record_location(
        &self,
        sign_in: &SignInActivity,
        location: &Location,
        ttl: Duration,
    ) -> Result<(), BackendError> {
        let expires = sign_in.at_ms / 1000 + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::location_key(
                sign_in.tenant.as_str(),
                &sign_in.user,
            )))
            .expression_attribute_values(":ip", s(&location.ip))
            .expression_attribute_values(":at", n(sign_in.at_ms))
            .expression_attribute_values(":exp", n(expires));
        update = match &location.country {
            Some(country) => update
                .update_expression("SET ip = :ip, country = :c, at_ms = :at, expires_at = :exp")
                .expression_attribute_values(":c", s(country)),
            None => update
                .update_expression("SET ip = :ip, at_ms = :at, expires_at = :exp REMOVE country"),
        };
        update
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err("dynamodb UpdateItem", e))
    }

    /// One user's activity, if any.
    pub async fn activity(
        &self,
        tenant: &TenantId,
        user: &str,
    ) -> Result<Option<Activity>, BackendError> {
        let Some(item) = self.item(Self::user_key(tenant.as_str(), user)).await? else {
            return Ok(None);
        };
        let num = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v.parse::<i64>().unwrap_or(0),
            _ => 0,
        };
        Ok(Some(Activity {
            sign_ins: num("sign_ins").max(0) as u64,
            new_device_sign_ins: num("new_device_sign_ins").max(0) as u64,
            last_sign_in_ms: num("last_sign_in_ms"),
            last_new_device: matches!(
                item.get("last_new_device"),
                Some(AttributeValue::Bool(true))
            ),
        }))
    }

    /// Audit entries of a tenant, oldest first.
    pub async fn audit_entries(
        &self,
        tenant: &str,
    ) -> Result<Vec<HashMap<String, String>>, BackendError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
            .expression_attribute_values(":pk", s(tenant))
            .expression_attribute_values(":audit", s("audit#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("dynamodb Query", e))?;
        Ok(output
            .items()
            .iter()
            .map(|item| {
                item.iter()
                    .map(|(k, v)| {
                        let text = match v {
                            AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        (k.clone(), text)
                    })
                    .collect()
            })
            .collect())
    }
}

impl Recorder for DynamoRecorder {
    fn sign_in<'a>(
        &'a self,
        sign_in: &'a SignInActivity,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let new_device = u64::from(sign_in.new_device);
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::user_key(sign_in.tenant.as_str(), &sign_in.user)))
                .update_expression(
                    "SET last_sign_in_ms = :now, last_new_device = :nd \
                     ADD sign_ins :one, new_device_sign_ins :ndc",
                )
                .condition_expression(
                    "attribute_not_exists(last_sign_in_ms) OR last_sign_in_ms < :window",
                )
                .expression_attribute_values(":now", n(sign_in.at_ms))
                .expression_attribute_values(":nd", AttributeValue::Bool(sign_in.new_device))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":ndc", n(new_device))
                .expression_attribute_values(":window", n(sign_in.at_ms - self.retry_window_ms))
                .send()
                .await;
            match sent {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    tracing::debug!("sign-in within the retry window: counted once");
                }
                Err(e) => return Err(err("dynamodb UpdateItem", e)),
            }
            match (self.location_ttl, &sign_in.location) {
                (Some(ttl), Some(location)) => self.record_location(sign_in, location, ttl).await,
                _ => Ok(()),
            }
        })
    }

    fn audit<'a>(&'a self, entries: &'a [AuditEntry]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let Some(ttl) = self.audit_ttl else {
                return Ok(());
            };
            for chunk in entries.chunks(25) {
                let mut writes = Vec::with_capacity(chunk.len());
                for entry in chunk {
                    let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
                    let expires = entry.at_ms / 1000 + ttl.as_secs() as i64;
                    let tenant = if entry.tenant.is_empty() {
                        "_none"
                    } else {
                        &entry.tenant
                    };
                    let mut item = HashMap::from([
                        ("pk".to_owned(), s(tenant)),
                        (
                            "sk".to_owned(),
                            s(format!(
                                "audit#{:013}#{}#{seq}",
                                entry.at_ms,
                                std::process::id()
                            )),
                        ),
                        ("user".to_owned(), s(&entry.user)),
                        ("trigger".to_owned(), s(&entry.trigger)),
                        ("rule".to_owned(), s(&entry.rule)),
                        ("outcome".to_owned(), s(&entry.outcome)),
                        ("at_ms".to_owned(), n(entry.at_ms)),
                        ("expires_at".to_owned(), n(expires)),
                    ]);
                    if let Some(revision) = entry.revision {
                        item.insert("revision".to_owned(), n(revision));
                    }
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(|e| err("dynamodb BatchWriteItem", e))?;
                    writes.push(WriteRequest::builder().put_request(put).build());
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, writes)
                    .send()
                    .await
                    .map_err(|e| err("dynamodb BatchWriteItem", e))?;
                if output.unprocessed_items().is_some_and(|u| !u.is_empty()) {
                    return Err(BackendError::Malformed {
                        operation: "dynamodb BatchWriteItem",
                        what: "some audit entries unprocessed".into(),
                    });
                }
            }
            Ok(())
        })
    }
}
