//! Lambda `ws-connect`: the WebSocket API's `$connect` route records the connection.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `ws-connect` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::WsConnect.run().await
}
