//! Declared counters: windowed counts a rule declares in its manifest entry (lockout after
//! N failed attempts, sign-ins per minute per IP), read by the host beside the rule's data
//! and changed by the host after the decision. Rules stay pure: a rule sees a count as a
//! data item and decides; it never writes.
//!
//! ```json
//! "counters": {
//!   "attempts": {"key": "user#{sub}", "window_s": 900},
//!   "ip": {"key": "ip#{trusted:ip}", "window_s": 60, "reset_on": []}
//! }
//! ```
//!
//! - **Window.** A count is a fixed window: the first count starts it, and `window_s`
//!   after that it is over (the next count starts a new one at 1). The rule sees the data
//!   item named like the counter: `{"count": 3, "window_s": 900, "resets_at_ms": …}`
//!   (`resets_at_ms` is `null` at 0). A key whose placeholder has no value (no verified
//!   `{trusted:ip}`) is neither read nor counted: the rule sees no item.
//! - **What changes it.** The triggers: by default pre-authentication adds one (an
//!   attempt, seen before the password is checked) and post-authentication resets it (a
//!   success), so the count is the failed attempts since the last success — Cognito calls
//!   no trigger on a wrong password. `count_on` and `reset_on` choose other triggers
//!   (`"reset_on": []` for a velocity limit). Changes are applied after the chain
//!   decided, whatever it decided (a blocked attempt is still an attempt), for every rule
//!   of the deciding sets that declares the counter, whether or not the rule runs for the
//!   trigger. A rule may also ask for changes itself (`count` in the contract's `host`
//!   interface: add 1 to 1000, or reset, at most 16 per evaluation): applied after the
//!   implied ones, in order, when its verdict is applied ([`requested`]).
//! - **Scope.** A counter belongs to one tenant, one origin (`_global` or the tenant's
//!   manifest), one rule and one name: [`counter_id`]. A tenant's rule can never read,
//!   count or reset a global rule's counter, another rule's, or another tenant's.
//! - **Retries.** Cognito retries a trigger whose answer did not arrive within 5 s. An
//!   invocation that applies its changes late ([`LATE_AFTER`] after it started: Cognito may
//!   already have given up on it) marks each counter with the event's digest; the same
//!   event within [`RETRY_WINDOW_MS`] does not count again, and once one such retry is
//!   answered in time (Cognito retries no more) the mark is gone. Identical events
//!   answered in time count every time: a client that repeats the same attempt is
//!   attempting again, and skipping identical events would let a brute force hide its
//!   attempts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portcullis_engine::chain::{DataSet, Effect, Origin, RuleReport};
use portcullis_engine::contract::{CounterChange, DataItem, SignIn, Trigger};

use super::{KeyTemplate, LoadedRule};
use crate::backend::{BackendError, BoxFuture};
use crate::tenant::TenantId;

/// Counters one rule may declare.
pub const MAX_COUNTERS_PER_RULE: usize = 4;
/// Counters one manifest may declare in all.
pub const MAX_COUNTERS_PER_MANIFEST: usize = 32;
/// The longest window: one week.
pub const MAX_WINDOW_S: u64 = 7 * 24 * 3600;
/// Changes applied this long after the invocation started may have missed Cognito's 5 s:
/// they mark the counter so that Cognito's retry of the same event does not count again.
pub const LATE_AFTER: Duration = Duration::from_secs(2);
/// How long a late change's mark holds: Cognito's retries come within seconds.
pub const RETRY_WINDOW_MS: i64 = 15_000;

/// A validated counter declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSpec {
    /// The counter's name: the data item the rule reads.
    pub name: String,
    /// Its key template.
    pub key: KeyTemplate,
    /// Its window in milliseconds.
    pub window_ms: i64,
    /// Triggers that add one.
    pub count_on: Vec<Trigger>,
    /// Triggers that reset it.
    pub reset_on: Vec<Trigger>,
}

/// A counter as stored: its count and when its window started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Counts in the window.
    pub count: u64,
    /// When the window started, in milliseconds since the Unix epoch.
    pub since_ms: i64,
}

