//! `messaging-stream` against DynamoDB Local, fed with the table's own stream records
//! (read through the DynamoDB Streams API and converted to the Lambda event shape).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use functions::batch::{Deadline, DeadlineMargins};
use functions::emf::EmbeddedMetrics;
use functions::inbox_rows::{InboxRowMover, InboxRowsSummary};
use local::stream_source::{StreamTail, local_streams_client};
use messaging::store::RowPositions;
use messaging::validate::MessageText;
use messaging::{Message, PageRequest, Timestamp, User};
use testkit::{FailRequests, Failure, IndexFault, LaggingIndex, TestTable, endpoint};
use uuid::Uuid;

mod support;
use support::event_file;

const WAIT: Duration = Duration::from_secs(10);

fn text(value: &str) -> MessageText {
    MessageText::parse(value).unwrap()
}

fn at(value: &str) -> Timestamp {
    Timestamp::parse(value).unwrap()
}

fn event(records: &[EventRecord]) -> Event {
    let mut event = Event::default();
    event.records = records.to_vec();
    event
}

fn pk(record: &EventRecord) -> String {
    match record.change.keys.get("pk") {
        Some(serde_dynamo::AttributeValue::S(pk)) => pk.clone(),
        _ => String::new(),
    }
}

/// The table's stream, read from its first record.
struct Stream {
    tail: StreamTail,
    seen: Vec<EventRecord>,
}

impl Stream {
    async fn of(table: &TestTable) -> Self {
        let arn = table
            .store
            .stream_arn()
            .await
            .unwrap()
            .expect("table has a stream");
        Self {
            tail: StreamTail::new(local_streams_client(&endpoint()), arn),
            seen: Vec::new(),
        }
    }

    /// Polls until at least `count` records of items whose pk starts with `prefix`
    /// arrived since the last call, and returns all records that arrived.
    async fn next_records(&mut self, prefix: &str, count: usize) -> Vec<EventRecord> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut fresh: Vec<EventRecord> = Vec::new();
        loop {
            fresh.extend(self.tail.poll().await.unwrap());
            if fresh.iter().filter(|r| pk(r).starts_with(prefix)).count() >= count {
                self.seen.extend(fresh.iter().cloned());
                return fresh;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {count} {prefix} records after {WAIT:?}",
                fresh.iter().filter(|r| pk(r).starts_with(prefix)).count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn inbox(table: &TestTable, user: &User) -> Vec<messaging::InboxEntry> {
    table
        .store
        .list_inbox(user.uuid, &PageRequest::new(100, None).unwrap())
        .await
        .unwrap()
        .items
}

/// Every row of `user`'s inbox, by conversation; fails if a conversation has two rows.
async fn rows_by_group(table: &TestTable, user: &User) -> HashMap<Uuid, (String, String)> {
    let rows = inbox(table, user).await;
    let by_group: HashMap<Uuid, (String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.group_uuid,
                (row.last_message.clone(), row.last_message_at.clone()),
            )
        })
        .collect();
    assert_eq!(
        by_group.len(),
        rows.len(),
        "two rows for one conversation: {rows:?}"
    );
    by_group
}

/// `user`'s unread count in `group`.
async fn unread(table: &TestTable, user: &User, group: Uuid) -> u32 {
    inbox(table, user)
        .await
        .into_iter()
        .find(|row| row.group_uuid == group)
        .unwrap_or_else(|| panic!("{} has no row of {group}", user.handle))
        .unread
}

async fn snapshot(table: &TestTable) -> Vec<String> {
    table.snapshot().await
}

struct Cast {
    andrew: User,
    bayko: User,
    londo: User,
}

async fn cast(table: &TestTable) -> Cast {
    Cast {
        andrew: table.user("andrewbrown").await,
        bayko: table.user("bayko").await,
        londo: table.user("londo").await,
    }
}

/// Starts a conversation and appends `count - 1` more messages, one second apart,
/// alternating senders. Returns every message.
async fn conversation(
    table: &TestTable,
    a: &User,
    b: &User,
    start: &str,
    count: usize,
) -> Vec<Message> {
    let start = at(start).as_datetime();
    let first = table
        .store
        .send_to_user(a, b, text("m0"), Timestamp::from_datetime(start))
        .await
        .unwrap();
    let mut messages = vec![first.clone()];
    for i in 1..count {
        let sender = if i % 2 == 0 { a } else { b };
        let now = Timestamp::from_datetime(start + time::Duration::seconds(i as i64));
        let message = table
            .store
            .append_message(sender, first.group_uuid, text(&format!("m{i}")), now)
            .await
            .unwrap();
        messages.push(message);
    }
    messages
}

#[tokio::test]
async fn every_record_of_a_multi_conversation_batch_is_applied() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ab = conversation(
        &table,
        &andrew,
        &bayko,
        "2024-12-31T23:59:00.000000+00:00",
        5,
    )
    .await;
    let al = conversation(
        &table,
        &andrew,
        &londo,
        "2025-01-01T00:00:10.000000+00:00",
        3,
    )
    .await;
    let bl = conversation(
        &table,
        &bayko,
        &londo,
        "2025-01-01T00:00:20.000000+00:00",
        4,
    )
    .await;
    let records = stream.next_records("MSG#", 12).await;

