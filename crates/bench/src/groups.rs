//! Group conversations and unread counts: creating a 50-member group, its fan-out through
//! `messaging-stream`, marking read, and membership changes, through the real handlers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::Event;
use functions::api::Api;
use functions::batch::FILTER_PATTERN;
use functions::directory::{Directory, SystemClock};
use functions::inbox_rows::InboxRowMover;
use functions::routes::Route;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use local::filter::EventFilter;
use local::stream_source::{StreamTail, local_streams_client};
use messaging::coalesce::Newest;
use messaging::store::{NewUser, RowPositions};
use messaging::validate::{DisplayName, GroupName, Handle, MessageText};
use messaging::{Message, Timestamp, User};
use serde_json::{Value, json};
use testkit::{TestTable, endpoint};
use uuid::Uuid;

use crate::stream::{collect, drain};

const MEMBERS: usize = 50;

/// Requests per operation, summed over the timed calls only.
#[derive(Default)]
struct Tally {
    samples: Vec<f64>,
    requests: BTreeMap<String, u64>,
}

impl Tally {
    /// Times `call`, counting only the requests it makes.
    async fn time<F, T>(&mut self, table: &TestTable, call: F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        table.requests.reset();
        let started = Instant::now();
        let output = call.await;
        self.samples.push(started.elapsed().as_secs_f64() * 1000.0);
        for (operation, count) in table.requests.snapshot() {
            *self.requests.entry(operation).or_default() += count;
        }
        output
    }

    fn row(&mut self, operation: &str, case: &str) {
        self.samples.sort_by(f64::total_cmp);
        let calls = self.samples.len() as f64;
        let total: u64 = self.requests.values().sum();
        let per_operation: Vec<String> = self
            .requests
            .iter()
            .map(|(operation, count)| format!("{operation} {:.2}", *count as f64 / calls))
            .collect();
        println!(
            "| `{operation}` | {case} | {:.2} | {:.2} | {:.2} | {} |",
            crate::percentile(&self.samples, 50.0),
            crate::percentile(&self.samples, 99.0),
            total as f64 / calls,
            per_operation.join(", ")
        );
    }
}

pub async fn run(calls: usize) -> anyhow::Result<()> {
    println!("## Group conversations and unread counts\n");
    println!(
        "Through the Lambda handlers (warm) and `messaging-stream`'s handler. Requests are \
         counted per call of the timed operation only.\n"
    );
    println!("| operation | case | p50 ms | p99 ms | requests/call | requests |");
    println!("|---|---|---:|---:|---:|---|");
    let table = TestTable::new().await;
    let mut members = Vec::with_capacity(MEMBERS + 1);
    for i in 0..=MEMBERS {
        members.push(register(&table, i).await?);
    }
    let api = Api::new(Directory::new(
        table.store.clone(),
        Duration::from_secs(60),
        Arc::new(SystemClock),
    ));

    // The fan-out first, on a table holding only this group: DynamoDB Local slows down as
    // a table grows.
    let group = table
        .store
        .create_group(
            &members[0],
            &GroupName::parse("Fifty")?,
            &members[1..MEMBERS],
            MessageText::parse("welcome")?,
            Timestamp::now(),
        )
        .await?;
    let fan_out_row = fan_out(&table, &members, group.group_uuid).await?;
    create(&table, &api, &members, calls.min(30)).await?;
    mark_read(
        &table,
        &api,
        &members,
        group.group_uuid,
        "a 49-member group",
        calls,
    )
    .await?;
    // A direct conversation's read also tells the other member's row (its `seen`).
    let direct = table
        .store
        .send_to_user(
            &members[1],
            &members[2],
            MessageText::parse("hello")?,
            Timestamp::now(),
        )
        .await?;
    mark_read(
        &table,
        &api,
        &members,
        direct.group_uuid,
        "a direct conversation",
        calls,
    )
    .await?;
    add_and_leave(&table, &api, &members, calls.min(100)).await?;
    println!();
    println!("{fan_out_row}");
    table.store.drop_table().await?;
    Ok(())
}

/// `POST /api/message_groups` with 48 and with 49 others.
async fn create(
    table: &TestTable,
    api: &Api,
    members: &[User],
    calls: usize,
) -> anyhow::Result<()> {
    for size in [MEMBERS - 1, MEMBERS] {
        let handles: Vec<String> = members[1..size]
            .iter()
            .map(|m| m.handle.to_string())
            .collect();
        let mut event = event("api-create-message-group.json", &members[0]);
        event["body"] = json!(
            json!({"name": "Benchmark", "handles": handles, "message": "welcome"}).to_string()
        );
        let mut tally = Tally::default();
        for _ in 0..calls {
            let response = tally
                .time(table, api.serve(Route::CreateMessageGroup, request(&event)))
                .await;
            ok(response)?;
        }
        let case = if size == MEMBERS {
            "50 members: 49 + the message, then the 50th added"
        } else {
            "49 members: one transaction of 99 items"
        };
        tally.row("POST /api/message_groups", case);
    }
    Ok(())
}