impl Window {
    /// The count at `now_ms` for a window of `window_ms`: 0 once the window is over.
    pub fn count_at(&self, now_ms: i64, window_ms: i64) -> u64 {
        if now_ms < self.since_ms.saturating_add(window_ms) {
            self.count
        } else {
            0
        }
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Add this many (starting a new window when the last one is over).
    Add(u32),
    /// Back to zero.
    Reset,
}

/// One change to one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The counter ([`counter_id`]).
    pub id: String,
    /// Add or reset.
    pub kind: ChangeKind,
    /// The counter's window in milliseconds.
    pub window_ms: i64,
}

/// What one invocation's changes share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applying {
    /// The host time, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// The sha256 of the event, hex: how a retry of it is known.
    pub event: String,
    /// The invocation may have missed Cognito's deadline: mark the counters.
    pub late: bool,
}

/// What became of one invocation's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Applied {
    /// Changes applied.
    pub applied: usize,
    /// Additions skipped: a retry of an event that already counted late.
    pub repeated: usize,
}

/// Where counters are kept. Implementations must keep every tenant's counters apart and
/// apply [`step`]'s semantics atomically per counter.
pub trait CounterStore: Send + Sync + std::fmt::Debug {
    /// The stored windows of `ids` of `tenant` (absent: never counted or reset).
    fn read<'a>(
        &'a self,
        tenant: &'a TenantId,
        ids: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<HashMap<String, Window>, BackendError>>;

    /// Applies `changes` to `tenant`'s counters.
    fn apply<'a>(
        &'a self,
        tenant: &'a TenantId,
        changes: &'a [Change],
        applying: &'a Applying,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Applied, BackendError>>;
}

/// A counter as a store keeps it: its window and the mark of a late change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stored {
    /// The window.
    pub window: Window,
    /// The event digest of a late change, and until when it holds.
    pub late: Option<(String, i64)>,
}

/// What a change makes of a stored counter (`None`: absent), and whether it counted.
/// Every store applies exactly this, atomically per counter.
pub fn step(
    stored: Option<Stored>,
    change: &Change,
    applying: &Applying,
) -> (Option<Stored>, bool) {
    let now = applying.now_ms;
    let added = match change.kind {
        ChangeKind::Reset => return (None, true),
        ChangeKind::Add(n) => n,
    };
    let mark = applying
        .late
        .then(|| (applying.event.clone(), now.saturating_add(RETRY_WINDOW_MS)));
    match stored {
        Some(mut stored) if stored.window.count_at(now, change.window_ms) > 0 => {
            let retried = matches!(&stored.late, Some((event, until)) if *event == applying.event && now < *until);
            if retried {
                // Answered in time, this retry is the last: the next identical event is a
                // new attempt.
                if !applying.late {
                    stored.late = None;
                }
                return (Some(stored), false);
            }
            stored.window.count = stored.window.count.saturating_add(u64::from(added));
            if mark.is_some() {
                stored.late = mark;
            }
            (Some(stored), true)
        }
        _ => (
            Some(Stored {
                window: Window {
                    count: u64::from(added),
                    since_ms: now,
                },
                late: mark,
            }),
            true,
        ),
    }
}

/// The stored name of counter `name` of `rule` from `origin`, for key `key`: the tenant is
/// the store's partition, so ids of different tenants never meet.
pub fn counter_id(origin: Origin, rule: &str, name: &str, key: &str) -> String {
    let origin = match origin {
        Origin::Global => "global",
        Origin::Tenant => "tenant",
    };
    format!("{origin}#{rule}#{name}#{key}")
}

