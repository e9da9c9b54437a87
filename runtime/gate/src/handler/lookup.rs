//! What the handler looks up before a chain runs, bounded by the invocation's deadline:
//! rule sets in the registry, and what a registry lookup means for a decision (stale or
//! failed rules noted in the record; a canary that decides only while it follows the live
//! rules); then the rules' data, counters and HTTP lookups, all at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_engine::chain::DataSet;
use portcullis_engine::contract::SignIn;

use super::Handler;
use crate::data::{LoadedRule, counters, lookups, prefetch};
use crate::record::DecisionRecord;
use crate::registry::{Lookup, RefreshError, RuleSet};
use crate::tenant::TenantId;

impl Handler {
    /// A registry lookup bounded by the invocation's deadline.
    pub(super) async fn lookup(&self, tenant: &TenantId, answer_by: Instant) -> Lookup {
        let until = tokio::time::Instant::from_std(answer_by);
        match tokio::time::timeout_at(until, self.registry.get(tenant)).await {
            Ok(lookup) => lookup,
            Err(_) => Lookup::Failed(Arc::new(RefreshError::Deadline)),
        }
    }

    /// The data, counters and HTTP lookups `rules` declared for the sign-in, fetched at
    /// the same time (one round trip: the slowest of them) and handed to each rule
    /// together.
    pub(super) async fn fetch(
        &self,
        tenant: Option<&TenantId>,
        rules: &[&LoadedRule],
        sign_in: &SignIn,
        timeout: Duration,
    ) -> DataSet {
        let (mut data, counted, looked_up) = futures_util::future::join3(
            prefetch(self.data.as_deref(), tenant, rules, sign_in, timeout),
            counters::read(self.counters.as_deref(), tenant, rules, sign_in, timeout),
            lookups::read(self.lookups.as_deref(), tenant, rules, sign_in, timeout),
        )
        .await;
        counters::merge(&mut data, counted);
        counters::merge(&mut data, looked_up);
        data
    }

    /// The global rules, and the tenant's live and canary sets, looked up side by side: on
    /// a cold start or a revalidation the store's round trips for the two overlap instead
    /// of following each other. The global lookup is bounded by `answer_by`; once it ends,
    /// the tenant's are cut off at `tenant_by(&global)` (the deadline less the time the
    /// global rules may take), so a slow tenant never takes the global rules' time.
    pub(super) async fn lookup_sets(
        &self,
        tenant: Option<&TenantId>,
        answer_by: Instant,
        tenant_by: impl FnOnce(&Lookup) -> Instant,
    ) -> (Lookup, Option<(Lookup, Lookup)>) {
        let (cutoff, cut) = tokio::sync::watch::channel(None);
        let global = async {
            let global = self.lookup(&TenantId::global(), answer_by).await;
            // Nobody waiting on the cut-off is no error: the tenant's lookups have ended.
            let _ = cutoff.send(Some(tenant_by(&global)));
            global
        };
        let tenant = async {
            let tenant = tenant?;
            Some(
                futures_util::future::join(
                    until_cut(self.registry.get(tenant), cut.clone(), answer_by),
                    until_cut(self.registry.canary(tenant), cut.clone(), answer_by),
                )
                .await,
            )
        };
        futures_util::future::join(global, tenant).await
    }
}

/// `lookup`, bounded by `answer_by` until the cut-off is known, then by the cut-off.
async fn until_cut(
    lookup: impl Future<Output = Lookup>,
    mut cut: tokio::sync::watch::Receiver<Option<Instant>>,
    answer_by: Instant,
) -> Lookup {
    let deadline = || Lookup::Failed(Arc::new(RefreshError::Deadline));
    let mut lookup = std::pin::pin!(lookup);
    // A sender gone without a cut-off (it never is) leaves `answer_by` standing.
    let cut_off = async { cut.wait_for(Option::is_some).await.ok().and_then(|at| *at) };
    let until = tokio::select! {
        found = &mut lookup => return found,
        () = tokio::time::sleep_until(tokio::time::Instant::from_std(answer_by)) => {
            return deadline();
        }
        cut_off = cut_off => cut_off.unwrap_or(answer_by),
    };
    tokio::time::timeout_at(tokio::time::Instant::from_std(until), lookup)
        .await
        .unwrap_or_else(|_| deadline())
}

/// The canary that decides for its share of users: one that is staged, loaded and follows
/// the live rules `live`. A canary that cannot be loaded, or that follows another revision,
/// decides for no one (noted in the record): its users get the live rules.
pub(super) fn candidate_of(
    lookup: Lookup,
    live: Option<&Arc<RuleSet>>,
    record: &mut DecisionRecord,
) -> Option<Arc<RuleSet>> {
    let candidate = match lookup {
        Lookup::Found(set) => set,
        Lookup::Missing => return None,
        Lookup::Stale { known, error } => {
            record.problems.push(format!(
                "canary: refresh refused, keeping the last known canary: {error}"
            ));
            known?
        }
        Lookup::Failed(error) => {
            record.problems.push(format!(
                "canary: {error}; the live rules decide for every user"
            ));
            return None;
        }
    };
    match live {
        Some(live) if candidate.follows(live) => Some(candidate),
        _ => {
            record.problems.push(format!(
                "canary revision {} does not follow the live revision {}: ignored (promote, abort or stage it again)",
                candidate.revision,
                live.map_or_else(|| "(none)".to_owned(), |l| l.revision.to_string()),
            ));
            None
        }
    }
}

/// The rules a lookup gives, noting a stale or failed refresh in the record; `Err` when
/// no rules could be loaded at all (the fail mode decides).
pub(super) fn rules_of(
    lookup: Lookup,
    which: &str,
    record: &mut DecisionRecord,
) -> Result<Option<Arc<RuleSet>>, ()> {
    match lookup {
        Lookup::Found(set) => Ok(Some(set)),
        Lookup::Missing => Ok(None),
        Lookup::Stale { known, error } => {
            record.problems.push(format!(
                "{which} rules: refresh refused, keeping the last known good rules: {error}"
            ));
            Ok(known)
        }
        Lookup::Failed(error) => {
            record.problems.push(format!("{which} rules: {error}"));
            Err(())
        }
    }
}
