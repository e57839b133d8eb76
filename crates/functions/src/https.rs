//! The workspace's one HTTP(S) GET: the JWKS fetch of the token verifier, and `cruddur
//! listen` re-fetching conversations. hyper with rustls and the system's roots; plain http
//! too, since callers decide which URLs they trust (DynamoDB Local's stack is on loopback).

use std::sync::LazyLock;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

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
/// when given) within `timeout`; the error says why nothing answered.
pub async fn get(
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), String> {
    let client = CLIENT.as_ref().map_err(Clone::clone)?;
    let mut request = hyper::Request::get(url);
    if let Some(token) = bearer {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}
