//! The HTTP API on one machine: the routes of `template.yaml`, each request turned into the
//! same payload-2.0 event API Gateway sends (claims included, after the same JWT checks)
//! and handed to the very handler the Lambda runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body as AxumBody, Bytes, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use functions::api::Api;
use functions::http::{ApiError, MAX_BODY_BYTES, NEXT_CURSOR_HEADER};
use functions::routes::Route;
use jsonwebtoken::jwk::JwkSet;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{AuthError, Authorizer};

mod payload;

pub use self::payload::{PayloadParts, payload_v2};

#[derive(Clone)]
struct AppState {
    api: Api,
    authorizer: Arc<Authorizer>,
    jwks: Option<Arc<JwkSet>>,
}

/// The router: the API's routes, CORS for `allowed_origins`, one log line per request, and
/// (with development keys) the JWKS at `/.well-known/jwks.json`.
pub fn router(
    api: Api,
    authorizer: Authorizer,
    published_jwks: Option<JwkSet>,
    allowed_origins: &[String],
) -> anyhow::Result<Router> {
    let state = AppState {
        api,
        authorizer: Arc::new(authorizer),
        jwks: published_jwks.map(Arc::new),
    };
    let origins = allowed_origins
        .iter()
        .map(|origin| HeaderValue::from_str(origin))
        .collect::<Result<Vec<_>, _>>()?;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // Retry-After is not a CORS-safelisted response header: without this a 429's or a
        // 503's wait is hidden from the frontend's scripts.
        .expose_headers([
            HeaderName::from_static(NEXT_CURSOR_HEADER),
            header::RETRY_AFTER,
        ])
        .max_age(std::time::Duration::from_secs(600));
    // One route per entry of the table the template is checked against; routes sharing a
    // path (GET and POST /api/message_groups) merge into one method router.
    let mut router = Router::new();
    for route in Route::ALL {
        let method = MethodFilter::try_from(Method::from_bytes(route.method().as_bytes())?)?;
        router = router.route(
            route.path(),
            on(
                method,
                move |state: State<AppState>,
                      params: Option<Path<HashMap<String, String>>>,
                      request: Request| {
                    let params = params.map(|Path(params)| params).unwrap_or_default();
                    dispatch(state, route, params, request)
                },
            ),
        );
    }
    Ok(router
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(openapi))
        .route("/asyncapi.json", get(asyncapi))
        .fallback(not_found)
        .with_state(state)
        .layer(cors)
        .layer(middleware::from_fn(log_request)))
}

async fn dispatch(
    State(state): State<AppState>,
    route: Route,
    path_parameters: HashMap<String, String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let claims = if route.protected() {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match state.authorizer.verify(authorization).await {
            Ok(claims) => Some(claims),
            Err(error) => {
                match &error {
                    AuthError::Missing => {}
                    // Nearly always a token minted with another key than the stack's: say
                    // which keys it trusts and where they come from.
                    AuthError::UnknownKey { .. } => {
                        tracing::warn!(reason = %error, "bearer token refused");
                    }
                    AuthError::Invalid(_) => {
                        tracing::info!(reason = %error, "bearer token refused")
                    }
                    AuthError::Forbidden(_) => {
                        tracing::info!(reason = %error, "bearer token refused");
                        return (
                            StatusCode::FORBIDDEN,
                            axum::Json(json!({"message": "Forbidden"})),
                        )
                            .into_response();
                    }
                }
                // API Gateway's answer, before any function runs.
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"message": "Unauthorized"})),
                )
                    .into_response();
            }
        }
    } else {
        None
    };
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let event = payload_v2(&PayloadParts {
        route,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        path_parameters: &path_parameters,
        claims: claims.as_ref(),
        body: &body,
    });
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "could not build the Lambda request");
            return internal_error();
        }
    };
    let outcome = state.api.serve(route, request).await;
    match outcome {
        Ok(response) => from_lambda(response),
        // The function has logged its failure, once, with the request id; the request line
        // below records the 500.
        Err(_) => internal_error(),
    }
}

