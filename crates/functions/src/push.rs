//! `messaging-push`: DynamoDB stream records in, WebSocket frames out. Every new message
//! goes, as one JSON text frame, to every live connection of every member of its
//! conversation (the sender's other connections included), through the API Gateway
//! Management API (`PostToConnection`).
//!
//! Per batch: look at every record, keep INSERTs of `MSG#` items (the same filter as
//! `messaging-stream`: a second reader of the same stream), group them by conversation in
//! stream order, and per conversation find the members (one Query of `MBR#<group>`) and
//! their connections (one Query of `CONN#<member>` per member per batch, shared by every
//! conversation of the batch). Then post each message in order to every connection: a
//! conversation's next message goes out only when the previous one has been posted
//! everywhere, so each connection sees a conversation in order.
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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_apigatewaymanagement::Client as ManagementClient;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::StreamExt;
use messaging::model::Connection;
use messaging::{Message, Store, StoreError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::CreatedMessage;
use crate::stream::{Deadline, DeadlineMargins, InsertedMessage, NotAMessage, emf_level, rfc3339};

/// The trigger's filter: the very pattern of `messaging-stream` (new messages only).
pub const FILTER_PATTERN: &str = crate::stream::FILTER_PATTERN;

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

/// How a post is retried before it is given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostRetry {
    /// Attempts per post, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubled each time, with jitter.
    pub base_backoff: Duration,
}

impl Default for PostRetry {
    /// Four attempts over at most ~0.4 s: API Gateway's throttling is per account and
    /// region (a token bucket) and clears within that when it is a burst; beyond it, the
    /// frame is late anyway and the client catches up by reading.
    fn default() -> Self {
        Self {
            attempts: 4,
            base_backoff: Duration::from_millis(25),
        }
    }
}

/// A `410 Gone` from a connection younger than this is not acted on: API Gateway runs
/// `$connect` (which records the connection) before the connection is open, so a post in
/// that window may find it not there yet. Its TTL, or a later 410, removes it if it never
/// opened.
pub const GONE_GRACE: Duration = Duration::from_secs(5);

/// The Management API client for `endpoint`, built from the environment's SDK
/// configuration. The SDK's own retries are off: [`PushHandler`] retries throttled posts
/// itself, bounded and counted.
pub fn management_client(sdk_config: &aws_config::SdkConfig, endpoint: &str) -> ManagementClient {
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk_config)
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .timeout_config(post_timeouts())
        .build();
    ManagementClient::from_conf(config)
}

/// The Management API client for a local stand-in at `endpoint`, with the dummy
/// credentials and region of every local client.
pub fn local_management_client(endpoint: &str) -> ManagementClient {
    ManagementClient::from_conf(local_management_config(endpoint).build())
}

/// The configuration of [`local_management_client`], to extend (interceptors) first.
pub fn local_management_config(endpoint: &str) -> aws_sdk_apigatewaymanagement::config::Builder {
    aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_apigatewaymanagement::config::Region::new(
            messaging::connect::LOCAL_REGION,
        ))
        .credentials_provider(messaging::connect::local_credentials())
        .retry_config(RetryConfig::disabled())
        .timeout_config(post_timeouts())
}

/// A post is small and its endpoint regional: a stuck one must not hold the conversation.
fn post_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .build()
}

/// What one batch did; logged as one line, and as CloudWatch metrics in Lambda.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushSummary {
    pub records: usize,
    pub messages: usize,
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
    /// The summary as a CloudWatch embedded-metric-format line (see
    /// [`crate::stream::BatchSummary::to_emf`] for why it carries a level).
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
        let counts = [
            ("Records", self.records),
            ("Messages", self.messages),
            ("Skipped", self.skipped),
            ("Malformed", self.malformed),
            ("Conversations", self.conversations),
            ("MemberQueries", self.member_queries),
            ("ConnectionQueries", self.connection_queries),
            ("FramesSent", self.frames_sent),
            ("GoneConnections", self.gone_connections),
            ("ThrottledPosts", self.throttled_posts),
            ("FailedPosts", self.failed_posts),
            ("FailedPushConversations", self.failed_conversations),
            ("UnstartedPushConversations", self.unstarted_conversations),
        ];
        let mut metrics: Vec<serde_json::Value> = counts
            .iter()
            .map(|(name, _)| serde_json::json!({ "Name": name, "Unit": "Count" }))
            .collect();
        metrics.push(serde_json::json!({ "Name": "PushDuration", "Unit": "Milliseconds" }));
        let mut line = serde_json::json!({
            "level": emf_level(configured_level),
            "timestamp": rfc3339(now),
            "_aws": {
                "Timestamp": epoch_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": metrics,
                }],
            },
            "FunctionName": function_name,
            "PushDuration": self.duration_ms,
        });
        for (name, value) in counts {
            line[name] = serde_json::json!(value);
        }
        line
    }
}

