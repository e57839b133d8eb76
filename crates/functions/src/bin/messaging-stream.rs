//! Lambda `messaging-stream`: the table's DynamoDB stream → inbox rows.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `messaging-stream` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::MessagingStream.run().await
}
