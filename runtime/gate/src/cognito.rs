//! Cognito trigger events: lenient parsing of the AWS-documented shapes, in one pass, into
//! an [`Event`] — the [`SignIn`] a policy sees and what the answer needs (the kind and the
//! original JSON) — and why an event is left alone ([`Unhandled`]). The pre token
//! generation answer is [`crate::tokens`].
//!
//! AWS adds fields over time and its own samples omit fields that strict types require
//! (V2 `scopes`, post-auth `newDeviceUsed`, V3 client-credentials events with no user), so
//! parsing reads only what it needs from a `serde_json::Value`, treats a missing or null
//! optional field as absent, and keeps the original event untouched for the response.

use serde_json::{Map, Value};

use portcullis_engine::contract::{SignIn, TokenSource, Trigger};

/// The version of a pre token generation event, which decides the response shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TokenVersion {
    /// `V1_0`: `claimsOverrideDetails`, ID token only, string claim values.
    V1,
    /// `V2_0`: `claimsAndScopeOverrideDetails`, ID and access tokens, JSON values, scopes.
    V2,
    /// `V3_0`: as V2, plus machine-to-machine (client credentials) tokens.
    V3,
}

/// What kind of trigger an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `PreAuthentication_Authentication`.
    PreAuthentication,
    /// `PostAuthentication_Authentication`.
    PostAuthentication,
    /// `TokenGeneration_*`.
    PreTokenGeneration(TokenVersion),
    /// Any other trigger source: Portcullis leaves it alone, for this reason.
    Unhandled(Unhandled),
}

/// Why Portcullis leaves an event alone (the decision record names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unhandled {
    /// `InboundFederation_ExternalProvider`: answered with `userAttributesToMap: {}`, the
    /// one answer that keeps every attribute the provider sent (any attribute a non-empty
    /// map leaves out is dropped).
    InboundFederation,
    /// A trigger of the user's lifecycle rather than a sign-in decision: sign-up,
    /// confirmation, migration, custom messages and senders, custom auth challenges.
    NotASignIn,
    /// The Lambda console's test event (`triggerSource: "testTrigger"`).
    ConsoleTest,
    /// A trigger source Portcullis does not know (AWS adds sources over time).
    UnknownSource,
}

impl Unhandled {
    /// Why `trigger_source` is not handled.
    fn of(trigger_source: &str) -> Unhandled {
        const NOT_A_SIGN_IN: &[&str] = &[
            "PreSignUp_",
            "PostConfirmation_",
            "CustomMessage_",
            "UserMigration_",
            "DefineAuthChallenge_",
            "CreateAuthChallenge_",
            "VerifyAuthChallengeResponse_",
            "CustomEmailSender_",
            "CustomSMSSender_",
        ];
        match trigger_source {
            "InboundFederation_ExternalProvider" => Unhandled::InboundFederation,
            "testTrigger" => Unhandled::ConsoleTest,
            s if NOT_A_SIGN_IN.iter().any(|p| s.starts_with(p)) => Unhandled::NotASignIn,
            _ => Unhandled::UnknownSource,
        }
    }

    /// The record's line for it.
    pub fn describe(self) -> &'static str {
        match self {
            Unhandled::InboundFederation => {
                "inbound federation: answered with an empty attribute map, which keeps every attribute"
            }
            Unhandled::NotASignIn => "not a sign-in decision: event returned unchanged",
            Unhandled::ConsoleTest => "the Lambda console's test event: returned unchanged",
            Unhandled::UnknownSource => "unknown trigger source: event returned unchanged",
        }
    }

    /// Cognito's answer: the event unchanged, except inbound federation, whose
    /// `response.userAttributesToMap` is set to `{}` (keep every attribute).
    pub fn answer(self, mut raw: Value) -> Value {
        if self == Unhandled::InboundFederation
            && let Some(obj) = raw.as_object_mut()
        {
            let response = obj
                .entry("response")
                .or_insert_with(|| Value::Object(Map::new()));
            if !response.is_object() {
                *response = Value::Object(Map::new());
            }
            if let Some(response) = response.as_object_mut() {
                response.insert("userAttributesToMap".into(), Value::Object(Map::new()));
            }
        }
        raw
    }
}

impl EventKind {
    /// The contract trigger, or why Portcullis does not handle this kind.
    pub fn trigger(self) -> Result<Trigger, Unhandled> {
        match self {
            EventKind::PreAuthentication => Ok(Trigger::PreAuthentication),
            EventKind::PostAuthentication => Ok(Trigger::PostAuthentication),
            EventKind::PreTokenGeneration(_) => Ok(Trigger::PreTokenGeneration),
            EventKind::Unhandled(reason) => Err(reason),
        }
    }
}