    let handler = InboxRowMover::new(table.store.clone());
    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.messages, 12);
    assert_eq!(summary.conversations, 3);
    assert_eq!(summary.rows_moved, 6);
    assert_eq!(summary.malformed, 0);
    assert_eq!(
        summary.skipped,
        records.len() - 12,
        "users, pairs, memberships, inbox rows"
    );
    for (user, expected) in [
        (&andrew, vec![(&ab, 4), (&al, 2)]),
        (&bayko, vec![(&ab, 4), (&bl, 3)]),
        (&londo, vec![(&al, 2), (&bl, 3)]),
    ] {
        let rows = rows_by_group(&table, user).await;
        assert_eq!(rows.len(), expected.len());
        for (messages, newest) in expected {
            let last = &messages[newest];
            assert_eq!(
                rows[&last.group_uuid],
                (last.text.clone(), last.created_at.clone()),
                "{}'s row of {}",
                user.handle,
                last.group_uuid
            );
        }
    }
    // Newest conversation first in every inbox.
    assert_eq!(inbox(&table, &londo).await[0].group_uuid, bl[0].group_uuid);
}

#[tokio::test]
async fn a_batch_costs_two_requests_per_conversation() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    conversation(
        &table,
        &andrew,
        &bayko,
        "2025-02-01T10:00:00.000000+00:00",
        30,
    )
    .await;
    conversation(
        &table,
        &andrew,
        &londo,
        "2025-02-01T11:00:00.000000+00:00",
        30,
    )
    .await;
    let records = stream.next_records("MSG#", 60).await;
    table.requests.reset();
    InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert_eq!(
        table.requests.of("Query"),
        2,
        "{:?}",
        table.requests.snapshot()
    );
    assert_eq!(table.requests.of("TransactWriteItems"), 2);
    assert_eq!(table.requests.total(), 4);
}

#[tokio::test]
async fn replaying_a_batch_changes_nothing() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    conversation(
        &table,
        &andrew,
        &bayko,
        "2025-03-01T08:00:00.000000+00:00",
        4,
    )
    .await;
    conversation(
        &table,
        &londo,
        &bayko,
        "2025-03-01T09:00:00.000000+00:00",
        2,
    )
    .await;
    let records = stream.next_records("MSG#", 6).await;
    let handler = InboxRowMover::new(table.store.clone());
    handler.handle(&event(&records)).await;
    let before = snapshot(&table).await;
    for _ in 0..3 {
        let (response, summary) = handler.handle(&event(&records)).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(summary.rows_moved, 0);
        assert_eq!(summary.rows_current, 4);
    }
    assert_eq!(snapshot(&table).await, before);
}

