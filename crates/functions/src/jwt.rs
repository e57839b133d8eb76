//! Verifying Cognito tokens as API Gateway's JWT authorizer does: the signature against the
//! user pool's key set (JWKS), `exp`, `nbf` and `iat` without leeway, `iss`, the audience
//! (`aud`, or `client_id` in Cognito access tokens), and the route's scope
//! ([`REQUIRED_SCOPE`]); `token_use` must be `access`.
//!
//! Access tokens only: the HTTP API's routes require [`REQUIRED_SCOPE`]
//! (`AuthorizationScopes` in template.yaml), which Cognito writes into access tokens only,
//! so API Gateway refuses ID tokens, and so does this verifier (for the WebSocket API and
//! the local stack). API Gateway's own guide recommends scopes for exactly this: nothing
//! else tells an access token from an ID token signed by the same pool ("Control access to
//! HTTP APIs with JWT authorizers"). The original frontend sends the access token
//! (`signInUserSession.accessToken.jwtToken`, stored as `access_token`), and so does
//! `cruddur token`.
//!
//! The HTTP API has that authorizer built in; the WebSocket API does not, so `ws-authorizer`
//! runs [`JwtVerifier`]. The local stack runs the same verifier for both APIs (its stand-in
//! for the HTTP API's authorizer only adds bearer parsing and explanations): one set of
//! rules and one key cache everywhere.
//!
//! - this file: the rules, a pure function of the token, the keys and the time;
//! - [`keys`]: where key sets come from (fixed, or fetched over HTTP(S));
//! - [`verifier`]: the key set cached per warm environment, fetched again on an unknown key.

mod keys;
mod verifier;

use std::collections::HashMap;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

pub use keys::{
    InsecureJwksUrl, JwksFetchError, JwksUrl, KeySource, KeysFuture, KeysUnavailable,
    MAX_JWKS_BYTES, fetch_jwks,
};
pub use verifier::{AUDIENCE_ENV, ISSUER_ENV, JWKS_URL_ENV, JwtVerifier, VerifyError};

/// The scope every route requires: the one Cognito writes into the access tokens of a user
/// pool client's own sign-in (SRP, refresh), and never into an ID token.
pub const REQUIRED_SCOPE: &str = "aws.cognito.signin.user.admin";

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
    /// A valid token of the pool and client without the routes' scope (an ID token, say):
    /// API Gateway answers 403 where an invalid token gets 401.
    #[error("{0}")]
    Forbidden(String),
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
    let invalid = |reason: &str| TokenError::Invalid(reason.to_owned());
    let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e.to_string()))?;
    let jwk = signing_key(keys, header.kid.as_deref())?;
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
    check_client(&claims, audience)?;
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

/// The key a token's header names; a token without `kid` can only mean a set's only key.
fn signing_key<'a>(keys: &'a JwkSet, kid: Option<&str>) -> Result<&'a Jwk, TokenError> {
    match kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| TokenError::UnknownKey(kid.map(str::to_owned)))
}

/// The app client is `aud` or `client_id` (access tokens), as API Gateway reads it; the
/// token carries [`REQUIRED_SCOPE`] and is an access token. ID tokens, refresh tokens and
/// anything else Cognito might sign are not for calling these APIs.
fn check_client(claims: &serde_json::Map<String, Value>, audience: &str) -> Result<(), TokenError> {
    let audience_matches = ["aud", "client_id"]
        .iter()
        .any(|name| claims.get(*name).and_then(Value::as_str) == Some(audience));
    if !audience_matches {
        return Err(TokenError::Invalid("wrong audience".into()));
    }
    let token_use = claims.get("token_use").and_then(Value::as_str);
    if !scopes(claims).any(|scope| scope == REQUIRED_SCOPE) {
        let reason = match token_use {
            Some("id") => "an ID token: the API takes access tokens",
            _ => "the token lacks the scope the routes require",
        };
        return Err(TokenError::Forbidden(reason.into()));
    }
    if token_use != Some("access") {
        return Err(TokenError::Invalid("token_use is not access".into()));
    }
    Ok(())
}

/// The token's scopes, where API Gateway looks for them: `scope` (space-separated, as
/// Cognito writes it) or `scp` (a string or a list).
fn scopes(claims: &serde_json::Map<String, Value>) -> impl Iterator<Item = &str> {
    ["scope", "scp"]
        .into_iter()
        .filter_map(|name| claims.get(name))
        .flat_map(|value| match value {
            Value::String(text) => text.split_whitespace().collect::<Vec<_>>(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        })
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
