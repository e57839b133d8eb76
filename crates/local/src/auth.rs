//! The local stand-in for the HTTP API's JWT authorizer, and a development token issuer.
//!
//! Verification is what API Gateway's JWT authorizer does ("Control access to HTTP APIs with
//! JWT authorizers", API Gateway developer guide): signature against a JWKS, issuer,
//! audience (`aud`, or `client_id` in Cognito access tokens), `exp` after the current time,
//! `nbf` and `iat` (when present) not after it. The guide allows no clock skew, so neither
//! does this: no leeway. Like API Gateway, a token signed with a key the JWKS does not hold
//! makes it fetch the JWKS again (here at most once a minute). `token_use` must be `access`
//! or `id`, as Cognito issues them.
//!
//! The keys come either from a real Cognito user pool's JWKS URL (https; plain http only on
//! loopback), or from a development key pair kept in one place per user (see
//! [`default_key_file`]), created by `cruddur dev` on first run, so that `cruddur token
//! <handle>` can mint tokens for seeded users from any directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::http::Uri;
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
/// Names the development key file, overriding the per-user default.
pub const DEV_KEY_FILE_ENV: &str = "CRUDDUR_DEV_KEY_FILE";
/// How often an unknown signing key may make the authorizer fetch the JWKS again.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Where a local stack publishes its development key, as a user pool does.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The development key's file: `$CRUDDUR_DEV_KEY_FILE`, else
/// `$XDG_CONFIG_HOME/cruddur/dev-signing-key.pk8`, else
/// `$HOME/.config/cruddur/dev-signing-key.pk8`. One key per user, wherever a command runs, so
/// `cruddur dev` and `cruddur token` agree from any directory (and across checkouts).
pub fn default_key_file() -> anyhow::Result<PathBuf> {
    key_file_from(|name| std::env::var_os(name)).with_context(|| {
        format!("no place for the development key: set {DEV_KEY_FILE_ENV}, XDG_CONFIG_HOME or HOME")
    })
}

fn key_file_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    // Empty values count as unset, as the XDG base directory specification says.
    let var = |name: &str| {
        env(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(file) = var(DEV_KEY_FILE_ENV) {
        return Some(file);
    }
    let config = var("XDG_CONFIG_HOME")
        .filter(|dir| dir.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".config")))?;
    Some(config.join("cruddur").join("dev-signing-key.pk8"))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token refused: {0}")]
    Invalid(String),
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

/// The development key pair: Ed25519, stored as PKCS#8.
pub struct DevSigner {
    pkcs8: Vec<u8>,
    public_key: Vec<u8>,
    key_id: String,
    path: PathBuf,
}

