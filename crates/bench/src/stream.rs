//! `messaging-stream` throughput and request counts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::{Event, EventRecord};
use functions::batch::{FILTER_PATTERN, FILTER_PATTERNS};
use functions::inbox_rows::{DEFAULT_CONCURRENCY, InboxRowMover};
use local::filter::{EventFilter, FilterCriteria};
use local::stream_source::{StreamTail, local_streams_client};
use messaging::items::{InboxRowItem, MembershipItem, MessageChangeKind, MessageItem};
use messaging::model::{Message, UserSummary};
use messaging::store::RowPositions;
use messaging::validate::MessageText;
use messaging::{Timestamp, keys};
use testkit::consumed_capacity::CapacityMeter;
use testkit::{TestTable, endpoint};
use uuid::Uuid;

struct Scenario {
    name: &'static str,
    conversations: usize,
    members: usize,
    messages: usize,
    batch: usize,
    concurrency: usize,
    /// Whether the handler remembers where it put rows (`RowPositions`), as a warm Lambda
    /// execution environment does; without, every update reads the index (as before).
    hints: bool,
    /// Inbox rows as the original system wrote them: no `member_count`, no `last_message_at`.
    original_rows: bool,
}

impl Scenario {
    const fn new(name: &'static str, conversations: usize, messages: usize, batch: usize) -> Self {
        Self {
            name,
            conversations,
            members: 2,
            messages,
            batch,
            concurrency: DEFAULT_CONCURRENCY,
            hints: true,
            original_rows: false,
        }
    }
}

pub async fn run() -> anyhow::Result<()> {
    println!("## messaging-stream\n");
    println!(
        "| scenario | messages | conversations | members | batch | concurrency | messages/s | ms/conversation update | requests | requests/message | requests/conversation update | requests/batch | hinted updates | batch retries |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let scenarios = [
        Scenario {
            hints: false,
            ..Scenario::new(
                "1,000 messages over 10 conversations, index every time",
                10,
                1000,
                100,
            )
        },
        Scenario::new("1,000 messages over 10 conversations", 10, 1000, 100),
        Scenario::new("1,000 messages over 1,000 conversations", 1000, 1000, 100),
        Scenario {
            original_rows: true,
            ..Scenario::new(
                "1,000 messages over 1,000 conversations, original system's rows",
                1000,
                1000,
                100,
            )
        },
        Scenario {
            hints: false,
            ..Scenario::new(
                "batches of 1 (200 messages, 10 conversations), index every time",
                10,
                200,
                1,
            )
        },
        Scenario::new("batches of 1 (200 messages, 10 conversations)", 10, 200, 1),
        Scenario {
            members: 50,
            ..Scenario::new("50-member conversations (10 × 1 message)", 10, 10, 100)
        },
        Scenario {
            members: 50,
            concurrency: 1,
            ..Scenario::new("50-member conversations, one at a time", 10, 10, 100)
        },
        Scenario {
            members: 50,
            ..Scenario::new(
                "50-member conversations, 5 × 4 messages in batches of 5",
                5,
                20,
                5,
            )
        },
    ];
    for scenario in scenarios {
        measure(&scenario).await?;
    }
    println!();
    changes().await?;
    Ok(())
}

/// One kind of preview change measured: `conversations` conversations of `members`, one
/// edit each, every change record its own batch (the worst case).
struct ChangeScenario {
    name: &'static str,
    conversations: usize,
    members: usize,
    /// The handler that moved the rows (it remembers where it put them), or a fresh one.
    warm: bool,
    /// Edit the message before the previewed one: no row shows it.
    older: bool,
    /// Measure a second delivery of the same records.
    replay: bool,
}

impl ChangeScenario {
    const fn new(name: &'static str, members: usize, warm: bool) -> Self {
        Self {
            name,
            conversations: 50,
            members,
            warm,
            older: false,
            replay: false,
        }
    }
}

