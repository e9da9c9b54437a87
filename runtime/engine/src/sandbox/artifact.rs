//! The precompiled-artifact format, as pure bytes: sealing native code under this
//! deployment's [`ArtifactKey`] and opening it again only if the key vouches for it.
//!
//! A precompiled artifact is native machine code that wasmtime maps and runs without
//! checking it. So it is trusted only when it carries an HMAC-SHA256 tag made with a key
//! that this deployment holds and that no publisher or tenant can use:
//!
//! ```text
//! magic (16) | engine compat id (32, ASCII hex) | module sha256 (32) | module size (u64 LE)
//!           | placement (1: 0 small-memory pool, 1 large-memory pool)
//!           | tag (32) = HMAC-SHA256(key, every byte above it, then the native code)
//!           | native code (wasmtime's serialized component)
//! ```
//!
//! Whoever can write under `compiled/` but does not hold the key can copy, relabel,
//! truncate or patch artifacts, and every one of those is refused ([`ArtifactError`]); the
//! registry then compiles the module from its verified `.wasm` and overwrites the artifact.
//!
//! The placement says which of the engine's two instance pools the code was compiled for,
//! so loading an artifact deserializes it once, straight into its pool (format 3; format 2
//! had no placement and its large-memory artifacts were deserialized twice).

use std::fmt;

use hmac::{Hmac, Mac};

use crate::digest::Sha256;

/// The first bytes of an artifact (the last byte is the format version).
pub const MAGIC: &[u8; 16] = b"PORTCULLIS-CW\x00\x00\x03";
/// The length of the engine compatibility id, in ASCII hex digits.
pub const COMPAT_LEN: usize = 32;
const TAG_LEN: usize = 32;
/// Everything before the native code.
pub const HEADER_LEN: usize = MAGIC.len() + COMPAT_LEN + 32 + 8 + 1 + TAG_LEN;

/// Which of the engine's instance pools a policy runs in, by the size its memories start
/// at (see [`crate::sandbox`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Memories reset with one `memset`.
    Small,
    /// Only dirtied pages reset.
    Large,
}

impl Placement {
    fn byte(self) -> u8 {
        match self {
            Placement::Small => 0,
            Placement::Large => 1,
        }
    }
}
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

type HmacSha256 = Hmac<sha2::Sha256>;

/// The deployment's artifact key: an HMAC key that only this deployment's function (and
/// the platform's own build, if it precompiles) holds. Its bytes never appear in `Debug`.
#[derive(Clone)]
pub struct ArtifactKey(HmacSha256);

/// A key that is too short to be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an artifact key must be at least {MIN_KEY_BYTES} bytes, this one is {0}")]
pub struct WeakKey(pub usize);

impl ArtifactKey {
    /// A key from its bytes (at least [`MIN_KEY_BYTES`]).
    pub fn new(bytes: Vec<u8>) -> Result<ArtifactKey, WeakKey> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(WeakKey(bytes.len()));
        }
        // HMAC takes keys of any length: this never fails once the length is checked.
        HmacSha256::new_from_slice(&bytes)
            .map(ArtifactKey)
            .map_err(|_| WeakKey(bytes.len()))
    }

    /// A key from its text form (a key file or a secret's string): the trimmed text's bytes.
    pub fn from_text(text: &str) -> Result<ArtifactKey, WeakKey> {
        ArtifactKey::new(text.trim().as_bytes().to_vec())
    }

    /// A new random key in its text form (64 hex digits), for `portcullis keygen`.
    pub fn generate_text() -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)?;
        Ok(hex::encode(bytes))
    }

    /// A MAC keyed with this key (the key schedule is computed once, at construction).
    fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }
}

impl fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArtifactKey(..)")
    }
}

