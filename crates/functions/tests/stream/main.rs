//! `messaging-stream` against DynamoDB Local, fed with the table's own stream records
//! (read through the DynamoDB Streams API and converted to the Lambda event shape), and with
//! the stream events of `events/`. One test binary, a module per subject; here the stream
//! reader, the cast and the conversations the tests write.

mod batches;
mod changes;
mod deadline;
mod event_files;
mod idempotency;
mod metrics;
mod retries;
mod skipped;
#[path = "../support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use local::stream_source::{StreamTail, local_streams_client};
use messaging::validate::MessageText;
use messaging::{Message, PageRequest, Timestamp, User};
use testkit::{TestTable, endpoint};
use uuid::Uuid;

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
