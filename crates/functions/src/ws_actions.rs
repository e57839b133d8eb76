//! What clients send on their WebSocket connection: `{"action": <route key>, …}` text
//! frames, which API Gateway routes by `action` (the API's `RouteSelectionExpression`,
//! `$request.body.action`) to a route's function as a MESSAGE event ([`WebSocketEvent`] with
//! its `body`). A frame whose `action` names no route goes to `$default`.
//!
//! The generic part is here, shared by every action's function: the sender (from the
//! authorizer's context, as `$connect` had it), the frame's JSON and its size
//! ([`ClientFrame::of_event`]), and the one [`ErrorFrame`] a client gets for a refused frame,
//! whichever the action ([`ActionError`]'s codes).
//!
//! How the client is told depends on whether the route has a route response
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html):
//! - two-way (`presence`, [`crate::presence`]): API Gateway sends the function's response
//!   body to the client as a frame, so the answer (or its error frame) costs no Management
//!   API call; it is worth it where every request has an answer.
//! - one-way (`typing`, `$default`): success has nothing to answer, so there is no route
//!   response; an error frame is posted to the sender's own connection (`PostToConnection`,
//!   the push's posting code) and the answer is an empty 200. Only bad input costs that post.
//!
//! The local stand-in does both as API Gateway does (`crates/local/src/websocket.rs`).
//!
//! `ws-typing` ([`WsTyping`]) serves the `typing` route and `$default`, where frames that
//! are not JSON or name no action land: `{"action":"typing","message_group_uuid":…}` from a
//! member reaches every other member's connections as [`TypingFrame`], at most once per
//! member and conversation every [`TYPING_INTERVAL`]; faster ones are dropped.
//!
//! Cost of one typing event (see ARCHITECTURE, "Real-time push"): a keystroke inside the
//! interval on a warm environment that forwarded the previous one costs nothing; otherwise
//! one conditional `UpdateItem` of the sender's membership ([`Store::claim_typing`]: the
//! membership check and the rate check across environments at once), and when it is
//! forwarded, the recipients (a Query of `MBR#<group>`, and one of `CONN#<member>` per
//! other member) unless this environment read them within [`RECIPIENTS_TTL`], and one
//! `PostToConnection` per connection of the other members.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_sdk_apigatewaymanagement::Client as ManagementClient;
use futures_util::StreamExt;
use messaging::model::Connection;
pub use messaging::store::TYPING_INTERVAL;
use messaging::store::TypingClaim;
use messaging::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::push::PostRetry;
use crate::push::management::{Posted, post};
use crate::websocket::{
    CONTEXT_DISPLAY_NAME, CONTEXT_HANDLE, CONTEXT_USER_UUID, NotAConnection, WebSocketEvent,
};

/// The route key of frames whose `action` matches no route (API Gateway's).
pub const DEFAULT_ROUTE: &str = "$default";
/// The typing route: `{"action":"typing","message_group_uuid":…}`.
pub const TYPING_ACTION: &str = "typing";
/// The presence route (two-way, [`crate::presence`]):
/// `{"action":"presence","message_group_uuid":…}`.
pub const PRESENCE_ACTION: &str = "presence";
/// Every action a client may send, each its own route of the WebSocket API.
pub const ACTIONS: [&str; 2] = [TYPING_ACTION, PRESENCE_ACTION];

/// A client's frame is tiny; anything larger is refused before parsing (API Gateway itself
/// closes the connection beyond 32 KB a frame).
pub const MAX_FRAME_BYTES: usize = 4 * 1024;

/// How long an execution environment reuses a conversation's recipients (its other members'
/// connections) for typing: a member added, or a connection opened, within it gets typing
/// frames at most this late, and a leaver's open connections may still get them for as long
/// (who is typing, never what). Messages are pushed from fresh reads, whatever this says.
pub const RECIPIENTS_TTL: Duration = Duration::from_secs(5);

/// Entries of each per-environment memory before old ones are swept.
const REMEMBERED: usize = 10_000;
/// Members' connection Queries in flight at once when a conversation's recipients are read.
const CONNECTION_QUERIES_IN_FLIGHT: usize = 16;
/// Posts in flight at once for one typing event.
const POSTS_IN_FLIGHT: usize = 32;

/// What a client gets for a frame it should not have sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    #[serde(rename = "type")]
    pub kind: String,
    /// The refused frame's `action` when it had one (a client with a `typing` and a
    /// `presence` in flight tells which was refused); absent for a frame that is not a
    /// JSON object or has no string `action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub code: String,
    pub message: String,
}