/// The counters of `rules` that run for the sign-in's trigger, read in one call and handed
/// to each rule as data items named like its counters. A rule whose counters cannot be read
/// fails with data-unavailable (its `on_error` decides).
pub async fn read(
    store: Option<&dyn CounterStore>,
    tenant: Option<&TenantId>,
    rules: &[&LoadedRule],
    sign_in: &SignIn,
    timeout: Duration,
) -> DataSet {
    let mut set = DataSet::default();
    let mut wanted = Vec::new();
    for loaded in rules
        .iter()
        .filter(|r| !r.counters.is_empty() && r.rule.triggers.contains(&sign_in.trigger))
    {
        let rule = loaded.rule.key();
        for counter in &loaded.counters {
            match counter.key.resolve(sign_in) {
                Ok(Some(key)) => {
                    let id = counter_id(
                        loaded.rule.origin,
                        loaded.rule.name.as_str(),
                        &counter.name,
                        &key,
                    );
                    wanted.push((rule.clone(), counter, id));
                }
                Ok(None) => {}
                Err(error) => {
                    set.failed
                        .insert(rule.clone(), format!("counter `{}`: {error}", counter.name));
                }
            }
        }
    }
    if wanted.is_empty() {
        return set;
    }
    let (Some(store), Some(tenant)) = (store, tenant) else {
        let why = match tenant {
            None => "no tenant: counters are always scoped to a tenant",
            Some(_) => "no counter store is configured",
        };
        for (rule, _, _) in wanted {
            set.failed.insert(rule, why.to_owned());
        }
        return set;
    };
    let ids: Vec<String> = wanted.iter().map(|(_, _, id)| id.clone()).collect();
    match store.read(tenant, &ids, timeout).await {
        Ok(windows) => {
            let mut items: HashMap<_, Vec<DataItem>> = HashMap::new();
            for (rule, counter, id) in wanted {
                let window = windows.get(&id).copied().unwrap_or_default();
                let count = window.count_at(sign_in.now_unix_ms, counter.window_ms);
                let resets_at =
                    (count > 0).then(|| window.since_ms.saturating_add(counter.window_ms));
                let value = serde_json::json!({
                    "count": count,
                    "window_s": counter.window_ms / 1000,
                    "resets_at_ms": resets_at,
                });
                items.entry(rule).or_default().push(DataItem {
                    key: counter.name.clone(),
                    value: value.to_string(),
                });
            }
            set.items.extend(
                items
                    .into_iter()
                    .map(|(rule, items)| (rule, Arc::from(items))),
            );
        }
        Err(error) => {
            for (rule, _, _) in wanted {
                set.failed.insert(rule, error.to_string());
            }
        }
    }
    set
}

/// The changes the sign-in's trigger implies for the counters of `rules`.
pub fn changes(rules: &[&LoadedRule], sign_in: &SignIn) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for loaded in rules {
        for counter in &loaded.counters {
            let kind = if counter.count_on.contains(&sign_in.trigger) {
                ChangeKind::Add(1)
            } else if counter.reset_on.contains(&sign_in.trigger) {
                ChangeKind::Reset
            } else {
                continue;
            };
            // Unresolved or over-long keys were never read: nothing to change.
            let Ok(Some(key)) = counter.key.resolve(sign_in) else {
                continue;
            };
            let id = counter_id(
                loaded.rule.origin,
                loaded.rule.name.as_str(),
                &counter.name,
                &key,
            );
            if !out.iter().any(|c| c.id == id) {
                out.push(Change {
                    id,
                    kind,
                    window_ms: counter.window_ms,
                });
            }
        }
    }
    out
}

/// The changes applied rules asked for (`count` in the contract's `host` interface), in
/// order, after the implied ones: only rules whose verdict was applied (or decided the
/// chain), only counters
/// they declared, only keys that resolve for the sign-in.
pub fn requested(rules: &[&LoadedRule], reports: &[RuleReport], sign_in: &SignIn) -> Vec<Change> {
    let mut out = Vec::new();
    let used = |r: &&RuleReport| matches!(r.effect, Effect::Applied | Effect::Decided);
    for report in reports.iter().filter(used) {
        let Some(loaded) = rules
            .iter()
            .find(|l| l.rule.origin == report.origin && l.rule.name == report.rule)
        else {
            continue;
        };
        for (name, change) in &report.evaluation.counts {
            let Some(counter) = loaded.counters.iter().find(|c| c.name == *name) else {
                continue;
            };
            let Ok(Some(key)) = counter.key.resolve(sign_in) else {
                continue;
            };
            out.push(Change {
                id: counter_id(loaded.rule.origin, loaded.rule.name.as_str(), name, &key),
                kind: match change {
                    CounterChange::Add(n) => ChangeKind::Add(*n),
                    CounterChange::Reset => ChangeKind::Reset,
                },
                window_ms: counter.window_ms,
            });
        }
    }
    out
}

/// Adds `other`'s items and failures to `set` (a rule's data items and counters together).
pub fn merge(set: &mut DataSet, other: DataSet) {
    for (rule, items) in other.items {
        let joined: Arc<[DataItem]> = match set.items.get(&rule) {
            Some(mine) => mine.iter().chain(items.iter()).cloned().collect(),
            None => items,
        };
        set.items.insert(rule, joined);
    }
    set.failed.extend(other.failed);
}