/// A body that is not a Cognito trigger event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON at all.
    #[error("event is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("event is not a JSON object")]
    NotAnObject,
    /// A field every Cognito event has is missing.
    #[error("event has no `{0}`: not a Cognito trigger event")]
    Missing(&'static str),
    /// A field has the wrong JSON type.
    #[error("event field `{field}` must be {expected}")]
    WrongType {
        /// The field path.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

/// A parsed Cognito trigger event: the sign-in and what the answer needs.
#[derive(Debug, Clone)]
pub struct Event {
    /// The original event, answered with (changed only by a token response).
    pub raw: Value,
    /// The trigger kind.
    pub kind: EventKind,
    /// The sign-in, parsed once, as rules see it. Its tenant is empty and its clock zero
    /// until the gate stamps them ([`stamp`]); for [`EventKind::Unhandled`] (never
    /// evaluated) it holds only the trigger source.
    pub sign_in: SignIn,
}

impl Event {
    /// Parses an event from JSON text.
    pub fn from_slice(bytes: &[u8]) -> Result<Event, EventError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| EventError::NotJson(e.to_string()))?;
        Event::from_value(value)
    }

    /// Parses an event from a JSON value.
    pub fn from_value(raw: Value) -> Result<Event, EventError> {
        Event::parse(raw).map_err(|(error, _)| error)
    }

    /// Like [`Event::from_value`], but a failure hands the JSON back with the error (the
    /// handler answers with it when failing open), so it never has to be copied.
    pub fn parse(raw: Value) -> Result<Event, (EventError, Value)> {
        match Event::fields(&raw) {
            Ok((kind, sign_in)) => Ok(Event { raw, kind, sign_in }),
            Err(error) => Err((error, raw)),
        }
    }

    /// The kind and the sign-in.
    fn fields(raw: &Value) -> Result<(EventKind, SignIn), EventError> {
        let obj = raw.as_object().ok_or(EventError::NotAnObject)?;
        let trigger_source = required_str(obj, "triggerSource")?;
        let version = match obj.get("version") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let kind = kind_of(&trigger_source, &version);
        if let EventKind::Unhandled(_) = kind {
            // Never evaluated: nothing else of it has to parse (the console's test event
            // has no pool, other triggers have other request shapes).
            return Ok((kind, unhandled_sign_in(trigger_source, version)));
        }
        let user_pool_id = required_str(obj, "userPoolId")?;
        let empty = Map::new();
        let request = match obj.get("request") {
            Some(Value::Object(r)) => r,
            None | Some(Value::Null) => &empty,
            Some(_) => {
                return Err(EventError::WrongType {
                    field: "request",
                    expected: "an object",
                });
            }
        };
        let metadata_field = if kind == EventKind::PreAuthentication {
            "validationData"
        } else {
            "clientMetadata"
        };
        let group_config = request.get("groupConfiguration").and_then(Value::as_object);
        let user_attributes = string_map(request.get("userAttributes"), "request.userAttributes")?;
        let federated = user_attributes.iter().any(|(name, value)| {
            (name == "identities" && !value.is_empty() && value != "[]")
                || (name == "cognito:user_status" && value == "EXTERNAL_PROVIDER")
        });
        let sign_in = SignIn {
            trigger: kind.trigger().unwrap_or(Trigger::PreAuthentication),
            event_version: version,
            tenant: String::new(),
            user_pool_id,
            user_name: optional_str(obj.get("userName")),
            client_id: obj
                .get("callerContext")
                .and_then(|c| c.get("clientId"))
                .and_then(|c| optional_str(Some(c))),
            user_attributes,
            client_metadata: string_map(request.get(metadata_field), "request.validationData")?,
            user_not_found: request
                .get("userNotFound")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            new_device_used: request.get("newDeviceUsed").and_then(Value::as_bool),
            groups: string_list(group_config.and_then(|g| g.get("groupsToOverride"))),
            scopes: string_list(request.get("scopes")),
            now_unix_ms: 0,
            token_source: TokenSource::from_source(&trigger_source),
            federated,
            first_federated: false,
            trusted: None,
            trigger_source,
        };
        Ok((kind, sign_in))
    }

    /// The user attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        attribute(&self.sign_in, name)
    }

    /// A copy of the sign-in for `tenant` at `now_unix_ms`, or `None` for a trigger
    /// Portcullis does not handle (the CLI's one-rule evaluation; the gate moves the
    /// sign-in out instead of copying it).
    pub fn to_request(&self, tenant: &str, now_unix_ms: i64) -> Option<SignIn> {
        self.kind.trigger().ok()?;
        let mut sign_in = self.sign_in.clone();
        stamp(&mut sign_in, tenant, now_unix_ms);
        Some(sign_in)
    }
}

