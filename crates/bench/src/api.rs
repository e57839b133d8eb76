//! Per-route handler latency and DynamoDB requests per call, through the Lambda handlers
//! with payload-2.0 events, warm (the directory cache holds the caller).

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions::api::Api;
use functions::directory::{Directory, SystemClock};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use messaging::store::NewUser;
use messaging::validate::{DisplayName, Handle, MessageText};
use messaging::{Timestamp, User};
use serde_json::{Value, json};
use testkit::TestTable;

const ANDREW_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e01";
const BAYKO_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e02";

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let group = seed_conversation(&table).await?;
    let api = Api::new(Directory::new(
        table.store.clone(),
        Duration::from_secs(60),
        Arc::new(SystemClock),
    ));

    println!("## API handlers (warm: caller profile cached)\n");
    println!("Each row: {calls} calls through the Lambda handler with a payload-2.0 event.\n");
    println!("| route | case | p50 ms | p99 ms | requests/call | requests |");
    println!("|---|---|---:|---:|---:|---|");
    for case in cases(&group) {
        measure(&api, &table, calls, case).await?;
    }
    println!();
    Ok(())
}

/// Andrew and Bayko (the events' callers) in one conversation of 101 messages; its uuid.
async fn seed_conversation(table: &TestTable) -> anyhow::Result<String> {
    let andrew = register(table, "andrewbrown", "Andrew Brown", ANDREW_SUB).await?;
    let bayko = register(table, "bayko", "Andrew Bayko", BAYKO_SUB).await?;
    let first = table
        .store
        .send_to_user(
            &andrew,
            &bayko,
            MessageText::parse("hello")?,
            Timestamp::now(),
        )
        .await?;
    for i in 0..100 {
        table
            .store
            .append_message(
                &bayko,
                first.group_uuid,
                MessageText::parse(format!("m{i}"))?,
                Timestamp::now(),
            )
            .await?;
    }
    Ok(first.group_uuid.to_string())
}

/// A measured case: the route it calls, its label, what it shows, and its event.
type Case = (Route, &'static str, &'static str, Value);

fn cases(group: &str) -> Vec<Case> {
    let mut list_messages = event("api-list-messages.json");
    list_messages["pathParameters"]["message_group_uuid"] = json!(group);
    let mut append = event("api-create-message-to-group.json");
    append["body"] =
        json!(json!({"message": "benchmark", "message_group_uuid": group}).to_string());
    let mut by_handle = event("api-create-message-to-self.json");
    by_handle["body"] = json!(json!({"message": "benchmark", "handle": "bayko"}).to_string());
    vec![
        (
            Route::ListMessageGroups,
            "GET /api/message_groups",
            "inbox, 20 rows",
            event("api-list-message-groups.json"),
        ),
        (
            Route::ListMessages,
            "GET /api/messages/{id}",
            "20 of 101 messages",
            list_messages,
        ),
        (
            Route::CreateMessage,
            "POST /api/messages",
            "append to a conversation",
            append,
        ),
        (
            Route::CreateMessage,
            "POST /api/messages",
            "to a handle, conversation exists",
            by_handle,
        ),
        (
            Route::GetUserShort,
            "GET /api/users/@{handle}/short",
            "known handle",
            event("api-get-user-short.json"),
        ),
    ]
}

/// One table row: `calls` warm calls of the case, their latency and requests per call.
async fn measure(api: &Api, table: &TestTable, calls: usize, case: Case) -> anyhow::Result<()> {
    let (handler, route, what, event) = case;
    let call = |api: &Api, event: &Value| {
        let request = lambda_http::request::from_str(&event.to_string()).expect("event");
        let api = api.clone();
        async move { api.serve(handler, request).await.map(|r| r.status()) }
    };
    // Warm the cache and the connection pool, as a warm execution environment is.
    anyhow::ensure!(
        call(api, &event).await.map_err(|e| anyhow::anyhow!(e))? == StatusCode::OK,
        "{route} failed"
    );
    table.requests.reset();
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let status = call(api, &event).await.map_err(|e| anyhow::anyhow!(e))?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status == StatusCode::OK, "{route}: {status}");
    }
    samples.sort_by(f64::total_cmp);
    let per_operation: Vec<String> = table
        .requests
        .snapshot()
        .into_iter()
        .map(|(operation, count)| format!("{operation} {:.0}", count as f64 / calls as f64))
        .collect();
    println!(
        "| `{route}` | {what} | {:.2} | {:.2} | {:.2} | {} |",
        crate::percentile(&samples, 50.0),
        crate::percentile(&samples, 99.0),
        table.requests.total() as f64 / calls as f64,
        per_operation.join(", ")
    );
    Ok(())
}

async fn register(table: &TestTable, handle: &str, name: &str, sub: &str) -> anyhow::Result<User> {
    let new = NewUser {
        handle: Handle::parse(handle)?,
        display_name: DisplayName::parse(name)?,
        cognito_sub: sub.to_owned(),
    };
    Ok(table
        .store
        .register_user(new, Timestamp::now())
        .await?
        .user()
        .clone())
}

fn event(name: &str) -> Value {
    crate::events::event_json(name)
}