#[tokio::test]
async fn an_older_message_after_a_newer_one_moves_nothing_and_counts_once() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    // m0 and m2 are andrew's, m1 and m3 bayko's.
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-04-01T08:00:00.000000+00:00",
        4,
    )
    .await;
    let records = stream.next_records("MSG#", 4).await;
    let message_records: Vec<EventRecord> = records
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let handler = InboxRowMover::new(table.store.clone());
    let group = messages[0].group_uuid;

    // Newest first, then each older one alone (as messages committed after a newer one
    // arrive), then all of them in reverse order.
    handler.handle(&event(&message_records[3..4])).await;
    let newest = (messages[3].text.clone(), messages[3].created_at.clone());
    // m2 is new to bayko and m1 to andrew: counted in place; m0 was counted when the
    // conversation started.
    for (older, recounted) in [(2, 1), (1, 1), (0, 0)] {
        let (_, summary) = handler
            .handle(&event(&message_records[older..=older]))
            .await;
        assert_eq!(summary.rows_moved, recounted, "m{older}");
        assert_eq!(rows_by_group(&table, &bayko).await[&group], newest);
    }
    let before = snapshot(&table).await;
    let reversed: Vec<EventRecord> = message_records.iter().rev().cloned().collect();
    let (_, summary) = handler.handle(&event(&reversed)).await;
    assert_eq!(summary.rows_moved, 0);
    assert_eq!(snapshot(&table).await, before, "nothing counted twice");
    for user in [&andrew, &bayko] {
        assert_eq!(rows_by_group(&table, user).await[&group], newest);
        let row = inbox(&table, user)
            .await
            .into_iter()
            .find(|row| row.group_uuid == group)
            .unwrap();
        assert_eq!(row.unread, 2, "{}: the other's two messages", user.handle);
    }
}

#[tokio::test]
async fn records_that_are_not_message_inserts_are_ignored() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-05-01T08:00:00.000000+00:00",
        2,
    )
    .await;
    let mut stream = Stream::of(&table).await;
    // Catch up: everything so far.
    let all = stream.next_records("MSG#", 2).await;
    let handler = InboxRowMover::new(table.store.clone());
    handler.handle(&event(&all)).await;
    let before = snapshot(&table).await;

    // A MODIFY of a message (rewritten with a later-looking text) and a REMOVE of one.
    let client = table.store.client();
    let group = messages[0].group_uuid;
    client
        .update_item()
        .table_name(table.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("MSG#{group}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(messages[0].created_at.clone()),
        )
        .update_expression("SET message = :m")
        .expression_attribute_values(
            ":m",
            aws_sdk_dynamodb::types::AttributeValue::S("edited".into()),
        )
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name(table.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("MSG#{group}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(messages[0].created_at.clone()),
        )
        .send()
        .await
        .unwrap();
    let changes: Vec<EventRecord> = stream
        .next_records("MSG#", 2)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let kinds: Vec<&str> = changes.iter().map(|r| r.event_name.as_str()).collect();
    assert_eq!(kinds, ["MODIFY", "REMOVE"]);
    let expected_after = snapshot(&table).await;
    assert_ne!(expected_after, before, "the message item itself did change");

    // Inbox-row inserts (from a new conversation) alone, plus the MODIFY and REMOVE.
    table
        .store
        .send_to_user(&londo, &andrew, text("hi"), Timestamp::now())
        .await
        .unwrap();
    let fresh = stream.next_records("GRP#", 2).await;
    let mut batch: Vec<EventRecord> = changes.clone();
    batch.extend(fresh.into_iter().filter(|r| !pk(r).starts_with("MSG#")));
    let settled = snapshot(&table).await;
    let (response, summary) = handler.handle(&event(&batch)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.messages, 0);
    assert_eq!(summary.skipped, batch.len());
    assert_eq!(snapshot(&table).await, settled);
}

/// Collects what the code under test logs, for assertions on log lines.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn malformed_records_are_logged_with_their_event_id_and_skipped() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-06-01T08:00:00.000000+00:00",
        2,
    )
    .await;
    let good: Vec<EventRecord> = stream
        .next_records("MSG#", 2)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let malformed = event_file("stream-malformed.json");
    let mut batch = malformed.records.clone();
    batch.insert(1, good[1].clone());

    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event(&batch))
        .await;

    assert!(response.batch_item_failures.is_empty(), "never retried");
    assert_eq!(summary.malformed, malformed.records.len());
    assert_eq!(summary.messages, 1);
    assert_eq!(
        rows_by_group(&table, &andrew).await[&messages[1].group_uuid].0,
        messages[1].text
    );
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for record in &malformed.records {
        assert!(
            logs.lines()
                .any(|line| line.contains("malformed") && line.contains(&record.event_id)),
            "no log line for {}:\n{logs}",
            record.event_id
        );
    }
}

