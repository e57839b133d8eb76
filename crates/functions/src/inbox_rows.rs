//! `messaging-stream`: DynamoDB stream records in, inbox rows moved (pattern E).
//!
//! On the [`batch`](crate::batch) skeleton: per conversation, coalesce its messages to the
//! newest (keeping every message's time and sender for unread counts) and move its inbox
//! rows; then the previews follow the batch's edits and deletes. A conversation that cannot
//! be applied now is reported for retry; one that never can be (no members at all) is
//! logged and skipped.
//!
//! **Order within a conversation.** The batch's edits and deletes (new images of `MSG#`
//! items) are folded first: a message the batch inserts takes its newest version
//! (`coalesce::fold_changes`, highest `revision`), so its fan-out writes the preview as it
//! now is; every other changed message keeps its newest version. Then the new messages move
//! the rows (pattern E, unchanged), and only then do the remaining changes apply, and only
//! those of messages newer than the batch's newest new message: once the rows moved to that
//! one, no row shows an older message, so older changes have nothing to change. Revisions,
//! not arrival order, decide between two versions of one message, so the order of the
//! changes among themselves cannot matter.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use messaging::Message;
use messaging::coalesce::{Newest, fold_changes};
use messaging::store::{Advance, Previewed, RowPositions, Store, StoreError};
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
    /// Records of changed messages read (edits and deletes; reactions if any reach it).
    pub changes: usize,
    pub skipped: usize,
    pub malformed: usize,
    pub conversations: usize,
    pub rows_moved: usize,
    /// Changes applied on their own (not folded into their message's fan-out, not older
    /// than the batch's newest message of their conversation).
    pub changes_applied: usize,
    /// Rows whose preview a change updated.
    pub rows_changed: usize,
    /// Strongly consistent reads the changes made (memberships, members' rows).
    pub change_reads: usize,
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
            changes: counts.changes,
            skipped: counts.skipped,
            malformed: counts.malformed,
            conversations: counts.conversations,
            ..Self::default()
        }
    }

    fn add_changes(&mut self, applied: usize, previewed: &Previewed) {
        self.changes_applied += applied;
        self.rows_changed += previewed.changed;
        self.change_reads += previewed.reads;
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
            changes = self.changes,
            skipped = self.skipped,
            malformed = self.malformed,
            conversations = self.conversations,
            rows_moved = self.rows_moved,
            changes_applied = self.changes_applied,
            rows_changed = self.rows_changed,
            change_reads = self.change_reads,
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
            Metric::count("Changes", self.changes),
            Metric::count("ChangesApplied", self.changes_applied),
            Metric::count("RowsChanged", self.rows_changed),
            Metric::count("ChangeReads", self.change_reads),
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

    /// One conversation: its inbox rows follow its newest message, and count every one;
    /// then the previews follow its edits and deletes (see the module's order).
    async fn move_rows(&self, conversation: Conversation) -> Result<Applied, StoreError> {
        let Conversation {
            group,
            first_position,
            mut messages,
            changes,
        } = conversation;
        let changes = changes
            .into_iter()
            .filter(|change| change.changes_text())
            .map(|change| change.message);
        let pending = fold_changes(&mut messages, changes);
        let mut applied = Applied::default();
        let mut newest_at = None;
        if let Some(mut newest) = Newest::of(messages) {
            // `Newest::of` numbers the messages from 0; the batch knows where they are.
            newest.first_position = first_position;
            applied.advance = self
                .store
                .advance_conversation(&newest, &self.positions)
                .await?;
            newest_at = Some(newest.message.created_at);
        }
        let pending: Vec<Message> = pending
            .into_iter()
            .filter(|change| newest_at.as_ref().is_none_or(|at| change.created_at > *at))
            .collect();
        if !pending.is_empty() && !applied.advance.ended {
            applied.changes = pending.len();
            applied.previewed = self
                .store
                .change_previews(group, &pending, &self.positions)
                .await?;
        }
        Ok(applied)
    }
}

/// What one conversation's work did: the move, and the changes applied after it.
#[derive(Debug, Clone, Copy, Default)]
struct Applied {
    advance: Advance,
    changes: usize,
    previewed: Previewed,
}

/// Only what can never succeed is skipped. Everything else, a transaction DynamoDB
/// rejected included, is retried, and after the trigger's last attempt reaches the
/// dead-letter queue.
fn settle(
    finished: Finished<'_, Result<Applied, StoreError>>,
    summary: &mut InboxRowsSummary,
) -> Settled {
    let Finished {
        group,
        event_id,
        result,
    } = finished;
    match result {
        Ok(applied) => {
            summary.add(&applied.advance);
            summary.add_changes(applied.changes, &applied.previewed);
            summary.ended_conversations += usize::from(applied.previewed.ended);
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
