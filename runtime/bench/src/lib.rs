//! What the project's comparative benchmarks share: the side-by-side rule in its three
//! forms ([`twins`]). The benchmarks themselves are `benches/versus.rs` (native Rust, Cedar
//! and Portcullis, timed side by side) and `benches/scale.rs` (memory with many distinct
//! rules loaded); `tests/agree.rs` checks the three forms decide alike.

pub mod twins;
