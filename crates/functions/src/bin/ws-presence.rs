//! Lambda `ws-presence`: the WebSocket API's `presence` route answers a direct
//! conversation's partner's presence and watches it for the connection.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `ws-presence` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::WsPresence.run().await
}
