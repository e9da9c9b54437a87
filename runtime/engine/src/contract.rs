//! The host side of the policy contract, generated from `sdk/wit/policy.wit` by
//! `wasmtime::component::bindgen!`: the verdict types, the `request` resource's methods and
//! the `log` import. The host's data behind the resource is [`crate::request::Request`].
//!
//! The contract's types and signatures are all generated; [`ALLOWED_IMPORTS`] names the
//! interfaces of that same file a component may import.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "policy",
    path: "../../sdk/wit",
    with: {
        "portcullis:policy/types.request": crate::request::Request,
    },
});

pub use portcullis::policy::types::{
    Claim, DataItem, Decision, GroupOverride, Level, Trigger, Verdict as RawVerdict,
};

/// The only imports a policy component may have: the contract's own interfaces.
pub const ALLOWED_IMPORTS: &[&str] = &[
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

impl Trigger {
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

impl std::str::FromStr for Trigger {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pre-authentication" => Ok(Trigger::PreAuthentication),
            "post-authentication" => Ok(Trigger::PostAuthentication),
            "pre-token-generation" => Ok(Trigger::PreTokenGeneration),
            other => Err(format!(
                "unknown trigger `{other}` (expected pre-authentication, post-authentication or pre-token-generation)"
            )),
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
