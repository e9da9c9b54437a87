//! The HTTP client behind rules' declared lookups ([`HyperClient`]): hyper over rustls
//! with the system's roots, HTTP/1.1, a pool of kept-alive connections across warm
//! invocations, no redirects followed, the response-size cap enforced while reading
//! (and from `Content-Length` before reading).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis_gate::data::lookups::{HttpClient, HttpRequest, LookupError, Method};
use portcullis_gate::store::BoxFuture;

/// How long an idle connection is kept for the next invocation.
const IDLE: Duration = Duration::from_secs(30);

/// HTTPS (and plain HTTP, where the allow-list names an `http://` origin) requests.
#[derive(Debug, Clone)]
pub struct HyperClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HyperClient {
    /// A client trusting the system's root certificates.
    pub fn new() -> Result<Self, std::io::Error> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .build(connector);
        Ok(HyperClient { client })
    }

    async fn exchange(&self, request: HttpRequest) -> Result<Vec<u8>, LookupError> {
        let transport = |what: &str| LookupError::Transport(what.to_owned());
        let mut builder = http::Request::builder()
            .method(match request.method {
                Method::Get => http::Method::GET,
                Method::Post => http::Method::POST,
            })
            .uri(request.url.as_str())
            .header(http::header::ACCEPT, "application/json");
        if request.body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in &request.headers {
            // Checked here, not by the builder: its error would not say which header.
            let value = http::HeaderValue::from_str(value).map_err(|_| {
                LookupError::Transport(format!("header `{name}` has an invalid value"))
            })?;
            builder = builder.header(name.as_str(), value);
        }
        let body = Full::new(Bytes::from(request.body.unwrap_or_default()));
        let sent = builder
            .body(body)
            .map_err(|_| transport("invalid request"))?;
        let response = self
            .client
            .request(sent)
            .await
            .map_err(|e| LookupError::Transport(error_kind(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(LookupError::Status(status.as_u16()));
        }
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > request.max_bytes) {
            return Err(LookupError::TooLarge(request.max_bytes));
        }
        let body = Limited::new(response.into_body(), request.max_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    LookupError::TooLarge(request.max_bytes)
                } else {
                    transport("reading the answer failed")
                }
            })?;
        Ok(body.to_bytes().to_vec())
    }
}

/// What kind of failure a client error is, without its text (which may carry the URL).
fn error_kind(error: &hyper_util::client::legacy::Error) -> String {
    if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the exchange failed".to_owned()
    }
}

impl HttpClient for HyperClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<Vec<u8>, LookupError>> {
        Box::pin(async move {
            let timeout = request.timeout;
            tokio::time::timeout(timeout, self.exchange(request))
                .await
                .map_err(|_| LookupError::Timeout(timeout))?
        })
    }
}
