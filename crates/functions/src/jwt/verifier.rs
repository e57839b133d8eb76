//! [`JwtVerifier`]: the rules of [`super::verify`] over a key set cached for as long as the
//! verifier lives (a warm execution environment, or a local stack's run).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use super::keys::{JwksUrl, KeySource, KeysUnavailable};
use super::{Claims, TokenError, verify};
use crate::clock::{Clock, SystemClock};

/// Configuration of [`JwtVerifier::from_env`].
pub const ISSUER_ENV: &str = "JWT_ISSUER";
pub const AUDIENCE_ENV: &str = "JWT_AUDIENCE";
/// Optional; defaults to `<issuer>/.well-known/jwks.json`, where Cognito publishes it.
pub const JWKS_URL_ENV: &str = "JWKS_URL";

/// Why [`JwtVerifier::verify`] did not return claims.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    #[error("token refused: {0}")]
    Refused(TokenError),
    #[error(transparent)]
    KeysUnavailable(#[from] KeysUnavailable),
}

/// A key set as fetched; `generation` tells a caller that saw an older set apart from one
/// that saw this one, whatever the clock says.
#[derive(Debug, Clone)]
struct Fetched {
    keys: Arc<JwkSet>,
    generation: u64,
}

/// A verifier for one user pool and app client. The key set is fetched on first use and
/// fetched again when a token names a key it does not hold (the pool rotated its keys), at
/// most once per [`JwtVerifier::MIN_REFETCH`] (or [`JwtVerifier::with_min_refetch`]) so
/// that forged `kid`s cannot turn every request into a fetch. Failed fetches count, the
/// first one included: an unreachable key server is not asked again sooner, and until it
/// answers, every token is refused with the last failure (a 500, not a verdict) without a
/// fetch of its own.
pub struct JwtVerifier {
    source: Arc<dyn KeySource>,
    issuer: String,
    audience: String,
    min_refetch: Duration,
    clock: Arc<dyn Clock>,
    /// Read by every verification; written only after a fetch, never held across one.
    cached: RwLock<Option<Fetched>>,
    /// One fetch at a time; holds when the last one started and how it failed, if it did.
    fetching: tokio::sync::Mutex<LastFetch>,
}

#[derive(Debug, Default)]
struct LastFetch {
    started: Option<Instant>,
    failure: Option<KeysUnavailable>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("min_refetch", &self.min_refetch)
            .finish_non_exhaustive()
    }
}

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
            clock: Arc::new(SystemClock),
            cached: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(LastFetch::default()),
        }
    }

    /// How soon after a fetch an unknown key may trigger another (tests use zero).
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> Self {
        self.min_refetch = min_refetch;
        self
    }

    /// The clock that tokens' times and the spacing of fetches are measured by.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A user pool's verifier from `JWT_ISSUER`, `JWT_AUDIENCE` and optionally `JWKS_URL`.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`JwtVerifier::from_env`] over any source of variables. A JWKS URL that is not
    /// https (or http to loopback) is refused here, at start, not at the first token.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| {
            var(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| format!("{name} is not set"))
        };
        let issuer = var(ISSUER_ENV)?;
        let audience = var(AUDIENCE_ENV)?;
        let url = var(JWKS_URL_ENV)
            .unwrap_or_else(|_| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
        let url = JwksUrl::parse(&url).map_err(|error| error.to_string())?;
        Ok(Self::new(Arc::new(url), issuer, audience))
    }

    /// The token's verified claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let fetched = self.current_keys().await?;
        match self.verify_with(&fetched, token) {
            Err(TokenError::UnknownKey(kid)) => {
                let Some(refetched) = self.refetched_keys(&fetched).await? else {
                    return Err(VerifyError::Refused(TokenError::UnknownKey(kid)));
                };
                self.verify_with(&refetched, token).map_err(|error| {
                    tracing::info!(?kid, "token signed with a key the pool does not publish");
                    VerifyError::Refused(error)
                })
            }
            result => result.map_err(VerifyError::Refused),
        }
    }

    /// Fetches the key set now, so that a wrong key source shows at start rather than at
    /// the first token.
    pub async fn fetch_keys(&self) -> Result<(), KeysUnavailable> {
        let mut last_fetch = self.fetching.lock().await;
        self.fetch(&mut last_fetch).await.map(drop)
    }

    /// The ids of the keys it trusts now (none before the first fetch).
    pub fn key_ids(&self) -> Vec<String> {
        self.cached().map_or_else(Vec::new, |fetched| {
            fetched
                .keys
                .keys
                .iter()
                .filter_map(|key| key.common.key_id.clone())
                .collect()
        })
    }

    fn verify_with(&self, fetched: &Fetched, token: &str) -> Result<Claims, TokenError> {
        let now = self.clock.unix_seconds();
        verify(&fetched.keys, &self.issuer, &self.audience, token, now)
    }

    fn cached(&self) -> Option<Fetched> {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The cached key set, fetched if there is none; if the last fetch failed less than
    /// `min_refetch` ago, that failure (callers waiting on one failed fetch do not each
    /// fetch again, and neither does a flood of tokens while the key server is down).
    async fn current_keys(&self) -> Result<Fetched, KeysUnavailable> {
        if let Some(fetched) = self.cached() {
            return Ok(fetched);
        }
        let mut last_fetch = self.fetching.lock().await;
        // Whoever held the lock may have fetched meanwhile.
        if let Some(fetched) = self.cached() {
            return Ok(fetched);
        }
        if self.too_soon(&last_fetch)
            && let Some(failure) = &last_fetch.failure
        {
            return Err(failure.clone());
        }
        self.fetch(&mut last_fetch).await
    }

    /// Whether the last fetch started less than `min_refetch` ago.
    fn too_soon(&self, last_fetch: &LastFetch) -> bool {
        let now = self.clock.now();
        last_fetch
            .started
            .is_some_and(|at| now.saturating_duration_since(at) < self.min_refetch)
    }

    /// A key set newer than `seen`: the one another caller fetched meanwhile, or a new
    /// fetch if the last one started at least `min_refetch` ago; `None` if it is too soon.
    async fn refetched_keys(&self, seen: &Fetched) -> Result<Option<Fetched>, KeysUnavailable> {
        let mut last_fetch = self.fetching.lock().await;
        if let Some(current) = self.cached()
            && current.generation != seen.generation
        {
            return Ok(Some(current));
        }
        if self.too_soon(&last_fetch) {
            return Ok(None);
        }
        self.fetch(&mut last_fetch).await.map(Some)
    }

    /// Fetches and caches the key set; `last_fetch` is the guard of `fetching`. The start
    /// is recorded before the fetch, so a failed one counts against `min_refetch` too.
    async fn fetch(&self, last_fetch: &mut LastFetch) -> Result<Fetched, KeysUnavailable> {
        last_fetch.started = Some(self.clock.now());
        let keys = match self.source.fetch().await {
            Ok(keys) => Arc::new(keys),
            Err(failure) => {
                last_fetch.failure = Some(failure.clone());
                return Err(failure);
            }
        };
        last_fetch.failure = None;
        let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        let generation = cached
            .as_ref()
            .map_or(0, |previous| previous.generation + 1);
        let fetched = Fetched { keys, generation };
        *cached = Some(fetched.clone());
        Ok(fetched)
    }
}