/// `messaging-stream`'s cost per change: requests, request units (testkit's
/// `CapacityMeter`) and time per edit record.
pub async fn changes() -> anyhow::Result<()> {
    println!("## messaging-stream: changes (edits and deletes)\n");
    println!(
        "| scenario | changes | members | ms/change | requests/change | RRU/change | WRU/change | rows changed/change | requests by operation (per change) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let scenarios = [
        ChangeScenario::new(
            "edit of the previewed message, rows where this environment put them",
            2,
            true,
        ),
        ChangeScenario::new(
            "edit of the previewed message, a fresh environment",
            2,
            false,
        ),
        ChangeScenario::new(
            "50-member group, rows where this environment put them",
            50,
            true,
        ),
        ChangeScenario::new("50-member group, a fresh environment", 50, false),
        ChangeScenario {
            older: true,
            ..ChangeScenario::new(
                "edit of an older message (no preview shows it), fresh",
                2,
                false,
            )
        },
        ChangeScenario {
            replay: true,
            ..ChangeScenario::new("a replayed edit, fresh environment", 2, false)
        },
    ];
    for scenario in scenarios {
        measure_changes(&scenario).await?;
    }
    println!();
    Ok(())
}

async fn measure_changes(scenario: &ChangeScenario) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let arn = table.store.stream_arn().await?.expect("stream");
    let setup = Scenario {
        members: scenario.members,
        ..Scenario::new(scenario.name, scenario.conversations, 0, 1)
    };
    let groups = conversations(&table, &setup).await?;
    let mut tail = StreamTail::new(local_streams_client(&endpoint()), arn);
    drain(&mut tail).await?;
    let filter = FilterCriteria::parse(&FILTER_PATTERNS)?;

    // Two messages per conversation; the rows move to the second.
    let start = time::macros::datetime!(2025-12-31 23:00 UTC);
    let mut edited = Vec::with_capacity(groups.len());
    for (i, group) in groups.iter().enumerate() {
        let mut pair = Vec::new();
        for n in 0..2 {
            let at = start + time::Duration::milliseconds((2 * i + n) as i64);
            pair.push(message(*group, Timestamp::from_datetime(at), 2 * i + n)?);
            put(
                &table,
                serde_dynamo::to_item(MessageItem::new(pair.last().unwrap()))?,
            )
            .await?;
        }
        edited.push(pair.swap_remove(usize::from(!scenario.older)));
    }
    let inserts = collect(&mut tail, &filter, 2 * groups.len()).await?;
    let meter = CapacityMeter::new();
    let mover = InboxRowMover::new(table.store_with(meter.clone()));
    for batch in inserts.chunks(100) {
        // As Lambda does: a reported failure re-invokes from that record (DynamoDB Local
        // times out lock waits under load: "This request will succeed in actual DynamoDB").
        let mut pending = batch;
        for attempt in 0.. {
            let mut event = Event::default();
            event.records = pending.to_vec();
            let (response, _) = mover.handle(&event).await;
            let Some(failure) = response.batch_item_failures.first() else {
                break;
            };
            anyhow::ensure!(attempt < 10, "the fan-out kept failing");
            let from = pending
                .iter()
                .position(|r| r.change.sequence_number == failure.item_identifier)
                .ok_or_else(|| anyhow::anyhow!("reported record not in the batch"))?;
            pending = &pending[from..];
        }
    }
    for message in &edited {
        edit_message(&table, message).await?;
    }
    let changes = collect(&mut tail, &filter, groups.len()).await?;
    let handler = if scenario.warm {
        mover
    } else {
        InboxRowMover::new(table.store_with(meter.clone()))
    };
    let run = || async {
        let mut rows_changed = 0;
        for record in &changes {
            let mut event = Event::default();
            event.records = vec![record.clone()];
            let (response, summary) = handler.handle(&event).await;
            anyhow::ensure!(response.batch_item_failures.is_empty(), "a change failed");
            rows_changed += summary.rows_changed;
        }
        Ok::<usize, anyhow::Error>(rows_changed)
    };
    if scenario.replay {
        run().await?;
    }
    table.requests.reset();
    meter.reset();
    let started = Instant::now();
    let rows_changed = run().await?;
    let elapsed = started.elapsed().as_secs_f64();
    let n = changes.len() as f64;
    let units = meter.total().per(n);
    let by_operation: Vec<String> = table
        .requests
        .snapshot()
        .into_iter()
        .map(|(operation, count)| format!("{operation} {:.2}", count as f64 / n))
        .collect();
    println!(
        "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        scenario.name,
        changes.len(),
        scenario.members,
        elapsed * 1000.0 / n,
        table.requests.total() as f64 / n,
        units.read(),
        units.write(),
        rows_changed as f64 / n,
        by_operation.join(", "),
    );
    let expected = if scenario.older || scenario.replay {
        0
    } else {
        scenario.members * changes.len()
    };
    anyhow::ensure!(
        rows_changed == expected,
        "{rows_changed} rows changed, {expected} expected"
    );
    table.store.drop_table().await?;
    Ok(())
}

