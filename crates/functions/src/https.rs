//! The workspace's one HTTP(S) GET: the JWKS fetch of the token verifier, and `cruddur
//! listen` re-fetching conversations. hyper with rustls and the system's roots; plain http
//! too, since callers decide which URLs they trust (DynamoDB Local's stack is on loopback).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Status and body of whatever answers `GET url` (with `Authorization: Bearer <bearer>`
/// when given) within `timeout`; the error says why nothing answered.
pub async fn get(
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
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
