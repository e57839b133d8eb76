//! `messaging-stream`: DynamoDB stream records in, inbox rows moved (pattern E).
//!
//! Per batch: look at every record, keep INSERTs of `MSG#` items, coalesce them to the
//! newest message per conversation (keeping every message's time and sender for unread
//! counts), move each conversation's inbox rows (concurrently, bounded), and report a partial batch failure for conversations that could not be
//! applied. Malformed records are logged with their `eventID` and skipped: retrying them
//! can never succeed.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;
use messaging::Message;
use messaging::coalesce::{Newest, newest_per_conversation};
use messaging::items::MessageItem;
use messaging::keys::MESSAGE_PREFIX;
use messaging::store::{Advance, RowPositions, Store, StoreError};
use serde::Serialize;

/// Conversations updated at once per batch. Each costs two requests; 16 in flight keeps
/// a 100-record batch over many conversations well inside the function timeout without
/// bursting a table's on-demand capacity.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// The event source mapping's `FilterCriteria` pattern: INSERTs of message items only.
/// `template.yaml` must carry exactly this pattern (a test checks it) and the local stream
/// pump applies it, so AWS and the local stack drop the same records.
pub const FILTER_PATTERN: &str =
    r#"{"eventName":["INSERT"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"MSG#"}]}}}}"#;

/// The CloudWatch namespace of the embedded metrics; `template.yaml`'s alarms watch it.
pub const METRICS_NAMESPACE: &str = "CruddurMessaging";

/// The one event kind that moves inboxes.
const INSERT: &str = "INSERT";

/// Why a record does not move an inbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAMessage {
    #[error("{0} event, only INSERTs move inboxes")]
    NotAnInsert(String),
    #[error("item is not a message (pk {0:?})")]
    OtherItem(String),
    /// An INSERT of a `MSG#` item that cannot be read: never retried.
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
        let item: MessageItem = serde_dynamo::from_item(record.change.new_image.clone())
            .map_err(|err| NotAMessage::Malformed(format!("new image: {err}")))?;
        let message = item
            .into_message()
            .ok_or_else(|| NotAMessage::Malformed(format!("pk {pk:?} is not MSG#<uuid>")))?;
        Ok(Self(message))
    }
}

/// What one batch did; logged as one line, and as CloudWatch metrics in Lambda.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchSummary {
    pub records: usize,
    pub messages: usize,
    pub skipped: usize,
    pub malformed: usize,
    pub conversations: usize,
    pub rows_moved: usize,
    pub rows_current: usize,
    /// Index entries that are not a readable inbox row (corrupt or foreign items): logged
    /// and left alone while the conversation's other rows move.
    pub rows_skipped: usize,
    /// Conversations whose rows were where this environment last put them (one request).
    pub hinted_conversations: usize,
    /// Queries of the group index, re-reads of a lagging index included.
    pub index_reads: usize,
    /// Conversations reported for retry: throttling, network, an index that did not catch
    /// up, contention, a rejected transaction, or cut at the deadline.
    pub failed_conversations: usize,
    /// Conversations not started because the invocation's deadline was near; reported
    /// for retry like failures.
    pub unstarted_conversations: usize,
    /// Conversations whose update can never succeed (a message in a conversation with no
    /// members at all): logged and skipped, as retrying would only hold up the shard.
    pub abandoned_conversations: usize,
    pub duration_ms: u64,
}

/// The Lambda log levels, least severe first (`ApplicationLogLevel`).
const LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

