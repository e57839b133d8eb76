//! Lambda `ws-authorizer`: the WebSocket API's `$connect` REQUEST authorizer (`?token=<jwt>`).

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use functions::jwt::JwtVerifier;
use functions::websocket::WsAuthorizer;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // The user pool's key set is fetched on first use and kept for the environment's life.
    let verifier = Arc::new(JwtVerifier::from_env()?);
    let authorizer = &WsAuthorizer::new(verifier, functions::directory_from_env().await);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            // An error whose message is exactly "Unauthorized" is API Gateway's 401.
            authorizer
                .authorize(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