/// Why an artifact was refused. Every one of these makes the registry compile the module
/// from its verified `.wasm` instead, and overwrite the artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// Shorter than its header.
    #[error("artifact is truncated")]
    Truncated,
    /// Not a Portcullis artifact of this format version.
    #[error("not a Portcullis artifact (of format version {})", MAGIC[15])]
    NotAnArtifact,
    /// Made by another engine build (another wasmtime version, settings or CPU).
    #[error("artifact was built by engine `{found}`, this is engine `{expected}`")]
    ForeignEngine {
        /// This engine's compatibility id.
        expected: String,
        /// The id in the artifact.
        found: String,
    },
    /// The tag does not verify under this deployment's key: forged, relabelled, patched,
    /// or sealed with another key.
    #[error("artifact is not authenticated by this deployment's artifact key")]
    Unauthenticated,
    /// An authentic artifact of another module.
    #[error("artifact is of module `{actual}`, not `{expected}`")]
    WrongModule {
        /// The module asked for.
        expected: Sha256,
        /// The module the artifact is of.
        actual: Sha256,
    },
    /// wasmtime refused the native code it vouched for (should not happen).
    #[error("wasmtime refused the artifact: {0}")]
    Incompatible(String),
    /// A placement byte this format does not define (cannot pass the tag check unless a
    /// key holder wrote it).
    #[error("artifact names an unknown instance pool")]
    UnknownPlacement,
}

/// An artifact that opened: the module size and the native code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The size of the module it was compiled from, in bytes.
    pub module_size: u64,
    /// The instance pool it was compiled for.
    pub placement: Placement,
    /// wasmtime's serialized component.
    pub native: &'a [u8],
}

