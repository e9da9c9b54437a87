//! `portcullis` on the paths to a token and trusted context: `publish` names the paths past
//! a pre-authentication-only block (`--strict` refuses it), and envelopes signed by the CLI,
//! the Node helper and the Python helper reach rules as trusted context through `handle`.

use std::path::Path;
use std::process::Command;

use portcullis_artifacts as art;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}.json")
}

mod common;

/// Runs the CLI with no deployment keys from the environment.
fn run(args: &[&str]) -> std::process::Output {
    common::portcullis(args, &[])
}

use common::text;

/// Trusted context from the command line: an envelope signed with the tenant's key (by the
/// CLI, by the Node helper and by the Python helper alike) reaches the rule as trusted; a
/// tampered one, another tenant's, an expired one, a replayed one and a bare client claim do
/// not — the rule (`ip-allowlist`, trusted addresses only) blocks those.
#[test]
fn trusted_context_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let store = path("store");
    let key = "acme-context-key-0123456789abcdef0123456789";
    let other = "globex-context-key-0123456789abcdef012345678";
    std::fs::write(path("acme.key"), key).unwrap();
    std::fs::write(path("globex.key"), other).unwrap();
    std::fs::write(
        path("keys.json"),
        serde_json::json!({"acme": key, "globex": other}).to_string(),
    )
    .unwrap();
    let manifest = serde_json::json!({"revision": 0, "rules": [{
        "name": "office", "module": art::IP_ALLOWLIST, "triggers": ["pre-authentication"],
        "config": {"allow": ["203.0.113.0/24"]}
    }]});
    std::fs::write(path("acme.json"), manifest.to_string()).unwrap();
    let published = run(&[
        "publish",
        "--store",
        &store,
        "--tenant",
        "acme",
        "--manifest",
        &path("acme.json"),
    ]);
    assert!(published.status.success(), "{}", text(&published));
    let sign = |key_file: &str, tenant: &str, extra: &[&str]| {
        let mut args = vec![
            "context", "--key", key_file, "--tenant", tenant, "--user", "ada",
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let handle = |envelope: Option<&str>, name: &str| {
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("pre-auth")).unwrap()).unwrap();
        event["request"]["validationData"] = serde_json::json!({"ip": "203.0.113.9"});
        if let Some(envelope) = envelope {
            event["request"]["validationData"]["portcullis_context"] = envelope.into();
        }
        let file = path(&format!("{name}.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let out = run(&[
            "handle",
            "--json",
            "--store",
            &store,
            "--event",
            &file,
            "--context-keys",
            &path("keys.json"),
        ]);
        let json: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        (json["blocked"].is_null(), json["record"]["context"].clone())
    };
    let good = sign(&path("acme.key"), "acme", &["--ip", "203.0.113.7"]);
    assert_eq!(
        handle(Some(&good), "good"),
        (true, serde_json::json!("trusted"))
    );
    // The same envelope again at once: the sign-in's other triggers and Cognito's retries.
    assert!(handle(Some(&good), "good-again").0);

    // Tampered: the payload of one envelope with the MAC of another.
    let wide = sign(&path("acme.key"), "acme", &["--ip", "198.51.100.1"]);
    let (prefix, _) = good.rsplit_once('.').unwrap();
    let (_, wide_mac) = wide.rsplit_once('.').unwrap();
    let refused = |reason: &str| serde_json::json!({"refused": reason});
    assert_eq!(
        handle(Some(&format!("{prefix}.{wide_mac}")), "tampered"),
        (false, refused("signature does not verify"))
    );
    // Another tenant's key and tenant.
    let theirs = sign(&path("globex.key"), "globex", &["--ip", "203.0.113.7"]);
    assert_eq!(
        handle(Some(&theirs), "theirs"),
        (false, refused("signature does not verify"))
    );
    // Expired.
    let old = sign(
        &path("acme.key"),
        "acme",
        &["--ip", "203.0.113.7", "--now-ms", "1000"],
    );
    assert_eq!(
        handle(Some(&old), "old"),
        (false, refused("envelope expired"))
    );
    // No envelope: the client's own `ip` is not trusted.
    assert_eq!(handle(None, "bare"), (false, Value::Null));

    // The Node and Python helpers sign envelopes the host accepts.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let node = Command::new("node")
        .args([
            "--input-type=module",
            "-e",
            &format!(
                "import {{ signContext }} from '{root}/sdk/js/context.js'; \
                 process.stdout.write(signContext('{key}', {{ tenant: 'acme', user: 'ada', ip: '203.0.113.8' }}));"
            ),
        ])
        .output();
    match node {
        Ok(out) if out.status.success() => {
            let envelope = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(
                handle(Some(&envelope), "node"),
                (true, serde_json::json!("trusted"))
            );
        }
        other => panic!("node is needed for the Node helper's test: {other:?}"),
    }
    let python = Command::new("python3")
        .env("PYTHONPATH", format!("{root}/sdk/python"))
        .args([
            "-c",
            &format!(
                "import sys, importlib.util as u\n\
                 spec = u.spec_from_file_location('context', '{root}/sdk/python/portcullis/context.py')\n\
                 m = u.module_from_spec(spec); spec.loader.exec_module(m)\n\
                 sys.stdout.write(m.sign_context('{key}', 'acme', user='ada', ip='203.0.113.9'))"
            ),
        ])
        .output()
        .expect("python3");
    assert!(python.status.success(), "{python:?}");
    let envelope = String::from_utf8_lossy(&python.stdout).into_owned();
    assert_eq!(
        handle(Some(&envelope), "python"),
        (true, serde_json::json!("trusted"))
    );
}

