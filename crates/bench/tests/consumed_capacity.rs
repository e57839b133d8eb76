//! `testkit::consumed_capacity::CapacityMeter` against DynamoDB Local: the units it reports
//! are DynamoDB's for the requests the store makes, including what DynamoDB Local itself
//! gets wrong (a transaction's units) or does not count (an empty Query's minimum).

use messaging::model::Connection;
use messaging::validate::MessageText;
use messaging::{Timestamp, keys};
use testkit::TestTable;
use testkit::consumed_capacity::{CapacityMeter, Units};

async fn metered() -> (TestTable, messaging::store::Store, CapacityMeter) {
    let table = TestTable::new().await;
    let meter = CapacityMeter::new();
    let store = table.store_with(meter.clone());
    (table, store, meter)
}

#[tokio::test]
async fn a_connection_costs_one_write_and_its_reads_the_minimum_when_there_is_none() {
    let (table, store, meter) = metered().await;
    let user = table.user("andrewbrown").await;

    assert!(store.connections_of(user.uuid).await.unwrap().is_empty());
    // A strongly consistent Query that finds nothing: DynamoDB's minimum of one 4 KB read.
    assert_eq!(
        meter.by_operation()["Query"],
        Units {
            table_read: 1.0,
            ..Units::default()
        }
    );

    meter.reset();
    let connection = Connection::opened(user.uuid, "conn-1".into(), Timestamp::now());
    store.put_connection(&connection).await.unwrap();
    store
        .delete_connection(user.uuid, &connection.connection_id)
        .await
        .unwrap();
    // A connection item is under 1 KB and in no index: one unit each way.
    assert_eq!(meter.by_operation()["PutItem"].write(), 1.0);
    assert_eq!(meter.by_operation()["DeleteItem"].write(), 1.0);
    assert_eq!(meter.total().index_write, 0.0);
    assert_eq!(meter.unpriced(), 0);
}

#[tokio::test]
async fn a_transaction_is_charged_twice_per_item_condition_checks_included() {
    let (table, store, meter) = metered().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let first = store
        .send_to_user(
            &andrew,
            &bayko,
            MessageText::parse("hello").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    meter.reset();

    store
        .append_message(
            &andrew,
            first.group_uuid,
            MessageText::parse("again").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    // Pattern C: a ConditionCheck on the membership (its size known from the conversation's
    // start, through the same meter) and the message Put (small, in no index): 1 unit
    // each, doubled by the transaction.
    let append = meter.by_operation()["TransactWriteItems"];
    assert_eq!(append.table_write, 4.0, "{append:?}");
    assert_eq!(append.index_write, 0.0, "{append:?}");
    assert_eq!(meter.assumed(), 0);
    assert_eq!(meter.unpriced(), 0);
}

#[tokio::test]
async fn a_transaction_counts_every_item_where_dynamodb_local_counts_one() {
    let (table, store, meter) = metered().await;
    let creator = table.user("andrewbrown").await;
    let mut others = Vec::new();
    for i in 0..9 {
        others.push(table.user(&format!("member{i}")).await);
    }
    meter.reset();
    store
        .create_group(
            &creator,
            &messaging::validate::GroupName::parse("Ten").unwrap(),
            &others,
            MessageText::parse("welcome").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    // 10 memberships, 10 inbox rows and the message, each under 1 KB and new: 21 items at
    // 2 units each; the 10 rows also enter the group index, 1 unit each. (DynamoDB Local
    // itself answers 4 units for the whole transaction.)
    let create = meter.by_operation()["TransactWriteItems"];
    assert_eq!(create.table_write, 42.0, "{create:?}");
    assert_eq!(create.index_write, 10.0, "{create:?}");
}

#[tokio::test]
async fn an_inbox_row_write_is_charged_to_the_table_and_to_the_index() {
    let (table, store, meter) = metered().await;
    let row = serde_json::json!({
        "pk": keys::inbox_pk(uuid::Uuid::new_v4()),
        "sk": "2026-12-01T00:00:00.000000+00:00",
        "message_group_uuid": uuid::Uuid::new_v4().to_string(),
        "message": "x".repeat(1500),
    });
    let item: messaging::store::Item = serde_dynamo::to_item(row).unwrap();
    store
        .client()
        .put_item()
        .table_name(table.store.table())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    // 1.5 KB rounds up to 2 units, in the table and again in the group index (projection
    // ALL): what every inbox row move pays twice over (delete and put).
    let units = meter.by_operation()["PutItem"];
    assert_eq!(units.table_write, 2.0, "{units:?}");
    assert_eq!(units.index_write, 2.0, "{units:?}");
}
