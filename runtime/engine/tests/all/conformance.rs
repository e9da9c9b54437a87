//! The same rule written in Rust, Python and TypeScript decides alike through the real
//! engine: decision, deny message and outcome, case by case. The other languages'
//! components are built by `scripts/build-python` (componentize-py, `--stub-wasi`) and
//! `scripts/build-ts` (jco componentize, `-d all`): no import beyond the contract.

use std::time::Duration;

use portcullis_artifacts as art;
use portcullis_engine::verdict::ScopeChanges;
use portcullis_engine::{Budget, ClaimChanges, DataItem, Outcome, Trigger};

use crate::{TestRequest, budget, evaluate, load, request};

const BUILT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/wasm");

/// A component built by `scripts/build-<lang>`.
fn built(lang: &str, name: &str) -> String {
    let path = format!("{BUILT}/{lang}/{name}.wasm");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/build-{lang} (scripts/test does)"
    );
    path
}

fn python(name: &str) -> String {
    built("python", name)
}

fn ts(name: &str) -> String {
    built("ts", name)
}

/// What a rule gave, in the terms the languages must agree on: the outcome, the deny
/// message and every token change.
type Decided = (
    &'static str,
    Option<String>,
    ClaimChanges,
    ClaimChanges,
    ScopeChanges,
);

fn decided(path: &str, r: &TestRequest) -> Decided {
    // Agreement, not speed: a generous wall clock, so a loaded machine cannot turn a slow
    // instantiation of an interpreter-sized component into a timeout (fuel still bounds).
    let budget = Budget {
        timeout: Duration::from_secs(10),
        ..budget()
    };
    let outcome = evaluate(&load(path), r, &budget).outcome;
    let kind = outcome.kind();
    match outcome {
        Outcome::Verdict(v) => (kind, v.deny, v.id, v.access, v.scopes),
        Outcome::Failed(_) => (
            kind,
            None,
            Default::default(),
            Default::default(),
            Default::default(),
        ),
    }
}

/// Every case decided alike by the Rust rule and its Python and TypeScript twins.
fn agree(rust: &str, twin: &str, cases: &[(&str, TestRequest)]) -> Vec<Decided> {
    let (py, javascript) = (python(twin), ts(twin));
    cases
        .iter()
        .map(|(name, r)| {
            let expected = decided(rust, r);
            assert_eq!(expected, decided(&py, r), "{twin}, {name}: Python");
            assert_eq!(
                expected,
                decided(&javascript, r),
                "{twin}, {name}: JavaScript"
            );
            expected
        })
        .collect()
}

#[test]
fn suspended_users_in_rust_python_and_typescript_decide_alike() {
    let pre = || request(Trigger::PreAuthentication);
    let mut cases: Vec<(&str, TestRequest)> = Vec::new();
    cases.push(("an active user", pre()));
    let mut r = pre();
    r.user_attributes
        .push(("custom:suspended".into(), "true".into()));
    cases.push(("suspended by attribute", r));
    let mut r = pre();
    r.user_attributes
        .push(("custom:suspended".into(), "TRUE".into()));
    cases.push(("suspended, upper case", r));
    let mut r = pre();
    r.data = vec![DataItem {
        key: "user".into(),
        value: r#"{"suspended": true}"#.into(),
    }];
    cases.push(("suspended by data", r));
    let mut r = pre();
    r.data = vec![DataItem {
        key: "account".into(),
        value: r#"{"suspended": true}"#.into(),
    }];
    r.config = r#"{"data": "account", "message": "Account on hold"}"#.into();
    cases.push(("configured alias and message", r));
    let mut r = pre();
    r.user_attributes
        .push(("custom:suspended".into(), "true".into()));
    r.user_not_found = true;
    cases.push(("an unknown user", r));
    let mut r = pre();
    r.config = r#"{"unknown": 1}"#.into();
    cases.push(("a configuration with an unknown field", r));

    let kinds: Vec<&str> = agree(art::SUSPENDED_USERS, "suspended-users", &cases)
        .into_iter()
        .map(|d| d.0)
        .collect();
    // The cases exercise both answers and a failure, not one path.
    assert_eq!(
        kinds,
        [
            "allow",
            "deny",
            "deny",
            "deny",
            "deny",
            "allow",
            "policy_error"
        ]
    );
}

#[test]
fn email_domain_in_rust_python_and_typescript_decide_alike() {
    let with = |email: &str, verified: &str, config: &str| {
        let mut r = request(Trigger::PreAuthentication);
        r.user_attributes = vec![
            ("email".into(), email.into()),
            ("email_verified".into(), verified.into()),
        ];
        r.config = config.into();
        r
    };
    let cases = [
        (
            "in the domain",
            with(
                "ada@acme.example",
                "true",
                r#"{"domains": ["acme.example"]}"#,
            ),
        ),
        (
            "case-insensitive",
            with(
                "ada@ACME.example",
                "true",
                r#"{"domains": ["@acme.example"]}"#,
            ),
        ),
        (
            "unverified",
            with(
                "ada@acme.example",
                "false",
                r#"{"domains": ["acme.example"]}"#,
            ),
        ),
        (
            "unverified allowed",
            with(
                "ada@acme.example",
                "false",
                r#"{"domains": ["acme.example"], "require_verified": false}"#,
            ),
        ),
        (
            "another domain",
            with(
                "eve@evil.example",
                "true",
                r#"{"domains": ["acme.example"], "message": "Work email only"}"#,
            ),
        ),
        (
            "a subdomain, off",
            with(
                "ada@eu.acme.example",
                "true",
                r#"{"domains": ["acme.example"]}"#,
            ),
        ),
        (
            "a subdomain, on",
            with(
                "ada@eu.acme.example",
                "true",
                r#"{"domains": ["acme.example"], "subdomains": true}"#,
            ),
        ),
        (
            "no domains configured",
            with("ada@acme.example", "true", "null"),
        ),
    ];
    let kinds: Vec<&str> = agree(art::EMAIL_DOMAIN, "email-domain", &cases)
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(
        kinds,
        [
            "allow",
            "allow",
            "deny",
            "allow",
            "deny",
            "deny",
            "allow",
            "policy_error"
        ]
    );
}