impl ErrorFrame {
    pub const TYPE: &'static str = "error";

    pub fn new(action: Option<&str>, error: &ActionError) -> Self {
        Self {
            kind: Self::TYPE.to_owned(),
            action: action.map(str::to_owned),
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }
}

/// Why a client's frame is refused; each has the code its error frame carries (the HTTP
/// API's code where the same thing is wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("the frame is larger than {MAX_FRAME_BYTES} bytes")]
    BodyTooLarge,
    /// Not JSON text (a binary frame neither).
    #[error("the frame is not JSON")]
    JsonInvalid,
    #[error("the frame is not a JSON object")]
    JsonNotObject,
    #[error("the frame's action names nothing this API does")]
    ActionUnknown,
    #[error("message_group_uuid is missing or not a UUID")]
    GroupUuidInvalid,
    /// As the HTTP API answers a non-member: the conversation is not found.
    #[error("no such conversation")]
    GroupNotFound,
    /// Presence is for direct conversations: a group would make one frame a fan-out.
    #[error("presence is for direct conversations")]
    GroupNotDirect,
    #[error("one of the two users blocked the other")]
    Blocked,
    /// The event names no connection or no user (the route is not behind `ws-authorizer`);
    /// answerable only on a two-way route.
    #[error("the frame's connection is not known")]
    ConnectionUnknown,
    #[error("could not handle the frame; try again")]
    Internal,
}

impl ActionError {
    /// Every code an error frame can carry (docs/asyncapi.yaml lists them; a test checks).
    pub const CODES: [&'static str; 10] = [
        "body_too_large",
        "json_invalid",
        "json_not_object",
        "action_unknown",
        "message_group_uuid_invalid",
        "message_group_not_found",
        "message_group_not_direct",
        "messaging_blocked",
        "connection_unknown",
        "internal_error",
    ];

    /// Every variant, one per code (tests hold the docs to them).
    pub const ALL: [ActionError; 10] = [
        Self::BodyTooLarge,
        Self::JsonInvalid,
        Self::JsonNotObject,
        Self::ActionUnknown,
        Self::GroupUuidInvalid,
        Self::GroupNotFound,
        Self::GroupNotDirect,
        Self::Blocked,
        Self::ConnectionUnknown,
        Self::Internal,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::JsonInvalid => "json_invalid",
            Self::JsonNotObject => "json_not_object",
            Self::ActionUnknown => "action_unknown",
            Self::GroupUuidInvalid => "message_group_uuid_invalid",
            Self::GroupNotFound => "message_group_not_found",
            Self::GroupNotDirect => "message_group_not_direct",
            Self::Blocked => "messaging_blocked",
            Self::ConnectionUnknown => "connection_unknown",
            Self::Internal => "internal_error",
        }
    }
}

/// A client's frame, read as JSON: its action and the rest of its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub action: Option<String>,
    pub fields: serde_json::Map<String, Value>,
}

impl ClientFrame {
    /// The frame of a MESSAGE event: text (API Gateway hands a binary frame over
    /// base64-encoded, which is not JSON text) of at most [`MAX_FRAME_BYTES`], parsed.
    pub fn of_event(event: &WebSocketEvent) -> Result<Self, ActionError> {
        if event.is_base64_encoded {
            return Err(ActionError::JsonInvalid);
        }
        let body = event.body.as_deref().unwrap_or_default();
        if body.len() > MAX_FRAME_BYTES {
            return Err(ActionError::BodyTooLarge);
        }
        Self::parse(body)
    }

    /// The `action` of a frame that failed [`Self::of_event`], for its error frame.
    pub fn action_of(event: &WebSocketEvent) -> Option<String> {
        event.body.as_deref().and_then(Self::route_key)
    }

    pub fn parse(body: &str) -> Result<Self, ActionError> {
        let value: Value = serde_json::from_str(body).map_err(|_| ActionError::JsonInvalid)?;
        let Value::Object(mut fields) = value else {
            return Err(ActionError::JsonNotObject);
        };
        let action = match fields.remove("action") {
            Some(Value::String(action)) => Some(action),
            _ => None,
        };
        Ok(Self { action, fields })
    }

