//! Per-user rate limits, enforced by the write they limit: one more item in the
//! `TransactWriteItems` that sends a message, creates a group or adds members, so a request
//! over the limit writes nothing and a request under it costs no extra round trip.
//!
//! A limit is a **fixed window**: at most `cap` uses per window of `window`, counted in one
//! item per user, limit and window (`LIMIT#<user>` / `<limit>#<window ms>#<window start
//! ms>`), updated with `ADD n :1` under the condition `attribute_not_exists(n) OR n < :cap`.
//! A token bucket or GCRA would need `max(stored, now)` in the update, which DynamoDB's
//! update expressions lack (they have `+`, `-` and `if_not_exists`, no comparison; and a
//! condition may compare but not compute,
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html>),
//! so it would take a read first or a second conditional variant after a cancellation. A
//! new window is a new item, which is the reset: nothing is read, nothing compared to the
//! clock. Old windows' items expire by the table's TTL (`expires_at`).
//!
//! "A burst of B, then R per second" becomes windows of B / R seconds holding B each
//! ([`RateLimit::burst_then_per_second`]): the same long-run rate as the bucket, and in any
//! span of time at most one burst more than the bucket allows (two windows' worth across a
//! window boundary: 40 in a moment where the bucket allows 20, never more than 20 + 5 T + 20
//! over T seconds). The other way round it is stricter: after a full burst the next use
//! waits for the window's end (up to B / R seconds) where a bucket would refill one use
//! every 1 / R.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use uuid::Uuid;

use super::requests::Cancelled;
use super::{Store, StoreError, key_item};
use crate::keys;
use crate::schema::TTL_ATTRIBUTE;
use crate::timestamp::Timestamp;

/// The uses counted in a window item.
const COUNT_ATTRIBUTE: &str = "n";
/// How long a window's item outlives its window before the TTL may delete it: a writer
/// whose clock lags a little still finds the window's count.
const EXPIRY_SLACK_SECONDS: i64 = 60;

/// At most `cap` uses per fixed `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub cap: u32,
    pub window: Duration,
}

impl RateLimit {
    /// A burst of `burst`, then `per_second`: windows of `burst / per_second` seconds
    /// (rounded up to the millisecond) holding `burst` each. `None` if either is 0.
    pub fn burst_then_per_second(burst: u32, per_second: u32) -> Option<Self> {
        if burst == 0 || per_second == 0 {
            return None;
        }
        let window_ms = (u64::from(burst) * 1000).div_ceil(u64::from(per_second));
        Some(Self {
            cap: burst,
            window: Duration::from_millis(window_ms),
        })
    }

    /// `per_minute` uses in each minute. `None` if 0.
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then_some(Self {
            cap: per_minute,
            window: Duration::from_secs(60),
        })
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// The window that `at_ms` (epoch milliseconds) falls in.
    pub fn window_at(&self, at_ms: i64) -> Window {
        let length = self.window_ms();
        let start = at_ms.div_euclid(length) * length;
        Window {
            length_ms: length,
            start_ms: start,
            end_ms: start.saturating_add(length),
        }
    }
}

/// One fixed window of a [`RateLimit`], in epoch milliseconds (`start` included, `end` not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub length_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// How long after `at_ms` the window ends, when the next one (and its uses) begins.
    pub fn remaining_after(&self, at_ms: i64) -> Duration {
        Duration::from_millis(u64::try_from(self.end_ms - at_ms).unwrap_or(0))
    }

    /// The window's sort key under its user's `LIMIT#` partition: the window's length is in
    /// it, so windows of a changed setting never share an item with the old ones.
    fn sort_key(&self, limited: Limited) -> String {
        format!("{}#{}#{}", limited.name(), self.length_ms, self.start_ms)
    }
}

/// What a user does that a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Sending a message: into a conversation or to a user (starting a conversation). A
    /// group's first message comes with its creation, a group change.
    Send,
    /// Creating a group or adding members to one: one bucket for both, since both put
    /// other people into conversations they did not ask for. Counted per request, whatever
    /// the number of people.
    GroupChange,
}