/// How recently a provider identity may have been created for a hosted-auth token event to
/// count as the user's first federated sign-in: Cognito creates the user moments before it
/// asks for the first tokens.
pub const FIRST_FEDERATED_WINDOW_MS: i64 = 120_000;

/// Completes a parsed sign-in once the gate knows the tenant and the time: sets both, and
/// whether this is the user's first federated sign-in. That is derived, not documented: a
/// `TokenGeneration_HostedAuth` event of a federated user whose provider identity
/// (`identities[].dateCreated`, milliseconds) was created within
/// [`FIRST_FEDERATED_WINDOW_MS`] before now.
pub fn stamp(sign_in: &mut SignIn, tenant: &str, now_unix_ms: i64) {
    sign_in.tenant = tenant.to_owned();
    sign_in.now_unix_ms = now_unix_ms;
    sign_in.first_federated = sign_in.federated
        && sign_in.token_source == TokenSource::HostedAuth
        && attribute(sign_in, "identities")
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|identities| identities.as_array().cloned())
            .is_some_and(|identities| {
                identities.iter().any(|identity| {
                    let created = match identity.get("dateCreated") {
                        Some(Value::Number(n)) => n.as_i64(),
                        Some(Value::String(s)) => s.parse().ok(),
                        _ => None,
                    };
                    created.is_some_and(|created| {
                        (0..=FIRST_FEDERATED_WINDOW_MS).contains(&(now_unix_ms - created))
                    })
                })
            });
}

/// The sign-in of an event Portcullis leaves alone: only its source and version.
fn unhandled_sign_in(trigger_source: String, event_version: String) -> SignIn {
    SignIn {
        trigger_source,
        event_version,
        ..portcullis_engine::request::NO_SIGN_IN.clone()
    }
}

/// The user attribute `name` of `sign_in`, if present.
pub fn attribute<'s>(sign_in: &'s SignIn, name: &str) -> Option<&'s str> {
    sign_in
        .user_attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn kind_of(trigger_source: &str, version: &str) -> EventKind {
    match Trigger::from_source(trigger_source) {
        Some(Trigger::PreAuthentication) => EventKind::PreAuthentication,
        Some(Trigger::PostAuthentication) => EventKind::PostAuthentication,
        Some(Trigger::PreTokenGeneration) => EventKind::PreTokenGeneration(match version {
            "2" | "V2_0" => TokenVersion::V2,
            "3" | "V3_0" => TokenVersion::V3,
            _ => TokenVersion::V1,
        }),
        None => EventKind::Unhandled(Unhandled::of(trigger_source)),
    }
}

