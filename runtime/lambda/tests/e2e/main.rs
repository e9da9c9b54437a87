//! End-to-end tests of `bootstrap` through the real Lambda runtime API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod runtime_api;
