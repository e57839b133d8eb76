//! Reactions through their handlers (`add-reaction`, `remove-reaction`): latency, requests
//! per call, and the write units each costs, which grow with the message item's size (a
//! reaction rewrites the whole item: a small message, and one carrying the largest set a
//! conversation can hold, 50 members × 8 emoji).

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions::api::Api;
use functions::directory::{Directory, SystemClock};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use messaging::items::MessageItem;
use messaging::reactions::EMOJI;
use messaging::store::NewUser;
use messaging::validate::{DisplayName, Handle, MessageText};
use messaging::{Message, Timestamp, User};
use serde_json::{Value, json};
use testkit::TestTable;
use testkit::consumed_capacity::{CapacityMeter, item_size};
use uuid::Uuid;

const ANDREW_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e01";
const BAYKO_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e02";

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let meter = CapacityMeter::new();
    let store = table.store_with(meter.clone());
    let andrew = register(&table, "andrewbrown", "Andrew Brown", ANDREW_SUB).await?;
    let bayko = register(&table, "bayko", "Andrew Bayko", BAYKO_SUB).await?;
    let small = table
        .store
        .send_to_user(
            &andrew,
            &bayko,
            MessageText::parse("Shall we ship reactions today?")?,
            Timestamp::now(),
        )
        .await?;
    let full = full_message(&table, &andrew, &small).await?;
    let api = Api::new(Directory::new(
        store,
        Duration::from_secs(60),
        Arc::new(SystemClock),
    ));

    println!("## Reactions (issue 20)\n");
    println!(
        "Each row: {calls} calls through the Lambda handler (warm: caller cached); write units \
         by testkit's `CapacityMeter` (DynamoDB's rules: 2 per KB per transaction item, 2 per \
         `ConditionCheck`).\n"
    );
    println!(
        "| call | message item | p50 ms | p99 ms | requests/call | requests | RRU/call | WRU/call |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    for (message, label) in [(&small, "small"), (&full, "full")] {
        let bytes = stored_size(message)?;
        let size = format!("{label}, {:.1} KB", bytes as f64 / 1024.0);
        // Alternating add and remove: every call changes the set.
        let mut adds = Measure::default();
        let mut removes = Measure::default();
        for _ in 0..calls {
            adds.call(
                &api,
                &table,
                &meter,
                Route::AddReaction,
                &event(message, "add"),
            )
            .await?;
            removes
                .call(
                    &api,
                    &table,
                    &meter,
                    Route::RemoveReaction,
                    &event(message, "remove"),
                )
                .await?;
        }
        adds.print("`PUT …/reactions/👍`, new", &size, calls);
        removes.print("`DELETE …/reactions/👍`, there", &size, calls);
        // A repeat: the reaction is there already.
        call(&api, Route::AddReaction, &event(message, "add")).await?;
        let mut repeats = Measure::default();
        for _ in 0..calls {
            repeats
                .call(
                    &api,
                    &table,
                    &meter,
                    Route::AddReaction,
                    &event(message, "add"),
                )
                .await?;
        }
        repeats.print("`PUT …/reactions/👍`, a repeat", &size, calls);
        call(&api, Route::RemoveReaction, &event(message, "remove")).await?;
    }
    println!(
        "\nA repeat writes nothing: its transaction is cancelled by the entry's condition (no \
         write units, no stream record), and a second GetItem tells it from a deleted message.\n"
    );
    table.store.drop_table().await?;
    Ok(())
}

#[derive(Default)]
struct Measure {
    samples: Vec<f64>,
    requests: Vec<(String, u64)>,
    total_requests: u64,
    read_units: f64,
    write_units: f64,
}

impl Measure {
    async fn call(
        &mut self,
        api: &Api,
        table: &TestTable,
        meter: &CapacityMeter,
        route: Route,
        event: &Value,
    ) -> anyhow::Result<()> {
        table.requests.reset();
        meter.reset();
        let started = Instant::now();
        call(api, route, event).await?;
        self.samples.push(started.elapsed().as_secs_f64() * 1000.0);
        self.total_requests += table.requests.total();
        for (operation, count) in table.requests.snapshot() {
            match self
                .requests
                .iter_mut()
                .find(|(known, _)| *known == operation)
            {
                Some((_, total)) => *total += count,
                None => self.requests.push((operation, count)),
            }
        }
        let units = meter.total();
        self.read_units += units.read();
        self.write_units += units.write();
        Ok(())
    }

    fn print(&mut self, what: &str, size: &str, calls: usize) {
        self.samples.sort_by(f64::total_cmp);
        let n = calls as f64;
        let requests: Vec<String> = self
            .requests
            .iter()
            .map(|(operation, count)| format!("{operation} {:.0}", *count as f64 / n))
            .collect();
        println!(
            "| {what} | {size} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} |",
            crate::percentile(&self.samples, 50.0),
            crate::percentile(&self.samples, 99.0),
            self.total_requests as f64 / n,
            requests.join(", "),
            self.read_units / n,
            self.write_units / n,
        );
    }
}

async fn call(api: &Api, route: Route, event: &Value) -> anyhow::Result<()> {
    let request = lambda_http::request::from_str(&event.to_string())?;
    let response = api
        .serve(route, request)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "{}: {}",
        route.key(),
        response.status()
    );
    Ok(())
}

/// Bayko's 👍 on `message`, from the reaction event `add` or `remove`.
fn event(message: &Message, which: &str) -> Value {
    let mut event = crate::events::event_json(&format!("api-{which}-reaction.json"));
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(BAYKO_SUB);
    event["pathParameters"] = json!({
        "message_group_uuid": message.group_uuid.to_string(),
        "message_uuid": message.uuid.to_string(),
        "emoji": "👍",
    });
    event
}

/// A second message carrying the largest set a conversation can hold: 49 other members ×
/// 8 emoji (made-up member uuids: only the reactor's membership is checked), plus Andrew's.
async fn full_message(
    table: &TestTable,
    andrew: &User,
    small: &Message,
) -> anyhow::Result<Message> {
    let mut message = table
        .store
        .append_message(
            andrew,
            small.group_uuid,
            MessageText::parse("Shall we ship reactions today?")?,
            Timestamp::now(),
        )
        .await?;
    let mut item = MessageItem::new(&message);
    for member in (0..49).map(|_| Uuid::new_v4()).chain([andrew.uuid]) {
        for emoji in EMOJI {
            item.reactions.push(format!("{member}#{emoji}"));
        }
    }
    table
        .put_raw(serde_dynamo::to_item(&item)?)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    message = table
        .store
        .find_message(message.group_uuid, message.uuid)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the full message is there"))?;
    Ok(message)
}

/// The size DynamoDB bills of `message`'s item.
fn stored_size(message: &Message) -> anyhow::Result<usize> {
    let item: messaging::store::Item = serde_dynamo::to_item(MessageItem::new(message))?;
    Ok(item_size(&item))
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
