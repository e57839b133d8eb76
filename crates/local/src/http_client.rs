//! A minimal HTTP(S) GET, for fetching a JWKS (a user pool's, or a local stack's).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A key set is small and its server close: waiting longer only hangs whoever asked.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The body of a 2xx answer.
pub async fn get(url: &str) -> anyhow::Result<Bytes> {
    let (status, body) = get_any(url).await?;
    anyhow::ensure!(status.is_success(), "HTTP {status}");
    Ok(body)
}

/// Status and body of whatever the server answers; an error only when nothing answers.
pub async fn get_any(url: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let exchange = async {
        let response = client.get(url.parse()?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {TIMEOUT:?}"))?
}
