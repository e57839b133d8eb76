//! The WebSocket API's functions: `ws-authorizer` (the `$connect` route's REQUEST
//! authorizer), `ws-connect` and `ws-disconnect` (its `$connect` and `$disconnect` routes).
//!
//! Browsers cannot set headers on a WebSocket, so the client passes its Cognito token as
//! `?token=<jwt>`. The authorizer verifies it exactly as the HTTP API's JWT authorizer does
//! ([`crate::jwt`]), finds the caller in the directory, and tells API Gateway who it is;
//! API Gateway hands that context to every route of the connection, so `ws-connect` and
//! `ws-disconnect` each cost one write of the connection item (`CONN#<user>`); `ws-connect`
//! then reads the user's connections and closes the oldest beyond the cap
//! ([`ConnectionCap`]). Both also keep the user's presence on their profile (one
//! `UpdateItem`) and, when `online` changes, tell the connections watching them
//! ([`crate::presence`]).

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use aws_sdk_apigatewaymanagement::Client as ManagementClient;
use futures_util::StreamExt;
use messaging::model::Connection;
use messaging::store::PresenceChange;
use messaging::{Store, StoreError, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::directory::Directory;
use crate::jwt::{JwtVerifier, VerifyError};
use crate::presence::PresenceFrame;
use crate::push::PostRetry;
use crate::push::management::{self, Deleted, Posted};

/// The query parameter carrying the token: the authorizer's identity source is
/// `route.request.querystring.token`, so API Gateway itself answers 401 when it is absent.
pub const TOKEN_PARAMETER: &str = "token";
pub const IDENTITY_SOURCE: &str = "route.request.querystring.token";

/// What the authorizer's context holds; API Gateway passes it, as strings, in
/// `requestContext.authorizer` of every route of the connection.
pub const CONTEXT_USER_UUID: &str = "user_uuid";
pub const CONTEXT_SUB: &str = "sub";
pub const CONTEXT_HANDLE: &str = "handle";
/// The user's display name, for frames about the sender (typing) without a directory read.
pub const CONTEXT_DISPLAY_NAME: &str = "display_name";
/// The token's `exp` (epoch seconds, as a string: a context value may be a string, a number
/// or a boolean, and API Gateway's own examples pass numbers as strings,
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html).
/// `ws-connect` makes the connection expire with it.
pub const CONTEXT_TOKEN_EXPIRES_AT: &str = "exp";

/// An authorizer that fails with exactly this message makes API Gateway answer 401
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html);
/// a Deny policy makes it answer 403; any other failure, 500.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("could not authorize the connection: {0}")]
    Failed(String),
}

/// A `$connect` attempt, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectAttempt {
    pub token: String,
    /// `arn:aws:execute-api:<region>:<account>:<api>/<stage>/$connect`: what the policy allows.
    pub method_arn: String,
}

impl TryFrom<&ApiGatewayCustomAuthorizerRequestTypeRequest> for ConnectAttempt {
    type Error = AuthorizerError;

    fn try_from(event: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> Result<Self, Self::Error> {
        let token = event
            .query_string_parameters
            .first(TOKEN_PARAMETER)
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthorizerError::Unauthorized)?;
        let method_arn = event
            .method_arn
            .clone()
            .filter(|arn| !arn.is_empty())
            .ok_or_else(|| AuthorizerError::Failed("the event has no methodArn".into()))?;
        Ok(Self {
            token: token.to_owned(),
            method_arn,
        })
    }
}

/// The authorizer's answer: an IAM policy on the `$connect` method, and who the caller is.
pub type AuthorizerResponse = ApiGatewayCustomAuthorizerResponse<HashMap<String, String>>;

/// `ws-authorizer`: built once per execution environment (the key set is cached in it).
#[derive(Debug, Clone)]
pub struct WsAuthorizer {
    verifier: Arc<JwtVerifier>,
    directory: Directory,
}

impl WsAuthorizer {
    pub fn new(verifier: Arc<JwtVerifier>, directory: Directory) -> Self {
        Self {
            verifier,
            directory,
        }
    }