    /// API Gateway's route selection: the `action` string, if the frame is a JSON object with
    /// one; anything else matches no route.
    pub fn route_key(body: &str) -> Option<String> {
        Self::parse(body).ok().and_then(|frame| frame.action)
    }

    /// The frame's `message_group_uuid`.
    pub fn group_uuid(&self) -> Result<Uuid, ActionError> {
        self.fields
            .get("message_group_uuid")
            .and_then(Value::as_str)
            .and_then(|text| messaging::validate::parse_group_uuid(text).ok())
            .ok_or(ActionError::GroupUuidInvalid)
    }
}

/// Who sent a frame, from the authorizer's context `$connect` had (API Gateway passes it to
/// every route of the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub user_uuid: Uuid,
    pub handle: String,
    pub display_name: String,
    pub connection_id: String,
}

impl TryFrom<&WebSocketEvent> for Sender {
    type Error = NotAConnection;

    fn try_from(event: &WebSocketEvent) -> Result<Self, Self::Error> {
        let context = &event.request_context;
        if context.connection_id.trim().is_empty() {
            return Err(NotAConnection::NoConnectionId);
        }
        let text = |name: &str| {
            context
                .authorizer
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let user_uuid = text(CONTEXT_USER_UUID)
            .and_then(|text| Uuid::parse_str(&text).ok())
            .ok_or(NotAConnection::NoUser)?;
        let handle = text(CONTEXT_HANDLE).ok_or(NotAConnection::NoUser)?;
        // A connection opened before the authorizer passed display names (at most two hours
        // after a deploy) shows the handle instead.
        let display_name = text(CONTEXT_DISPLAY_NAME).unwrap_or_else(|| handle.clone());
        Ok(Self {
            user_uuid,
            handle,
            display_name,
            connection_id: context.connection_id.clone(),
        })
    }
}

/// What the other members' connections get while someone types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingFrame {
    #[serde(rename = "type")]
    pub kind: String,
    pub message_group_uuid: Uuid,
    pub handle: String,
    pub display_name: String,
}

impl TypingFrame {
    pub const TYPE: &'static str = "typing";
}

/// Per conversation, when its members' live connections were read, and what they were.
type RecipientsByGroup = HashMap<Uuid, (Instant, Arc<Vec<Connection>>)>;

/// What became of one frame (the handler's answer to API Gateway is an empty 200 either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Typing went to the other members' connections: how many took it.
    Forwarded { delivered: usize },
    /// Too soon after the sender's last forwarded typing: dropped, nothing posted.
    Dropped,
    /// Refused; the sender's connection was sent this error frame.
    Refused(ActionError),
    /// The event names no connection or user (not behind the authorizer): nothing to answer.
    Unanswerable,
}

/// `ws-typing`, built once per execution environment: it remembers, per connection and
/// conversation, when it last forwarded (so a keystroke inside the interval costs no
/// request), and each conversation's recipients for [`RECIPIENTS_TTL`].
#[derive(Debug, Clone)]
pub struct WsTyping {
    store: Store,
    management: ManagementClient,
    retry: PostRetry,
    clock: Arc<dyn Clock>,
    interval: Duration,
    recipients_ttl: Duration,
    forwarded: Arc<Mutex<HashMap<(String, Uuid), Instant>>>,
    recipients: Arc<Mutex<RecipientsByGroup>>,
}

impl WsTyping {
    pub fn new(store: Store, management: ManagementClient) -> Self {
        Self {
            store,
            management,
            retry: PostRetry::default(),
            clock: Arc::new(SystemClock),
            interval: TYPING_INTERVAL,
            recipients_ttl: RECIPIENTS_TTL,
            forwarded: Arc::default(),
            recipients: Arc::default(),
        }
    }

