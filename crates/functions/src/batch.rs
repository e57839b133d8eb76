//! The skeleton both stream consumers (`messaging-stream`, `messaging-push`) run on: one
//! batch of DynamoDB stream records in, a partial batch response out.
//!
//! Per batch: every record is read as a new message, a change of a message (a `MODIFY`
//! whose new image's `change` says what happened), or skipped (malformed `MSG#` records
//! are logged with their `eventID`: retrying them can never succeed); they are grouped by
//! conversation in stream order; each conversation's work runs, a bounded
//! number at once, within the invocation's deadline; and the earliest record of a
//! conversation that must be retried goes into `batchItemFailures`. What a consumer does
//! with one conversation, and which of its failures deserve a retry, is the consumer's.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;
use messaging::items::{CHANGE_ATTRIBUTE, MessageChangeKind, MessageItem};
use messaging::keys::MESSAGE_PREFIX;
use messaging::{Message, UserSummary};
use uuid::Uuid;

/// The event source mapping's `FilterCriteria` pattern: INSERTs of message items only, the
/// records [`InsertedMessage`] reads. `template.yaml` must carry exactly this pattern on
/// both consumers' triggers (a test checks it) and the local stream pump applies it, so
/// AWS and the local stack drop the same records.
pub const FILTER_PATTERN: &str =
    r#"{"eventName":["INSERT"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"MSG#"}]}}}}"#;

/// The second pattern of `messaging-stream`'s `FilterCriteria`: `MODIFY`s of message items
/// whose new image's `change` is `edited` or `deleted`, the changes previews follow
/// (reactions change no preview, so they cost `messaging-stream` no invocation). A
/// table attribute is matched in `dynamodb.NewImage` by its type (`S`), as in "Filtering
/// with table attributes",
/// <https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html>.
pub const EDITS_PATTERN: &str = r#"{"eventName":["MODIFY"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"MSG#"}]}},"NewImage":{"change":{"S":["edited","deleted"]}}}}"#;

/// `messaging-stream`'s `FilterCriteria`: a record passes if it matches any of them
/// (filters of one event source mapping are ORed,
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html>).
pub const FILTER_PATTERNS: [&str; 2] = [FILTER_PATTERN, EDITS_PATTERN];

/// The event kind that carries a new message.
const INSERT: &str = "INSERT";
/// The event kind that carries a change of one.
const MODIFY: &str = "MODIFY";

/// Why a record is not a new message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAMessage {
    #[error("{0} event, only INSERTs and MODIFYs of messages are read")]
    NotAnInsert(String),
    #[error("item is not a message (pk {0:?})")]
    OtherItem(String),
    /// An INSERT or MODIFY of a `MSG#` item that cannot be read (a MODIFY without a
    /// known `change` included): never retried.
    #[error("malformed message record: {0}")]
    Malformed(String),
}

/// A new message, read from a stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertedMessage(pub Message);

impl TryFrom<&EventRecord> for InsertedMessage {
    type Error = NotAMessage;

    fn try_from(record: &EventRecord) -> Result<Self, Self::Error> {
        if record.event_name != INSERT {
            return Err(NotAMessage::NotAnInsert(record.event_name.clone()));
        }
        let (pk, item) = message_image(record)?;
        let message = item
            .into_message()
            .ok_or_else(|| NotAMessage::Malformed(format!("pk {pk:?} is not MSG#<uuid>")))?;
        Ok(Self(message))
    }
}

