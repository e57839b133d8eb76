//! Where "now" comes from, so tests move time instead of sleeping: the user directory's
//! cache ages its entries by it, token verification checks `exp`, `nbf` and `iat` and
//! spaces key set fetches by it.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Both readings of the current time, so a clock a test moves moves both together.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time, for intervals (cache ages, time since a fetch): immune to the wall
    /// clock being set.
    fn now(&self) -> Instant;

    /// Wall-clock time in seconds since the epoch, for times written in tokens.
    fn unix_seconds(&self) -> u64;

    /// Wall-clock milliseconds since the epoch, for times compared across environments
    /// (typing's interval). A clock that knows only seconds reads as whole seconds.
    fn unix_millis(&self) -> u64 {
        self.unix_seconds().saturating_mul(1000)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_seconds(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }

    fn unix_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            })
    }
}