/// How posting one frame to one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Posted {
    Delivered,
    Gone,
    Failed,
}

/// How one conversation of a batch ended.
enum Outcome {
    Pushed,
    /// Who to push to could not be read.
    LookupFailed(StoreError),
    CutAtDeadline,
    NotStarted,
}

/// Per batch: each member's connections, read once, and connections found gone.
#[derive(Default)]
struct BatchState {
    connections: Mutex<HashMap<Uuid, Arc<tokio::sync::OnceCell<Vec<Connection>>>>>,
    gone: Mutex<HashSet<String>>,
    summary: Mutex<PushSummary>,
}

impl BatchState {
    fn count(&self, update: impl FnOnce(&mut PushSummary)) {
        update(&mut self.summary.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The handler, built once per execution environment.
#[derive(Debug, Clone)]
pub struct PushHandler {
    store: Store,
    management: ManagementClient,
    concurrency: usize,
    retry: PostRetry,
    margins: DeadlineMargins,
}

impl PushHandler {
    pub fn new(store: Store, management: ManagementClient) -> Self {
        Self {
            store,
            management,
            concurrency: DEFAULT_CONCURRENCY,
            retry: PostRetry::default(),
            margins: DeadlineMargins::default(),
        }
    }

    pub fn with_retry(mut self, retry: PostRetry) -> Self {
        self.retry = PostRetry {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    pub fn with_deadline_margins(mut self, margins: DeadlineMargins) -> Self {
        self.margins = margins;
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
        let started = Instant::now();
        let state = BatchState::default();
        state.count(|s| s.records = event.records.len());

        // Conversations in order of their first record; messages in stream order.
        let mut conversations: Vec<(usize, Vec<Message>)> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for (position, record) in event.records.iter().enumerate() {
            match InsertedMessage::try_from(record) {
                Ok(InsertedMessage(message)) => {
                    state.count(|s| s.messages += 1);
                    let slot = *index.entry(message.group_uuid).or_insert_with(|| {
                        conversations.push((position, Vec::new()));
                        conversations.len() - 1
                    });
                    conversations[slot].1.push(message);
                }
                Err(NotAMessage::Malformed(reason)) => {
                    state.count(|s| s.malformed += 1);
                    tracing::warn!(event_id = %record.event_id, %reason, "skipping malformed stream record");
                }
                Err(reason) => {
                    state.count(|s| s.skipped += 1);
                    tracing::debug!(event_id = %record.event_id, %reason, "skipping stream record");
                }
            }
        }
        state.count(|s| s.conversations = conversations.len());

        let now = epoch_seconds(SystemTime::now());
        let deadline = deadline.as_ref();
        let state = &state;
        let outcomes: Vec<(usize, Uuid, Outcome)> = futures_util::stream::iter(conversations)
            .map(|(first_position, messages)| async move {
                let group = messages[0].group_uuid;
                let outcome = self.push_within(messages, now, state, deadline).await;
                (first_position, group, outcome)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;

        let mut earliest_failure: Option<usize> = None;
        for (first_position, group, outcome) in outcomes {
            let event_id = &event.records[first_position].event_id;
            let failed = match outcome {
                Outcome::Pushed => false,
                Outcome::LookupFailed(error) => {
                    state.count(|s| s.failed_conversations += 1);
                    tracing::warn!(%group, %event_id, %error, "could not read who to push to; reporting for retry");
                    true
                }
                Outcome::CutAtDeadline => {
                    state.count(|s| s.failed_conversations += 1);
                    tracing::warn!(%group, %event_id, "push cut at the invocation's deadline; reporting for retry");
                    true
                }
                Outcome::NotStarted => {
                    state.count(|s| s.unstarted_conversations += 1);
                    true
                }
            };
            if failed {
                earliest_failure =
                    Some(earliest_failure.map_or(first_position, |p| p.min(first_position)));
            }
        }

        let mut response = DynamoDbEventResponse::default();
        if let Some(position) = earliest_failure {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = event.records[position].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        let mut summary = state
            .summary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            records = summary.records,
            messages = summary.messages,
            skipped = summary.skipped,
            malformed = summary.malformed,
            conversations = summary.conversations,
            member_queries = summary.member_queries,
            connection_queries = summary.connection_queries,
            frames = summary.frames_sent,
            gone = summary.gone_connections,
            throttled = summary.throttled_posts,
            failed_posts = summary.failed_posts,
            failures = summary.failed_conversations,
            unstarted = summary.unstarted_conversations,
            duration_ms = summary.duration_ms,
            "push batch"
        );
        (response, summary)
    }

    async fn push_within(
        &self,
        messages: Vec<Message>,
        now: i64,
        state: &BatchState,
        deadline: Option<&Deadline>,
    ) -> Outcome {
        let push = self.push_conversation(messages, now, state);
        let Some(deadline) = deadline else {
            return push.await;
        };
        let remaining = deadline.remaining();
        if remaining < self.margins.stop_starting {
            return Outcome::NotStarted;
        }
        match tokio::time::timeout(remaining.saturating_sub(self.margins.finish), push).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Outcome::CutAtDeadline,
        }
    }

    /// One conversation's messages, in order, to every live connection of its members.
    async fn push_conversation(
        &self,
        messages: Vec<Message>,
        now: i64,
        state: &BatchState,
    ) -> Outcome {
        let group = messages[0].group_uuid;
        state.count(|s| s.member_queries += 1);
        let members = match self.store.recipients(group).await {
            Ok(members) => members,
            Err(error) => return Outcome::LookupFailed(error),
        };
        let mut connections = Vec::new();
        for member in members {
            match self.connections_of(member, now, state).await {
                Ok(found) => connections.extend(found),
                Err(error) => return Outcome::LookupFailed(error),
            }
        }
        for message in messages {
            let frame = match serde_json::to_vec(&PushFrame::from(message)) {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::error!(%error, "could not encode a frame");
                    continue;
                }
            };
            let live: Vec<Connection> = {
                let gone = state.gone.lock().unwrap_or_else(|p| p.into_inner());
                connections
                    .iter()
                    .filter(|c| !gone.contains(&c.connection_id))
                    .cloned()
                    .collect()
            };
            let frame = &frame;
            futures_util::stream::iter(live)
                .map(|connection| async move {
                    self.post_and_settle(&connection, frame, state).await;
                })
                .buffer_unordered(POSTS_IN_FLIGHT)
                .collect::<Vec<()>>()
                .await;
        }
        Outcome::Pushed
    }

    /// A member's live connections, read once per batch whatever the number of
    /// conversations they are in.
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
            self.store.connections_of(member, now).await
        })
        .await
        .cloned()
    }

    async fn post_and_settle(&self, connection: &Connection, frame: &[u8], state: &BatchState) {
        match self.post(&connection.connection_id, frame, state).await {
            Posted::Delivered => state.count(|s| s.frames_sent += 1),
            Posted::Failed => state.count(|s| s.failed_posts += 1),
            Posted::Gone => {
                state.count(|s| s.gone_connections += 1);
                state
                    .gone
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(connection.connection_id.clone());
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
    }

    /// `PostToConnection`, retried on throttling and transient failures.
    async fn post(&self, connection_id: &str, frame: &[u8], state: &BatchState) -> Posted {
        for attempt in 1..=self.retry.attempts {
            let result = self
                .management
                .post_to_connection()
                .connection_id(connection_id)
                .data(Blob::new(frame))
                .send()
                .await;
            let retryable = match result {
                Ok(_) => return Posted::Delivered,
                Err(SdkError::ServiceError(error)) => {
                    let status = error.raw().status().as_u16();
                    let error = error.err();
                    if error.is_gone_exception() || status == 410 {
                        return Posted::Gone;
                    }
                    if error.is_limit_exceeded_exception() || status == 429 {
                        state.count(|s| s.throttled_posts += 1);
                        true
                    } else {
                        // 5xx may pass; Forbidden or a frame too large will not.
                        status >= 500
                    }
                }
                // No answer (connection refused, timeout): the endpoint may recover.
                Err(SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => true,
                Err(_) => false,
            };
            if !retryable {
                tracing::warn!(connection = %connection_id, "post refused; skipping");
                return Posted::Failed;
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(backoff(self.retry.base_backoff, attempt)).await;
            }
        }
        tracing::warn!(connection = %connection_id, attempts = self.retry.attempts, "post still failing after its retries; skipping");
        Posted::Failed
    }
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1 << (attempt - 1).min(10));
    let jitter_percent = u32::from(Uuid::new_v4().as_bytes()[0]) % 50;
    exponential + exponential * jitter_percent / 100
}

fn epoch_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
    })
}

/// Whether the connection was opened less than `grace` ago.
fn opened_within(connection: &Connection, grace: Duration) -> bool {
    messaging::Timestamp::parse(&connection.connected_at).is_ok_and(|at| {
        let age = time::OffsetDateTime::now_utc() - at.as_datetime();
        age < time::Duration::try_from(grace).unwrap_or(time::Duration::ZERO)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_the_created_message_plus_its_type() {
        let message = Message {
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
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(20);
        for attempt in 1..=4 {
            let wait = backoff(base, attempt);
            let floor = base * (1 << (attempt - 1));
            assert!(wait >= floor && wait < floor * 3 / 2, "{attempt}: {wait:?}");
        }
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