/// A `MSG#` record's pk and new image, once it is known to be a message's record that can
/// be reported for retry.
fn message_image(record: &EventRecord) -> Result<(&str, MessageItem), NotAMessage> {
    let pk = match record.change.keys.get("pk") {
        Some(serde_dynamo::AttributeValue::S(pk)) => pk.as_str(),
        _ => return Err(NotAMessage::Malformed("keys have no string pk".into())),
    };
    if !pk.starts_with(MESSAGE_PREFIX) {
        return Err(NotAMessage::OtherItem(pk.to_owned()));
    }
    if record.change.sequence_number.is_none() {
        // Without it, a failure could not be reported for retry.
        return Err(NotAMessage::Malformed("no sequence number".into()));
    }
    if record.change.new_image.is_empty() {
        return Err(NotAMessage::Malformed("no new image".into()));
    }
    let item: MessageItem = serde_dynamo::from_item(record.change.new_image.clone())
        .map_err(|err| NotAMessage::Malformed(format!("new image: {err}")))?;
    Ok((pk, item))
}

/// A change of a message (edit, delete, reaction), read from a `MODIFY` record: every change
/// is one write of the `MSG#` item that sets all `change*` attributes, so the new image
/// alone says what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedMessage {
    pub kind: MessageChangeKind,
    /// The message as the change left it.
    pub message: Message,
    /// Who made the change (required for reactions, whose frames name the member).
    pub by: Option<UserSummary>,
    /// The emoji of a reaction change.
    pub emoji: Option<String>,
    pub at: Option<String>,
    /// How many of its conversation's new messages of the batch come before it in stream
    /// order: where it goes among them (the push keeps that order).
    pub follows: usize,
}

impl TryFrom<&EventRecord> for ChangedMessage {
    type Error = NotAMessage;

    fn try_from(record: &EventRecord) -> Result<Self, Self::Error> {
        if record.event_name != MODIFY {
            return Err(NotAMessage::NotAnInsert(record.event_name.clone()));
        }
        let kind = match record.change.new_image.get(CHANGE_ATTRIBUTE) {
            Some(serde_dynamo::AttributeValue::S(kind)) => Some(kind.clone()),
            Some(_) => return Err(NotAMessage::Malformed("change is not a string".into())),
            None => None,
        };
        let (pk, item) = message_image(record)?;
        let kind = match kind {
            Some(kind) => kind,
            None => return Err(NotAMessage::Malformed("MODIFY without a change".into())),
        };
        let kind = [
            MessageChangeKind::Edited,
            MessageChangeKind::Deleted,
            MessageChangeKind::Reacted,
            MessageChangeKind::Unreacted,
        ]
        .into_iter()
        .find(|known| known.as_str() == kind)
        .ok_or_else(|| NotAMessage::Malformed(format!("unknown change {kind:?}")))?;
        let by = match (
            item.change_by,
            item.change_by_handle.clone(),
            item.change_by_display_name.clone(),
        ) {
            (Some(uuid), Some(handle), Some(display_name)) => Some(UserSummary {
                uuid,
                handle,
                display_name,
            }),
            _ => None,
        };
        let emoji = item.change_emoji.clone();
        let at = item.change_at.clone();
        if matches!(
            kind,
            MessageChangeKind::Reacted | MessageChangeKind::Unreacted
        ) && (emoji.is_none() || by.is_none())
        {
            return Err(NotAMessage::Malformed(format!(
                "{} without its emoji or member",
                kind.as_str()
            )));
        }
        let message = item
            .into_message()
            .ok_or_else(|| NotAMessage::Malformed(format!("pk {pk:?} is not MSG#<uuid>")))?;
        Ok(Self {
            kind,
            message,
            by,
            emoji,
            at,
            follows: 0,
        })
    }
}

impl ChangedMessage {
    /// An edit or a delete: what inbox previews follow.
    pub fn changes_text(&self) -> bool {
        matches!(
            self.kind,
            MessageChangeKind::Edited | MessageChangeKind::Deleted
        )
    }
}

/// What a record of a message is.
enum Read {
    Inserted(Message),
    Changed(ChangedMessage),
}

/// When an invocation must have answered. Lambda gives each invocation a deadline; a
/// handler that runs past it loses its partial batch response, and Lambda retries the
/// whole batch.
#[derive(Clone)]
pub struct Deadline {
    at: Instant,
    /// The time there was when the deadline was taken, at the invocation's start: what the
    /// margins scale with ([`MarginRule::Scaled`]).
    budget: Duration,
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl std::fmt::Debug for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("budget", &self.budget)
            .field("remaining", &self.remaining())
            .finish()
    }
}

