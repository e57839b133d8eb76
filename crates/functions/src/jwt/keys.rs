//! Where a verifier's key set comes from: fixed (the local stack's development key), or a
//! JWKS fetched over HTTP(S) as a user pool publishes it ([`fetch_jwks`], over
//! [`crate::https::get`]); `cruddur token` also uses it to ask a running stack which key it
//! trusts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hyper::StatusCode;
use jsonwebtoken::jwk::JwkSet;

/// The key set could not be fetched: an infrastructure failure, not a verdict on the token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not fetch the signing keys: {0}")]
pub struct KeysUnavailable(pub String);

pub type KeysFuture<'a> =
    Pin<Box<dyn Future<Output = Result<JwkSet, KeysUnavailable>> + Send + 'a>>;

/// Where a key set comes from.
pub trait KeySource: Send + Sync {
    fn fetch(&self) -> KeysFuture<'_>;
}

/// Fixed keys (the local stack's development key).
impl KeySource for JwkSet {
    fn fetch(&self) -> KeysFuture<'_> {
        let keys = self.clone();
        Box::pin(async move { Ok(keys) })
    }
}

/// A JWKS served over HTTPS, as a user pool publishes it at
/// `<issuer>/.well-known/jwks.json`.
#[derive(Debug, Clone)]
pub struct JwksUrl(pub String);

impl KeySource for JwksUrl {
    fn fetch(&self) -> KeysFuture<'_> {
        Box::pin(async move {
            fetch_jwks(&self.0)
                .await
                .map_err(|error| KeysUnavailable(error.to_string()))
        })
    }
}

/// A key set is small and its server close: waiting longer only holds up whoever asked.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why [`fetch_jwks`] has no key set, told apart so that a caller asking whether anything
/// serves keys at a URL can tell "nothing there" from "something else there".
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksFetchError {
    /// Nothing answered in full: refused, unreachable, not a URL, or too slow.
    #[error("{url}: {reason}")]
    NoAnswer { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url} is not a JWKS: {reason}")]
    NotAJwks { url: String, reason: String },
}

/// The JWKS at `url`, over https (or plain http: callers decide which URLs they trust).
pub async fn fetch_jwks(url: &str) -> Result<JwkSet, JwksFetchError> {
    let (status, body) = crate::https::get(url, None, FETCH_TIMEOUT)
        .await
        .map_err(|reason| JwksFetchError::NoAnswer {
            url: url.to_owned(),
            reason,
        })?;
    if !status.is_success() {
        return Err(JwksFetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    serde_json::from_slice(&body).map_err(|error| JwksFetchError::NotAJwks {
        url: url.to_owned(),
        reason: error.to_string(),
    })
}
