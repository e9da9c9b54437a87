//! Who may decide what runs: Ed25519 signatures over manifests ([`ManifestSigner`]) and
//! the public keys a deployment trusts ([`TrustedKeys`]).
//!
//! Write access to the store is not the right to choose a tenant's rules. A publisher signs
//! a canonical form of the whole manifest — the tenant, the revision, the digest of the
//! revision it replaces and every field of every rule — so a signature cannot be moved to
//! another tenant or revision, and no field can change after signing. The deployment holds
//! the publishers' public keys; **when it has any, every manifest must carry a valid
//! signature by one of them**. Whether a manifest names a key never decides whether it is
//! checked (the class of bug in OPA's GHSA-g2pf-6v5v-qcc8).
//!
//! Key files are one line each: a public key is `ID=<64 hex>` (the form
//! `PORTCULLIS_TRUSTED_KEYS` takes, several joined with commas), a signing key
//! `ID=secret:<64 hex>`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::manifest::{Manifest, ManifestSignature};
use portcullis_engine::digest::Sha256;

/// The domain-separation prefix of every signed manifest payload.
const PAYLOAD_PREFIX: &[u8] = b"portcullis-manifest-v1\n";
/// The marker of a signing (secret) key in a key file.
const SECRET: &str = "secret:";

/// A key that cannot be used, or a key list that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A key id outside 1–64 of `A-Z a-z 0-9 _ . -`.
    #[error("`{0}` is not a key id (1-64 of A-Z a-z 0-9 _ . -)")]
    BadId(String),
    /// An entry that is not `ID=<64 hex>`.
    #[error("`{0}` is not a key (expected ID=<64 hex digits>)")]
    Malformed(String),
    /// A signing key where a public key belongs (or the other way round).
    #[error("key `{0}` is a {1}")]
    WrongKind(String, &'static str),
    /// Two keys with one id.
    #[error("key id `{0}` is listed twice with different keys")]
    Duplicate(String),
    /// An empty key list: it would switch verification off, so it is refused.
    #[error("no trusted keys given (leave the setting unset to run without signatures)")]
    Empty,
    /// A key file could not be read.
    #[error("reading key file `{path}`: {message}")]
    File {
        /// The path.
        path: String,
        /// The cause.
        message: String,
    },
    /// No randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// Why a manifest's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The deployment requires signatures and the manifest has none.
    #[error("manifest is not signed, and this deployment requires signed manifests")]
    Unsigned,
    /// Signed by a key the deployment does not trust.
    #[error("manifest is signed by key `{0}`, which this deployment does not trust")]
    UnknownKey(String),
    /// The signature does not verify: the manifest changed after signing, or it was
    /// signed for another tenant or revision.
    #[error("manifest signature by key `{0}` does not verify (changed after signing?)")]
    BadSignature(String),
    /// The manifest names another tenant than the one it is stored for.
    #[error("manifest is for tenant `{found}`, not `{expected}`")]
    WrongTenant {
        /// The tenant it is stored for.
        expected: String,
        /// The tenant it names (empty when it names none).
        found: String,
    },
}

/// A key id: 1–64 of `A-Z a-z 0-9 _ . -`.
fn key_id(id: &str) -> Result<String, KeyError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    ok.then(|| id.to_owned())
        .ok_or_else(|| KeyError::BadId(id.to_owned()))
}

fn key_bytes(entry: &str, hex_text: &str) -> Result<[u8; 32], KeyError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text.trim(), &mut bytes)
        .map_err(|_| KeyError::Malformed(shorten(entry)))?;
    Ok(bytes)
}

/// An entry as it may appear in an error: never the secret part.
fn shorten(entry: &str) -> String {
    match entry.split_once('=') {
        Some((id, _)) => format!("{id}=…"),
        None => entry.chars().take(64).collect(),
    }
}

