//! The ops commands against a real S3- and DynamoDB-compatible server (moto), and hot swap:
//! a running `bootstrap` (through the real Lambda runtime API) picks up `portcullis
//! publish` and `portcullis rollback` within the refresh interval, with no restart and no
//! failed invocation.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed step is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_testkit::lambda::{Invoked, Lambda};
use portcullis_testkit::moto::Moto;
use portcullis_testkit::rules::block;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}.json")).unwrap()).unwrap()
}

fn portcullis(moto: &Moto, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.args(args);
    for (k, v) in moto.env() {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes a manifest for acme allowing `domain` (email-domain) into `dir`.
fn manifest(dir: &Path, name: &str, domain: &str) -> PathBuf {
    let path = dir.join(name);
    let manifest = json!({
        "revision": 0,
        "rules": [{
            "name": "company-email",
            "module": art::EMAIL_DOMAIN,
            "triggers": ["pre-authentication"],
            "config": {"domains": [domain]}
        }]
    });
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    path
}

/// A new artifact key file in `dir`.
fn artifact_key(dir: &Path) -> PathBuf {
    let path = dir.join("artifact.key");
    if !path.exists() {
        ok(&Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["keygen", "--artifact", "--out", path.to_str().unwrap()])
            .output()
            .unwrap());
    }
    path
}

fn setup() -> (Moto, tempfile::TempDir) {
    let moto = Moto::start();
    block(moto.bucket("rules"));
    (moto, tempfile::tempdir().unwrap())
}

const STORE: &str = "s3://rules/prod";

#[test]
fn publish_status_diff_rollback_and_conflicts_on_s3() {
    let (moto, dir) = setup();
    let one = manifest(dir.path(), "one.json", "acme.example");
    let two = manifest(dir.path(), "two.json", "other.example");
    let m = |p: &Path| p.to_str().unwrap().to_owned();

    let out = ok(&portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            &m(&one),
            "--precompile",
            "--artifact-key",
            &m(&artifact_key(dir.path())),
        ],
    ));
    assert!(
        out.starts_with("published acme revision 1 (1 rules); precompiled"),
        "{out}"
    );
    let out = ok(&portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            &m(&two),
        ],
    ));
    assert!(out.starts_with("published acme revision 2"), "{out}");

    // A publisher that expected revision 1 is refused, and revision 2 stays.
    let lost = portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            &m(&one),
            "--expect-revision",
            "1",
        ],
    );
    assert_eq!(lost.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&lost.stderr).contains("another publish won"),
        "{}",
        String::from_utf8_lossy(&lost.stderr)
    );

    let status = ok(&portcullis(&moto, &["status", "--store", STORE, "--json"]));
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["acme"]["revision"], 2);
    assert_eq!(
        status["acme"]["rules"][0]["config"]["domains"],
        json!(["other.example"])
    );
    let text = ok(&portcullis(&moto, &["status", "--store", STORE]));
    assert!(text.contains("acme  revision 2  1 rules"), "{text}");

    let diff = ok(&portcullis(
        &moto,
        &["diff", "--store", STORE, "--tenant", "acme"],
    ));
    assert!(diff.contains("acme: revision 1 -> 2"), "{diff}");
    assert!(
        diff.contains(r#"config: {"domains":["acme.example"]} -> {"domains":["other.example"]}"#),
        "{diff}"
    );

    let back = ok(&portcullis(
        &moto,
        &[
            "rollback", "--store", STORE, "--tenant", "acme", "--to", "1",
        ],
    ));
    assert!(back.contains("now revision 3"), "{back}");
    let diff = ok(&portcullis(
        &moto,
        &[
            "diff", "--store", STORE, "--tenant", "acme", "--from", "1", "--to", "3",
        ],
    ));
    assert!(diff.contains("no changes"), "{diff}");

    // An invalid manifest is refused with the rule and field named; nothing is written.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        json!({"revision": 0, "rules": [{"name": "x", "module": art::ALLOW_ALL, "triggers": ["pre-authentication"], "timeout_ms": 999999}]}).to_string(),
    )
    .unwrap();
    let refused = portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            &m(&bad),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("timeout_ms"));
    // A module outside the contract is refused, naming the import.
    let wasi = dir.path().join("wasi.json");
    std::fs::write(
        &wasi,
        json!({"revision": 0, "rules": [{"name": "x", "module": art::WASI_STD, "triggers": ["pre-authentication"]}]}).to_string(),
    )
    .unwrap();
    let refused = portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            &m(&wasi),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wasi:"));
    let status = ok(&portcullis(
        &moto,
        &["status", "--store", STORE, "--tenant", "acme", "--json"],
    ));
    assert!(status.contains(r#""revision":3"#), "{status}");
}

#[test]
fn policy_test_cases_gate_a_publish() {
    let (moto, dir) = setup();
    let module = dir.path().join("email.wasm");
    std::fs::copy(art::EMAIL_DOMAIN, &module).unwrap();
    let event = fixture("pre-auth");
    let tests = |expect: &str| {
        json!([{"name": "ada is a member", "event": event, "expect": expect}]).to_string()
    };
    let path = dir.path().join("m.json");
    std::fs::write(
        &path,
        json!({"revision": 0, "rules": [{"name": "company-email", "module": "email.wasm",
            "triggers": ["pre-authentication"], "config": {"domains": ["acme.example"]}}]})
        .to_string(),
    )
    .unwrap();
    let args = [
        "publish",
        "--store",
        STORE,
        "--tenant",
        "acme",
        "--manifest",
        path.to_str().unwrap(),
    ];

    std::fs::write(dir.path().join("email.tests.json"), tests("deny")).unwrap();
    let failed = portcullis(&moto, &args);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("1 of 1 tests failed") && stderr.contains("expected deny, got allow"),
        "{stderr}"
    );

    std::fs::write(dir.path().join("email.tests.json"), tests("allow")).unwrap();
    let out = portcullis(&moto, &args);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 tests passed"));
}

