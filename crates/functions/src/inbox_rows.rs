//! `messaging-stream`: DynamoDB stream records in, inbox rows moved (pattern E).
//!
//! On the [`batch`](crate::batch) skeleton: per conversation, coalesce its messages to the
//! newest (keeping every message's time and sender for unread counts) and move its inbox
//! rows. A conversation that cannot be applied now is reported for retry; one that never
//! can be (no members at all) is logged and skipped.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use messaging::coalesce::Newest;
use messaging::store::{Advance, RowPositions, Store, StoreError};
use serde::Serialize;

use crate::batch::{
    Batch, Conversation, Deadline, DeadlineMargins, Finished, MarginRule, Pace, RecordCounts,
    Settled,
};
use crate::emf::{EmbeddedMetrics, Metric};

/// Conversations updated at once per batch. Each costs two requests; 16 in flight keeps
/// a 100-record batch over many conversations well inside the function timeout without
/// bursting a table's on-demand capacity.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// What one batch did; logged as one line, and as CloudWatch metrics in Lambda.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InboxRowsSummary {
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
    /// Conversations whose update can never succeed (a message in a conversation that has
    /// neither members nor rows and never ended): logged as errors and skipped, as retrying
    /// would only hold up the shard. The alarm watches these.
    pub abandoned_conversations: usize,
    /// Groups whose last member left after the message was posted: nothing left to move,
    /// a normal end (no error, no alarm).
    pub ended_conversations: usize,
    pub duration_ms: u64,
}

impl InboxRowsSummary {
    fn of_records(counts: RecordCounts) -> Self {
        Self {
            records: counts.records,
            messages: counts.messages,
            skipped: counts.skipped,
            malformed: counts.malformed,
            conversations: counts.conversations,
            ..Self::default()
        }
    }

    fn add(&mut self, advance: &Advance) {
        self.rows_moved += advance.moved;
        self.rows_current += advance.current;
        self.rows_skipped += advance.skipped_rows;
        self.index_reads += advance.index_reads as usize;
        self.hinted_conversations += usize::from(advance.hinted);
        self.ended_conversations += usize::from(advance.ended);
    }

    fn log(&self) {
        tracing::info!(
            records = self.records,
            messages = self.messages,
            skipped = self.skipped,
            malformed = self.malformed,
            conversations = self.conversations,
            rows_moved = self.rows_moved,
            rows_skipped = self.rows_skipped,
            hinted = self.hinted_conversations,
            index_reads = self.index_reads,
            failures = self.failed_conversations,
            unstarted = self.unstarted_conversations,
            abandoned = self.abandoned_conversations,
            ended = self.ended_conversations,
            duration_ms = self.duration_ms,
            "stream batch"
        );
    }
}

impl EmbeddedMetrics for InboxRowsSummary {
    fn metrics(&self) -> Vec<Metric> {
        vec![
            Metric::count("Records", self.records),
            Metric::count("Messages", self.messages),
            Metric::count("Skipped", self.skipped),
            Metric::count("Malformed", self.malformed),
            Metric::count("Conversations", self.conversations),
            Metric::count("RowsMoved", self.rows_moved),
            Metric::count("RowsSkipped", self.rows_skipped),
            Metric::count("HintedConversations", self.hinted_conversations),
            Metric::count("IndexReads", self.index_reads),
            Metric::count("FailedConversations", self.failed_conversations),
            Metric::count("UnstartedConversations", self.unstarted_conversations),
            Metric::count("AbandonedConversations", self.abandoned_conversations),
            Metric::count("EndedConversations", self.ended_conversations),
            Metric::milliseconds("BatchDuration", self.duration_ms),
        ]
    }
}

/// `messaging-stream`'s handler: a store, its pace, and where this environment last put
/// each conversation's rows, built once per execution environment.
#[derive(Debug, Clone)]
pub struct InboxRowMover {
    store: Store,
    pace: Pace,
    positions: Arc<RowPositions>,
}

impl InboxRowMover {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            pace: Pace {
                concurrency: DEFAULT_CONCURRENCY,
                margins: MarginRule::default(),
            },
            positions: Arc::new(RowPositions::default()),
        }
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.pace.concurrency = concurrency.max(1);
        self
    }

    /// Where rows are remembered between batches; `RowPositions::disabled()` reads the
    /// index for every update.
    pub fn with_positions(mut self, positions: RowPositions) -> Self {
        self.positions = Arc::new(positions);
        self
    }

    /// Fixed margins instead of margins scaled to each invocation's budget.
    pub fn with_deadline_margins(mut self, margins: DeadlineMargins) -> Self {
        self.pace.margins = MarginRule::Fixed(margins);
        self
    }

    /// [`InboxRowMover::handle_until`] without a deadline (tests, tools).
    pub async fn handle(&self, event: &Event) -> (DynamoDbEventResponse, InboxRowsSummary) {
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
    ) -> (DynamoDbEventResponse, InboxRowsSummary) {
        let batch = Batch::read(event);
        let mut summary = InboxRowsSummary::of_records(batch.counts());
        let ran = batch
            .run(self.pace, deadline.as_ref(), |conversation| {
                self.move_rows(conversation)
            })
            .await;
        let report = ran.report("inbox update", |finished| settle(finished, &mut summary));
        summary.failed_conversations = report.failed;
        summary.unstarted_conversations = report.unstarted;
        if summary.unstarted_conversations > 0 {
            tracing::warn!(
                unstarted = summary.unstarted_conversations,
                "deadline near: conversations not started, reported for retry"
            );
        }
        summary.duration_ms = report.duration_ms;
        summary.log();
        (report.response, summary)
    }

    /// One conversation: its inbox rows follow its newest message, and count every one.
    async fn move_rows(&self, conversation: Conversation) -> Result<Advance, StoreError> {
        let newest = newest_of(conversation);
        self.store
            .advance_conversation(&newest, &self.positions)
            .await
    }
}

/// The conversation's newest message and every message's arrival.
fn newest_of(conversation: Conversation) -> Newest {
    let Conversation {
        first_position,
        messages,
        ..
    } = conversation;
    // `Newest::of` numbers the messages from 0; the batch knows where they really are.
    let mut newest = Newest::of(messages).expect("a conversation of a batch has a message");
    newest.first_position = first_position;
    newest
}

/// Only what can never succeed is skipped. Everything else, a transaction DynamoDB
/// rejected included, is retried, and after the trigger's last attempt reaches the
/// dead-letter queue.
fn settle(
    finished: Finished<'_, Result<Advance, StoreError>>,
    summary: &mut InboxRowsSummary,
) -> Settled {
    let Finished {
        group,
        event_id,
        result,
    } = finished;
    match result {
        Ok(advance) => {
            summary.add(&advance);
            Settled::Done
        }
        Err(err @ (StoreError::NoMembers(_) | StoreError::Encode(_))) => {
            summary.abandoned_conversations += 1;
            tracing::error!(%group, %event_id, error = %err, "inbox rows can never be moved; skipping the conversation's records");
            Settled::Done
        }
        Err(err) => {
            tracing::warn!(%group, %event_id, error = %err, "could not move inbox rows; reporting for retry");
            Settled::Retry
        }
    }
}
