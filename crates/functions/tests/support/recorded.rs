//! The functions' handlers as the suites run them: the same handlers, each call run inside
//! `testkit::as_function` with the name of the function it is (`Function::name`, an API
//! route's `Route::function`), so that every DynamoDB and Management API request it makes
//! is recorded as that function's (testkit's `RecordFunctionCalls`, checked against its
//! role by `scripts/check-iam.sh`). A suite imports these instead of `functions`' types;
//! the test's own setup and assertions stay unattributed.
//!
//! A new function's tests run its handler the same way (a wrapper here, or
//! `testkit::as_function` around the call): `make test` fails for a function with a
//! DynamoDB policy whose tests recorded nothing.

use std::ops::Deref;
use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayProxyResponse,
};
use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_apigatewaymanagement::Client as ManagementClient;
use functions::Function;
use functions::batch::{Deadline, DeadlineMargins};
use functions::cognito::SignUpError;
use functions::directory::Directory;
use functions::inbox_rows::InboxRowsSummary;
use functions::jwt::JwtVerifier;
use functions::push::{PostRetry, PushSummary};
use functions::routes::Route;
use functions::websocket::{AuthorizerError, AuthorizerResponse, WebSocketEvent};
use lambda_http::{Body, Request, Response};
use messaging::store::RowPositions;
use messaging::{Store, StoreError};
use testkit::{RecordFunctionCalls, as_function};

/// The HTTP API: each route's requests are its function's.
pub struct Api(functions::api::Api);

impl Api {
    pub fn new(directory: Directory) -> Self {
        Self(functions::api::Api::new(directory))
    }

    pub async fn serve(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        as_function(route.function(), self.0.serve(route, request)).await
    }
}

impl Deref for Api {
    type Target = functions::api::Api;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// `messaging-stream`.
pub struct InboxRowMover(functions::inbox_rows::InboxRowMover);

impl InboxRowMover {
    pub fn new(store: Store) -> Self {
        Self(functions::inbox_rows::InboxRowMover::new(store))
    }

    pub fn with_concurrency(self, concurrency: usize) -> Self {
        Self(self.0.with_concurrency(concurrency))
    }

    pub fn with_positions(self, positions: RowPositions) -> Self {
        Self(self.0.with_positions(positions))
    }

    pub fn with_deadline_margins(self, margins: DeadlineMargins) -> Self {
        Self(self.0.with_deadline_margins(margins))
    }

    pub async fn handle(&self, event: &Event) -> (DynamoDbEventResponse, InboxRowsSummary) {
        as_function(Function::MessagingStream.name(), self.0.handle(event)).await
    }

    pub async fn handle_until(
        &self,
        event: &Event,
        deadline: Option<Deadline>,
    ) -> (DynamoDbEventResponse, InboxRowsSummary) {
        let handled = self.0.handle_until(event, deadline);
        as_function(Function::MessagingStream.name(), handled).await
    }
}

/// `messaging-push`; its Management API client records its posts and closes too.
pub struct PushHandler(functions::push::PushHandler);

impl PushHandler {
    pub fn new(store: Store, management: ManagementClient) -> Self {
        Self(functions::push::PushHandler::new(
            store,
            recording(management),
        ))
    }

    pub fn with_retry(self, retry: PostRetry) -> Self {
        Self(self.0.with_retry(retry))
    }

    pub fn with_deadline_margins(self, margins: DeadlineMargins) -> Self {
        Self(self.0.with_deadline_margins(margins))
    }

    pub async fn handle(&self, event: &Event) -> (DynamoDbEventResponse, PushSummary) {
        as_function(Function::MessagingPush.name(), self.0.handle(event)).await
    }

    pub async fn handle_until(
        &self,
        event: &Event,
        deadline: Option<Deadline>,
    ) -> (DynamoDbEventResponse, PushSummary) {
        let handled = self.0.handle_until(event, deadline);
        as_function(Function::MessagingPush.name(), handled).await
    }
}

/// `ws-authorizer`.
pub struct WsAuthorizer(functions::websocket::WsAuthorizer);

impl WsAuthorizer {
    pub fn new(verifier: Arc<JwtVerifier>, directory: Directory) -> Self {
        Self(functions::websocket::WsAuthorizer::new(verifier, directory))
    }

    pub async fn authorize(
        &self,
        event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<AuthorizerResponse, AuthorizerError> {
        as_function(Function::WsAuthorizer.name(), self.0.authorize(event)).await
    }
}

/// `ws-connect` and `ws-disconnect`, one handler in the code, two functions (and roles).
pub struct WsConnections(functions::websocket::WsConnections);

impl WsConnections {
    pub fn new(store: Store) -> Self {
        Self(functions::websocket::WsConnections::new(store))
    }

    /// With the cap on live connections; its `DeleteConnection`s are recorded.
    pub fn with_cap(self, max: usize, management: ManagementClient) -> Self {
        let cap = functions::websocket::ConnectionCap::new(max, recording(management));
        Self(self.0.with_cap(cap))
    }

    /// Posting presence frames to watchers; the posts are recorded.
    pub fn with_presence_frames(self, management: ManagementClient) -> Self {
        Self(self.0.with_presence_frames(recording(management)))
    }

    pub async fn connect(
        &self,
        event: &WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        as_function(Function::WsConnect.name(), self.0.connect(event)).await
    }

    pub async fn disconnect(
        &self,
        event: &WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        as_function(Function::WsDisconnect.name(), self.0.disconnect(event)).await
    }
}

/// `ws-typing`; its Management API client records its posts.
pub struct WsTyping(functions::ws_actions::WsTyping);

impl WsTyping {
    pub fn new(store: Store, management: ManagementClient) -> Self {
        Self(functions::ws_actions::WsTyping::new(
            store,
            recording(management),
        ))
    }

    pub fn with_clock(self, clock: Arc<dyn functions::clock::Clock>) -> Self {
        Self(self.0.with_clock(clock))
    }

    pub async fn handle_frame(
        &self,
        event: &WebSocketEvent,
    ) -> Result<functions::ws_actions::Outcome, StoreError> {
        as_function(Function::WsTyping.name(), self.0.handle_frame(event)).await
    }

    pub async fn handle(
        &self,
        event: &WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        as_function(Function::WsTyping.name(), self.0.handle(event)).await
    }
}

/// `ws-presence`.
pub struct WsPresence(functions::presence::WsPresence);

impl WsPresence {
    pub fn new(store: Store) -> Self {
        Self(functions::presence::WsPresence::new(store))
    }

    pub async fn handle(
        &self,
        event: &functions::websocket::WebSocketEvent,
    ) -> Result<ApiGatewayProxyResponse, StoreError> {
        as_function(Function::WsPresence.name(), self.0.handle(event)).await
    }
}

/// `cognito-pre-signup`.
pub async fn pre_signup(
    store: &Store,
    event: serde_json::Value,
) -> Result<serde_json::Value, SignUpError> {
    let handled = functions::cognito::pre_signup(store, event);
    as_function(Function::CognitoPreSignup.name(), handled).await
}

/// `cognito-post-confirmation`.
pub async fn post_confirmation(
    store: &Store,
    event: serde_json::Value,
) -> Result<serde_json::Value, SignUpError> {
    let handled = functions::cognito::post_confirmation(store, event);
    as_function(Function::CognitoPostConfirmation.name(), handled).await
}

/// `management` with its posts and closes recorded for the IAM check.
fn recording(management: ManagementClient) -> ManagementClient {
    let recorded = management
        .config()
        .to_builder()
        .interceptor(RecordFunctionCalls::new())
        .build();
    ManagementClient::from_conf(recorded)
}
