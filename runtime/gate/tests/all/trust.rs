//! The trust chain against a real directory store, as a hostile writer of the store would
//! attack it: planted native code, manifests no trusted key signed, manifests moved between
//! tenants or revisions, rollbacks by copying history, deleted manifests, interrupted
//! publishes and revision overflow. Every refusal keeps the last known good set deciding.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::artifact::{self, ArtifactKey};
use portcullis_engine::{Engine, EngineConfig, Sha256};
use portcullis_gate::manifest::{Manifest, RuleEntry};
use portcullis_gate::registry::RegistryConfig;
use portcullis_gate::store::{ObjectStore, PutIf, RuleStore, StoreError, TenantId};
use portcullis_gate::trust::{ManifestSigner, TrustedKeys};
use portcullis_gate::{Answer, Handler, HandlerConfig, UNAVAILABLE_MESSAGE};
use serde_json::json;

use portcullis_testkit::rules::{block, entry, fixture, handle};

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

/// The deployment's keys, and a publisher's.
struct Keys {
    artifact: ArtifactKey,
    platform: ManifestSigner,
    trusted: TrustedKeys,
}

fn keys() -> Keys {
    let platform = ManifestSigner::generate("platform").unwrap();
    Keys {
        artifact: ArtifactKey::new(b"this deployment's artifact key, 32+ bytes".to_vec()).unwrap(),
        trusted: TrustedKeys::parse(&platform.public_line()).unwrap(),
        platform,
    }
}

fn engine() -> Arc<Engine> {
    Arc::new(
        Engine::new(EngineConfig {
            max_concurrent: 2,
            ..EngineConfig::default()
        })
        .unwrap(),
    )
}

/// A fresh process (engine, registry, handler) with the deployment's keys.
fn process(store: &RuleStore, keys: &Keys, refresh: Duration, config: HandlerConfig) -> Handler {
    Handler::builder(store.clone())
        .engine(engine())
        .config(config)
        .registry(RegistryConfig {
            refresh,
            trusted_keys: Some(keys.trusted.clone()),
            artifact_key: Some(keys.artifact.clone()),
            ..RegistryConfig::default()
        })
        .build()
        .unwrap()
}

/// Stores the modules `rules` name by path and publishes them signed by `signer`.
fn publish(
    store: &RuleStore,
    tenant: &str,
    rules: Vec<RuleEntry>,
    signer: &ManifestSigner,
) -> Manifest {
    portcullis_testkit::rules::publish_signed(store, tenant, rules, Some(signer))
}

/// The email rule: ada (`@acme.example`) is allowed with `domains`, denied otherwise.
fn email(domains: &[&str]) -> RuleEntry {
    entry(
        "company-email",
        art::EMAIL_DOMAIN,
        &["pre-authentication"],
        json!({ "domains": domains }),
    )
}

fn write(dir: &Path, key: &str, bytes: &[u8]) {
    let store = portcullis_gate::store::DirStore::new(dir);
    block(store.put(key, bytes.to_vec(), PutIf::Always)).unwrap();
}

fn allowed(answer: &Answer) -> bool {
    answer.response.is_ok()
}

fn problems(answer: &Answer) -> String {
    answer.record.problems.join("; ")
}

