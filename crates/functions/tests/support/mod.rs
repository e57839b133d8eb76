//! What the functions' test suites share: the Lambda events of `events/`.

// Each suite is its own crate and uses part of this module.
#![allow(dead_code)]

use aws_lambda_events::dynamodb::Event;

/// A file of the workspace's `events/` folder (the Lambda events `cargo lambda invoke`
/// uses), parsed as JSON.
pub fn event_json(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A DynamoDB stream event of `events/`.
pub fn event_file(name: &str) -> Event {
    serde_json::from_value(event_json(name)).expect("a DynamoDB stream event")
}