/// The request body, read up to the functions' limit ([`MAX_BODY_BYTES`]). A larger body is
/// answered as the function answers it, `413 ["body_too_large"]`, as soon as that is known:
/// from `Content-Length` before reading anything, else after reading one byte past the
/// limit; the rest is never buffered. The bytes measured are the raw body, which is what the
/// function measures too (API Gateway's base64 encoding of a binary body is undone by
/// `lambda_http` before the function sees it).
async fn read_body(headers: &HeaderMap, body: AxumBody) -> Result<Bytes, Response> {
    let too_large = || from_lambda(ApiError::BodyTooLarge.into_response());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(bytes),
        Err(error) if is_length_limit(&error) => Err(too_large()),
        Err(error) => {
            // The client went away or sent a broken chunked body: no function would run.
            tracing::info!(%error, "request body could not be read");
            Err((
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"message": "Bad Request"})),
            )
                .into_response())
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A function's response as the HTTP API returns it.
fn from_lambda(response: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    Response::from_parts(parts, AxumBody::from(bytes))
}

async fn jwks(State(state): State<AppState>) -> Response {
    match &state.jwks {
        Some(jwks) => axum::Json(jwks.as_ref().clone()).into_response(),
        None => not_found().await,
    }
}

/// `docs/openapi.yaml` as JSON, public like the documents in the repository.
async fn openapi() -> Response {
    published(crate::api_docs::openapi())
}

/// `docs/asyncapi.yaml` as JSON.
async fn asyncapi() -> Response {
    published(crate::api_docs::asyncapi())
}

fn published(document: Result<&'static serde_json::Value, &'static str>) -> Response {
    match document {
        Ok(document) => axum::Json(document).into_response(),
        // Only a build from a broken document gets here; its unit test fails first.
        Err(error) => {
            tracing::error!(%error, "the API document does not parse");
            internal_error()
        }
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "Not Found"})),
    )
        .into_response()
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"message": "Internal Server Error"})),
    )
        .into_response()
}

