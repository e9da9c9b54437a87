//! The S3 rule store against a real S3-compatible server (moto): layout, conditional reads
//! and writes, publish conflicts, rollback, and a registry that keeps its last known good
//! rules through every fault — digest mismatch, truncated module, invalid manifest, S3
//! stopped, S3 slower than the timeout — plus precompiled artifacts, deletes (a canary's
//! end) and captures for replay encrypted with the capture key.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failed step is a failed test"
)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_aws::s3::{S3Capture, S3Objects, client};
use portcullis_engine::{
    ArtifactError, ArtifactKey, Engine, EngineConfig, LoadError, Mode, OnError, Sha256,
};
use portcullis_gate::capture::CaptureSink;
use portcullis_gate::manifest::RuleEntry;
use portcullis_gate::registry::{Lookup, RefreshError, Registry, RegistryConfig};
use portcullis_gate::store::{Fetched, ObjectStore, PutIf, RuleStore, StoreError, TenantId};
use portcullis_gate::trust::{ManifestSigner, SignatureError, TrustedKeys};
use portcullis_testkit::moto::{self, Moto};

fn entry(name: &str, module: &str) -> RuleEntry {
    RuleEntry {
        name: name.into(),
        module: module.into(),
        triggers: vec!["pre-authentication".into()],
        timeout_ms: None,
        fuel: None,
        memory_mb: None,
        on_error: OnError::Deny,
        mode: Mode::Enforce,
        config: serde_json::Value::Null,
        data: Default::default(),
        counters: Default::default(),
        lookups: Default::default(),
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

struct S3 {
    moto: Moto,
    objects: Arc<S3Objects>,
    store: RuleStore,
}

async fn s3() -> S3 {
    let moto = Moto::start();
    moto.bucket("rules").await;
    let objects = Arc::new(S3Objects::new(
        client(&moto.sdk_config().await),
        "rules",
        "prod",
        Duration::from_secs(2),
    ));
    let store = RuleStore::new(objects.clone());
    S3 {
        moto,
        objects,
        store,
    }
}

async fn put_module(store: &RuleStore, path: &str) -> Sha256 {
    store
        .put_module(std::fs::read(path).unwrap())
        .await
        .unwrap()
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn revision(lookup: Lookup) -> u64 {
    match lookup {
        Lookup::Found(set)
        | Lookup::Stale {
            known: Some(set), ..
        } => set.revision,
        other => panic!("expected rules, got {other:?}"),
    }
}

#[tokio::test]
async fn layout_conditional_reads_publish_conflicts_and_rollback() {
    let s3 = s3().await;
    let store = &s3.store;
    assert_eq!(store.current(&acme()).await.unwrap(), None);
    let allow = put_module(store, art::ALLOW_ALL).await;
    // Idempotent: the second upload of the same module is not an error.
    assert_eq!(put_module(store, art::ALLOW_ALL).await, allow);

    let one = store
        .publish(&acme(), vec![entry("a", &allow.to_string())], 0)
        .await
        .unwrap();
    assert_eq!(one.revision, 1);
    let email = put_module(store, art::EMAIL_DOMAIN).await;
    let two = store
        .publish(&acme(), vec![entry("b", &email.to_string())], 1)
        .await
        .unwrap();
    assert_eq!(two.revision, 2);

    // A publisher that read revision 1 loses, and nothing is overwritten.
    let lost = store
        .publish(&acme(), vec![entry("c", &allow.to_string())], 1)
        .await
        .unwrap_err();
    assert!(
        matches!(lost, StoreError::Conflict { expected: 1, .. }),
        "{lost}"
    );
    assert_eq!(store.current(&acme()).await.unwrap().unwrap().manifest, two);

    // A manifest naming a module the store lacks is refused before anything is written.
    let missing = store
        .publish(&acme(), vec![entry("d", &"ab".repeat(32))], 2)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::MissingModule(_)), "{missing}");

    // Conditional GET: S3's 304 comes back as NotModified.
    let Fetched::Found { etag, .. } = store.manifest(&acme(), None).await.unwrap() else {
        panic!("manifest expected")
    };
    assert_eq!(
        store.manifest(&acme(), Some(&etag)).await.unwrap(),
        Fetched::NotModified
    );
    // Conditional PUT: a stale ETag is refused by S3 itself.
    let stale = s3
        .objects
        .put(
            "tenants/acme/manifest.json",
            b"{}".to_vec(),
            PutIf::Matches("\"nope\"".into()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, StoreError::PreconditionFailed(_)),
        "{stale}"
    );

    assert_eq!(store.revisions(&acme()).await.unwrap(), vec![1, 2]);
    assert_eq!(store.tenants().await.unwrap(), vec![acme()]);
    let back = store.rollback(&acme(), 1, 2).await.unwrap();
    assert_eq!((back.revision, back.rules.clone()), (3, one.rules));
    assert_eq!(store.revisions(&acme()).await.unwrap(), vec![1, 2, 3]);
    let nowhere = store.rollback(&acme(), 9, 3).await.unwrap_err();
    assert!(
        matches!(nowhere, StoreError::NoSuchRevision { revision: 9, .. }),
        "{nowhere}"
    );
}

#[tokio::test]
async fn every_fault_keeps_the_last_known_good_rules() {
    let mut s3 = s3().await;
    let store = s3.store.clone();
    let allow = put_module(&store, art::ALLOW_ALL).await;
    store
        .publish(&acme(), vec![entry("a", &allow.to_string())], 0)
        .await
        .unwrap();
    let registry = Registry::new(
        store.clone(),
        engine(),
        RegistryConfig {
            refresh: Duration::ZERO,
            ..RegistryConfig::default()
        },
    );
    assert_eq!(revision(registry.get(&acme()).await), 1);
    // Revalidation with nothing changed: a 304, no failure.
    assert_eq!(revision(registry.get(&acme()).await), 1);
    assert_eq!(registry.refresh_failures(), 0);

    // Digest mismatch: the object under email-domain's digest holds other bytes.
    let email_bytes = std::fs::read(art::EMAIL_DOMAIN).unwrap();
    let email = Sha256::of(&email_bytes);
    s3.objects
        .put(
            &format!("modules/{email}.wasm"),
            std::fs::read(art::RISK_SCORE).unwrap(),
            PutIf::Always,
        )
        .await
        .unwrap();
    store
        .publish(&acme(), vec![entry("b", &email.to_string())], 1)
        .await
        .unwrap();
    assert_eq!(revision(registry.get(&acme()).await), 1);
    assert_eq!(registry.refresh_failures(), 1);

    // Truncated module: the right name, half the bytes.
    let half = email_bytes.get(..email_bytes.len() / 2).unwrap().to_vec();
    s3.objects
        .put(&format!("modules/{email}.wasm"), half, PutIf::Always)
        .await
        .unwrap();
    store
        .publish(&acme(), vec![entry("b", &email.to_string())], 2)
        .await
        .unwrap();
    assert_eq!(revision(registry.get(&acme()).await), 1);
    assert_eq!(registry.refresh_failures(), 2);

    // Invalid manifest.
    s3.objects
        .put(
            "tenants/acme/manifest.json",
            b"{\"revision\": 9, \"rulez\": []}".to_vec(),
            PutIf::Always,
        )
        .await
        .unwrap();
    assert_eq!(revision(registry.get(&acme()).await), 1);
    assert_eq!(registry.refresh_failures(), 3);

    // S3 stopped.
    s3.moto.stop();
    assert_eq!(revision(registry.get(&acme()).await), 1);
    assert_eq!(registry.refresh_failures(), 4);
}

#[tokio::test]
async fn slow_s3_times_out_and_a_cold_start_falls_back_to_the_baseline() {
    let moto = Moto::start();
    let (port, _hole) = moto::black_hole();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .load()
        .await;
    let slow = RuleStore::new(Arc::new(S3Objects::new(
        client(&config),
        "rules",
        "",
        Duration::from_millis(300),
    )));
    let started = std::time::Instant::now();
    let error = slow.current(&acme()).await.unwrap_err();
    assert!(matches!(error, StoreError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Cold start, no last known good: without a baseline the lookup fails...
    let engine = engine();
    let bare = Registry::new(slow.clone(), engine.clone(), RegistryConfig::default());
    assert!(matches!(bare.get(&acme()).await, Lookup::Failed(_)));
    // ...with one, the bundled rules serve, marked as baseline.
    let dir = tempfile::tempdir().unwrap();
    let baseline = RuleStore::dir(dir.path());
    let allow = put_module(&baseline, art::ALLOW_ALL).await;
    baseline
        .publish(&acme(), vec![entry("a", &allow.to_string())], 0)
        .await
        .unwrap();
    let registry = Registry::new(
        slow,
        engine,
        RegistryConfig {
            baseline: Some(baseline),
            ..RegistryConfig::default()
        },
    );
    match registry.get(&acme()).await {
        Lookup::Found(set) => assert!(set.baseline && set.revision == 1),
        other => panic!("expected baseline rules, got {other:?}"),
    }
    drop(moto);
}

#[tokio::test]
async fn precompiled_artifacts_are_used_verified_and_written_back() {
    let s3 = s3().await;
    let store = s3.store.clone();
    let bytes = std::fs::read(art::EMAIL_DOMAIN).unwrap();
    let digest = put_module(&store, art::EMAIL_DOMAIN).await;
    store
        .publish(&acme(), vec![entry("a", &digest.to_string())], 0)
        .await
        .unwrap();
    let key = ArtifactKey::new(vec![3; 32]).unwrap();
    let with_key = |write_back| RegistryConfig {
        write_back,
        artifact_key: Some(key.clone()),
        ..RegistryConfig::default()
    };

    // Without the artifact key nothing is written back.
    let keyless = engine();
    let compat = keyless.compat();
    let registry = Registry::new(
        store.clone(),
        keyless,
        RegistryConfig {
            write_back: true,
            ..RegistryConfig::default()
        },
    );
    assert_eq!(revision(registry.get(&acme()).await), 1);
    assert_eq!(store.compiled(&compat, &digest).await.unwrap(), None);

    // First process: compiles the .wasm and writes the sealed artifact back.
    let first = engine();
    let registry = Registry::new(store.clone(), first.clone(), with_key(true));
    assert_eq!(revision(registry.get(&acme()).await), 1);
    let artifact = store
        .compiled(&compat, &digest)
        .await
        .unwrap()
        .expect("written back");

    // Second process (fresh engine, same build, same key): the artifact is enough — prove
    // it by replacing the .wasm with garbage.
    s3.objects
        .put(
            &format!("modules/{digest}.wasm"),
            b"garbage".to_vec(),
            PutIf::Always,
        )
        .await
        .unwrap();
    let second = engine();
    assert_eq!(second.compat(), compat);
    let registry = Registry::new(store.clone(), second, with_key(false));
    assert_eq!(revision(registry.get(&acme()).await), 1);
    assert_eq!(registry.artifact_refusals(), 0);

    // Tampered, foreign, truncated or other-key artifacts are refused by the engine.
    let third = engine();
    let mut tampered = artifact.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let refused = |r: Result<_, LoadError>| match r {
        Err(LoadError::Artifact(e)) => e,
        other => panic!("expected an artifact refusal, got {other:?}"),
    };
    assert_eq!(
        refused(third.load_precompiled(&tampered, &digest, &key)),
        ArtifactError::Unauthenticated
    );
    let other = Sha256::of(b"other");
    assert!(matches!(
        refused(third.load_precompiled(&artifact, &other, &key)),
        ArtifactError::WrongModule { .. }
    ));
    assert_eq!(
        refused(third.load_precompiled(&artifact[..100], &digest, &key)),
        ArtifactError::Truncated
    );
    let stranger = ArtifactKey::new(vec![4; 32]).unwrap();
    assert_eq!(
        refused(third.load_precompiled(&artifact, &digest, &stranger)),
        ArtifactError::Unauthenticated
    );
    let policy = third.load_precompiled(&artifact, &digest, &key).unwrap();
    assert_eq!(policy.digest(), Sha256::of(&bytes));
}

/// The attacks on the trust chain, against S3: an artifact planted under `compiled/` is
/// refused, the verified `.wasm` decides, and the artifact is overwritten; manifests that a
/// trusted key did not sign, and a manifest that disappears, leave the last known good set.
#[tokio::test]
async fn planted_artifacts_and_unsigned_manifests_never_decide() {
    let s3 = s3().await;
    let store = s3.store.clone();
    let key = ArtifactKey::new(vec![5; 32]).unwrap();
    let signer = ManifestSigner::generate("platform").unwrap();
    let trusted = TrustedKeys::parse(&signer.public_line()).unwrap();
    let allow = put_module(&store, art::ALLOW_ALL).await;
    let email = put_module(&store, art::EMAIL_DOMAIN).await;
    let mut deny = entry("company-email", &email.to_string());
    deny.config = serde_json::json!({"domains": ["globex.example"]});
    store
        .publish_signed(&acme(), vec![deny], 0, Some(&signer))
        .await
        .unwrap();

    // A forger relabels allow-all's native code as the email rule's, under its own key.
    let forger = engine();
    let allow_policy = forger
        .load(&std::fs::read(art::ALLOW_ALL).unwrap())
        .unwrap();
    let compat = forger.compat();
    let forged_key = ArtifactKey::new(vec![6; 32]).unwrap();
    let mut planted = forger.artifact(&allow_policy, &forged_key).unwrap();
    planted[16 + 32..16 + 64].copy_from_slice(email.as_bytes());
    store
        .put_compiled(&compat, &email, planted.clone())
        .await
        .unwrap();
    assert_ne!(allow, email);

    let registry = Registry::new(
        store.clone(),
        engine(),
        RegistryConfig {
            refresh: Duration::ZERO,
            trusted_keys: Some(trusted.clone()),
            artifact_key: Some(key.clone()),
            ..RegistryConfig::default()
        },
    );
    let set = match registry.get(&acme()).await {
        Lookup::Found(set) => set,
        other => panic!("{other:?}"),
    };
    assert_eq!(set.signed_by.as_deref(), Some("platform"));
    assert_eq!(registry.artifact_refusals(), 1);
    // The rule that runs is the verified email rule (it denies ada), not allow-all.
    let request = portcullis_gate::cognito::Event::from_value(
        serde_json::from_str(include_str!("../../fixtures/events/pre-auth.json")).unwrap(),
    )
    .unwrap()
    .to_request("acme", 0)
    .unwrap();
    let outcome = portcullis_engine::chain::evaluate_rules(
        set.rules.iter().map(|loaded| &loaded.rule),
        &engine(),
        request,
        &Default::default(),
        std::time::Instant::now() + Duration::from_secs(5),
    );
    assert!(
        matches!(outcome.decision, portcullis_engine::Decision::Deny { .. }),
        "{:?}",
        outcome.decision
    );
    // The planted artifact was overwritten with one this deployment vouches for.
    let replaced = store.compiled(&compat, &email).await.unwrap().unwrap();
    assert_ne!(replaced, planted);
    portcullis_engine::artifact::open(&key, &compat, &email, &replaced).unwrap();

    // An unsigned manifest (written by anyone with store access) is refused; the signed
    // revision 1 keeps deciding.
    let mut unsigned = store.current(&acme()).await.unwrap().unwrap().manifest;
    unsigned.revision = 2;
    unsigned.signature = None;
    unsigned.rules = vec![entry("open", &allow.to_string())];
    s3.objects
        .put(
            "tenants/acme/manifest.json",
            serde_json::to_vec(&unsigned).unwrap(),
            PutIf::Always,
        )
        .await
        .unwrap();
    match registry.get(&acme()).await {
        Lookup::Stale {
            known: Some(set),
            error,
        } => {
            assert_eq!(set.revision, 1);
            assert!(
                matches!(*error, RefreshError::Signature(SignatureError::Unsigned)),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A deleted manifest keeps the last known good set too.
    s3.moto
        .delete_object("rules", "prod/tenants/acme/manifest.json")
        .await;
    match registry.get(&acme()).await {
        Lookup::Stale {
            known: Some(set),
            error,
        } => {
            assert_eq!(set.revision, 1);
            assert!(
                matches!(*error, RefreshError::Vanished { held: 1 }),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(registry.refresh_failures(), 2);
}

/// The artifact key is read from Secrets Manager (as the template deploys it) or a file;
/// a short key is refused.
#[tokio::test]
async fn the_artifact_key_comes_from_secrets_manager() {
    use portcullis_aws::keys::{KeyLoadError, KeySource};
    let s3 = s3().await;
    let config = s3.moto.sdk_config().await;
    let secret = "a".repeat(64);
    s3.moto.secret("portcullis/artifact", &secret).await;
    s3.moto.secret("portcullis/short", "tooshort").await;
    let source: KeySource = "secretsmanager:portcullis/artifact".parse().unwrap();
    let key = source
        .load(async || config.clone(), Duration::from_secs(2))
        .await
        .unwrap();
    // The same text in a file is the same key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifact.key");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    let from_file = KeySource::File(path)
        .load(async || config.clone(), Duration::from_secs(2))
        .await
        .unwrap();
    let module = Sha256::of(b"m");
    let compat = "0".repeat(32);
    let sealed = portcullis_engine::artifact::seal(
        &key,
        &compat,
        (&module, 1),
        portcullis_engine::artifact::Placement::Small,
        b"x",
    )
    .unwrap();
    portcullis_engine::artifact::open(&from_file, &compat, &module, &sealed).unwrap();

    let short: KeySource = "secretsmanager:portcullis/short".parse().unwrap();
    assert!(matches!(
        short
            .load(async || config.clone(), Duration::from_secs(2))
            .await,
        Err(KeyLoadError::Weak { .. })
    ));
    let missing: KeySource = "secretsmanager:portcullis/none".parse().unwrap();
    assert!(matches!(
        missing
            .load(async || config.clone(), Duration::from_secs(2))
            .await,
        Err(KeyLoadError::Secret { .. })
    ));
}

#[tokio::test]
async fn captures_are_encrypted_with_the_capture_key_and_deletes_end_canaries() {
    let s3 = s3().await;
    // A canary ends with a delete; deleting what is not there is not an error.
    let key = "tenants/acme/canary.json";
    s3.objects
        .put(key, b"{}".to_vec(), PutIf::Always)
        .await
        .unwrap();
    s3.objects.delete(key).await.unwrap();
    assert_eq!(s3.objects.get(key, None).await.unwrap(), Fetched::NotFound);
    s3.objects.delete(key).await.unwrap();

    let arn = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let raw = client(&s3.moto.sdk_config().await);
    let sink = S3Capture::new(
        S3Objects::new(raw.clone(), "rules", "prod", Duration::from_secs(2)),
        Some(arn.to_owned()),
    );
    let capture = "capture/acme/2026-12-02/1-abc.json";
    sink.put(capture, b"{\"portcullis_capture\": 1}".to_vec())
        .await
        .unwrap();
    let head = raw
        .head_object()
        .bucket("rules")
        .key(format!("prod/{capture}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    assert_eq!(head.ssekms_key_id(), Some(arn));
}