    /// Allows a verified token of a registered user; a verified token of someone not in
    /// the directory (signed up, not yet confirmed) gets a Deny (403); anything else about
    /// the token is `Unauthorized` (401).
    #[tracing::instrument(skip_all)]
    pub async fn authorize(
        &self,
        event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<AuthorizerResponse, AuthorizerError> {
        let attempt = ConnectAttempt::try_from(event)?;
        let claims = match self.verifier.verify(&attempt.token).await {
            Ok(claims) => claims,
            Err(VerifyError::Refused(reason)) => {
                tracing::info!(%reason, "WebSocket token refused");
                return Err(AuthorizerError::Unauthorized);
            }
            Err(error @ VerifyError::KeysUnavailable(_)) => {
                return Err(AuthorizerError::Failed(error.to_string()));
            }
        };
        let sub = claims.get("sub").cloned().unwrap_or_default();
        let user = self
            .directory
            .by_sub(&sub)
            .await
            .map_err(|error| AuthorizerError::Failed(error.to_string()))?;
        Ok(match user {
            Some(user) => {
                let mut context = HashMap::from([
                    (CONTEXT_USER_UUID.to_owned(), user.uuid.to_string()),
                    (CONTEXT_SUB.to_owned(), sub),
                    (CONTEXT_HANDLE.to_owned(), user.handle.to_string()),
                    (
                        CONTEXT_DISPLAY_NAME.to_owned(),
                        user.display_name.to_string(),
                    ),
                ]);
                // Verified: every accepted token has a numeric `exp` after now.
                if let Some(exp) = claims.get("exp").and_then(|exp| epoch_seconds(exp)) {
                    context.insert(CONTEXT_TOKEN_EXPIRES_AT.to_owned(), exp.to_string());
                }
                policy(
                    &user.uuid.to_string(),
                    IamPolicyEffect::Allow,
                    &attempt.method_arn,
                    context,
                )
            }
            None => {
                tracing::info!(%sub, "WebSocket token of a user not in the directory");
                policy(
                    &sub,
                    IamPolicyEffect::Deny,
                    &attempt.method_arn,
                    HashMap::new(),
                )
            }
        })
    }
}

fn policy(
    principal: &str,
    effect: IamPolicyEffect,
    method_arn: &str,
    context: HashMap<String, String>,
) -> AuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![method_arn.to_owned()];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".to_owned());
    document.statement = vec![statement];
    let mut response = AuthorizerResponse::default();
    response.principal_id = Some(principal.to_owned());
    response.policy_document = document;
    response.context = context;
    response
}

/// Whether an authorizer response lets the connection through.
pub fn allows(response: &AuthorizerResponse) -> bool {
    !response.policy_document.statement.is_empty()
        && response
            .policy_document
            .statement
            .iter()
            .all(|statement| statement.effect == IamPolicyEffect::Allow)
}

/// A `$connect`, `$disconnect` or MESSAGE event (Lambda proxy integration of a WebSocket
/// route): a MESSAGE event (a client's frame, routed by its `action`) carries the frame as
/// `body` (see [`crate::ws_actions`]).
///
/// Deserialised here rather than with `aws_lambda_events`' `ApiGatewayWebsocketProxyRequest`,
/// which keeps only a `lambda` key of `requestContext.authorizer`, where a WebSocket API
/// puts the authorizer's context fields directly.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketEvent {
    pub request_context: WebSocketContext,
    /// The client's text frame (MESSAGE events only).
    #[serde(default)]
    pub body: Option<String>,
    /// A binary frame, which API Gateway passes base64-encoded (clients' actions are text).
    #[serde(default)]
    pub is_base64_encoded: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketContext {
    #[serde(default)]
    pub route_key: String,
    /// `CONNECT`, `MESSAGE` or `DISCONNECT`.
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub connection_id: String,
    /// Epoch milliseconds.
    #[serde(default)]
    pub connected_at: i64,
    #[serde(default)]
    pub authorizer: HashMap<String, Value>,
    #[serde(default)]
    pub disconnect_status_code: Option<i64>,
    #[serde(default)]
    pub disconnect_reason: Option<String>,
}

