//! HTTP glue shared by the API functions: who is calling, reading the body, and turning
//! outcomes into API Gateway responses. Errors are JSON arrays of codes, as the original
//! frontend expects (`["message_blank"]`).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use messaging::StoreError;
use messaging::page::PageError;
use messaging::store::FailureKind;
use messaging::validate::ValidationError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Response header carrying the next page's cursor (absent on the last page).
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";
/// What a `503 ["service_busy"]` tells the client to wait before trying again, in seconds.
/// By then the SDK has already retried a throttled request with backoff (and the store a
/// conflicted transaction eight times), so the pressure is not a matter of milliseconds.
pub const SERVICE_BUSY_RETRY_AFTER_SECONDS: u32 = 1;
/// Largest accepted request body. A maximal message (1024 four-byte characters, JSON
/// escaped) stays well below it.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A `handles` array longer than any group allows (plus a margin), refused while the body
/// is read (`api::json::Handles`).
pub const HANDLES_TOO_MANY: &str = "group_handles_too_many";
/// The codes a request body's own `Deserialize` refuses with (`serde::de::Error::custom`
/// with the code as its message) before reading the rest: each answered 400 with itself.
const BODY_REFUSALS: [&str; 1] = [HANDLES_TOO_MANY];

/// A request that gets a 4xx answer. Infrastructure failures are not here: they travel as
/// `Err` so Lambda reports them (and API Gateway answers 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("no authenticated caller")]
    Unauthenticated,
    #[error("request body is not valid JSON")]
    JsonInvalid,
    #[error("request body is not a JSON object")]
    JsonNotObject,
    #[error("a field of the request body has the wrong type")]
    FieldTypeInvalid,
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("request body refused while reading it: {0}")]
    BodyRefused(&'static str),
    #[error("invalid input: {0:?}")]
    Validation(Vec<&'static str>),
    #[error("invalid paging: {0}")]
    Page(PageError),
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A per-user limit's window is full: `429 ["rate_limited"]` with `Retry-After`.
    #[error("rate limited for {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// A request that can never be right, whatever the data (blocking oneself).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A request the data forbids (one of two users blocked the other).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A request that contradicts an earlier one (a `client_message_id` used for another send).
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::JsonInvalid
            | Self::JsonNotObject
            | Self::FieldTypeInvalid
            | Self::BodyRefused(_)
            | Self::Page(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
        }
    }

    pub fn codes(&self) -> Vec<&'static str> {
        match self {
            Self::Unauthenticated => vec!["unauthenticated"],
            Self::JsonInvalid => vec!["json_invalid"],
            Self::JsonNotObject => vec!["json_not_object"],
            Self::FieldTypeInvalid => vec!["json_field_type_invalid"],
            Self::BodyTooLarge => vec!["body_too_large"],
            Self::BodyRefused(code) => vec![code],
            Self::Validation(codes) => codes.clone(),
            Self::Page(error) => vec![error.code()],
            Self::NotFound(code)
            | Self::BadRequest(code)
            | Self::Forbidden(code)
            | Self::Conflict(code) => vec![code],
            Self::RateLimited { .. } => vec!["rate_limited"],
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = json_response(self.status(), &self.codes());
        if let Self::RateLimited {
            retry_after_seconds,
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::Validation(vec![error.code()])
    }
}

impl From<PageError> for ApiError {
    fn from(error: PageError) -> Self {
        Self::Page(error)
    }
}

/// What a route handler fails with: an answer for the client, a moment of overload, or a
/// failure of ours.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// DynamoDB throttled the request, or concurrent writes kept cancelling its transaction:
    /// nothing is wrong with the request or with the system, and the same request shortly
    /// after will likely succeed. Answered `503` with `Retry-After`, not reported as a fault.
    #[error("service busy: {0}")]
    Busy(StoreError),
    #[error(transparent)]
    Infrastructure(StoreError),
}

impl From<ValidationError> for HandlerError {
    fn from(error: ValidationError) -> Self {
        Self::Api(error.into())
    }
}

impl From<PageError> for HandlerError {
    fn from(error: PageError) -> Self {
        Self::Api(error.into())
    }
}