#[tokio::test]
async fn racing_handlers_leave_one_row_per_member_at_the_newest_message() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-07-01T08:00:00.000000+00:00",
        12,
    )
    .await;
    let records: Vec<EventRecord> = stream
        .next_records("MSG#", 12)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let group = messages[0].group_uuid;
    // Eight handlers, each with its own client, on overlapping slices of the stream.
    let handlers: Vec<InboxRowMover> = (0..8)
        .map(|_| InboxRowMover::new(table.store_with_own_client()))
        .collect();
    let runs = handlers.iter().enumerate().map(|(i, handler)| {
        // Half the handlers see the newest message, half stop earlier.
        let start = i % 4;
        let end = if i % 2 == 0 { records.len() } else { start + 6 };
        let slice = event(&records[start..end]);
        async move { handler.handle(&slice).await }
    });
    let results = futures_util::future::join_all(runs).await;
    for (response, _) in &results {
        assert!(response.batch_item_failures.is_empty());
    }
    let newest = (messages[11].text.clone(), messages[11].created_at.clone());
    for user in [&andrew, &bayko] {
        let rows = rows_by_group(&table, user).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[&group], newest);
    }
}

#[tokio::test]
async fn a_failed_conversation_is_reported_and_a_retry_from_it_converges() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let first = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-08-01T08:00:00.000000+00:00",
        3,
    )
    .await;
    let failing = conversation(
        &table,
        &andrew,
        &londo,
        "2025-08-01T08:10:00.000000+00:00",
        3,
    )
    .await;
    let last = conversation(
        &table,
        &bayko,
        &londo,
        "2025-08-01T08:20:00.000000+00:00",
        3,
    )
    .await;
    let records = stream.next_records("MSG#", 9).await;
    let before: Vec<_> = [&andrew, &bayko, &londo]
        .iter()
        .map(|user| (user.uuid, user.handle.clone()))
        .collect();

    let fail = FailRequests::mentioning(
        "TransactWriteItems",
        failing[0].group_uuid.to_string(),
        Failure::Network,
    );
    let handler = InboxRowMover::new(table.store_with(fail.clone()));
    let (response, summary) = handler.handle(&event(&records)).await;

    assert_eq!(summary.failed_conversations, 1);
    let first_failing_record = records
        .iter()
        .position(|r| pk(r) == format!("MSG#{}", failing[0].group_uuid))
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        records[first_failing_record].change.sequence_number
    );
    // The other conversations were applied, the failing one kept its rows as they were.
    let newest = |messages: &[Message]| {
        let m = messages.last().unwrap();
        (m.text.clone(), m.created_at.clone())
    };
    assert_eq!(
        rows_by_group(&table, &bayko).await[&first[0].group_uuid],
        newest(&first)
    );
    assert_eq!(
        rows_by_group(&table, &bayko).await[&last[0].group_uuid],
        newest(&last)
    );
    for user in [&andrew, &londo] {
        let row = &rows_by_group(&table, user).await[&failing[0].group_uuid];
        assert_eq!(row.1, failing[0].created_at, "still present, not moved");
    }
    drop(before);

    // Lambda retries from the reported record; with the fault gone it converges.
    fail.heal();
    let (response, _) = handler
        .handle(&event(&records[first_failing_record..]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    for user in [&andrew, &londo] {
        assert_eq!(
            rows_by_group(&table, user).await[&failing[0].group_uuid],
            newest(&failing)
        );
    }
    for user in [&bayko, &londo] {
        assert_eq!(
            rows_by_group(&table, user).await[&last[0].group_uuid],
            newest(&last)
        );
    }
    // The retry replayed `last` (applied the first time) and counted nothing twice: in
    // each conversation the starter sent m0 and m2, the other m1.
    for messages in [&first, &failing, &last] {
        let group = messages[0].group_uuid;
        let starter = messages[0].sender.uuid;
        for user in [&andrew, &bayko, &londo] {
            if inbox(&table, user)
                .await
                .iter()
                .any(|r| r.group_uuid == group)
            {
                let expected = if user.uuid == starter { 1 } else { 2 };
                assert_eq!(
                    unread(&table, user, group).await,
                    expected,
                    "{}",
                    user.handle
                );
            }
        }
    }
}

#[tokio::test]
async fn unread_counts_each_message_from_the_other_once_however_batches_split_and_replay() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    // Andrew sends m0, m2, m4; Bayko m1, m3, m5.
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-05-01T08:00:00.000000+00:00",
        6,
    )
    .await;
    let group = messages[0].group_uuid;
    let records: Vec<EventRecord> = stream
        .next_records("MSG#", 6)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let handler = InboxRowMover::new(table.store.clone());

    handler.handle(&event(&records[..2])).await;
    assert_eq!(unread(&table, &andrew, group).await, 1);
    assert_eq!(unread(&table, &bayko, group).await, 1);
    handler.handle(&event(&records[2..5])).await;
    let settled = (
        unread(&table, &andrew, group).await,
        unread(&table, &bayko, group).await,
    );
    assert_eq!(settled, (2, 3));
    // Lambda retrying the whole stretch from the start, then a batch overlapping it.
    handler.handle(&event(&records[..5])).await;
    handler.handle(&event(&records[3..])).await;
    assert_eq!(unread(&table, &andrew, group).await, 3);
    assert_eq!(unread(&table, &bayko, group).await, 3);
    let before = snapshot(&table).await;
    for _ in 0..2 {
        handler.handle(&event(&records)).await;
        InboxRowMover::new(table.store.clone())
            .with_positions(RowPositions::disabled())
            .handle(&event(&records[1..4]))
            .await;
    }
    assert_eq!(snapshot(&table).await, before, "replays count nothing");
}

