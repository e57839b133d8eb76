//! The Lambda functions of Cruddur Messaging. Each trigger has one module that turns its
//! events into domain values (`TryFrom`) and a handler that calls the store. [`Function`]
//! lists the functions and builds each one's clients once before running its handler; the
//! binaries in `src/bin/` only pick a function: `cruddur-lambda`, deployed for every
//! function, by its `Handler`, and one bin per function (for `cargo lambda watch`) its own.
//!
//! - [`inbox_rows`] — `messaging-stream` (DynamoDB stream → inbox rows)
//! - [`api`] — the HTTP routes of the table in [`routes`], over [`http`] (claims, bodies,
//!   error responses) and [`directory`] (cached user lookups)
//! - [`cognito`] — `cognito-pre-signup` and `cognito-post-confirmation`
//! - [`websocket`] — `ws-authorizer`, `ws-connect`, `ws-disconnect` (the WebSocket API),
//!   over [`jwt`] (Cognito token verification)
//! - [`ws_actions`] — what clients send on the WebSocket: `ws-typing` (the `typing` route
//!   and `$default`), error frames
//! - [`push`] — `messaging-push` (DynamoDB stream → frames to members' connections)
//!
//! Both stream consumers run on [`batch`] (records → conversations, deadline, concurrency,
//! partial batch response) and print their metrics through [`emf`].

// The SDK's futures wrapped in `tracing::instrument` layers nest deeper than the default
// limit when clippy computes their layout.
#![recursion_limit = "256"]

pub mod api;
pub mod batch;
pub mod clock;
pub mod cognito;
pub mod directory;
pub mod emf;
pub mod function;
pub mod http;
pub mod https;
pub mod inbox_rows;
pub mod jwt;
pub mod limits;
pub mod logging;
pub mod presence;
pub mod push;
pub mod routes;
pub mod websocket;
pub mod ws_actions;

use lambda_http::{Request, service_fn};
use messaging::Store;
use messaging::connect::client_from_env;
use messaging::schema::table_name_from_env;

pub use crate::function::Function;
use crate::routes::Route;

/// The store as every function builds it: SDK configuration from the environment
/// (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials) and the table from `TABLE_NAME`.
pub async fn store_from_env() -> Store {
    Store::new(client_from_env(None).await, table_name_from_env())
}

/// The API with its user cache and per-user limits, configured from the environment.
pub async fn api_from_env() -> api::Api {
    let directory = directory::Directory::new(
        store_from_env()
            .await
            .with_limits(limits::limits_from_env()),
        directory::Directory::ttl_from_env(),
        std::sync::Arc::new(directory::SystemClock),
    );
    api::Api::new(directory)
}

/// What an HTTP API function runs: the API, built once per execution
/// environment, answering every invocation as `route`.
pub async fn run_route(route: Route) -> Result<(), lambda_http::Error> {
    crate::logging::init();
    let api = &api_from_env().await;
    lambda_http::run(service_fn(move |request: Request| {
        api.serve(route, request)
    }))
    .await
}

/// The user directory with its cache, configured from the environment.
pub async fn directory_from_env() -> directory::Directory {
    directory::Directory::new(
        store_from_env().await,
        directory::Directory::ttl_from_env(),
        std::sync::Arc::new(directory::SystemClock),
    )
}

/// The push consumer: the store, and the Management API of the stage named by
/// `WEBSOCKET_API_ENDPOINT`.
pub async fn push_from_env() -> Result<push::PushHandler, String> {
    let endpoint = std::env::var(push::ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .ok_or_else(|| format!("{} is not set", push::ENDPOINT_ENV))?;
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(push::PushHandler::new(
        store_from_env().await,
        push::management_client(&sdk_config, &endpoint),
    ))
}

/// `ws-connect`: the store, and the cap on each user's live connections
/// (`MAX_CONNECTIONS_PER_USER`), closed through the Management API of the stage named by
/// `WEBSOCKET_API_ENDPOINT` with the push's client, which also posts presence frames.
pub async fn ws_connect_from_env() -> Result<websocket::WsConnections, String> {
    let endpoint = std::env::var(push::ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .ok_or_else(|| format!("{} is not set", push::ENDPOINT_ENV))?;
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let management = push::management_client(&sdk_config, &endpoint);
    let cap = websocket::ConnectionCap::new(limits::max_connections_from_env(), management.clone());
    Ok(websocket::WsConnections::new(store_from_env().await)
        .with_cap(cap)
        .with_presence_frames(management))
}

/// `ws-disconnect`: the store, and the Management API of the stage named by
/// `WEBSOCKET_API_ENDPOINT`, for the presence frames to the user's watchers.
pub async fn ws_disconnect_from_env() -> Result<websocket::WsConnections, String> {
    let endpoint = std::env::var(push::ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .ok_or_else(|| format!("{} is not set", push::ENDPOINT_ENV))?;
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(websocket::WsConnections::new(store_from_env().await)
        .with_presence_frames(push::management_client(&sdk_config, &endpoint)))
}

/// `ws-typing`: the store, and the Management API of the stage named by
/// `WEBSOCKET_API_ENDPOINT` (typing frames to the other members, error frames to the sender).
pub async fn ws_typing_from_env() -> Result<ws_actions::WsTyping, String> {
    let endpoint = std::env::var(push::ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .ok_or_else(|| format!("{} is not set", push::ENDPOINT_ENV))?;
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(ws_actions::WsTyping::new(
        store_from_env().await,
        push::management_client(&sdk_config, &endpoint),
    ))
}
