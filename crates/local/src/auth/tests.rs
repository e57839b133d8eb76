//! The authorizer's refusals and its key refreshes, over development keys and a JWKS served
//! on loopback; helpers shared with the development key's tests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::*;

pub(super) fn signer() -> (Dir, DevSigner) {
    let dir = Dir::new();
    let signer = DevSigner::load_or_create(&dir.path().join("key.pk8")).unwrap();
    (dir, signer)
}

/// A scratch folder, removed when dropped.
pub(super) struct Dir(std::path::PathBuf);

impl Dir {
    pub(super) fn new() -> Self {
        let path = std::env::temp_dir().join(format!("cruddur-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(super) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A clock the test moves by hand; its monotonic reading moves with its wall-clock one.
#[derive(Debug)]
struct ManualClock {
    start_seconds: u64,
    start: Instant,
    seconds: AtomicU64,
}

impl ManualClock {
    fn at(seconds: u64) -> Arc<Self> {
        Arc::new(Self {
            start_seconds: seconds,
            start: Instant::now(),
            seconds: AtomicU64::new(seconds),
        })
    }

    fn set(&self, seconds: u64) {
        self.seconds.store(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_secs(self.unix_seconds().saturating_sub(self.start_seconds))
    }

    fn unix_seconds(&self) -> u64 {
        self.seconds.load(Ordering::SeqCst)
    }
}

pub(super) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A development access token with `overrides` applied to its claims.
fn token_with(signer: &DevSigner, overrides: Value) -> String {
    let mut claims = serde_json::json!({
        "sub": "sub-1", "iss": DEV_ISSUER, "client_id": DEV_CLIENT_ID,
        "token_use": "access", "scope": functions::jwt::REQUIRED_SCOPE,
        "exp": jsonwebtoken::get_current_timestamp() + 60,
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
async fn bad_tokens_are_refused() {
    let (_dir, signer) = signer();
    let (_other_dir, other) = self::signer();
    let authorizer = Authorizer::for_dev(&signer);
    let good = signer.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
    let foreign = other.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
    let expired = token_with(&signer, serde_json::json!({"exp": 1_000_000_000u64}));
    let id_token = token_with(
        &signer,
        serde_json::json!({"token_use": "id", "aud": DEV_CLIENT_ID, "scope": null}),
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
    // The deployed routes require a scope only access tokens carry: an ID token of the same
    // pool and client is refused, with the reason in the log.
    assert_eq!(
        authorizer.verify(Some(&bearer(&id_token))).await,
        Err(AuthError::Forbidden(
            "an ID token: the API takes access tokens".into()
        ))
    );
    let unscoped = token_with(&signer, serde_json::json!({"scope": "openid email"}));
    assert_eq!(
        authorizer.verify(Some(&bearer(&unscoped))).await,
        Err(AuthError::Forbidden(
            "the token lacks the scope the routes require".into()
        ))
    );
    let scp_list = token_with(
        &signer,
        serde_json::json!({"scope": null, "scp": ["openid", functions::jwt::REQUIRED_SCOPE]}),
    );
    assert!(authorizer.verify(Some(&bearer(&scp_list))).await.is_ok());
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
            trusted_from: describe_dev_key(signer.path()),
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

    let expecting = |issuer: &str, audience: &str| {
        let verifier = JwtVerifier::new(Arc::new(signer.jwks()), issuer, audience);
        Authorizer::new(Arc::new(verifier), describe_dev_key(signer.path()))
    };
    let wrong_audience = expecting(DEV_ISSUER, "someone-else");
    assert!(wrong_audience.verify(Some(&bearer(&good))).await.is_err());
    let wrong_issuer = expecting("https://elsewhere", DEV_CLIENT_ID);
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
    let authorizer = Authorizer::for_dev_with_clock(&signer, clock.clone());
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

/// A JWKS served on loopback, counting fetches; the test changes the keys it publishes, or
/// makes it answer 503 (published `None`).
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Option<JwkSet>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(keys: JwkSet) -> Self {
        let keys = Arc::new(Mutex::new(Some(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            JWKS_PATH,
            axum::routing::get(move || {
                let (served, counted) = (served.clone(), counted.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let served = served.lock().unwrap().clone();
                    served
                        .map(axum::Json)
                        .ok_or(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{JWKS_PATH}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, keys, fetches }
    }

    fn publish(&self, keys: Option<JwkSet>) {
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
    let authorizer =
        Authorizer::from_jwks_url_with_clock(&server.url, DEV_ISSUER, DEV_CLIENT_ID, clock.clone())
            .await
            .unwrap();
    assert_eq!(server.fetches(), 1, "fetched at start");
    let token =
        |signer: &DevSigner| bearer(&token_with(signer, serde_json::json!({"exp": t + 3600})));
    assert!(authorizer.verify(Some(&token(&old))).await.is_ok());

    // The pool rotates its keys; a token of the new key arrives 10 s after the start
    // fetch: too soon to fetch again.
    server.publish(Some(both(&old, &rotated)));
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

#[tokio::test]
async fn a_failed_refresh_refuses_the_token_with_the_keys_still_trusted() {
    let (_a_dir, old) = signer();
    let (_b_dir, rotated) = signer();
    let server = JwksServer::start(old.jwks()).await;
    let t = 2_000_000_000u64;
    let clock = ManualClock::at(t);
    let authorizer =
        Authorizer::from_jwks_url_with_clock(&server.url, DEV_ISSUER, DEV_CLIENT_ID, clock.clone())
            .await
            .unwrap();
    let token =
        |signer: &DevSigner| bearer(&token_with(signer, serde_json::json!({"exp": t + 3600})));

    server.publish(None);
    clock.set(t + 60);
    let refusal = authorizer.verify(Some(&token(&rotated))).await;
    assert_eq!(
        refusal,
        Err(AuthError::UnknownKey {
            kid: Some(rotated.key_id().to_owned()),
            trusted: vec![old.key_id().to_owned()],
            trusted_from: describe_user_pool(&jwks_url(&server.url).unwrap()),
        })
    );
    assert_eq!(server.fetches(), 2);
    // The keys fetched before still verify, and the failed fetch counts: no other until a
    // minute after it.
    assert!(authorizer.verify(Some(&token(&old))).await.is_ok());
    clock.set(t + 119);
    assert!(authorizer.verify(Some(&token(&rotated))).await.is_err());
    assert_eq!(server.fetches(), 2);
}
