//! The WebSocket API on one machine. `ws://<host>/ws?token=<jwt>` goes through the same
//! `ws-authorizer`, `ws-connect` and `ws-disconnect` code as the deployed API's `$connect`
//! and `$disconnect` routes, with events shaped as API Gateway sends them; and the
//! Management API's `POST /@connections/{id}` hands `messaging-push`'s frames to the open
//! sockets, answering `410 Gone` for a connection that is not open (its `$connect` has not
//! returned yet, or it closed), as API Gateway does; `DELETE /@connections/{id}` closes one.
//! Sockets close as API Gateway closes them: after an idle timeout and a maximum duration
//! ([`WsTimeouts`]). A client's text frames are routed as API Gateway routes them
//! (`$request.body.action`, [`ActionRoutes`]): to the route named by the frame's `action`,
//! else to `$default` when there is one, else answered with API Gateway's own
//! `{"message": "Forbidden", …}`; frames beyond API Gateway's sizes close the socket with
//! 1009. A route with a route response (two-way) sends its function's response body back
//! to the client as a frame; a one-way route drops it, as API Gateway does
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html). The Management API takes requests from this machine only ([`Peer`]):
//! the stack may listen beyond loopback (`cruddur dev --host`), and its only caller is the
//! push pump.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use functions::presence::WsPresence;
use functions::websocket::{
    AuthorizerError, TOKEN_PARAMETER, WebSocketEvent, WsAuthorizer, WsConnections, allows,
};
use functions::ws_actions::{ClientFrame, DEFAULT_ROUTE, WsTyping};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// The path of the local WebSocket endpoint.
pub const WEBSOCKET_PATH: &str = "/ws";
/// API Gateway's limit on the data of one `PostToConnection`, and on a client's message.
const MAX_POST_BYTES: usize = 128 * 1024;
/// API Gateway's limits on what a client sends: a frame of 32 KB, a message (its frames
/// together) of 128 KB; beyond either, API Gateway closes the connection with 1009
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html).
const MAX_CLIENT_FRAME_BYTES: usize = 32 * 1024;
const MAX_CLIENT_MESSAGE_BYTES: usize = MAX_POST_BYTES;
/// The stand-in's ids in API Gateway's execute-api ARNs.
const LOCAL_API_ID: &str = "local";
const LOCAL_STAGE: &str = "local";

/// How long API Gateway keeps a WebSocket connection: closed after `idle` without traffic,
/// and after `max_duration` whatever happens (10 minutes and 2 hours,
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html), both with
/// close code 1001 "Going away" and a `$disconnect` carrying it
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-overview.html,
/// "WebSocket API status codes"). `cruddur dev --ws-idle-timeout/--ws-max-duration` shorten
/// them so that clients' reconnect code runs locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsTimeouts {
    pub idle: Duration,
    pub max_duration: Duration,
}

impl WsTimeouts {
    pub const API_GATEWAY: Self = Self {
        idle: Duration::from_secs(10 * 60),
        max_duration: Duration::from_secs(2 * 60 * 60),
    };
}

impl Default for WsTimeouts {
    fn default() -> Self {
        Self::API_GATEWAY
    }
}

/// Why the stand-in closes a socket, and the close frame it sends: a timeout is 1001
/// "Going away"; `DeleteConnection` closes with 1000, as API Gateway's `$disconnect` after
/// a `DeleteConnection` reports (`disconnectStatusCode: 1000`, "Connection Closed
/// Normally", https://github.com/aws/chalice/issues/2060).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    pub code: u16,
    pub reason: &'static str,
}

impl Closing {
    pub const TIMED_OUT: Self = Self {
        code: 1001,
        reason: "Going away",
    };
    pub const DELETED: Self = Self {
        code: 1000,
        reason: "Connection Closed Normally",
    };
    /// A client frame or message beyond API Gateway's limits (see
    /// [`MAX_CLIENT_FRAME_BYTES`]).
    pub const TOO_BIG: Self = Self {
        code: 1009,
        reason: "Message too big",
    };
}

/// What a session needs to route its client's frames: the routes, and the connection's
/// part of every MESSAGE event (its id, when it opened, the authorizer's context).
struct Inbound {
    actions: ActionRoutes,
    /// Where a two-way route's answer goes: the connection's own socket.
    open: OpenConnections,
    connection_id: String,
    connected_at: i64,
    authorizer: serde_json::Map<String, Value>,
}

