//! The [`Verdict`] builder: allow or deny, plus claim, scope and group changes.

use serde_json::Value;

use crate::__RawVerdict;
use crate::bindings::portcullis::policy::host::CounterChange;
use crate::bindings::portcullis::policy::types::{Claim, Decision, GroupOverride};

/// What a policy decides for one sign-in, built fluently:
///
/// ```
/// use portcullis_sdk::Verdict;
/// let v = Verdict::allow().id_claim("tenant_id", "acme").suppress("email_verified");
/// assert!(v.is_allowed());
/// assert_eq!(v.id_claim_value("tenant_id"), Some(portcullis_sdk::json!("acme")));
/// ```
///
/// Claim changes only take effect in pre token generation; access-token claims and scopes
/// only for V2/V3 events. The host refuses reserved Cognito claims (`sub`, `cognito:*`, …).
#[derive(Clone, Debug)]
pub struct Verdict {
    raw: __RawVerdict,
    counts: Vec<(String, CounterChange)>,
}

impl Verdict {
    /// Let the sign-in proceed.
    pub fn allow() -> Self {
        Self::with(Decision::Allow)
    }

    /// Block the sign-in. The message reaches the end user through Cognito as
    /// `PreAuthentication failed with error <message>.`: keep it client-safe and without a
    /// final period.
    pub fn deny(message: impl Into<String>) -> Self {
        Self::with(Decision::Deny(message.into()))
    }

    fn with(decision: Decision) -> Self {
        Verdict {
            raw: __RawVerdict {
                decision,
                id_claims: Vec::new(),
                id_suppress: Vec::new(),
                access_claims: Vec::new(),
                access_suppress: Vec::new(),
                scopes_add: Vec::new(),
                scopes_suppress: Vec::new(),
                groups: None,
            },
            counts: Vec::new(),
        }
    }

    /// Asks the host to add `by` (1 to 1000) to the counter `name` after the decision —
    /// one the rule's manifest entry declares under `counters` — besides what the trigger
    /// implies. Applied only if this verdict is (an enforced rule); at most 16 requests.
    ///
    /// ```
    /// use portcullis_sdk::Verdict;
    /// let v = Verdict::deny("Locked").count("attempts", 2).reset("ip");
    /// assert_eq!(v.counter_changes(), [("attempts", Some(2)), ("ip", None)]);
    /// ```
    pub fn count(mut self, name: impl Into<String>, by: u32) -> Self {
        self.counts.push((name.into(), CounterChange::Add(by)));
        self
    }

    /// Asks the host to reset the counter `name` after the decision (as [`Verdict::count`]).
    pub fn reset(mut self, name: impl Into<String>) -> Self {
        self.counts.push((name.into(), CounterChange::Reset));
        self
    }

    /// The counter changes asked for, in order: `(name, Some(by))` adds, `(name, None)`
    /// resets.
    pub fn counter_changes(&self) -> Vec<(&str, Option<u32>)> {
        self.counts
            .iter()
            .map(|(name, change)| match change {
                CounterChange::Add(by) => (name.as_str(), Some(*by)),
                CounterChange::Reset => (name.as_str(), None),
            })
            .collect()
    }

    /// Adds or overrides an ID-token claim. Any JSON value; V1 events receive non-string
    /// values as their JSON text.
    pub fn id_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.raw.id_claims.push(claim(name, value));
        self
    }

    /// Suppresses an ID-token claim.
    pub fn suppress(mut self, name: impl Into<String>) -> Self {
        self.raw.id_suppress.push(name.into());
        self
    }

    /// Adds or overrides an access-token claim (V2/V3 events only).
    pub fn access_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.raw.access_claims.push(claim(name, value));
        self
    }

    /// Suppresses an access-token claim (V2/V3 events only).
    pub fn suppress_access(mut self, name: impl Into<String>) -> Self {
        self.raw.access_suppress.push(name.into());
        self
    }

    /// Adds a scope to the access token (V2/V3 events only).
    pub fn add_scope(mut self, scope: impl Into<String>) -> Self {
        self.raw.scopes_add.push(scope.into());
        self
    }

    /// Removes a scope from the access token (V2/V3 events only).
    pub fn suppress_scope(mut self, scope: impl Into<String>) -> Self {
        self.raw.scopes_suppress.push(scope.into());
        self
    }

    /// Replaces the user's groups in the tokens (an empty list removes them all).
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let over = self.raw.groups.get_or_insert_with(empty_override);
        over.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the IAM roles and preferred role of the group override.
    pub fn iam_roles<I, S>(mut self, roles: I, preferred: Option<&str>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let over = self.raw.groups.get_or_insert_with(empty_override);
        over.iam_roles = roles.into_iter().map(Into::into).collect();
        over.preferred_role = preferred.map(str::to_owned);
        self
    }

    /// Whether the verdict allows the sign-in.
    pub fn is_allowed(&self) -> bool {
        matches!(self.raw.decision, Decision::Allow)
    }

    /// The deny message, if the verdict denies.
    pub fn deny_message(&self) -> Option<&str> {
        match &self.raw.decision {
            Decision::Deny(message) => Some(message),
            Decision::Allow => None,
        }
    }

    /// The last value set for ID-token claim `name`.
    pub fn id_claim_value(&self, name: &str) -> Option<Value> {
        find_claim(&self.raw.id_claims, name)
    }

    /// The last value set for access-token claim `name`.
    pub fn access_claim_value(&self, name: &str) -> Option<Value> {
        find_claim(&self.raw.access_claims, name)
    }

    /// The suppressed ID-token claims.
    pub fn suppressed(&self) -> &[String] {
        &self.raw.id_suppress
    }

    /// The added scopes.
    pub fn scopes_added(&self) -> &[String] {
        &self.raw.scopes_add
    }

    /// The group override, if any: `(groups, iam_roles, preferred_role)`.
    pub fn group_override(&self) -> Option<(&[String], &[String], Option<&str>)> {
        self.raw.groups.as_ref().map(|g| {
            (
                g.groups.as_slice(),
                g.iam_roles.as_slice(),
                g.preferred_role.as_deref(),
            )
        })
    }

    /// The contract's representation. In a component, the counter changes are handed to
    /// the host first (`count`); natively they are dropped.
    pub fn into_raw(self) -> __RawVerdict {
        #[cfg(target_arch = "wasm32")]
        for (name, change) in &self.counts {
            crate::bindings::portcullis::policy::host::count(name, *change);
        }
        self.raw
    }
}

fn claim(name: impl Into<String>, value: impl Into<Value>) -> Claim {
    Claim {
        name: name.into(),
        value: value.into().to_string(),
    }
}

fn find_claim(claims: &[Claim], name: &str) -> Option<Value> {
    let claim = claims.iter().rev().find(|c| c.name == name)?;
    serde_json::from_str(&claim.value).ok()
}

fn empty_override() -> GroupOverride {
    GroupOverride {
        groups: Vec::new(),
        iam_roles: Vec::new(),
        preferred_role: None,
    }
}