impl Limited {
    pub fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::GroupChange => "group-change",
        }
    }
}

/// The limits a [`Store`] enforces. A store starts with [`Limits::NONE`] (operators' tools,
/// seeds, benchmarks write freely); the API functions set theirs from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub send: Option<RateLimit>,
    pub group_changes: Option<RateLimit>,
}

impl Limits {
    pub const NONE: Self = Self {
        send: None,
        group_changes: None,
    };
    /// Sending: a burst of 20, then 5 per second.
    pub const DEFAULT_SEND_BURST: u32 = 20;
    pub const DEFAULT_SEND_PER_SECOND: u32 = 5;
    /// Creating groups and adding members: 10 per minute.
    pub const DEFAULT_GROUP_CHANGES_PER_MINUTE: u32 = 10;

    /// The defaults above.
    pub fn defaults() -> Self {
        Self::new(
            Self::DEFAULT_SEND_BURST,
            Self::DEFAULT_SEND_PER_SECOND,
            Self::DEFAULT_GROUP_CHANGES_PER_MINUTE,
        )
    }

    /// Sending: a burst of `send_burst` then `send_per_second`; group changes:
    /// `group_changes_per_minute`. A 0 turns that limit off.
    pub fn new(send_burst: u32, send_per_second: u32, group_changes_per_minute: u32) -> Self {
        Self {
            send: RateLimit::burst_then_per_second(send_burst, send_per_second),
            group_changes: RateLimit::per_minute(group_changes_per_minute),
        }
    }

    fn of(&self, limited: Limited) -> Option<RateLimit> {
        match limited {
            Limited::Send => self.send,
            Limited::GroupChange => self.group_changes,
        }
    }
}

/// One use of a limited action, to ride in the transaction that performs it. Without a
/// limit it adds nothing and never refuses.
#[derive(Debug)]
pub(crate) struct Charge {
    update: Option<TransactWriteItem>,
    /// Where the update sits in the transaction last built.
    index: Option<usize>,
    limited: Limited,
    user: Uuid,
    retry_after: Duration,
}

impl Charge {
    /// A use nothing limits (a group's 50th member, added by its creation).
    pub(crate) fn none() -> Self {
        Self {
            update: None,
            index: None,
            limited: Limited::GroupChange,
            user: Uuid::nil(),
            retry_after: Duration::ZERO,
        }
    }

    /// Appends the limit's update to a transaction's items (the last item, so the others'
    /// positions, which callers read cancellation reasons by, do not move).
    pub(crate) fn add_to(&mut self, items: &mut Vec<TransactWriteItem>) {
        if let Some(update) = &self.update {
            self.index = Some(items.len());
            items.push(update.clone());
        }
    }

    /// Whether the limit's condition cancelled the transaction: the window is full. Not a
    /// conflict: retrying would fail the same way until the window ends.
    pub(crate) fn refused(&self, cancelled: &Cancelled) -> bool {
        self.index
            .is_some_and(|index| cancelled.condition_failed(index))
    }

    /// The refusal, saying when the window frees.
    pub(crate) fn rate_limited(&self) -> StoreError {
        StoreError::RateLimited {
            user: self.user,
            limit: self.limited.name(),
            retry_after: self.retry_after,
        }
    }
}

impl Store {
    /// The store with `limits` enforced on sends and group changes.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// One `limited` use by `user` at `now`, for the transaction that performs it: an
    /// update of the user's window item that counts the use, and holds only while the
    /// window has room.
    pub(crate) fn charge(
        &self,
        user: Uuid,
        limited: Limited,
        now: Timestamp,
    ) -> Result<Charge, StoreError> {
        let Some(limit) = self.limits.of(limited) else {
            return Ok(Charge::none());
        };
        let now_ms = epoch_millis(now);
        let window = limit.window_at(now_ms);
        let key = keys::rate_limit(user, window.sort_key(limited));
        let expires_at = window.end_ms.div_euclid(1000) + 1 + EXPIRY_SLACK_SECONDS;
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&key)))
            .update_expression("ADD #n :one SET #expires = :expires")
            .condition_expression("attribute_not_exists(#n) OR #n < :cap")
            .expression_attribute_names("#n", COUNT_ATTRIBUTE)
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":cap", AttributeValue::N(limit.cap.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(Charge {
            update: Some(TransactWriteItem::builder().update(update).build()),
            index: None,
            limited,
            user,
            retry_after: window.remaining_after(now_ms),
        })
    }
}

