//! Metrics as CloudWatch Embedded Metric Format: every document is valid EMF (checked
//! against the format's rules below), and a scripted sequence of sign-ins adds up to the
//! right counts per tenant and per rule.

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::Mode;
use portcullis_gate::HandlerConfig;
use portcullis_gate::metrics::{FunctionCounters, NAMESPACE, documents};
use portcullis_gate::store::RuleStore;
use portcullis_testkit::rules::{entry, fixture, handle, handler, publish};
use serde_json::{Value, json};

/// The EMF specification's rules: an `_aws` object with an integer `Timestamp` and
/// `CloudWatchMetrics` directives, each with a namespace, at most 30 dimensions per set
/// (each a string property of the document), at most 100 metrics (each a number property,
/// with a known unit).
fn assert_valid_emf(doc: &Value) {
    let aws = &doc["_aws"];
    assert!(aws["Timestamp"].is_i64(), "{doc}");
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert!(!directives.is_empty());
    for d in directives {
        assert_eq!(d["Namespace"], NAMESPACE);
        let dims = d["Dimensions"].as_array().unwrap();
        for set in dims {
            let set = set.as_array().unwrap();
            assert!(set.len() <= 30);
            for key in set {
                let key = key.as_str().unwrap();
                assert!(doc[key].is_string(), "dimension `{key}` is a string: {doc}");
            }
        }
        let metrics = d["Metrics"].as_array().unwrap();
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "metric `{name}` is a number: {doc}");
            // CloudWatch's standard units (the ones a time or a count can take).
            assert!(
                ["Count", "Milliseconds", "Seconds", "Microseconds", "None"]
                    .contains(&m["Unit"].as_str().unwrap()),
                "{m}"
            );
        }
    }
}

#[test]
fn a_scripted_sequence_of_sign_ins_adds_up_in_valid_emf() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "_global",
        vec![entry(
            "block-suspended",
            art::SUSPENDED_USERS,
            &["every-sign-in"],
            json!(null),
        )],
    );
    let mut shadow = entry(
        "strict-email",
        art::EMAIL_DOMAIN,
        &["pre-authentication"],
        json!({"domains": ["other.example"]}),
    );
    shadow.mode = Mode::Shadow;
    publish(
        &store,
        "acme",
        vec![
            shadow,
            entry(
                "claims",
                art::TENANT_CLAIMS,
                &["pre-token-generation"],
                json!(null),
            ),
        ],
    );
    let h = handler(&store, HandlerConfig::default(), Duration::from_secs(60));
    let script = [
        "pre-auth",
        "pre-auth",
        "pre-auth-suspended",
        "token-v2",
        "custom-message",
    ];
    let mut docs = Vec::new();
    for (i, name) in script.iter().enumerate() {
        let answer = handle(&h, fixture(name));
        let function = FunctionCounters {
            cold_starts: u64::from(i == 0),
            ..FunctionCounters::default()
        };
        docs.extend(
            documents(
                &answer.record,
                answer.response.is_ok(),
                function,
                1_767_596_400_000,
            )
            .iter()
            .map(|doc| serde_json::to_value(doc).unwrap()),
        );
    }
    for doc in &docs {
        assert_valid_emf(doc);
    }
    // Sum each metric by its document's dimension values.
    let mut sums: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for doc in &docs {
        let key = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            let name = m["Name"].as_str().unwrap();
            if m["Unit"] == "Count" {
                *sums
                    .entry((key("Tenant"), key("Rule"), name.to_owned()))
                    .or_default() += doc[name].as_u64().unwrap();
            }
        }
    }
    let sum = |tenant: &str, rule: &str, metric: &str| {
        sums.get(&(tenant.to_owned(), rule.to_owned(), metric.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    // Four decisions for acme (the custom message is a pass, without a tenant).
    assert_eq!(sum("acme", "", "Decisions"), 4);
    assert_eq!(sum("acme", "", "Allows"), 3);
    assert_eq!(sum("acme", "", "Denies"), 1);
    assert_eq!(sum("acme", "", "FailClosed"), 0);
    assert_eq!(sum("-", "", "Passes"), 1);
    // The global block ran in every pre-auth and the token event, and denied once.
    assert_eq!(sum("acme", "block-suspended", "Evaluations"), 4);
    assert_eq!(sum("acme", "block-suspended", "Denies"), 1);
    // The shadow rule denies every acme.example user: it disagrees with the two allowed
    // sign-ins (the blocked one stopped at the global deny before it ran).
    assert_eq!(sum("acme", "strict-email", "Evaluations"), 2);
    assert_eq!(sum("acme", "strict-email", "ShadowDisagreements"), 2);
    assert_eq!(sum("acme", "claims", "Evaluations"), 1);
    assert_eq!(sum("", "", "ColdStarts"), 1);
    // No canary runs and every refresh succeeded: the gauges say so.
    assert_eq!(sum("acme", "", "CanaryDecisions"), 0);
    assert_eq!(sum("acme", "", "CanaryDisagreements"), 0);
    let function = docs.iter().find(|d| d.get("ColdStarts").is_some()).unwrap();
    assert_eq!(function["LastKnownGoodAge"], 0);
    // The decision id is on the invocation's document, and differs per decision.
    let ids: std::collections::BTreeSet<&str> = docs
        .iter()
        .filter_map(|d| d["DecisionId"].as_str())
        .collect();
    assert_eq!(ids.len(), script.len());
}