/// Why a route event cannot be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAConnection {
    #[error("no connectionId")]
    NoConnectionId,
    /// No authorizer context: the route is not behind `ws-authorizer` (a deployment
    /// mistake), so nobody can be trusted to own this connection.
    #[error("no user in the authorizer context")]
    NoUser,
    #[error("connectedAt {0} is not a time")]
    BadTime(i64),
}

/// The connection a route event is about.
impl TryFrom<&WebSocketEvent> for Connection {
    type Error = NotAConnection;

    fn try_from(event: &WebSocketEvent) -> Result<Self, Self::Error> {
        let context = &event.request_context;
        if context.connection_id.trim().is_empty() {
            return Err(NotAConnection::NoConnectionId);
        }
        let user = context
            .authorizer
            .get(CONTEXT_USER_UUID)
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or(NotAConnection::NoUser)?;
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(context.connected_at) * 1_000_000,
        )
        .map_err(|_| NotAConnection::BadTime(context.connected_at))?;
        let token_expires_at = context
            .authorizer
            .get(CONTEXT_TOKEN_EXPIRES_AT)
            .and_then(|value| match value {
                Value::String(text) => epoch_seconds(text),
                Value::Number(number) => number
                    .as_i64()
                    .or_else(|| number.as_f64().map(|seconds| seconds.floor() as i64)),
                _ => None,
            });
        Ok(Connection::opened(
            user,
            context.connection_id.clone(),
            Timestamp::from_datetime(at),
        )
        .ending_with_token(token_expires_at))
    }
}

/// Epoch seconds written as a JSON number's text (`1795346100`, or `1795346100.0` from a
/// claim that was a float).
fn epoch_seconds(text: &str) -> Option<i64> {
    let text = text.trim();
    text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|seconds| seconds.is_finite())
            .map(|seconds| seconds.floor() as i64)
    })
}

/// At most `max` live connections per user: each push posts every frame once per
/// connection, so one user's thousand sockets would cost every sender's messages a thousand
/// posts. A `$connect` beyond the cap still succeeds (a user must never be locked out by
/// sockets they lost track of); the oldest live connections are closed instead, through the
/// Management API's `DeleteConnection` (the push's own client).
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    pub max: usize,
    management: ManagementClient,
}

impl ConnectionCap {
    /// `max` is at least 1: the connection being opened always stays.
    pub fn new(max: usize, management: ManagementClient) -> Self {
        Self {
            max: max.max(1),
            management,
        }
    }
}

/// Presence frames posted at once by one `$connect`/`$disconnect` (one per watching
/// connection).
const PRESENCE_POSTS_IN_FLIGHT: usize = 16;

/// `ws-connect` and `ws-disconnect`.
#[derive(Debug, Clone)]
pub struct WsConnections {
    store: Store,
    cap: Option<ConnectionCap>,
    /// Posts presence frames to the connections watching the user; without it presence is
    /// recorded on the profile but nobody is told.
    presence_frames: Option<ManagementClient>,
}

