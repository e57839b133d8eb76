//! `ws-presence`: the WebSocket route `presence`. A client showing a direct conversation
//! sends `{"action":"presence","message_group_uuid":"…"}` on its connection; the answer
//! (the route's response, so no Management API call) is the other member's presence frame,
//! and the connection is recorded as watching them (`WATCH#<partner>` / `<connection id>`,
//! one watch per connection: a new one replaces the last), so their next `$connect` or
//! `$disconnect` that changes `online` is posted to it by `ws-connect`/`ws-disconnect`
//! ([`crate::websocket::WsConnections`]).
//!
//! Bad input is answered with an error frame naming precise codes, never a panic; only an
//! unreadable table is an `Err` (API Gateway then sends the client its internal-error frame).
//!
//! The event is converted here ([`MessageEvent`]): the body, the connection and the
//! authorizer's context of an API Gateway WebSocket `MESSAGE` event.

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use messaging::model::{Connection, ConversationKind};
use messaging::store::{Watch, Watching};
use messaging::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::websocket::{WebSocketContext, WebSocketEvent};

/// The route key (`$request.body.action`) and the `action` of the client's frame.
pub const ACTION: &str = "presence";

/// A client's frame is tiny; anything larger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// The frame telling a watcher whether someone is online: the answer to `presence`, and
/// what `ws-connect`/`ws-disconnect` post when `online` changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceFrame {
    #[serde(rename = "type")]
    pub kind: String,
    pub message_group_uuid: String,
    pub handle: String,
    pub online: bool,
    /// The last `$connect` or `$disconnect` of theirs; absent if they never connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
}

impl PresenceFrame {
    pub const TYPE: &'static str = "presence";

    pub fn new(
        message_group_uuid: Uuid,
        handle: String,
        online: bool,
        last_seen_at: Option<String>,
    ) -> Self {
        Self {
            kind: Self::TYPE.to_owned(),
            message_group_uuid: message_group_uuid.to_string(),
            handle,
            online,
            last_seen_at,
        }
    }
}

/// The answer to a `presence` frame that cannot be acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceErrorFrame {
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
    pub errors: Vec<String>,
}

/// Why a `presence` frame is refused; each is one code of the error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PresenceRefusal {
    #[error("body_too_large")]
    BodyTooLarge,
    /// Not JSON, or not an object.
    #[error("json_invalid")]
    JsonInvalid,
    /// Absent, not a string, or not a uuid.
    #[error("message_group_uuid_invalid")]
    GroupUuidInvalid,
    /// Not a member, or no such conversation (the HTTP API's answer for both).
    #[error("message_group_not_found")]
    NotFound,
    /// Presence is for direct conversations: a group would make one frame a fan-out.
    #[error("message_group_not_direct")]
    NotDirect,
    /// Either member blocked the other.
    #[error("messaging_blocked")]
    Blocked,
    /// The event names no connection or no user (the route is not behind `ws-authorizer`).
    #[error("connection_unknown")]
    ConnectionUnknown,
}

impl PresenceRefusal {
    pub const ALL: [PresenceRefusal; 7] = [
        Self::BodyTooLarge,
        Self::JsonInvalid,
        Self::GroupUuidInvalid,
        Self::NotFound,
        Self::NotDirect,
        Self::Blocked,
        Self::ConnectionUnknown,
    ];

    pub fn frame(self) -> PresenceErrorFrame {
        PresenceErrorFrame {
            kind: "error".to_owned(),
            action: ACTION.to_owned(),
            errors: vec![self.to_string()],
        }
    }
}

/// An API Gateway WebSocket `MESSAGE` event (Lambda proxy integration): the frame's text
/// and the connection it came on, with the authorizer's context of its `$connect`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent {
    pub request_context: WebSocketContext,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

/// What a `presence` frame asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRequest {
    pub message_group_uuid: Uuid,
}

impl MessageEvent {
    /// The connection the frame came on (its user and expiry from the authorizer context).
    pub fn connection(&self) -> Result<Connection, PresenceRefusal> {
        let event = WebSocketEvent {
            request_context: self.request_context.clone(),
            body: None,
        };
        Connection::try_from(&event).map_err(|reason| {
            tracing::error!(%reason, "a presence frame without its connection's context");
            PresenceRefusal::ConnectionUnknown
        })
    }