#[test]
fn summaries_become_embedded_metric_lines_that_survive_the_log_level() {
    let summary = InboxRowsSummary {
        records: 100,
        messages: 90,
        conversations: 10,
        rows_moved: 20,
        unstarted_conversations: 3,
        ..InboxRowsSummary::default()
    };
    let now = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    let emf = summary.to_emf("CruddurMessaging", "messaging-stream", now, None);
    assert_eq!(
        emf["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "CruddurMessaging"
    );
    assert_eq!(emf["_aws"]["Timestamp"], 1_700_000_000_000u64);
    assert_eq!(emf["RowsMoved"], 20);
    assert_eq!(emf["UnstartedConversations"], 3);
    assert_eq!(emf["FunctionName"], "messaging-stream");
    let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(emf.get(name).is_some(), "metric {name} has no value");
    }
    for alarmed in ["FailedConversations", "AbandonedConversations"] {
        assert!(names.contains(&alarmed), "{alarmed} is alarmed on");
    }
    // Lambda files a JSON line by its `level` and needs an RFC 3339 `timestamp`, else the
    // line is INFO and ApplicationLogLevel=WARN drops the metrics.
    assert_eq!(emf["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(emf["level"], "INFO");
    for (configured, level) in [
        (Some("WARN"), "WARN"),
        (Some("error"), "ERROR"),
        (Some("FATAL"), "FATAL"),
        (Some("DEBUG"), "INFO"),
        (Some("TRACE"), "INFO"),
        (Some("nonsense"), "INFO"),
    ] {
        let emf = summary.to_emf("N", "f", now, configured);
        assert_eq!(emf["level"], level, "{configured:?}");
    }
}

#[tokio::test]
async fn corrupt_rows_and_conversations_without_members_are_skipped_not_retried() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let good = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-09-01T08:00:00.000000+00:00",
        2,
    )
    .await;
    // A corrupt inbox row in another conversation: indexed, but without its other member.
    let broken_group = Uuid::new_v4();
    table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("GRP#{}", Uuid::new_v4())),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("2025-01-01T00:00:00.000000+00:00".into()),
        )
        .item(
            "message_group_uuid",
            aws_sdk_dynamodb::types::AttributeValue::S(broken_group.to_string()),
        )
        .send()
        .await
        .unwrap();
    let broken = table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("MSG#{broken_group}")),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("2025-09-01T07:00:00.000000+00:00".into()),
        )
        .item(
            "message_uuid",
            aws_sdk_dynamodb::types::AttributeValue::S(Uuid::new_v4().to_string()),
        )
        .item(
            "message",
            aws_sdk_dynamodb::types::AttributeValue::S("hello".into()),
        )
        .item(
            "user_uuid",
            aws_sdk_dynamodb::types::AttributeValue::S(andrew.uuid.to_string()),
        )
        .item(
            "user_display_name",
            aws_sdk_dynamodb::types::AttributeValue::S("A".into()),
        )
        .item(
            "user_handle",
            aws_sdk_dynamodb::types::AttributeValue::S("a".into()),
        )
        .send()
        .await;
    broken.unwrap();
    // A message in a conversation that has neither members nor rows.
    let orphan = Message::new(
        Uuid::new_v4(),
        andrew.summary(),
        "to nobody".into(),
        "2025-09-01T07:30:00.000000+00:00".into(),
    );
    table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .set_item(Some(
            serde_dynamo::to_item(messaging::items::MessageItem::new(&orphan)).unwrap(),
        ))
        .send()
        .await
        .unwrap();
    let records = stream.next_records("MSG#", 4).await;
    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "not retried forever"
    );
    assert_eq!(summary.rows_skipped, 1, "the corrupt row: {summary:?}");
    assert_eq!(summary.abandoned_conversations, 1, "the orphan message");
    assert_eq!(summary.failed_conversations, 0);
    assert_eq!(
        rows_by_group(&table, &bayko).await[&good[0].group_uuid].0,
        "m1"
    );
}

