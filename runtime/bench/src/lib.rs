//! What the project's comparative benchmarks share: the side-by-side rule in its three
//! forms ([`twins`]) and the harness that runs a rule under contract 0.2 and under a draft
//! one-core-instance world ([`draft`]). The benchmarks themselves are `benches/versus.rs`
//! (native Rust, Cedar and Portcullis, timed side by side), `benches/contract.rs` (what the
//! contract's shape costs a rule) and `benches/scale.rs` (memory with many distinct rules
//! loaded); `tests/agree.rs` checks that every form decides alike.

pub mod draft;
pub mod twins;

/// The `q` quantile (0 to 1) of sorted nanoseconds (0 when there are none).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    let last = sorted.len().saturating_sub(1);
    let index = ((last as f64) * q).round() as usize;
    sorted.get(index.min(last)).copied().unwrap_or(0)
}

/// Nanoseconds as microseconds.
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}
