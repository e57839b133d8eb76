//! The API Gateway events of the workspace's `events/` folder (the ones `cargo lambda
//! invoke` uses): the benchmarks' requests start from them, as the API tests' do.

/// A file of `events/`, parsed as JSON.
pub fn event_json(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}
