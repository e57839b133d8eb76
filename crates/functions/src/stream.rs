//! `messaging-stream`: DynamoDB stream records in, inbox rows moved (pattern E).
//!
//! Per batch: look at every record, keep INSERTs of `MSG#` items, coalesce them to the
//! newest message per conversation, move each conversation's inbox rows (concurrently,
//! bounded), and report a partial batch failure for conversations that could not be
//! applied. Malformed records are logged with their `eventID` and skipped: retrying them
//! can never succeed.

use std::time::Instant;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;
use messaging::Message;
use messaging::coalesce::{Newest, newest_per_conversation};
use messaging::keys::MESSAGE_PREFIX;
use messaging::model::MessageItem;
use messaging::store::{Advance, Store, StoreError};
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
    pub failed_conversations: usize,
    /// Conversations whose update can never succeed (a corrupt inbox row, say): logged
    /// and skipped, as retrying would only hold up the rest of the shard.
    pub abandoned_conversations: usize,
    pub duration_ms: u64,
}

impl BatchSummary {
    /// The summary as a CloudWatch embedded-metric-format document (one log line that
    /// CloudWatch turns into metrics without any API call).
    pub fn to_emf(
        &self,
        namespace: &str,
        function_name: &str,
        epoch_ms: u128,
    ) -> serde_json::Value {
        let metric = |name: &str, unit: &str| serde_json::json!({ "Name": name, "Unit": unit });
        serde_json::json!({
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
                        metric("FailedConversations", "Count"),
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
            "FailedConversations": self.failed_conversations,
            "AbandonedConversations": self.abandoned_conversations,
            "BatchDuration": self.duration_ms,
        })
    }
}

/// The handler: a store and a concurrency bound, built once per execution environment.
#[derive(Debug, Clone)]
pub struct StreamHandler {
    store: Store,
    concurrency: usize,
}

impl StreamHandler {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Handles one batch. `Ok` carries the partial batch response: empty on success,
    /// else the sequence number of the earliest record whose conversation was not
    /// applied (Lambda retries from there; records after it are replays, which change
    /// nothing).
    #[tracing::instrument(skip_all, fields(records = event.records.len()))]
    pub async fn handle(&self, event: &Event) -> (DynamoDbEventResponse, BatchSummary) {
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

        let results: Vec<(Newest, Result<Advance, StoreError>)> =
            futures_util::stream::iter(newest)
                .map(|newest| async move {
                    let result = self.store.advance_inbox_rows(&newest.message).await;
                    (newest, result)
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;

        let mut earliest_failure: Option<usize> = None;
        for (newest, result) in results {
            match result {
                Ok(advance) => {
                    summary.rows_moved += advance.moved;
                    summary.rows_current += advance.current;
                }
                Err(err) if !err.is_transient() => {
                    summary.abandoned_conversations += 1;
                    tracing::error!(
                        group = %newest.message.group_uuid,
                        event_id = %event.records[newest.first_position].event_id,
                        error = %err,
                        "inbox rows cannot be moved; skipping the conversation's records"
                    );
                }
                Err(err) => {
                    summary.failed_conversations += 1;
                    tracing::warn!(
                        group = %newest.message.group_uuid,
                        event_id = %event.records[newest.first_position].event_id,
                        error = %err,
                        "could not move inbox rows; reporting for retry"
                    );
                    earliest_failure = Some(
                        earliest_failure
                            .map_or(newest.first_position, |p| p.min(newest.first_position)),
                    );
                }
            }
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
            failures = summary.failed_conversations,
            abandoned = summary.abandoned_conversations,
            duration_ms = summary.duration_ms,
            "stream batch"
        );
        (response, summary)
    }
}
