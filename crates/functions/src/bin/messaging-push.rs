//! Lambda `messaging-push`: the table's DynamoDB stream → WebSocket frames to every live
//! connection of every member of the conversation.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `messaging-push` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::MessagingPush.run().await
}
