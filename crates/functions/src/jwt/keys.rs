//! Where a verifier's key set comes from: fixed (the local stack's development key), or a
//! JWKS fetched over HTTP(S) as a user pool publishes it ([`fetch_jwks`], over
//! [`crate::https::get`]); `cruddur token` also uses it to ask a running stack which key it
//! trusts.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use hyper::{StatusCode, Uri};
use jsonwebtoken::jwk::JwkSet;

use crate::https::GetError;

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
/// `<issuer>/.well-known/jwks.json`; plain http only from a loopback address (a local stack
/// or a test server). Keys fetched in the clear from elsewhere could be anyone's, and
/// whoever holds the keys decides who every caller is.
#[derive(Debug, Clone)]
pub struct JwksUrl(Uri);

/// A JWKS URL refused at configuration time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing JWKS URL {url:?}: {reason}; signing keys must come over https (plain http only from a loopback address)"
)]
pub struct InsecureJwksUrl {
    pub url: String,
    pub reason: &'static str,
}

impl JwksUrl {
    pub fn parse(url: &str) -> Result<Self, InsecureJwksUrl> {
        let refuse = |reason| InsecureJwksUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| refuse("not a URL"))?;
        let host = uri.host().unwrap_or("");
        if host.is_empty() {
            return Err(refuse("no host"));
        }
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback());
        match uri.scheme_str() {
            Some("https") => Ok(Self(uri)),
            Some("http") if loopback => Ok(Self(uri)),
            Some("http") => Err(refuse("plain http to a host that is not loopback")),
            _ => Err(refuse("neither https nor http")),
        }
    }

    pub fn uri(&self) -> &Uri {
        &self.0
    }
}

impl std::fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl KeySource for JwksUrl {
    fn fetch(&self) -> KeysFuture<'_> {
        Box::pin(async move {
            fetch_jwks(&self.0.to_string())
                .await
                .map_err(|error| KeysUnavailable(error.to_string()))
        })
    }
}

/// A key set is small and its server close: waiting longer only holds up whoever asked.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest JWKS read. A user pool publishes two RSA keys (under 2 KiB); a body past
/// this is refused, not buffered, whoever serves it.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why [`fetch_jwks`] has no key set, told apart so that a caller asking whether anything
/// serves keys at a URL can tell "nothing there" from "something else there".
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksFetchError {
    /// Nothing answered in full: refused, unreachable, not a URL, or too slow.
    #[error("{url}: {reason}")]
    NoAnswer { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url} answered with more than {limit} bytes, which no key set needs")]
    TooLarge { url: String, limit: usize },
    #[error("{url} is not a JWKS: {reason}")]
    NotAJwks { url: String, reason: String },
}

/// The JWKS at `url`, over https (or plain http: callers decide which URLs they trust,
/// [`JwksUrl`] for a verifier's), at most [`MAX_JWKS_BYTES`] of it.
pub async fn fetch_jwks(url: &str) -> Result<JwkSet, JwksFetchError> {
    let (status, body) = crate::https::get(url, None, FETCH_TIMEOUT, MAX_JWKS_BYTES)
        .await
        .map_err(|error| match error {
            GetError::NoAnswer(reason) => JwksFetchError::NoAnswer {
                url: url.to_owned(),
                reason,
            },
            GetError::TooLarge(limit) => JwksFetchError::TooLarge {
                url: url.to_owned(),
                limit,
            },
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
