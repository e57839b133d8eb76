//! The Lambda functions of Cruddur Messaging. Each trigger has one module that turns its
//! events into domain values (`TryFrom`) and a handler that calls the store; the binaries
//! in `src/bin/` only build clients and run the handler.
//!
//! - [`inbox_rows`] — `messaging-stream` (DynamoDB stream → inbox rows)
//! - [`api`] — the HTTP routes of the table in [`routes`], over [`http`] (claims, bodies,
//!   error responses) and [`directory`] (cached user lookups)
//! - [`cognito`] — `cognito-pre-signup` and `cognito-post-confirmation`
//! - [`websocket`] — `ws-authorizer`, `ws-connect`, `ws-disconnect` (the WebSocket API),
//!   over [`jwt`] (Cognito token verification)
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
pub mod http;
pub mod https;
pub mod inbox_rows;
pub mod jwt;
pub mod push;
pub mod routes;
pub mod websocket;

use lambda_http::{Request, service_fn};
use messaging::Store;
use messaging::connect::client_from_env;
use messaging::schema::table_name_from_env;

use crate::routes::Route;

/// Every Lambda function, by name: the binary, the `cargo lambda invoke` name and the
/// `BuildProperties: Binary` of its function in `template.yaml` (a test checks the template).
/// The HTTP API's are [`Route::function`]s.
pub const FUNCTION_NAMES: [&str; 16] = [
    "messaging-stream",
    "list-message-groups",
    "list-messages",
    "create-message",
    "get-user-short",
    "create-message-group",
    "list-message-group-members",
    "add-message-group-members",
    "leave-message-group",
    "mark-message-group-read",
    "cognito-pre-signup",
    "cognito-post-confirmation",
    "ws-authorizer",
    "ws-connect",
    "ws-disconnect",
    "messaging-push",
];

/// The store as every function builds it: SDK configuration from the environment
/// (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials) and the table from `TABLE_NAME`.
pub async fn store_from_env() -> Store {
    Store::new(client_from_env(None).await, table_name_from_env())
}

/// The API with its user cache, configured from the environment.
pub async fn api_from_env() -> api::Api {
    let directory = directory::Directory::new(
        store_from_env().await,
        directory::Directory::ttl_from_env(),
        std::sync::Arc::new(directory::SystemClock),
    );
    api::Api::new(directory)
}

/// What an HTTP API function's binary runs: the API, built once per execution
/// environment, answering every invocation as `route`.
pub async fn run_route(route: Route) -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
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