impl Inbound {
    /// Hands a client's frame to its route's function, without waiting for it (API Gateway
    /// invokes each frame's integration on its own); a two-way route's answer is queued to
    /// the socket when it comes. Returns what API Gateway itself answers on the socket when
    /// no route takes the frame.
    fn dispatch(&self, body: String) -> Option<String> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let Some((route_key, route)) = self.actions.select(&body) else {
            // No route and no `$default`: API Gateway answers the frame itself, e.g.
            // https://github.com/aws-samples/simple-websockets-chat-app/issues/24.
            tracing::info!(connection = %self.connection_id, "client frame matches no route");
            return Some(
                json!({
                    "message": "Forbidden",
                    "connectionId": self.connection_id,
                    "requestId": request_id,
                })
                .to_string(),
            );
        };
        let mut request_context = context(
            route_key,
            "MESSAGE",
            &self.connection_id,
            self.connected_at,
            Some(&self.authorizer),
        );
        request_context["messageId"] = json!(request_id);
        let event = json!({
            "requestContext": request_context,
            "body": body,
            "isBase64Encoded": false,
        });
        let event: WebSocketEvent = match serde_json::from_value(event) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, "could not build a MESSAGE event");
                return None;
            }
        };
        let handler = route.handler.clone();
        let answer_to = route.two_way.then(|| {
            (
                self.open.clone(),
                self.connection_id.clone(),
                request_id.clone(),
            )
        });
        tokio::spawn(async move {
            let answer = handler.handle(&event).await;
            let Some((open, connection_id, request_id)) = answer_to else {
                // One-way: API Gateway passes nothing the function answers to the client.
                return;
            };
            let frame = match answer {
                Ok(Some(body)) => body,
                Ok(None) => return,
                // A failed invocation on a two-way route: API Gateway's own answer.
                Err(()) => json!({
                    "message": "Internal server error",
                    "connectionId": connection_id,
                    "requestId": request_id,
                })
                .to_string(),
            };
            if !open.post(&connection_id, Bytes::from(frame)) {
                tracing::info!(connection = %connection_id, "closed before its answer came");
            }
        });
        None
    }
}

/// One open connection: where its frames go, and how to close its socket.
#[derive(Debug)]
struct Entry {
    frames: mpsc::UnboundedSender<Bytes>,
    /// None for a connection opened without a socket (tests, the bench): dropping `frames`
    /// is its close.
    close: Option<oneshot::Sender<Closing>>,
}

/// The open sockets, by connection id: where the Management API stand-in delivers. A
/// connection is open from the moment its `$connect` returned (before that, API Gateway
/// answers `PostToConnection` with 410, and so does this) until it closes.
#[derive(Debug, Clone)]
pub struct OpenConnections {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    /// Sessions whose `$disconnect` has not run yet.
    sessions: Arc<tokio::sync::watch::Sender<usize>>,
    timeouts: WsTimeouts,
}

impl Default for OpenConnections {
    fn default() -> Self {
        Self::with_timeouts(WsTimeouts::default())
    }
}

impl OpenConnections {
    pub fn with_timeouts(timeouts: WsTimeouts) -> Self {
        Self {
            entries: Arc::default(),
            sessions: Arc::new(tokio::sync::watch::Sender::new(0)),
            timeouts,
        }
    }

    pub fn timeouts(&self) -> WsTimeouts {
        self.timeouts
    }

    /// A connection open without a socket (tests, the bench): its frames arrive on the
    /// receiver; `DeleteConnection` or [`Self::close`] ends it.
    pub fn open(&self, connection_id: &str) -> mpsc::UnboundedReceiver<Bytes> {
        let (frames, receiver) = mpsc::unbounded_channel();
        self.lock().insert(
            connection_id.to_owned(),
            Entry {
                frames,
                close: None,
            },
        );
        receiver
    }

    /// A connection whose `$connect` has returned: its frames, queued until the socket is
    /// up, and the signal to close it.
    fn open_session(
        &self,
        connection_id: &str,
    ) -> (mpsc::UnboundedReceiver<Bytes>, oneshot::Receiver<Closing>) {
        let (frames, receiver) = mpsc::unbounded_channel();
        let (close, closing) = oneshot::channel();
        self.lock().insert(
            connection_id.to_owned(),
            Entry {
                frames,
                close: Some(close),
            },
        );
        (receiver, closing)
    }

