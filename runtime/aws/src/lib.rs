//! Portcullis on AWS: the S3 rule store ([`s3::S3Objects`]), DynamoDB for rule data
//! ([`dynamo::DynamoData`]), sign-in activity and audit ([`dynamo::DynamoRecorder`]), and
//! the artifact key from Secrets Manager ([`keys::KeySource`]), and captures for replay
//! encrypted with KMS ([`s3::S3Capture`]).
//! Each implements a trait of the engine, which itself knows nothing of AWS.
//!
//! Clients are built from the usual AWS environment (region, credentials,
//! `AWS_ENDPOINT_URL` for local servers) by [`sdk_config`].

pub mod counters;
pub mod dynamo;
pub mod http;
pub mod iam;
pub mod keys;
pub mod s3;
pub mod secrets;

use std::sync::Arc;
use std::time::Duration;

use portcullis_gate::capture::{CaptureSink, StoreCapture};
use portcullis_gate::store::{DirStore, RuleStore};

/// The AWS configuration from the environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

/// A store URL that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("`{url}` is not a store URL: {problem}")]
pub struct BadStoreUrl {
    url: String,
    problem: &'static str,
}

/// Where a store URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `file://DIR` (or a plain path).
    Dir(std::path::PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
}

impl std::str::FromStr for StoreUrl {
    type Err = BadStoreUrl;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let bad = |problem| BadStoreUrl {
            url: url.to_owned(),
            problem,
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket (expected s3://bucket/prefix)"));
            }
            return Ok(StoreUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.is_empty() || url.contains("://") && !url.starts_with("file://") {
            return Err(bad("expected file://DIR or s3://bucket/prefix"));
        }
        Ok(StoreUrl::Dir(path.into()))
    }
}

impl StoreUrl {
    /// Opens the store, loading the AWS configuration only for S3; S3 operations time out
    /// after `timeout`.
    pub async fn open(&self, timeout: Duration) -> RuleStore {
        match self {
            StoreUrl::Dir(path) => RuleStore::new(Arc::new(DirStore::new(path))),
            StoreUrl::S3 { .. } => self.open_with(&sdk_config().await, timeout),
        }
    }

    /// Opens the store with an AWS configuration already loaded (one load per process).
    pub fn open_with(&self, aws: &aws_config::SdkConfig, timeout: Duration) -> RuleStore {
        match self {
            StoreUrl::Dir(path) => RuleStore::new(Arc::new(DirStore::new(path))),
            StoreUrl::S3 { bucket, prefix } => RuleStore::new(Arc::new(s3::S3Objects::new(
                s3::client(aws),
                bucket,
                prefix,
                timeout,
            ))),
        }
    }
}

impl StoreUrl {
    /// Where captures for replay go in this store: a directory store's `capture/`, or S3
    /// under the prefix encrypted with `kms_key` ([`s3::S3Capture`]).
    pub fn capture_sink(
        &self,
        aws: &aws_config::SdkConfig,
        timeout: Duration,
        kms_key: Option<String>,
    ) -> Arc<dyn CaptureSink> {
        match self {
            StoreUrl::Dir(path) => dir_capture(path),
            StoreUrl::S3 { bucket, prefix } => Arc::new(s3::S3Capture::new(
                s3::S3Objects::new(s3::client(aws), bucket, prefix, timeout),
                kms_key,
            )),
        }
    }
}

/// Captures for replay in a directory store's `capture/`.
pub fn dir_capture(path: &std::path::Path) -> Arc<dyn CaptureSink> {
    Arc::new(StoreCapture(Arc::new(DirStore::new(path))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            "s3://b/p/q/".parse::<StoreUrl>().unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            "file:///tmp/x".parse::<StoreUrl>().unwrap(),
            StoreUrl::Dir("/tmp/x".into())
        );
        assert_eq!(
            "rel/dir".parse::<StoreUrl>().unwrap(),
            StoreUrl::Dir("rel/dir".into())
        );
        for bad in ["s3://", "ftp://x", "file://"] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
    }
}