/// One line per request.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The local API with development keys, over a store that is never reached (the requests
    /// of these tests are answered before any function runs). Returns its address and a
    /// valid bearer token.
    async fn serve() -> (std::net::SocketAddr, String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("cruddur-server-{}", uuid::Uuid::new_v4()));
        let signer = crate::auth::DevSigner::load_or_create(&dir.join("key.pk8")).unwrap();
        let token = signer
            .mint("sub-1", "andrewbrown", std::time::Duration::from_secs(60))
            .unwrap();
        let store = messaging::Store::new(
            messaging::connect::local_client("http://127.0.0.1:9", None),
            "unreachable",
        );
        let directory = functions::directory::Directory::new(
            store,
            std::time::Duration::ZERO,
            Arc::new(functions::directory::SystemClock),
        );
        let app = router(Api::new(directory), Authorizer::for_dev(&signer), None, &[]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (address, token, dir)
    }

    /// Sends `head` and `body_start` on a raw connection, leaves it open (a client still
    /// uploading), and reads the answer: status and body.
    async fn answer_while_uploading(
        address: std::net::SocketAddr,
        head: &str,
        body_start: &[u8],
    ) -> (u16, Value) {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body_start).await.unwrap();
        let mut received = Vec::new();
        let read = async {
            let mut buffer = [0u8; 4096];
            loop {
                let n = stream.read(&mut buffer).await.unwrap();
                received.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&received);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|l| l.trim().parse::<usize>().ok());
                    if n == 0 || length.is_some_and(|length| body.len() >= length) {
                        return text.into_owned();
                    }
                }
                assert!(n > 0, "connection closed without an answer");
            }
        };
        let text = tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("answered without waiting for the rest of the body");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// The status of a bodiless request without credentials.
    async fn status_of(address: std::net::SocketAddr, method: &str, path: &str) -> u16 {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn every_route_is_served_with_the_method_and_path_of_its_key() {
        let (address, _token, dir) = serve().await;
        for route in Route::ALL {
            let (method, path) = route.key().split_once(' ').unwrap();
            let path = path
                .replace(
                    "{message_group_uuid}",
                    "5ae290ed-55d1-47a0-bc6d-fe2bc2700399",
                )
                .replace("{handle}", "@nobody")
                .replace("{message_uuid}", "019ab5e1-2f4c-7a3d-9b1e-5c7d2e8f4a61")
                .replace("{emoji}", "%F0%9F%91%8D");
            let status = status_of(address, method, &path).await;
            // The authorizer answers before any function (whose store is unreachable).
            let expected = if route.protected() { 401 } else { 500 };
            assert_eq!(status, expected, "{}", route.key());
        }
        let other = "/api/message_groups/5ae290ed-55d1-47a0-bc6d-fe2bc2700399/other";
        assert_eq!(status_of(address, "POST", other).await, 404);
        assert_eq!(
            status_of(address, "DELETE", "/api/message_groups").await,
            405
        );
        std::fs::remove_dir_all(dir).ok();
    }

    /// A valid ID token of the pool and client lacks the scope every deployed route requires:
    /// API Gateway answers 403 `{"message":"Forbidden"}` (an invalid token gets 401).
    #[tokio::test]
    async fn an_id_token_is_forbidden_as_api_gateway_answers_a_token_without_the_scope() {
        let (address, access_token, dir) = serve().await;
        let key_file = dir.join("key.pk8");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(
            crate::auth::DevSigner::load(&key_file)
                .unwrap()
                .key_id()
                .to_owned(),
        );
        let now = jsonwebtoken::get_current_timestamp();
        let id_token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({
                "sub": "sub-1", "iss": crate::auth::DEV_ISSUER, "aud": crate::auth::DEV_CLIENT_ID,
                "token_use": "id", "iat": now, "exp": now + 60,
            }),
            &jsonwebtoken::EncodingKey::from_ed_der(&std::fs::read(&key_file).unwrap()),
        )
        .unwrap();
        let get = |token: &str| {
            format!(
                "GET /api/message_groups HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\n\r\n"
            )
        };
        let (status, body) = answer_while_uploading(address, &get(&id_token), b"").await;
        assert_eq!(
            (status, body),
            (403, serde_json::json!({"message": "Forbidden"}))
        );
        let (status, _) = answer_while_uploading(address, &get("not.a.jwt"), b"").await;
        assert_eq!(status, 401);
        // The access token of the same user gets past the authorizer (to a store that is
        // never reached).
        let (status, _) = answer_while_uploading(address, &get(&access_token), b"").await;
        assert_ne!(status, 401);
        assert_ne!(status, 403);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The answer to a bodiless request with a bearer token: status and body.
    async fn answer_with_token(
        address: std::net::SocketAddr,
        token: &str,
        method: &str,
        path: &str,
    ) -> (u16, Value) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
             content-length: 0\r\n\r\n"
        );
        answer_while_uploading(address, &head, b"").await
    }

    /// Path parameters reach the function decoded once, as API Gateway decodes them: the
    /// percent-encoded emoji is an emoji (only the bad uuid is refused, before any store
    /// is reached), a double encoding is not, and bytes that are not UTF-8 are a 4xx.
    #[tokio::test]
    async fn path_parameters_are_percent_decoded_like_api_gateway() {
        let (address, token, dir) = serve().await;
        let group = "5ae290ed-55d1-47a0-bc6d-fe2bc2700399";
        let reactions = |emoji: &str| format!("/api/messages/{group}/not-a-uuid/reactions/{emoji}");
        for method in ["PUT", "DELETE"] {
            let (status, body) =
                answer_with_token(address, &token, method, &reactions("%E2%9D%A4")).await;
            assert_eq!((status, body), (422, json!(["message_uuid_invalid"])));
            let (status, body) =
                answer_with_token(address, &token, method, &reactions("%25F0%259F%2591%258D"))
                    .await;
            assert_eq!(
                (status, body),
                (422, json!(["message_uuid_invalid", "reaction_unknown"]))
            );
            let (status, _) = answer_with_token(address, &token, method, &reactions("%FF")).await;
            assert!((400..500).contains(&status), "{method}: {status}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_api_documents_are_served_as_json_without_a_token() {
        let (address, _token, dir) = serve().await;
        for (path, field, version) in [
            ("/openapi.json", "openapi", "3.1.0"),
            ("/asyncapi.json", "asyncapi", "3.0.0"),
        ] {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            let head = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).await.unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
            assert!(
                head.contains("content-type: application/json"),
                "{path}: {head}"
            );
            let document: Value = serde_json::from_str(body).unwrap();
            assert_eq!(document[field], version, "{path}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_before_it_is_read() {
        let (address, token, dir) = serve().await;
        // Declared larger than the limit: refused from the header alone, although the client
        // has sent only a few bytes of its (API Gateway-sized) upload.
        let declared = format!(
            "POST /api/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            11 * 1024 * 1024
        );
        assert_eq!(
            answer_while_uploading(address, &declared, b"{\"message\": ").await,
            (413, json!(["body_too_large"]))
        );
        // Chunked, no length: refused once one byte past the limit has arrived, while the
        // client is still sending.
        let chunked = format!(
            "POST /api/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let chunk_size = MAX_BODY_BYTES + 1;
        let mut chunk = format!("{chunk_size:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', chunk_size));
        chunk.extend_from_slice(b"\r\n");
        assert_eq!(
            answer_while_uploading(address, &chunked, &chunk).await,
            (413, json!(["body_too_large"]))
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