impl DevSigner {
    /// Reads the key at `path`, creating it (and its folder) on first use. For the stack,
    /// which owns the key; a token issuer uses [`DevSigner::load`].
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
        Self::from_pkcs8(pkcs8, path)
    }

    /// Reads the key at `path`; never creates one. A token signed with a key nobody trusts
    /// is worse than no token: it fails later, at the stack, with a bare 401.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let pkcs8 = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "no development key at {}: `cruddur dev` (or `make dev`) creates it on first \
                 run; a stack started with --key-file uses that file, so pass the same --key-file \
                 (or set {DEV_KEY_FILE_ENV})",
                path.display()
            ),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_pkcs8(pkcs8, path)
    }

    fn from_pkcs8(pkcs8: Vec<u8>, path: &Path) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 key", path.display()))?;
        let public_key = pair.public_key().as_ref().to_vec();
        // A stable id derived from the key, as JWKS consumers look keys up by `kid`.
        let key_id = URL_SAFE_NO_PAD.encode(&public_key[..12]);
        Ok(Self {
            pkcs8,
            public_key,
            key_id,
            path: path.to_owned(),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn path(&self) -> &Path {
        &self.path
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

/// A JWKS URL the authorizer may fetch: `https`, or `http` to a loopback address (a local
/// stack or a test server). Keys fetched in the clear from elsewhere could be anyone's.
pub fn jwks_url(url: &str) -> anyhow::Result<Uri> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    let host = uri.host().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if loopback => Ok(uri),
        _ => anyhow::bail!(
            "refusing JWKS URL {url}: keys must come over https (plain http only from a loopback address)"
        ),
    }
}

/// Where "now" comes from, in seconds since the epoch, so tests can move time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn unix_seconds(&self) -> u64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_seconds(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}

/// Where the trusted keys come from.
#[derive(Debug)]
enum KeySource {
    DevKey(PathBuf),
    Jwks {
        url: Uri,
        /// When the JWKS was last fetched: refreshes are at most one per interval.
        fetched_at: tokio::sync::Mutex<u64>,
    },
}

impl KeySource {
    fn describe(&self) -> String {
        match self {
            Self::DevKey(path) => format!(
                "the development key {} (mint tokens with `cruddur token --key-file {}`)",
                path.display(),
                path.display()
            ),
            Self::Jwks { url, .. } => format!(
                "{url} (fetched again on an unknown key, at most once per {}s)",
                JWKS_REFRESH_INTERVAL.as_secs()
            ),
        }
    }
}

/// Verifies bearer tokens like the HTTP API's JWT authorizer.
#[derive(Debug)]
pub struct Authorizer {
    keys: RwLock<JwkSet>,
    source: KeySource,
    issuer: String,
    audience: String,
    clock: Arc<dyn Clock>,
}

impl Authorizer {
    /// Trusts development tokens from `signer`.
    pub fn for_dev(signer: &DevSigner) -> Self {
        Self {
            keys: RwLock::new(signer.jwks()),
            source: KeySource::DevKey(signer.path().to_owned()),
            issuer: DEV_ISSUER.to_owned(),
            audience: DEV_CLIENT_ID.to_owned(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Trusts tokens of a real user pool: fetches its JWKS now, and again when a token names
    /// a key it does not hold (at most once per [`JWKS_REFRESH_INTERVAL`]).
    pub async fn from_jwks_url(url: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        Self::from_jwks_url_with_clock(url, issuer, audience, Arc::new(SystemClock)).await
    }

    pub async fn from_jwks_url_with_clock(
        url: &str,
        issuer: &str,
        audience: &str,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let url = jwks_url(url)?;
        let keys = fetch_jwks(&url).await?;
        Ok(Self {
            keys: RwLock::new(keys),
            source: KeySource::Jwks {
                url,
                fetched_at: tokio::sync::Mutex::new(clock.unix_seconds()),
            },
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            clock,
        })
    }

    /// The same authorizer reading time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The verified claims of the `Authorization` header's bearer token, as strings (the
    /// shape API Gateway puts in `requestContext.authorizer.jwt.claims`).
    pub async fn verify(
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
        // The same rules as `ws-authorizer` (functions::jwt), which the WebSocket API runs;
        // the key comes from here (refreshed on an unknown kid, refusals explained).
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let jwk = self.key_for(header.kid.as_deref()).await?;
        functions::jwt::verify_with_key(
            &jwk,
            &self.issuer,
            &self.audience,
            token,
            self.clock.unix_seconds(),
        )
        .map_err(|error| AuthError::Invalid(error.to_string()))
    }

    /// The key a token names, fetching the JWKS again (bounded) if it is unknown.
    async fn key_for(&self, kid: Option<&str>) -> Result<Jwk, AuthError> {
        if let Some(jwk) = self.find(kid) {
            return Ok(jwk);
        }
        if let KeySource::Jwks { url, fetched_at } = &self.source {
            // One refresh at a time; whoever waited may find the key already there.
            let mut fetched_at = fetched_at.lock().await;
            if let Some(jwk) = self.find(kid) {
                return Ok(jwk);
            }
            let now = self.clock.unix_seconds();
            if now.saturating_sub(*fetched_at) >= JWKS_REFRESH_INTERVAL.as_secs() {
                *fetched_at = now;
                match fetch_jwks(url).await {
                    Ok(keys) => {
                        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
                        if let Some(jwk) = self.find(kid) {
                            return Ok(jwk);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%url, error = %format!("{error:#}"), "JWKS refresh failed")
                    }
                }
            }
        }
        Err(AuthError::UnknownKey {
            kid: kid.map(str::to_owned),
            trusted: self.key_ids(),
            trusted_from: self.source.describe(),
        })
    }

    fn find(&self, kid: Option<&str>) -> Option<Jwk> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        match kid {
            Some(kid) => keys.find(kid).cloned(),
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        }
    }

    fn key_ids(&self) -> Vec<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.keys
            .iter()
            .filter_map(|key| key.common.key_id.clone())
            .collect()
    }
}

async fn fetch_jwks(url: &Uri) -> anyhow::Result<JwkSet> {
    let text = url.to_string();
    let body = crate::http_client::get(&text)
        .await
        .with_context(|| format!("fetching JWKS from {text}"))?;
    serde_json::from_slice(&body).with_context(|| format!("{text} is not a JWKS"))
}

/// What a local stack at `api_url` says about `signer`'s key, from the JWKS it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackKeys {
    /// Nothing answers there: no stack is running (or it listens elsewhere).
    NoStack,
    /// The stack publishes this key: it accepts the signer's tokens.
    Trusted,
    /// The stack publishes other development keys.
    OtherKeys(Vec<String>),
    /// The stack publishes no development key: it verifies a user pool's tokens.
    UserPool,
}

/// Asks the stack at `api_url` (e.g. `http://127.0.0.1:4567`) which key it trusts.
pub async fn stack_keys(api_url: &str, signer: &DevSigner) -> anyhow::Result<StackKeys> {
    let url = format!("{}{JWKS_PATH}", api_url.trim_end_matches('/'));
    let Ok((status, body)) = crate::http_client::get_any(&url).await else {
        return Ok(StackKeys::NoStack);
    };
    if status == hyper::StatusCode::NOT_FOUND {
        return Ok(StackKeys::UserPool);
    }
    anyhow::ensure!(status.is_success(), "{url} answered HTTP {status}");
    let keys: JwkSet =
        serde_json::from_slice(&body).with_context(|| format!("{url} is not a JWKS"))?;
    if keys.find(signer.key_id()).is_some() {
        return Ok(StackKeys::Trusted);
    }
    Ok(StackKeys::OtherKeys(
        keys.keys
            .iter()
            .filter_map(|key| key.common.key_id.clone())
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

    /// A clock the test moves by hand.
    #[derive(Debug)]
    struct ManualClock(AtomicU64);

    impl ManualClock {
        fn at(seconds: u64) -> Arc<Self> {
            Arc::new(Self(AtomicU64::new(seconds)))
        }
        fn set(&self, seconds: u64) {
            self.0.store(seconds, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn unix_seconds(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    /// A development access token with `overrides` applied to its claims.
    fn token_with(signer: &DevSigner, overrides: Value) -> String {
        let mut claims = serde_json::json!({
            "sub": "sub-1", "iss": DEV_ISSUER, "client_id": DEV_CLIENT_ID,
            "token_use": "access", "exp": jsonwebtoken::get_current_timestamp() + 60,
        });
        for (name, value) in overrides.as_object().unwrap() {
            claims[name] = value.clone();
        }
        signer.sign(&claims).unwrap()
    }

    #[tokio::test]
    async fn minted_tokens_verify_with_their_claims() {
        let (_dir, signer) = signer();
        let token = signer
            .mint("sub-1", "andrewbrown", Duration::from_secs(60))
            .unwrap();
        let claims = Authorizer::for_dev(&signer)
            .verify(Some(&bearer(&token)))
            .await
            .unwrap();
        assert_eq!(claims["sub"], "sub-1");
        assert_eq!(claims["username"], "andrewbrown");
        assert_eq!(claims["client_id"], DEV_CLIENT_ID);
        assert!(claims["exp"].parse::<u64>().is_ok());
    }

    #[tokio::test]
    async fn the_key_is_kept_between_runs() {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("nested/key.pk8");
        let first = DevSigner::load_or_create(&path).unwrap();
        let token = first.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
        let second = DevSigner::load_or_create(&path).unwrap();
        assert_eq!(second.key_id(), first.key_id());
        let loaded = DevSigner::load(&path).unwrap();
        assert_eq!(loaded.key_id(), first.key_id());
        assert!(
            Authorizer::for_dev(&second)
                .verify(Some(&bearer(&token)))
                .await
                .is_ok()
        );
    }

    #[test]
    fn minting_never_creates_a_key() {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("cruddur/dev-signing-key.pk8");
        let error = DevSigner::load(&path).err().expect("no key to load");
        let message = format!("{error:#}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("cruddur dev"), "{message}");
        assert!(!path.exists() && !path.parent().unwrap().exists());
    }

    #[test]
    fn the_development_key_lives_in_one_place_per_user_not_in_the_working_directory() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        assert_eq!(
            key_file_from(env(&[
                (DEV_KEY_FILE_ENV, "/keys/mine.pk8"),
                ("XDG_CONFIG_HOME", "/xdg"),
                ("HOME", "/home/me"),
            ])),
            Some(PathBuf::from("/keys/mine.pk8"))
        );
        assert_eq!(
            key_file_from(env(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/me")])),
            Some(PathBuf::from("/xdg/cruddur/dev-signing-key.pk8"))
        );
        // A relative XDG_CONFIG_HOME is invalid by the spec (and would depend on the cwd).
        for xdg in ["", "relative/dir"] {
            let vars: &'static [(&str, &str)] = if xdg.is_empty() {
                &[("XDG_CONFIG_HOME", ""), ("HOME", "/home/me")]
            } else {
                &[("XDG_CONFIG_HOME", "relative/dir"), ("HOME", "/home/me")]
            };
            assert_eq!(
                key_file_from(env(vars)),
                Some(PathBuf::from(
                    "/home/me/.config/cruddur/dev-signing-key.pk8"
                )),
                "XDG_CONFIG_HOME={xdg:?}"
            );
        }
        assert_eq!(key_file_from(env(&[])), None);
    }

    #[tokio::test]
    async fn bad_tokens_are_refused() {
        let (_dir, signer) = signer();
        let (_other_dir, other) = super::tests::signer();
        let authorizer = Authorizer::for_dev(&signer);
        let good = signer.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
        let foreign = other.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
        let expired = token_with(&signer, serde_json::json!({"exp": 1_000_000_000u64}));
        let id_token = token_with(
            &signer,
            serde_json::json!({"token_use": "id", "aud": DEV_CLIENT_ID}),
        );
        let refresh_like = token_with(&signer, serde_json::json!({"token_use": "refresh"}));
        let mut tampered = good.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert_eq!(authorizer.verify(None).await, Err(AuthError::Missing));
        assert_eq!(
            authorizer.verify(Some("Bearer ")).await,
            Err(AuthError::Missing)
        );
        assert_eq!(
            authorizer.verify(Some(&format!("Basic {good}"))).await,
            Err(AuthError::Missing)
        );
        assert!(authorizer.verify(Some(&bearer(&id_token))).await.is_ok());
        for bad in [expired, tampered, refresh_like, "not.a.jwt".to_owned()] {
            assert!(
                matches!(
                    authorizer.verify(Some(&bearer(&bad))).await,
                    Err(AuthError::Invalid(_))
                ),
                "{bad}"
            );
        }
        // A token of another development key: refused, saying which key the stack trusts,
        // where it lives, and how to mint with it.
        let refusal = authorizer
            .verify(Some(&bearer(&foreign)))
            .await
            .unwrap_err();
        assert_eq!(
            refusal,
            AuthError::UnknownKey {
                kid: Some(other.key_id().to_owned()),
                trusted: vec![signer.key_id().to_owned()],
                trusted_from: KeySource::DevKey(signer.path().to_owned()).describe(),
            }
        );
        let message = refusal.to_string();
        assert!(message.contains(other.key_id()), "{message}");
        assert!(
            message.contains(&format!(
                "cruddur token --key-file {}",
                signer.path().display()
            )),
            "{message}"
        );

        let mut wrong_audience = Authorizer::for_dev(&signer);
        wrong_audience.audience = "someone-else".into();
        assert!(wrong_audience.verify(Some(&bearer(&good))).await.is_err());
        let mut wrong_issuer = Authorizer::for_dev(&signer);
        wrong_issuer.issuer = "https://elsewhere".into();
        assert!(wrong_issuer.verify(Some(&bearer(&good))).await.is_err());
    }

    #[tokio::test]
    async fn times_are_checked_without_leeway() {
        let (_dir, signer) = signer();
        // Real time first: a token that expired five seconds ago is refused (jsonwebtoken's
        // default leeway would take it for another 55 s; API Gateway would not).
        let now = jsonwebtoken::get_current_timestamp();
        let just_expired = token_with(&signer, serde_json::json!({"exp": now - 5}));
        assert_eq!(
            Authorizer::for_dev(&signer)
                .verify(Some(&bearer(&just_expired)))
                .await,
            Err(AuthError::Invalid("token expired (exp)".into()))
        );

        let t = 2_000_000_000u64;
        let clock = ManualClock::at(t);
        let authorizer = Authorizer::for_dev(&signer).with_clock(clock.clone());
        let verdict = |claims: Value| {
            let token = token_with(&signer, claims);
            let authorizer = &authorizer;
            async move {
                authorizer
                    .verify(Some(&bearer(&token)))
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            }
        };
        assert_eq!(verdict(serde_json::json!({"exp": t + 1})).await, Ok(()));
        assert_eq!(
            verdict(serde_json::json!({"exp": t})).await,
            Err("token refused: token expired (exp)".into()),
            "exp must be after now"
        );
        assert_eq!(
            verdict(serde_json::json!({"exp": t + 60, "nbf": t, "iat": t})).await,
            Ok(())
        );
        assert_eq!(
            verdict(serde_json::json!({"exp": t + 60, "nbf": t + 1})).await,
            Err("token refused: token not valid yet (nbf)".into())
        );
        assert_eq!(
            verdict(serde_json::json!({"exp": t + 60, "iat": t + 1})).await,
            Err("token refused: token issued in the future (iat)".into())
        );
        assert_eq!(
            verdict(serde_json::json!({"exp": t + 60, "nbf": "soon"})).await,
            Err("token refused: nbf is not a time".into())
        );
        clock.set(t + 61);
        assert!(verdict(serde_json::json!({"exp": t + 60})).await.is_err());
    }

    #[tokio::test]
    async fn jwks_urls_must_be_https_except_on_loopback() {
        for allowed in [
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC/.well-known/jwks.json",
            "http://127.0.0.1:4567/.well-known/jwks.json",
            "http://127.8.9.10/jwks.json",
            "http://localhost:8080/jwks.json",
            "http://[::1]:8080/jwks.json",
        ] {
            assert!(jwks_url(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "http://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/jwks.json",
            "http://10.0.0.5/jwks.json",
            "http://localhost.example.com/jwks.json",
            "ftp://127.0.0.1/jwks.json",
            "/.well-known/jwks.json",
            "not a url",
        ] {
            assert!(jwks_url(refused).is_err(), "{refused}");
        }
        // Refused before anything is fetched.
        let error = Authorizer::from_jwks_url("http://example.com/jwks.json", "i", "a")
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("https"), "{error:#}");
    }

    /// A JWKS served on loopback, counting fetches; the test changes the keys it publishes.
    struct JwksServer {
        url: String,
        keys: Arc<Mutex<JwkSet>>,
        fetches: Arc<AtomicUsize>,
    }

    use std::sync::Mutex;

    impl JwksServer {
        async fn start(keys: JwkSet) -> Self {
            let keys = Arc::new(Mutex::new(keys));
            let fetches = Arc::new(AtomicUsize::new(0));
            let (served, counted) = (keys.clone(), fetches.clone());
            let app = axum::Router::new().route(
                JWKS_PATH,
                axum::routing::get(move || {
                    let (served, counted) = (served.clone(), counted.clone());
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        axum::Json(served.lock().unwrap().clone())
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}{JWKS_PATH}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            Self { url, keys, fetches }
        }

        fn publish(&self, keys: JwkSet) {
            *self.keys.lock().unwrap() = keys;
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    fn both(a: &DevSigner, b: &DevSigner) -> JwkSet {
        JwkSet {
            keys: [a.jwks().keys, b.jwks().keys].concat(),
        }
    }

    #[tokio::test]
    async fn an_unknown_key_refreshes_the_jwks_at_most_once_a_minute() {
        let (_a_dir, old) = signer();
        let (_b_dir, rotated) = signer();
        let (_c_dir, stranger) = signer();
        let server = JwksServer::start(old.jwks()).await;
        let t = 2_000_000_000u64;
        let clock = ManualClock::at(t);
        let authorizer = Authorizer::from_jwks_url_with_clock(
            &server.url,
            DEV_ISSUER,
            DEV_CLIENT_ID,
            clock.clone(),
        )
        .await
        .unwrap();
        assert_eq!(server.fetches(), 1, "fetched at start");
        let token =
            |signer: &DevSigner| bearer(&token_with(signer, serde_json::json!({"exp": t + 3600})));
        assert!(authorizer.verify(Some(&token(&old))).await.is_ok());

        // The pool rotates its keys; a token of the new key arrives 10 s after the start
        // fetch: too soon to fetch again.
        server.publish(both(&old, &rotated));
        clock.set(t + 10);
        assert!(matches!(
            authorizer.verify(Some(&token(&rotated))).await,
            Err(AuthError::UnknownKey { .. })
        ));
        assert_eq!(server.fetches(), 1);

        // A minute after the last fetch, the unknown key makes it fetch again, once.
        clock.set(t + 60);
        assert!(authorizer.verify(Some(&token(&rotated))).await.is_ok());
        assert!(authorizer.verify(Some(&token(&old))).await.is_ok());
        assert_eq!(server.fetches(), 2);

        // Tokens of a key nobody publishes cannot make it fetch more than once a minute.
        for second in [61, 90, 119] {
            clock.set(t + second);
            let refusal = authorizer.verify(Some(&token(&stranger))).await;
            let Err(AuthError::UnknownKey {
                kid,
                trusted,
                trusted_from,
            }) = refusal
            else {
                panic!("{refusal:?}");
            };
            assert_eq!(kid.as_deref(), Some(stranger.key_id()));
            assert_eq!(trusted.len(), 2);
            assert!(trusted_from.contains(&server.url), "{trusted_from}");
        }
        assert_eq!(server.fetches(), 2);
        clock.set(t + 120);
        assert!(authorizer.verify(Some(&token(&stranger))).await.is_err());
        assert_eq!(server.fetches(), 3);
    }
}