    pub fn close(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    /// `DeleteConnection`: closes the socket as API Gateway does (its `$disconnect` runs);
    /// false if the connection is not open.
    pub fn delete(&self, connection_id: &str) -> bool {
        let Some(entry) = self.lock().remove(connection_id) else {
            return false;
        };
        if let Some(close) = entry.close {
            let _ = close.send(Closing::DELETED);
        }
        true
    }

    /// Closes every socket (each runs its `$disconnect`).
    pub fn close_all(&self) {
        self.lock().clear();
    }

    /// Waits until every session has run its `$disconnect`, or `timeout`.
    pub async fn wait_closed(&self, timeout: Duration) {
        let mut sessions = self.sessions.subscribe();
        let _ = tokio::time::timeout(timeout, sessions.wait_for(|open| *open == 0)).await;
    }

    fn session_started(&self) {
        self.sessions.send_modify(|open| *open += 1);
    }

    fn session_ended(&self) {
        self.sessions
            .send_modify(|open| *open = open.saturating_sub(1));
    }

    /// Queues a frame; false if the connection is not open.
    pub fn post(&self, connection_id: &str, data: Bytes) -> bool {
        self.lock()
            .get(connection_id)
            .is_some_and(|entry| entry.frames.send(data).is_ok())
    }

    /// Whether the connection is open (its `$connect` has returned and it has not closed).
    pub fn is_open(&self, connection_id: &str) -> bool {
        self.lock().contains_key(connection_id)
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a route's function returned: its response's text body (`Ok(None)` without one), or
/// `Err` when the invocation failed.
pub type ActionAnswer = Result<Option<String>, ()>;

/// A function behind a route clients send to: it gets the route's MESSAGE event, as the
/// deployed function does, and returns its response; whether the client sees that depends
/// on the route ([`ActionRoutes::with_route_response`]).
pub trait ActionHandler: Send + Sync {
    fn handle<'a>(
        &'a self,
        event: &'a WebSocketEvent,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ActionAnswer> + Send + 'a>>;
}

/// A proxy integration's response body, as API Gateway sends it on (text only).
fn body_of(response: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> Option<String> {
    match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => Some(text.clone()),
        Some(aws_lambda_events::encodings::Body::Binary(data)) => {
            Some(String::from_utf8_lossy(data).into_owned())
        }
        _ => None,
    }
}

impl ActionHandler for WsTyping {
    fn handle<'a>(
        &'a self,
        event: &'a WebSocketEvent,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ActionAnswer> + Send + 'a>> {
        Box::pin(async move {
            match WsTyping::handle(self, event).await {
                Ok(response) => Ok(body_of(&response)),
                Err(error) => {
                    tracing::error!(%error, "ws-typing failed");
                    Err(())
                }
            }
        })
    }
}

impl ActionHandler for WsPresence {
    fn handle<'a>(
        &'a self,
        event: &'a WebSocketEvent,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ActionAnswer> + Send + 'a>> {
        Box::pin(async move {
            match WsPresence::handle(self, event).await {
                Ok(response) => Ok(body_of(&response)),
                Err(error) => {
                    tracing::error!(%error, "ws-presence failed");
                    Err(())
                }
            }
        })
    }
}

/// One route clients send to: its function, and whether it has a route response.
#[derive(Clone)]
struct ActionRoute {
    handler: Arc<dyn ActionHandler>,
    two_way: bool,
}

/// The routes clients send to: route key (an `action` value, or `$default`) → its function,
/// as `template.yaml` wires them.
#[derive(Clone, Default)]
pub struct ActionRoutes {
    routes: HashMap<String, ActionRoute>,
}

impl ActionRoutes {
    /// A one-way route (no route response): what its function answers is dropped.
    pub fn with(mut self, route_key: &str, handler: Arc<dyn ActionHandler>) -> Self {
        self.routes.insert(
            route_key.to_owned(),
            ActionRoute {
                handler,
                two_way: false,
            },
        );
        self
    }

    /// A two-way route (a `$default` route response): its function's response body is sent
    /// to the client as a frame.
    pub fn with_route_response(mut self, route_key: &str, handler: Arc<dyn ActionHandler>) -> Self {
        self.routes.insert(
            route_key.to_owned(),
            ActionRoute {
                handler,
                two_way: true,
            },
        );
        self
    }

    /// API Gateway's route selection on `$request.body.action`: the frame's `action` if a
    /// route has that key, else `$default` if there is one.
    fn select(&self, body: &str) -> Option<(&str, &ActionRoute)> {
        ClientFrame::route_key(body)
            .and_then(|key| self.routes.get_key_value(key.as_str()))
            .or_else(|| self.routes.get_key_value(DEFAULT_ROUTE))
            .map(|(key, route)| (key.as_str(), route))
    }
}

/// The WebSocket API's functions and its open connections.
#[derive(Clone)]
pub struct WebSocketApi {
    authorizer: WsAuthorizer,
    connections: WsConnections,
    open: OpenConnections,
    actions: ActionRoutes,
}

impl WebSocketApi {
    pub fn new(
        authorizer: WsAuthorizer,
        connections: WsConnections,
        open: OpenConnections,
    ) -> Self {
        Self {
            authorizer,
            connections,
            open,
            actions: ActionRoutes::default(),
        }
    }

    /// The routes clients send to (none: every frame gets API Gateway's `Forbidden`).
    pub fn with_actions(mut self, actions: ActionRoutes) -> Self {
        self.actions = actions;
        self
    }
}

/// `GET /ws` (the WebSocket API) and `POST`/`DELETE /@connections/{id}` (its Management API).
pub fn router(api: WebSocketApi) -> Router {
    let management = management_router(api.open.clone());
    Router::new()
        .route(WEBSOCKET_PATH, get(connect))
        .with_state(api)
        .merge(management)
}

/// The Management API alone, `POST` and `DELETE /@connections/{id}`, over `open`
/// connections. Serve it with `into_make_service_with_connect_info::<Peer>()`: a request
/// whose peer it cannot tell is refused like one from another machine.
pub fn management_router(open: OpenConnections) -> Router {
    Router::new()
        .route(
            "/@connections/{connection_id}",
            axum::routing::post(post_to_connection).delete(delete_connection),
        )
        .with_state(open)
}

/// What API Gateway does with an upgrade request: the authorizer, then `$connect`, and
/// only when both let it through, the upgrade.
async fn connect(
    State(api): State<WebSocketApi>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    // The identity source is required: without it API Gateway answers 401 without calling
    // the authorizer.
    if !query
        .iter()
        .any(|(name, value)| name == TOKEN_PARAMETER && !value.is_empty())
    {
        tracing::info!("WebSocket connection without a token refused");
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let connection_id = new_connection_id();
    let connected_at = epoch_millis();
    let request = Request {
        connection_id: &connection_id,
        connected_at,
        headers: &headers,
        query: &query,
    };
    let context = match authorize(&api, &request).await {
        Ok(context) => context,
        Err(refusal) => return refusal,
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };

    api.open.session_started();
    if let Err(refusal) = run_connect_route(&api, &request, &context).await {
        api.open.session_ended();
        return refusal;
    }
    // Open only now: until `$connect` returns, API Gateway answers posts to the connection
    // with 410 Gone. From here to the upgrade, frames wait for the socket.
    let (frames, closing) = api.open.open_session(&connection_id);
    let timeouts = api.open.timeouts();
    tracing::info!(connection = %connection_id, "WebSocket connected");

    let inbound = Inbound {
        actions: api.actions.clone(),
        open: api.open.clone(),
        connection_id: connection_id.clone(),
        connected_at,
        authorizer: context.clone(),
    };
    let disconnect_event = move |code: Option<u16>, reason: &str| {
        request_disconnect(
            &headers,
            &connection_id,
            connected_at,
            &context,
            code,
            reason,
        )
    };
    let on_failure = {
        let api = api.clone();
        let event = disconnect_event(Some(1006), "upgrade failed");
        move |error: axum::Error| {
            tracing::warn!(%error, "WebSocket upgrade failed");
            tokio::spawn(async move { disconnected(&api, &event).await });
        }
    };
    upgrade
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_failed_upgrade(on_failure)
        .on_upgrade(move |socket| async move {
            let (code, reason) = session(socket, frames, closing, timeouts, inbound).await;
            let event = disconnect_event(code, &reason);
            disconnected(&api, &event).await;
        })
}

/// Runs the `$connect` route's REQUEST authorizer as API Gateway does: its context, with the
/// principal, travels in every later event of the connection; a denial or a failure is the
/// response the client gets instead of an upgrade.
async fn authorize(
    api: &WebSocketApi,
    request: &Request<'_>,
) -> Result<serde_json::Map<String, Value>, Response> {
    let authorizer_event: ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(request.authorizer_event()).map_err(|error| {
            tracing::error!(%error, "could not build the authorizer event");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        })?;
    match api.authorizer.authorize(&authorizer_event).await {
        Ok(response) if allows(&response) => {
            let mut context: serde_json::Map<String, Value> = response
                .context
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect();
            context.insert(
                "principalId".to_owned(),
                Value::String(response.principal_id.unwrap_or_default()),
            );
            Ok(context)
        }
        Ok(_) => {
            tracing::info!("WebSocket connection denied by the authorizer");
            Err(message(StatusCode::FORBIDDEN, "Forbidden"))
        }
        Err(AuthorizerError::Unauthorized) => {
            tracing::info!("WebSocket token refused");
            Err(message(StatusCode::UNAUTHORIZED, "Unauthorized"))
        }
        Err(error) => {
            tracing::error!(%error, "authorizer failed");
            Err(message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ))
        }
    }
}

/// Runs the `$connect` route's integration (ws-connect): API Gateway refuses the upgrade
/// with the integration's status when it answers outside 2xx, and with 500 when it fails.
async fn run_connect_route(
    api: &WebSocketApi,
    request: &Request<'_>,
    context: &serde_json::Map<String, Value>,
) -> Result<(), Response> {
    let connect_event = request
        .route_event("$connect", "CONNECT", context)
        .map_err(|error| {
            tracing::error!(%error, "could not build the $connect event");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        })?;
    match api.connections.connect(&connect_event).await {
        Ok(response) if (200..300).contains(&response.status_code) => Ok(()),
        Ok(response) => {
            let status = u16::try_from(response.status_code)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::FORBIDDEN);
            Err(message(status, "Forbidden"))
        }
        Err(error) => {
            tracing::error!(%error, "ws-connect failed");
            Err(message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ))
        }
    }
}

/// Relays queued frames to the socket until either side closes, the connection is deleted
/// (`DeleteConnection`), or it times out as API Gateway's do: after `timeouts.idle` without
/// a frame either way, and after `timeouts.max_duration` in any case. The client's frames
/// count as traffic, and go to their route ([`Inbound::dispatch`]).
async fn session(
    mut socket: WebSocket,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
    mut closing: oneshot::Receiver<Closing>,
    timeouts: WsTimeouts,
    inbound: Inbound,
) -> (Option<u16>, String) {
    let max_duration = tokio::time::sleep(timeouts.max_duration);
    let idle = tokio::time::sleep(timeouts.idle);
    tokio::pin!(max_duration, idle);
    let mut deletable = true;
    let close = async |socket: &mut WebSocket, closing: Closing| {
        let frame = CloseFrame {
            code: closing.code,
            reason: Utf8Bytes::from_static(closing.reason),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
        (Some(closing.code), closing.reason.to_owned())
    };
    loop {
        tokio::select! {
            () = &mut max_duration => {
                tracing::info!(after = ?timeouts.max_duration, "WebSocket closed at its maximum duration");
                return close(&mut socket, Closing::TIMED_OUT).await;
            }
            () = &mut idle => {
                tracing::info!(after = ?timeouts.idle, "WebSocket closed for being idle");
                return close(&mut socket, Closing::TIMED_OUT).await;
            }
            deleted = &mut closing, if deletable => match deleted {
                Ok(closing) => return close(&mut socket, closing).await,
                // Forgotten without a DeleteConnection: the frames channel says why.
                Err(_) => deletable = false,
            },
            frame = frames.recv() => {
                let Some(frame) = frame else {
                    // Deleted (its frames end with it), or the stack is stopping.
                    if let Ok(closing) = closing.try_recv() {
                        return close(&mut socket, closing).await;
                    }
                    let _ = socket.send(Message::Close(Some(CloseFrame { code: 1001, reason: Utf8Bytes::from_static("going away") }))).await;
                    return (Some(1001), "server closed the connection".into());
                };
                let message = match Utf8Bytes::try_from(frame.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(frame),
                };
                if socket.send(message).await.is_err() {
                    return (Some(1006), "could not write to the socket".into());
                }
                idle.as_mut().reset(tokio::time::Instant::now() + timeouts.idle);
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(frame) => (Some(frame.code), frame.reason.to_string()),
                        None => (Some(1005), "Client-side close frame status not set".into()),
                    };
                }
                Some(Ok(message)) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + timeouts.idle);
                    let body = match message {
                        Message::Text(text) => Some(text.to_string()),
                        Message::Binary(data) => Some(String::from_utf8_lossy(&data).into_owned()),
                        // Control frames: the WebSocket library answers pings itself.
                        _ => None,
                    };
                    if let Some(body) = body
                        && let Some(answer) = inbound.dispatch(body)
                        && socket.send(Message::Text(answer.into())).await.is_err()
                    {
                        return (Some(1006), "could not write to the socket".into());
                    }
                }
                Some(Err(error)) if error.to_string().contains("Space limit exceeded") => {
                    tracing::info!(%error, "client frame beyond API Gateway's limits; closing");
                    return close(&mut socket, Closing::TOO_BIG).await;
                }
                Some(Err(_)) | None => return (Some(1006), "connection lost".into()),
            }
        }
    }
}

