//! The WebSocket API on one machine. `ws://<host>/ws?token=<jwt>` goes through the same
//! `ws-authorizer`, `ws-connect` and `ws-disconnect` code as the deployed API's `$connect`
//! and `$disconnect` routes, with events shaped as API Gateway sends them; and the
//! Management API's `POST /@connections/{id}` hands `messaging-push`'s frames to the open
//! sockets, answering `410 Gone` for a connection that is not open, as API Gateway does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use functions::websocket::{
    AuthorizerError, TOKEN_PARAMETER, WebSocketEvent, WsAuthorizer, WsConnections, allows,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The path of the local WebSocket endpoint.
pub const WEBSOCKET_PATH: &str = "/ws";
/// API Gateway's limit on the data of one `PostToConnection`.
const MAX_POST_BYTES: usize = 128 * 1024;
/// The stand-in's ids in API Gateway's execute-api ARNs.
const LOCAL_API_ID: &str = "local";
const LOCAL_STAGE: &str = "local";

/// The open sockets, by connection id: where the Management API stand-in delivers.
#[derive(Debug, Clone)]
pub struct OpenConnections {
    senders: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Bytes>>>>,
    /// Sessions whose `$disconnect` has not run yet.
    sessions: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Default for OpenConnections {
    fn default() -> Self {
        Self {
            senders: Arc::default(),
            sessions: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl OpenConnections {
    /// A connection about to open: frames posted to it from now on are queued until the
    /// socket is up (API Gateway runs `$connect` before the socket opens; here a frame
    /// posted in between waits instead of being lost).
    pub fn open(&self, connection_id: &str) -> mpsc::UnboundedReceiver<Bytes> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().insert(connection_id.to_owned(), sender);
        receiver
    }

    pub fn close(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    /// Closes every socket (each runs its `$disconnect`).
    pub fn close_all(&self) {
        self.lock().clear();
    }

    /// Waits until every session has run its `$disconnect`, or `timeout`.
    pub async fn wait_closed(&self, timeout: std::time::Duration) {
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
            .is_some_and(|sender| sender.send(data).is_ok())
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Bytes>>> {
        self.senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The WebSocket API's functions and its open connections.
#[derive(Clone)]
pub struct WebSocketApi {
    authorizer: WsAuthorizer,
    connections: WsConnections,
    open: OpenConnections,
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
        }
    }
}

/// `GET /ws` (the WebSocket API) and `POST /@connections/{id}` (its Management API).
pub fn router(api: WebSocketApi) -> Router {
    let management = management_router(api.open.clone());
    Router::new()
        .route(WEBSOCKET_PATH, get(connect))
        .with_state(api)
        .merge(management)
}

/// The Management API alone, `POST /@connections/{id}`, over `open` connections.
pub fn management_router(open: OpenConnections) -> Router {
    Router::new()
        .route("/@connections/{connection_id}", post(post_to_connection))
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

    let frames = api.open.open(&connection_id);
    api.open.session_started();
    if let Err(refusal) = run_connect_route(&api, &request, &context).await {
        api.open.close(&connection_id);
        api.open.session_ended();
        return refusal;
    }
    tracing::info!(connection = %connection_id, "WebSocket connected");

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
        .on_failed_upgrade(on_failure)
        .on_upgrade(move |socket| async move {
            let (code, reason) = session(socket, frames).await;
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
    let connect_event = request.route_event("$connect", "CONNECT", context);
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

/// Relays queued frames to the socket until either side closes. Messages from the client
/// are ignored: the API has no route for them.
async fn session(
    mut socket: WebSocket,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
) -> (Option<u16>, String) {
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else {
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
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(frame) => (Some(frame.code), frame.reason.to_string()),
                        None => (Some(1005), "Client-side close frame status not set".into()),
                    };
                }
                Some(Ok(_)) => {}
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

/// `POST /@connections/{id}`: the Management API's `PostToConnection`.
async fn post_to_connection(
    State(open): State<OpenConnections>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    data: Bytes,
) -> Response {
    // The real API takes only SigV4-signed requests (the push function's role); the
    // stand-in checks that the caller at least signs, as the SDK does.
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256 "));
    if !signed {
        return error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "Missing Authentication Token",
        );
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
        error(StatusCode::GONE, "GoneException", "Connection not found")
    }
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
    ) -> WebSocketEvent {
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
        serde_json::from_value(event).expect("a WebSocket route event")
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
        let route = request.route_event("$connect", "CONNECT", &context);
        assert_eq!(route.request_context.connection_id, "L0SM9cOFvHcCIhw=");
        assert_eq!(route.request_context.connected_at, 1_763_800_000_000);
        assert_eq!(
            route.request_context.authorizer["user_uuid"],
            context["user_uuid"]
        );
    }
}
