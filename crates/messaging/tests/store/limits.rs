//! Per-user limits, enforced inside the write: a send or a group change over its window's
//! cap is refused with when the window frees, writes nothing (the transaction is cancelled
//! as a whole), costs no request of its own and is not retried as a conflict.

use std::time::Duration;

use messaging::keys;
use messaging::store::Limits;
use messaging::{Store, StoreError, Timestamp, User};
use testkit::TestTable;
use uuid::Uuid;

use crate::{at, inbox_rows, name, raw_items_with_prefix, text, users};

/// Burst 20 then 5/s: windows of 4 s. 2025-07-01T09:00:00Z is a window's start (epoch
/// milliseconds divisible by 4000).
const WINDOW_START: &str = "2025-07-01T09:00:00";

fn in_window(seconds: f64) -> Timestamp {
    let whole = seconds.floor() as u32;
    let micros = ((seconds - f64::from(whole)) * 1_000_000.0).round() as u32;
    at(&format!("2025-07-01T09:00:{whole:02}.{micros:06}+00:00"))
}

fn limited(table: &TestTable) -> Store {
    table.store.clone().with_limits(Limits::defaults())
}

fn retry_after(error: StoreError) -> Duration {
    match error {
        StoreError::RateLimited { retry_after, .. } => retry_after,
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

async fn messages_of(table: &TestTable, group: Uuid) -> Vec<(String, String)> {
    raw_items_with_prefix(table, &keys::message_pk(group)).await
}

/// A direct conversation of `a` and `b`, started without limits.
async fn conversation(table: &TestTable, a: &User, b: &User) -> Uuid {
    table
        .store
        .send_to_user(
            a,
            b,
            text("hello"),
            at(&format!("{WINDOW_START}.000000+00:00")),
        )
        .await
        .unwrap()
        .group_uuid
}

#[tokio::test]
async fn a_burst_of_twenty_goes_through_and_the_twenty_first_waits_for_the_window() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    let store = limited(&table);

    for i in 0..20 {
        store
            .append_message(
                &andrew,
                group,
                text("burst"),
                in_window(0.1 + f64::from(i) * 0.01),
            )
            .await
            .unwrap_or_else(|err| panic!("message {i}: {err}"));
    }
    table.requests.reset();
    let refused = store
        .append_message(&andrew, group, text("one too many"), in_window(2.5))
        .await
        .unwrap_err();
    assert_eq!(retry_after(refused), Duration::from_millis(1500));
    assert_eq!(
        table.requests.of("TransactWriteItems"),
        1,
        "refused by the send's own transaction, not retried as a conflict"
    );
    assert_eq!(table.requests.total(), 1, "no read before the write");
    assert_eq!(messages_of(&table, group).await.len(), 21, "hello + 20");

    // Another user's window is their own.
    store
        .append_message(&bayko, group, text("me too"), in_window(2.6))
        .await
        .unwrap();
    // The next window has room again.
    store
        .append_message(&andrew, group, text("later"), in_window(4.0))
        .await
        .unwrap();
    assert_eq!(messages_of(&table, group).await.len(), 23);
}

#[tokio::test]
async fn a_refused_new_conversation_leaves_no_pair_membership_row_or_message() {
    let table = TestTable::new().await;
    let [andrew, bayko, londo] = [
        table.user("andrewbrown").await,
        table.user("bayko").await,
        table.user("londo").await,
    ];
    let group = conversation(&table, &andrew, &bayko).await;
    let store = limited(&table);
    for i in 0..20 {
        store
            .append_message(
                &andrew,
                group,
                text("burst"),
                in_window(1.0 + f64::from(i) * 0.01),
            )
            .await
            .unwrap();
    }
    let before = table.snapshot().await;

    let refused = store
        .send_to_user(&andrew, &londo, text("hi londo"), in_window(3.0))
        .await
        .unwrap_err();
    assert_eq!(retry_after(refused), Duration::from_secs(1));
    assert_eq!(table.snapshot().await, before, "nothing written");
    assert!(inbox_rows(&table.store, londo.uuid).await.is_empty());
    assert_eq!(
        table
            .store
            .conversation_between(andrew.uuid, londo.uuid, true)
            .await
            .unwrap(),
        None
    );
    // Limits count per user: londo can still start it.
    store
        .send_to_user(&londo, &andrew, text("hi andrew"), in_window(3.1))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_window_is_one_item_per_user_limit_and_window_that_expires() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    let store = limited(&table);
    for seconds in [0.5, 1.5, 4.5] {
        store
            .append_message(&andrew, group, text("counted"), in_window(seconds))
            .await
            .unwrap();
    }
    let windows = raw_items_with_prefix(&table, keys::LIMIT_PREFIX).await;
    let pk = format!("{}{}", keys::LIMIT_PREFIX, andrew.uuid);
    assert_eq!(
        windows,
        [
            (pk.clone(), "send#4000#1751360400000".to_owned()),
            (pk.clone(), "send#4000#1751360404000".to_owned()),
        ]
    );
    let item = table
        .store
        .client()
        .get_item()
        .table_name(table.store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("send#4000#1751360400000".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["n"].as_n().unwrap(), "2");
    // The table's TTL removes it a minute after its window.
    assert_eq!(item["expires_at"].as_n().unwrap(), "1751360465");
}

#[tokio::test]
async fn group_changes_share_ten_a_minute_and_a_refused_one_writes_nothing() {
    let table = TestTable::new().await;
    let people = users(&table, 3).await;
    let store = limited(&table);
    let mut groups = Vec::new();
    for i in 0..6 {
        let first = store
            .create_group(
                &people[0],
                &name("Bootcamp"),
                &people[1..2],
                text("Welcome"),
                in_window(f64::from(i)),
            )
            .await
            .unwrap();
        groups.push(first.group_uuid);
    }
    for (i, group) in groups.iter().take(4).enumerate() {
        let added = store
            .add_members(
                people[0].uuid,
                *group,
                &people[2..3],
                in_window(10.0 + i as f64),
            )
            .await
            .unwrap();
        assert_eq!(added.added, 1);
    }
    let before = table.snapshot().await;
    table.requests.reset();

    let refused = store
        .create_group(
            &people[0],
            &name("One more"),
            &people[1..],
            text("Welcome"),
            in_window(30.0),
        )
        .await
        .unwrap_err();
    assert_eq!(retry_after(refused), Duration::from_secs(30));
    // The block check's one BatchGetItem (store/blocks.rs), then one cancelled transaction.
    assert_eq!(table.requests.of("BatchGetItem"), 1, "the block check");
    assert_eq!(
        table.requests.of("TransactWriteItems"),
        1,
        "one cancelled transaction"
    );
    assert_eq!(table.requests.total(), 2);
    let refused = store
        .add_members(people[0].uuid, groups[5], &people[2..3], in_window(31.0))
        .await
        .unwrap_err();
    assert_eq!(retry_after(refused), Duration::from_secs(29));
    assert_eq!(table.snapshot().await, before, "nothing written");

    // Adding nobody new writes nothing and uses nothing.
    let added = store
        .add_members(people[0].uuid, groups[0], &people[2..3], in_window(32.0))
        .await
        .unwrap();
    assert_eq!(added.added, 0);
    // Another member of the group has a window of their own.
    store
        .add_members(people[1].uuid, groups[5], &people[2..3], in_window(33.0))
        .await
        .unwrap();
    // Sending is another limit.
    store
        .append_message(
            &people[0],
            groups[0],
            text("still talking"),
            in_window(34.0),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_group_of_fifty_still_fits_its_transactions_with_the_limit_in_them() {
    let table = TestTable::new().await;
    let members = users(&table, 50).await;
    let store = limited(&table);
    let first = store
        .create_group(
            &members[0],
            &name("Everyone"),
            &members[1..],
            text("Welcome"),
            in_window(0.0),
        )
        .await
        .unwrap();
    assert_eq!(
        raw_items_with_prefix(&table, &keys::membership_pk(first.group_uuid))
            .await
            .len(),
        50
    );
    // One group change: the 50th member rides on the creation.
    let windows = raw_items_with_prefix(&table, keys::LIMIT_PREFIX).await;
    assert_eq!(windows.len(), 1, "{windows:?}");
}

#[tokio::test]
async fn a_store_without_limits_counts_nothing() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    for i in 0..25 {
        table
            .store
            .append_message(
                &andrew,
                group,
                text("tooling"),
                in_window(0.1 + f64::from(i) * 0.01),
            )
            .await
            .unwrap();
    }
    assert!(
        raw_items_with_prefix(&table, keys::LIMIT_PREFIX)
            .await
            .is_empty()
    );
}
