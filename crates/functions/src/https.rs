//! The workspace's one HTTP(S) GET: the JWKS fetch of the token verifier, and `cruddur
//! listen` re-fetching conversations. hyper with rustls and the system's roots; plain http
//! too, since callers decide which URLs they trust (DynamoDB Local's stack is on loopback).
//! Every caller names the largest body it will read: whoever answers decides how much it
//! sends, and a body past the caller's limit is an error, never an allocation.

use std::sync::LazyLock;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Why [`get`] has no body to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// Nothing answered in full: refused, unreachable, not a URL, or too slow.
    #[error("{0}")]
    NoAnswer(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
}

/// Built on first use and kept: reading the system's root certificates is file I/O. No
/// idle connections are kept: callers run on different Tokio runtimes (each test has its
/// own), and a pooled connection's task dies with the runtime that made it.
static CLIENT: LazyLock<Result<HttpsClient, String>> = LazyLock::new(|| {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector))
});

/// Status and body of whatever answers `GET url` (with `Authorization: Bearer <bearer>`
/// when given) within `timeout`; the error says why nothing answered, or that the body is
/// longer than `max_body` bytes (refused from its `Content-Length`, else once that many
/// bytes have arrived: the rest is never read).
pub async fn get(
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
    max_body: usize,
) -> Result<(StatusCode, Bytes), GetError> {
    let no_answer = |reason: String| GetError::NoAnswer(reason);
    let client = CLIENT.as_ref().map_err(|e| no_answer(e.clone()))?;
    let mut request = hyper::Request::get(url);
    if let Some(token) = bearer {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| no_answer(e.to_string()))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| no_answer(e.to_string()))?;
        let status = response.status();
        let declared = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body as u64) {
            return Err(GetError::TooLarge(max_body));
        }
        let body = Limited::new(response.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    GetError::TooLarge(max_body)
                } else {
                    no_answer(e.to_string())
                }
            })?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| no_answer(format!("no answer within {timeout:?}")))?
}
