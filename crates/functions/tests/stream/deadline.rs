//! The invocation's deadline: conversations not started, or cut, near it, and reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::recorded::InboxRowMover;
use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use functions::batch::{Deadline, DeadlineMargins};
use messaging::Message;
use testkit::TestTable;

use crate::{
    Cast, Stream, cast, conversation, event, first_of, first_record_of, last_of, rows_by_group,
};

/// A clock the test moves by hand, and an interceptor that moves it on every transaction:
/// a batch whose updates are slow, without waiting for real time to pass.
#[derive(Debug, Clone)]
struct SlowWrites {
    start: std::time::Instant,
    elapsed_ms: Arc<AtomicU64>,
    per_transaction_ms: u64,
}

impl SlowWrites {
    fn new(per_transaction: Duration) -> Self {
        Self {
            start: std::time::Instant::now(),
            elapsed_ms: Arc::default(),
            per_transaction_ms: u64::try_from(per_transaction.as_millis()).unwrap(),
        }
    }

    /// Moves the clock on, as if `time` had passed since the deadline was taken.
    fn pass(&self, time: Duration) {
        self.elapsed_ms
            .fetch_add(u64::try_from(time.as_millis()).unwrap(), Ordering::SeqCst);
    }

    fn deadline_in(&self, remaining: Duration) -> Deadline {
        let (start, elapsed) = (self.start, self.elapsed_ms.clone());
        Deadline::with_clock(
            start + remaining,
            Arc::new(move || start + Duration::from_millis(elapsed.load(Ordering::SeqCst))),
        )
    }
}

impl Intercept for SlowWrites {
    fn name(&self) -> &'static str {
        "SlowWrites"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context
            .input()
            .downcast_ref::<TransactWriteItemsInput>()
            .is_some()
        {
            self.elapsed_ms
                .fetch_add(self.per_transaction_ms, Ordering::SeqCst);
        }
        Ok(())
    }
}

async fn three_conversations(
    table: &TestTable,
    cast: &Cast,
    stream: &mut Stream,
) -> ([Vec<Message>; 3], Vec<EventRecord>) {
    let pairs = [
        (&cast.andrew, &cast.bayko),
        (&cast.andrew, &cast.londo),
        (&cast.bayko, &cast.londo),
    ];
    let mut conversations = Vec::new();
    for (i, (a, b)) in pairs.into_iter().enumerate() {
        let start = format!("2025-11-01T08:0{i}:00.000000+00:00");
        conversations.push(conversation(table, a, b, &start, 2).await);
    }
    let records = stream.next_records("MSG#", 6).await;
    (conversations.try_into().unwrap(), records)
}

#[tokio::test]
async fn near_the_deadline_no_conversation_starts_and_all_are_reported() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ([first, ..], records) = three_conversations(&table, &cast, &mut stream).await;
    table.requests.reset();
    // A 60-second budget of which 1 s is left: the default margins stop starting at 10 s.
    let clock = SlowWrites::new(Duration::ZERO);
    let deadline = clock.deadline_in(Duration::from_secs(60));
    clock.pass(Duration::from_secs(59));

    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle_until(&event(&records), Some(deadline))
        .await;

    assert_eq!(summary.unstarted_conversations, 3, "{summary:?}");
    assert_eq!(table.requests.total(), 0, "nothing was started");
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, first[0].group_uuid)
    );
}

#[tokio::test]
async fn a_slow_batch_stops_starting_conversations_before_the_deadline() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ([first, second, third], records) = three_conversations(&table, &cast, &mut stream).await;
    // Each transaction "takes" 9 s; 20 s remain; nothing starts with less than 10 s left.
    let slow = SlowWrites::new(Duration::from_secs(9));
    let deadline = slow.deadline_in(Duration::from_secs(20));
    let handler = InboxRowMover::new(table.store_with(slow.clone()))
        .with_concurrency(1)
        .with_deadline_margins(DeadlineMargins {
            stop_starting: Duration::from_secs(10),
            finish: Duration::from_secs(1),
        });

    let (response, summary) = handler.handle_until(&event(&records), Some(deadline)).await;

    assert_eq!(summary.unstarted_conversations, 1, "{summary:?}");
    assert_eq!(summary.rows_moved, 4);
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, third[0].group_uuid),
        "the unstarted conversation's first record"
    );
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&first[0].group_uuid],
        last_of(&first)
    );
    assert_eq!(
        rows_by_group(&table, &cast.londo).await[&second[0].group_uuid],
        last_of(&second)
    );
    assert_eq!(
        rows_by_group(&table, &cast.londo).await[&third[0].group_uuid],
        first_of(&third)
    );
}

#[tokio::test]
async fn updates_still_running_at_the_deadline_are_cut_and_reported() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ([first, ..], records) = three_conversations(&table, &cast, &mut stream).await;
    // Time stands still at exactly the finishing margin: every update may start, none may
    // run on.
    let frozen = SlowWrites::new(Duration::ZERO);
    let deadline = frozen.deadline_in(Duration::from_secs(5));
    let handler = InboxRowMover::new(table.store.clone()).with_deadline_margins(DeadlineMargins {
        stop_starting: Duration::ZERO,
        finish: Duration::from_secs(5),
    });

    let (response, summary) = handler.handle_until(&event(&records), Some(deadline)).await;

    assert_eq!(summary.failed_conversations, 3, "{summary:?}");
    assert_eq!(summary.unstarted_conversations, 0);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, first[0].group_uuid)
    );
}

/// A function deployed with a 5-second timeout: fixed 10-second margins would start
/// nothing, ever; scaled ones start every conversation while a fifth of it is left.
#[tokio::test]
async fn a_five_second_budget_moves_every_conversation() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ([first, second, third], records) = three_conversations(&table, &cast, &mut stream).await;
    let deadline = Deadline::at(std::time::Instant::now() + Duration::from_secs(5));

    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle_until(&event(&records), Some(deadline))
        .await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(summary.unstarted_conversations, 0, "{summary:?}");
    assert_eq!(summary.rows_moved, 6);
    for (member, conversation) in [
        (&cast.bayko, &first),
        (&cast.londo, &second),
        (&cast.londo, &third),
    ] {
        assert_eq!(
            rows_by_group(&table, member).await[&conversation[0].group_uuid],
            last_of(conversation)
        );
    }
}

/// The same 5-second budget, nearly spent by slow updates: the third conversation would
/// start with 0.6 s left, under a fifth of the budget, so it is reported instead.
#[tokio::test]
async fn a_five_second_budget_nearly_spent_reports_the_rest_for_retry() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ([first, second, third], records) = three_conversations(&table, &cast, &mut stream).await;
    let slow = SlowWrites::new(Duration::from_millis(2200));
    let deadline = slow.deadline_in(Duration::from_secs(5));
    let handler = InboxRowMover::new(table.store_with(slow.clone())).with_concurrency(1);

    let (response, summary) = handler.handle_until(&event(&records), Some(deadline)).await;

    assert_eq!(summary.unstarted_conversations, 1, "{summary:?}");
    assert_eq!(summary.rows_moved, 4);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, third[0].group_uuid),
        "the unstarted conversation's first record"
    );
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&first[0].group_uuid],
        last_of(&first)
    );
    assert_eq!(
        rows_by_group(&table, &cast.londo).await[&second[0].group_uuid],
        last_of(&second)
    );
    assert_eq!(
        rows_by_group(&table, &cast.londo).await[&third[0].group_uuid],
        first_of(&third)
    );
}
