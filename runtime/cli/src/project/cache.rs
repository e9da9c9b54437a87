//! A project's compile cache: the component compiled once, kept as an artifact sealed with
//! the project's `artifact.key` (`build/<engine>/<sha256>.cwasm`), so `test` and `publish`
//! load a TypeScript or Python rule in milliseconds instead of compiling it for seconds each
//! time. The artifact is opened as the Lambda opens one — its HMAC checked under the key,
//! its module digest matched — so a file planted in `build/` is refused and the component
//! compiled instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_engine::{ArtifactKey, CompiledPolicy, Engine, Sha256};

/// The project's key and cache directory, when it has a key.
pub struct Cache {
    key: ArtifactKey,
    dir: PathBuf,
}

impl Cache {
    /// The cache of the project in `dir`: none without a readable `artifact.key`.
    pub fn of(dir: &Path, engine: &Engine) -> Option<Cache> {
        let text = std::fs::read_to_string(dir.join("artifact.key")).ok()?;
        let key = ArtifactKey::from_text(text.trim()).ok()?;
        Some(Cache {
            key,
            dir: dir.join("build").join(engine.compat()),
        })
    }

    fn path(&self, digest: &Sha256) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    /// The component compiled from `bytes`, from the cache when a sealed artifact for them
    /// is there; otherwise `None` (a missing, stale or refused artifact alike).
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Option<Arc<CompiledPolicy>> {
        let digest = Sha256::of(bytes);
        let artifact = std::fs::read(self.path(&digest)).ok()?;
        engine.load_precompiled(&artifact, &digest, &self.key).ok()
    }

    /// Keeps `policy` for the next run. Failing to write it only
    /// costs the next run a compile.
    pub fn store(&self, engine: &Engine, policy: &CompiledPolicy) {
        let Ok(artifact) = engine.artifact(policy, &self.key) else {
            return;
        };
        if std::fs::create_dir_all(&self.dir).is_ok() {
            let _ = std::fs::write(self.path(&policy.digest()), artifact);
        }
    }
}

/// The component compiled from `bytes` of the project in `dir`: from its cache when there,
/// else compiled and cached (when the project has a key).
pub fn load(
    engine: &Engine,
    dir: &Path,
    bytes: &[u8],
) -> Result<Arc<CompiledPolicy>, portcullis_engine::LoadError> {
    let cache = Cache::of(dir, engine);
    if let Some(policy) = cache.as_ref().and_then(|c| c.load(engine, bytes)) {
        return Ok(policy);
    }
    let policy = engine.load(bytes)?;
    if let Some(cache) = cache {
        cache.store(engine, &policy);
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compiled_rule_is_reused_and_a_planted_artifact_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(portcullis_engine::EngineConfig::default()).unwrap();
        let bytes = std::fs::read(portcullis_artifacts::ALLOW_ALL).unwrap();
        // Without a key there is no cache.
        load(&engine, dir.path(), &bytes).unwrap();
        assert!(!dir.path().join("build").exists());
        let key = ArtifactKey::generate_text().unwrap();
        std::fs::write(dir.path().join("artifact.key"), &key).unwrap();
        let first = load(&engine, dir.path(), &bytes).unwrap();
        let cache = Cache::of(dir.path(), &engine).unwrap();
        let path = cache.path(&first.digest());
        assert!(path.is_file());
        drop(first);
        let fresh = Engine::new(portcullis_engine::EngineConfig::default()).unwrap();
        assert!(
            cache.load(&fresh, &bytes).is_some(),
            "the sealed artifact loads"
        );
        // A planted artifact (here: sealed with another key) is refused; the rule compiles.
        let other = ArtifactKey::from_text(&ArtifactKey::generate_text().unwrap()).unwrap();
        let policy = fresh.load(&bytes).unwrap();
        std::fs::write(&path, fresh.artifact(&policy, &other).unwrap()).unwrap();
        drop(policy);
        let third = Engine::new(portcullis_engine::EngineConfig::default()).unwrap();
        assert!(cache.load(&third, &bytes).is_none());
        assert!(load(&third, dir.path(), &bytes).is_ok());
        assert!(
            cache.load(&third, &bytes).is_some(),
            "and is rewritten sealed"
        );
    }
}
