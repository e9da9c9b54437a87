//! Which language a component was written in, read from its bytes: the hint behind each
//! language's default budget and whether publishing must precompile it.
//!
//! Tools record it unevenly. `componentize-js` writes `language: JavaScript` (and
//! `processed-by: ComponentizeJS`) into the component's `producers` section; `rustc` and
//! `wit-bindgen-rust` write `processed-by` entries; `componentize-py` writes neither, but
//! links CPython as `libpython3.<minor>.so`, whose name the component carries. Nothing here
//! is trusted for safety: the language only picks defaults that the publisher sees and
//! signs into the manifest, and the sandbox holds every rule to its budget alike.

use std::fmt;

use wasmparser::{KnownCustom, Parser, Payload};

use crate::budget::Budget;

/// The language a policy component was built from, as far as its bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Rust (the `portcullis-sdk` crate): small, fast to compile, thousands of fuel.
    Rust,
    /// JavaScript or TypeScript (componentize-js, an embedded SpiderMonkey): ~13 MB,
    /// seconds to compile, millions of fuel.
    JavaScript,
    /// Python (componentize-py, an embedded CPython): ~18 MB, seconds to compile.
    Python,
    /// Anything else that speaks the contract.
    Other,
}

impl Language {
    /// Reads the language from a component's bytes. Unparseable bytes are [`Language::Other`]
    /// (loading them reports the real error).
    pub fn of(bytes: &[u8]) -> Language {
        let mut rust = false;
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else {
                return Language::Other;
            };
            let Payload::CustomSection(section) = payload else {
                continue;
            };
            match section.as_known() {
                KnownCustom::Producers(fields) => {
                    for field in fields.into_iter().flatten() {
                        for value in field.values.into_iter().flatten() {
                            match (field.name, value.name) {
                                ("language", "JavaScript") | ("processed-by", "ComponentizeJS") => {
                                    return Language::JavaScript;
                                }
                                ("language", "Rust")
                                | ("processed-by", "rustc" | "wit-bindgen-rust") => rust = true,
                                _ => {}
                            }
                        }
                    }
                }
                KnownCustom::Name(_) | KnownCustom::ComponentName(_)
                    if contains(section.data(), b"libpython3.") =>
                {
                    return Language::Python;
                }
                _ => {}
            }
        }
        if rust {
            Language::Rust
        } else if contains(bytes, b"libpython3.") {
            Language::Python
        } else {
            Language::Other
        }
    }

    /// Whether a cold start should never compile it: its interpreter takes seconds to
    /// compile, a large share of Cognito's 5-second deadline.
    pub fn needs_precompiling(self) -> bool {
        matches!(self, Language::JavaScript | Language::Python)
    }

    /// The budget a rule in this language gets when its manifest names none: fuel and memory
    /// with ample headroom over what the example policies use (Rust: 3.5–13.5 thousand fuel
    /// and one 64 KiB page; JavaScript: 5–7.6 million fuel, 9 MiB; Python: 0.5–0.8 million
    /// fuel, 12.5 MiB), the wall clock the same for all. Publishing writes it into the signed
    /// manifest, so what runs is what the publisher saw.
    pub fn default_budget(self) -> Budget {
        let (fuel, memory_mb) = match self {
            Language::Rust => (1_000_000, 16),
            Language::JavaScript => (50_000_000, 64),
            Language::Python => (20_000_000, 64),
            Language::Other => (Budget::DEFAULT_FUEL, Budget::DEFAULT_MEMORY >> 20),
        };
        Budget {
            fuel,
            memory_bytes: memory_mb << 20,
            ..Budget::default()
        }
    }

    /// The language's name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::JavaScript => "javascript",
            Language::Python => "python",
            Language::Other => "other",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_policy_is_rust() {
        let bytes = std::fs::read(portcullis_artifacts::SUSPENDED_USERS).unwrap();
        assert_eq!(Language::of(&bytes), Language::Rust);
        assert!(!Language::Rust.needs_precompiling());
    }

    #[test]
    fn garbage_and_hand_written_modules_are_other() {
        assert_eq!(Language::of(b"not wasm"), Language::Other);
        let bytes = std::fs::read(portcullis_artifacts::UNKNOWN_IMPORT).unwrap();
        assert_eq!(Language::of(&bytes), Language::Other);
    }
}