impl WsConnections {
    /// Without a cap (`ws-disconnect`, which only forgets).
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cap: None,
            presence_frames: None,
        }
    }

    /// Posts presence frames through `management` (the push's client) to the connections
    /// watching a user whose `online` changes.
    pub fn with_presence_frames(mut self, management: ManagementClient) -> Self {
        self.presence_frames = Some(management);
        self
    }

    /// `$connect` closes a user's oldest connections beyond `cap`.
    pub fn with_cap(mut self, cap: ConnectionCap) -> Self {
        self.cap = Some(cap);
        self
    }

    /// `$connect`: records the connection under its user, expiring at the earlier of API
    /// Gateway's two hours and the token's `exp` (from the authorizer's context; the push
    /// closes it then). A 2xx answer lets API Gateway open it; anything else refuses it. A store failure is an `Err` (API Gateway answers
    /// 500 and the client may retry).
    #[tracing::instrument(skip_all, fields(connection = %event.request_context.connection_id))]
    pub async fn connect(
        &self,
        event: &WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        let connection = match Connection::try_from(event) {
            Ok(connection) => connection,
            Err(reason) => {
                tracing::error!(%reason, "refusing a connection");
                return Ok(status(403));
            }
        };
        self.store.put_connection(&connection).await?;
        tracing::info!(user = %connection.user_uuid, "connected");
        let now = Timestamp::now();
        let change = self.presence_connected(&connection, now).await;
        // One read of the user's connections serves the cap and the presence's pruning
        // (needed only when the profile names other connections).
        let others_recorded = change.as_ref().is_some_and(|change| {
            change
                .before
                .live_connections
                .iter()
                .any(|id| *id != connection.connection_id)
        });
        let existing = if self.cap.is_some() || others_recorded {
            match self.store.connections_of(connection.user_uuid).await {
                Ok(existing) => Some(existing),
                Err(error) => {
                    tracing::warn!(user = %connection.user_uuid, %error, "could not read the connections to cap them");
                    None
                }
            }
        } else {
            None
        };
        if let (Some(cap), Some(existing)) = (&self.cap, &existing) {
            self.close_beyond_cap(&connection, cap, existing).await;
        }
        if let Some(change) = change {
            if let Some(existing) = &existing {
                self.forget_lost_connections(&connection, &change, existing, now)
                    .await;
            }
            self.tell_watchers(connection.user_uuid, &change, now).await;
        }
        Ok(status(200))
    }

    /// Records the connection on the user's profile; a failure is logged, not the
    /// connection's: the user then shows offline until their next `$connect`.
    async fn presence_connected(
        &self,
        connection: &Connection,
        now: Timestamp,
    ) -> Option<PresenceChange> {
        match self.store.presence_connected(connection, now).await {
            Ok(Some(change)) => Some(change),
            Ok(None) => {
                tracing::warn!(user = %connection.user_uuid, "connected without a profile: no presence");
                None
            }
            Err(error) => {
                tracing::warn!(user = %connection.user_uuid, %error, "could not record presence");
                None
            }
        }
    }

    /// Forgets the profile's connection ids that have no live connection item (their
    /// `$disconnect` was lost): without it a lost id would keep its user online up to the
    /// expiry of every later connection. Any id recorded before this `$connect`'s update
    /// had its item written before it, so the read that followed the update sees it.
    async fn forget_lost_connections(
        &self,
        connection: &Connection,
        change: &PresenceChange,
        existing: &[Connection],
        now: Timestamp,
    ) {
        let now = now.as_datetime().unix_timestamp();
        let lost: Vec<String> = change
            .before
            .live_connections
            .iter()
            .filter(|id| **id != connection.connection_id)
            .filter(|id| {
                !existing
                    .iter()
                    .any(|other| &other.connection_id == *id && other.is_live_at(now))
            })
            .cloned()
            .collect();
        if lost.is_empty() {
            return;
        }
        let user = connection.user_uuid;
        match self.store.forget_connections(user, &lost).await {
            Ok(()) => {
                tracing::info!(%user, lost = lost.len(), "forgot connections whose $disconnect was lost")
            }
            Err(error) => tracing::warn!(%user, %error, "could not forget lost connections"),
        }
    }

    /// Posts `{"type":"presence",…}` to every live connection watching `user` when
    /// `online` changed: one Query of `WATCH#<user>` and one post per watching connection; a
    /// 410 deletes that watch. Nothing here fails the route.
    async fn tell_watchers(&self, user: uuid::Uuid, change: &PresenceChange, now: Timestamp) {
        let Some(management) = &self.presence_frames else {
            return;
        };
        let now_seconds = now.as_datetime().unix_timestamp();
        let Some(online) = change.online_changed_at(now_seconds) else {
            return;
        };
        let watches = match self.store.watchers_of(user).await {
            Ok(watches) => watches,
            Err(error) => {
                tracing::warn!(%user, %error, "could not read who watches; no presence frames");
                return;
            }
        };
        let posts = watches
            .into_iter()
            .filter(|watch| watch.expires_at > now_seconds)
            .map(|watch| {
                let frame = PresenceFrame::new(
                    watch.message_group_uuid,
                    change.handle.clone(),
                    online,
                    change.after.last_seen_at.clone(),
                );
                async move {
                    let body = serde_json::to_vec(&frame).unwrap_or_default();
                    let posted =
                        management::post(management, PostRetry::default(), &watch.connection_id, &body, || {})
                            .await;
                    if posted == Posted::Gone
                        && let Err(error) =
                            self.store.delete_watch(user, &watch.connection_id).await
                    {
                        tracing::warn!(%user, connection = %watch.connection_id, %error, "could not forget a gone watcher; its TTL removes it");
                    }
                    posted
                }
            });
        let outcomes: Vec<Posted> = futures_util::stream::iter(posts)
            .buffer_unordered(PRESENCE_POSTS_IN_FLIGHT)
            .collect()
            .await;
        let sent = outcomes.iter().filter(|p| **p == Posted::Delivered).count();
        tracing::info!(%user, online, watchers = outcomes.len(), sent, "presence frames");
    }

    /// Closes `connection`'s user's oldest live connections beyond the cap, the new one
    /// counted and never closed: `DeleteConnection` (API Gateway closes the socket and runs
    /// `$disconnect`), then the item, unless the close failed (the next `$connect` tries
    /// again). One strongly consistent Query of `CONN#<user>`, so a connection recorded a
    /// moment ago counts. Nothing here fails the new connection: it is recorded already,
    /// and a cap enforced one `$connect` late is better than a user who cannot connect.
    /// Two `$connect`s at the same instant may both close the same oldest one (the second
    /// gets 410), leaving the user one over until the next.
    async fn close_beyond_cap(
        &self,
        connection: &Connection,
        cap: &ConnectionCap,
        existing: &[Connection],
    ) -> usize {
        let user = connection.user_uuid;
        let now = i64::try_from(SystemClock.unix_seconds()).unwrap_or(i64::MAX);
        let mut others: Vec<&Connection> = existing
            .iter()
            .filter(|other| other.connection_id != connection.connection_id)
            .filter(|other| other.is_live_at(now))
            .collect();
        let excess = (others.len() + 1).saturating_sub(cap.max);
        if excess == 0 {
            return 0;
        }
        others.sort_by(|a, b| {
            (&a.connected_at, &a.connection_id).cmp(&(&b.connected_at, &b.connection_id))
        });
        let mut closed = 0;
        for oldest in others.into_iter().take(excess) {
            let id = &oldest.connection_id;
            match management::delete(&cap.management, id).await {
                Deleted::Closed | Deleted::AlreadyGone => {
                    closed += 1;
                    // `$disconnect` deletes it too; this one does not wait for it.
                    if let Err(error) = self.store.delete_connection(user, id).await {
                        tracing::warn!(%user, connection = %id, %error, "closed, but its item stays until $disconnect or its TTL");
                    }
                }
                Deleted::Failed => {}
            }
        }
        tracing::info!(%user, closed, max = cap.max, "closed the oldest connections beyond the cap");
        closed
    }

    /// `$disconnect`: forgets the connection. API Gateway does not wait for the answer and
    /// may, rarely, not call at all: the item's TTL and the push consumer's 410 handling
    /// remove what is left behind.
    #[tracing::instrument(skip_all, fields(connection = %event.request_context.connection_id))]
    pub async fn disconnect(
        &self,
        event: &WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        let context = &event.request_context;
        match Connection::try_from(event) {
            Ok(connection) => {
                let user = connection.user_uuid;
                self.store
                    .delete_connection(user, &connection.connection_id)
                    .await?;
                tracing::info!(
                    %user,
                    code = ?context.disconnect_status_code,
                    reason = ?context.disconnect_reason,
                    "disconnected"
                );
                let now = Timestamp::now();
                match self
                    .store
                    .presence_disconnected(user, &connection.connection_id, now)
                    .await
                {
                    Ok(Some(change)) => self.tell_watchers(user, &change, now).await,
                    Ok(None) => {}
                    // Bounded all the same: `online` ends with the connection's expiry.
                    Err(error) => tracing::warn!(%user, %error, "could not record presence"),
                }
            }
            Err(reason) => {
                tracing::warn!(%reason, "disconnect of an unknown connection; its TTL removes it");
            }
        }
        Ok(status(200))
    }
}

fn status(code: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = code;
    response
}
