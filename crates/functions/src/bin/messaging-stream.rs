//! Lambda `messaging-stream`: the table's DynamoDB stream → inbox rows.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `messaging-stream` is invoked.

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::MessagingStream.run().await
}