async fn disconnected(api: &WebSocketApi, event: &Value) {
    let connection_id = event["requestContext"]["connectionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.open.close(&connection_id);
    let event: WebSocketEvent = match serde_json::from_value(event.clone()) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(%error, "could not build the $disconnect event");
            api.open.session_ended();
            return;
        }
    };
    match api.connections.disconnect(&event).await {
        Ok(_) => tracing::info!(connection = %connection_id, "WebSocket disconnected"),
        // API Gateway ignores what `$disconnect` answers; the item's TTL cleans up.
        Err(error) => tracing::warn!(connection = %connection_id, %error, "ws-disconnect failed"),
    }
    api.open.session_ended();
}

/// Both ends of a connection to the stack, as `into_make_service_with_connect_info::<Peer>()`
/// records them for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub remote: SocketAddr,
    /// The stack's own address on this connection.
    pub local: Option<SocketAddr>,
}

impl Peer {
    /// A loopback peer (IPv4-mapped IPv6 included), or one whose address is the stack's own
    /// address on the connection: this machine, connecting to a stack that listens on
    /// another interface (`--host`), as the push pump then does.
    pub fn is_this_machine(&self) -> bool {
        let remote = self.remote.ip().to_canonical();
        remote.is_loopback()
            || self
                .local
                .is_some_and(|local| local.ip().to_canonical() == remote)
    }
}

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self {
            remote: *stream.remote_addr(),
            local: stream.io().local_addr().ok(),
        }
    }
}

