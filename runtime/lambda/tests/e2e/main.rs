//! End-to-end tests of `bootstrap` through the real Lambda runtime API.
#![expect(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

mod runtime_api;
mod world;