/// `POST .../read` and the newest page of `GET /api/messages/{id}`, each with one unread
/// message to clear, in `conversation` (members 1 and 2 are in it; 2 reads).
async fn mark_read(
    table: &TestTable,
    api: &Api,
    members: &[User],
    group: Uuid,
    conversation: &str,
    calls: usize,
) -> anyhow::Result<()> {
    let reader = &members[2];
    let mut post = event("api-mark-message-group-read.json", reader);
    retarget(&mut post, group);
    let mut page = event("api-list-messages.json", reader);
    page["pathParameters"]["message_group_uuid"] = json!(group.to_string());
    for (route, case, event) in [
        (
            "POST /api/message_groups/{id}/read",
            format!("one unread message in {conversation}"),
            &post,
        ),
        (
            "GET /api/messages/{id}",
            format!("newest page, marks one unread message read, {conversation}"),
            &page,
        ),
    ] {
        let mut tally = Tally::default();
        for i in 0..calls {
            // Untimed: a message from someone else reaches every row.
            let message = table
                .store
                .append_message(
                    &members[1],
                    group,
                    MessageText::parse(format!("news {i}"))?,
                    Timestamp::now(),
                )
                .await?;
            table
                .store
                .advance_conversation(&Newest::alone(message), &RowPositions::disabled())
                .await?;
            let response = if route.starts_with("POST") {
                tally
                    .time(
                        table,
                        api.serve(Route::MarkMessageGroupRead, request(event)),
                    )
                    .await
            } else {
                tally
                    .time(table, api.serve(Route::ListMessages, request(event)))
                    .await
            };
            ok(response)?;
        }
        tally.row(route, &case);
    }
    Ok(())
}

/// A 50th member added to a 49-member group, and leaving again.
async fn add_and_leave(
    table: &TestTable,
    api: &Api,
    members: &[User],
    calls: usize,
) -> anyhow::Result<()> {
    let group = table
        .store
        .create_group(
            &members[0],
            &GroupName::parse("Forty-nine")?,
            &members[1..MEMBERS - 1],
            MessageText::parse("welcome")?,
            Timestamp::now(),
        )
        .await?;
    let newcomer = &members[MEMBERS];
    let mut add = event("api-add-message-group-members.json", &members[0]);
    retarget(&mut add, group.group_uuid);
    add["body"] = json!(json!({"handles": [newcomer.handle.to_string()]}).to_string());
    let mut leave = event("api-leave-message-group.json", newcomer);
    retarget(&mut leave, group.group_uuid);
    let (mut adds, mut leaves) = (Tally::default(), Tally::default());
    for _ in 0..calls {
        ok(adds
            .time(
                table,
                api.serve(Route::AddMessageGroupMembers, request(&add)),
            )
            .await)?;
        ok(leaves
            .time(table, api.serve(Route::LeaveMessageGroup, request(&leave)))
            .await)?;
    }
    adds.row(
        "POST /api/message_groups/{id}/members",
        "a 50th member (answers with the members)",
    );
    leaves.row("POST /api/message_groups/{id}/leave", "50 → 49 members");
    Ok(())
}

/// Batches of 10 messages from different members of a 50-member group through the stream
/// handler, warm.
async fn fan_out(table: &TestTable, members: &[User], group: Uuid) -> anyhow::Result<String> {
    const BATCHES: usize = 20;
    const PER_BATCH: usize = 10;
    let arn = table.store.stream_arn().await?.expect("stream");
    let mut tail = StreamTail::new(local_streams_client(&endpoint()), arn);
    drain(&mut tail).await?;
    let mut messages: Vec<Message> = Vec::new();
    for i in 0..BATCHES * PER_BATCH {
        let sender = &members[(i * 7) % (MEMBERS - 1)];
        let message = table
            .store
            .append_message(
                sender,
                group,
                MessageText::parse(format!("m{i}"))?,
                Timestamp::now(),
            )
            .await?;
        messages.push(message);
    }
    let filter = EventFilter::parse(FILTER_PATTERN)?;
    let records = collect(&mut tail, &filter, messages.len()).await?;
    let handler = InboxRowMover::new(table.store.clone());
    table.requests.reset();
    let started = Instant::now();
    let (mut hinted, mut moved) = (0, 0);
    for batch in records.chunks(PER_BATCH) {
        let mut event = Event::default();
        event.records = batch.to_vec();
        let (response, summary) = handler.handle(&event).await;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "a batch failed");
        hinted += summary.hinted_conversations;
        moved += summary.rows_moved;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = table.requests.snapshot();
    let total: u64 = requests.values().sum();
    Ok(format!(
        "| 50-member group fan-out | batches | messages/batch | rows moved | ms/batch | requests/batch | requests | hinted batches |\n\
         |---|---:|---:|---:|---:|---:|---|---:|\n\
         | {} messages from 49 senders, unread counted per row | {BATCHES} | {PER_BATCH} | {moved} | {:.1} | {:.2} | {} | {hinted} of {BATCHES} |\n",
        messages.len(),
        elapsed * 1000.0 / BATCHES as f64,
        total as f64 / BATCHES as f64,
        requests
            .iter()
            .map(|(operation, count)| format!("{operation} {count}"))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

pub(crate) async fn register(table: &TestTable, i: usize) -> anyhow::Result<User> {
    let new = NewUser {
        handle: Handle::parse(&format!("member{i:02}"))?,
        display_name: DisplayName::parse(&format!("Member {i}"))?,
        cognito_sub: format!("sub-member-{i}"),
    };
    Ok(table
        .store
        .register_user(new, Timestamp::now())
        .await?
        .user()
        .clone())
}

pub(crate) fn event(name: &str, caller: &User) -> Value {
    let mut event = crate::events::event_json(name);
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(caller.cognito_sub);
    event
}

pub(crate) fn retarget(event: &mut Value, group: Uuid) {
    event["pathParameters"]["message_group_uuid"] = json!(group.to_string());
}

pub(crate) fn request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("a payload-2.0 event")
}

pub(crate) fn ok(response: Result<Response<Body>, lambda_http::Error>) -> anyhow::Result<()> {
    let response = response.map_err(|err| anyhow::anyhow!(err))?;
    anyhow::ensure!(
        matches!(response.status(), StatusCode::OK | StatusCode::NO_CONTENT),
        "{}: {:?}",
        response.status(),
        response.body()
    );
    Ok(())
}