#[test]
fn data_and_activity_commands() {
    let moto = Moto::start();
    block(moto.tables("data", "activity"));
    let data = |args: &[&str]| {
        let mut all = vec!["data"];
        all.extend_from_slice(args);
        portcullis(&moto, &all)
    };
    ok(&data(&[
        "put",
        "--table",
        "data",
        "--tenant",
        "acme",
        "user#1",
        r#"{"suspended": true}"#,
    ]));
    let got = ok(&data(&[
        "get", "--table", "data", "--tenant", "acme", "user#1",
    ]));
    assert_eq!(got.trim(), r#"{"suspended":true}"#);
    // Another tenant does not see it.
    assert_eq!(
        data(&["get", "--table", "data", "--tenant", "globex", "user#1"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        data(&[
            "put",
            "--table",
            "data",
            "--tenant",
            "acme",
            "k",
            "{not json"
        ])
        .status
        .code(),
        Some(1)
    );
    assert!(
        ok(&data(&[
            "delete", "--table", "data", "--tenant", "acme", "user#1"
        ]))
        .starts_with("deleted")
    );
    assert_eq!(
        data(&["get", "--table", "data", "--tenant", "acme", "user#1"])
            .status
            .code(),
        Some(1)
    );

    let none = portcullis(
        &moto,
        &[
            "activity", "--table", "activity", "--tenant", "acme", "--user", "ada",
        ],
    );
    assert_eq!(none.status.code(), Some(1));
}

/// Sends pre-auth sign-ins in a loop until stopped; returns every answer.
fn keep_signing_in(
    lambda: Arc<Lambda>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Invoked>> {
    std::thread::spawn(move || {
        let mut answers = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            answers.push(lambda.invoke(&fixture("pre-auth")));
            std::thread::sleep(Duration::from_millis(20));
        }
        answers
    })
}

fn wait_for_revision(lambda: &Lambda, revision: u64) -> Duration {
    let start = Instant::now();
    loop {
        let latest = lambda
            .decisions()
            .last()
            .and_then(|d| d["fields"]["revision"].as_u64());
        if latest == Some(revision) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "revision {revision} never served; last {latest:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hot_swap_and_rollback_without_restart() {
    let (moto, dir) = setup();
    let one = manifest(dir.path(), "one.json", "acme.example");
    let two = manifest(dir.path(), "two.json", "other.example");
    // The platform's publishing key; the function trusts its public half.
    let keys = dir.path().join("keys");
    let public = ok(&Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "keygen",
            "--id",
            "platform",
            "--out",
            keys.to_str().unwrap(),
        ])
        .output()
        .unwrap());
    let sign_key = keys.join("platform.key");
    let sign_key = sign_key.to_str().unwrap();
    ok(&portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            one.to_str().unwrap(),
            "--sign-key",
            sign_key,
        ],
    ));
    let bootstrap = Path::new(env!("CARGO_BIN_EXE_portcullis")).with_file_name("bootstrap");
    let mut env = moto.env();
    env.push(("PORTCULLIS_STORE", STORE.into()));
    env.push(("PORTCULLIS_REFRESH_SECS", "1".into()));
    env.push(("PORTCULLIS_TRUSTED_KEYS", public.trim().to_owned()));
    let lambda = Arc::new(Lambda::start(&bootstrap, &env));
    assert!(matches!(
        lambda.invoke(&fixture("pre-auth")),
        Invoked::Ok(_)
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let signing = keep_signing_in(lambda.clone(), stop.clone());

    ok(&portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            two.to_str().unwrap(),
            "--sign-key",
            sign_key,
        ],
    ));
    let swap = wait_for_revision(&lambda, 2);
    assert!(swap < Duration::from_secs(5), "took {swap:?}");
    ok(&portcullis(
        &moto,
        &[
            "rollback",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--to",
            "1",
            "--sign-key",
            sign_key,
        ],
    ));
    let back = wait_for_revision(&lambda, 3);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let answers = signing.join().unwrap();

    // Every invocation answered: allowed (revisions 1 and 3) or blocked by the rule
    // (revision 2) — never a Portcullis failure.
    let mut kinds = Vec::new();
    for answer in &answers {
        let kind = match answer {
            Invoked::Ok(_) => "allow",
            Invoked::Error {
                error_type,
                message,
            } => {
                assert_eq!(error_type, "SignInBlocked");
                assert_ne!(
                    message,
                    "Sign-in is temporarily unavailable, please try again later"
                );
                "deny"
            }
        };
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
    }
    assert_eq!(
        kinds,
        ["allow", "deny", "allow"],
        "{} answers",
        answers.len()
    );
    let decisions = lambda.decisions();
    let mut revisions: Vec<u64> = decisions
        .iter()
        .map(|d| d["fields"]["revision"].as_u64().unwrap())
        .collect();
    assert!(decisions.iter().all(|d| d["fields"]["decision"] != "error"));
    revisions.dedup();
    assert_eq!(revisions, [1, 2, 3]);
    eprintln!(
        "hot swap visible after {swap:?}, rollback after {back:?}, {} invocations",
        answers.len()
    );

    // Someone with write access to the store but not the key publishes unsigned rules
    // (the CLI only refuses when it is told the deployment's keys): the running function
    // refuses them and revision 3 keeps deciding.
    ok(&portcullis(
        &moto,
        &[
            "publish",
            "--store",
            STORE,
            "--tenant",
            "acme",
            "--manifest",
            two.to_str().unwrap(),
        ],
    ));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(matches!(
        lambda.invoke(&fixture("pre-auth")),
        Invoked::Ok(_)
    ));
    let last = lambda.decisions().pop().unwrap();
    assert_eq!(last["fields"]["revision"], 3);
    let problems = last["fields"]["problems"].to_string();
    assert!(problems.contains("not signed"), "{problems}");
}