impl Deadline {
    pub fn at(at: Instant) -> Self {
        Self::with_clock(at, Arc::new(Instant::now))
    }

    /// Lambda's deadline (`Context::deadline()`), wall-clock time.
    pub fn from_system_time(deadline: SystemTime) -> Self {
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Self::at(Instant::now() + remaining)
    }

    /// The deadline of an invocation that starts now, if it is one: Lambda never hands over
    /// an event whose deadline has passed, but an emulator may send none at all
    /// (`cargo lambda watch` 1.9 sends the Unix epoch), and a consumer that took it at its
    /// word would report every record for retry without trying. Such a deadline is no
    /// deadline; the emulator's own timeout still bounds the invocation.
    pub fn of_invocation(deadline: SystemTime) -> Option<Self> {
        if deadline <= SystemTime::now() {
            tracing::warn!(
                ?deadline,
                "the invocation's deadline has already passed; working without one"
            );
            return None;
        }
        Some(Self::from_system_time(deadline))
    }

    /// A deadline read against another clock (tests move time by hand). Its budget is
    /// what remains by that clock now.
    pub fn with_clock(at: Instant, clock: Arc<dyn Fn() -> Instant + Send + Sync>) -> Self {
        let budget = at.saturating_duration_since(clock());
        Self { at, budget, clock }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since((self.clock)())
    }

    /// The time the invocation had when its deadline was taken.
    pub fn budget(&self) -> Duration {
        self.budget
    }
}

/// How close to the deadline a consumer still works, in one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineMargins {
    /// No conversation starts with less time than this left: one inbox update is two
    /// requests, plus bounded retries (a few seconds under throttling).
    pub stop_starting: Duration,
    /// Work still running this close to the deadline is cut and reported for retry,
    /// leaving time to answer. Cutting is safe: an inbox move is one transaction, applied
    /// or not, and a push is at least once anyway.
    pub finish: Duration,
}

impl DeadlineMargins {
    /// The margins of an invocation that started with `budget` (its function's `Timeout`,
    /// less what the environment's start took): a fifth of it to stop starting, a
    /// twentieth to finish, each between a floor and a cap.
    ///
    /// Fixed margins only fit one timeout: 10 s to stop starting is right for a batch of a
    /// 60-second function (a throttled conversation may need seconds of the SDK's and the
    /// store's retries), but a function deployed with a timeout under 10 s would never
    /// start anything and would report every batch for retry until its records expired.
    /// A fifth scales the same judgement down: a conversation starts only while a fifth of
    /// the time the whole batch had is left, which on a short budget is still tens of its
    /// requests. The caps (10 s, 2 s) are the margins a long budget needs, and no more.
    /// The floors (200 ms, 100 ms) are a request with a retry, and an answer to the
    /// Runtime API: a budget too small for those starts nothing and reports the batch, so
    /// that a fresh invocation retries it rather than this one timing out mid-work.
    pub fn scaled_to(budget: Duration) -> Self {
        Self {
            stop_starting: (budget / 5).clamp(Self::STOP_STARTING_FLOOR, Self::STOP_STARTING_CAP),
            finish: (budget / 20).clamp(Self::FINISH_FLOOR, Self::FINISH_CAP),
        }
    }

    pub const STOP_STARTING_FLOOR: Duration = Duration::from_millis(200);
    pub const STOP_STARTING_CAP: Duration = Duration::from_secs(10);
    pub const FINISH_FLOOR: Duration = Duration::from_millis(100);
    pub const FINISH_CAP: Duration = Duration::from_secs(2);
}

/// Which margins a consumer keeps to its invocations' deadlines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MarginRule {
    /// Scaled to each invocation's budget ([`DeadlineMargins::scaled_to`]).
    #[default]
    Scaled,
    /// The same whatever the budget (tests that place work around given margins).
    Fixed(DeadlineMargins),
}

