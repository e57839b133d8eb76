//! The Lambda functions of Cruddur Messaging. Each trigger has one module that turns its
//! events into domain values (`TryFrom`) and a handler that calls the store; the binaries
//! in `src/bin/` only build clients and run the handler.

pub mod stream;

/// Every Lambda function, by name: the binary, the `cargo lambda invoke` name and the
/// `BuildProperties: Binary` of its function in `template.yaml` (a test checks the template).
pub const FUNCTION_NAMES: [&str; 6] = [
    "messaging-stream",
    "list-message-groups",
    "list-messages",
    "create-message",
    "get-user-short",
    "cognito-post-confirmation",
];
