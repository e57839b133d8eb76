//! Cached user lookups. A warm execution environment serves repeated lookups of the same
//! caller or handle from memory for a short TTL, so reading an inbox costs one DynamoDB
//! round trip instead of two. Only hits are cached: a user who just signed up is found at
//! once, and a profile change is seen at most one TTL later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use messaging::validate::Handle;
use messaging::{Store, StoreError, User};

/// Long enough to absorb a burst of requests from one user, short enough that a profile
/// change shows quickly. Override with `USER_CACHE_TTL_SECONDS` (0 disables the cache).
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
pub const TTL_ENV: &str = "USER_CACHE_TTL_SECONDS";
/// Bounds memory in a long-lived environment; the cache is simply cleared when full.
const MAX_ENTRIES: usize = 10_000;

pub use crate::clock::{Clock, SystemClock};

#[derive(Debug, Default)]
struct Entries {
    by_sub: HashMap<String, (User, Instant)>,
    by_handle: HashMap<String, (User, Instant)>,
}

#[derive(Debug, Clone)]
pub struct Directory {
    store: Store,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: Arc<Mutex<Entries>>,
}

impl Directory {
    pub fn new(store: Store, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            ttl,
            clock,
            entries: Arc::default(),
        }
    }

    /// TTL from `USER_CACHE_TTL_SECONDS`, else [`DEFAULT_TTL`].
    pub fn ttl_from_env() -> Duration {
        std::env::var(TTL_ENV)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map_or(DEFAULT_TTL, Duration::from_secs)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        if let Some(user) = self.cached(|entries| &entries.by_sub, sub) {
            return Ok(Some(user));
        }
        let user = self.store.user_by_sub(sub).await?;
        if let Some(user) = &user {
            self.remember(user);
        }
        Ok(user)
    }

    pub async fn by_handle(&self, handle: &Handle) -> Result<Option<User>, StoreError> {
        if let Some(user) = self.cached(|entries| &entries.by_handle, &handle.normalized()) {
            return Ok(Some(user));
        }
        let user = self.store.user_by_handle(handle).await?;
        if let Some(user) = &user {
            self.remember(user);
        }
        Ok(user)
    }

    /// Users by handle, several at once: cached ones from memory, the rest with one
    /// `BatchGetItem`. Keyed by normalised handle; unknown handles are absent.
    pub async fn by_handles(
        &self,
        handles: &[Handle],
    ) -> Result<HashMap<String, User>, StoreError> {
        let mut found = HashMap::with_capacity(handles.len());
        let mut missing = Vec::new();
        for handle in handles {
            let key = handle.normalized();
            match self.cached(|entries| &entries.by_handle, &key) {
                Some(user) => {
                    found.insert(key, user);
                }
                None => missing.push(handle.clone()),
            }
        }
        if !missing.is_empty() {
            for (key, user) in self.store.users_by_handles(&missing).await? {
                self.remember(&user);
                found.insert(key, user);
            }
        }
        Ok(found)
    }

    fn cached(
        &self,
        map: impl Fn(&Entries) -> &HashMap<String, (User, Instant)>,
        key: &str,
    ) -> Option<User> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let (user, fetched_at) = map(&entries).get(key)?;
        (self.clock.now().saturating_duration_since(*fetched_at) < self.ttl).then(|| user.clone())
    }

    fn remember(&self, user: &User) {
        if self.ttl.is_zero() {
            return;
        }
        let now = self.clock.now();
        let mut entries = self.lock();
        if entries.by_sub.len() >= MAX_ENTRIES {
            *entries = Entries::default();
        }
        entries
            .by_sub
            .insert(user.cognito_sub.clone(), (user.clone(), now));
        entries
            .by_handle
            .insert(user.handle.normalized(), (user.clone(), now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
