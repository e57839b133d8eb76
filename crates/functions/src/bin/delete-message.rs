//! Lambda `delete-message`: `DELETE /api/messages/{message_group_uuid}/{message_uuid}`.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `delete-message` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;
use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::Api(Route::DeleteMessage).run().await
}
