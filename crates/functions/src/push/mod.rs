//! `messaging-push`: DynamoDB stream records in, WebSocket frames out. Every new message
//! goes, as one JSON text frame, to every live connection of every member of its
//! conversation (the sender's other connections included), through the API Gateway
//! Management API (`PostToConnection`); so does every change of a message (edit, delete,
//! reaction: [`changes`]), in stream order with the messages.
//!
//! Per batch, on the [`batch`](crate::batch) skeleton `messaging-stream` runs on too (a
//! second reader of the same stream, whose filter adds reactions): the new messages, grouped by
//! conversation in stream order, and per conversation find the members (one Query of `MBR#<group>`) and
//! their connections (one Query of `CONN#<member>` per member per batch, shared by every
//! conversation of the batch). Then post each message in order to every connection: a
//! conversation's next message goes out only when the previous one has been posted
//! everywhere, so each connection sees a conversation in order.
//!
//! A connection ends with its token: one past its `expires_at` (the earlier of the token's
//! `exp` and API Gateway's two hours) gets no frame; it is closed (`DeleteConnection`) and
//! its item deleted.
//!
//! Failures are bounded. A post that is throttled (or meets a transient error) is retried
//! a few times with backoff, then skipped and counted (`FailedPosts`); a `410 Gone`
//! connection is deleted. Only a failure to find who to push to (members or connections
//! could not be read) is reported in `batchItemFailures`, and the trigger retries that a
//! bounded number of times before its dead-letter queue. Inboxes never wait on any of it:
//! `messaging-stream` reads the same stream through its own event source mapping.
//! Delivery is at least once: a retried batch posts its messages again, and clients drop
//! duplicates by the message's `uuid`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_apigatewaymanagement::Client as ManagementClient;
use futures_util::StreamExt;
use messaging::model::Connection;
use messaging::{Message, Store, StoreError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::CreatedMessage;
use crate::batch::{
    Batch, Conversation, Deadline, DeadlineMargins, Finished, MarginRule, Pace, RecordCounts,
    Settled,
};
use crate::clock::{Clock, SystemClock};
use crate::emf::{EmbeddedMetrics, Metric};

pub mod changes;
pub(crate) mod management;
mod reads;

use management::{Deleted, Posted, delete, post};
pub use management::{
    PostRetry, local_management_client, local_management_config, management_client,
};
pub use reads::{READ_FILTER_PATTERN, ReadFrame};

/// The trigger's filter: the very pattern of `messaging-stream` (new messages only).
pub const FILTER_PATTERN: &str = crate::batch::FILTER_PATTERN;
/// The trigger's `FilterCriteria`: new messages, every change of one
/// ([`changes::CHANGES_PATTERN`]), and read receipts ([`READ_FILTER_PATTERN`]).
pub const FILTER_PATTERNS: [&str; 3] = [
    FILTER_PATTERN,
    changes::CHANGES_PATTERN,
    READ_FILTER_PATTERN,
];

/// The Management API endpoint of the WebSocket API's stage:
/// `https://<api id>.execute-api.<region>.amazonaws.com/<stage>`.
pub const ENDPOINT_ENV: &str = "WEBSOCKET_API_ENDPOINT";

/// Conversations pushed at once per batch.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Posts in flight at once for one message (a large group's connections).
const POSTS_IN_FLIGHT: usize = 32;

/// A frame: the created-message shape of `POST /api/messages` plus `"type": "message"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushFrame {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub message: CreatedMessage,
}

impl PushFrame {
    pub const MESSAGE: &'static str = "message";
}

impl From<Message> for PushFrame {
    fn from(message: Message) -> Self {
        Self {
            kind: Self::MESSAGE.to_owned(),
            message: CreatedMessage::from(message),
        }
    }
}

/// A `410 Gone` from a connection younger than this is not acted on: API Gateway runs
/// `$connect` (which records the connection) before the connection is open, so a post in
/// that window may find it not there yet. Its TTL, or a later 410, removes it if it never
/// opened.
pub const GONE_GRACE: Duration = Duration::from_secs(5);

