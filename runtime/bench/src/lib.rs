//! What the project's comparative benchmarks share: the side-by-side rule in its three
//! forms ([`twins`]) and the harness that runs a rule under contract 0.2 and under a draft
//! one-core-instance world ([`draft`]). The benchmarks themselves are `benches/versus.rs`
//! (native Rust, Cedar and Portcullis, timed side by side), `benches/contract.rs` (what the
//! contract's shape costs a rule) and `benches/scale.rs` (memory with many distinct rules
//! loaded); `tests/agree.rs` checks that every form decides alike.

pub mod draft;
pub mod twins;
