//! The registry's bound on loaded rules: the coldest tenants' sets are unloaded and come
//! back on their next sign-in with the same decisions; the global rules, the set just
//! loaded and a set serving after a failed refresh stay; and an unloaded tenant still
//! refuses a rollback or a vanished manifest as if its set were held.

#![expect(
    clippy::indexing_slicing,
    reason = "tests: a missing field is a failed test"
)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_gate::manifest::RuleEntry;
use portcullis_gate::registry::{Lookup, RegistryConfig};
use portcullis_gate::store::{RuleStore, TenantId};
use portcullis_gate::{Answer, Handler, HandlerConfig, UNAVAILABLE_MESSAGE};
use serde_json::{Value, json};

use portcullis_testkit::rules::{block, entry, fixture, gate, handle, publish};

/// A handler keeping at most `cap` rules loaded, revalidating after `refresh`.
fn capped(store: &RuleStore, cap: usize, refresh: Duration) -> Handler {
    gate(store, HandlerConfig::default(), refresh)
        .registry(RegistryConfig {
            refresh,
            max_loaded_rules: cap,
            ..RegistryConfig::default()
        })
        .build()
        .unwrap()
}

/// Two rules (one module): ada (`@acme.example`) is allowed with `domains`.
fn email_rules(domains: &[&str]) -> Vec<RuleEntry> {
    ["company-email", "company-email-again"]
        .map(|name| {
            entry(
                name,
                art::EMAIL_DOMAIN,
                &["pre-authentication"],
                json!({ "domains": domains }),
            )
        })
        .into()
}

/// ada's pre-authentication, as a user of `tenant`.
fn sign_in(tenant: &str, suspended: bool) -> Value {
    let mut event = fixture(if suspended {
        "pre-auth-suspended"
    } else {
        "pre-auth"
    });
    event["request"]["userAttributes"]["custom:tenant_id"] = json!(tenant);
    event
}

fn global(h: &Handler) -> Option<Arc<portcullis_gate::registry::RuleSet>> {
    match block(h.registry().get(&TenantId::new("_global").unwrap())) {
        Lookup::Found(set) => Some(set),
        _ => None,
    }
}

fn problems(answer: &Answer) -> String {
    answer.record.problems.join("; ")
}

#[test]
fn the_coldest_tenants_rules_are_unloaded_and_come_back_deciding_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "_global", vec![crate::block_suspended()]);
    for tenant in ["acme", "globex", "initech"] {
        publish(&store, tenant, email_rules(&["acme.example"]));
    }
    // One global rule and two per tenant; at most three loaded.
    let h = capped(&store, 3, Duration::from_secs(60));

    let first = handle(&h, sign_in("acme", false));
    assert!(first.response.is_ok(), "{:?}", first.record);
    assert_eq!(first.record.rules.len(), 3);
    let global_set = global(&h).unwrap();
    assert_eq!(h.registry().unloaded_sets(), 0, "1 + 2 rules fit");

    // globex's set is the one just loaded and the global rules are never unloaded: acme's
    // (the coldest) goes.
    assert!(handle(&h, sign_in("globex", false)).response.is_ok());
    assert_eq!(h.registry().unloaded_sets(), 1);
    assert!(
        Arc::ptr_eq(&global_set, &global(&h).unwrap()),
        "global rules kept"
    );

    // acme's next sign-in loads its rules again (globex, now the coldest, goes), and they
    // decide as before; the global rule still blocks a suspended user everywhere.
    let again = handle(&h, sign_in("acme", false));
    assert!(again.response.is_ok(), "{:?}", again.record);
    assert_eq!(again.record.rules.len(), 3);
    assert_eq!(again.record.revision, Some(1));
    assert_eq!(h.registry().unloaded_sets(), 2);
    for tenant in ["acme", "globex", "initech"] {
        let blocked = handle(&h, sign_in(tenant, true));
        assert_eq!(
            blocked.record.denied_by.as_deref(),
            Some("block-suspended"),
            "{tenant}"
        );
    }
    assert!(
        Arc::ptr_eq(&global_set, &global(&h).unwrap()),
        "global rules kept"
    );

    // A cap the global rules alone exceed still keeps them and the set in use.
    let tight = capped(&store, 1, Duration::from_secs(60));
    assert!(handle(&tight, sign_in("acme", false)).response.is_ok());
    assert_eq!(tight.registry().unloaded_sets(), 0);
    assert!(handle(&tight, sign_in("globex", false)).response.is_ok());
    assert_eq!(tight.registry().unloaded_sets(), 1);
}

