//! The functions' log subscriber: lambda_runtime's default one (JSON when Lambda's
//! `AWS_LAMBDA_LOG_FORMAT` says so, the level from `AWS_LAMBDA_LOG_LEVEL`, which the
//! template's `LogLevel` sets), with a ceiling on the libraries that log raw payloads.
//!
//! Below INFO those libraries write what must never reach CloudWatch:
//! - `lambda_runtime` logs every invocation's raw JSON event at TRACE ("raw JSON event
//!   received from Lambda", `layers/api_response.rs`): API Gateway events carry the
//!   `Authorization: Bearer` token, `ws-authorizer`'s carry `?token=`, stream records the
//!   message text;
//! - the AWS SDK (`aws_smithy_runtime`, `aws_sigv4`) logs each request and response at
//!   TRACE ("transmitting request", "read HTTP response body": item attributes, message
//!   text), and at DEBUG the `Debug` of errors, whose raw response holds the body;
//! - hyper, h2 and rustls log connection internals.
//!
//! So those targets never log below INFO, whatever the level, and the level itself is read
//! as a level only: lambda_runtime's subscriber also takes `RUST_LOG`'s per-target
//! directives, which could lift the ceiling again. The template's `LogLevel` stops at DEBUG.

use lambda_runtime::tracing::Subscriber;
use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_runtime::tracing::subscriber::fmt::format::{DefaultFields, Format, Full};
use lambda_runtime::tracing::subscriber::fmt::{MakeWriter, SubscriberBuilder};

/// Targets (and, as tracing matches target prefixes, their modules and the crates named
/// after them, such as `lambda_runtime_api_client`) held at INFO or above.
pub const PAYLOAD_LOGGING_TARGETS: [&str; 11] = [
    "lambda_runtime",
    "lambda_http",
    "aws_smithy",
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "aws_sdk",
    "hyper",
    "h2",
    "rustls",
    "tower",
];

/// The most verbose level those targets may log at.
pub const PAYLOAD_TARGETS_CEILING: LevelFilter = LevelFilter::INFO;

/// The level a Lambda asks for: `AWS_LAMBDA_LOG_LEVEL` (the template's `LogLevel`), else a
/// plain level in `RUST_LOG`, else INFO. Lambda's `FATAL` is tracing's ERROR (tracing has
/// no FATAL; lambda_runtime's own subscriber reads it as INFO).
pub fn level_from(var: impl Fn(&str) -> Option<String>) -> LevelFilter {
    let text = var("AWS_LAMBDA_LOG_LEVEL").or_else(|| var("RUST_LOG"));
    match text.as_deref().map(str::trim) {
        Some(level) if level.eq_ignore_ascii_case("fatal") => LevelFilter::ERROR,
        Some(level) => level.parse().unwrap_or(LevelFilter::INFO),
        None => LevelFilter::INFO,
    }
}

/// `level` for the functions' own code, at most [`PAYLOAD_TARGETS_CEILING`] for
/// [`PAYLOAD_LOGGING_TARGETS`].
pub fn filter(level: LevelFilter) -> EnvFilter {
    let ceiling = level.min(PAYLOAD_TARGETS_CEILING);
    PAYLOAD_LOGGING_TARGETS.iter().fold(
        EnvFilter::default().add_directive(level.into()),
        |filter, target| {
            let directive = format!("{target}={ceiling}")
                .parse()
                .expect("a target and a level make a directive");
            filter.add_directive(directive)
        },
    )
}

/// Installs the subscriber every function runs with (once, first thing in each `run`).
pub fn init() {
    let var = |name: &str| std::env::var(name).ok();
    let builder = builder(level_from(var), std::io::stdout);
    // `try_init`, as lambda_runtime's: it also forwards the `log` crate's records, which
    // the filter holds to the same ceiling. A second call keeps the first subscriber.
    let _ = if json_from(var) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The subscriber [`init`] installs, writing to `writer` (for tests).
pub fn subscriber<W>(level: LevelFilter, json: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = builder(level, writer);
    if json {
        Box::new(builder.json().finish())
    } else {
        Box::new(builder.finish())
    }
}

/// Whether Lambda asks for JSON lines (`LogFormat: JSON` in the template).
fn json_from(var: impl Fn(&str) -> Option<String>) -> bool {
    var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|format| format.eq_ignore_ascii_case("json"))
}

fn builder<W>(
    level: LevelFilter,
    writer: W,
) -> SubscriberBuilder<DefaultFields, Format<Full, ()>, EnvFilter, W>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level))
        .with_writer(writer)
}
