//! Lambda `cognito-post-confirmation`: the user pool's post-confirmation trigger.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `cognito-post-confirmation` is invoked.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::CognitoPostConfirmation.run().await
}
