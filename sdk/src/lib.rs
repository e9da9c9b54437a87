//! The Portcullis policy SDK: everything a Rust sign-in policy needs, and nothing else.
//!
//! A policy is a type that implements [`Policy`] and is exported with [`export!`]. It reads
//! the sign-in [`Request`] (attributes, client metadata, its own configuration, prefetched
//! data, the host's clock) and answers with a [`Verdict`] built fluently:
//!
//! ```
//! use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
//!
//! struct BlockSuspended;
//!
//! impl Policy for BlockSuspended {
//!     const DESCRIPTION: &'static str = "blocks users whose custom:suspended attribute is true";
//!     const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];
//!
//!     fn evaluate(request: &Request) -> Result<Verdict, Error> {
//!         if request.attr("custom:suspended").as_deref() == Some("true") {
//!             return Ok(Verdict::deny("Your account is suspended"));
//!         }
//!         Ok(Verdict::allow())
//!     }
//! }
//!
//! portcullis_sdk::export!(BlockSuspended);
//!
//! # fn main() {
//! let request = portcullis_sdk::testing::request(Trigger::PreAuthentication)
//!     .attr("custom:suspended", "true")
//!     .build();
//! let verdict = BlockSuspended::evaluate(&request).unwrap();
//! assert_eq!(verdict.deny_message(), Some("Your account is suspended"));
//! # }
//! ```
//!
//! Build a policy for `wasm32-unknown-unknown`; the Portcullis build step turns the module
//! into a component with no WASI imports (see the repository README). Unit-test it natively
//! with plain `cargo test` and [`testing`]; run it on recorded Cognito events through the
//! real engine with `portcullis eval`.
//!
//! On wasm32 the SDK installs a bump-arena global allocator ([`alloc`]), because every
//! policy instance lives for exactly one evaluation: nothing needs freeing, and never
//! calling `memory.grow` on the common path keeps a fresh instance cheap.

pub mod alloc;
mod request;
pub mod testing;
mod verdict;

pub use request::{DataError, Request};
pub use serde_json::{Value, json};
pub use verdict::Verdict;

/// The bindings generated from `wit/policy.wit`; policies rarely need them directly.
#[doc(hidden)]
#[allow(
    missing_docs,
    clippy::all,
    clippy::indexing_slicing,
    unsafe_op_in_unsafe_fn
)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "policy",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "::portcullis_sdk::bindings",
        // The `sign-in` record is used by no function: generated for native testing.
        generate_unused_types: true,
    });
}

#[doc(hidden)]
pub use bindings::portcullis::policy::types::Request as __HostRequest;
#[doc(hidden)]
pub use bindings::portcullis::policy::types::Verdict as __RawVerdict;
pub use bindings::portcullis::policy::types::{DataItem, Level, Metadata, Trigger};

/// A rule failure reported by a policy: the host applies the rule's `on_error`.
///
/// Any standard error converts into it, so `?` works on configuration and data parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with the given message (for the operator, never shown to end users).
    pub fn msg(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Error(error.to_string())
    }
}

/// A sign-in policy.
pub trait Policy {
    /// One line on what the policy does (shown by `portcullis check`).
    const DESCRIPTION: &'static str;
    /// The triggers the policy is written for.
    const TRIGGERS: &'static [Trigger];

    /// Decides one sign-in. Returning an error is a rule failure: the rule's `on_error`
    /// (fail closed or fail open) applies.
    fn evaluate(request: &Request) -> Result<Verdict, Error>;
}

/// Writes a line to the host's decision log (bounded by the host). Natively, to stderr.
///
/// Never log user attribute values: the decision log must stay free of personal data.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::portcullis::policy::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
pub fn __evaluate<P: Policy>(request: &Request) -> Result<__RawVerdict, String> {
    P::evaluate(request).map(Verdict::into_raw).map_err(|e| e.0)
}

#[doc(hidden)]
pub fn __describe<P: Policy>(name: &str, version: &str) -> Metadata {
    Metadata {
        name: name.to_owned(),
        version: version.to_owned(),
        description: P::DESCRIPTION.to_owned(),
        triggers: P::TRIGGERS.to_vec(),
    }
}

/// Exports a [`Policy`] implementation as the component's `evaluate` and `describe`.
///
/// The policy's name and version in `describe` are its crate's.
#[macro_export]
macro_rules! export {
    ($policy:ty) => {
        #[doc(hidden)]
        struct __PortcullisExport;

        impl $crate::bindings::Guest for __PortcullisExport {
            fn evaluate(
                request: &$crate::__HostRequest,
            ) -> ::core::result::Result<$crate::__RawVerdict, ::std::string::String> {
                // SAFETY: the handle is the request the host lent to this call, and the
                // wrapper is dropped before the call returns.
                let request = unsafe { $crate::Request::__lent(request.handle()) };
                $crate::__evaluate::<$policy>(&request)
            }

            fn describe() -> $crate::Metadata {
                $crate::__describe::<$policy>(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            }
        }

        $crate::bindings::__export_policy_world!(__PortcullisExport with_types_in $crate::bindings);
    };
}
