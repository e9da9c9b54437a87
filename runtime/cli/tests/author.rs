//! The author's loop end to end, in each language, with the real binary and the README's
//! commands: `portcullis new`, one edit, `portcullis test` (a failing case, then passing),
//! `publish` to a local store with the project's artifact key, `handle` showing the new
//! decision. And the other side: Python and TypeScript components importing WASI are
//! refused at publish, nothing written.

#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a failed step is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn portcullis(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .current_dir(dir)
        .args(args)
        // Rust projects share one target directory across runs of the suite.
        .env("CARGO_TARGET_DIR", format!("{ROOT}/target/scaffold"))
        .env_remove("PORTCULLIS_ARTIFACT_KEY")
        .env_remove("PORTCULLIS_TRUSTED_KEYS")
        .output()
        .expect("run portcullis")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn edit(path: &Path, from: &str, to: &str) {
    let source = std::fs::read_to_string(path).expect("read");
    assert!(source.contains(from), "{}: no `{from}`", path.display());
    std::fs::write(path, source.replace(from, to)).expect("write");
}

/// `new`, an edit, `test` failing then passing, `publish`, `handle`: what README.md says.
fn author_loop(lang: &str, source: &str, setup: impl Fn(&Path)) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let name = format!("block-{lang}");
    let out = portcullis(tmp.path(), &["new", &name, "--lang", lang]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = tmp.path().join(&name);
    for file in [
        "README.md",
        "manifest.json",
        "events/pre-auth.json",
        "artifact.key",
    ] {
        assert!(dir.join(file).is_file(), "{lang}: {file} missing");
    }
    setup(&dir);

    // The one edit: the deny message. The case that expects the old one now fails.
    edit(
        &dir.join(source),
        "Sign-in with this email address is not allowed",
        "Use your company account",
    );
    let out = portcullis(&dir, &["test", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{lang}: {}", text(&out));
    let cases: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per case"))
        .collect();
    assert_eq!(cases.len(), 3, "{lang}: {}", text(&out));
    let failed: Vec<&Value> = cases.iter().filter(|c| c["passed"] == false).collect();
    assert_eq!(failed.len(), 1, "{lang}: {cases:?}");
    assert_eq!(
        failed[0]["name"],
        "a blocked domain is denied with a message"
    );
    let reason = failed[0]["failures"].to_string();
    assert!(
        reason.contains("Use your company account") && reason.contains("is not allowed"),
        "{lang}: the failure names the expected and actual message: {reason}"
    );
    assert!(cases.iter().all(|c| c["fuel"].as_u64() > Some(0)), "{lang}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 failed"));
    // Compiled once, kept sealed with the project's key for the next commands.
    let cached = std::fs::read_dir(dir.join("build"))
        .expect("a compile cache")
        .flatten()
        .flat_map(|engine| std::fs::read_dir(engine.path()).into_iter().flatten())
        .flatten()
        .filter(|f| f.path().extension().is_some_and(|e| e == "cwasm"))
        .count();
    assert_eq!(cached, 1, "{lang}");

    // The case follows the rule; the tenant blocks the users' own domain.
    edit(
        &dir.join(format!("{name}.tests.json")),
        "Sign-in with this email address is not allowed",
        "Use your company account",
    );
    let out = portcullis(&dir, &["test"]);
    assert_eq!(out.status.code(), Some(0), "{lang}: {}", text(&out));
    assert!(text(&out).contains("3 passed, 0 failed"), "{}", text(&out));
    edit(
        &dir.join("manifest.json"),
        "[\"example.net\"]",
        "[\"acme.example\"]",
    );

    let key = ["--artifact-key", "artifact.key"];
    let mut publish = vec!["publish", "--store", "store", "--tenant", "acme"];
    publish.extend(["--manifest", "manifest.json"]);
    let out = portcullis(&dir, &[&publish[..], &key].concat());
    assert_eq!(out.status.code(), Some(0), "{lang}: {}", text(&out));
    let compiled = std::fs::read_dir(dir.join("store/compiled"))
        .expect("an artifact was stored")
        .count();
    assert_eq!(compiled, 1, "{lang}");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("store/tenants/acme/manifest.json")).expect("published"),
    )
    .expect("JSON");
    assert!(
        manifest["rules"][0]["fuel"].as_u64() > Some(0),
        "the language's default fuel is written into the manifest: {manifest}"
    );

    let handle = |event: &str| {
        let args = ["handle", "--store", "store", "--event", event];
        portcullis(&dir, &[&args[..], &key].concat())
    };
    let out = handle("events/pre-auth.json");
    assert_eq!(out.status.code(), Some(2), "{lang}: {}", text(&out));
    assert!(
        text(&out).contains("PreAuthentication failed with error Use your company account."),
        "{lang}: {}",
        text(&out)
    );
    // The block holds on the token path too (a refresh never passes pre-authentication).
    let out = handle("events/token.json");
    assert_eq!(out.status.code(), Some(2), "{lang}: {}", text(&out));
    assert!(
        text(&out).contains("PreTokenGeneration failed with error Use your company account."),
        "{lang}: {}",
        text(&out)
    );
}

#[test]
fn a_rust_policy_from_new_to_a_decision() {
    author_loop("rust", "src/lib.rs", |_| {});
}

#[test]
fn a_typescript_policy_from_new_to_a_decision() {
    author_loop("ts", "app.ts", |dir| {
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefer-offline"])
            .current_dir(dir)
            .output()
            .expect("npm");
        assert!(out.status.success(), "npm install: {}", text(&out));
    });
}

#[test]
fn a_python_policy_from_new_to_a_decision() {
    author_loop("python", "app.py", |dir| {
        // The unit tests run natively, as the README's first command.
        let out = Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .current_dir(dir)
            .output()
            .expect("pytest");
        assert!(out.status.success(), "pytest: {}", text(&out));
    });
}

#[test]
fn python_and_typescript_components_importing_wasi_are_refused_at_publish() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = tmp.path().join("artifact.key");
    let out = portcullis(
        tmp.path(),
        &[
            "keygen",
            "--artifact",
            "--out",
            key.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for lang in ["python", "ts"] {
        let module = PathBuf::from(format!("{ROOT}/target/wasm/{lang}/with-wasi.wasm"));
        assert!(
            module.exists(),
            "run scripts/build-{lang} (scripts/test does)"
        );
        let manifest = tmp.path().join(format!("{lang}.json"));
        let rule = serde_json::json!({"revision": 0, "rules": [{
            "name": "wasi", "module": module, "triggers": ["pre-authentication"]}]});
        std::fs::write(&manifest, rule.to_string()).expect("write");
        let out = portcullis(
            tmp.path(),
            &[
                "publish",
                "--store",
                "store",
                "--tenant",
                "acme",
                "--manifest",
                manifest.to_str().expect("utf-8"),
                "--artifact-key",
                key.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{lang}: {}", text(&out));
        assert!(
            text(&out).contains("wasi:"),
            "{lang}: names the imports: {}",
            text(&out)
        );
        assert!(
            !tmp.path().join("store/tenants").exists(),
            "{lang}: nothing was written"
        );
    }
}