// --- DynamoDB's behaviour that DynamoDB Local does not show ---

/// Two conversations (Andrew–Bayko, Andrew–Londo) of three messages each, a minute apart,
/// read back from the stream.
async fn two_conversations(
    table: &TestTable,
    cast: &Cast,
    stream: &mut Stream,
) -> (Vec<Message>, Vec<Message>, Vec<EventRecord>) {
    let ab = conversation(
        table,
        &cast.andrew,
        &cast.bayko,
        "2025-10-01T08:00:00.000000+00:00",
        3,
    )
    .await;
    let al = conversation(
        table,
        &cast.andrew,
        &cast.londo,
        "2025-10-01T08:01:00.000000+00:00",
        3,
    )
    .await;
    let records = stream.next_records("MSG#", 6).await;
    (ab, al, records)
}

fn first_record_of(records: &[EventRecord], group: Uuid) -> Option<String> {
    records
        .iter()
        .find(|r| pk(r) == format!("MSG#{group}"))
        .and_then(|r| r.change.sequence_number.clone())
}

fn last_of(messages: &[Message]) -> (String, String) {
    let m = messages.last().unwrap();
    (m.text.clone(), m.created_at.clone())
}

fn first_of(messages: &[Message]) -> (String, String) {
    (messages[0].text.clone(), messages[0].created_at.clone())
}

#[tokio::test]
async fn an_index_that_shows_no_rows_yet_never_passes_for_nothing_to_do() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    // The first reads of the index show none of the rows, as right after they were written.
    let index = LaggingIndex::new().then(IndexFault::ShowNothing, 3);
    let handler = InboxRowMover::new(table.store_with(index.clone())).with_concurrency(1);

    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty(), "{summary:?}");
    assert_eq!(index.pending(), 0);
    assert_eq!(summary.rows_moved, 4, "{summary:?}");
    assert_eq!(summary.index_reads, 5, "three empty reads, then one each");
    for user in [&cast.andrew, &cast.bayko] {
        assert_eq!(
            rows_by_group(&table, user).await[&ab[0].group_uuid],
            last_of(&ab)
        );
    }
    for user in [&cast.andrew, &cast.londo] {
        assert_eq!(
            rows_by_group(&table, user).await[&al[0].group_uuid],
            last_of(&al)
        );
    }
}

#[tokio::test]
async fn an_index_that_does_not_catch_up_is_reported_for_retry_and_the_retry_converges() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    let handler = InboxRowMover::new(
        table.store_with(LaggingIndex::new().then(IndexFault::ShowNothing, 1000)),
    );

    let (response, summary) = handler.handle(&event(&records)).await;

    assert_eq!(summary.failed_conversations, 2, "{summary:?}");
    assert_eq!(summary.abandoned_conversations, 0);
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, ab[0].group_uuid)
    );
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&ab[0].group_uuid],
        first_of(&ab),
        "nothing moved on a view that showed nothing"
    );

    // Lambda retries the batch from there; by then the index has caught up.
    let (response, _) = InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&ab[0].group_uuid],
        last_of(&ab)
    );
    assert_eq!(
        rows_by_group(&table, &cast.londo).await[&al[0].group_uuid],
        last_of(&al)
    );
}