fn header(
    compat: &str,
    module: &Sha256,
    module_size: u64,
    placement: Placement,
) -> Option<Vec<u8>> {
    if compat.len() != COMPAT_LEN || !compat.is_ascii() {
        return None;
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(compat.as_bytes());
    header.extend_from_slice(module.as_bytes());
    header.extend_from_slice(&module_size.to_le_bytes());
    header.push(placement.byte());
    Some(header)
}

/// Seals `native` (compiled by engine `compat` from `module`, `module_size` bytes, for the
/// pool `placement`) under `key`. `None` if `compat` is not a [`COMPAT_LEN`]-digit id.
pub fn seal(
    key: &ArtifactKey,
    compat: &str,
    (module, module_size): (&Sha256, u64),
    placement: Placement,
    native: &[u8],
) -> Option<Vec<u8>> {
    let mut artifact = header(compat, module, module_size, placement)?;
    let mut mac = key.mac();
    mac.update(&artifact);
    mac.update(native);
    artifact.extend_from_slice(&mac.finalize().into_bytes());
    artifact.extend_from_slice(native);
    Some(artifact)
}

/// Opens an artifact for module `expected` on engine `compat`: refused unless its tag
/// verifies under `key` (in constant time) and it names exactly that engine and module.
pub fn open<'a>(
    key: &ArtifactKey,
    compat: &str,
    expected: &Sha256,
    artifact: &'a [u8],
) -> Result<Opened<'a>, ArtifactError> {
    let (head, native) = artifact
        .split_at_checked(HEADER_LEN)
        .ok_or(ArtifactError::Truncated)?;
    let (magic, rest) = head.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(ArtifactError::NotAnArtifact);
    }
    let (found_compat, rest) = rest.split_at(COMPAT_LEN);
    if found_compat != compat.as_bytes() {
        return Err(ArtifactError::ForeignEngine {
            expected: compat.to_owned(),
            found: String::from_utf8_lossy(found_compat).into_owned(),
        });
    }
    let (module, rest) = rest.split_at(32);
    let (size, rest) = rest.split_at(8);
    let (placement, tag) = rest.split_at(1);
    let mut mac = key.mac();
    mac.update(head.get(..HEADER_LEN - TAG_LEN).unwrap_or_default());
    mac.update(native);
    mac.verify_slice(tag)
        .map_err(|_| ArtifactError::Unauthenticated)?;
    let actual = Sha256::from_bytes(module);
    if actual != *expected {
        return Err(ArtifactError::WrongModule {
            expected: *expected,
            actual,
        });
    }
    let module_size = <[u8; 8]>::try_from(size).map_or(0, u64::from_le_bytes);
    let placement = match placement {
        [0] => Placement::Small,
        [1] => Placement::Large,
        _ => return Err(ArtifactError::UnknownPlacement),
    };
    Ok(Opened {
        module_size,
        placement,
        native,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPAT: &str = "0123456789abcdef0123456789abcdef";

    fn key(byte: u8) -> ArtifactKey {
        ArtifactKey::new(vec![byte; 32]).unwrap()
    }

    fn sealed() -> (Sha256, Vec<u8>) {
        let module = Sha256::of(b"module");
        let artifact = seal(
            &key(1),
            COMPAT,
            (&module, 6),
            Placement::Small,
            b"native code",
        )
        .unwrap();
        (module, artifact)
    }

    #[test]
    fn a_sealed_artifact_opens_with_its_key() {
        let (module, artifact) = sealed();
        let opened = open(&key(1), COMPAT, &module, &artifact).unwrap();
        assert_eq!(opened.native, b"native code");
        assert_eq!(opened.module_size, 6);
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let (module, artifact) = sealed();
        for i in 0..artifact.len() {
            let mut bad = artifact.clone();
            bad[i] ^= 0x01;
            assert!(open(&key(1), COMPAT, &module, &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn relabelled_forged_and_foreign_artifacts_are_refused_by_type() {
        let (module, artifact) = sealed();
        // Another key.
        assert_eq!(
            open(&key(2), COMPAT, &module, &artifact),
            Err(ArtifactError::Unauthenticated)
        );
        // Relabelled as another module: the label is under the tag.
        let other = Sha256::of(b"other");
        let mut relabelled = artifact.clone();
        relabelled[16 + COMPAT_LEN..16 + COMPAT_LEN + 32].copy_from_slice(other.as_bytes());
        assert_eq!(
            open(&key(1), COMPAT, &other, &relabelled),
            Err(ArtifactError::Unauthenticated)
        );
        // An authentic artifact stored under another module's name.
        assert_eq!(
            open(&key(1), COMPAT, &other, &artifact),
            Err(ArtifactError::WrongModule {
                expected: other,
                actual: module
            })
        );
        // Patched native code with the tag of someone who does not hold the key.
        let forged = seal(
            &key(9),
            COMPAT,
            (&module, 6),
            Placement::Small,
            b"exit_group(42)",
        )
        .unwrap();
        assert_eq!(
            open(&key(1), COMPAT, &module, &forged),
            Err(ArtifactError::Unauthenticated)
        );
        // Another engine build.
        assert!(matches!(
            open(
                &key(1),
                "ffffffffffffffffffffffffffffffff",
                &module,
                &artifact
            ),
            Err(ArtifactError::ForeignEngine { .. })
        ));
        // Truncated, empty, and the old unauthenticated format.
        assert_eq!(
            open(&key(1), COMPAT, &module, &artifact[..HEADER_LEN - 1]),
            Err(ArtifactError::Truncated)
        );
        let mut v1 = artifact.clone();
        v1[15] = 2;
        assert_eq!(
            open(&key(1), COMPAT, &module, &v1),
            Err(ArtifactError::NotAnArtifact)
        );
    }

    #[test]
    fn keys_are_long_enough_and_never_shown() {
        assert_eq!(ArtifactKey::from_text("short").unwrap_err(), WeakKey(5));
        let text = ArtifactKey::generate_text().unwrap();
        assert_eq!(text.len(), 64);
        let key = ArtifactKey::from_text(&format!("{text}\n")).unwrap();
        assert_eq!(format!("{key:?}"), "ArtifactKey(..)");
    }
}
