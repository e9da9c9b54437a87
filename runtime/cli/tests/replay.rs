//! The ops views end to end on the demo's events. `portcullis replay`: a changed revision
//! reports exactly the sign-ins it decides differently, a claim-only change reports claims
//! and no decision, and `--fail-on` makes it a CI gate. `portcullis stats`: a decision log
//! summarised per tenant and rule.

#![expect(clippy::panic, reason = "tests: a failed step is a failed test")]

use std::path::Path;

use portcullis_artifacts as art;
use serde_json::{Value, json};

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/events");

mod common;

/// Runs the CLI with no deployment keys from the environment.
fn run(args: &[&str]) -> std::process::Output {
    common::portcullis(args, &[])
}

use common::text;

/// The demo's globex rules with `allow` as the office networks and `roles` in its tokens.
fn globex(allow: &[&str], roles: &[&str]) -> String {
    json!({"revision": 0, "rules": [
        {"name": "office-network", "module": art::IP_ALLOWLIST, "triggers": ["pre-authentication"],
         "config": {"allow": allow, "message": "Globex accounts sign in from the office network", "client_supplied": true}},
        {"name": "tenant-claims", "module": art::TENANT_CLAIMS, "triggers": ["pre-token-generation"],
         "config": {"roles": roles, "scope_prefix": "globex:"}}
    ]})
    .to_string()
}

/// (exit code, changed events, totals) of `replay --json`.
fn replay(store: &str, extra: &[&str]) -> (i32, Vec<Value>, Value) {
    let mut args = vec!["replay", "--json", "--store", store, "--tenant", "globex"];
    args.extend(["--events", EVENTS, "--now-ms", "1767596400000"]);
    args.extend_from_slice(extra);
    let out = run(&args);
    let mut lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {}", text(&out))))
        .collect();
    let totals = lines.pop().unwrap_or_else(|| panic!("{}", text(&out)));
    (out.status.code().unwrap_or(-1), lines, totals)
}

