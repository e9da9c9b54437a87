//! Canaries end to end against a real local store: a stable cohort per user across sign-in
//! and refresh and across Lambda instances, both decisions in the record when they differ,
//! their metrics, a canary that no longer follows the live revision, promote and abort,
//! and the places a canary may not be.

#![expect(
    clippy::indexing_slicing,
    reason = "tests build events and read metric documents by path: a missing field is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_gate::canary::Cohort;
use portcullis_gate::metrics::{self, FunctionCounters};
use portcullis_gate::publish::{self, PublishError, PublishOptions};
use portcullis_gate::store::RuleStore;
use portcullis_gate::trust::{ManifestSigner, TrustedKeys};
use portcullis_gate::{Answer, Decided, Handler, HandlerConfig, RegistryConfig, TenantId};
use portcullis_testkit::rules::{
    block, entry, fixture, gate, handle, handler, publish, publish_signed, stage_canary,
};
use serde_json::{Value, json};

/// The acme rules: `domain` is the email domain let in, `role` the role its tokens carry.
fn rules(domain: &str, role: &str) -> Vec<portcullis_gate::manifest::RuleEntry> {
    vec![
        entry(
            "company-email",
            art::EMAIL_DOMAIN,
            &["pre-authentication"],
            json!({"domains": [domain]}),
        ),
        entry(
            "claims",
            art::TENANT_CLAIMS,
            &["pre-token-generation"],
            json!({"roles": [role]}),
        ),
    ]
}

/// Acme at revision 1 (acme.example users, role `member`) with a 10 % canary of revision 2
/// (only partner.example users, role `admin`).
fn store_with_canary(dir: &Path) -> RuleStore {
    let store = RuleStore::dir(dir);
    publish(&store, "acme", rules("acme.example", "member"));
    stage_canary(&store, "acme", rules("partner.example", "admin"), 10, None);
    store
}

fn fresh(store: &RuleStore) -> Handler {
    handler(store, HandlerConfig::default(), Duration::from_secs(60))
}

/// `base` as user `i` of acme.
fn as_user(mut base: Value, i: usize) -> Value {
    base["userName"] = json!(format!("user-{i}"));
    let attributes = &mut base["request"]["userAttributes"];
    attributes["sub"] = json!(format!("0000-{i:04}"));
    attributes["email"] = json!(format!("user-{i}@acme.example"));
    base
}

fn cohort(answer: &Answer) -> Cohort {
    answer.record.canary.as_ref().unwrap().cohort
}

#[test]
fn a_ten_percent_canary_keeps_each_user_in_one_cohort_for_sign_in_and_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_canary(dir.path());
    // Two Lambda instances: one answers the sign-ins, the other the refreshes.
    let (signs, refreshes) = (fresh(&store), fresh(&store));
    let mut in_canary = 0;
    for i in 0..200 {
        let sign_in = handle(&signs, as_user(fixture("pre-auth"), i));
        let refresh = handle(&refreshes, as_user(fixture("shapes/refresh-tokens-v2"), i));
        let again = handle(&signs, as_user(fixture("shapes/refresh-tokens-v2"), i));
        assert_eq!(cohort(&sign_in), cohort(&refresh), "user {i}");
        assert_eq!(cohort(&refresh), cohort(&again), "user {i}");
        let canary = sign_in.record.canary.as_ref().unwrap();
        assert_eq!((canary.revision, canary.percent), (2, 10));
        // The candidate lets in partner.example only: its cohort is blocked, the rest not,
        // and every record says the two revisions disagree, with both decisions.
        assert_eq!(canary.differs, ["decision"], "user {i}");
        assert_eq!(
            (canary.live, canary.candidate),
            (Some("allow"), Some("deny"))
        );
        let refreshed = refresh.record.canary.as_ref().unwrap();
        assert_eq!(
            refreshed.differs,
            ["id", "access"],
            "user {i}: roles differ"
        );
        assert_eq!(
            (refreshed.live, refreshed.candidate),
            (Some("allow"), Some("allow"))
        );
        let role = refresh.response.as_ref().unwrap().pointer(
            "/response/claimsAndScopeOverrideDetails/idTokenGeneration/claimsToAddOrOverride/roles",
        );
        match cohort(&sign_in) {
            Cohort::Candidate => {
                in_canary += 1;
                assert_eq!(sign_in.record.decision, Decided::Deny);
                assert_eq!(sign_in.record.revision, Some(2));
                assert_eq!(role, Some(&json!(["admin"])));
            }
            Cohort::Live => {
                assert_eq!(sign_in.record.decision, Decided::Allow);
                assert_eq!(sign_in.record.revision, Some(1));
                assert_eq!(role, Some(&json!(["member"])));
            }
        }
    }
    assert!(
        (8..=36).contains(&in_canary),
        "{in_canary} of 200 in a 10% canary"
    );
}