    /// Time from `clock` (tests move it instead of sleeping).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_retry(mut self, retry: PostRetry) -> Self {
        self.retry = PostRetry {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// The Lambda handler's answer: an empty 200 (the route is one-way; see the module). A
    /// store failure is an `Err` after the sender was sent an `internal_error` frame.
    pub async fn handle(
        &self,
        event: &WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        self.handle_frame(event).await?;
        let mut response = ApiGatewayProxyResponse::default();
        response.status_code = 200;
        Ok(response)
    }

    /// One client frame, routed to `typing` or `$default`.
    #[tracing::instrument(skip_all, fields(route = %event.request_context.route_key, connection = %event.request_context.connection_id))]
    pub async fn handle_frame(&self, event: &WebSocketEvent) -> Result<Outcome, StoreError> {
        let sender = match Sender::try_from(event) {
            Ok(sender) => sender,
            Err(reason) => {
                tracing::error!(%reason, "a client frame without its connection's user");
                return Ok(Outcome::Unanswerable);
            }
        };
        let frame = match ClientFrame::of_event(event) {
            Ok(frame) => frame,
            Err(error) => {
                let action = ClientFrame::action_of(event);
                return Ok(self.refuse(&sender, action.as_deref(), error).await);
            }
        };
        match frame.action.as_deref() {
            Some(TYPING_ACTION) => self.typing(&sender, &frame).await,
            action => Ok(self
                .refuse(&sender, action, ActionError::ActionUnknown)
                .await),
        }
    }

    async fn typing(&self, sender: &Sender, frame: &ClientFrame) -> Result<Outcome, StoreError> {
        let group = match frame.group_uuid() {
            Ok(group) => group,
            Err(error) => return Ok(self.refuse(sender, Some(TYPING_ACTION), error).await),
        };
        let now = self.clock.now();
        let key = (sender.connection_id.clone(), group);
        if self
            .lock_forwarded()
            .get(&key)
            .is_some_and(|last| now.saturating_duration_since(*last) < self.interval)
        {
            return Ok(Outcome::Dropped);
        }
        let now_ms = i64::try_from(self.clock.unix_millis()).unwrap_or(i64::MAX);
        let claim = match self
            .store
            .claim_typing(group, sender.user_uuid, now_ms, self.interval)
            .await
        {
            Ok(claim) => claim,
            Err(error) => {
                self.refuse(sender, Some(TYPING_ACTION), ActionError::Internal)
                    .await;
                return Err(error);
            }
        };
        match claim {
            TypingClaim::Forward => {}
            TypingClaim::TooSoon => return Ok(Outcome::Dropped),
            TypingClaim::NotMember => {
                return Ok(self
                    .refuse(sender, Some(TYPING_ACTION), ActionError::GroupNotFound)
                    .await);
            }
            TypingClaim::Blocked => {
                return Ok(self
                    .refuse(sender, Some(TYPING_ACTION), ActionError::Blocked)
                    .await);
            }
        }
        self.remember_forwarded(key, now);
        let recipients = match self.recipients(group, sender.user_uuid, now).await {
            Ok(recipients) => recipients,
            Err(error) => {
                self.refuse(sender, Some(TYPING_ACTION), ActionError::Internal)
                    .await;
                return Err(error);
            }
        };
        let typing = TypingFrame {
            kind: TypingFrame::TYPE.to_owned(),
            message_group_uuid: group,
            handle: sender.handle.clone(),
            display_name: sender.display_name.clone(),
        };
        let data =
            serde_json::to_vec(&typing).map_err(|err| StoreError::Encode(err.to_string()))?;
        let delivered = self.post_to_all(group, &recipients, &data).await;
        Ok(Outcome::Forwarded { delivered })
    }

    /// The live connections of every member of `group` but `sender`, from this environment's
    /// memory when it is younger than [`RECIPIENTS_TTL`].
    async fn recipients(
        &self,
        group: Uuid,
        sender: Uuid,
        now: Instant,
    ) -> Result<Arc<Vec<Connection>>, StoreError> {
        let remembered = self
            .lock_recipients()
            .get(&group)
            .and_then(|(at, connections)| {
                (now.saturating_duration_since(*at) < self.recipients_ttl)
                    .then(|| connections.clone())
            });
        let all = match remembered {
            Some(all) => all,
            None => {
                let epoch = i64::try_from(self.clock.unix_seconds()).unwrap_or(i64::MAX);
                let members = self.store.recipients(group).await?;
                // The members' Queries side by side: a 50-member group's one after another
                // would keep the first typing frame waiting for 50 round trips.
                let per_member: Vec<Result<Vec<Connection>, StoreError>> =
                    futures_util::stream::iter(members)
                        .map(|member| self.store.connections_of(member))
                        .buffer_unordered(CONNECTION_QUERIES_IN_FLIGHT)
                        .collect()
                        .await;
                let mut connections = Vec::new();
                for member_connections in per_member {
                    connections.extend(
                        member_connections?
                            .into_iter()
                            .filter(|connection| connection.is_live_at(epoch)),
                    );
                }
                let connections = Arc::new(connections);
                let mut remembered = self.lock_recipients();
                if remembered.len() >= REMEMBERED {
                    let ttl = self.recipients_ttl;
                    remembered.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
                }
                remembered.insert(group, (now, connections.clone()));
                connections
            }
        };
        Ok(Arc::new(
            all.iter()
                .filter(|connection| connection.user_uuid != sender)
                .cloned()
                .collect(),
        ))
    }

    /// Posts `data` to every connection; a connection found gone is forgotten from this
    /// environment's memory (its item is the push's and `$disconnect`'s to delete).
    async fn post_to_all(&self, group: Uuid, connections: &[Connection], data: &[u8]) -> usize {
        let results: Vec<(String, Posted)> = futures_util::stream::iter(connections.to_vec())
            .map(|connection| async move {
                let posted = post(
                    &self.management,
                    self.retry,
                    &connection.connection_id,
                    data,
                    || {},
                )
                .await;
                (connection.connection_id, posted)
            })
            .buffer_unordered(POSTS_IN_FLIGHT)
            .collect()
            .await;
        let gone: Vec<&str> = results
            .iter()
            .filter(|(_, posted)| *posted == Posted::Gone)
            .map(|(id, _)| id.as_str())
            .collect();
        if !gone.is_empty()
            && let Some((_, connections)) = self.lock_recipients().get_mut(&group)
        {
            *connections = Arc::new(
                connections
                    .iter()
                    .filter(|connection| !gone.contains(&connection.connection_id.as_str()))
                    .cloned()
                    .collect(),
            );
        }
        results
            .iter()
            .filter(|(_, posted)| *posted == Posted::Delivered)
            .count()
    }

    /// Tells the sender's connection why its frame was refused (one post; a failed post is
    /// only logged: the client may have gone).
    async fn refuse(&self, sender: &Sender, action: Option<&str>, error: ActionError) -> Outcome {
        tracing::info!(user = %sender.user_uuid, code = error.code(), "client frame refused");
        match serde_json::to_vec(&ErrorFrame::new(action, &error)) {
            Ok(data) => {
                let posted = post(
                    &self.management,
                    self.retry,
                    &sender.connection_id,
                    &data,
                    || {},
                )
                .await;
                if posted != Posted::Delivered {
                    tracing::info!(?posted, "the error frame did not reach the sender");
                }
            }
            Err(error) => tracing::error!(%error, "could not encode an error frame"),
        }
        Outcome::Refused(error)
    }

    fn remember_forwarded(&self, key: (String, Uuid), now: Instant) {
        let mut forwarded = self.lock_forwarded();
        if forwarded.len() >= REMEMBERED {
            let interval = self.interval;
            forwarded.retain(|_, at| now.saturating_duration_since(*at) < interval);
        }
        forwarded.insert(key, now);
    }

    fn lock_forwarded(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Uuid), Instant>> {
        self.forwarded.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_recipients(&self) -> std::sync::MutexGuard<'_, RecipientsByGroup> {
        self.recipients.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_route_by_their_action_string_only() {
        assert_eq!(
            ClientFrame::route_key(r#"{"action":"typing","message_group_uuid":"x"}"#),
            Some("typing".to_owned())
        );
        for unrouted in [
            "",
            "typing",
            "[]",
            r#"{"action":7}"#,
            r#"{"kind":"typing"}"#,
        ] {
            assert_eq!(ClientFrame::route_key(unrouted), None, "{unrouted}");
        }
        assert_eq!(
            ClientFrame::parse("{").unwrap_err(),
            ActionError::JsonInvalid
        );
        assert_eq!(
            ClientFrame::parse("[1]").unwrap_err(),
            ActionError::JsonNotObject
        );
    }

    #[test]
    fn error_frames_carry_a_listed_code() {
        let codes: Vec<&str> = ActionError::ALL.iter().map(ActionError::code).collect();
        assert_eq!(codes, ActionError::CODES, "one variant per code, in order");
        for error in ActionError::ALL {
            let frame = serde_json::to_value(ErrorFrame::new(Some("presence"), &error)).unwrap();
            assert_eq!(
                (&frame["type"], &frame["action"]),
                (&"error".into(), &"presence".into())
            );
            assert!(!frame["message"].as_str().unwrap().is_empty());
        }
        let unnamed =
            serde_json::to_value(ErrorFrame::new(None, &ActionError::JsonInvalid)).unwrap();
        assert!(unnamed.get("action").is_none(), "no action, no field");
    }
}
