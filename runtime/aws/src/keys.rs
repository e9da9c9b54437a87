//! Where the deployment's keys come from (the artifact key, the tenants' context keys): AWS
//! Secrets Manager (read once at cold start; the template creates the secret and grants
//! only the function read access) or a local key file (development, the demo, a platform
//! build that precompiles).

use std::path::PathBuf;
use std::time::Duration;

use portcullis_engine::ArtifactKey;
use portcullis_engine::artifact::WeakKey;

/// Where an artifact key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `file:PATH` (or a plain path): the file's text.
    File(PathBuf),
    /// `secretsmanager:ID`: the secret's string (ID is its name or ARN).
    SecretsManager(String),
}

/// An artifact key that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    /// The key file could not be read.
    #[error("reading key file `{path}`: {source}")]
    File {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Secrets Manager did not answer with the secret.
    #[error("reading key secret `{id}`: {message}")]
    Secret {
        /// The secret id.
        id: String,
        /// Why.
        message: String,
    },
    /// The key is too short.
    #[error("artifact key from `{source_name}`: {error}")]
    Weak {
        /// Where it came from.
        source_name: String,
        /// Why it is unusable.
        error: WeakKey,
    },
}

impl std::str::FromStr for KeySource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(id) = s.strip_prefix("secretsmanager:") {
            if id.is_empty() {
                return Err("`secretsmanager:` needs a secret name or ARN".into());
            }
            return Ok(KeySource::SecretsManager(id.to_owned()));
        }
        let path = s
            .strip_prefix("file://")
            .or_else(|| s.strip_prefix("file:"))
            .unwrap_or(s);
        if path.is_empty() {
            return Err("expected secretsmanager:ID, file:PATH or a path".into());
        }
        Ok(KeySource::File(path.into()))
    }
}

impl KeySource {
    /// Reads the key; Secrets Manager through `aws` (loaded only when needed), bounded by
    /// `timeout`.
    pub async fn load(
        &self,
        aws: impl AsyncFnOnce() -> aws_config::SdkConfig,
        timeout: Duration,
    ) -> Result<ArtifactKey, KeyLoadError> {
        let (name, text) = self.text(aws, timeout).await?;
        ArtifactKey::from_text(&text).map_err(|error| KeyLoadError::Weak {
            source_name: name,
            error,
        })
    }

    /// Reads the secret's text (and names where it came from), for secrets that are not
    /// an artifact key (the tenants' context keys).
    pub async fn text(
        &self,
        aws: impl AsyncFnOnce() -> aws_config::SdkConfig,
        timeout: Duration,
    ) -> Result<(String, String), KeyLoadError> {
        Ok(match self {
            KeySource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| KeyLoadError::File {
                    path: path.clone(),
                    source,
                })?;
                (path.display().to_string(), text)
            }
            KeySource::SecretsManager(id) => {
                let failed = |message: String| KeyLoadError::Secret {
                    id: id.clone(),
                    message,
                };
                let client = aws_sdk_secretsmanager::Client::new(&aws().await);
                let answer =
                    tokio::time::timeout(timeout, client.get_secret_value().secret_id(id).send())
                        .await
                        .map_err(|_| failed("timed out".into()))?
                        .map_err(|e| {
                            failed(
                                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
                            )
                        })?;
                let text = answer
                    .secret_string()
                    .ok_or_else(|| failed("the secret has no string value".into()))?;
                (id.clone(), text.to_owned())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            "secretsmanager:arn:aws:secretsmanager:eu-west-1:1:secret:k".parse::<KeySource>(),
            Ok(KeySource::SecretsManager(
                "arn:aws:secretsmanager:eu-west-1:1:secret:k".into()
            ))
        );
        assert_eq!(
            "file:/k".parse::<KeySource>(),
            Ok(KeySource::File("/k".into()))
        );
        assert_eq!(
            "k.key".parse::<KeySource>(),
            Ok(KeySource::File("k.key".into()))
        );
        assert!("secretsmanager:".parse::<KeySource>().is_err());
    }
}