impl MarginRule {
    /// The margins kept to `deadline`.
    pub fn margins_for(self, deadline: &Deadline) -> DeadlineMargins {
        match self {
            Self::Scaled => DeadlineMargins::scaled_to(deadline.budget()),
            Self::Fixed(margins) => margins,
        }
    }
}

/// How a consumer works through a batch's conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Conversations worked on at once.
    pub concurrency: usize,
    pub margins: MarginRule,
}

/// One conversation's messages in a batch, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub group: Uuid,
    /// Where the conversation's first record is in the batch: a retry must restart there
    /// to cover all its records.
    pub first_position: usize,
    pub messages: Vec<Message>,
    /// Changes of its messages, in stream order; each says where it falls among
    /// `messages` ([`ChangedMessage::follows`]).
    pub changes: Vec<ChangedMessage>,
}

/// What a batch's records came to, before any conversation's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub records: usize,
    pub messages: usize,
    /// Changes of messages (edits, deletes, reactions).
    pub changes: usize,
    /// Records that are neither (the trigger's filter drops them in AWS).
    pub skipped: usize,
    /// `MSG#` inserts and changes that cannot be read.
    pub malformed: usize,
    pub conversations: usize,
}

/// A batch read: its new messages, grouped by conversation.
#[derive(Debug)]
pub struct Batch<'e> {
    event: &'e Event,
    started: Instant,
    counts: RecordCounts,
    conversations: Vec<Conversation>,
}

impl<'e> Batch<'e> {
    /// Reads every record, logging the ones skipped; conversations come in the order of
    /// their first record.
    pub fn read(event: &'e Event) -> Self {
        let started = Instant::now();
        let mut counts = RecordCounts {
            records: event.records.len(),
            ..RecordCounts::default()
        };
        let mut conversations: Vec<Conversation> = Vec::new();
        let mut slots: HashMap<Uuid, usize> = HashMap::new();
        let mut slot_of = |group: Uuid, conversations: &mut Vec<Conversation>| {
            *slots.entry(group).or_insert_with(|| {
                conversations.push(Conversation {
                    group,
                    first_position: 0,
                    messages: Vec::new(),
                    changes: Vec::new(),
                });
                conversations.len() - 1
            })
        };
        for (position, record) in event.records.iter().enumerate() {
            let read = if record.event_name == MODIFY {
                ChangedMessage::try_from(record).map(Read::Changed)
            } else {
                InsertedMessage::try_from(record).map(|InsertedMessage(m)| Read::Inserted(m))
            };
            match read {
                Ok(Read::Inserted(message)) => {
                    counts.messages += 1;
                    let slot = slot_of(message.group_uuid, &mut conversations);
                    let conversation = &mut conversations[slot];
                    if conversation.messages.is_empty() && conversation.changes.is_empty() {
                        conversation.first_position = position;
                    }
                    conversation.messages.push(message);
                }
                Ok(Read::Changed(mut change)) => {
                    counts.changes += 1;
                    let slot = slot_of(change.message.group_uuid, &mut conversations);
                    let conversation = &mut conversations[slot];
                    if conversation.messages.is_empty() && conversation.changes.is_empty() {
                        conversation.first_position = position;
                    }
                    change.follows = conversation.messages.len();
                    conversation.changes.push(change);
                }
                Err(NotAMessage::Malformed(reason)) => {
                    counts.malformed += 1;
                    tracing::warn!(event_id = %record.event_id, %reason, "skipping malformed stream record");
                }
                Err(reason) => {
                    counts.skipped += 1;
                    tracing::debug!(event_id = %record.event_id, %reason, "skipping stream record");
                }
            }
        }
        counts.conversations = conversations.len();
        Self {
            event,
            started,
            counts,
            conversations,
        }
    }

    pub fn counts(&self) -> RecordCounts {
        self.counts
    }