/// What one batch did; logged as one line, and as CloudWatch metrics in Lambda.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushSummary {
    pub records: usize,
    pub messages: usize,
    /// Changes of messages (edits, deletes, reactions): one frame each.
    pub changes: usize,
    pub skipped: usize,
    pub malformed: usize,
    pub conversations: usize,
    /// Queries of `MBR#<group>` (one per conversation).
    pub member_queries: usize,
    /// Queries of `CONN#<member>` (one per distinct member of the batch).
    pub connection_queries: usize,
    /// Frames API Gateway accepted.
    pub frames_sent: usize,
    /// Posts answered `410 Gone`; those connections are deleted.
    pub gone_connections: usize,
    /// Connections found past their expiry (their token's `exp`, or two hours): sent no
    /// frame, closed with `DeleteConnection` and deleted.
    pub expired_connections: usize,
    /// Expired connections `DeleteConnection` could not close (kept for the next batch).
    pub failed_closes: usize,
    /// Attempts answered with throttling (each one retried, while attempts last).
    pub throttled_posts: usize,
    /// Posts given up on (throttled or failing past their retries, or refused): skipped,
    /// never retried with the batch.
    pub failed_posts: usize,
    /// Conversations whose members or connections could not be read: reported for retry.
    pub failed_conversations: usize,
    /// Conversations not started because the invocation's deadline was near.
    pub unstarted_conversations: usize,
    pub duration_ms: u64,
}

impl PushSummary {
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

    fn log(&self) {
        tracing::info!(
            records = self.records,
            messages = self.messages,
            changes = self.changes,
            skipped = self.skipped,
            malformed = self.malformed,
            conversations = self.conversations,
            member_queries = self.member_queries,
            connection_queries = self.connection_queries,
            frames = self.frames_sent,
            gone = self.gone_connections,
            expired = self.expired_connections,
            failed_closes = self.failed_closes,
            throttled = self.throttled_posts,
            failed_posts = self.failed_posts,
            failures = self.failed_conversations,
            unstarted = self.unstarted_conversations,
            duration_ms = self.duration_ms,
            "push batch"
        );
    }
}

impl EmbeddedMetrics for PushSummary {
    fn metrics(&self) -> Vec<Metric> {
        vec![
            Metric::count("Records", self.records),
            Metric::count("Messages", self.messages),
            Metric::count("Changes", self.changes),
            Metric::count("Skipped", self.skipped),
            Metric::count("Malformed", self.malformed),
            Metric::count("Conversations", self.conversations),
            Metric::count("MemberQueries", self.member_queries),
            Metric::count("ConnectionQueries", self.connection_queries),
            Metric::count("FramesSent", self.frames_sent),
            Metric::count("GoneConnections", self.gone_connections),
            Metric::count("ExpiredConnections", self.expired_connections),
            Metric::count("FailedCloses", self.failed_closes),
            Metric::count("ThrottledPosts", self.throttled_posts),
            Metric::count("FailedPosts", self.failed_posts),
            Metric::count("FailedPushConversations", self.failed_conversations),
            Metric::count("UnstartedPushConversations", self.unstarted_conversations),
            Metric::milliseconds("PushDuration", self.duration_ms),
        ]
    }
}

/// Per batch, shared by its conversations: each member's connections, read once, the
/// connections found gone, and the counts.
struct BatchState {
    connections: Mutex<HashMap<Uuid, Arc<tokio::sync::OnceCell<Vec<Connection>>>>>,
    /// Connections past their expiry found while reading recipients: closed after the
    /// batch's frames are out, so no frame waits for a `DeleteConnection`.
    expired: Mutex<Vec<Connection>>,
    gone: Mutex<HashSet<String>>,
    summary: Mutex<PushSummary>,
}

impl BatchState {
    fn new(summary: PushSummary) -> Self {
        Self {
            connections: Mutex::default(),
            expired: Mutex::default(),
            gone: Mutex::default(),
            summary: Mutex::new(summary),
        }
    }

