//! The local stand-in for the HTTP API's JWT authorizer, over the one verifier the Lambdas
//! run ([`functions::jwt`]): what it adds is reading the bearer token, and saying why a token
//! is refused (for an unknown key, which keys the stack trusts and where they come from).
//! The same verifier, key cache included, serves the local WebSocket API's `ws-authorizer`.
//!
//! The rules are API Gateway's JWT authorizer's ("Control access to HTTP APIs with JWT
//! authorizers", API Gateway developer guide): signature against a JWKS, issuer, audience
//! (`aud`, or `client_id` in Cognito access tokens), `exp` after the current time, `nbf` and
//! `iat` (when present) not after it, with no leeway; and, as the deployed routes require
//! the scope `aws.cognito.signin.user.admin`, an access token carrying it (`token_use`
//! `access`): ID tokens are refused ([`functions::jwt::REQUIRED_SCOPE`]).
//!
//! The keys come either from a real Cognito user pool's JWKS URL (https; plain http only on
//! loopback), fetched at start and, like API Gateway, again when a token names a key the set
//! does not hold (here at most once a minute), or from the development key ([`dev_key`]).

mod dev_key;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use functions::clock::{Clock, SystemClock};
use functions::jwt::{Claims, JwksUrl, JwtVerifier, TokenError, VerifyError};

pub use dev_key::{
    DEV_CLIENT_ID, DEV_ISSUER, DEV_KEY_FILE_ENV, DevSigner, JWKS_PATH, StackKeys, default_key_file,
    stack_keys,
};

/// How often an unknown signing key may make the local stack fetch the JWKS again, for
/// both of its APIs (the deployed `ws-authorizer` allows it every 10 s).
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token refused: {0}")]
    Invalid(String),
    /// A valid token without the scope the routes require (an ID token): API Gateway
    /// answers 403 `{"message":"Forbidden"}` rather than 401.
    #[error("token refused: {0}")]
    Forbidden(String),
    /// The token's key is not among the keys this stack trusts: the usual reason is a token
    /// minted with another development key than the stack's.
    #[error(
        "token refused: signed with key {kid:?}, which this stack does not trust; it trusts {trusted:?} from {trusted_from}"
    )]
    UnknownKey {
        kid: Option<String>,
        trusted: Vec<String>,
        trusted_from: String,
    },
}

/// A JWKS URL the authorizer may fetch: `https`, or `http` to a loopback address (a local
/// stack or a test server): the rule the deployed `ws-authorizer` applies
/// ([`JwksUrl::parse`]).
pub fn jwks_url(url: &str) -> anyhow::Result<JwksUrl> {
    Ok(JwksUrl::parse(url)?)
}

/// Verifies bearer tokens like the HTTP API's JWT authorizer.
#[derive(Debug)]
pub struct Authorizer {
    verifier: Arc<JwtVerifier>,
    /// Where the trusted keys come from, for refusals of a token signed with another key.
    trusted_from: String,
}

impl Authorizer {
    /// Trusts development tokens from `signer`.
    pub fn for_dev(signer: &DevSigner) -> Self {
        Self::for_dev_with_clock(signer, Arc::new(SystemClock))
    }

    fn for_dev_with_clock(signer: &DevSigner, clock: Arc<dyn Clock>) -> Self {
        let verifier = JwtVerifier::new(Arc::new(signer.jwks()), DEV_ISSUER, DEV_CLIENT_ID)
            .with_min_refetch(JWKS_REFRESH_INTERVAL)
            .with_clock(clock);
        Self::new(Arc::new(verifier), describe_dev_key(signer.path()))
    }

    /// Trusts tokens of a real user pool: fetches its JWKS now, and again when a token names
    /// a key it does not hold (at most once per [`JWKS_REFRESH_INTERVAL`]).
    pub async fn from_jwks_url(url: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        Self::from_jwks_url_with_clock(url, issuer, audience, Arc::new(SystemClock)).await
    }

    async fn from_jwks_url_with_clock(
        url: &str,
        issuer: &str,
        audience: &str,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let url = jwks_url(url)?;
        let trusted_from = describe_user_pool(&url);
        let verifier = JwtVerifier::new(Arc::new(url), issuer, audience)
            .with_min_refetch(JWKS_REFRESH_INTERVAL)
            .with_clock(clock);
        // Now rather than at the first request: a wrong URL stops `cruddur dev` at start.
        verifier.fetch_keys().await?;
        Ok(Self::new(Arc::new(verifier), trusted_from))
    }

    fn new(verifier: Arc<JwtVerifier>, trusted_from: String) -> Self {
        Self {
            verifier,
            trusted_from,
        }
    }

    /// The verifier behind it, for the WebSocket API's authorizer: one key cache per stack.
    pub fn verifier(&self) -> &Arc<JwtVerifier> {
        &self.verifier
    }

    /// The verified claims of the `Authorization` header's bearer token, as strings (the
    /// shape API Gateway puts in `requestContext.authorizer.jwt.claims`).
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Claims, AuthError> {
        let token = bearer_token(authorization).ok_or(AuthError::Missing)?;
        match self.verifier.verify(token).await {
            Ok(claims) => Ok(claims),
            Err(VerifyError::Refused(TokenError::Invalid(reason))) => {
                Err(AuthError::Invalid(reason))
            }
            Err(VerifyError::Refused(TokenError::Forbidden(reason))) => {
                Err(AuthError::Forbidden(reason))
            }
            Err(VerifyError::Refused(TokenError::UnknownKey(kid))) => Err(self.unknown_key(kid)),
            // Only a refetch for an unknown key can fail (the first fetch was at start): the
            // token still names a key the stack does not hold.
            Err(VerifyError::KeysUnavailable(error)) => {
                tracing::warn!(%error, "JWKS refresh failed");
                let kid = jsonwebtoken::decode_header(token)
                    .ok()
                    .and_then(|header| header.kid);
                Err(self.unknown_key(kid))
            }
        }
    }

    fn unknown_key(&self, kid: Option<String>) -> AuthError {
        AuthError::UnknownKey {
            kid,
            trusted: self.verifier.key_ids(),
            trusted_from: self.trusted_from.clone(),
        }
    }
}

/// The token of `Bearer <token>` (the scheme in any case), if there is one.
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    Some(token.trim()).filter(|token| scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
}

fn describe_dev_key(path: &Path) -> String {
    format!(
        "the development key {} (mint tokens with `cruddur token --key-file {}`)",
        path.display(),
        path.display()
    )
}

fn describe_user_pool(url: &JwksUrl) -> String {
    format!(
        "{url} (fetched again on an unknown key, at most once per {}s)",
        JWKS_REFRESH_INTERVAL.as_secs()
    )
}