/// Counters in this process's memory: for `portcullis handle`, the demo and tests. Same
/// semantics as the DynamoDB store, kept only as long as the process.
#[derive(Debug, Default)]
pub struct MemoryCounters {
    counters: Mutex<HashMap<(TenantId, String), Stored>>,
}

impl MemoryCounters {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl CounterStore for MemoryCounters {
    fn read<'a>(
        &'a self,
        tenant: &'a TenantId,
        ids: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<HashMap<String, Window>, BackendError>> {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let found = ids
            .iter()
            .filter_map(|id| {
                let stored = counters.get(&(tenant.clone(), id.clone()))?;
                Some((id.clone(), stored.window))
            })
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn apply<'a>(
        &'a self,
        tenant: &'a TenantId,
        changes: &'a [Change],
        applying: &'a Applying,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Applied, BackendError>> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut applied = Applied::default();
        for change in changes {
            let key = (tenant.clone(), change.id.clone());
            let (next, counted) = step(counters.remove(&key), change, applying);
            if let Some(next) = next {
                counters.insert(key, next);
            }
            if counted {
                applied.applied += 1;
            } else {
                applied.repeated += 1;
            }
        }
        Box::pin(std::future::ready(Ok(applied)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(window_ms: i64) -> Change {
        Change {
            id: "tenant#r#attempts#user#u".into(),
            kind: ChangeKind::Add(1),
            window_ms,
        }
    }

    fn at(now_ms: i64, event: &str, late: bool) -> Applying {
        Applying {
            now_ms,
            event: event.into(),
            late,
        }
    }

    fn run(steps: &[(i64, &str, bool)]) -> (Option<Stored>, Vec<bool>) {
        let mut stored = None;
        let mut counted = Vec::new();
        for &(now, event, late) in steps {
            let (next, did) = step(stored, &add(1000), &at(now, event, late));
            stored = next;
            counted.push(did);
        }
        (stored, counted)
    }

    #[test]
    fn a_window_counts_then_starts_again_once_over() {
        let (stored, _) = run(&[(0, "a", false), (10, "b", false), (999, "c", false)]);
        let stored = stored.unwrap();
        assert_eq!(
            stored.window,
            Window {
                count: 3,
                since_ms: 0
            }
        );
        assert_eq!(stored.window.count_at(999, 1000), 3);
        assert_eq!(stored.window.count_at(1000, 1000), 0);
        let (stored, _) = run(&[(0, "a", false), (10, "b", false), (1000, "c", false)]);
        assert_eq!(
            stored.unwrap().window,
            Window {
                count: 1,
                since_ms: 1000
            }
        );
    }

    #[test]
    fn identical_events_answered_in_time_count_every_time() {
        let (stored, counted) = run(&[(0, "same", false), (5, "same", false), (9, "same", false)]);
        assert_eq!(stored.unwrap().window.count, 3);
        assert_eq!(counted, [true, true, true]);
    }

    #[test]
    fn a_retry_of_a_late_change_counts_once_and_only_within_the_retry_window() {
        let (stored, counted) = run(&[(0, "e", true), (600, "e", false), (700, "other", false)]);
        assert_eq!(counted, [true, false, true]);
        assert_eq!(stored.unwrap().window.count, 2);
        // A late retry keeps the mark; the prompt one after it clears it; the next identical
        // event is a new attempt.
        let steps = [
            (0, "e", true),
            (1, "e", true),
            (2, "e", false),
            (3, "e", false),
        ];
        let (stored, counted) = run(&steps);
        assert_eq!(counted, [true, false, false, true]);
        assert_eq!(stored.unwrap().window.count, 2);
        // A new window is new: its first change always counts.
        let mut long = add(60_000);
        long.id = "x".into();
        let (first, _) = step(None, &long, &at(0, "e", true));
        let (later, counted) = step(first, &long, &at(RETRY_WINDOW_MS, "e", false));
        assert!(counted);
        assert_eq!(later.unwrap().window.count, 2);
    }

    #[test]
    fn a_reset_clears_whatever_was_counted() {
        let (stored, _) = run(&[(0, "a", true)]);
        let reset = Change {
            kind: ChangeKind::Reset,
            ..add(1000)
        };
        assert_eq!(step(stored, &reset, &at(5, "b", false)), (None, true));
    }
}