/// Message `i` of `group`, as sent.
fn message(group: Uuid, at: Timestamp, i: usize) -> anyhow::Result<Message> {
    Ok(Message {
        life: Default::default(),
        group_uuid: group,
        uuid: Uuid::new_v4(),
        text: MessageText::parse(format!("message {i}"))?.into_string(),
        created_at: at.to_string(),
        sender: UserSummary {
            uuid: Uuid::new_v4(),
            handle: "sender".into(),
            display_name: "Sender".into(),
        },
    })
}

/// An edit as the contract leaves the `MSG#` item (its new text, `edited_at`, revision 1 and
/// every `change*` attribute), written over it: the stream's MODIFY record is the same as
/// for the edit's UpdateItem (the table streams new images only).
async fn edit_message(table: &TestTable, message: &Message) -> anyhow::Result<()> {
    let at = Timestamp::now().to_string();
    let mut item = MessageItem::new(message);
    item.message = format!("{} (edited)", message.text);
    item.edited_at = Some(at.clone());
    item.revision = 1;
    item.change = Some(MessageChangeKind::Edited);
    item.change_by = Some(message.sender.uuid);
    item.change_by_handle = Some(message.sender.handle.clone());
    item.change_by_display_name = Some(message.sender.display_name.clone());
    item.change_at = Some(at);
    put(table, serde_dynamo::to_item(item)?).await
}