    fn count(&self, update: impl FnOnce(&mut PushSummary)) {
        update(&mut self.summary.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn into_summary(self) -> PushSummary {
        self.summary.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    fn is_gone(&self, connection: &Connection) -> bool {
        self.gone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&connection.connection_id)
    }

    fn mark_gone(&self, connection: &Connection) {
        self.gone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection.connection_id.clone());
    }
}

/// `messaging-push`'s handler, built once per execution environment.
#[derive(Debug, Clone)]
pub struct PushHandler {
    store: Store,
    management: ManagementClient,
    pace: Pace,
    retry: PostRetry,
}

impl PushHandler {
    pub fn new(store: Store, management: ManagementClient) -> Self {
        Self {
            store,
            management,
            pace: Pace {
                concurrency: DEFAULT_CONCURRENCY,
                margins: MarginRule::default(),
            },
            retry: PostRetry::default(),
        }
    }

    pub fn with_retry(mut self, retry: PostRetry) -> Self {
        self.retry = PostRetry {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// Fixed margins instead of margins scaled to each invocation's budget.
    pub fn with_deadline_margins(mut self, margins: DeadlineMargins) -> Self {
        self.pace.margins = MarginRule::Fixed(margins);
        self
    }

    /// [`PushHandler::handle_until`] without a deadline (tests, the local stack).
    pub async fn handle(&self, event: &Event) -> (DynamoDbEventResponse, PushSummary) {
        self.handle_until(event, None).await
    }

    /// Handles one batch. The response reports the earliest record of a conversation whose
    /// recipients could not be read (Lambda retries from there); post failures are never
    /// reported, only counted.
    #[tracing::instrument(skip_all, fields(records = event.records.len()))]
    pub async fn handle_until(
        &self,
        event: &Event,
        deadline: Option<Deadline>,
    ) -> (DynamoDbEventResponse, PushSummary) {
        let batch = Batch::read(event);
        let state = BatchState::new(PushSummary::of_records(batch.counts()));
        let now = i64::try_from(SystemClock.unix_seconds()).unwrap_or(i64::MAX);
        let shared = &state;
        let ran = batch
            .run(self.pace, deadline.as_ref(), |conversation| {
                self.push_conversation(conversation, now, shared)
            })
            .await;
        // Read frames after the batch's messages, on the connections already read.
        let failed_read = self.push_reads(event, now, shared, deadline.as_ref()).await;
        let mut report = ran.report("push", |finished| {
            let Finished {
                group,
                event_id,
                result,
            } = finished;
            match result {
                Ok(()) => Settled::Done,
                Err(error) => {
                    tracing::warn!(%group, %event_id, %error, "could not read who to push to; reporting for retry");
                    Settled::Retry
                }
            }
        });
        reads::report_failed_read(&mut report.response, event, failed_read);
        self.close_all_expired(&state, deadline.as_ref()).await;
        let mut summary = state.into_summary();
        summary.failed_conversations = report.failed;
        summary.unstarted_conversations = report.unstarted;
        summary.duration_ms = report.duration_ms;
        summary.log();
        (report.response, summary)
    }

    /// One conversation's messages, in order, to every live connection of its members.
    /// Fails only when who to push to cannot be read.
    async fn push_conversation(
        &self,
        conversation: Conversation,
        now: i64,
        state: &BatchState,
    ) -> Result<(), StoreError> {
        let connections = self.recipients(conversation.group, now, state).await?;
        // New messages and changes of messages, in stream order.
        for frame in changes::frames_in_order(conversation) {
            self.post_to_all(&connections, &frame, state).await;
        }
        Ok(())
    }

    /// Every connection of every member of `group`.
    async fn recipients(
        &self,
        group: Uuid,
        now: i64,
        state: &BatchState,
    ) -> Result<Vec<Connection>, StoreError> {
        state.count(|s| s.member_queries += 1);
        let members = self.store.recipients(group).await?;
        let mut connections = Vec::new();
        for member in members {
            connections.extend(self.connections_of(member, now, state).await?);
        }
        Ok(connections)
    }

    /// A member's live connections, read once per batch whatever the number of
    /// conversations they are in. Connections past their expiry (their token's `exp`, or
    /// API Gateway's two hours) get no frame: they are closed and forgotten once the
    /// batch's frames are out ([`PushHandler::close_all_expired`]).
    async fn connections_of(
        &self,
        member: Uuid,
        now: i64,
        state: &BatchState,
    ) -> Result<Vec<Connection>, StoreError> {
        let cell = state
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(member)
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            state.count(|s| s.connection_queries += 1);
            let (live, expired): (Vec<Connection>, Vec<Connection>) = self
                .store
                .connections_of(member)
                .await?
                .into_iter()
                .partition(|connection| connection.is_live_at(now));
            state
                .expired
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(expired);
            Ok(live)
        })
        .await
        .cloned()
    }