fn read_file(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|e| KeyError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The publishers' public keys this deployment trusts, by key id.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedKeys(BTreeMap<String, VerifyingKey>);

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl TrustedKeys {
    /// Parses a key list: entries separated by commas or white space, each `ID=<64 hex>`
    /// or the path of a `.pub` file holding such entries. Refuses an empty list.
    pub fn parse(spec: &str) -> Result<TrustedKeys, KeyError> {
        let mut keys = BTreeMap::new();
        for entry in spec.split(|c: char| c == ',' || c.is_whitespace()) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let text;
            let entries: Vec<&str> = if entry.contains('=') {
                vec![entry]
            } else {
                text = read_file(Path::new(entry))?;
                text.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|e| !e.is_empty())
                    .collect()
            };
            for entry in entries {
                let (id, key) = entry
                    .split_once('=')
                    .ok_or_else(|| KeyError::Malformed(shorten(entry)))?;
                let id = key_id(id)?;
                if key.starts_with(SECRET) {
                    return Err(KeyError::WrongKind(
                        id,
                        "signing key: trust its public key (the .pub file) instead",
                    ));
                }
                let key = VerifyingKey::from_bytes(&key_bytes(entry, key)?)
                    .map_err(|_| KeyError::Malformed(shorten(entry)))?;
                match keys.insert(id.clone(), key) {
                    Some(old) if old != key => return Err(KeyError::Duplicate(id)),
                    _ => {}
                }
            }
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(TrustedKeys(keys))
    }

    /// The key ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether `signer`'s public key is trusted under its id.
    pub fn trusts(&self, signer: &ManifestSigner) -> bool {
        self.0.get(&signer.id) == Some(&signer.key.verifying_key())
    }

    /// Checks that `manifest` is for `tenant` and signed by a trusted key; returns the
    /// key id.
    pub fn verify<'m>(
        &self,
        manifest: &'m Manifest,
        tenant: &str,
    ) -> Result<&'m str, SignatureError> {
        if manifest.tenant.as_deref() != Some(tenant) {
            return Err(SignatureError::WrongTenant {
                expected: tenant.to_owned(),
                found: manifest.tenant.clone().unwrap_or_default(),
            });
        }
        let signature = manifest
            .signature
            .as_ref()
            .ok_or(SignatureError::Unsigned)?;
        let id = signature.key_id.as_str();
        let key = self
            .0
            .get(id)
            .ok_or_else(|| SignatureError::UnknownKey(id.to_owned()))?;
        let bad = || SignatureError::BadSignature(id.to_owned());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&signature.ed25519)
            .map_err(|_| bad())?;
        let signature = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| bad())?;
        key.verify_strict(&signed_payload(manifest), &signature)
            .map_err(|_| bad())?;
        Ok(id)
    }
}

/// A publisher's signing key.
pub struct ManifestSigner {
    id: String,
    key: SigningKey,
}

