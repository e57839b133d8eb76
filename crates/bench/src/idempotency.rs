//! What naming a send (`client_message_id`) costs: the same append without and with an id,
//! and a repeat of a named send; their requests per call and the items of their
//! transaction; and the send record's size, which sets its write units.

use std::time::Instant;

use messaging::store::ClientMessageId;
use messaging::validate::MessageText;
use messaging::{Timestamp, keys};
use testkit::{RecordRequests, TestTable};
use uuid::Uuid;

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let group = table
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
    let store = table.store_with(recorder.clone());
    let text = || MessageText::parse("bench");
    let named = |id| ClientMessageId::new(id, &["bench", "bench"]);

    println!("## Idempotent sends: what a client_message_id costs\n");
    println!("| send | p50 ms | requests/call | items per transaction | write units, committed |");
    println!("|---|---:|---:|---:|---:|");
    let row = |label: &str, committed: bool, samples: &mut Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        let transactions = recorder.of("TransactWriteItems");
        let items: usize = transactions
            .iter()
            .map(|sent| sent.body["TransactItems"].as_array().map_or(0, Vec::len))
            .sum();
        let per_transaction = items as f64 / transactions.len().max(1) as f64;
        // A committed transaction costs 2 units per item under 1 KB.
        let units = if committed {
            format!("{:.0}", 2.0 * per_transaction)
        } else {
            "none (cancelled)".to_owned()
        };
        println!(
            "| {label} | {:.2} | {:.2} | {per_transaction:.2} | {units} |",
            crate::percentile(samples, 50.0),
            table.requests.total() as f64 / calls as f64,
        );
        table.requests.reset();
        recorder.clear();
        samples.clear();
    };
    let mut samples = Vec::with_capacity(calls);
    table.requests.reset();
    recorder.clear();
    for _ in 0..calls {
        let started = Instant::now();
        store
            .append_message(&andrew, group, text()?, Timestamp::now())
            .await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    row("append, no id", true, &mut samples);
    for _ in 0..calls {
        let started = Instant::now();
        store
            .append_message_once(
                &andrew,
                group,
                text()?,
                Timestamp::now(),
                &named(Uuid::new_v4()),
            )
            .await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    row("append, a new client_message_id", true, &mut samples);
    let repeated = named(Uuid::new_v4());
    store
        .append_message_once(&andrew, group, text()?, Timestamp::now(), &repeated)
        .await?;
    table.requests.reset();
    recorder.clear();
    for _ in 0..calls {
        let started = Instant::now();
        store
            .append_message_once(&andrew, group, text()?, Timestamp::now(), &repeated)
            .await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    row("a repeat (answered from the record)", false, &mut samples);

    let bytes = record_size(&table, andrew.uuid).await?;
    println!(
        "\nThe send record (`IDEM#<sender>` / `<client_message_id>`) is {bytes} bytes: {} write \
         units more per named send (2 per KB per transaction item, \
         https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling), \
         no request more; a repeat is the cancelled transaction and one strongly consistent \
         GetItem (1 read unit).\n",
        2 * bytes.div_ceil(1024)
    );
    Ok(())
}

/// The size DynamoDB bills of one of `user`'s send records (attribute names plus values:
/// strings as UTF-8, numbers about one byte per two digits plus one).
async fn record_size(table: &TestTable, user: Uuid) -> anyhow::Result<usize> {
    let pk = format!("{}{user}", keys::SEND_RECORD_PREFIX);
    let item = table
        .snapshot()
        .await
        .into_iter()
        .filter_map(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
        .find(|item| item["pk"] == pk.as_str())
        .ok_or_else(|| anyhow::anyhow!("no send record"))?;
    Ok(item
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
        .sum())
}
