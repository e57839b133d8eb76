//! The local stand-in for the HTTP API's JWT authorizer, and a development token issuer.
//!
//! Verification is what API Gateway's JWT authorizer does: signature against a JWKS,
//! `exp`, issuer, audience (`aud`, or `client_id` in Cognito access tokens) and
//! `token_use`. The keys come either from a real Cognito user pool's JWKS URL, or from a
//! development key pair generated on first run and kept in a git-ignored file, so that
//! `cruddur token <handle>` can mint tokens for seeded users.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// Issuer and client id of development tokens.
pub const DEV_ISSUER: &str = "https://cruddur.local/dev";
pub const DEV_CLIENT_ID: &str = "cruddur-local-dev";
/// Where `make dev` keeps the development key (git-ignored).
pub const DEFAULT_KEY_FILE: &str = ".cruddur/dev-signing-key.pk8";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token refused: {0}")]
    Invalid(String),
}

/// The development key pair: Ed25519, stored as PKCS#8.
pub struct DevSigner {
    pkcs8: Vec<u8>,
    public_key: Vec<u8>,
    key_id: String,
}

impl DevSigner {
    /// Reads the key at `path`, creating it (and its folder) on first use.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let pkcs8 = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| anyhow::anyhow!("could not generate a key pair"))?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                write_private(path, document.as_ref())
                    .with_context(|| format!("writing {}", path.display()))?;
                document.as_ref().to_vec()
            }
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 key", path.display()))?;
        let public_key = pair.public_key().as_ref().to_vec();
        // A stable id derived from the key, as JWKS consumers look keys up by `kid`.
        let key_id = URL_SAFE_NO_PAD.encode(&public_key[..12]);
        Ok(Self {
            pkcs8,
            public_key,
            key_id,
        })
    }

    /// A token shaped like a Cognito access token for `sub`.
    pub fn mint(&self, sub: &str, username: &str, valid_for: Duration) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "sub": sub,
            "iss": DEV_ISSUER,
            "client_id": DEV_CLIENT_ID,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "username": username,
            "auth_time": now,
            "iat": now,
            "exp": now + valid_for.as_secs(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        self.sign(&claims)
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        let key = EncodingKey::from_ed_der(&self.pkcs8);
        Ok(jsonwebtoken::encode(&header, claims, &key)?)
    }

    /// The public key as a JWKS, as a user pool publishes at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![Jwk {
                common: CommonParameters {
                    public_key_use: Some(PublicKeyUse::Signature),
                    key_algorithm: Some(KeyAlgorithm::EdDSA),
                    key_id: Some(self.key_id.clone()),
                    ..CommonParameters::default()
                },
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(&self.public_key),
                }),
            }],
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut file, bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Verifies bearer tokens like the HTTP API's JWT authorizer.
#[derive(Debug, Clone)]
pub struct Authorizer {
    keys: JwkSet,
    issuer: String,
    audience: String,
}

impl Authorizer {
    pub fn new(keys: JwkSet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// Trusts development tokens from `signer`.
    pub fn for_dev(signer: &DevSigner) -> Self {
        Self::new(signer.jwks(), DEV_ISSUER, DEV_CLIENT_ID)
    }

    /// Trusts tokens of a real user pool: fetches its JWKS once, at start.
    pub async fn from_jwks_url(url: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let body = crate::http_client::get(url)
            .await
            .with_context(|| format!("fetching JWKS from {url}"))?;
        let keys: JwkSet =
            serde_json::from_slice(&body).with_context(|| format!("{url} is not a JWKS"))?;
        Ok(Self::new(keys, issuer, audience))
    }

    /// The verified claims of the `Authorization` header's bearer token, as strings (the
    /// shape API Gateway puts in `requestContext.authorizer.jwt.claims`).
    pub fn verify(
        &self,
        authorization: Option<&str>,
    ) -> Result<HashMap<String, String>, AuthError> {
        let token = authorization
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        // The same rules as `ws-authorizer` (functions::jwt), which the WebSocket API runs.
        functions::jwt::verify(&self.keys, &self.issuer, &self.audience, token)
            .map_err(|error| AuthError::Invalid(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> (tempdir::Dir, DevSigner) {
        let dir = tempdir::Dir::new();
        let signer = DevSigner::load_or_create(&dir.path().join("key.pk8")).unwrap();
        (dir, signer)
    }

    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let path =
                    std::env::temp_dir().join(format!("cruddur-auth-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn minted_tokens_verify_with_their_claims() {
        let (_dir, signer) = signer();
        let token = signer
            .mint("sub-1", "andrewbrown", Duration::from_secs(60))
            .unwrap();
        let claims = Authorizer::for_dev(&signer)
            .verify(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(claims["sub"], "sub-1");
        assert_eq!(claims["username"], "andrewbrown");
        assert_eq!(claims["client_id"], DEV_CLIENT_ID);
        assert!(claims["exp"].parse::<u64>().is_ok());
    }

    #[test]
    fn the_key_is_kept_between_runs() {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("nested/key.pk8");
        let first = DevSigner::load_or_create(&path).unwrap();
        let token = first.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
        let second = DevSigner::load_or_create(&path).unwrap();
        assert!(
            Authorizer::for_dev(&second)
                .verify(Some(&format!("Bearer {token}")))
                .is_ok()
        );
    }

    #[test]
    fn bad_tokens_are_refused() {
        let (_dir, signer) = signer();
        let (_other_dir, other) = super::tests::signer();
        let authorizer = Authorizer::for_dev(&signer);
        let good = signer.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
        let foreign = other.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
        let claims = |overrides: Value| {
            let mut claims = serde_json::json!({
                "sub": "sub-1", "iss": DEV_ISSUER, "client_id": DEV_CLIENT_ID,
                "token_use": "access", "exp": jsonwebtoken::get_current_timestamp() + 60,
            });
            for (name, value) in overrides.as_object().unwrap() {
                claims[name] = value.clone();
            }
            signer.sign(&claims).unwrap()
        };
        let expired = claims(serde_json::json!({"exp": 1_000_000_000u64}));
        let id_token = claims(serde_json::json!({"token_use": "id", "aud": DEV_CLIENT_ID}));
        let refresh_like = claims(serde_json::json!({"token_use": "refresh"}));
        let mut tampered = good.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert_eq!(authorizer.verify(None), Err(AuthError::Missing));
        assert_eq!(authorizer.verify(Some("Bearer ")), Err(AuthError::Missing));
        assert_eq!(
            authorizer.verify(Some(&format!("Basic {good}"))),
            Err(AuthError::Missing)
        );
        assert!(
            authorizer
                .verify(Some(&format!("Bearer {id_token}")))
                .is_ok()
        );
        for bad in [
            foreign,
            expired,
            tampered,
            refresh_like,
            "not.a.jwt".to_owned(),
        ] {
            assert!(
                matches!(
                    authorizer.verify(Some(&format!("Bearer {bad}"))),
                    Err(AuthError::Invalid(_))
                ),
                "{bad}"
            );
        }
        let wrong_audience = Authorizer::new(signer.jwks(), DEV_ISSUER, "someone-else");
        assert!(
            wrong_audience
                .verify(Some(&format!("Bearer {good}")))
                .is_err()
        );
        let wrong_issuer = Authorizer::new(signer.jwks(), "https://elsewhere", DEV_CLIENT_ID);
        assert!(
            wrong_issuer
                .verify(Some(&format!("Bearer {good}")))
                .is_err()
        );
    }
}
