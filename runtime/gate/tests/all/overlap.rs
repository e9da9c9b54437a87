//! The global and the tenant's rule sets are looked up side by side (their store round trips
//! overlap on a cold start and on each revalidation), and a tenant whose store stalls still
//! leaves the global rules their time within the invocation's deadline.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_gate::HandlerConfig;
use portcullis_gate::store::{
    BoxFuture, DirStore, Fetched, ObjectStore, PutIf, RuleStore, StoreError,
};
use serde_json::json;

use portcullis_testkit::rules::{block, entry, fixture, handle, handler, publish};

const GLOBAL: &str = "tenants/_global/manifest.json";
const ACME: &str = "tenants/acme/manifest.json";

/// A directory store that watches manifest reads: each waits (up to a second) for the
/// other tenant's manifest read to start, and notes whether the two were ever in flight
/// together. With `stall_acme`, acme's manifest read never ends.
#[derive(Debug)]
struct Watched {
    dir: DirStore,
    in_flight: Mutex<HashSet<String>>,
    together: Mutex<bool>,
    stall_acme: bool,
}

impl Watched {
    fn new(root: &std::path::Path, stall_acme: bool) -> Arc<Watched> {
        Arc::new(Watched {
            dir: DirStore::new(root),
            in_flight: Mutex::new(HashSet::new()),
            together: Mutex::new(false),
            stall_acme,
        })
    }

    fn both_in_flight(&self) -> bool {
        let in_flight = self.in_flight.lock().unwrap();
        in_flight.contains(GLOBAL) && in_flight.contains(ACME)
    }
}

impl ObjectStore for Watched {
    fn url(&self) -> String {
        self.dir.url()
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        if_none_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Fetched, StoreError>> {
        Box::pin(async move {
            if key == GLOBAL || key == ACME {
                self.in_flight.lock().unwrap().insert(key.to_owned());
                if key == ACME && self.stall_acme {
                    return std::future::pending().await;
                }
                let waited = Instant::now();
                while !self.both_in_flight() && waited.elapsed() < Duration::from_secs(1) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                if self.both_in_flight() {
                    *self.together.lock().unwrap() = true;
                }
                let fetched = self.dir.get(key, if_none_match).await;
                self.in_flight.lock().unwrap().remove(key);
                return fetched;
            }
            self.dir.get(key, if_none_match).await
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        condition: PutIf,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        self.dir.put(key, bytes, condition)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        self.dir.list(prefix)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.dir.delete(key)
    }
}

/// The global rule blocks suspended users; acme's allows only `@acme.example`.
fn publish_both(store: &RuleStore) {
    publish(store, "_global", vec![crate::block_suspended()]);
    publish(
        store,
        "acme",
        vec![entry(
            "company-email",
            art::EMAIL_DOMAIN,
            &["pre-authentication"],
            json!({ "domains": ["example.org"] }),
        )],
    );
}

#[test]
fn global_and_tenant_rules_are_looked_up_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    publish_both(&RuleStore::dir(dir.path()));
    let watched = Watched::new(dir.path(), false);
    let store = RuleStore::new(watched.clone());
    // Revalidating on every sign-in: the second sign-in's conditional reads overlap too.
    let h = handler(&store, HandlerConfig::default(), Duration::ZERO);
    for _ in 0..2 {
        *watched.together.lock().unwrap() = false;
        let answer = handle(&h, fixture("pre-auth"));
        assert!(
            *watched.together.lock().unwrap(),
            "the global and acme manifests were read one after the other"
        );
        // Both sets decided: acme's rule denies ada's domain.
        assert_eq!(answer.record.global_revision, Some(1));
        assert_eq!(answer.record.denied_by.as_deref(), Some("company-email"));
    }
    let answer = handle(&h, fixture("pre-auth-suspended"));
    assert_eq!(answer.record.denied_by.as_deref(), Some("block-suspended"));
}

#[test]
fn a_stalled_tenant_store_leaves_the_global_rules_their_time() {
    let dir = tempfile::tempdir().unwrap();
    publish_both(&RuleStore::dir(dir.path()));
    let store = RuleStore::new(Watched::new(dir.path(), true));
    let config = HandlerConfig {
        safety_margin: Duration::from_millis(100),
        ..HandlerConfig::default()
    };
    let h = handler(&store, config, Duration::from_secs(60));
    let start = Instant::now();
    let answer = block(h.handle(
        fixture("pre-auth-suspended"),
        Some(start + Duration::from_secs(5)),
    ));
    // Answered within the invocation's deadline: the tenant's lookup was cut off at the
    // deadline less the global rule's time, and the global rule ran in that time.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // The global rule ran and decided, with its own message.
    assert_eq!(answer.response, Err("Your account is suspended".into()));
    assert_eq!(answer.record.denied_by.as_deref(), Some("block-suspended"));
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.starts_with("tenant rules:") && p.contains("deadline")),
        "{:?}",
        answer.record.problems
    );
}
