//! Verifying Cognito tokens as API Gateway's JWT authorizer does: the signature against the
//! user pool's key set (JWKS), `exp`, `iss`, the audience (`aud`, or `client_id` in Cognito
//! access tokens) and `token_use`.
//!
//! The HTTP API has that authorizer built in; the WebSocket API does not, so `ws-authorizer`
//! runs [`JwtVerifier`], and the local stack's stand-in for the HTTP API's authorizer calls
//! [`verify`] too: one set of rules everywhere.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

/// Verified claims as strings: the shape API Gateway puts in
/// `requestContext.authorizer.jwt.claims`.
pub type Claims = HashMap<String, String>;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Signed with a key the set does not hold (yet: user pools rotate keys).
    #[error("unknown signing key {0:?}")]
    UnknownKey(Option<String>),
    #[error("{0}")]
    Invalid(String),
}

/// Checks `token` against `keys`, the expected issuer and the app client id, at `now`
/// (seconds since the epoch).
pub fn verify(
    keys: &JwkSet,
    issuer: &str,
    audience: &str,
    token: &str,
    now: u64,
) -> Result<Claims, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| TokenError::UnknownKey(header.kid.clone()))?;
    verify_with_key(jwk, issuer, audience, token, now)
}

/// [`verify`] with the key already chosen (a caller that fetches keys its own way).
pub fn verify_with_key(
    jwk: &Jwk,
    issuer: &str,
    audience: &str,
    token: &str,
    now: u64,
) -> Result<Claims, TokenError> {
    let invalid = |reason: &str| TokenError::Invalid(reason.to_owned());
    let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e.to_string()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(&e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    // Times are checked below, against the caller's clock and without leeway, as API
    // Gateway's JWT authorizer does (jsonwebtoken allows 60 s by default, and does not look
    // at `nbf` or `iat`).
    validation.validate_exp = false;
    validation.validate_nbf = false;
    // Cognito access tokens carry the client in `client_id`, not `aud`: checked below.
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
        .map_err(|e| invalid(&e.to_string()))?
        .claims;
    check_times(&claims, now).map_err(invalid)?;
    let audience_matches = ["aud", "client_id"]
        .iter()
        .any(|name| claims.get(*name).and_then(Value::as_str) == Some(audience));
    if !audience_matches {
        return Err(invalid("wrong audience"));
    }
    if !matches!(
        claims.get("token_use").and_then(Value::as_str),
        Some("access" | "id")
    ) {
        return Err(invalid("token_use is neither access nor id"));
    }
    Ok(claims
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (name, text)
        })
        .collect())
}

/// `exp` must be after `now`; `nbf` and `iat`, when present, not after it. No leeway.
pub fn check_times(claims: &serde_json::Map<String, Value>, now: u64) -> Result<(), &'static str> {
    let time = |name: &str| claims.get(name).map(Value::as_f64);
    let now = now as f64;
    match time("exp") {
        Some(Some(exp)) if exp > now => {}
        Some(Some(_)) => return Err("token expired (exp)"),
        _ => return Err("exp is not a time"),
    }
    match time("nbf") {
        None => {}
        Some(Some(nbf)) if nbf <= now => {}
        Some(Some(_)) => return Err("token not valid yet (nbf)"),
        Some(None) => return Err("nbf is not a time"),
    }
    match time("iat") {
        None => {}
        Some(Some(iat)) if iat <= now => {}
        Some(Some(_)) => return Err("token issued in the future (iat)"),
        Some(None) => return Err("iat is not a time"),
    }
    Ok(())
}

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The key set could not be fetched: an infrastructure failure, not a verdict on the token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not fetch the signing keys: {0}")]
pub struct KeysUnavailable(pub String);

/// Why [`JwtVerifier::verify`] did not return claims.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    #[error("token refused: {0}")]
    Refused(TokenError),
    #[error(transparent)]
    KeysUnavailable(#[from] KeysUnavailable),
}

type KeysFuture<'a> = Pin<Box<dyn Future<Output = Result<JwkSet, KeysUnavailable>> + Send + 'a>>;

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

/// A key set is small and its server close: waiting longer only holds up the connection.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