/// `publish` warns about an enforced rule that blocks only in pre-authentication, naming the
/// paths that bypass it; `--strict` refuses it and writes nothing.
#[test]
fn publish_names_the_paths_past_a_pre_authentication_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let store = path("store");
    let manifest = |triggers: &[&str]| {
        serde_json::json!({"revision": 0, "rules": [{
            "name": "block-suspended", "module": art::SUSPENDED_USERS, "triggers": triggers,
        }]})
        .to_string()
    };
    std::fs::write(
        path("pre-auth-only.json"),
        manifest(&["pre-authentication"]),
    )
    .unwrap();
    std::fs::write(path("every.json"), manifest(&["every-sign-in"])).unwrap();
    let publish = |file: &str, strict: bool| {
        let mut args = vec![
            "publish",
            "--store",
            &store,
            "--tenant",
            "_global",
            "--manifest",
        ];
        let file = path(file);
        args.push(&file);
        if strict {
            args.push("--strict");
        }
        run(&args)
    };
    let refused = publish("pre-auth-only.json", true);
    assert!(!refused.status.success(), "{}", text(&refused));
    let message = text(&refused);
    for path in [
        "TokenGeneration_RefreshTokens",
        "GetTokensFromRefreshToken",
        "TokenGeneration_HostedAuth",
        "every-sign-in",
    ] {
        assert!(message.contains(path), "names {path}: {message}");
    }
    assert!(
        !Path::new(&store).join("tenants/_global").exists()
            || !text(&run(&["status", "--store", &store])).contains("block-suspended"),
        "nothing was written"
    );
    let warned = publish("pre-auth-only.json", false);
    assert!(warned.status.success(), "{}", text(&warned));
    assert!(
        String::from_utf8_lossy(&warned.stderr).contains(
            "warning: rule `block-suspended` can deny but runs only in pre-authentication"
        ),
        "{}",
        text(&warned)
    );
    let clean = publish("every.json", true);
    assert!(clean.status.success(), "{}", text(&clean));
    assert!(
        !String::from_utf8_lossy(&clean.stderr).contains("warning"),
        "{}",
        text(&clean)
    );
}
