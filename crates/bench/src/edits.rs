//! Editing and deleting a message through their handlers (`update-message`,
//! `delete-message`), warm, with the sender's limit in the transaction as deployed: latency,
//! requests per call and request units (testkit's `CapacityMeter`, AWS's rules).

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions::api::Api;
use functions::directory::{Directory, SystemClock};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use messaging::store::{Limits, NewUser};
use messaging::validate::{DisplayName, Handle, MessageText};
use messaging::{Message, Store, Timestamp, User};
use serde_json::{Value, json};
use testkit::TestTable;
use testkit::consumed_capacity::CapacityMeter;

const ANDREW_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e01";

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let meter = CapacityMeter::new();
    // A send limit no call reaches: its window's update is in every change's transaction,
    // as deployed, without refusing any.
    let store = table
        .store_with(meter.clone())
        .with_limits(Limits::new(1_000_000, 1_000_000, 0));
    let andrew = register(&store, "andrewbrown", "Andrew Brown", ANDREW_SUB).await?;
    let bayko = register(&store, "bayko", "Andrew Bayko", "bench-bayko").await?;
    let api = Api::new(Directory::new(
        store.clone(),
        Duration::from_secs(60),
        Arc::new(SystemClock),
    ));
    let send = |text: String| {
        let (store, andrew, bayko) = (store.clone(), andrew.clone(), bayko.clone());
        async move {
            store
                .send_to_user(&andrew, &bayko, MessageText::parse(text)?, Timestamp::now())
                .await
                .map_err(anyhow::Error::from)
        }
    };

    println!("## Editing and deleting a message (warm: caller profile cached)\n");
    println!(
        "Each row: {calls} calls through the handler, the sender's send limit in the \
         transaction. Units per call by AWS's rules (testkit's CapacityMeter).\n"
    );
    println!(
        "| route | case | p50 ms | p99 ms | requests/call | requests | read units/call | write units/call |"
    );
    println!("|---|---|---:|---:|---:|---|---:|---:|");
    let mut bench = Bench {
        api: &api,
        table: &table,
        meter: &meter,
        calls,
    };

    let edited = send("hello".into()).await?;
    // Warm the caller's cache and the connection pool, as a warm environment is: the same
    // text again, which writes nothing.
    let warm = lambda_http::request::from_str(&edit_event(&edited, "hello").to_string())?;
    anyhow::ensure!(
        api.serve(Route::UpdateMessage, warm)
            .await
            .map_err(|e| anyhow::anyhow!(e))?
            .status()
            == StatusCode::OK,
        "warm-up failed"
    );
    bench
        .row(Route::UpdateMessage, "a new text", |i| {
            edit_event(&edited, &format!("hello, take {i}"))
        })
        .await?;
    bench
        .row(
            Route::UpdateMessage,
            "the same text (writes nothing)",
            |_| edit_event(&edited, &format!("hello, take {}", calls - 1)),
        )
        .await?;
    let mut fresh = Vec::with_capacity(calls + 1);
    for i in 0..=calls {
        fresh.push(send(format!("to delete {i}")).await?);
    }
    bench
        .row(Route::DeleteMessage, "a message (text gone)", |i| {
            delete_event(&fresh[i + 1])
        })
        .await?;
    bench
        .row(Route::DeleteMessage, "again (writes nothing)", |_| {
            delete_event(&fresh[1])
        })
        .await?;
    println!(
        "\nA change is one strongly consistent GetItem of the message (its uuid carries its \
         sort key) and one TransactWriteItems of 3 items (membership check, `MSG#` update, \
         the sender's window); the units follow the items' sizes (2 per KB per transaction \
         item). A change that writes nothing reads the caller's membership instead.\n"
    );
    Ok(())
}

struct Bench<'a> {
    api: &'a Api,
    table: &'a TestTable,
    meter: &'a CapacityMeter,
    calls: usize,
}

impl Bench<'_> {
    /// One row: `calls` timed calls of `events(i)`.
    async fn row<F>(&mut self, route: Route, what: &str, events: F) -> anyhow::Result<()>
    where
        F: Fn(usize) -> Value,
    {
        self.table.requests.reset();
        self.meter.reset();
        let mut samples = Vec::with_capacity(self.calls);
        for i in 0..self.calls {
            let request = lambda_http::request::from_str(&events(i).to_string())?;
            let started = Instant::now();
            let status = self
                .api
                .serve(route, request)
                .await
                .map_err(|e| anyhow::anyhow!(e))?
                .status();
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == StatusCode::OK, "{}: {status}", route.key());
        }
        samples.sort_by(f64::total_cmp);
        let per_call = |count: u64| count as f64 / self.calls as f64;
        let per_operation: Vec<String> = self
            .table
            .requests
            .snapshot()
            .into_iter()
            .map(|(operation, count)| format!("{operation} {:.0}", per_call(count)))
            .collect();
        let units = self.meter.total().per(self.calls as f64);
        println!(
            "| `{}` | {what} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} |",
            route.key(),
            crate::percentile(&samples, 50.0),
            crate::percentile(&samples, 99.0),
            per_call(self.table.requests.total()),
            per_operation.join(", "),
            units.read(),
            units.write(),
        );
        Ok(())
    }
}

fn at_message(mut event: Value, message: &Message) -> Value {
    let (group, uuid) = (message.group_uuid.to_string(), message.uuid.to_string());
    event["pathParameters"] = json!({"message_group_uuid": group, "message_uuid": uuid});
    event["rawPath"] = json!(format!("/api/messages/{group}/{uuid}"));
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(ANDREW_SUB);
    event
}

fn edit_event(message: &Message, text: &str) -> Value {
    let mut event = at_message(
        crate::events::event_json("api-update-message.json"),
        message,
    );
    event["body"] = json!(json!({ "message": text }).to_string());
    event
}

fn delete_event(message: &Message) -> Value {
    at_message(
        crate::events::event_json("api-delete-message.json"),
        message,
    )
}

async fn register(store: &Store, handle: &str, name: &str, sub: &str) -> anyhow::Result<User> {
    let new = NewUser {
        handle: Handle::parse(handle)?,
        display_name: DisplayName::parse(name)?,
        cognito_sub: sub.to_owned(),
    };
    Ok(store
        .register_user(new, Timestamp::now())
        .await?
        .user()
        .clone())
}
