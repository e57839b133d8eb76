//! What the functions' test suites share: the Lambda events of `events/` and the people and
//! conversations their stream events are about, a clock moved by hand, captured logs, and
//! the handlers with their requests recorded as their function's (`recorded`).

// Each suite is its own crate and uses part of this module.
#![allow(dead_code)]

pub mod recorded;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::Event;
use functions::clock::{Clock, SystemClock};
use uuid::Uuid;

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

// The users and conversations the stream events of `events/` are about.
pub const ANDREW: &str = "0240ac03-a6fc-4ab1-be30-9a19c532d58c";
pub const BAYKO: &str = "6e5bc0a7-b64a-4aaf-b89c-34a0eab7a098";
pub const LONDO: &str = "c1427c64-1e7d-4912-b5a2-78b1359ed751";
pub const WITH_BAYKO: &str = "5ae290ed-55d1-47a0-bc6d-fe2bc2700399";
pub const WITH_LONDO: &str = "a7f3c9d2-1b4e-4f6a-9c8d-2e5f7a1b3c4d";
pub const BAYKO_LONDO: &str = "3d9e8f7a-6b5c-4d3e-8f1a-0b2c3d4e5f6a";

pub fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

/// A clock the test moves by hand, from the real time (tokens are minted with it).
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    /// None: the code under test must not read the wall clock, and reading it panics.
    start_unix_seconds: Option<u64>,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Self::starting(Some(SystemClock.unix_seconds()))
    }

    /// A clock for code that ages things by monotonic time only (`now`).
    pub fn monotonic_only() -> Arc<Self> {
        Self::starting(None)
    }

    fn starting(start_unix_seconds: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            start_unix_seconds,
            offset: Mutex::new(Duration::ZERO),
        })
    }

    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap()
    }

    fn unix_seconds(&self) -> u64 {
        let start = self
            .start_unix_seconds
            .unwrap_or_else(|| unreachable!("the code under test ages things by `now` only"));
        start + self.offset.lock().unwrap().as_secs()
    }
}

/// Log lines written while `run` runs (on this thread), without colours.
pub async fn logs_of<F: std::future::Future>(run: F) -> (F::Output, String) {
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
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // Tokio tests run on one thread: the guard covers every future of the test.
    let output = {
        let _guard = tracing::subscriber::set_default(subscriber);
        run.await
    };
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    (output, text)
}

/// The Management API stand-in on a free loopback port, over `open` connections.
pub async fn management_api(open: local::websocket::OpenConnections) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let management = local::websocket::management_router(open)
        .into_make_service_with_connect_info::<local::websocket::Peer>();
    tokio::spawn(async move { axum::serve(listener, management).await });
    format!("http://{address}")
}
