//! Rule counters in DynamoDB ([`DynamoCounters`]): the counter table, keyed by `tenant`
//! (hash) and `id` (range, [`counter_id`](portcullis_gate::data::counters::counter_id)),
//! with `n`, `since_ms`, `expires_at` (TTL, seconds) and the retry mark `late_event`,
//! `late_until`.
//!
//! Every change is one conditional write, applying
//! [`step`](portcullis_gate::data::counters::step) atomically: an addition within the
//! window is `ADD n :added` on the condition that the window is still open and the item does
//! not carry this event's retry mark; otherwise a new window is put on the condition that
//! there is none open. Two invocations counting at once both count: the conditions make
//! one of them take the other path. A reset is a delete. Reads are one consistent
//! `BatchGetItem` for the chain, at the same time as the data prefetch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis_gate::backend::BackendError;
use portcullis_gate::data::counters::{
    Applied, Applying, Change, ChangeKind, CounterStore, RETRY_WINDOW_MS, Window,
};
use portcullis_gate::store::{BoxFuture, TenantId};

use crate::dynamo::batch_get_items;

/// Counters in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCounters {
    client: Client,
    table: String,
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

/// What one conditional write came to.
enum Wrote {
    Done,
    ConditionFailed,
}

/// The result of a conditional write: a failed condition is an answer, not an error.
fn conditional<T, E>(
    operation: &'static str,
    sent: Result<T, aws_sdk_dynamodb::error::SdkError<E>>,
    failed_condition: impl Fn(&E) -> bool,
) -> Result<Wrote, BackendError>
where
    E: std::error::Error + Send + Sync + 'static,
    aws_sdk_dynamodb::error::SdkError<E>: std::error::Error + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Ok(Wrote::Done),
        Err(e) if e.as_service_error().is_some_and(&failed_condition) => Ok(Wrote::ConditionFailed),
        Err(e) => Err(err(operation, e)),
    }
}

impl DynamoCounters {
    /// Counters in `table`.
    pub fn new(client: Client, table: &str) -> Self {
        DynamoCounters {
            client,
            table: table.to_owned(),
        }
    }

    fn key(tenant: &TenantId, id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("tenant".to_owned(), s(tenant.as_str())),
            ("id".to_owned(), s(id)),
        ])
    }

    async fn read_all(
        &self,
        tenant: &TenantId,
        ids: &[String],
        deadline: Instant,
    ) -> Result<HashMap<String, Window>, BackendError> {
        let keys = ids.iter().map(|id| Self::key(tenant, id)).collect();
        let items =
            batch_get_items(&self.client, &self.table, keys, true, deadline, &|| {}).await?;
        let mut found = HashMap::new();
        for item in items {
            let (Some(AttributeValue::S(t)), Some(AttributeValue::S(id))) =
                (item.get("tenant"), item.get("id"))
            else {
                continue;
            };
            if t != tenant.as_str() {
                continue;
            }
            let number = |name: &str| match item.get(name) {
                Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
                _ => None,
            };
            if let (Some(count), Some(since_ms)) = (number("n"), number("since_ms")) {
                let count = u64::try_from(count).unwrap_or(0);
                found.insert(id.clone(), Window { count, since_ms });
            }
        }
        Ok(found)
    }

    /// Applies one change: `true` when it counted.
    async fn apply_one(
        &self,
        tenant: &TenantId,
        change: &Change,
        applying: &Applying,
    ) -> Result<bool, BackendError> {
        let key = Self::key(tenant, &change.id);
        let added = match change.kind {
            ChangeKind::Add(n) => n,
            ChangeKind::Reset => 0,
        };
        if change.kind == ChangeKind::Reset {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .map_err(|e| err("dynamodb DeleteItem", e))?;
            return Ok(true);
        }
        let now = applying.now_ms;
        let cutoff = now.saturating_sub(change.window_ms);
        let until = now.saturating_add(RETRY_WINDOW_MS);
        let expires_at = now.saturating_add(change.window_ms) / 1000 + 1;
        // Two rounds: a new window put by another invocation between our two writes sends
        // us back to the addition.
        for _ in 0..2 {
            let mut add = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .condition_expression(
                    "since_ms > :cutoff AND (attribute_not_exists(late_event) \
                     OR late_event <> :event OR late_until <= :now)",
                )
                .expression_attribute_values(":cutoff", n(cutoff))
                .expression_attribute_values(":event", s(&applying.event))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":added", n(added));
            add = if applying.late {
                add.update_expression("ADD n :added SET late_event = :event, late_until = :until")
                    .expression_attribute_values(":until", n(until))
            } else {
                add.update_expression("ADD n :added")
            };
            let sent = add.send().await;
            if let Wrote::Done = conditional("dynamodb UpdateItem", sent, |e| {
                e.is_conditional_check_failed_exception()
            })? {
                return Ok(true);
            }
            let mut item = key.clone();
            item.insert("n".into(), n(added));
            item.insert("since_ms".into(), n(now));
            item.insert("expires_at".into(), n(expires_at));
            if applying.late {
                item.insert("late_event".into(), s(&applying.event));
                item.insert("late_until".into(), n(until));
            }
            let sent = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(id) OR since_ms <= :cutoff")
                .expression_attribute_values(":cutoff", n(cutoff))
                .send()
                .await;
            if let Wrote::Done = conditional("dynamodb PutItem", sent, |e| {
                e.is_conditional_check_failed_exception()
            })? {
                return Ok(true);
            }
        }
        // An open window carrying this event's retry mark: a retry, not counted. Answered
        // in time, it is the last retry: the mark goes.
        if !applying.late {
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("REMOVE late_event, late_until")
                .condition_expression("late_event = :event")
                .expression_attribute_values(":event", s(&applying.event))
                .send()
                .await;
            conditional("dynamodb UpdateItem", sent, |e| {
                e.is_conditional_check_failed_exception()
            })?;
        }
        Ok(false)
    }
}

impl CounterStore for DynamoCounters {
    fn read<'a>(
        &'a self,
        tenant: &'a TenantId,
        ids: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<HashMap<String, Window>, BackendError>> {
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            tokio::time::timeout(timeout, self.read_all(tenant, ids, deadline))
                .await
                .unwrap_or(Err(BackendError::Timeout {
                    operation: "dynamodb BatchGetItem",
                    after: timeout,
                }))
        })
    }

    fn apply<'a>(
        &'a self,
        tenant: &'a TenantId,
        changes: &'a [Change],
        applying: &'a Applying,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Applied, BackendError>> {
        Box::pin(async move {
            // One counter's changes in order; different counters at once.
            let mut groups: Vec<Vec<&Change>> = Vec::new();
            for change in changes {
                match groups
                    .iter_mut()
                    .find(|g| g.first().is_some_and(|c| c.id == change.id))
                {
                    Some(group) => group.push(change),
                    None => groups.push(vec![change]),
                }
            }
            let all = futures_util::future::join_all(groups.into_iter().map(|group| async move {
                let mut results = Vec::with_capacity(group.len());
                for change in group {
                    results.push(self.apply_one(tenant, change, applying).await);
                }
                results
            }));
            let results =
                tokio::time::timeout(timeout, all)
                    .await
                    .map_err(|_| BackendError::Timeout {
                        operation: "dynamodb UpdateItem",
                        after: timeout,
                    })?;
            let mut applied = Applied::default();
            for result in results.into_iter().flatten() {
                if result? {
                    applied.applied += 1;
                } else {
                    applied.repeated += 1;
                }
            }
            Ok(applied)
        })
    }
}