impl fmt::Debug for ManifestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestSigner")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ManifestSigner {
    /// A new random key with this id.
    pub fn generate(id: &str) -> Result<ManifestSigner, KeyError> {
        let id = key_id(id)?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(ManifestSigner {
            id,
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads a signing key file (`ID=secret:<64 hex>`).
    pub fn from_file(path: &Path) -> Result<ManifestSigner, KeyError> {
        Self::parse(read_file(path)?.trim())
    }

    /// Parses a signing key (`ID=secret:<64 hex>`).
    pub fn parse(text: &str) -> Result<ManifestSigner, KeyError> {
        let (id, rest) = text
            .split_once('=')
            .ok_or_else(|| KeyError::Malformed(shorten(text)))?;
        let id = key_id(id)?;
        let seed = rest.strip_prefix(SECRET).ok_or_else(|| {
            KeyError::WrongKind(id.clone(), "public key: sign with its .key file")
        })?;
        Ok(ManifestSigner {
            key: SigningKey::from_bytes(&key_bytes(text, seed)?),
            id,
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The signing key's file form (`ID=secret:<64 hex>`). Keep it secret.
    pub fn secret_line(&self) -> String {
        format!("{}={SECRET}{}", self.id, hex::encode(self.key.to_bytes()))
    }

    /// The public key's form for `PORTCULLIS_TRUSTED_KEYS` (`ID=<64 hex>`).
    pub fn public_line(&self) -> String {
        format!(
            "{}={}",
            self.id,
            hex::encode(self.key.verifying_key().to_bytes())
        )
    }

    /// Signs `manifest` in place (any earlier signature is replaced).
    pub fn sign(&self, manifest: &mut Manifest) {
        manifest.signature = None;
        let signature = self.key.sign(&signed_payload(manifest));
        manifest.signature = Some(ManifestSignature {
            key_id: self.id.clone(),
            ed25519: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        });
    }
}

/// The bytes a signature covers: a domain prefix and the canonical JSON of the whole
/// manifest without its signature.
fn signed_payload(manifest: &Manifest) -> Vec<u8> {
    let mut unsigned = manifest.clone();
    unsigned.signature = None;
    let mut out = PAYLOAD_PREFIX.to_vec();
    canonical_json(
        &serde_json::to_value(&unsigned).unwrap_or_default(),
        &mut out,
    );
    out
}

/// The digest of a manifest, signature included, over its canonical JSON: what the next
/// revision's `previous` names.
pub fn manifest_digest(manifest: &Manifest) -> Sha256 {
    let mut out = Vec::new();
    canonical_json(
        &serde_json::to_value(manifest).unwrap_or_default(),
        &mut out,
    );
    Sha256::of(&out)
}

/// Whether `candidate` (a staged canary) is the revision right after `live`: one higher, and
/// naming `live`'s digest as the revision it replaces.
pub fn follows(candidate: &Manifest, live: &Manifest) -> bool {
    live.revision.checked_add(1) == Some(candidate.revision)
        && candidate.previous.as_deref().and_then(|p| p.parse().ok()) == Some(manifest_digest(live))
}

/// Canonical JSON: object keys sorted, no white space, strings and numbers as
/// `serde_json` writes them. Independent of how `serde_json` orders maps.
fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                canonical_json(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::RuleEntry;

    fn manifest(tenant: &str) -> Manifest {
        let rule: RuleEntry = serde_json::from_value(serde_json::json!({
            "name": "r", "module": format!("sha256:{}", "a".repeat(64)),
            "triggers": ["pre-authentication"], "config": {"b": 1, "a": [true, null]}
        }))
        .unwrap();
        Manifest {
            tenant: Some(tenant.into()),
            revision: 2,
            previous: Some(format!("sha256:{}", "b".repeat(64))),
            rules: vec![rule],
            canary: None,
            signature: None,
        }
    }

    fn keys(signers: &[&ManifestSigner]) -> TrustedKeys {
        let spec: Vec<String> = signers.iter().map(|s| s.public_line()).collect();
        TrustedKeys::parse(&spec.join(",")).unwrap()
    }

    #[test]
    fn signed_manifests_verify_and_every_change_is_refused() {
        let signer = ManifestSigner::generate("platform").unwrap();
        let trusted = keys(&[&signer]);
        let mut m = manifest("acme");
        assert_eq!(trusted.verify(&m, "acme"), Err(SignatureError::Unsigned));
        signer.sign(&mut m);
        assert_eq!(trusted.verify(&m, "acme"), Ok("platform"));

        // Another tenant: the manifest names acme.
        assert!(matches!(
            trusted.verify(&m, "globex"),
            Err(SignatureError::WrongTenant { .. })
        ));
        // Relabelled for another tenant after signing.
        let mut moved = m.clone();
        moved.tenant = Some("globex".into());
        let bad = Err(SignatureError::BadSignature("platform".into()));
        assert_eq!(trusted.verify(&moved, "globex"), bad);
        // Any field of the body.
        let mut changed = m.clone();
        changed.revision = 3;
        assert_eq!(trusted.verify(&changed, "acme"), bad);
        let mut changed = m.clone();
        changed.previous = None;
        assert_eq!(trusted.verify(&changed, "acme"), bad);
        let mut changed = m.clone();
        changed.rules[0].config = serde_json::json!({"b": 2, "a": [true, null]});
        assert_eq!(trusted.verify(&changed, "acme"), bad);
        let mut changed = m.clone();
        changed.rules[0].on_error = portcullis_engine::chain::OnError::Allow;
        assert_eq!(trusted.verify(&changed, "acme"), bad);
        // An unknown key, and a trusted id with another key.
        let stranger = ManifestSigner::generate("platform").unwrap();
        let mut forged = manifest("acme");
        stranger.sign(&mut forged);
        assert_eq!(trusted.verify(&forged, "acme"), bad);
        let other = ManifestSigner::generate("other").unwrap();
        other.sign(&mut forged);
        assert_eq!(
            trusted.verify(&forged, "acme"),
            Err(SignatureError::UnknownKey("other".into()))
        );
        // Garbage in the signature field.
        let mut garbage = m.clone();
        if let Some(s) = garbage.signature.as_mut() {
            s.ed25519 = "!!".into();
        }
        assert_eq!(trusted.verify(&garbage, "acme"), bad);
    }

    #[test]
    fn the_payload_does_not_depend_on_key_order_or_spacing() {
        let signer = ManifestSigner::generate("k").unwrap();
        let mut m = manifest("acme");
        signer.sign(&mut m);
        let text = serde_json::to_string_pretty(&m).unwrap();
        // Reorder the config's keys as text and re-parse.
        let reordered = text.replace(
            "\"b\": 1,\n        \"a\": [\n          true,\n          null\n        ]",
            "\"a\": [true, null], \"b\": 1",
        );
        let parsed = Manifest::parse(reordered.as_bytes()).unwrap();
        assert_eq!(keys(&[&signer]).verify(&parsed, "acme"), Ok("k"));
        assert_eq!(manifest_digest(&parsed), manifest_digest(&m));
    }

    #[test]
    fn key_files_round_trip_and_kinds_are_not_mixed() {
        let signer = ManifestSigner::generate("ops-2026").unwrap();
        let again = ManifestSigner::parse(&signer.secret_line()).unwrap();
        assert_eq!(again.public_line(), signer.public_line());
        assert!(keys(&[&signer]).trusts(&again));
        assert!(matches!(
            TrustedKeys::parse(&signer.secret_line()),
            Err(KeyError::WrongKind(..))
        ));
        assert!(matches!(
            ManifestSigner::parse(&signer.public_line()),
            Err(KeyError::WrongKind(..))
        ));
        assert_eq!(TrustedKeys::parse(" , "), Err(KeyError::Empty));
        assert!(matches!(
            TrustedKeys::parse("a=zz"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            TrustedKeys::parse(&format!("bad id={}", "0".repeat(64))),
            Err(KeyError::File { .. } | KeyError::BadId(_))
        ));
        let two = ManifestSigner::generate("b").unwrap();
        let both = TrustedKeys::parse(&format!("{}, {}", signer.public_line(), two.public_line()))
            .unwrap();
        assert_eq!(both.ids().collect::<Vec<_>>(), vec!["b", "ops-2026"]);
        // A key file by path.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pub");
        std::fs::write(&path, format!("{}\n", two.public_line())).unwrap();
        let from_file = TrustedKeys::parse(path.to_str().unwrap()).unwrap();
        assert!(from_file.trusts(&two));
        // Never the secret in an error.
        let err = TrustedKeys::parse(&format!("x=secret:{}", "1".repeat(63))).unwrap_err();
        assert!(!err.to_string().contains("111"), "{err}");
    }
}