impl BatchSummary {
    /// The summary as a CloudWatch embedded-metric-format document (one log line that
    /// CloudWatch turns into metrics without any API call).
    ///
    /// With `LogFormat: JSON`, Lambda files a line without a `level` (or without an RFC 3339
    /// `timestamp`) as INFO and drops it when `ApplicationLogLevel` is above INFO
    /// (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
    /// Metrics must survive any log level, so the line carries the configured level
    /// (`AWS_LAMBDA_LOG_LEVEL`) when that is above INFO, and INFO otherwise.
    pub fn to_emf(
        &self,
        namespace: &str,
        function_name: &str,
        now: SystemTime,
        configured_level: Option<&str>,
    ) -> serde_json::Value {
        let epoch_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        let metric = |name: &str, unit: &str| serde_json::json!({ "Name": name, "Unit": unit });
        serde_json::json!({
            "level": emf_level(configured_level),
            "timestamp": rfc3339(now),
            "_aws": {
                "Timestamp": epoch_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [
                        metric("Records", "Count"),
                        metric("Messages", "Count"),
                        metric("Skipped", "Count"),
                        metric("Malformed", "Count"),
                        metric("Conversations", "Count"),
                        metric("RowsMoved", "Count"),
                        metric("RowsSkipped", "Count"),
                        metric("HintedConversations", "Count"),
                        metric("IndexReads", "Count"),
                        metric("FailedConversations", "Count"),
                        metric("UnstartedConversations", "Count"),
                        metric("AbandonedConversations", "Count"),
                        metric("BatchDuration", "Milliseconds"),
                    ],
                }],
            },
            "FunctionName": function_name,
            "Records": self.records,
            "Messages": self.messages,
            "Skipped": self.skipped,
            "Malformed": self.malformed,
            "Conversations": self.conversations,
            "RowsMoved": self.rows_moved,
            "RowsSkipped": self.rows_skipped,
            "HintedConversations": self.hinted_conversations,
            "IndexReads": self.index_reads,
            "FailedConversations": self.failed_conversations,
            "UnstartedConversations": self.unstarted_conversations,
            "AbandonedConversations": self.abandoned_conversations,
            "BatchDuration": self.duration_ms,
        })
    }
}

/// The level that keeps a metrics line through Lambda's log-level filter.
pub(crate) fn emf_level(configured: Option<&str>) -> &'static str {
    let rank = |level: &str| {
        LOG_LEVELS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(level))
    };
    let info = rank("INFO").unwrap_or(2);
    let wanted = configured.and_then(rank).unwrap_or(info).max(info);
    LOG_LEVELS[wanted]
}

pub(crate) fn rfc3339(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// When an invocation must have answered. Lambda gives each invocation a deadline; a
/// handler that runs past it loses its partial batch response, and Lambda retries the
/// whole batch.
#[derive(Clone)]
pub struct Deadline {
    at: Instant,
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl std::fmt::Debug for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
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

    /// A deadline read against another clock (tests move time by hand).
    pub fn with_clock(at: Instant, clock: Arc<dyn Fn() -> Instant + Send + Sync>) -> Self {
        Self { at, clock }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since((self.clock)())
    }
}

/// How close to the deadline the handler still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineMargins {
    /// No conversation starts with less time than this left: one update is two requests,
    /// plus bounded retries (a few seconds under throttling).
    pub stop_starting: Duration,
    /// Updates still running this close to the deadline are cut and reported for retry,
    /// leaving time to answer. Cutting is safe: a move is one transaction, applied or not.
    pub finish: Duration,
}

impl Default for DeadlineMargins {
    fn default() -> Self {
        Self {
            stop_starting: Duration::from_secs(10),
            finish: Duration::from_secs(2),
        }
    }
}

/// The handler: a store, a concurrency bound and where this environment last put each
/// conversation's rows, built once per execution environment.
#[derive(Debug, Clone)]
pub struct StreamHandler {
    store: Store,
    concurrency: usize,
    positions: Arc<RowPositions>,
    margins: DeadlineMargins,
}

/// How one conversation of a batch ended.
enum Outcome {
    Advanced(Advance),
    Failed(StoreError),
    CutAtDeadline,
    NotStarted,
}