fn required_str(obj: &Map<String, Value>, field: &'static str) -> Result<String, EventError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(EventError::Missing(field)),
        Some(_) => Err(EventError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn optional_str(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// A JSON object of strings; other scalars are kept as their JSON text, nulls dropped.
fn string_map(
    value: Option<&Value>,
    field: &'static str,
) -> Result<Vec<(String, String)>, EventError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => Ok(map
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Null => None,
                Value::String(s) => Some((k.clone(), s.clone())),
                other => Some((k.clone(), other.to_string())),
            })
            .collect()),
        Some(_) => Err(EventError::WrongType {
            field,
            expected: "an object of strings",
        }),
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pre_auth_with_null_validation_data_and_user_not_found() {
        let e = Event::from_value(json!({
            "version": "1", "triggerSource": "PreAuthentication_Authentication",
            "region": "us-east-1", "userPoolId": "us-east-1_A", "userName": "u",
            "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
            "request": {"userAttributes": {"email": "a@b.c"}, "validationData": null, "userNotFound": true},
            "response": {}
        }))
        .unwrap();
        assert_eq!(e.kind, EventKind::PreAuthentication);
        assert!(e.sign_in.user_not_found);
        assert!(e.sign_in.client_metadata.is_empty());
        assert_eq!(e.sign_in.client_id.as_deref(), Some("c"));
        assert_eq!(e.attr("email"), Some("a@b.c"));
    }

    #[test]
    fn token_versions() {
        for (version, expected) in [
            ("1", TokenVersion::V1),
            ("2", TokenVersion::V2),
            ("3", TokenVersion::V3),
        ] {
            let e = Event::from_value(json!({
                "version": version, "triggerSource": "TokenGeneration_Authentication",
                "userPoolId": "p", "request": {"userAttributes": {}}
            }))
            .unwrap();
            assert_eq!(e.kind, EventKind::PreTokenGeneration(expected));
        }
    }

    #[test]
    fn client_credentials_without_user() {
        let e = Event::from_value(json!({
            "version": "3", "triggerSource": "TokenGeneration_ClientCredentials",
            "userPoolId": "p", "callerContext": {"clientId": "m2m"},
            "request": {"scopes": ["api/read"], "unknownNewField": {"x": 1}}, "response": {}
        }))
        .unwrap();
        assert_eq!(e.sign_in.user_name, None);
        assert_eq!(e.sign_in.scopes, ["api/read"]);
        assert_eq!(
            e.to_request("t", 0).map(|r| r.trigger),
            Some(Trigger::PreTokenGeneration)
        );
    }

    #[test]
    fn token_source_federation_and_first_federated_sign_in() {
        let created = 1_767_268_800_000_i64;
        let event = |source: &str| {
            Event::from_value(json!({
                "version": "2", "triggerSource": source, "userPoolId": "p",
                "userName": "Google_1",
                "request": {"userAttributes": {
                    "cognito:user_status": "EXTERNAL_PROVIDER",
                    "identities": format!(r#"[{{"providerName":"Google","dateCreated":{created}}}]"#),
                }}
            }))
            .unwrap()
        };
        let hosted = event("TokenGeneration_HostedAuth");
        assert_eq!(hosted.sign_in.token_source, TokenSource::HostedAuth);
        assert!(hosted.sign_in.federated);
        let first = hosted.to_request("acme", created + 3_000).unwrap();
        assert!(first.first_federated, "created moments ago");
        let later = hosted.to_request("acme", created + 86_400_000).unwrap();
        assert!(!later.first_federated, "a returning user");
        let refresh = event("TokenGeneration_RefreshTokens");
        assert_eq!(refresh.sign_in.token_source, TokenSource::RefreshTokens);
        assert!(
            !refresh
                .to_request("acme", created + 3_000)
                .unwrap()
                .first_federated
        );
        let local = Event::from_value(json!({
            "triggerSource": "PreAuthentication_Authentication", "userPoolId": "p",
            "request": {"userAttributes": {"cognito:user_status": "CONFIRMED"}}
        }))
        .unwrap();
        assert!(!local.sign_in.federated);
        assert_eq!(local.sign_in.token_source, TokenSource::None);
    }

    #[test]
    fn unhandled_sources_need_no_pool_and_say_why() {
        let console = Event::from_value(
            json!({"triggerSource": "testTrigger", "request": {}, "response": {}}),
        )
        .unwrap();
        assert_eq!(console.kind, EventKind::Unhandled(Unhandled::ConsoleTest));
        let inbound = json!({"triggerSource": "InboundFederation_ExternalProvider", "userPoolId": "p", "request": {"attributes": {}}, "response": {"userAttributesToMap": {"email": "x"}}});
        assert_eq!(
            Unhandled::InboundFederation.answer(inbound)["response"]["userAttributesToMap"],
            json!({})
        );
        assert_eq!(
            Unhandled::of("PreSignUp_ExternalProvider"),
            Unhandled::NotASignIn
        );
        assert_eq!(Unhandled::of("SomethingNew_2027"), Unhandled::UnknownSource);
    }

    #[test]
    fn unknown_trigger_is_other() {
        let e =
            Event::from_value(json!({"triggerSource": "CustomMessage_SignUp", "userPoolId": "p"}))
                .unwrap();
        assert_eq!(e.kind, EventKind::Unhandled(Unhandled::NotASignIn));
        assert!(e.to_request("t", 0).is_none());
    }

    #[test]
    fn not_an_event() {
        assert_eq!(
            Event::from_slice(b"[]").err(),
            Some(EventError::NotAnObject)
        );
        assert_eq!(
            Event::from_slice(b"{}").err(),
            Some(EventError::Missing("triggerSource"))
        );
        assert!(matches!(
            Event::from_slice(b"{"),
            Err(EventError::NotJson(_))
        ));
        assert!(matches!(
            Event::from_value(
                json!({"triggerSource": "PreAuthentication_Authentication", "userPoolId": "p", "request": {"userAttributes": []}})
            ),
            Err(EventError::WrongType { .. })
        ));
    }
}