#[test]
fn tenant_claims_in_rust_python_and_typescript_set_the_same_tokens() {
    let token = |config: &str, member: Option<&str>| {
        let mut r = request(Trigger::PreTokenGeneration);
        r.config = config.into();
        r.data = member
            .map(|m| DataItem {
                key: "member".into(),
                value: m.into(),
            })
            .into_iter()
            .collect();
        r
    };
    let cases = [
        ("defaults", token("null", None)),
        (
            "roles from config, suppressed claims",
            token(
                r#"{"roles": ["member"], "suppress": ["phone_number", "email"]}"#,
                None,
            ),
        ),
        (
            "roles from data",
            token(
                r#"{"roles": ["member"]}"#,
                Some(r#"{"roles": ["owner", "admin"]}"#),
            ),
        ),
        (
            "another scope prefix",
            token(r#"{"scope_prefix": "org/"}"#, None),
        ),
        ("an unknown field", token(r#"{"rolez": []}"#, None)),
    ];
    let decided = agree(art::TENANT_CLAIMS, "tenant-claims", &cases);
    assert_eq!(
        decided[2].2.get("roles"),
        Some(&serde_json::json!(["owner", "admin"]))
    );
    assert_eq!(decided[3].4.add, ["org/acme"]);
    assert_eq!(decided[4].0, "policy_error");
}

#[test]
fn python_and_typescript_components_import_nothing_outside_the_contract() {
    // `load` refuses any other import by name (see adversarial.rs); these load.
    for path in [python("suspended-users"), ts("suspended-users")] {
        let policy = load(&path);
        let meta = crate::engine().describe(&policy, &budget()).unwrap();
        assert_eq!(
            meta.triggers,
            [Trigger::PreAuthentication, Trigger::PreTokenGeneration],
            "{path}: every path to a token"
        );
    }
}

#[test]
fn python_and_typescript_components_with_wasi_imports_are_refused_naming_them() {
    for path in [python("with-wasi"), ts("with-wasi")] {
        let bytes = std::fs::read(&path).unwrap();
        match crate::engine().load(&bytes) {
            Err(portcullis_engine::LoadError::ForbiddenImports(names)) => {
                assert!(
                    names.iter().any(|n| n.starts_with("wasi:")),
                    "{path}: {names:?}"
                )
            }
            other => panic!("{path}: expected the WASI imports refused, got {other:?}"),
        }
    }
}

#[test]
fn each_components_language_is_read_from_its_bytes() {
    use portcullis_engine::Language;
    for (path, language) in [
        (art::SUSPENDED_USERS.to_owned(), Language::Rust),
        (python("suspended-users"), Language::Python),
        (ts("suspended-users"), Language::JavaScript),
        (python("with-wasi"), Language::Python),
        (ts("with-wasi"), Language::JavaScript),
    ] {
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(Language::of(&bytes), language, "{path}");
        assert_eq!(
            language.needs_precompiling(),
            language != Language::Rust,
            "{path}"
        );
    }
}

#[test]
fn lockout_in_rust_python_and_typescript_decides_alike() {
    let attempt = |count: Option<u64>, config: &str| {
        let mut r = request(Trigger::PreAuthentication);
        r.sign_in.user_name = Some("ada".into());
        r.sign_in.trusted = Some(portcullis_engine::contract::TrustedContext {
            ip: Some("10.1.2.3".into()),
            user_agent: None,
            device_id: None,
            issued_at_ms: 0,
            fields: Vec::new(),
        });
        r.config = config.into();
        r.data = count
            .map(|count| DataItem {
                key: "attempts".into(),
                value: format!(r#"{{"count": {count}, "window_s": 900, "resets_at_ms": 1}}"#),
            })
            .into_iter()
            .collect();
        r
    };
    let cases = [
        ("no count yet", attempt(None, "null")),
        ("under the limit", attempt(Some(4), "null")),
        ("at the limit", attempt(Some(5), "null")),
        ("a lower limit", attempt(Some(2), r#"{"max_attempts": 2}"#)),
        (
            "an allowed user",
            attempt(Some(9), r#"{"allow_users": ["ada"]}"#),
        ),
        (
            "an allowed network",
            attempt(Some(9), r#"{"allow_ips": ["10.0.0.0/8"]}"#),
        ),
        (
            "another network",
            attempt(Some(9), r#"{"allow_ips": ["192.168.0.0/16"]}"#),
        ),
        ("notify only", attempt(Some(9), r#"{"action": "notify"}"#)),
        ("a bad limit", attempt(Some(1), r#"{"max_attempts": 0}"#)),
    ];
    let kinds: Vec<&str> = agree(art::LOCKOUT, "lockout", &cases)
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(
        kinds,
        [
            "allow",
            "allow",
            "deny",
            "deny",
            "allow",
            "allow",
            "deny",
            "allow",
            "policy_error"
        ]
    );
}