impl KeySource for JwksUrl {
    fn fetch(&self) -> KeysFuture<'_> {
        Box::pin(async move {
            let unavailable = |reason: String| KeysUnavailable(format!("{}: {reason}", self.0));
            let body = tokio::time::timeout(FETCH_TIMEOUT, https_get(&self.0))
                .await
                .map_err(|_| unavailable(format!("no answer within {FETCH_TIMEOUT:?}")))?
                .map_err(unavailable)?;
            serde_json::from_slice(&body).map_err(|e| unavailable(format!("not a JWKS: {e}")))
        })
    }
}

async fn https_get(url: &str) -> Result<hyper::body::Bytes, String> {
    use http_body_util::{BodyExt, Empty};
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Empty<hyper::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
    let response = client.get(uri).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes())
}

/// A verifier for one user pool and app client, with the key set fetched once per warm
/// execution environment and fetched again when a token names a key it does not hold
/// (the pool rotated its keys), at most once per [`JwtVerifier::MIN_REFETCH`] so that
/// forged `kid`s cannot turn every connection attempt into a fetch.
pub struct JwtVerifier {
    source: Arc<dyn KeySource>,
    issuer: String,
    audience: String,
    min_refetch: Duration,
    keys: tokio::sync::RwLock<Option<(Arc<JwkSet>, Instant)>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Configuration of [`JwtVerifier::from_env`].
pub const ISSUER_ENV: &str = "JWT_ISSUER";
pub const AUDIENCE_ENV: &str = "JWT_AUDIENCE";
/// Optional; defaults to `<issuer>/.well-known/jwks.json`, where Cognito publishes it.
pub const JWKS_URL_ENV: &str = "JWKS_URL";

impl JwtVerifier {
    pub const MIN_REFETCH: Duration = Duration::from_secs(10);

    pub fn new(
        source: Arc<dyn KeySource>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            source,
            issuer: issuer.into(),
            audience: audience.into(),
            min_refetch: Self::MIN_REFETCH,
            keys: tokio::sync::RwLock::new(None),
        }
    }

    /// How soon after a fetch an unknown key may trigger another (tests use zero).
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> Self {
        self.min_refetch = min_refetch;
        self
    }

    /// A user pool's verifier from `JWT_ISSUER`, `JWT_AUDIENCE` and optionally `JWKS_URL`.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| format!("{name} is not set"))
        };
        let issuer = var(ISSUER_ENV)?;
        let audience = var(AUDIENCE_ENV)?;
        let url = var(JWKS_URL_ENV)
            .unwrap_or_else(|_| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
        Ok(Self::new(Arc::new(JwksUrl(url)), issuer, audience))
    }

    /// The token's verified claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let (keys, fetched_at) = self.keys(None).await?;
        match verify(&keys, &self.issuer, &self.audience, token, unix_now()) {
            Err(TokenError::UnknownKey(kid)) if fetched_at.elapsed() >= self.min_refetch => {
                let (keys, _) = self.keys(Some(fetched_at)).await?;
                verify(&keys, &self.issuer, &self.audience, token, unix_now()).map_err(|error| {
                    tracing::info!(?kid, "token signed with a key the pool does not publish");
                    VerifyError::Refused(error)
                })
            }
            result => result.map_err(VerifyError::Refused),
        }
    }

    /// The cached key set, fetched when there is none or when the cached one is the one
    /// fetched at `stale` (another caller may have refreshed it meanwhile).
    async fn keys(
        &self,
        stale: Option<Instant>,
    ) -> Result<(Arc<JwkSet>, Instant), KeysUnavailable> {
        if let Some((keys, at)) = self.keys.read().await.as_ref()
            && Some(*at) != stale
        {
            return Ok((keys.clone(), *at));
        }
        let mut cached = self.keys.write().await;
        if let Some((keys, at)) = cached.as_ref()
            && Some(*at) != stale
        {
            return Ok((keys.clone(), *at));
        }
        let keys = Arc::new(self.source.fetch().await?);
        let at = Instant::now();
        *cached = Some((keys.clone(), at));
        Ok((keys, at))
    }
}
