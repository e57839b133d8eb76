//! Lambda `unblock-user`: `DELETE /api/users/@{handle}/block`.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `unblock-user` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;
use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::Api(Route::UnblockUser).run().await
}
