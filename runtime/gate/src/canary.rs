//! Canaries: a staged revision deciding for a stable share of a tenant's users while the
//! live revision decides for the rest, each evaluated beside the other so that every record
//! says whether (and how) the two would decide differently.
//!
//! A user's cohort is a hash of (tenant, user), not a coin flip: the same user is in the
//! canary for a sign-in and for every refresh after it, on every Lambda instance, for as
//! long as the percentage stays. The user is the `sub` attribute (the same in every
//! trigger), else the user name; a machine-to-machine token, which has no user, is keyed by
//! its app client.

use portcullis_engine::chain::{ChainOutcome, Decision};
use portcullis_engine::contract::{GroupOverride, SignIn};
use portcullis_engine::digest::Sha256;
use serde::Serialize;

/// Which revision decides for a sign-in while a canary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cohort {
    /// The live revision decides; the candidate runs beside it.
    Live,
    /// The candidate decides; the live revision runs beside it.
    Candidate,
}

/// The cohort of `sign_in`'s user in `tenant` for a canary of `percent` percent.
pub fn cohort(tenant: &str, sign_in: &SignIn, percent: u8) -> Cohort {
    let user = sign_in
        .user_attributes
        .iter()
        .find(|(name, _)| name == "sub")
        .map(|(_, sub)| format!("sub:{sub}"))
        .or_else(|| sign_in.user_name.as_ref().map(|n| format!("user:{n}")))
        .or_else(|| sign_in.client_id.as_ref().map(|c| format!("client:{c}")))
        .unwrap_or_default();
    if bucket(tenant, &user) < u64::from(percent) {
        Cohort::Candidate
    } else {
        Cohort::Live
    }
}

/// The user's bucket, 0 to 99: the first 8 bytes of
/// `sha256("portcullis-canary\0" tenant "\0" user)`, modulo 100.
fn bucket(tenant: &str, user: &str) -> u64 {
    let digest = Sha256::of(format!("portcullis-canary\0{tenant}\0{user}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_be_bytes(first) % 100
}

/// A canary's line in the decision record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanaryRecord {
    /// The candidate's revision.
    pub revision: u64,
    /// Its share of users.
    pub percent: u8,
    /// Which revision decided this sign-in.
    pub cohort: Cohort,
    /// What differs between the two: `decision`, `message`, `id`, `access`, `scopes`,
    /// `groups` (empty when they agree).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differs: Vec<&'static str>,
    /// The live revision's decision (`allow` or `deny`), when the two differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<&'static str>,
    /// The candidate's decision, when the two differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<&'static str>,
}

impl CanaryRecord {
    /// The record of a canary whose two chains gave `live` and `candidate`.
    pub fn new(
        revision: u64,
        percent: u8,
        cohort: Cohort,
        live: &ChainOutcome,
        candidate: &ChainOutcome,
    ) -> CanaryRecord {
        let differs = differences(live, candidate);
        let decided = |o: &ChainOutcome| match o.decision {
            Decision::Allow => "allow",
            Decision::Deny { .. } => "deny",
        };
        let (live, candidate) = match differs.is_empty() {
            true => (None, None),
            false => (Some(decided(live)), Some(decided(candidate))),
        };
        CanaryRecord {
            revision,
            percent,
            cohort,
            differs,
            live,
            candidate,
        }
    }

    /// Whether the two revisions decided this sign-in differently.
    pub fn disagrees(&self) -> bool {
        !self.differs.is_empty()
    }
}

/// What differs between two chains' outcomes for one sign-in: the decision (or only the deny
/// message), and each kind of token change.
pub fn differences(a: &ChainOutcome, b: &ChainOutcome) -> Vec<&'static str> {
    let mut differs = Vec::new();
    match (&a.decision, &b.decision) {
        (Decision::Allow, Decision::Allow) => {}
        (Decision::Deny { message: x, .. }, Decision::Deny { message: y, .. }) => {
            if x != y {
                differs.push("message");
            }
        }
        _ => differs.push("decision"),
    }
    if a.id != b.id {
        differs.push("id");
    }
    if a.access != b.access {
        differs.push("access");
    }
    if a.scopes != b.scopes {
        differs.push("scopes");
    }
    if !same_groups(a.groups.as_ref(), b.groups.as_ref()) {
        differs.push("groups");
    }
    differs
}

fn same_groups(a: Option<&GroupOverride>, b: Option<&GroupOverride>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.groups == b.groups
                && a.iam_roles == b.iam_roles
                && a.preferred_role == b.preferred_role
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in(sub: Option<&str>, user: Option<&str>) -> SignIn {
        let mut s = portcullis_engine::request::NO_SIGN_IN.clone();
        s.user_attributes = sub
            .map(|sub| vec![("sub".to_owned(), sub.to_owned())])
            .unwrap_or_default();
        s.user_name = user.map(str::to_owned);
        s
    }

    #[test]
    fn a_share_of_users_close_to_the_percentage_and_always_the_same_ones() {
        for percent in [1u8, 10, 50, 100] {
            let mut inside = 0;
            for i in 0..10_000 {
                let s = sign_in(Some(&format!("sub-{i}")), Some("someone"));
                let c = cohort("acme", &s, percent);
                assert_eq!(c, cohort("acme", &s, percent));
                inside += usize::from(c == Cohort::Candidate);
            }
            let expected = usize::from(percent) * 100;
            assert!(
                inside.abs_diff(expected) <= 150,
                "{percent}%: {inside} of 10000"
            );
        }
    }

    #[test]
    fn the_cohort_follows_the_sub_then_the_user_name_and_differs_by_tenant() {
        let by_sub = sign_in(Some("s-1"), Some("alice"));
        let same_sub_other_name = sign_in(Some("s-1"), Some("alice@example.com"));
        for percent in 1..=100 {
            assert_eq!(
                cohort("acme", &by_sub, percent),
                cohort("acme", &same_sub_other_name, percent)
            );
        }
        // Growing the percentage only adds users: who was in stays in.
        let users: Vec<SignIn> = (0..500)
            .map(|i| sign_in(None, Some(&format!("u{i}"))))
            .collect();
        for pair in [10u8, 20, 50].windows(2) {
            for s in &users {
                if cohort("acme", s, pair[0]) == Cohort::Candidate {
                    assert_eq!(cohort("acme", s, pair[1]), Cohort::Candidate);
                }
            }
        }
        let differ = users
            .iter()
            .filter(|s| cohort("acme", s, 50) != cohort("globex", s, 50))
            .count();
        assert!(differ > 100, "tenants share cohorts: {differ}");
    }
}
