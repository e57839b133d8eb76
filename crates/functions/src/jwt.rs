//! Verifying Cognito tokens as API Gateway's JWT authorizer does: the signature against the
//! user pool's key set (JWKS), `exp`, `nbf` and `iat` without leeway, `iss`, the audience
//! (`aud`, or `client_id` in Cognito access tokens) and `token_use`.
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

pub use keys::{JwksFetchError, JwksUrl, KeySource, KeysFuture, KeysUnavailable, fetch_jwks};
pub use verifier::{AUDIENCE_ENV, ISSUER_ENV, JWKS_URL_ENV, JwtVerifier, VerifyError};

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
    check_client(&claims, audience).map_err(invalid)?;
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

/// The app client is `aud` (ID tokens) or `client_id` (access tokens); refresh tokens and
/// anything else Cognito might sign are not for calling APIs.
fn check_client(
    claims: &serde_json::Map<String, Value>,
    audience: &str,
) -> Result<(), &'static str> {
    let audience_matches = ["aud", "client_id"]
        .iter()
        .any(|name| claims.get(*name).and_then(Value::as_str) == Some(audience));
    if !audience_matches {
        return Err("wrong audience");
    }
    if !matches!(
        claims.get("token_use").and_then(Value::as_str),
        Some("access" | "id")
    ) {
        return Err("token_use is neither access nor id");
    }
    Ok(())
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