/// A request's [`Peer`], if the server recorded it.
type PeerInfo = Option<Extension<ConnectInfo<Peer>>>;

/// `POST /@connections/{id}`: the Management API's `PostToConnection`.
async fn post_to_connection(
    State(open): State<OpenConnections>,
    peer: PeerInfo,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    data: Bytes,
) -> Response {
    if let Some(refusal) = refuse_remote(peer) {
        return refusal;
    }
    if let Some(refusal) = refuse_unsigned(&headers) {
        return refusal;
    }
    if data.len() > MAX_POST_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "Message too long",
        );
    }
    if open.post(&connection_id, data) {
        StatusCode::OK.into_response()
    } else {
        tracing::debug!(connection = %connection_id, "post to a connection that is not open");
        gone()
    }
}

/// `DELETE /@connections/{id}`: the Management API's `DeleteConnection`. The socket closes
/// and its `$disconnect` runs, as with API Gateway; 410 if it is not open.
async fn delete_connection(
    State(open): State<OpenConnections>,
    peer: PeerInfo,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refuse_remote(peer) {
        return refusal;
    }
    if let Some(refusal) = refuse_unsigned(&headers) {
        return refusal;
    }
    if open.delete(&connection_id) {
        tracing::info!(connection = %connection_id, "connection deleted through the Management API");
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}

/// Anyone who reaches the Management API can write into every open socket and close it;
/// the stand-in checks no signature's key, so only this machine may call it
/// ([`Peer::is_this_machine`]); anyone else is refused with 403 before anything else.
fn refuse_remote(peer: PeerInfo) -> Option<Response> {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    if peer.is_some_and(|peer| peer.is_this_machine()) {
        return None;
    }
    tracing::warn!(
        ?peer,
        "Management API request refused: the peer is not this machine"
    );
    Some(error(
        StatusCode::FORBIDDEN,
        "ForbiddenException",
        "Forbidden",
    ))
}

/// The real API takes only SigV4-signed requests (the push function's role); the stand-in
/// checks that the caller at least signs, as the SDK does.
fn refuse_unsigned(headers: &HeaderMap) -> Option<Response> {
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256 "));
    (!signed).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "Missing Authentication Token",
        )
    })
}