async fn measure(scenario: &Scenario) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let arn = table.store.stream_arn().await?.expect("stream");
    let groups = conversations(&table, scenario).await?;
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

    let mut handler =
        InboxRowMover::new(table.store.clone()).with_concurrency(scenario.concurrency);
    if !scenario.hints {
        handler = handler.with_positions(RowPositions::disabled());
    }
    table.requests.reset();
    let mut updates = 0usize;
    let mut hinted = 0usize;
    let mut retries = 0usize;
    let started = Instant::now();
    for batch in records.chunks(scenario.batch) {
        // As Lambda does: a reported failure re-invokes from that record (DynamoDB Local
        // times out lock waits under load: "This request will succeed in actual DynamoDB").
        let mut pending = batch;
        for attempt in 0.. {
            let mut event = Event::default();
            event.records = pending.to_vec();
            let (response, summary) = handler.handle(&event).await;
            if attempt == 0 {
                updates += summary.conversations;
            }
            hinted += summary.hinted_conversations;
            let Some(failure) = response.batch_item_failures.first() else {
                break;
            };
            anyhow::ensure!(attempt < 10, "a batch kept failing: {summary:?}");
            let from = pending
                .iter()
                .position(|r| r.change.sequence_number == failure.item_identifier)
                .ok_or_else(|| anyhow::anyhow!("reported record not in the batch"))?;
            pending = &pending[from..];
            retries += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = table.requests.total();
    let batches = records.len().div_ceil(scenario.batch);
    println!(
        "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {} | {:.3} | {:.2} | {:.1} | {:.0} % | {} |",
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
        hinted as f64 * 100.0 / updates as f64,
        retries,
    );
    anyhow::ensure!(
        every_row_shows_its_newest_message(&table, &groups, &records).await?,
        "an inbox row missed its conversation's newest message"
    );
    // DynamoDB Local slows down as its tables pile up; each scenario starts from the same.
    table.store.drop_table().await?;
    Ok(())
}

/// The scenario's conversations, as inbox rows (what the fan-out reads) and memberships.
async fn conversations(table: &TestTable, scenario: &Scenario) -> anyhow::Result<Vec<Uuid>> {
    let mut groups = Vec::with_capacity(scenario.conversations);
    for c in 0..scenario.conversations {
        let group = Uuid::new_v4();
        let at = format!("2025-01-01T00:00:00.{c:06}+00:00");
        for m in 0..scenario.members {
            let owner = Uuid::new_v4();
            let row = InboxRowItem {
                pk: keys::inbox_pk(owner),
                sk: at.clone(),
                message_group_uuid: group,
                message: "start".into(),
                user_uuid: Uuid::new_v4(),
                user_display_name: format!("Member {m}"),
                user_handle: format!("member{m}"),
                last_message_at: (!scenario.original_rows).then(|| at.clone()),
                member_count: (!scenario.original_rows)
                    .then(|| u32::try_from(scenario.members))
                    .transpose()?,
                ..InboxRowItem::default()
            };
            put(table, serde_dynamo::to_item(row)?).await?;
            put(
                table,
                serde_dynamo::to_item(MembershipItem::new(group, owner, &at))?,
            )
            .await?;
        }
        groups.push(group);
    }
    Ok(groups)
}

async fn put(table: &TestTable, item: messaging::store::Item) -> anyhow::Result<()> {
    Ok(table.put_raw(item).await?)
}

/// Every inbox row shows the newest message of its conversation.
async fn every_row_shows_its_newest_message(
    table: &TestTable,
    groups: &[Uuid],
    records: &[EventRecord],
) -> anyhow::Result<bool> {
    let mut newest: HashMap<Uuid, String> = HashMap::new();
    for record in records {
        let item: MessageItem = serde_dynamo::from_item(record.change.new_image.clone())?;
        let group = item.group_uuid().expect("message pk");
        let at = newest.entry(group).or_default();
        if item.sk > *at {
            *at = item.sk;
        }
    }
    let mut rows = 0;
    for item in table.store.scan_all().await? {
        let Ok(row) = serde_dynamo::from_item::<_, InboxRowItem>(item) else {
            continue;
        };
        if !row.pk.starts_with(keys::INBOX_PREFIX) {
            continue;
        }
        rows += 1;
        if newest.get(&row.message_group_uuid).map(String::as_str) != Some(row.last_message_at()) {
            return Ok(false);
        }
    }
    Ok(rows > 0 && groups.iter().all(|group| newest.contains_key(group)))
}

async fn put_message(
    table: &TestTable,
    group: Uuid,
    at: Timestamp,
    i: usize,
) -> anyhow::Result<()> {
    let message = Message {
        life: Default::default(),
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
    put(table, serde_dynamo::to_item(MessageItem::new(&message))?).await
}

pub(crate) async fn drain(tail: &mut StreamTail) -> anyhow::Result<()> {
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

pub(crate) async fn collect(
    tail: &mut StreamTail,
    filter: &impl Matches,
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

/// A trigger's filter: one pattern or a whole `FilterCriteria`.
pub(crate) trait Matches {
    fn matches(&self, record: &EventRecord) -> bool;
}

impl Matches for EventFilter {
    fn matches(&self, record: &EventRecord) -> bool {
        EventFilter::matches(self, record)
    }
}

impl Matches for FilterCriteria {
    fn matches(&self, record: &EventRecord) -> bool {
        FilterCriteria::matches(self, record)
    }
}
