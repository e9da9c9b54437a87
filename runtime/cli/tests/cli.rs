//! `portcullis` end to end: the real binary on fixture events and built components.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed step is a failed test"
)]

use std::path::Path;
use std::process::Command;

use portcullis_artifacts as art;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}.json")
}

/// Runs `portcullis eval --json` and returns (exit code, parsed output).
fn eval(policy: &str, event: &str, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "eval",
            "--json",
            "--now-ms",
            "1767596400000",
            "--policy",
            policy,
            "--event",
            &fixture(event),
        ])
        .args(extra)
        .output()
        .expect("run portcullis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn every_example_policy_on_a_fixture() {
    let cases: &[(&str, &str, &[&str], i32, &str)] = &[
        (art::ALLOW_ALL, "pre-auth", &[], 0, "allow"),
        (art::SUSPENDED_USERS, "pre-auth", &[], 0, "allow"),
        (art::SUSPENDED_USERS, "pre-auth-suspended", &[], 2, "deny"),
        (
            art::SUSPENDED_USERS,
            "pre-auth",
            &["--data", r#"{"user": {"suspended": true}}"#],
            2,
            "deny",
        ),
        (
            art::EMAIL_DOMAIN,
            "pre-auth",
            &["--config", r#"{"domains": ["acme.example"]}"#],
            0,
            "allow",
        ),
        (
            art::EMAIL_DOMAIN,
            "pre-auth",
            &["--config", r#"{"domains": ["other.example"]}"#],
            2,
            "deny",
        ),
        (
            art::IP_ALLOWLIST,
            "pre-auth",
            &[
                "--config",
                r#"{"allow": ["10.0.0.0/8"], "client_supplied": true}"#,
            ],
            0,
            "allow",
        ),
        (
            art::IP_ALLOWLIST,
            "pre-auth",
            &[
                "--config",
                r#"{"deny": ["10.20.30.0/24"], "client_supplied": true}"#,
            ],
            2,
            "deny",
        ),
        (
            art::SIGNIN_HOURS,
            "pre-auth",
            &[
                "--config",
                r#"{"time_zone": "Europe/Berlin", "start": "08:00", "end": "18:00"}"#,
            ],
            0,
            "allow",
        ),
        (
            art::SIGNIN_HOURS,
            "pre-auth",
            &[
                "--config",
                r#"{"time_zone": "America/New_York", "start": "08:00", "end": "18:00"}"#,
            ],
            2,
            "deny",
        ),
        (
            art::RISK_SCORE,
            "pre-auth",
            &["--config", r#"{"max": 70, "client_supplied": true}"#],
            0,
            "allow",
        ),
        (
            art::RISK_SCORE,
            "pre-auth-suspended",
            &["--config", r#"{"max": 70, "client_supplied": true}"#],
            2,
            "deny",
        ),
        (
            art::TENANT_CLAIMS,
            "token-v2",
            &["--tenant", "acme"],
            0,
            "allow",
        ),
        (art::NEW_DEVICE, "post-auth", &[], 0, "allow"),
    ];
    for (policy, event, extra, code, outcome) in cases {
        let (got, json) = eval(policy, event, extra);
        assert_eq!(
            (got, json["outcome"].as_str()),
            (*code, Some(*outcome)),
            "{policy} on {event} {extra:?}: {json}"
        );
        assert!(json["fuel_used"].as_u64().unwrap_or(0) > 0, "{json}");
    }
}

#[test]
fn claims_and_logs_in_json_output() {
    let (_, json) = eval(
        art::TENANT_CLAIMS,
        "token-v2",
        &[
            "--tenant",
            "acme",
            "--config",
            r#"{"suppress": ["phone_number"]}"#,
        ],
    );
    assert_eq!(json["id_claims"]["tenant_id"], "acme");
    assert_eq!(json["id_suppress"][0], "phone_number");
    let (_, json) = eval(art::NEW_DEVICE, "post-auth", &[]);
    assert_eq!(json["logs"][0]["message"], "new device used for sign-in");
}

#[test]
fn adversarial_guests_exit_3_with_the_outcome_named() {
    let cases: &[(&str, &str, &[&str], &str)] = &[
        (
            art::INFINITE_LOOP,
            "pre-auth",
            &["--timeout-ms", "10", "--fuel", "100000000000"],
            "timeout",
        ),
        (
            art::INFINITE_LOOP,
            "pre-auth",
            &["--fuel", "100000"],
            "out_of_fuel",
        ),
        (
            art::MEMORY_BOMB,
            "pre-auth",
            // Rust's default fuel (1 M) would stop it before it reaches the limit.
            &["--memory-mb", "8", "--fuel", "100000000"],
            "memory_limit",
        ),
        (art::DEEP_RECURSION, "pre-auth", &[], "trap"),
        (
            art::HUGE_VERDICT,
            "token-v2",
            &[
                "--fuel",
                "2000000000",
                "--timeout-ms",
                "10000",
                "--memory-mb",
                "64",
            ],
            "invalid_output",
        ),
        (art::RESERVED_CLAIM, "token-v1", &[], "invalid_output"),
        (art::PANICS, "pre-auth", &[], "trap"),
        (art::WASI_STD, "pre-auth", &[], "load_error"),
        (art::UNKNOWN_IMPORT, "pre-auth", &[], "load_error"),
        (art::WRONG_SIGNATURE, "pre-auth", &[], "load_error"),
        (art::CORE_MODULE, "pre-auth", &[], "load_error"),
        (art::MALFORMED, "pre-auth", &[], "load_error"),
    ];
    for (policy, event, extra, outcome) in cases {
        let (code, json) = eval(policy, event, extra);
        assert_eq!(code, 3, "{policy}: {json}");
        assert_eq!(json["outcome"].as_str(), Some(*outcome), "{policy}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{policy}: {json}"
        );
    }
    let (_, json) = eval(art::WASI_STD, "pre-auth", &[]);
    assert!(
        json["error"].as_str().unwrap_or("").contains("`wasi:"),
        "{json}"
    );
}

#[test]
fn input_errors_exit_1() {
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let missing = Command::new(bin)
        .args([
            "eval",
            "--policy",
            art::ALLOW_ALL,
            "--event",
            "/nonexistent.json",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.json"));
    let not_event = Command::new(bin)
        .args([
            "eval",
            "--policy",
            art::ALLOW_ALL,
            "--event",
            art::ALLOW_ALL,
        ])
        .output()
        .unwrap();
    assert_eq!(not_event.status.code(), Some(1));
    let usage = Command::new(bin)
        .args(["eval", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(1));
    let other = Command::new(bin)
        .args([
            "eval",
            "--policy",
            art::ALLOW_ALL,
            "--event",
            &fixture("custom-message"),
        ])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
}

#[test]
fn text_output_is_readable() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "eval",
            "--policy",
            art::SUSPENDED_USERS,
            "--event",
            &fixture("pre-auth-suspended"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("deny: Your account is suspended"),
        "{text}"
    );
    assert!(text.contains("fuel "), "{text}");
}

/// Runs `portcullis` with `args` and extra environment variables.
mod common;

use common::{portcullis as run, text};

/// The trust chain from the command line, on a directory store: a deployment that trusts
/// keys refuses an unsigned publish before writing anything; a signed one verifies and
/// decides; a manifest rewritten by hand is refused by `verify` and by `handle`.
#[test]
fn signed_publishing_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let store = path("store");
    let public = run(&["keygen", "--id", "platform", "--out", &path("keys")], &[]);
    assert!(public.status.success(), "{}", text(&public));
    let public = String::from_utf8_lossy(&public.stdout).trim().to_owned();
    assert!(public.starts_with("platform="), "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path("keys/platform.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the signing key is private");
    }
    let made = run(
        &["keygen", "--artifact", "--out", &path("artifact.key")],
        &[],
    );
    assert!(made.status.success(), "{}", text(&made));
    // Never overwritten.
    let again = run(
        &["keygen", "--artifact", "--out", &path("artifact.key")],
        &[],
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));

    let manifest = path("acme.json");
    std::fs::write(
        &manifest,
        serde_json::json!({"revision": 0, "rules": [{
            "name": "company-email", "module": art::EMAIL_DOMAIN,
            "triggers": ["pre-authentication"], "config": {"domains": ["acme.example"]}
        }]})
        .to_string(),
    )
    .unwrap();
    let deployment = [
        ("PORTCULLIS_TRUSTED_KEYS", public.as_str()),
        ("PORTCULLIS_ARTIFACT_KEY", &path("artifact.key")),
    ];
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "publish",
            "--store",
            &store,
            "--tenant",
            "acme",
            "--manifest",
            &manifest,
            "--precompile",
        ];
        args.extend_from_slice(extra);
        run(&args, &deployment)
    };

    // Unsigned against a deployment that requires signatures: refused, nothing written.
    let refused = publish(&[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("requires signed manifests"),
        "{}",
        text(&refused)
    );
    assert!(!Path::new(&store).exists(), "nothing was written");
    // Signed by a key the deployment does not trust: refused too.
    run(&["keygen", "--id", "intruder", "--out", &path("keys")], &[]);
    let intruder = publish(&["--sign-key", &path("keys/intruder.key")]);
    assert_eq!(intruder.status.code(), Some(1), "{}", text(&intruder));
    assert!(!Path::new(&store).exists(), "nothing was written");

    let signed = publish(&["--sign-key", &path("keys/platform.key")]);
    assert!(signed.status.success(), "{}", text(&signed));
    assert!(
        text(&signed).contains("signed by `platform`"),
        "{}",
        text(&signed)
    );

    let verify = run(&["verify", "--store", &store], &deployment);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("acme  revision 1  signed by platform  ok"),
        "{}",
        text(&verify)
    );
    let status = run(&["status", "--store", &store], &[]);
    assert!(
        text(&status).contains("signed by platform"),
        "{}",
        text(&status)
    );
    let event = fixture("pre-auth");
    let handle = run(
        &["handle", "--store", &store, "--event", &event],
        &deployment,
    );
    assert_eq!(handle.status.code(), Some(0), "{}", text(&handle));

    // Rewritten by hand (a store writer without the key): verify and handle refuse it.
    let current = dir.path().join("store/tenants/acme/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&current).unwrap()).unwrap();
    m["rules"][0]["config"]["domains"] = serde_json::json!(["globex.example"]);
    std::fs::write(&current, m.to_string()).unwrap();
    let verify = run(&["verify", "--store", &store, "--json"], &deployment);
    assert_eq!(verify.status.code(), Some(2), "{}", text(&verify));
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(
        report["problems"].to_string().contains("does not verify"),
        "{report}"
    );
    let handle = run(
        &["handle", "--store", &store, "--event", &event, "--json"],
        &deployment,
    );
    assert_eq!(handle.status.code(), Some(2), "{}", text(&handle));
    let answer: Value = serde_json::from_slice(&handle.stdout).unwrap();
    assert!(
        answer["record"]["problems"]
            .to_string()
            .contains("does not verify"),
        "{answer}"
    );
    // Without keys configured the same store decides with the rewritten rules: the
    // signature is what made the difference.
    let open = run(&["handle", "--store", &store, "--event", &event], &[]);
    assert_eq!(open.status.code(), Some(2), "{}", text(&open));
    assert!(
        text(&open).contains("company-email=deny"),
        "{}",
        text(&open)
    );
}

/// `handle` on a file that is not a Cognito event is an input error (exit 1) that says what
/// is missing, not a blocked sign-in; its decision line splits loading from running rules.
#[test]
fn handle_refuses_a_non_event_and_reports_load_and_rule_time_apart() {
    let dir = tempfile::tempdir().unwrap();
    let not_event = dir.path().join("x.json");
    std::fs::write(&not_event, r#"{"hello": "world"}"#).unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let out = run(
        &[
            "handle",
            "--store",
            store,
            "--event",
            not_event.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no `triggerSource`"), "{}", text(&out));
    let event = fixture("pre-auth");
    let out = run(&["handle", "--store", store, "--event", &event], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("loading rules"), "{}", text(&out));
}

/// `portcullis test`: every case through the engine, pass or fail with the reason and the
/// budget figures, a summary, exit 0 only when all pass; `--json` is one object per case.
#[test]
fn test_runs_cases_through_the_engine_and_names_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    std::fs::copy(art::EMAIL_DOMAIN, path("email.wasm")).unwrap();
    std::fs::copy(fixture("pre-auth"), path("ada.json")).unwrap();
    let cases = |expect_other: &str| {
        serde_json::json!([
            {"name": "the company's domain passes", "event": "ada.json",
             "config": {"domains": ["acme.example"]}, "expect": "allow", "max_fuel": 50_000_000},
            {"name": "another domain is refused", "event": "ada.json",
             "config": {"domains": ["globex.example"], "message": "Use your work email"},
             "expect": expect_other, "message": "Use your work email", "outcome": "deny"},
        ])
        .to_string()
    };
    std::fs::write(path("email.tests.json"), cases("allow")).unwrap();
    let failing = run(&["test", &path("email.tests.json")], &[]);
    assert_eq!(failing.status.code(), Some(2), "{}", text(&failing));
    let out = String::from_utf8_lossy(&failing.stdout);
    assert!(out.contains("PASS  the company's domain passes"), "{out}");
    assert!(out.contains("FAIL  another domain is refused"), "{out}");
    assert!(
        out.contains("expected allow, got deny: Use your work email"),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");

    std::fs::write(path("email.tests.json"), cases("deny")).unwrap();
    let passing = run(&["test", "--json", dir.path().to_str().unwrap()], &[]);
    assert_eq!(passing.status.code(), Some(0), "{}", text(&passing));
    let lines: Vec<Value> = String::from_utf8_lossy(&passing.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["passed"], true, "{line}");
        assert!(line["fuel"].as_u64().unwrap() > 0, "{line}");
        assert!(line["peak_memory"].as_u64().unwrap() > 0, "{line}");
    }
    assert!(String::from_utf8_lossy(&passing.stderr).contains("2 passed, 0 failed"));

    // A fuel ceiling catches a rule that got slower.
    let tight = serde_json::json!([{"name": "cheap", "event": "ada.json",
        "config": {"domains": ["acme.example"]}, "expect": "allow", "max_fuel": 10}]);
    std::fs::write(path("email.tests.json"), tight.to_string()).unwrap();
    let slow = run(&["test", &path("email.wasm")], &[]);
    assert_eq!(slow.status.code(), Some(2), "{}", text(&slow));
    assert!(
        String::from_utf8_lossy(&slow.stdout).contains("over the ceiling of 10"),
        "{}",
        text(&slow)
    );
}

/// `portcullis bench`: a fresh instance per evaluation, the median and p99 and the fuel.
#[test]
fn bench_reports_the_median_p99_and_fuel() {
    let out = run(
        &[
            "bench",
            "--policy",
            art::EMAIL_DOMAIN,
            "--event",
            &fixture("pre-auth"),
            "--config",
            r#"{"domains": ["acme.example"]}"#,
            "--iterations",
            "50",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "allow");
    assert_eq!(report["iterations"], 50);
    let (median, p99) = (
        report["median_us"].as_f64().unwrap(),
        report["p99_us"].as_f64().unwrap(),
    );
    assert!(median > 0.0 && p99 >= median, "{report}");
    assert!(report["fuel"].as_u64().unwrap() > 0, "{report}");
}