/// Artifacts planted under `compiled/` by someone without the artifact key: relabelled,
/// patched (checksum fixed up, as the old format allowed), forged under another key,
/// garbage. Each is refused by type, the verified `.wasm` decides, and the artifact is
/// overwritten with one this deployment vouches for.
#[test]
fn planted_native_code_never_runs_and_is_replaced() {
    let keys = keys();
    let compat = engine().compat();
    let allow_bytes = std::fs::read(art::ALLOW_ALL).unwrap();
    let builder = engine();
    let allow_policy = builder.load(&allow_bytes).unwrap();
    let email_bytes = std::fs::read(art::EMAIL_DOMAIN).unwrap();
    let email_digest = Sha256::of(&email_bytes);
    let genuine_email = builder
        .artifact(&builder.load(&email_bytes).unwrap(), &keys.artifact)
        .unwrap();
    let genuine_allow = builder.artifact(&allow_policy, &keys.artifact).unwrap();
    let label = |mut a: Vec<u8>| {
        let at = 16 + artifact::COMPAT_LEN;
        a[at..at + 32].copy_from_slice(email_digest.as_bytes());
        a
    };
    let stranger = ArtifactKey::new(vec![9; 40]).unwrap();
    let mut patched = genuine_email.clone();
    let n = patched.len();
    patched[n - 64..n - 32].fill(0x90);
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        (
            "allow-all relabelled as the email rule",
            label(genuine_allow),
        ),
        ("native code patched", patched),
        (
            "allow-all sealed with another key",
            label(builder.artifact(&allow_policy, &stranger).unwrap()),
        ),
        ("garbage", b"PORTCULLIS-CW\0\0\x02 and then some".to_vec()),
    ];
    for (attack, planted) in attacks {
        let dir = tempfile::tempdir().unwrap();
        let store = RuleStore::dir(dir.path());
        publish(
            &store,
            "acme",
            vec![email(&["globex.example"])],
            &keys.platform,
        );
        write(
            dir.path(),
            &format!("compiled/{compat}/{email_digest}.cwasm"),
            &planted,
        );
        let h = process(
            &store,
            &keys,
            Duration::from_secs(60),
            HandlerConfig::default(),
        );
        let answer = handle(&h, fixture("pre-auth"));
        assert!(!allowed(&answer), "{attack}: the verified .wasm denies ada");
        assert_eq!(answer.record.denied_by.as_deref(), Some("company-email"));
        assert_eq!(h.registry().artifact_refusals(), 1, "{attack}");
        let replaced = block(store.compiled(&compat, &email_digest))
            .unwrap()
            .unwrap();
        assert_ne!(replaced, planted, "{attack}: overwritten");
        artifact::open(&keys.artifact, &compat, &email_digest, &replaced)
            .unwrap_or_else(|e| panic!("{attack}: the replacement is authentic: {e}"));
        // The next cold start uses the replacement.
        let next = process(
            &store,
            &keys,
            Duration::from_secs(60),
            HandlerConfig::default(),
        );
        assert!(!allowed(&handle(&next, fixture("pre-auth"))));
        assert_eq!(next.registry().artifact_refusals(), 0, "{attack}");
    }
}

/// Without the artifact key nothing under `compiled/` is read: a planted artifact cannot
/// run even when the deployment was never given a key.
#[test]
fn without_an_artifact_key_no_artifact_is_read() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "acme",
        vec![email(&["globex.example"])],
        &keys.platform,
    );
    let compat = engine().compat();
    let email_digest = Sha256::of(&std::fs::read(art::EMAIL_DOMAIN).unwrap());
    let path = format!("compiled/{compat}/{email_digest}.cwasm");
    write(dir.path(), &path, b"not native code");
    let h = Handler::builder(store.clone())
        .engine(engine())
        .registry(RegistryConfig {
            write_back: true,
            ..RegistryConfig::default()
        })
        .build()
        .unwrap();
    assert!(!allowed(&handle(&h, fixture("pre-auth"))));
    assert_eq!(h.registry().artifact_refusals(), 0);
    assert_eq!(
        std::fs::read(dir.path().join(path)).unwrap(),
        b"not native code",
        "nothing written without the key"
    );
}

