//! Verdict validation: every limit and every Cognito rule, refused by type.

use super::*;
use crate::contract::Claim;

fn raw() -> RawVerdict {
    RawVerdict {
        decision: Decision::Allow,
        id_claims: vec![],
        id_suppress: vec![],
        access_claims: vec![],
        access_suppress: vec![],
        scopes_add: vec![],
        scopes_suppress: vec![],
        groups: None,
    }
}

fn claim(name: &str, value: &str) -> Claim {
    Claim {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn reserved_claims_refused() {
    for name in [
        "sub",
        "cognito:groups",
        "cognito:username",
        "aud",
        "token_use",
    ] {
        let mut r = raw();
        r.id_claims.push(claim(name, "\"x\""));
        assert_eq!(
            Verdict::validate(r).err(),
            Some(InvalidOutput::ReservedClaim(name.into()))
        );
    }
    let mut r = raw();
    r.access_suppress.push("exp".into());
    assert_eq!(
        Verdict::validate(r).err(),
        Some(InvalidOutput::ReservedClaim("exp".into()))
    );
}

#[test]
fn dev_claims_only_suppressed() {
    let mut r = raw();
    r.id_suppress.push("dev:debug".into());
    assert!(Verdict::validate(r).is_ok());
    let mut r = raw();
    r.id_claims.push(claim("dev:debug", "1"));
    assert_eq!(
        Verdict::validate(r).err(),
        Some(InvalidOutput::SuppressOnlyClaim("dev:debug".into()))
    );
}

#[test]
fn claim_values_must_be_json() {
    let mut r = raw();
    r.id_claims.push(claim("tier", "gold"));
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::BadClaimValue { .. })
    ));
    let mut r = raw();
    r.id_claims.push(claim("tier", "null"));
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::BadClaimValue { .. })
    ));
    let mut r = raw();
    r.id_claims.push(claim("tier", "{\"a\":[1,2]}"));
    let v = Verdict::validate(r).unwrap();
    assert_eq!(v.id.get("tier"), Some(&serde_json::json!({"a": [1, 2]})));
}

#[test]
fn bad_names_and_scopes() {
    let mut r = raw();
    r.id_claims.push(claim("has space", "1"));
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::BadClaimName(_))
    ));
    let mut r = raw();
    r.scopes_add.push("read write".into());
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::BadScope(_))
    ));
    let mut r = raw();
    r.groups = Some(GroupOverride {
        groups: vec![String::new()],
        iam_roles: vec![],
        preferred_role: None,
    });
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::BadGroups(_))
    ));
}

#[test]
fn too_many_and_too_large() {
    let mut r = raw();
    r.id_suppress = (0..5001).map(|i| format!("c{i}")).collect();
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::TooManyChanges { count: 5001, .. })
    ));
    let mut r = raw();
    r.id_claims.push(claim(
        "big",
        &format!("\"{}\"", "x".repeat(MAX_VERDICT_BYTES)),
    ));
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::TooLarge { .. })
    ));
}

#[test]
fn deny_messages_with_hidden_or_reordering_characters_are_refused() {
    for hidden in [
        "Blocked\u{202E}txt.exe",
        "a\u{200B}b",
        "\u{2066}x\u{2069}",
        "x\u{FEFF}",
    ] {
        let mut r = raw();
        r.decision = Decision::Deny(hidden.into());
        assert!(
            matches!(Verdict::validate(r), Err(InvalidOutput::BadDenyMessage(_))),
            "{hidden:?}"
        );
    }
    let mut r = raw();
    r.decision = Decision::Deny("Zugang gesperrt: ü, é, 日本".into());
    assert!(Verdict::validate(r).is_ok());
}

#[test]
fn scope_is_not_an_access_claim_and_group_names_fit_cognito() {
    let mut r = raw();
    r.access_claims = vec![Claim {
        name: "scope".into(),
        value: "\"admin\"".into(),
    }];
    assert_eq!(
        Verdict::validate(r).unwrap_err(),
        InvalidOutput::ReservedClaim("scope".into())
    );
    let groups = |name: String| GroupOverride {
        groups: vec![name],
        iam_roles: vec![],
        preferred_role: None,
    };
    let mut r = raw();
    r.groups = Some(groups("g".repeat(MAX_GROUP_NAME)));
    assert!(Verdict::validate(r).is_ok());
    let mut r = raw();
    r.groups = Some(groups("g".repeat(MAX_GROUP_NAME + 1)));
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::BadGroups(_))
    ));
}

#[test]
fn deny_messages_normalised() {
    let mut r = raw();
    r.decision = Decision::Deny("  Account locked.  ".into());
    assert_eq!(
        Verdict::validate(r).unwrap().deny.as_deref(),
        Some("Account locked")
    );
    let mut r = raw();
    r.decision = Decision::Deny(String::new());
    assert_eq!(
        Verdict::validate(r).unwrap().deny.as_deref(),
        Some(DEFAULT_DENY_MESSAGE)
    );
    let mut r = raw();
    r.decision = Decision::Deny("line\nbreak".into());
    assert!(matches!(
        Verdict::validate(r),
        Err(InvalidOutput::BadDenyMessage(_))
    ));
}

#[test]
fn later_claim_wins_and_suppress_removes() {
    let mut r = raw();
    r.id_claims = vec![claim("a", "1"), claim("a", "2")];
    r.id_suppress = vec!["b".into()];
    let v = Verdict::validate(r).unwrap();
    assert_eq!(v.id.add, vec![("a".to_string(), serde_json::json!(2))]);
    assert_eq!(v.id.suppress, vec!["b".to_string()]);
}