impl From<StoreError> for HandlerError {
    /// The store's answers about the request become 4xx; the rest stay failures.
    fn from(error: StoreError) -> Self {
        match error {
            // Never say whether a conversation the caller cannot see exists.
            StoreError::NotMember(_) => ApiError::NotFound("message_group_not_found").into(),
            StoreError::SelfConversation => {
                ApiError::Validation(vec!["user_reciever_is_self"]).into()
            }
            StoreError::DirectConversation(_) => {
                ApiError::Validation(vec!["message_group_is_direct"]).into()
            }
            StoreError::GroupTooLarge { .. } => {
                ApiError::Validation(vec![ValidationError::GroupTooLarge.code()]).into()
            }
            StoreError::GroupWithoutOthers => {
                ApiError::Validation(vec![ValidationError::GroupHandlesBlank.code()]).into()
            }
            StoreError::Page(error) => ApiError::Page(error).into(),
            // Whole seconds, rounded up: a client waiting that long finds the next window.
            StoreError::RateLimited { retry_after, .. } => ApiError::RateLimited {
                retry_after_seconds: u64::try_from(retry_after.as_millis().div_ceil(1000))
                    .unwrap_or(u64::MAX)
                    .max(1),
            }
            .into(),
            // The same code whichever of the two blocked: it says no more than needed.
            StoreError::Blocked => ApiError::Forbidden("messaging_blocked").into(),
            StoreError::SelfBlock => ApiError::BadRequest("user_blocks_self").into(),
            StoreError::ClientMessageIdReused => {
                ApiError::Conflict("client_message_id_reused").into()
            }
            // Another's message, one of another conversation, none, or the caller's after
            // leaving: all alike, so message ids cannot be probed.
            StoreError::MessageNotFound { .. } => ApiError::NotFound("message_not_found").into(),
            // A group's rows not all visible in the index yet (a membership change needs
            // every one): moments of lag, answered like contention.
            busy @ (StoreError::Contention { .. } | StoreError::IndexLagging { .. }) => {
                Self::Busy(busy)
            }
            // Throttled, or a single-item write that met a transaction on the same item and
            // was not retried to the end by the store: a moment later it would go through.
            busy if matches!(
                busy.failure_kind(),
                Some(FailureKind::Throttled | FailureKind::Conflict)
            ) =>
            {
                Self::Busy(busy)
            }
            other => Self::Infrastructure(other),
        }
    }
}

/// Turns a handler's outcome into what the Lambda returns: 4xx answers and `503` for a busy
/// table are responses; infrastructure failures are errors (Lambda reports them; API Gateway
/// answers 500). Each outcome but success is logged once here, with API Gateway's request id
/// (the one in its access log), so a client's report of a failed call can be found.
pub fn respond(
    request: &Request,
    outcome: Result<Response<Body>, HandlerError>,
) -> Result<Response<Body>, lambda_http::Error> {
    let request_id = request_id(request).unwrap_or("-");
    match outcome {
        Ok(response) => Ok(response),
        Err(HandlerError::Api(error)) => {
            tracing::info!(request_id, status = error.status().as_u16(), codes = ?error.codes(), "request refused");
            Ok(error.into_response())
        }
        Err(HandlerError::Busy(error)) => {
            tracing::warn!(request_id, %error, "request refused: DynamoDB is busy");
            Ok(service_busy_response())
        }
        Err(HandlerError::Infrastructure(error)) => {
            tracing::error!(request_id, %error, "request failed");
            Err(error.into())
        }
    }
}

/// `503 ["service_busy"]` with `Retry-After`.
pub fn service_busy_response() -> Response<Body> {
    let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &["service_busy"]);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(SERVICE_BUSY_RETRY_AFTER_SECONDS),
    );
    response
}

/// API Gateway's id of this request (`requestContext.requestId`).
pub fn request_id(request: &Request) -> Option<&str> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.as_deref(),
        _ => None,
    }
}

/// The Cognito `sub` the HTTP API's JWT authorizer verified.
pub fn caller_sub(request: &Request) -> Result<String, ApiError> {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return Err(ApiError::Unauthenticated);
    };
    context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub"))
        .map(|sub| sub.trim())
        .filter(|sub| !sub.is_empty())
        .map(str::to_owned)
        .ok_or(ApiError::Unauthenticated)
}

/// Reads the body as a JSON object of type `T`, whatever the content type says.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge);
    }
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::JsonNotObject,
                Err(_) => ApiError::JsonInvalid,
            },
        );
    }
    // Straight into `T`, not through a `serde_json::Value`, so that a body's own
    // `Deserialize` (a bounded list) refuses what it must before the rest is read.
    serde_json::from_slice(bytes).map_err(|err| {
        if !err.is_data() {
            return ApiError::JsonInvalid;
        }
        let message = err.to_string();
        BODY_REFUSALS
            .into_iter()
            .find(|code| message.starts_with(code))
            .map_or(ApiError::FieldTypeInvalid, ApiError::BodyRefused)
    })
}

pub fn path_parameter<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request
        .path_parameters_ref()
        .and_then(|parameters| parameters.first(name))
}

pub fn query_parameter<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request
        .query_string_parameters_ref()
        .and_then(|parameters| parameters.first(name))
}

pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| String::from("[\"internal\"]"));
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A 200 list response, with the next page's cursor in its header when there is one.
pub fn page_response<T: Serialize>(items: &[T], next_cursor: Option<&str>) -> Response<Body> {
    let mut response = json_response(StatusCode::OK, items);
    if let Some(value) = next_cursor.and_then(|cursor| HeaderValue::from_str(cursor).ok()) {
        response.headers_mut().insert(NEXT_CURSOR_HEADER, value);
    }
    response
}