    /// Runs `work` on every conversation, `pace.concurrency` at once. They are
    /// independent, so the result is the same as in order. With a deadline, no
    /// conversation starts with less than the margins' `stop_starting` left, and work
    /// still running `finish` before it is cut.
    pub async fn run<T, F, Fut>(
        self,
        pace: Pace,
        deadline: Option<&Deadline>,
        work: F,
    ) -> Ran<'e, T>
    where
        F: Fn(Conversation) -> Fut,
        Fut: Future<Output = T>,
    {
        let ended = futures_util::stream::iter(self.conversations)
            .map(|conversation| {
                let (group, first_position) = (conversation.group, conversation.first_position);
                let outcome = within_deadline(work(conversation), deadline, pace.margins);
                async move {
                    Ended {
                        group,
                        first_position,
                        outcome: outcome.await,
                    }
                }
            })
            .buffer_unordered(pace.concurrency.max(1))
            .collect()
            .await;
        Ran {
            event: self.event,
            started: self.started,
            ended,
        }
    }
}

/// How one conversation's work ended.
enum Outcome<T> {
    Finished(T),
    CutAtDeadline,
    NotStarted,
}

/// `work`, unless the deadline is too near to start it or comes before it ends. The
/// deadline is read when the work would start, not when it is queued.
async fn within_deadline<T>(
    work: impl Future<Output = T>,
    deadline: Option<&Deadline>,
    margins: MarginRule,
) -> Outcome<T> {
    let Some(deadline) = deadline else {
        return Outcome::Finished(work.await);
    };
    let margins = margins.margins_for(deadline);
    let remaining = deadline.remaining();
    if remaining < margins.stop_starting {
        return Outcome::NotStarted;
    }
    match tokio::time::timeout(remaining.saturating_sub(margins.finish), work).await {
        Ok(done) => Outcome::Finished(done),
        Err(_elapsed) => Outcome::CutAtDeadline,
    }
}

struct Ended<T> {
    group: Uuid,
    first_position: usize,
    outcome: Outcome<T>,
}

/// A conversation whose work ran to its end, for its consumer to judge.
#[derive(Debug)]
pub struct Finished<'e, T> {
    pub group: Uuid,
    /// The `eventID` of the conversation's first record, for logs.
    pub event_id: &'e str,
    pub result: T,
}

/// A consumer's verdict on a finished conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Nothing to retry: applied, or it never can be.
    Done,
    /// Reported in `batchItemFailures` by its first record.
    Retry,
}

/// Every conversation of a batch, ended.
pub struct Ran<'e, T> {
    event: &'e Event,
    started: Instant,
    ended: Vec<Ended<T>>,
}

/// The batch's answer to Lambda, and what its conversations came to.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Empty on success, else the sequence number of the earliest record whose
    /// conversation is to be retried: Lambda retries from there, and records after it are
    /// replays.
    pub response: DynamoDbEventResponse,
    /// Conversations reported for retry: the consumer's [`Settled::Retry`]s and those cut
    /// at the deadline.
    pub failed: usize,
    /// Conversations not started because the deadline was near; reported for retry too.
    pub unstarted: usize,
    pub duration_ms: u64,
}

