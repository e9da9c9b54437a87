//! What changed between two revisions of a manifest, rule by rule (`portcullis diff`).

use serde::Serialize;

use super::Manifest;

/// One difference between two revisions of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RuleChange {
    /// A rule only the newer revision has.
    Added {
        /// The rule.
        rule: String,
    },
    /// A rule only the older revision has.
    Removed {
        /// The rule.
        rule: String,
    },
    /// A rule whose fields differ.
    Changed {
        /// The rule.
        rule: String,
        /// `field: old -> new`, one per changed field.
        fields: Vec<String>,
    },
    /// The rules are the same but in another order.
    Reordered {
        /// The newer order.
        order: Vec<String>,
    },
}

/// What changed from `old` to `new`, rule by rule.
pub fn diff(old: &Manifest, new: &Manifest) -> Vec<RuleChange> {
    let find = |m: &Manifest, name: &str| m.rules.iter().find(|r| r.name == name).cloned();
    let mut changes = Vec::new();
    for rule in &old.rules {
        if find(new, &rule.name).is_none() {
            changes.push(RuleChange::Removed {
                rule: rule.name.clone(),
            });
        }
    }
    for rule in &new.rules {
        let Some(before) = find(old, &rule.name) else {
            changes.push(RuleChange::Added {
                rule: rule.name.clone(),
            });
            continue;
        };
        let (a, b) = (
            serde_json::to_value(&before).unwrap_or_default(),
            serde_json::to_value(rule).unwrap_or_default(),
        );
        let mut fields = Vec::new();
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (x, y) = (a.get(key), b.get(key));
                if x != y {
                    let show = |v: Option<&serde_json::Value>| {
                        v.map_or_else(|| "(default)".to_owned(), |v| v.to_string())
                    };
                    fields.push(format!("{key}: {} -> {}", show(x), show(y)));
                }
            }
        }
        if !fields.is_empty() {
            changes.push(RuleChange::Changed {
                rule: rule.name.clone(),
                fields,
            });
        }
    }
    let common = |m: &Manifest, other: &Manifest| -> Vec<String> {
        m.rules
            .iter()
            .filter(|r| find(other, &r.name).is_some())
            .map(|r| r.name.clone())
            .collect()
    };
    let order = common(new, old);
    if common(old, new) != order {
        changes.push(RuleChange::Reordered { order });
    }
    changes
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use portcullis_engine::rule::{Mode, OnError};

    use super::*;
    use crate::manifest::RuleEntry;

    #[test]
    fn diff_names_every_change() {
        let rule = |name: &str, timeout: Option<u64>| RuleEntry {
            name: name.into(),
            module: format!("sha256:{}", "a".repeat(64)),
            triggers: vec!["pre-authentication".into()],
            timeout_ms: timeout,
            fuel: None,
            memory_mb: None,
            on_error: OnError::Deny,
            mode: Mode::Enforce,
            config: serde_json::Value::Null,
            data: BTreeMap::new(),
            counters: BTreeMap::new(),
            lookups: BTreeMap::new(),
        };
        let old = Manifest {
            tenant: None,
            previous: None,
            signature: None,
            revision: 1,
            rules: vec![rule("a", None), rule("b", None), rule("c", None)],
            canary: None,
        };
        let new = Manifest {
            tenant: None,
            previous: None,
            signature: None,
            revision: 2,
            rules: vec![rule("c", None), rule("b", Some(50)), rule("d", None)],
            canary: None,
        };
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                RuleChange::Removed { rule: "a".into() },
                RuleChange::Changed {
                    rule: "b".into(),
                    fields: vec!["timeout_ms: (default) -> 50".into()]
                },
                RuleChange::Added { rule: "d".into() },
                RuleChange::Reordered {
                    order: vec!["c".into(), "b".into()]
                },
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }
}
