//! The store's access patterns against DynamoDB Local, one fresh table per test, with
//! DynamoDB's behaviour DynamoDB Local lacks played where it matters. One test binary, a
//! module per subject (as in `src/store/`); here the helpers they share.

mod blocks;
mod connections;
mod conversations;
mod edits;
mod fanout;
mod groups;
mod idempotency;
mod inbox_rows;
mod limits;
mod messages;
mod migration;
mod pages;
mod presence;
mod reactions;
mod reads;
mod receipts;
mod typing;
mod users;

use messaging::items::InboxRowItem;
use messaging::keys;
use messaging::store::{RowPositions, TableStatus};
use messaging::validate::{GroupName, MessageText};
use messaging::{InboxEntry, Message, PageRequest, Store, Timestamp, User};
use testkit::TestTable;
use uuid::Uuid;

fn text(value: &str) -> MessageText {
    MessageText::parse(value).unwrap()
}

fn name(value: &str) -> GroupName {
    GroupName::parse(value).unwrap()
}

fn at(value: &str) -> Timestamp {
    Timestamp::parse(value).unwrap()
}

fn second(s: u32) -> Timestamp {
    at(&format!(
        "2025-07-01T09:{:02}:{:02}.000000+00:00",
        s / 60,
        s % 60
    ))
}

fn cold() -> RowPositions {
    RowPositions::disabled()
}

async fn inbox(store: &Store, owner: Uuid) -> Vec<InboxEntry> {
    store
        .list_inbox(owner, &PageRequest::new(100, None).unwrap())
        .await
        .unwrap()
        .items
}

async fn raw_items_with_prefix(table: &TestTable, prefix: &str) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = table
        .store
        .scan_all()
        .await
        .unwrap()
        .into_iter()
        .map(|item| {
            (
                item["pk"].as_s().unwrap().clone(),
                item["sk"].as_s().unwrap().clone(),
            )
        })
        .filter(|(pk, _)| pk.starts_with(prefix))
        .collect();
    keys.sort();
    keys
}

/// `owner`'s row of `group`, read from the table (not the index); fails unless exactly one.
async fn row_of(store: &Store, owner: Uuid, group: Uuid) -> InboxRowItem {
    let rows: Vec<InboxRowItem> = inbox_rows(store, owner)
        .await
        .into_iter()
        .filter(|row| row.message_group_uuid == group)
        .collect();
    assert_eq!(rows.len(), 1, "{owner}: {rows:?}");
    rows.into_iter().next().unwrap()
}

async fn inbox_rows(store: &Store, owner: Uuid) -> Vec<InboxRowItem> {
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(keys::inbox_pk(owner)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    output
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).unwrap())
        .collect()
}

async fn users(table: &TestTable, count: usize) -> Vec<User> {
    users_named(table, "member", count).await
}

async fn users_named(table: &TestTable, prefix: &str, count: usize) -> Vec<User> {
    let mut users = Vec::with_capacity(count);
    for i in 0..count {
        users.push(table.user(&format!("{prefix}{i:02}")).await);
    }
    users
}

/// A group of `size` members created by the first at second 0.
async fn group_of(table: &TestTable, size: usize) -> (Vec<User>, Message) {
    let members = users(table, size).await;
    let first = table
        .store
        .create_group(
            &members[0],
            &name("Bootcamp"),
            &members[1..],
            text("Welcome"),
            second(0),
        )
        .await
        .unwrap();
    table.requests.reset();
    (members, first)
}

async fn say(table: &TestTable, who: &User, group: Uuid, s: u32, words: &str) -> Message {
    let message = table
        .store
        .append_message(who, group, text(words), second(s))
        .await
        .unwrap();
    table.requests.reset();
    message
}

/// The invariant unread counts keep, whatever the interleaving: a row counts exactly the
/// messages from others after what its owner read, up to the message it shows.
async fn assert_unread_is_exact(store: &Store, owner: &User, messages: &[Message]) {
    let group = messages[0].group_uuid;
    let row = row_of(store, owner.uuid, group).await;
    let read = row.read_through.clone().unwrap_or_default();
    let expected = messages
        .iter()
        .filter(|m| m.sender.uuid != owner.uuid)
        .filter(|m| m.created_at.as_str() > read.as_str())
        .filter(|m| m.created_at.as_str() <= row.last_message_at())
        .count();
    assert_eq!(row.unread as usize, expected, "{}: {row:?}", owner.handle);
}

#[tokio::test]
async fn schema_load_is_idempotent() {
    let table = TestTable::new().await;
    assert_eq!(
        table.store.create_table_if_missing().await.unwrap(),
        TableStatus::AlreadyExisted
    );
    assert!(table.store.stream_arn().await.unwrap().is_some());
    assert!(table.store.drop_table().await.unwrap());
    assert!(!table.store.drop_table().await.unwrap());
}
