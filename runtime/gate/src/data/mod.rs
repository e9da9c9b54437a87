//! Data for rules: key templates such as `user#{sub}` that a rule declares in its manifest
//! entry, resolved against the sign-in before the chain runs.
//!
//! Placeholders: `{tenant}`, `{sub}` (the `sub` attribute), `{username}`, `{client_id}`,
//! `{user_pool_id}`, `{attr:NAME}` (any user attribute) and `{trusted:FIELD}` (`ip`,
//! `user_agent`, `device_id` or another field of the context the app's backend signed;
//! never what the client says). A key whose placeholder has no value (no such attribute,
//! no verified context) is not fetched: the rule sees the item as absent.
//!
//! Rules may also declare [`counters`]: windowed counts the host reads beside the data and
//! changes after the decision.
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

use crate::backend::{BackendError, BoxFuture};
use crate::tenant::TenantId;

pub mod counters;
pub mod lookups;
mod template;

pub use counters::CounterSpec;
pub use template::{KeyTemplate, KeyTooLong, MAX_KEY, TemplateError};

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
    /// Its declared counters ([`counters`]).
    pub counters: Vec<CounterSpec>,
    /// Its declared HTTP lookups ([`lookups`]).
    pub lookups: Vec<lookups::LookupSpec>,
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
