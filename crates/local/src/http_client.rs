//! A minimal HTTPS GET, for fetching a user pool's JWKS.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub async fn get(url: &str) -> anyhow::Result<Bytes> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = client.get(url.parse()?).await?;
    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
    Ok(response.into_body().collect().await?.to_bytes())
}
