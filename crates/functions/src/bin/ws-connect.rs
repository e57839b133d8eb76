//! Lambda `ws-connect`: the WebSocket API's `$connect` route records the connection.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `ws-connect` is invoked.

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::WsConnect.run().await
}