#[test]
fn canary_metrics_count_the_candidates_decisions_and_the_disagreements() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_canary(dir.path());
    let h = fresh(&store);
    let (mut candidate, mut disagreements) = (0, 0);
    let mut expected = (0, 0);
    for i in 0..60 {
        let answer = handle(&h, as_user(fixture("pre-auth"), i));
        let docs = metrics::documents(&answer.record, true, FunctionCounters::default(), 0);
        let first = serde_json::to_value(&docs[0]).unwrap();
        let count = |name: &str| first.get(name).and_then(Value::as_u64).unwrap();
        candidate += count("CanaryDecisions");
        disagreements += count("CanaryDisagreements");
        expected.0 += u64::from(cohort(&answer) == Cohort::Candidate);
        expected.1 += 1;
    }
    assert_eq!((candidate, disagreements), expected);
}

#[test]
fn a_canary_that_no_longer_follows_the_live_revision_decides_for_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_canary(dir.path());
    // Revision 2 published past the canary (the library refuses this; the store does not).
    publish(&store, "acme", rules("acme.example", "member"));
    let h = fresh(&store);
    for i in 0..50 {
        let answer = handle(&h, as_user(fixture("pre-auth"), i));
        assert_eq!(answer.record.decision, Decided::Allow, "user {i}");
        assert!(answer.record.canary.is_none());
        assert!(
            answer.record.problems[0].contains("does not follow the live revision 2"),
            "{:?}",
            answer.record.problems
        );
    }
}

#[test]
fn promote_makes_the_candidate_live_and_abort_sends_everyone_back() {
    let acme = TenantId::new("acme").unwrap();
    let engine =
        portcullis_engine::Engine::new(portcullis_engine::EngineConfig::default()).unwrap();
    for promoted in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_canary(dir.path());
        // While the canary runs, publishing past it is refused.
        let refused = block(publish::publish(
            &store,
            &engine,
            &acme,
            vec![],
            None,
            PublishOptions::default(),
        ));
        assert!(
            matches!(refused, Err(PublishError::CanaryStaged { revision: 2, .. })),
            "{refused:?}"
        );
        if promoted {
            let live = block(publish::promote(&store, &acme, None, None)).unwrap();
            assert_eq!(live.revision, 2);
            assert!(live.canary.is_none());
        } else {
            assert_eq!(block(publish::abort(&store, &acme)).unwrap(), Some(2));
        }
        assert_eq!(block(store.staged(&acme)).unwrap(), None);
        let h = fresh(&store);
        for i in 0..50 {
            let answer = handle(&h, as_user(fixture("pre-auth"), i));
            assert!(answer.record.canary.is_none());
            let want = if promoted {
                Decided::Deny
            } else {
                Decided::Allow
            };
            assert_eq!(answer.record.decision, want, "user {i}");
        }
    }
}

#[test]
fn a_canary_is_never_a_live_manifest_nor_unsigned_where_signatures_are_required() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ManifestSigner::generate("ops").unwrap();
    let trusted = TrustedKeys::parse(&signer.public_line()).unwrap();
    let store = RuleStore::dir(dir.path());
    publish_signed(
        &store,
        "acme",
        rules("acme.example", "member"),
        Some(&signer),
    );
    // An unsigned canary: refused, and the live rules decide for everyone.
    stage_canary(&store, "acme", rules("partner.example", "admin"), 100, None);
    let signed = gate(&store, HandlerConfig::default(), Duration::from_secs(60))
        .registry(RegistryConfig {
            refresh: Duration::from_secs(60),
            trusted_keys: Some(trusted.clone()),
            ..RegistryConfig::default()
        })
        .build()
        .unwrap();
    let answer = handle(&signed, as_user(fixture("pre-auth"), 1));
    assert_eq!(answer.record.decision, Decided::Allow);
    assert!(answer.record.canary.is_none());
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.starts_with("canary:")),
        "{:?}",
        answer.record.problems
    );
    // Nor can promote make it live.
    let acme = TenantId::new("acme").unwrap();
    let refused = block(publish::promote(
        &store,
        &acme,
        Some(&trusted),
        Some(&signer),
    ));
    assert!(
        matches!(refused, Err(PublishError::CanarySignature { .. })),
        "{refused:?}"
    );

    // A signed canary copied over the live manifest is refused: the live rules stay.
    let staged = stage_canary(
        &store,
        "acme",
        rules("partner.example", "admin"),
        100,
        Some(&signer),
    );
    std::fs::write(
        dir.path().join("tenants/acme/manifest.json"),
        serde_json::to_vec(&staged).unwrap(),
    )
    .unwrap();
    let cold = gate(&store, HandlerConfig::default(), Duration::from_secs(60))
        .registry(RegistryConfig {
            trusted_keys: Some(trusted),
            ..RegistryConfig::default()
        })
        .build()
        .unwrap();
    let answer = handle(&cold, as_user(fixture("pre-auth"), 1));
    assert_eq!(answer.record.decision, Decided::Error);
    assert!(
        answer
            .record
            .problems
            .iter()
            .any(|p| p.contains("canary terms")),
        "{:?}",
        answer.record.problems
    );
}
