//! `messaging-stream` throughput and request counts.

use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::{Event, EventRecord};
use functions::stream::{DEFAULT_CONCURRENCY, FILTER_PATTERN, StreamHandler};
use local::filter::EventFilter;
use local::stream_source::{StreamTail, local_streams_client};
use messaging::model::{InboxItem, Message, MessageItem, UserSummary};
use messaging::testkit::{TestTable, endpoint};
use messaging::validate::MessageText;
use messaging::{Timestamp, keys};
use uuid::Uuid;

struct Scenario {
    name: &'static str,
    conversations: usize,
    members: usize,
    messages: usize,
    batch: usize,
    concurrency: usize,
}

pub async fn run() -> anyhow::Result<()> {
    println!("## messaging-stream\n");
    println!(
        "| scenario | messages | conversations | members | batch | concurrency | messages/s | ms/conversation update | requests | requests/message | requests/conversation update | requests/batch |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let scenarios = [
        Scenario {
            name: "1,000 messages over 10 conversations",
            conversations: 10,
            members: 2,
            messages: 1000,
            batch: 100,
            concurrency: DEFAULT_CONCURRENCY,
        },
        Scenario {
            name: "1,000 messages over 1,000 conversations",
            conversations: 1000,
            members: 2,
            messages: 1000,
            batch: 100,
            concurrency: DEFAULT_CONCURRENCY,
        },
        Scenario {
            name: "batches of 1 (200 messages, 10 conversations)",
            conversations: 10,
            members: 2,
            messages: 200,
            batch: 1,
            concurrency: DEFAULT_CONCURRENCY,
        },
        Scenario {
            name: "50-member conversations (10 × 1 message)",
            conversations: 10,
            members: 50,
            messages: 10,
            batch: 100,
            concurrency: DEFAULT_CONCURRENCY,
        },
        Scenario {
            name: "50-member conversations, one at a time",
            conversations: 10,
            members: 50,
            messages: 10,
            batch: 100,
            concurrency: 1,
        },
    ];
    for scenario in scenarios {
        measure(&scenario).await?;
    }
    println!();
    Ok(())
}

async fn measure(scenario: &Scenario) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let arn = table.store.stream_arn().await?.expect("stream");
    let groups = conversations(&table, scenario.conversations, scenario.members).await?;
    // Skip what setting up wrote; measure only the messages below.
    let mut tail = StreamTail::new(local_streams_client(&endpoint()), arn);
    drain(&mut tail).await?;

    let start = time::macros::datetime!(2025-12-31 23:00 UTC);
    for i in 0..scenario.messages {
        let group = groups[i % groups.len()];
        let at = Timestamp::from_datetime(start + time::Duration::milliseconds(i as i64));
        put_message(&table, group, at, i).await?;
    }
    let filter = EventFilter::parse(FILTER_PATTERN)?;
    let records = collect(&mut tail, &filter, scenario.messages).await?;

    let handler = StreamHandler::new(table.store.clone()).with_concurrency(scenario.concurrency);
    table.requests.reset();
    let mut updates = 0usize;
    let started = Instant::now();
    for batch in records.chunks(scenario.batch) {
        let mut event = Event::default();
        event.records = batch.to_vec();
        let (response, summary) = handler.handle(&event).await;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "a batch failed");
        updates += summary.conversations;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = table.requests.total();
    let batches = records.len().div_ceil(scenario.batch);
    println!(
        "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {} | {:.2} | {:.2} | {:.1} |",
        scenario.name,
        scenario.messages,
        scenario.conversations,
        scenario.members,
        scenario.batch,
        scenario.concurrency,
        scenario.messages as f64 / elapsed,
        elapsed * 1000.0 / updates as f64,
        requests,
        requests as f64 / scenario.messages as f64,
        requests as f64 / updates as f64,
        requests as f64 / batches as f64,
    );
    Ok(())
}

/// `count` conversations of `members` members each, as inbox rows (what the fan-out reads).
async fn conversations(
    table: &TestTable,
    count: usize,
    members: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let mut groups = Vec::with_capacity(count);
    for c in 0..count {
        let group = Uuid::new_v4();
        for m in 0..members {
            let row = InboxItem {
                pk: keys::inbox_pk(Uuid::new_v4()),
                sk: format!("2025-01-01T00:00:00.{:06}+00:00", c),
                message_group_uuid: group,
                message: "start".into(),
                user_uuid: Uuid::new_v4(),
                user_display_name: format!("Member {m}"),
                user_handle: format!("member{m}"),
                last_message_at: None,
                member_count: None,
            };
            table
                .store
                .client()
                .put_item()
                .table_name(table.store.table())
                .set_item(Some(serde_dynamo::to_item(row)?))
                .send()
                .await?;
        }
        groups.push(group);
    }
    Ok(groups)
}

async fn put_message(
    table: &TestTable,
    group: Uuid,
    at: Timestamp,
    i: usize,
) -> anyhow::Result<()> {
    let message = Message {
        group_uuid: group,
        uuid: Uuid::new_v4(),
        text: MessageText::parse(format!("message {i}"))?.into_string(),
        created_at: at.to_string(),
        sender: UserSummary {
            uuid: Uuid::new_v4(),
            handle: "sender".into(),
            display_name: "Sender".into(),
        },
    };
    table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .set_item(Some(serde_dynamo::to_item(MessageItem::new(&message))?))
        .send()
        .await?;
    Ok(())
}

async fn drain(tail: &mut StreamTail) -> anyhow::Result<()> {
    // Two empty polls in a row: caught up.
    let mut empty = 0;
    while empty < 2 {
        if tail.poll().await?.is_empty() {
            empty += 1;
        } else {
            empty = 0;
        }
    }
    Ok(())
}

async fn collect(
    tail: &mut StreamTail,
    filter: &EventFilter,
    count: usize,
) -> anyhow::Result<Vec<EventRecord>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {count} records",
            records.len()
        );
        let fresh = tail.poll().await?;
        if fresh.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        records.extend(fresh.into_iter().filter(|r| filter.matches(r)));
    }
    Ok(records)
}
