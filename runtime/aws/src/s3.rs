//! The S3 rule store: the engine's [`ObjectStore`] over one bucket and prefix. Reads are
//! conditional (`If-None-Match`; S3's 304 reaches the SDK as an unhandled service error with
//! raw status 304, and is answered as `NotModified`), writes are conditional (`If-Match`,
//! `If-None-Match: *`; a 412 or 409 is `PreconditionFailed`), and every operation is bounded
//! by a timeout. [`S3Capture`] writes captures for replay encrypted with a KMS key.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use portcullis_gate::backend::BackendError;
use portcullis_gate::capture::CaptureSink;
use portcullis_gate::store::{
    BoxFuture, Fetched, MAX_OBJECT_BYTES, ObjectStore, PutIf, StoreError,
};

/// An S3 client for `config`; path-style addressing when an endpoint is overridden (local
/// S3-compatible servers).
pub fn client(config: &aws_config::SdkConfig) -> Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    Client::from_conf(builder.build())
}

/// Objects in `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
    prefix: String,
    timeout: Duration,
}

impl S3Objects {
    /// The store at `s3://bucket/prefix`.
    pub fn new(client: Client, bucket: &str, prefix: &str, timeout: Duration) -> S3Objects {
        let prefix = prefix.trim_matches('/');
        S3Objects {
            client,
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            timeout,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn bounded<T>(
        &self,
        key: &str,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(StoreError::Timeout(self.key(key))))
    }
}

fn status<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

fn failed<E: std::error::Error + 'static>(
    op: &'static str,
    key: &str,
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError {
    StoreError::Io {
        op,
        key: key.to_owned(),
        message: aws_sdk_s3::error::DisplayErrorContext(error).to_string(),
    }
}

impl ObjectStore for S3Objects {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        if_none_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Fetched, StoreError>> {
        Box::pin(self.bounded(key, async move {
            let full = self.key(key);
            let sent = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&full)
                .set_if_none_match(if_none_match.map(str::to_owned))
                .send()
                .await;
            match sent {
                Ok(output) => {
                    // The size before the body: a huge object is refused unread.
                    let length = output.content_length().unwrap_or(0);
                    if usize::try_from(length).map_or(true, |n| n > MAX_OBJECT_BYTES) {
                        return Err(StoreError::TooLarge {
                            key: full,
                            bytes: u64::try_from(length).unwrap_or(0),
                        });
                    }
                    let etag = output.e_tag().unwrap_or_default().to_owned();
                    let bytes = output
                        .body
                        .collect()
                        .await
                        .map_err(|e| StoreError::Io {
                            op: "read",
                            key: full.clone(),
                            message: e.to_string(),
                        })?
                        .into_bytes()
                        .to_vec();
                    Ok(Fetched::Found { bytes, etag })
                }
                Err(error) => match status(&error) {
                    Some(304) => Ok(Fetched::NotModified),
                    Some(404) => Ok(Fetched::NotFound),
                    _ => Err(failed("get", &full, error)),
                },
            }
        }))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        condition: PutIf,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(self.bounded(key, async move {
            let full = self.key(key);
            let mut request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .body(ByteStream::from(bytes));
            request = match condition {
                PutIf::Always => request,
                PutIf::Absent => request.if_none_match("*"),
                PutIf::Matches(etag) => request.if_match(etag),
            };
            match request.send().await {
                Ok(output) => Ok(output.e_tag().unwrap_or_default().to_owned()),
                Err(error) => match status(&error) {
                    Some(412 | 409) => Err(StoreError::PreconditionFailed(full)),
                    _ => Err(failed("put", &full, error)),
                },
            }
        }))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(self.bounded(prefix, async move {
            let full = self.key(prefix);
            let mut keys = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&full)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| failed("list", &full, e))?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key()?.strip_prefix(&self.prefix).map(str::to_owned)),
                );
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => {
                        token = Some(next.to_owned())
                    }
                    _ => break,
                }
            }
            keys.sort();
            Ok(keys)
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.bounded(key, async move {
            let full = self.key(key);
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map(drop)
                .map_err(|e| failed("delete", &full, e))
        }))
    }
}

/// Captures for replay in S3 (`<prefix>/capture/…`), each object encrypted with a KMS key
/// (SSE-KMS): reading one takes `kms:Decrypt` on that key as well as the object.
#[derive(Debug, Clone)]
pub struct S3Capture {
    objects: S3Objects,
    kms_key: Option<String>,
}

impl S3Capture {
    /// Captures under `objects`' prefix, encrypted with `kms_key` (the bucket's default KMS
    /// key when `None`).
    pub fn new(objects: S3Objects, kms_key: Option<String>) -> S3Capture {
        S3Capture { objects, kms_key }
    }
}

impl CaptureSink for S3Capture {
    fn put<'a>(&'a self, key: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let full = self.objects.key(key);
            let client = &self.objects.client;
            let request = client
                .put_object()
                .bucket(&self.objects.bucket)
                .key(&full)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(self.kms_key.clone())
                .body(ByteStream::from(bytes));
            match tokio::time::timeout(self.objects.timeout, request.send()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(BackendError::Call {
                    operation: "s3 PutObject (capture)",
                    source: Box::new(error),
                }),
                Err(_) => Err(BackendError::Timeout {
                    operation: "s3 PutObject (capture)",
                    after: self.objects.timeout,
                }),
            }
        })
    }
}
