//! Lambda `ws-authorizer`: the WebSocket API's `$connect` REQUEST authorizer (`?token=<jwt>`).
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `ws-authorizer` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::WsAuthorizer.run().await
}