#[tokio::test]
async fn a_rejected_transaction_is_reported_for_retry_not_skipped() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    let reject = FailRequests::mentioning(
        "TransactWriteItems",
        al[0].group_uuid.to_string(),
        Failure::Rejected,
    );
    let handler = InboxRowMover::new(table.store_with(reject.clone()));

    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(reject.failed() > 0);
    assert_eq!(summary.failed_conversations, 1, "{summary:?}");
    assert_eq!(summary.abandoned_conversations, 0);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, al[0].group_uuid)
    );
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&ab[0].group_uuid],
        last_of(&ab)
    );
}

#[tokio::test]
async fn the_next_batch_moves_rows_this_environment_placed_in_one_request_each() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    let handler = InboxRowMover::new(table.store.clone());
    handler.handle(&event(&records)).await;
    let later = |i: i64| {
        Timestamp::from_datetime(
            at("2025-10-01T09:00:00.000000+00:00").as_datetime() + time::Duration::seconds(i),
        )
    };
    let mut next = Vec::new();
    for (i, group) in [ab[0].group_uuid, al[0].group_uuid].into_iter().enumerate() {
        let message = table
            .store
            .append_message(&cast.andrew, group, text("next"), later(i as i64))
            .await
            .unwrap();
        next.push(message);
    }
    let records = stream.next_records("MSG#", 2).await;
    table.requests.reset();

    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.hinted_conversations, 2, "{summary:?}");
    assert_eq!(summary.index_reads, 0);
    assert_eq!(table.requests.of("TransactWriteItems"), 2);
    assert_eq!(table.requests.total(), 2, "{:?}", table.requests.snapshot());
    for user in [&cast.andrew, &cast.bayko] {
        assert_eq!(
            rows_by_group(&table, user).await[&ab[0].group_uuid],
            last_of(&next[..1])
        );
    }
}

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
    let deadline = Deadline::at(std::time::Instant::now() + Duration::from_secs(1));

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

#[tokio::test]
async fn a_fifty_member_group_moves_in_one_transaction_counts_every_sender_and_replays_nothing() {
    let table = TestTable::new().await;
    let mut members = Vec::new();
    for i in 0..50 {
        members.push(table.user(&format!("member{i:02}")).await);
    }
    let mut stream = Stream::of(&table).await;
    let name = messaging::validate::GroupName::parse("Fifty").unwrap();
    let first = table
        .store
        .create_group(
            &members[0],
            &name,
            &members[1..],
            text("welcome"),
            at("2025-09-01T08:00:00.000000+00:00"),
        )
        .await
        .unwrap();
    let group = first.group_uuid;
    let mut messages = vec![first];
    for (i, sender) in [3usize, 49, 3, 17].into_iter().enumerate() {
        let when = format!("2025-09-01T08:00:0{}.000000+00:00", i + 1);
        let message = table
            .store
            .append_message(&members[sender], group, text(&format!("m{i}")), at(&when))
            .await
            .unwrap();
        messages.push(message);
    }
    let records = stream.next_records("MSG#", 5).await;
    table.requests.reset();

    let handler = InboxRowMover::new(table.store.clone());
    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rows_moved, 50);
    assert_eq!(
        table.requests.of("Query"),
        1,
        "{:?}",
        table.requests.snapshot()
    );
    assert_eq!(
        table.requests.of("TransactWriteItems"),
        1,
        "100 items, one transaction"
    );
    let newest = messages.last().unwrap();
    for (i, member) in members.iter().enumerate() {
        let row = inbox(&table, member)
            .await
            .into_iter()
            .find(|row| row.group_uuid == group)
            .unwrap();
        assert_eq!(row.last_message_at, newest.created_at);
        assert_eq!(row.other.handle, "member17", "the last sender");
        let expected = messages
            .iter()
            .filter(|m| m.sender.uuid != member.uuid)
            .count();
        assert_eq!(row.unread as usize, expected, "member{i:02}");
    }
    let before = snapshot(&table).await;
    handler.handle(&event(&records)).await;
    InboxRowMover::new(table.store.clone())
        .handle(&event(&records[2..]))
        .await;
    assert_eq!(snapshot(&table).await, before, "replays change nothing");
}
