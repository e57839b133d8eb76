//! Lambda `ws-disconnect`: the WebSocket API's `$disconnect` route forgets the connection.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::websocket::{WebSocketEvent, WsConnections};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let connections = &WsConnections::new(functions::store_from_env().await);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebSocketEvent>| async move {
            connections
                .disconnect(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
