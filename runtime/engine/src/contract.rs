//! The host side of the policy contract, generated from `sdk/wit/policy.wit` by
//! `wasmtime::component::bindgen!`: the [`SignIn`] record, the verdict types, the `request`
//! resource's methods and the `log` and `count` imports; the contract's version ([`CONTRACT_VERSION`])
//! and the one mapping between Cognito's `triggerSource` and a [`Trigger`].
//!
//! The contract's types and signatures are all generated; [`ALLOWED_IMPORTS`] names the
//! interfaces of that same file a component may import. This module is a leaf: it names
//! nothing else of the engine.

#![expect(
    missing_docs,
    reason = "the bindings are generated; the WIT file documents them"
)]

wasmtime::component::bindgen!({
    world: "policy",
    path: "../../sdk/wit",
    with: {
        "portcullis:policy/types.request": LentRequest,
    },
});

pub use portcullis::policy::host::CounterChange;
pub use portcullis::policy::types::{
    Claim, DataItem, Decision, GroupOverride, Level, SignIn, TokenSource, Trigger, TrustedContext,
    Verdict as RawVerdict,
};

/// The host's representation of the `request` resource: a store holds at most one lent
/// request, so a handle carries nothing (the sign-in is in the store's state).
pub struct LentRequest;

/// Expands to the contract's version, `portcullis:policy@VERSION` in `sdk/wit/policy.wit`.
macro_rules! contract_version {
    () => {
        "0.2.1"
    };
}

/// The contract's version: the `@VERSION` of `package portcullis:policy` in the WIT file.
pub const CONTRACT_VERSION: &str = contract_version!();

/// The only imports a policy component may have: the contract's own interfaces, in this
/// version or an earlier compatible one (0.2.1 only added methods to 0.2.0, and wasmtime's
/// linker serves a 0.2.0 import from the 0.2.1 interface).
pub const ALLOWED_IMPORTS: &[&str] = &[
    concat!("portcullis:policy/types@", contract_version!()),
    concat!("portcullis:policy/host@", contract_version!()),
    "portcullis:policy/types@0.2.0",
    "portcullis:policy/host@0.2.0",
];

/// The world's own name for the `request` resource type (`use types.{request}`): a
/// component imports it as a type, which grants nothing.
const REQUEST_TYPE: &str = "request";

/// Whether a component may import `item` under `name`: one of the contract's interfaces,
/// or the `request` resource type the world names.
pub fn allowed_import(name: &str, item: &wasmtime::component::types::ComponentItem) -> bool {
    use wasmtime::component::types::ComponentItem;
    ALLOWED_IMPORTS.contains(&name)
        || (name == REQUEST_TYPE && matches!(item, ComponentItem::Resource(_)))
}

/// The names of a component's own imports (its top level) outside the contract, read from
/// its bytes before anything is compiled: a component that would be refused costs a parse,
/// not a compile (an interpreter-sized one takes seconds to compile). Only names are read
/// here; [`allowed_import`] checks each import's type once the component is compiled.
/// Bytes that do not parse give what was read before the fault (the compile says why).
pub fn forbidden_import_names(bytes: &[u8]) -> Vec<String> {
    use wasmparser::{ComponentTypeRef, Parser, Payload, TypeBounds};
    let mut forbidden = Vec::new();
    // Nested modules and components have their own imports, satisfied inside the component.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            break;
        };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(imports) if depth == 0 => {
                for import in imports {
                    let Ok(import) = import else {
                        return forbidden;
                    };
                    let name = import.name.name;
                    // A type equal to one already imported (`verdict`, `metadata`, …)
                    // names a type and grants nothing.
                    let allowed = ALLOWED_IMPORTS.contains(&name)
                        || matches!(import.ty, ComponentTypeRef::Type(TypeBounds::Eq(_)))
                        || (name == REQUEST_TYPE && matches!(import.ty, ComponentTypeRef::Type(_)));
                    if !allowed {
                        forbidden.push(name.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    forbidden
}

/// The post-authentication `triggerSource`.
pub const POST_AUTHENTICATION_SOURCE: &str = "PostAuthentication_Authentication";

/// The client-credentials (machine-to-machine) `triggerSource`: no user, no ID token.
pub const CLIENT_CREDENTIALS_SOURCE: &str = "TokenGeneration_ClientCredentials";

impl Trigger {
    /// The trigger of a Cognito `triggerSource`, or `None` for one Portcullis leaves
    /// alone (sign-up, migration, custom messages, …). Every `TokenGeneration_*` source is
    /// pre token generation.
    pub fn from_source(trigger_source: &str) -> Option<Trigger> {
        match trigger_source {
            "PreAuthentication_Authentication" => Some(Trigger::PreAuthentication),
            POST_AUTHENTICATION_SOURCE => Some(Trigger::PostAuthentication),
            s if s.starts_with("TokenGeneration_") => Some(Trigger::PreTokenGeneration),
            _ => None,
        }
    }

    /// The `triggerSource` of an ordinary sign-in for this trigger (tests and examples).
    pub fn sign_in_source(self) -> &'static str {
        match self {
            Trigger::PreAuthentication => "PreAuthentication_Authentication",
            Trigger::PostAuthentication => POST_AUTHENTICATION_SOURCE,
            Trigger::PreTokenGeneration => "TokenGeneration_Authentication",
        }
    }

    /// The manifest and log name of the trigger.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::PreAuthentication => "pre-authentication",
            Trigger::PostAuthentication => "post-authentication",
            Trigger::PreTokenGeneration => "pre-token-generation",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TokenSource {
    /// The token source of a Cognito `triggerSource`: [`TokenSource::None`] for anything but
    /// `TokenGeneration_*`.
    pub fn from_source(trigger_source: &str) -> TokenSource {
        let Some(kind) = trigger_source.strip_prefix("TokenGeneration_") else {
            return TokenSource::None;
        };
        match kind {
            "Authentication" => TokenSource::Authentication,
            "HostedAuth" => TokenSource::HostedAuth,
            "RefreshTokens" => TokenSource::RefreshTokens,
            "NewPasswordChallenge" => TokenSource::NewPasswordChallenge,
            "AuthenticateDevice" => TokenSource::AuthenticateDevice,
            "ClientCredentials" => TokenSource::ClientCredentials,
            _ => TokenSource::Other,
        }
    }
}

/// A trigger name that is not one of the contract's three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown trigger `{0}` (expected pre-authentication, post-authentication, pre-token-generation or, in a manifest, every-sign-in)"
)]
pub struct UnknownTrigger(pub String);

impl std::str::FromStr for Trigger {
    type Err = UnknownTrigger;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pre-authentication" => Ok(Trigger::PreAuthentication),
            "post-authentication" => Ok(Trigger::PostAuthentication),
            "pre-token-generation" => Ok(Trigger::PreTokenGeneration),
            other => Err(UnknownTrigger(other.to_owned())),
        }
    }
}

impl serde::Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Level {
    /// The log name of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}