/// Every manifest a trusted key did not sign for this tenant and a newer revision is
/// refused by a warm registry, and the last known good set keeps deciding.
#[test]
fn manifests_a_trusted_key_did_not_sign_never_decide() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let one = publish(
        &store,
        "acme",
        vec![email(&["acme.example"])],
        &keys.platform,
    );
    let h = process(&store, &keys, Duration::ZERO, HandlerConfig::default());
    let first = handle(&h, fixture("pre-auth"));
    assert!(allowed(&first), "{:?}", first.record);
    assert_eq!(first.record.revision, Some(1));

    // What an attacker with write access to the store can write instead: each would deny ada.
    let deny = || {
        let mut m = one.clone();
        m.revision = 2;
        m.previous = Some(format!(
            "sha256:{}",
            portcullis_gate::trust::manifest_digest(&one)
        ));
        m.rules[0].config = json!({"domains": ["globex.example"]});
        m.signature = None;
        m
    };
    let signed = |signer: &ManifestSigner, mut m: Manifest| {
        signer.sign(&mut m);
        m
    };
    let impostor = ManifestSigner::generate("platform").unwrap();
    let outsider = ManifestSigner::generate("outsider").unwrap();
    let mut changed_after_signing = signed(&keys.platform, one.clone());
    changed_after_signing.revision = 2;
    changed_after_signing.rules[0].config = json!({"domains": ["globex.example"]});
    let mut for_globex = deny();
    for_globex.tenant = Some("globex".into());
    let for_globex = signed(&keys.platform, for_globex);
    let mut relabelled = for_globex.clone();
    relabelled.tenant = Some("acme".into());
    let mut no_tenant = deny();
    no_tenant.tenant = None;
    let mut forked = deny();
    forked.previous = Some(format!("sha256:{}", "0".repeat(64)));
    // (attack, manifest, the refusal's words, refused on a cold start too)
    let attacks: Vec<(&str, Manifest, &str, bool)> = vec![
        ("unsigned", deny(), "is not signed", true),
        (
            "signed by an unknown key",
            signed(&outsider, deny()),
            "does not trust",
            true,
        ),
        (
            "signed by another key under a trusted id",
            signed(&impostor, deny()),
            "does not verify",
            true,
        ),
        (
            "changed after signing",
            changed_after_signing,
            "does not verify",
            true,
        ),
        (
            "signed for another tenant",
            for_globex,
            "is for tenant `globex`",
            true,
        ),
        (
            "another tenant's, relabelled",
            relabelled,
            "does not verify",
            true,
        ),
        (
            "naming no tenant",
            signed(&keys.platform, no_tenant),
            "is for tenant ``",
            true,
        ),
        // Signed by the platform: only a process that holds revision 1 can tell.
        (
            "forked from another history",
            signed(&keys.platform, forked),
            "does not follow",
            false,
        ),
    ];
    let mut failures = h.registry().refresh_failures();
    for (attack, manifest, why, cold_refused) in attacks {
        write(
            dir.path(),
            "tenants/acme/manifest.json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        let answer = handle(&h, fixture("pre-auth"));
        assert!(allowed(&answer), "{attack}: revision 1 keeps deciding");
        assert_eq!(answer.record.revision, Some(1), "{attack}");
        assert!(
            problems(&answer).contains(why),
            "{attack}: {}",
            problems(&answer)
        );
        failures += 1;
        assert_eq!(h.registry().refresh_failures(), failures, "{attack}");
        if !cold_refused {
            continue;
        }
        // A cold start has no last known good set: the fail mode (closed) decides.
        let cold = process(&store, &keys, Duration::ZERO, HandlerConfig::default());
        let answer = handle(&cold, fixture("pre-auth"));
        assert_eq!(answer.response, Err(UNAVAILABLE_MESSAGE.into()), "{attack}");
        assert!(problems(&answer).contains(why), "{attack}");
    }

    // The real revision 2, signed by the platform, is taken.
    write(
        dir.path(),
        "tenants/acme/manifest.json",
        &serde_json::to_vec_pretty(&one).unwrap(),
    );
    let two = publish(
        &store,
        "acme",
        vec![email(&["globex.example"])],
        &keys.platform,
    );
    assert_eq!(two.revision, 2);
    let answer = handle(&h, fixture("pre-auth"));
    assert!(!allowed(&answer));
    assert_eq!(answer.record.revision, Some(2));
    assert!(
        answer.record.problems.is_empty(),
        "{:?}",
        answer.record.problems
    );

    // Copying an old (validly signed) revision back is a rollback nobody published.
    std::fs::copy(
        dir.path().join("tenants/acme/history/1.json"),
        dir.path().join("tenants/acme/manifest.json"),
    )
    .unwrap();
    let answer = handle(&h, fixture("pre-auth"));
    assert!(!allowed(&answer), "revision 2 keeps deciding");
    assert_eq!(answer.record.revision, Some(2));
    assert!(
        problems(&answer).contains("not newer"),
        "{}",
        problems(&answer)
    );

    // A manifest that disappears is a failed refresh, not "no rules".
    std::fs::remove_file(dir.path().join("tenants/acme/manifest.json")).unwrap();
    let answer = handle(&h, fixture("pre-auth"));
    assert!(!allowed(&answer), "revision 2 keeps deciding");
    assert_eq!(answer.record.revision, Some(2));
    assert!(
        problems(&answer).contains("disappeared"),
        "{}",
        problems(&answer)
    );
}