fn gone() -> Response {
    error(StatusCode::GONE, "GoneException", "Connection not found")
}

/// An error as API Gateway's Management API answers it (the SDK reads the error type
/// from `x-amzn-ErrorType`).
fn error(status: StatusCode, error_type: &'static str, text: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "message": text }))).into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    response
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// What an upgrade request contributes to the events API Gateway builds from it.
struct Request<'a> {
    connection_id: &'a str,
    connected_at: i64,
    headers: &'a HeaderMap,
    query: &'a [(String, String)],
}

impl Request<'_> {
    /// The REQUEST authorizer's event for `$connect`.
    fn authorizer_event(&self) -> Value {
        let (headers, multi_headers) = header_maps(self.headers);
        let mut query = serde_json::Map::new();
        let mut multi_query = serde_json::Map::new();
        for (name, value) in self.query {
            // API Gateway keeps the last value in the single-value map.
            query.insert(name.clone(), Value::String(value.clone()));
            if let Some(values) = multi_query
                .entry(name.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
            {
                values.push(Value::String(value.clone()));
            }
        }
        json!({
            "type": "REQUEST",
            "methodArn": format!("arn:aws:execute-api:{}:000000000000:{LOCAL_API_ID}/{LOCAL_STAGE}/$connect", messaging::connect::LOCAL_REGION),
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "stageVariables": {},
            "requestContext": context("$connect", "CONNECT", self.connection_id, self.connected_at, None),
        })
    }

    /// The `$connect` route's event, with the authorizer's context.
    fn route_event(
        &self,
        route_key: &str,
        event_type: &str,
        authorizer: &serde_json::Map<String, Value>,
    ) -> Result<WebSocketEvent, serde_json::Error> {
        let (headers, multi_headers) = header_maps(self.headers);
        let mut request_context = context(
            route_key,
            event_type,
            self.connection_id,
            self.connected_at,
            Some(authorizer),
        );
        request_context["identity"] = json!({ "sourceIp": "127.0.0.1" });
        let event = json!({
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "requestContext": request_context,
            "isBase64Encoded": false,
        });
        // Built from the client's headers: one the event type cannot hold is refused, not a
        // panic.
        serde_json::from_value(event)
    }
}

