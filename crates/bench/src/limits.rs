//! What the per-user limits cost a write: the same writes through a store without limits
//! and one with them (a cap never reached, so the condition is evaluated and always holds),
//! their requests per call and the items of their transaction; and the window item's size,
//! which sets its write units.

use std::time::{Duration, Instant};

use messaging::store::{Limits, RateLimit};
use messaging::validate::{GroupName, MessageText};
use messaging::{Store, Timestamp, User, keys};
use testkit::{RecordRequests, TestTable};

/// A limit that never refuses: the bench measures the cost, not the refusals.
const NEVER_REACHED: RateLimit = RateLimit {
    cap: u32::MAX,
    window: Duration::from_secs(3600),
};

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let mut strangers = Vec::new();
    for i in 0..(2 * calls.min(20)) {
        strangers.push(table.user(&format!("stranger{i:02}")).await);
    }
    let conversation = table
        .store
        .send_to_user(
            &andrew,
            &bayko,
            MessageText::parse("hello")?,
            Timestamp::now(),
        )
        .await?
        .group_uuid;
    let recorder = RecordRequests::new();
    let unlimited = table.store_with(recorder.clone());
    let limited = table.store_with(recorder.clone()).with_limits(Limits {
        send: Some(NEVER_REACHED),
        group_changes: Some(NEVER_REACHED),
    });

    println!("## Per-user limits: what they cost\n");
    println!(
        "The same writes without and with the limits (a cap never reached: the condition is \
         evaluated every time).\n"
    );
    println!("| write | limits | p50 ms | requests/call | items per transaction |");
    println!("|---|---|---:|---:|---:|");
    let (unlimited_strangers, limited_strangers) = strangers.split_at(strangers.len() / 2);
    for (label, store) in [("off", &unlimited), ("on", &limited)] {
        measure(
            &table,
            &recorder,
            "append to a conversation",
            label,
            calls,
            async || {
                store
                    .append_message(
                        &andrew,
                        conversation,
                        MessageText::parse("bench")?,
                        Timestamp::now(),
                    )
                    .await?;
                Ok(())
            },
        )
        .await?;
        let others = if label == "off" {
            unlimited_strangers
        } else {
            limited_strangers
        };
        let mut next = others.iter();
        measure(
            &table,
            &recorder,
            "start a conversation",
            label,
            others.len(),
            async || {
                let recipient = next.next().expect("one stranger per call");
                start(store, &andrew, recipient).await
            },
        )
        .await?;
        measure(
            &table,
            &recorder,
            "create a group of 3",
            label,
            calls.min(50),
            async || {
                store
                    .create_group(
                        &andrew,
                        &GroupName::parse("Bench")?,
                        &[bayko.clone(), others[0].clone()],
                        MessageText::parse("welcome")?,
                        Timestamp::now(),
                    )
                    .await?;
                Ok(())
            },
        )
        .await?;
    }
    let (bytes, units) = window_item_size(&table, &andrew).await?;
    println!(
        "\nThe window item (`LIMIT#<user>` / `<limit>#<window ms>#<start ms>`, `n`, `expires_at`) \
         is {bytes} bytes: {units} write units per limited write, as every item of a \
         `TransactWriteItems` costs 2 per KB \
         (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling): \
         one more item in the write's own transaction, and 0 extra requests per message.\n"
    );
    Ok(())
}

/// One table row: `calls` runs of `write`, their latency, requests per call, and the items
/// of their `TransactWriteItems`.
async fn measure(
    table: &TestTable,
    recorder: &RecordRequests,
    write: &str,
    limits: &str,
    calls: usize,
    mut call: impl AsyncFnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    table.requests.reset();
    recorder.clear();
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call().await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let transactions = recorder.of("TransactWriteItems");
    let items: usize = transactions
        .iter()
        .map(|sent| sent.body["TransactItems"].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "| {write} | {limits} | {:.2} | {:.2} | {:.2} |",
        crate::percentile(&samples, 50.0),
        table.requests.total() as f64 / calls as f64,
        items as f64 / transactions.len().max(1) as f64,
    );
    Ok(())
}

async fn start(store: &Store, from: &User, to: &User) -> anyhow::Result<()> {
    store
        .send_to_user(from, to, MessageText::parse("hi")?, Timestamp::now())
        .await?;
    Ok(())
}

/// The size DynamoDB bills of one of `user`'s window items (attribute names plus values:
/// strings as UTF-8, numbers about one byte per two digits plus one), and its write units
/// in a transaction.
async fn window_item_size(table: &TestTable, user: &User) -> anyhow::Result<(usize, usize)> {
    let pk = format!("{}{}", keys::LIMIT_PREFIX, user.uuid);
    let item = table
        .snapshot()
        .await
        .into_iter()
        .filter_map(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
        .find(|item| item["pk"] == pk.as_str())
        .ok_or_else(|| anyhow::anyhow!("no window item"))?;
    let bytes: usize = item
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            name.len()
                + match value {
                    serde_json::Value::String(text) => text.len(),
                    serde_json::Value::Number(number) => number.to_string().len().div_ceil(2) + 1,
                    _ => 0,
                }
        })
        .sum();
    Ok((bytes, 2 * bytes.div_ceil(1024)))
}
