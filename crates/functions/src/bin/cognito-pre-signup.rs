//! Lambda `cognito-pre-signup`: the user pool's pre sign-up trigger.
//!
//! The stack deploys `cruddur-lambda` for every function; this bin is what
//! `cargo lambda watch` runs when `cognito-pre-signup` is invoked.

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::CognitoPreSignup.run().await
}