    /// Closes the expired connections the batch found, as many at a time as posts, unless
    /// the deadline is too near to start, and never past the finish margin (many tokens
    /// expire together, so a batch may find hundreds): whatever is left keeps its item, so a
    /// later batch closes it, and it gets no frame meanwhile.
    async fn close_all_expired(&self, state: &BatchState, deadline: Option<&Deadline>) {
        let expired = std::mem::take(&mut *state.expired.lock().unwrap_or_else(|p| p.into_inner()));
        if expired.is_empty() {
            return;
        }
        let margins = deadline.map(|d| (d, self.pace.margins.margins_for(d)));
        if margins.is_some_and(|(d, m)| d.remaining() < m.stop_starting) {
            tracing::warn!(
                expired = expired.len(),
                "deadline near: expired connections left for a later batch"
            );
            return;
        }
        let count = expired.len();
        // Owned, as in `post_to_all`: a stream of borrowed connections defeats the proof
        // that the handler's future is `Send`.
        let closing = futures_util::stream::iter(expired)
            .map(|connection| async move { self.close_expired(&connection, state).await })
            .buffer_unordered(POSTS_IN_FLIGHT)
            .collect::<Vec<()>>();
        match margins {
            Some((d, m)) => {
                let budget = d.remaining().saturating_sub(m.finish);
                if tokio::time::timeout(budget, closing).await.is_err() {
                    tracing::warn!(
                        expired = count,
                        "deadline near: closing expired connections cut, the rest left for a later batch"
                    );
                }
            }
            None => {
                closing.await;
            }
        }
    }

    /// Closes a connection past its expiry (`DeleteConnection`: API Gateway closes the
    /// socket and runs `$disconnect`) and deletes its item. When API Gateway cannot be
    /// asked, the item stays, so the next batch closes it; it gets no frame either way.
    async fn close_expired(&self, connection: &Connection, state: &BatchState) {
        state.count(|s| s.expired_connections += 1);
        match delete(&self.management, &connection.connection_id).await {
            Deleted::Closed | Deleted::AlreadyGone => {}
            Deleted::Failed => {
                state.count(|s| s.failed_closes += 1);
                return;
            }
        }
        if let Err(error) = self
            .store
            .delete_connection(connection.user_uuid, &connection.connection_id)
            .await
        {
            // Its TTL removes it, or the next batch tries again (DeleteConnection then
            // answers 410).
            tracing::warn!(connection = %connection.connection_id, %error, "could not delete an expired connection");
        }
    }

    /// One frame to every connection not yet found gone in this batch; returns when every
    /// post has ended, so the conversation's next frame cannot overtake it.
    async fn post_to_all(&self, connections: &[Connection], frame: &[u8], state: &BatchState) {
        // Owned: a stream of borrowed connections defeats the compiler's proof that the
        // handler's future is `Send`.
        let live: Vec<Connection> = connections
            .iter()
            .filter(|c| !state.is_gone(c))
            .cloned()
            .collect();
        futures_util::stream::iter(live)
            .map(|connection| async move {
                self.post_and_settle(&connection, frame, state).await;
            })
            .buffer_unordered(POSTS_IN_FLIGHT)
            .collect::<Vec<()>>()
            .await;
    }