impl<T> Ran<'_, T> {
    /// Judges every conversation: `settle` the finished ones; cut and unstarted ones are
    /// retried. `work` names the consumer's work in the logs ("inbox update", "push").
    pub fn report(self, work: &str, mut settle: impl FnMut(Finished<'_, T>) -> Settled) -> Report {
        let mut report = Report::default();
        let mut earliest_failure: Option<usize> = None;
        for Ended {
            group,
            first_position,
            outcome,
        } in self.ended
        {
            let event_id = self.event.records[first_position].event_id.as_str();
            let retry = match outcome {
                Outcome::Finished(result) => {
                    let verdict = settle(Finished {
                        group,
                        event_id,
                        result,
                    });
                    report.failed += usize::from(verdict == Settled::Retry);
                    verdict == Settled::Retry
                }
                Outcome::CutAtDeadline => {
                    report.failed += 1;
                    tracing::warn!(%group, %event_id, "{work} cut at the invocation's deadline; reporting for retry");
                    true
                }
                Outcome::NotStarted => {
                    report.unstarted += 1;
                    true
                }
            };
            if retry {
                earliest_failure =
                    Some(earliest_failure.map_or(first_position, |p| p.min(first_position)));
            }
        }
        if let Some(position) = earliest_failure {
            let mut failure = DynamoDbBatchItemFailure::default();
            // Message records without a sequence number were refused as malformed.
            failure.item_identifier = self.event.records[position].change.sequence_number.clone();
            report.response.batch_item_failures.push(failure);
        }
        report.duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_deadline_already_past_is_no_deadline() {
        // What `cargo lambda watch` 1.9 sends: the Unix epoch.
        assert!(Deadline::of_invocation(SystemTime::UNIX_EPOCH).is_none());
        assert!(Deadline::of_invocation(SystemTime::now() - Duration::from_millis(1)).is_none());
    }

    #[test]
    fn a_deadline_ahead_is_kept() {
        let deadline = Deadline::of_invocation(SystemTime::now() + Duration::from_secs(60))
            .expect("a deadline ahead");
        let remaining = deadline.remaining();
        assert!(
            remaining > Duration::from_secs(55) && remaining <= Duration::from_secs(60),
            "{remaining:?}"
        );
    }

    #[test]
    fn margins_scale_with_the_budget_between_their_floors_and_caps() {
        let ms = Duration::from_millis;
        let margins = |budget| {
            let DeadlineMargins {
                stop_starting,
                finish,
            } = DeadlineMargins::scaled_to(budget);
            (stop_starting, finish)
        };
        // A function deployed with a 5-second timeout starts work until 1 s is left.
        assert_eq!(margins(Duration::from_secs(5)), (ms(1000), ms(250)));
        assert_eq!(margins(Duration::from_secs(3)), (ms(600), ms(150)));
        assert_eq!(margins(Duration::from_secs(30)), (ms(6000), ms(1500)));
        // Long budgets keep the margins a slow batch needs, and no more.
        assert_eq!(margins(Duration::from_secs(60)), (ms(10_000), ms(2000)));
        assert_eq!(margins(Duration::from_secs(900)), (ms(10_000), ms(2000)));
        // Tiny budgets: a request with a retry, an answer.
        assert_eq!(margins(Duration::from_secs(1)), (ms(200), ms(100)));
        assert_eq!(margins(ms(150)), (ms(200), ms(100)));
        for budget in [ms(0), ms(150), ms(999), ms(7_777), ms(45_000), ms(900_000)] {
            let (stop_starting, finish) = margins(budget);
            assert!(
                finish < stop_starting,
                "{budget:?}: work that starts may run"
            );
        }
    }

    #[test]
    fn the_budget_is_what_remained_when_the_deadline_was_taken() {
        let start = Instant::now();
        let elapsed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let clock = {
            let elapsed = elapsed.clone();
            Arc::new(move || {
                start + Duration::from_secs(elapsed.load(std::sync::atomic::Ordering::SeqCst))
            })
        };
        let deadline = Deadline::with_clock(start + Duration::from_secs(60), clock);
        elapsed.store(59, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(deadline.budget(), Duration::from_secs(60));
        assert_eq!(deadline.remaining(), Duration::from_secs(1));
        // A nearly spent 60-second budget keeps the 10-second margin: nothing starts.
        assert_eq!(
            MarginRule::Scaled.margins_for(&deadline).stop_starting,
            Duration::from_secs(10)
        );
        let fixed = DeadlineMargins {
            stop_starting: Duration::ZERO,
            finish: Duration::ZERO,
        };
        assert_eq!(MarginRule::Fixed(fixed).margins_for(&deadline), fixed);
    }
}