/// A deleted `_global` manifest keeps the global deny rule deciding in a warm process; with
/// `require_global`, a cold start without global rules follows the fail mode, visibly.
#[test]
fn global_rules_do_not_vanish() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    publish(
        &store,
        "_global",
        vec![crate::block_suspended()],
        &keys.platform,
    );
    publish(
        &store,
        "acme",
        vec![email(&["acme.example"])],
        &keys.platform,
    );
    let h = process(&store, &keys, Duration::ZERO, HandlerConfig::default());
    assert!(!allowed(&handle(&h, fixture("pre-auth-suspended"))));
    std::fs::remove_file(dir.path().join("tenants/_global/manifest.json")).unwrap();
    let answer = handle(&h, fixture("pre-auth-suspended"));
    assert_eq!(answer.record.denied_by.as_deref(), Some("block-suspended"));
    assert_eq!(answer.record.global_revision, Some(1));
    assert!(
        problems(&answer).contains("global rules"),
        "{}",
        problems(&answer)
    );

    let required = HandlerConfig {
        require_global: true,
        ..HandlerConfig::default()
    };
    let cold = process(&store, &keys, Duration::ZERO, required.clone());
    let answer = handle(&cold, fixture("pre-auth"));
    assert_eq!(answer.response, Err(UNAVAILABLE_MESSAGE.into()));
    assert_eq!(answer.record.decision, "error");
    assert!(
        problems(&answer).contains("required"),
        "{}",
        problems(&answer)
    );
    // Not required: the tenant's rules alone decide (as before).
    let lenient = process(&store, &keys, Duration::ZERO, HandlerConfig::default());
    assert!(allowed(&handle(&lenient, fixture("pre-auth-suspended"))));
}

/// A publish interrupted at any point never blocks the next one, and history only holds
/// revisions that were live.
#[test]
fn an_interrupted_publish_never_blocks_the_next() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let root = dir.path();
    publish(
        &store,
        "acme",
        vec![email(&["acme.example"])],
        &keys.platform,
    );
    // A left-over history file of a revision that never went live.
    std::fs::copy(
        root.join("tenants/acme/history/1.json"),
        root.join("tenants/acme/history/2.json"),
    )
    .unwrap();
    let two = publish(&store, "acme", vec![email(&["b.example"])], &keys.platform);
    assert_eq!(two.revision, 2);
    let history = |rev: u64| block(store.revision(&acme(), rev)).unwrap().unwrap();
    assert_eq!(history(2), two, "history holds what went live");
    // Interrupted after the manifest and before its history: the next publish repairs it.
    std::fs::remove_file(root.join("tenants/acme/history/2.json")).unwrap();
    let three = publish(&store, "acme", vec![email(&["c.example"])], &keys.platform);
    assert_eq!(three.revision, 3);
    assert_eq!(history(2), two);
    assert_eq!(history(3), three);
    // A rollback is a new, signed, higher revision.
    let four = block(store.rollback_signed(&acme(), 1, 3, Some(&keys.platform))).unwrap();
    assert_eq!(four.revision, 4);
    assert_eq!(keys.trusted.verify(&four, "acme"), Ok("platform"));
    assert_eq!(four.rules, history(1).rules);
}

#[test]
fn revision_overflow_is_a_typed_error() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let store = RuleStore::dir(dir.path());
    let mut at_max = publish(
        &store,
        "acme",
        vec![email(&["acme.example"])],
        &keys.platform,
    );
    at_max.revision = u64::MAX;
    keys.platform.sign(&mut at_max);
    write(
        dir.path(),
        "tenants/acme/manifest.json",
        &serde_json::to_vec(&at_max).unwrap(),
    );
    let err = block(store.publish_signed(
        &acme(),
        at_max.rules.clone(),
        u64::MAX,
        Some(&keys.platform),
    ))
    .unwrap_err();
    assert!(matches!(err, StoreError::RevisionOverflow(_)), "{err}");
    assert_eq!(
        block(store.current(&acme())).unwrap().unwrap().manifest,
        at_max,
        "nothing written"
    );
}
