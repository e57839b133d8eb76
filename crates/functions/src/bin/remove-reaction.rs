//! Lambda `remove-reaction`: `DELETE /api/messages/{message_group_uuid}/{message_uuid}/reactions/{emoji}`.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `remove-reaction` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;
use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::Api(Route::RemoveReaction).run().await
}
