//! What Portcullis's tests share (dev-only, never shipped): a real S3/DynamoDB server
//! ([`moto`]), the real Lambda runtime API around `bootstrap` ([`lambda`]), rule builders
//! over a real store ([`rules`]), hand-built sign-ins ([`sign_in`]) and a loopback HTTP
//! server for lookups ([`http`]).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a failed set-up is a failed test"
)]

pub mod http;
pub mod lambda;
pub mod moto;
pub mod rules;
pub mod sign_in;