#[test]
fn replay_reports_what_a_change_decides_differently() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let store = path("store");
    let write = |name: &str, text: String| std::fs::write(path(name), text).unwrap();
    write("v1.json", globex(&["192.168.0.0/16"], &["engineer"]));
    write(
        "v2.json",
        globex(&["192.168.0.0/16", "203.0.113.0/24"], &["engineer"]),
    );
    for file in ["v1.json", "v2.json"] {
        let out = run(&[
            "publish",
            "--store",
            &store,
            "--tenant",
            "globex",
            "--manifest",
            &path(file),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }

    // Revision 2 opens the cafe network: exactly the cafe sign-in is newly allowed.
    let (code, changes, totals) =
        replay(&store, &["--from", "1", "--to", "2", "--fail-on", "deny"]);
    assert_eq!(code, 0, "nothing newly blocked");
    assert_eq!(
        changes,
        [json!({"event": "4-globex-grace-from-cafe.json", "decision": "deny → allow"})]
    );
    assert_eq!(totals["events"], 9);
    assert_eq!(
        (
            totals["newly_allowed"].clone(),
            totals["newly_denied"].clone()
        ),
        (json!(1), json!(0))
    );
    let (code, ..) = replay(&store, &["--from", "1", "--to", "2", "--fail-on", "any"]);
    assert_eq!(code, 2);

    // A claim-only change, not yet published: claims change, no decision does.
    write(
        "roles.json",
        globex(
            &["192.168.0.0/16", "203.0.113.0/24"],
            &["engineer", "oncall"],
        ),
    );
    let (code, changes, totals) = replay(
        &store,
        &["--manifest", &path("roles.json"), "--fail-on", "deny"],
    );
    assert_eq!(code, 0);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["event"], "7-globex-token-v1.json");
    assert_eq!(changes[0]["claims"], json!({"id": ["~roles"]}));
    assert!(changes[0].get("decision").is_none());
    assert_eq!(totals["token_changes"], 1);
    let (code, ..) = replay(
        &store,
        &["--manifest", &path("roles.json"), "--fail-on", "claims"],
    );
    assert_eq!(code, 2, "a token change fails --fail-on claims");

    // A change that blocks someone fails --fail-on deny, naming the rule.
    write("narrow.json", globex(&["10.0.0.0/8"], &["engineer"]));
    let (code, changes, _) = replay(
        &store,
        &["--manifest", &path("narrow.json"), "--fail-on", "deny"],
    );
    assert_eq!(code, 2);
    let blocked: Vec<&Value> = changes
        .iter()
        .filter(|c| c["decision"] == "allow → deny")
        .collect();
    // From the current revision (2): grace loses the cafe and the office.
    let events: Vec<&Value> = blocked.iter().map(|c| &c["event"]).collect();
    assert_eq!(
        events,
        [
            "4-globex-grace-from-cafe.json",
            "5-globex-grace-from-office.json"
        ]
    );
    assert!(blocked.iter().all(|c| c["denied_by"] == "office-network"));
    let (code, ..) = replay(
        &store,
        &["--manifest", &path("narrow.json"), "--max-changed", "5"],
    );
    assert_eq!(code, 0, "within --max-changed");
    assert!(
        !Path::new(&path("store/tenants/globex/history/3.json")).exists(),
        "replay writes nothing"
    );

    // `publish --replay` is the same gate before writing: refused, nothing written.
    let publish = |file: &str, extra: &[&str]| {
        let file = path(file);
        let mut args = vec![
            "publish",
            "--store",
            &store,
            "--tenant",
            "globex",
            "--manifest",
            &file,
        ];
        args.extend(["--replay", EVENTS]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let refused = publish("narrow.json", &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("replay gate refused"),
        "{}",
        text(&refused)
    );
    assert!(!Path::new(&path("store/tenants/globex/history/3.json")).exists());
    let published = publish("roles.json", &[]);
    assert!(
        published.status.success(),
        "a claim change passes the default gate: {}",
        text(&published)
    );
    let refused = publish("v1.json", &["--fail-on", "any"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));

    // With a data snapshot, both sides read the same items: a rule reading data decides on them.
    let suspended = json!({"revision": 0, "rules": [
        {"name": "office-network", "module": art::IP_ALLOWLIST, "triggers": ["pre-authentication"],
         "config": {"allow": ["0.0.0.0/0"], "client_supplied": true}},
        {"name": "suspended", "module": art::SUSPENDED_USERS, "triggers": ["every-sign-in"],
         "data": {"user": "user#{sub}"}}
    ]});
    write("suspended.json", suspended.to_string());
    write(
        "data.json",
        json!({"globex": {"user#77777777-1111-4000-8000-000000000007": {"suspended": true}}})
            .to_string(),
    );
    let (_, changes, _) = replay(
        &store,
        &[
            "--manifest",
            &path("suspended.json"),
            "--data",
            &path("data.json"),
        ],
    );
    let denied: Vec<&Value> = changes
        .iter()
        .filter(|c| c["denied_by"] == "suspended")
        .map(|c| &c["event"])
        .collect();
    assert!(
        !denied.is_empty(),
        "grace is suspended in the snapshot: {changes:?}"
    );
}

/// `portcullis stats` summarises a decision log per tenant and rule, from `handle --json`
/// output and the Lambda's own log lines (a CloudWatch export's timestamp prefix included).
#[test]
fn stats_summarises_a_decision_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let store = path("store");
    std::fs::write(path("v1.json"), globex(&["192.168.0.0/16"], &["engineer"])).unwrap();
    let out = run(&[
        "publish",
        "--store",
        &store,
        "--tenant",
        "globex",
        "--manifest",
        &path("v1.json"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut log = String::new();
    for event in [
        "4-globex-grace-from-cafe",
        "5-globex-grace-from-office",
        "7-globex-token-v1",
    ] {
        let file = format!("{EVENTS}/{event}.json");
        let out = run(&["handle", "--json", "--store", &store, "--event", &file]);
        log.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    // The same cafe decision as the Lambda logs it, exported with a timestamp.
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let lambda_line =
        json!({"level": "INFO", "target": "portcullis::decision", "fields": first["record"]});
    log.push_str(&format!(
        "2026-12-02T08:00:00.000Z {lambda_line}\nnot a record\n"
    ));
    std::fs::write(path("decisions.log"), log).unwrap();
    let out = run(&["stats", "--json", &path("decisions.log")]);
    assert!(out.status.success(), "{}", text(&out));
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["records"], 4);
    assert_eq!(
        stats["tenants"]["globex"],
        json!({"decisions": 4, "allow": 2, "deny": 2, "error": 0, "pass": 0})
    );
    let office = stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "office-network")
        .unwrap();
    assert_eq!(office["stats"]["evaluations"], 3);
    assert_eq!(office["stats"]["denies"], 2);
}

/// A canary from the command line: `publish --canary` stages it, `status` shows it and,
/// from a decision log, what it decided differently; publishing past it is refused;
/// `promote` makes it live and `abort` ends one.
#[test]
fn a_canary_is_staged_watched_promoted_and_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let store = path("store");
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let write = |name: &str, text: String| std::fs::write(path(name), text).unwrap();
    write("v1.json", globex(&["192.168.0.0/16"], &["engineer"]));
    write(
        "v2.json",
        globex(&["192.168.0.0/16", "203.0.113.0/24"], &["engineer"]),
    );
    let publish = |file: &str, extra: &[&str]| {
        let mut args = vec!["publish", "--store", &store, "--tenant", "globex"];
        let manifest = path(file);
        args.extend(["--manifest", &manifest]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let status = |extra: &[&str]| {
        let mut args = vec!["status", "--store", &store, "--tenant", "globex"];
        args.extend_from_slice(extra);
        ok(&args)
    };
    assert!(publish("v1.json", &[]).status.success());
    let staged = publish("v2.json", &["--canary", "50"]);
    assert!(staged.status.success(), "{}", text(&staged));
    assert!(
        String::from_utf8_lossy(&staged.stdout)
            .contains("staged a 50% canary of globex revision 2")
    );
    assert!(status(&[]).contains("canary: revision 2 for 50% of users"));

    // Eight users sign in from the cafe: revision 2 lets them in, revision 1 does not.
    let cafe: Value = serde_json::from_slice(
        &std::fs::read(format!("{EVENTS}/4-globex-grace-from-cafe.json")).unwrap(),
    )
    .unwrap();
    let mut log = String::new();
    let mut allowed = 0;
    for i in 0..8 {
        let mut event = cafe.clone();
        event["userName"] = json!(format!("user-{i}"));
        event["request"]["userAttributes"]["sub"] = json!(format!("sub-{i}"));
        let file = path(&format!("cafe-{i}.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let out = run(&["handle", "--json", "--store", &store, "--event", &file]);
        let answer: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        let canary = &answer["record"]["canary"];
        assert_eq!(canary["differs"], json!(["decision"]), "{answer}");
        let let_in = answer["blocked"].is_null();
        allowed += usize::from(let_in);
        assert_eq!(let_in, canary["cohort"] == "candidate", "{answer}");
        log.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    std::fs::write(path("decisions.log"), log).unwrap();
    let watched = status(&["--log", &path("decisions.log")]);
    assert!(
        watched.contains(&format!(
            "live: 8 decisions ({allowed} by the candidate), 8 disagreements: 0 newly denied, 8 newly allowed, 0 token changes"
        )),
        "{watched}"
    );
    let stats: Value =
        serde_json::from_str(&ok(&["stats", "--json", &path("decisions.log")])).unwrap();
    assert_eq!(
        stats["tenants"]["globex"]["canary"]["2"]["newly_allowed"],
        8
    );

    // Publishing past a running canary is refused; promote makes it live.
    let refused = publish("v1.json", &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("promote or abort it first"),
        "{}",
        text(&refused)
    );
    let promoted = ok(&["promote", "--store", &store, "--tenant", "globex"]);
    assert!(promoted.contains("revision 2 is live"), "{promoted}");
    let after = status(&[]);
    assert!(
        after.contains("globex  revision 2") && !after.contains("canary"),
        "{after}"
    );

    assert!(publish("v1.json", &["--canary", "10"]).status.success());
    assert!(status(&[]).contains("canary: revision 3 for 10% of users"));
    let aborted = ok(&["abort", "--store", &store, "--tenant", "globex"]);
    assert!(
        aborted.contains("aborted the canary of globex (revision 3)"),
        "{aborted}"
    );
    assert!(!status(&[]).contains("canary"));
}

/// Captures the Lambda wrote (a `capture/` tree) replay at their own host time with the
/// trusted context their rules saw: the cafe address the backend vouched for opens to
/// revision 2; a capture without one stays blocked.
#[test]
fn replay_decides_captures_with_their_trusted_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let store = path("store");
    std::fs::write(path("v1.json"), globex(&["192.168.0.0/16"], &["engineer"])).unwrap();
    std::fs::write(
        path("v2.json"),
        globex(&["192.168.0.0/16", "203.0.113.0/24"], &["engineer"]),
    )
    .unwrap();
    for file in ["v1.json", "v2.json"] {
        let args = [
            "publish",
            "--store",
            &store,
            "--tenant",
            "globex",
            "--manifest",
            &path(file),
        ];
        assert!(run(&args).status.success());
    }
    let day = dir.path().join("capture/globex/2026-01-05");
    std::fs::create_dir_all(&day).unwrap();
    let capture = |id: &str, trusted: Value| {
        json!({
            "portcullis_capture": 1, "decision_id": id, "tenant": "globex", "revision": 1,
            "decision": "deny", "at_ms": 1767596400000i64, "expires_at_ms": 1768201200000i64,
            "trusted": trusted,
            "event": {
                "version": "1", "triggerSource": "PreAuthentication_Authentication",
                "region": "us-east-1", "userPoolId": "us-east-1_Acme0001",
                "callerContext": {"clientId": "acmewebclient0001"},
                "request": {"userAttributes": {"custom:tenant_id": "globex"},
                            "validationData": {}, "userNotFound": false},
                "response": {}
            }
        })
    };
    let vouched = json!({"ip": "203.0.113.9", "issued_at_ms": 1767596400000i64, "fields": {}});
    std::fs::write(
        day.join("1-cafe.json"),
        capture("cafe", vouched).to_string(),
    )
    .unwrap();
    std::fs::write(
        day.join("2-bare.json"),
        capture("bare", Value::Null).to_string(),
    )
    .unwrap();
    let out = run(&[
        "replay",
        "--json",
        "--store",
        &store,
        "--tenant",
        "globex",
        "--from",
        "1",
        "--to",
        "2",
        "--events",
        &path("capture"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"event": "1-cafe.json", "decision": "deny → allow"}),
            json!({"events": 2, "changed": 1, "newly_denied": 0, "newly_allowed": 1,
                   "token_changes": 0, "claims": {}}),
        ]
    );
}