/// The `$disconnect` route's event, with the authorizer's context from `$connect`.
fn request_disconnect(
    headers: &HeaderMap,
    connection_id: &str,
    connected_at: i64,
    authorizer: &serde_json::Map<String, Value>,
    code: Option<u16>,
    reason: &str,
) -> Value {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut request_context = context(
        "$disconnect",
        "DISCONNECT",
        connection_id,
        connected_at,
        Some(authorizer),
    );
    request_context["disconnectStatusCode"] = json!(code);
    request_context["disconnectReason"] = json!(reason);
    json!({
        "headers": { "Host": host },
        "multiValueHeaders": { "Host": [host] },
        "requestContext": request_context,
        "isBase64Encoded": false,
    })
}

fn context(
    route_key: &str,
    event_type: &str,
    connection_id: &str,
    connected_at: i64,
    authorizer: Option<&serde_json::Map<String, Value>>,
) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut context = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
        "messageDirection": "IN",
        "stage": LOCAL_STAGE,
        "connectedAt": connected_at,
        "requestTimeEpoch": epoch_millis(),
        "identity": { "sourceIp": "127.0.0.1" },
        "requestId": request_id,
        "domainName": "127.0.0.1",
        "connectionId": connection_id,
        "apiId": LOCAL_API_ID,
    });
    if let Some(authorizer) = authorizer {
        context["authorizer"] = Value::Object(authorizer.clone());
    }
    context
}

fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    let mut single = serde_json::Map::new();
    let mut multi = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        single.insert(name.as_str().to_owned(), Value::String(value.clone()));
        if let Some(values) = multi
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
        {
            values.push(Value::String(value));
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// A connection id shaped like API Gateway's (16 characters of base64, e.g.
/// `L0SM9cOFvHcCIhw=`), from the URL-safe alphabet so it sits in a path unescaped.
fn new_connection_id() -> String {
    use base64::Engine;
    let random = uuid::Uuid::new_v4();
    base64::engine::general_purpose::URL_SAFE.encode(&random.as_bytes()[..11])
}

fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_management_api_answers_loopback_peers_only() {
        let open = OpenConnections::default();
        let mut frames = open.open("L0SM9cOFvHcCIhw=");
        let mut signed = HeaderMap::new();
        signed.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=local/test"),
        );
        let listening_on = |local: &str| {
            let local = local.parse().unwrap();
            move |remote: &str| {
                Some(Extension(ConnectInfo(Peer {
                    remote: remote.parse().unwrap(),
                    local: Some(local),
                })))
            }
        };
        let peer = listening_on("127.0.0.1:4567");
        let post = |peer: PeerInfo| {
            post_to_connection(
                State(open.clone()),
                peer,
                Path("L0SM9cOFvHcCIhw=".to_owned()),
                signed.clone(),
                Bytes::from_static(b"{}"),
            )
        };
        for refused in [
            peer("10.0.0.5:51234"),
            peer("192.168.1.20:51234"),
            peer("[2001:db8::1]:51234"),
            // Listening on a LAN address: another machine on that network.
            listening_on("192.168.1.5:4567")("192.168.1.9:51234"),
            // Not served with the peer's address: it cannot be told, so it is refused.
            None,
        ] {
            let response = post(refused).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{refused:?}");
            let response = delete_connection(
                State(open.clone()),
                refused,
                Path("L0SM9cOFvHcCIhw=".to_owned()),
                signed.clone(),
            )
            .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{refused:?}");
        }
        assert!(frames.try_recv().is_err(), "nothing reached the socket");
        assert!(open.is_open("L0SM9cOFvHcCIhw="), "nor closed it");

        for local in [
            peer("127.0.0.1:51234"),
            peer("[::1]:51234"),
            peer("[::ffff:127.0.0.1]:51234"),
            // This machine, through the LAN address the stack listens on (`--host`).
            listening_on("192.168.1.5:4567")("192.168.1.5:51234"),
        ] {
            assert_eq!(post(local).await.status(), StatusCode::OK, "{local:?}");
            assert_eq!(frames.try_recv().unwrap(), Bytes::from_static(b"{}"));
        }
    }

    #[test]
    fn connection_ids_look_like_api_gateways() {
        let id = new_connection_id();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.ends_with('='));
        assert!(!id.contains('/') && !id.contains('+'));
        assert_ne!(id, new_connection_id());
    }

    #[test]
    fn the_authorizer_event_reads_as_api_gateways() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4567"));
        let query = vec![("token".to_owned(), "abc".to_owned())];
        let request = Request {
            connection_id: "L0SM9cOFvHcCIhw=",
            connected_at: 1_763_800_000_000,
            headers: &headers,
            query: &query,
        };
        let event: ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_value(request.authorizer_event()).unwrap();
        assert_eq!(event.query_string_parameters.first("token"), Some("abc"));
        assert!(event.method_arn.unwrap().ends_with("/local/$connect"));
        let context = serde_json::Map::from_iter([(
            "user_uuid".to_owned(),
            Value::String("00000000-0000-0000-0000-000000000001".into()),
        )]);
        let route = request
            .route_event("$connect", "CONNECT", &context)
            .unwrap();
        assert_eq!(route.request_context.connection_id, "L0SM9cOFvHcCIhw=");
        assert_eq!(route.request_context.connected_at, 1_763_800_000_000);
        assert_eq!(
            route.request_context.authorizer["user_uuid"],
            context["user_uuid"]
        );
    }
}
