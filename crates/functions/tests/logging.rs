//! The functions' log subscriber at every level `LogLevel` allows (and at TRACE, which it
//! does not): what the runtime and the SDK log about raw payloads never gets through.

use std::sync::{Arc, Mutex};

use functions::logging::{level_from, subscriber};
use lambda_runtime::tracing::subscriber::filter::LevelFilter;

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRET: &str = "Bearer eyJraWQiOiJzZWNyZXQ";

/// What the subscriber at `level` writes when the runtime, the SDK and the functions log
/// as they do (the runtime's and the SDK's own targets and messages).
fn written_at(level: LevelFilter) -> String {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = subscriber(level, true, move || writer.clone());
    tracing::subscriber::with_default(subscriber, || {
        // lambda_runtime, layers/api_response.rs: every invocation's event.
        tracing::trace!(
            target: "lambda_runtime::layers::api_response",
            body = %format!(r#"{{"headers":{{"authorization":"{SECRET}"}}}}"#),
            "raw JSON event received from Lambda"
        );
        // aws-smithy-runtime, client/orchestrator.rs: requests and responses.
        tracing::trace!(
            target: "aws_smithy_runtime::client::orchestrator",
            request = %format!("PutItem message={SECRET}"),
            "transmitting request"
        );
        tracing::debug!(
            target: "aws_smithy_runtime::client::orchestrator",
            err = %format!("ServiceError {{ raw: {SECRET} }}"),
            "encountered orchestrator error; continuing"
        );
        tracing::trace!(target: "aws_sigv4::http_request::sign", request = %SECRET, "signing request");
        tracing::debug!(target: "hyper_util::client::legacy", body = %SECRET, "hyper");
        tracing::debug!(target: "lambda_runtime_api_client", body = %SECRET, "client");
        // What those libraries say at INFO and above still shows.
        tracing::warn!(target: "lambda_runtime::runtime", "runtime warning kept");
        // The functions' own lines follow the level.
        tracing::debug!(target: "functions::api", "own debug line");
        tracing::info!(target: "functions::api", "own info line");
    });
    String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn no_level_lets_the_runtime_or_the_sdk_log_payloads() {
    for level in [
        LevelFilter::TRACE,
        LevelFilter::DEBUG,
        LevelFilter::INFO,
        LevelFilter::WARN,
    ] {
        let written = written_at(level);
        assert!(!written.contains(SECRET), "{level}: {written}");
        assert!(
            written.contains("runtime warning kept"),
            "{level}: {written}"
        );
        assert_eq!(
            written.contains("own debug line"),
            level >= LevelFilter::DEBUG,
            "{level}: {written}"
        );
        assert_eq!(
            written.contains("own info line"),
            level >= LevelFilter::INFO,
            "{level}: {written}"
        );
    }
}

#[test]
fn the_level_is_lambdas_and_only_a_level() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    };
    assert_eq!(
        level_from(vars(&[
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("RUST_LOG", "error")
        ])),
        LevelFilter::DEBUG
    );
    // Lambda's FATAL is tracing's ERROR, not lambda_runtime's fallback to INFO.
    assert_eq!(
        level_from(vars(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")])),
        LevelFilter::ERROR
    );
    assert_eq!(level_from(vars(&[("RUST_LOG", "warn")])), LevelFilter::WARN);
    // Per-target directives are not a level: they could lift the ceiling.
    assert_eq!(
        level_from(vars(&[("RUST_LOG", "lambda_runtime=trace")])),
        LevelFilter::INFO
    );
    assert_eq!(level_from(vars(&[])), LevelFilter::INFO);
}