fn epoch_millis(at: Timestamp) -> i64 {
    i64::try_from(at.as_datetime().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

// A group's creating transaction holds 49 members (2 × 49 + 1 items); its charge must
// still fit in DynamoDB's 100 items per transaction, so those must stay under 100.
const _: () = assert!(2 * super::MEMBERS_IN_CREATING_TRANSACTION + 1 < 100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_is_a_window_of_burst_over_rate() {
        let send = RateLimit::burst_then_per_second(20, 5).unwrap();
        assert_eq!(send.cap, 20);
        assert_eq!(send.window, Duration::from_secs(4));
        // Uneven: rounded up, so the long-run rate never exceeds the setting.
        let odd = RateLimit::burst_then_per_second(10, 3).unwrap();
        assert_eq!(odd.window, Duration::from_millis(3334));
        assert!(f64::from(odd.cap) / odd.window.as_secs_f64() <= 3.0);
        // Faster than the burst: windows under a second.
        let fast = RateLimit::burst_then_per_second(1, 5).unwrap();
        assert_eq!(fast.window, Duration::from_millis(200));
        assert_eq!(RateLimit::burst_then_per_second(0, 5), None);
        assert_eq!(RateLimit::burst_then_per_second(20, 0), None);
        assert_eq!(RateLimit::per_minute(0), None);
        assert_eq!(
            RateLimit::per_minute(10),
            Some(RateLimit {
                cap: 10,
                window: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn windows_tile_time_and_say_when_they_end() {
        let send = RateLimit::burst_then_per_second(20, 5).unwrap();
        let first = send.window_at(1_764_558_000_000);
        assert_eq!(first.start_ms, 1_764_558_000_000);
        assert_eq!(first.end_ms, 1_764_558_004_000);
        assert_eq!(send.window_at(1_764_558_003_999), first);
        let next = send.window_at(1_764_558_004_000);
        assert_eq!(next.start_ms, first.end_ms);
        assert_eq!(
            first.remaining_after(1_764_558_002_500),
            Duration::from_millis(1500)
        );
        assert_eq!(first.remaining_after(first.end_ms + 5), Duration::ZERO);
        // Before 1970 too (div_euclid): the window still contains the instant.
        let early = send.window_at(-1);
        assert!(early.start_ms <= -1 && -1 < early.end_ms);
    }

    #[test]
    fn window_keys_name_the_limit_the_length_and_the_start() {
        let send = RateLimit::burst_then_per_second(20, 5).unwrap();
        let window = send.window_at(1_764_558_001_234);
        assert_eq!(window.sort_key(Limited::Send), "send#4000#1764558000000");
        // A changed window length starting at the same instant is another item.
        let longer = RateLimit::per_minute(10)
            .unwrap()
            .window_at(1_764_558_000_000);
        assert_eq!(longer.start_ms, window.start_ms);
        assert_ne!(
            longer.sort_key(Limited::Send),
            window.sort_key(Limited::Send)
        );
        assert_eq!(
            longer.sort_key(Limited::GroupChange),
            "group-change#60000#1764558000000"
        );
    }

    #[test]
    fn the_defaults_are_the_issues() {
        let limits = Limits::defaults();
        assert_eq!(limits.send, RateLimit::burst_then_per_second(20, 5));
        assert_eq!(limits.group_changes, RateLimit::per_minute(10));
        assert_eq!(Limits::default(), Limits::NONE);
        assert_eq!(Limits::new(0, 5, 0), Limits::NONE);
    }

    #[test]
    fn millis_of_a_timestamp() {
        let at = Timestamp::parse("2025-12-01T03:00:00.123456+00:00").unwrap();
        assert_eq!(epoch_millis(at), 1_764_558_000_123);
    }
}
