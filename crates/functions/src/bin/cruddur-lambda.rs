//! `cruddur-lambda`: every Lambda function of the stack in one binary, so one release build
//! (one LTO link) and one uploaded artifact serve all of them. Lambda hands a custom runtime
//! the function's `Handler` as `_HANDLER` (the template sets it to the function's name); a
//! function whose handler is `bootstrap` (created by `cargo lambda deploy`) is known by its
//! name, `<function>` or `<prefix>-<function>`. Anything else fails at init, naming the
//! functions there are.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use functions::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Function::from_env()?.run().await
}
