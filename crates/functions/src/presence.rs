//! `ws-presence`: the WebSocket route `presence`. A client showing a direct conversation
//! sends `{"action":"presence","message_group_uuid":"…"}` on its connection; the answer
//! (the route's response, so no Management API call) is the other member's presence frame,
//! and the connection is recorded as watching them (`WATCH#<partner>` / `<connection id>`,
//! one watch per connection: a new one replaces the last), so their next `$connect` or
//! `$disconnect` that changes `online` is posted to it by `ws-connect`/`ws-disconnect`
//! ([`crate::websocket::WsConnections`]).
//!
//! The event and the frame are read as every client action's are ([`crate::ws_actions`]:
//! [`WebSocketEvent`], [`ClientFrame`], [`Sender`]); bad input is answered with the same
//! [`ErrorFrame`] (`{"type":"error","action":"presence","code","message"}`), never a panic;
//! only an unreadable table is an `Err` (API Gateway then answers the client with its own
//! `{"message":"Internal server error",…}`, and the function's error counts for its alarm).
//!
//! Two-way where typing is one-way: every `presence` has an answer, and the route response
//! carries it at no Management API call
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html).

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use messaging::model::{Connection, ConversationKind};
use messaging::store::{Watch, Watching};
use messaging::{Store, StoreError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::websocket::WebSocketEvent;
use crate::ws_actions::{ActionError, ClientFrame, ErrorFrame, PRESENCE_ACTION, Sender};

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
        event: &WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        match self.answer(event).await? {
            Ok(frame) => Ok(response(&frame)),
            Err(error) => {
                tracing::info!(code = error.code(), "presence refused");
                Ok(response(&ErrorFrame::new(Some(PRESENCE_ACTION), &error)))
            }
        }
    }

    async fn answer(
        &self,
        event: &WebSocketEvent,
    ) -> Result<Result<PresenceFrame, ActionError>, StoreError> {
        let (connection, group) = match Self::request(event) {
            Ok(request) => request,
            Err(error) => return Ok(Err(error)),
        };
        let caller = connection.user_uuid;
        let memberships = self.store.memberships(group).await?;
        let Some(own) = memberships.iter().find(|m| m.user_uuid == caller) else {
            return Ok(Err(ActionError::GroupNotFound));
        };
        if own.kind != ConversationKind::Direct {
            return Ok(Err(ActionError::GroupNotDirect));
        }
        if !own.blockers.is_empty() {
            return Ok(Err(ActionError::Blocked));
        }
        let Some(partner) = memberships.iter().find(|m| m.user_uuid != caller) else {
            // A direct conversation always has two members; one alone tells nobody's presence.
            return Ok(Err(ActionError::GroupNotFound));
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
            return Ok(Err(ActionError::GroupNotFound));
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

impl WsPresence {
    /// The connection the frame came on (the watch expires with it) and the conversation
    /// asked about. The sender is read as every action's is; the connection's expiry comes
    /// from the same authorizer context. Other fields (`action`) are not looked at: the
    /// route chose this function by `action` already.
    fn request(event: &WebSocketEvent) -> Result<(Connection, Uuid), ActionError> {
        let connection = Sender::try_from(event)
            .and_then(|_| Connection::try_from(event))
            .map_err(|reason| {
                tracing::error!(%reason, "a presence frame without its connection's context");
                ActionError::ConnectionUnknown
            })?;
        let group = ClientFrame::of_event(event)?.group_uuid()?;
        Ok((connection, group))
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
