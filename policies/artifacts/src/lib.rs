//! Paths of every policy component in `policies/`, built by this crate's build script:
//! the example policies, the adversarial guests (see `policies/adversarial/README.md`) and
//! the contract benchmark's draft-world guests (`policies/draft`).
//!
//! Tests, benchmarks and the demo depend on this crate; `cargo run -p portcullis-artifacts
//! -- DIR` copies the components into `DIR`.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The example policies: (name, path).
pub fn examples() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALL.iter()
        .filter(|(_, _, example)| *example)
        .map(|(name, path, _)| (*name, *path))
}
