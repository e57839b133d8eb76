//! The stream pump: what Lambda's event source mapping does for `messaging-stream` (and,
//! with a pump of its own, for `messaging-push`), on one machine. Tails the table's stream,
//! keeps the records the template's filter keeps, delivers them in batches to the very same
//! handler, and honours its partial batch response: retry from the reported record a
//! bounded number of times, then write what is left to a local dead-letter file (the
//! stack's SQS on-failure destination) and go on.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use functions::inbox_rows::InboxRowMover;
use functions::push::PushHandler;
use tokio::sync::watch;

use crate::filter::FilterCriteria;
use crate::stream_source::StreamTail;

#[derive(Debug, Clone)]
pub struct PumpConfig {
    /// Records per invocation, as the template's `BatchSize`.
    pub batch_size: usize,
    /// Invocations per batch before it goes to the dead-letter file: the template's
    /// `MaximumRetryAttempts` (10) + 1. (Lambda also bisects a batch whose invocation fails
    /// as a whole; the handler reports partial failures instead, so the pump does not.)
    pub max_attempts: u32,
    /// How long to wait when the stream has nothing new. Keeps inbox updates within a
    /// fraction of a second without spinning.
    pub idle_poll: Duration,
    pub dead_letter_file: PathBuf,
}

impl Default for PumpConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            max_attempts: 11,
            idle_poll: Duration::from_millis(200),
            dead_letter_file: PathBuf::from(".dynamodb/dead-letter.jsonl"),
        }
    }
}

impl PumpConfig {
    /// `messaging-push`'s event source mapping: few attempts (the template's
    /// `MaximumRetryAttempts: 2`, + 1), as a late frame is worth little and a retried batch
    /// posts again; polled more often, as a frame is worth its speed (Lambda polls a shard
    /// four times a second).
    pub fn push() -> Self {
        Self {
            batch_size: 100,
            max_attempts: 3,
            idle_poll: Duration::from_millis(100),
            dead_letter_file: PathBuf::from(".dynamodb/push-dead-letter.jsonl"),
        }
    }
}

/// What one delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Applied { attempts: u32 },
    DeadLettered { records: usize },
}

/// A function behind an event source mapping of the table's stream.
pub trait BatchHandler: Send + Sync + 'static {
    /// The function's name, for logs.
    const NAME: &'static str;
    /// Its trigger's `FilterCriteria` patterns, as in `template.yaml`.
    const FILTER_PATTERNS: &'static [&'static str];
    /// One invocation; the partial batch response.
    fn invoke(&self, event: &Event) -> impl Future<Output = DynamoDbEventResponse> + Send;
}

impl BatchHandler for InboxRowMover {
    const NAME: &'static str = "messaging-stream";
    const FILTER_PATTERNS: &'static [&'static str] = &functions::batch::FILTER_PATTERNS;

    async fn invoke(&self, event: &Event) -> DynamoDbEventResponse {
        self.handle(event).await.0
    }
}

impl BatchHandler for PushHandler {
    const NAME: &'static str = "messaging-push";
    const FILTER_PATTERNS: &'static [&'static str] = &functions::push::FILTER_PATTERNS;

    async fn invoke(&self, event: &Event) -> DynamoDbEventResponse {
        self.handle(event).await.0
    }
}

pub struct StreamPump<H = InboxRowMover> {
    tail: StreamTail,
    handler: H,
    filter: FilterCriteria,
    config: PumpConfig,
}

impl<H: BatchHandler> StreamPump<H> {
    pub fn new(tail: StreamTail, handler: H, config: PumpConfig) -> Self {
        let filter = FilterCriteria::parse(H::FILTER_PATTERNS)
            .expect("the template's filter patterns are supported");
        Self {
            tail,
            handler,
            filter,
            config,
        }
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(function = H::NAME, stream = %self.tail.stream_arn(), "stream pump started");
        let mut failures = 0u32;
        while !*shutdown.borrow() {
            let wait = match self.tail.poll().await {
                Ok(records) => {
                    failures = 0;
                    let kept: Vec<EventRecord> = records
                        .into_iter()
                        .filter(|r| self.filter.matches(r))
                        .collect();
                    let idle = kept.is_empty();
                    for batch in kept.chunks(self.config.batch_size.max(1)) {
                        self.deliver(batch).await;
                    }
                    if idle {
                        self.config.idle_poll
                    } else {
                        Duration::ZERO
                    }
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "reading the stream failed; retrying");
                    self.config.idle_poll * 2u32.pow(failures.min(5))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(function = H::NAME, "stream pump stopped");
    }

    /// Invokes the handler with `batch`, retrying from the record it reports, like Lambda.
    pub async fn deliver(&self, batch: &[EventRecord]) -> Delivery {
        let mut start = 0;
        for attempt in 1..=self.config.max_attempts {
            let mut event = Event::default();
            event.records = batch[start..].to_vec();
            let response = self.handler.invoke(&event).await;
            let Some(failure) = response.batch_item_failures.first() else {
                return Delivery::Applied { attempts: attempt };
            };
            let failed_at = batch[start..]
                .iter()
                .position(|record| {
                    record.change.sequence_number.is_some()
                        && record.change.sequence_number == failure.item_identifier
                })
                // Lambda retries the whole batch when the identifier is unknown.
                .unwrap_or(0);
            start += failed_at;
            tracing::warn!(
                function = H::NAME,
                attempt,
                from = start,
                "batch partly failed; retrying from the reported record"
            );
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
        }
        let left = &batch[start..];
        if let Err(error) = self.dead_letter(left) {
            tracing::error!(%error, records = left.len(), "could not write the dead-letter file");
        }
        tracing::error!(function = H::NAME, records = left.len(), file = %self.config.dead_letter_file.display(), "batch dead-lettered");
        Delivery::DeadLettered {
            records: left.len(),
        }
    }

    fn dead_letter(&self, records: &[EventRecord]) -> std::io::Result<()> {
        append_dead_letters(&self.config.dead_letter_file, records)
    }
}

/// Appends `records` to the dead-letter file at `path`, one JSON line each, creating the
/// file readable by its owner only: the records are message items, text included.
fn append_dead_letters(path: &Path, records: &[EventRecord]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    for record in records {
        serde_json::to_writer(&mut file, record)?;
        file.write_all(b"\n")?;
    }
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn dead_letter_files_are_created_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cruddur-pump-{}", uuid::Uuid::new_v4()));
        let path = dir.join(".dynamodb/dead-letter.jsonl");
        let record = EventRecord::default();
        append_dead_letters(&path, std::slice::from_ref(&record)).unwrap();
        append_dead_letters(&path, &[record]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(mode, 0o600);
        assert_eq!(lines, 2, "appended, not replaced");
    }
}