    /// The frame's request: the body as a JSON object with a uuid `message_group_uuid`.
    /// Other fields (`action`) are not looked at: the route chose this function by `action`
    /// already. A binary frame (API Gateway hands it over base64-encoded) is not JSON text.
    pub fn request(&self) -> Result<PresenceRequest, PresenceRefusal> {
        if self.is_base64_encoded {
            return Err(PresenceRefusal::JsonInvalid);
        }
        let text = self.body.as_deref().unwrap_or_default();
        if text.len() > MAX_BODY_BYTES {
            return Err(PresenceRefusal::BodyTooLarge);
        }
        let body: Value = serde_json::from_str(text).map_err(|_| PresenceRefusal::JsonInvalid)?;
        let object = body.as_object().ok_or(PresenceRefusal::JsonInvalid)?;
        let group = object
            .get("message_group_uuid")
            .and_then(Value::as_str)
            .and_then(|text| Uuid::try_parse(text.trim()).ok())
            .ok_or(PresenceRefusal::GroupUuidInvalid)?;
        Ok(PresenceRequest {
            message_group_uuid: group,
        })
    }
}

/// `ws-presence`.
#[derive(Debug, Clone)]
pub struct WsPresence {
    store: Store,
}

impl WsPresence {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Answers the partner's presence frame and records the watch, or an error frame.
    /// Costs one Query of `MBR#<group>` (strongly consistent), then at once a `GetItem` of
    /// the partner's profile beside the watch's `PutItem` + `UpdateItem` of the connection
    /// item (+ a `DeleteItem` when it replaces another watch): 2 round trips.
    #[tracing::instrument(skip_all, fields(connection = %event.request_context.connection_id))]
    pub async fn handle(
        &self,
        event: &MessageEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        match self.answer(event).await? {
            Ok(frame) => Ok(response(&frame)),
            Err(refusal) => {
                tracing::info!(%refusal, "presence refused");
                Ok(response(&refusal.frame()))
            }
        }
    }

    async fn answer(
        &self,
        event: &MessageEvent,
    ) -> Result<Result<PresenceFrame, PresenceRefusal>, StoreError> {
        let (connection, request) = match event
            .connection()
            .and_then(|connection| event.request().map(|request| (connection, request)))
        {
            Ok(both) => both,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let group = request.message_group_uuid;
        let caller = connection.user_uuid;
        let memberships = self.store.memberships(group).await?;
        let Some(own) = memberships.iter().find(|m| m.user_uuid == caller) else {
            return Ok(Err(PresenceRefusal::NotFound));
        };
        if own.kind != ConversationKind::Direct {
            return Ok(Err(PresenceRefusal::NotDirect));
        }
        if !own.blockers.is_empty() {
            return Ok(Err(PresenceRefusal::Blocked));
        }
        let Some(partner) = memberships.iter().find(|m| m.user_uuid != caller) else {
            // A direct conversation always has two members; one alone tells nobody's presence.
            return Ok(Err(PresenceRefusal::NotFound));
        };
        let watch = Watch {
            watched: partner.user_uuid,
            watcher: caller,
            connection_id: connection.connection_id.clone(),
            message_group_uuid: group,
            expires_at: connection.expires_at,
        };
        let (watching, presence) = tokio::join!(
            self.store.watch(&watch),
            self.store.presence_of(partner.user_uuid)
        );
        match watching? {
            Watching::Recorded { .. } => {}
            Watching::ConnectionUnknown => {
                // Answered all the same: the client learns the state, only not its changes.
                tracing::warn!("presence asked on a connection with no item; not watched");
            }
        }
        let Some((handle, presence)) = presence? else {
            return Ok(Err(PresenceRefusal::NotFound));
        };
        let now = i64::try_from(SystemClock.unix_seconds()).unwrap_or(i64::MAX);
        Ok(Ok(PresenceFrame::new(
            group,
            handle,
            presence.online_at(now),
            presence.last_seen_at,
        )))
    }
}

/// The route's response: API Gateway sends its body to the client as one text frame (the
/// route has a `$default` route response: "Set up route responses for WebSocket APIs").
fn response(frame: &impl Serialize) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response.body = Some(Body::Text(
        serde_json::to_string(frame).unwrap_or_else(|_| "{}".to_owned()),
    ));
    response
}