    async fn post_and_settle(&self, connection: &Connection, frame: &[u8], state: &BatchState) {
        let throttled = || state.count(|s| s.throttled_posts += 1);
        match post(
            &self.management,
            self.retry,
            &connection.connection_id,
            frame,
            throttled,
        )
        .await
        {
            Posted::Delivered => state.count(|s| s.frames_sent += 1),
            Posted::Failed => state.count(|s| s.failed_posts += 1),
            Posted::Gone => {
                state.count(|s| s.gone_connections += 1);
                state.mark_gone(connection);
                self.forget_gone(connection).await;
            }
        }
    }

    /// Deletes a connection API Gateway answered `410 Gone` for, unless it is still opening.
    async fn forget_gone(&self, connection: &Connection) {
        if opened_within(connection, GONE_GRACE) {
            tracing::debug!(connection = %connection.connection_id, "gone while still opening; left to its TTL");
            return;
        }
        if let Err(error) = self
            .store
            .delete_connection(connection.user_uuid, &connection.connection_id)
            .await
        {
            // Not retried: the item's TTL, or the next 410, removes it.
            tracing::warn!(connection = %connection.connection_id, %error, "could not delete a gone connection");
        }
    }
}

/// Whether the connection was opened less than `grace` ago.
pub(crate) fn opened_within(connection: &Connection, grace: Duration) -> bool {
    messaging::Timestamp::parse(&connection.connected_at).is_ok_and(|at| {
        let age = time::OffsetDateTime::now_utc() - at.as_datetime();
        age < time::Duration::try_from(grace).unwrap_or(time::Duration::ZERO)
    })
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn a_frame_is_the_created_message_plus_its_type() {
        let message = Message {
            life: Default::default(),
            group_uuid: Uuid::from_u128(1),
            uuid: Uuid::from_u128(2),
            text: "Hello".into(),
            created_at: "2026-11-22T10:15:30.123456+00:00".into(),
            sender: messaging::UserSummary {
                uuid: Uuid::from_u128(3),
                handle: "bayko".into(),
                display_name: "Andrew Bayko".into(),
            },
        };
        let frame = serde_json::to_value(PushFrame::from(message)).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({
                "type": "message",
                "message_group_uuid": "00000000-0000-0000-0000-000000000001",
                "uuid": "00000000-0000-0000-0000-000000000002",
                "display_name": "Andrew Bayko",
                "handle": "bayko",
                "message": "Hello",
                "created_at": "2026-11-22T10:15:30.123456+00:00",
            })
        );
    }

    #[test]
    fn the_metrics_line_carries_every_push_metric_with_its_value() {
        let summary = PushSummary {
            frames_sent: 7,
            failed_posts: 2,
            duration_ms: 40,
            ..PushSummary::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let emf = summary.to_emf(crate::emf::METRICS_NAMESPACE, "messaging-push", now, None);
        let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 17);
        for name in &names {
            assert!(emf.get(name).is_some(), "metric {name} has no value");
        }
        // The template alarms on FailedPosts.
        assert_eq!(emf["FailedPosts"], 2);
        assert_eq!(emf["FramesSent"], 7);
        assert_eq!(emf["PushDuration"], 40);
        assert_eq!(emf["FunctionName"], "messaging-push");
        assert_eq!(emf["level"], "INFO");
    }

    #[test]
    fn a_connection_still_opening_is_not_deleted_on_a_410() {
        let now = messaging::Timestamp::now();
        let fresh = Connection::opened(Uuid::from_u128(1), "a".into(), now);
        let old = Connection::opened(
            Uuid::from_u128(1),
            "b".into(),
            messaging::Timestamp::from_datetime(now.as_datetime() - time::Duration::seconds(60)),
        );
        assert!(opened_within(&fresh, GONE_GRACE));
        assert!(!opened_within(&old, GONE_GRACE));
    }
}