impl StreamHandler {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            concurrency: DEFAULT_CONCURRENCY,
            positions: Arc::new(RowPositions::default()),
            margins: DeadlineMargins::default(),
        }
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Where rows are remembered between batches; `RowPositions::disabled()` reads the
    /// index for every update.
    pub fn with_positions(mut self, positions: RowPositions) -> Self {
        self.positions = Arc::new(positions);
        self
    }

    pub fn with_deadline_margins(mut self, margins: DeadlineMargins) -> Self {
        self.margins = margins;
        self
    }

    /// [`StreamHandler::handle_until`] without a deadline (tests, tools).
    pub async fn handle(&self, event: &Event) -> (DynamoDbEventResponse, BatchSummary) {
        self.handle_until(event, None).await
    }

    /// Handles one batch. The response is the partial batch response: empty on success,
    /// else the sequence number of the earliest record whose conversation was not applied
    /// (Lambda retries from there; records after it are replays, which change nothing).
    #[tracing::instrument(skip_all, fields(records = event.records.len()))]
    pub async fn handle_until(
        &self,
        event: &Event,
        deadline: Option<Deadline>,
    ) -> (DynamoDbEventResponse, BatchSummary) {
        let started = Instant::now();
        let mut summary = BatchSummary {
            records: event.records.len(),
            ..BatchSummary::default()
        };
        let mut arrivals = Vec::new();
        for (position, record) in event.records.iter().enumerate() {
            match InsertedMessage::try_from(record) {
                Ok(InsertedMessage(message)) => arrivals.push((position, message)),
                Err(NotAMessage::Malformed(reason)) => {
                    summary.malformed += 1;
                    tracing::warn!(event_id = %record.event_id, %reason, "skipping malformed stream record");
                }
                Err(reason) => {
                    summary.skipped += 1;
                    tracing::debug!(event_id = %record.event_id, %reason, "skipping stream record");
                }
            }
        }
        summary.messages = arrivals.len();
        let newest = newest_per_conversation(arrivals);
        summary.conversations = newest.len();

        let deadline = deadline.as_ref();
        let results: Vec<(Newest, Outcome)> = futures_util::stream::iter(newest)
            .map(|newest| async move {
                let outcome = self.advance(&newest, deadline).await;
                (newest, outcome)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;

        let mut earliest_failure: Option<usize> = None;
        for (newest, outcome) in results {
            let event_id = &event.records[newest.first_position].event_id;
            let group = newest.message.group_uuid;
            let failed = match outcome {
                Outcome::Advanced(advance) => {
                    summary.rows_moved += advance.moved;
                    summary.rows_current += advance.current;
                    summary.rows_skipped += advance.skipped_rows;
                    summary.index_reads += advance.index_reads as usize;
                    summary.hinted_conversations += usize::from(advance.hinted);
                    false
                }
                // Only what can never succeed is skipped. Everything else, a transaction
                // DynamoDB rejected included, is retried, and after the trigger's last
                // attempt reaches the dead-letter queue.
                Outcome::Failed(err @ (StoreError::NoMembers(_) | StoreError::Encode(_))) => {
                    summary.abandoned_conversations += 1;
                    tracing::error!(%group, %event_id, error = %err, "inbox rows can never be moved; skipping the conversation's records");
                    false
                }
                Outcome::Failed(err) => {
                    summary.failed_conversations += 1;
                    tracing::warn!(%group, %event_id, error = %err, "could not move inbox rows; reporting for retry");
                    true
                }
                Outcome::CutAtDeadline => {
                    summary.failed_conversations += 1;
                    tracing::warn!(%group, %event_id, "inbox update cut at the invocation's deadline; reporting for retry");
                    true
                }
                Outcome::NotStarted => {
                    summary.unstarted_conversations += 1;
                    true
                }
            };
            if failed {
                earliest_failure = Some(
                    earliest_failure
                        .map_or(newest.first_position, |p| p.min(newest.first_position)),
                );
            }
        }
        if summary.unstarted_conversations > 0 {
            tracing::warn!(
                unstarted = summary.unstarted_conversations,
                "deadline near: conversations not started, reported for retry"
            );
        }

        let mut response = DynamoDbEventResponse::default();
        if let Some(position) = earliest_failure {
            let mut failure = DynamoDbBatchItemFailure::default();
            // Message records without a sequence number were refused as malformed.
            failure.item_identifier = event.records[position].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            records = summary.records,
            messages = summary.messages,
            skipped = summary.skipped,
            malformed = summary.malformed,
            conversations = summary.conversations,
            rows_moved = summary.rows_moved,
            rows_skipped = summary.rows_skipped,
            hinted = summary.hinted_conversations,
            index_reads = summary.index_reads,
            failures = summary.failed_conversations,
            unstarted = summary.unstarted_conversations,
            abandoned = summary.abandoned_conversations,
            duration_ms = summary.duration_ms,
            "stream batch"
        );
        (response, summary)
    }

    /// One conversation, within the deadline.
    async fn advance(&self, batch: &Newest, deadline: Option<&Deadline>) -> Outcome {
        let update = self.store.advance_conversation(batch, &self.positions);
        let Some(deadline) = deadline else {
            return update.await.map_or_else(Outcome::Failed, Outcome::Advanced);
        };
        let remaining = deadline.remaining();
        if remaining < self.margins.stop_starting {
            return Outcome::NotStarted;
        }
        match tokio::time::timeout(remaining.saturating_sub(self.margins.finish), update).await {
            Ok(result) => result.map_or_else(Outcome::Failed, Outcome::Advanced),
            Err(_elapsed) => Outcome::CutAtDeadline,
        }
    }
}