/// Unloading a tenant's set must not forget where its revisions stand: copying an old
/// revision back, or deleting the manifest, is refused on the reload exactly as it is
/// while the set is held.
#[test]
fn an_unloaded_tenant_still_refuses_a_rollback_and_a_vanished_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "acme", email_rules(&["acme.example"]));
    publish(&store, "acme", email_rules(&["globex.example"]));
    publish(&store, "globex", email_rules(&["acme.example"]));
    let h = capped(&store, 2, Duration::from_secs(60));
    let denied = handle(&h, sign_in("acme", false));
    assert_eq!(denied.record.revision, Some(2));
    assert_eq!(denied.record.denied_by.as_deref(), Some("company-email"));
    assert!(handle(&h, sign_in("globex", false)).response.is_ok());
    assert_eq!(h.registry().unloaded_sets(), 1, "acme unloaded");

    let manifest = dir.path().join("tenants/acme/manifest.json");
    std::fs::copy(dir.path().join("tenants/acme/history/1.json"), &manifest).unwrap();
    let rolled_back = handle(&h, sign_in("acme", false));
    assert_eq!(rolled_back.response, Err(UNAVAILABLE_MESSAGE.into()));
    assert!(
        problems(&rolled_back).contains("not newer"),
        "{}",
        problems(&rolled_back)
    );

    std::fs::remove_file(&manifest).unwrap();
    let vanished = handle(&h, sign_in("acme", false));
    assert_eq!(vanished.response, Err(UNAVAILABLE_MESSAGE.into()));
    assert!(
        problems(&vanished).contains("disappeared"),
        "{}",
        problems(&vanished)
    );

    // The revision it held, back in place, is taken again and decides as before.
    std::fs::copy(dir.path().join("tenants/acme/history/2.json"), &manifest).unwrap();
    let back = handle(&h, sign_in("acme", false));
    assert_eq!(back.record.revision, Some(2));
    assert_eq!(back.record.denied_by.as_deref(), Some("company-email"));
    assert!(back.record.problems.is_empty(), "{}", problems(&back));
}

/// A set serving after a failed refresh is the only copy of those rules: it is not
/// unloaded, however cold.
#[test]
fn rules_serving_after_a_failed_refresh_are_never_unloaded() {
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(&store, "acme", email_rules(&["globex.example"]));
    publish(&store, "globex", email_rules(&["acme.example"]));
    let h = capped(&store, 2, Duration::ZERO);
    assert!(handle(&h, sign_in("acme", false)).response.is_err());
    std::fs::write(dir.path().join("tenants/acme/manifest.json"), b"{ torn").unwrap();
    let stale = handle(&h, sign_in("acme", false));
    assert_eq!(stale.record.denied_by.as_deref(), Some("company-email"));
    assert!(!stale.record.problems.is_empty(), "{:?}", stale.record);

    assert!(handle(&h, sign_in("globex", false)).response.is_ok());
    assert_eq!(
        h.registry().unloaded_sets(),
        0,
        "acme's last known good set stays"
    );
    let still = handle(&h, sign_in("acme", false));
    assert_eq!(still.record.denied_by.as_deref(), Some("company-email"));
    assert_eq!(still.record.revision, Some(1));
}
