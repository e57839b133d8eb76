//! Migrating a table written the way the original Cruddur's scripts and Flask backend wrote
//! it (seeds: `bin/ddb/seed`, `lib/ddb.py`), bugs included, on DynamoDB Local.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use messaging::migration::{LegacyUser, plan};
use messaging::store::RowPositions;
use messaging::validate::{Handle, MessageText};
use messaging::{PageRequest, Store, Timestamp, User};
use testkit::{Refusal, RefusingClient, TestTable};
use uuid::Uuid;

const ANDREW: &str = "5ae290ed-55d1-47a0-bc6d-fe2bc2700399";
const BAYKO: &str = "b02d00ce-df83-4373-9710-9868564a0809";
const LONDO: &str = "f1a2c3d4-0000-4000-8000-000000000003";
const VIR: &str = "f1a2c3d4-0000-4000-8000-000000000004";
const STRANGER: &str = "99999999-0000-4000-8000-000000000009";

fn legacy(uuid: &str, handle: &str, name: &str) -> LegacyUser {
    LegacyUser {
        uuid: uuid.into(),
        handle: handle.into(),
        display_name: name.into(),
        cognito_user_id: format!("cognito-{handle}"),
    }
}

fn csv_users() -> Vec<LegacyUser> {
    vec![
        legacy(ANDREW, "andrewbrown", "Andrew Brown"),
        legacy(BAYKO, "bayko", "Andrew Bayko"),
        legacy(LONDO, "londo", "Londo Mollari"),
        legacy(VIR, "vir", "Vir Cotto"),
    ]
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// `create_message_group` of the original's `ddb.py`: `GRP#<me>` at `last_message_at`.
async fn original_row(
    table: &TestTable,
    me: &str,
    other: (&str, &str, &str),
    group: &str,
    at: &str,
) {
    let (uuid, handle, name) = other;
    put(
        table,
        [
            ("pk", s(&format!("GRP#{me}"))),
            ("sk", s(at)),
            ("message_group_uuid", s(group)),
            ("message", s("this is a filler message")),
            ("user_uuid", s(uuid)),
            ("user_display_name", s(name)),
            ("user_handle", s(handle)),
        ],
    )
    .await;
}

/// `create_message` of `ddb.py`: `MSG#<group>` at `created_at`.
async fn original_message(table: &TestTable, group: &str, at: &str, sender: (&str, &str, &str)) {
    let (uuid, handle, name) = sender;
    put(
        table,
        [
            ("pk", s(&format!("MSG#{group}"))),
            ("sk", s(at)),
            ("message_uuid", s(&Uuid::new_v4().to_string())),
            ("message", s("an old message")),
            ("user_uuid", s(uuid)),
            ("user_display_name", s(name)),
            ("user_handle", s(handle)),
        ],
    )
    .await;
}

async fn put<const N: usize>(table: &TestTable, attributes: [(&str, AttributeValue); N]) {
    let item: HashMap<String, AttributeValue> = attributes
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    table.put_raw(item).await.unwrap();
}

const A: (&str, &str, &str) = (ANDREW, "andrewbrown", "Andrew Brown");
const B: (&str, &str, &str) = (BAYKO, "bayko", "Andrew Bayko");
const L: (&str, &str, &str) = (LONDO, "londo", "Londo Mollari");
const X: (&str, &str, &str) = (STRANGER, "stranger", "Not In The CSV");

const OLD_AB: &str = "11111111-0000-4000-8000-000000000001";
const NEW_AB: &str = "11111111-0000-4000-8000-000000000002";
const AL: &str = "11111111-0000-4000-8000-000000000003";
const AX: &str = "11111111-0000-4000-8000-000000000004";
const BL: &str = "11111111-0000-4000-8000-000000000005";

/// A table as the original left it:
/// - Andrew and Bayko have two conversations (a new one per "new message"), the newer one
///   written with a local offset (`astimezone().isoformat()`);
/// - Andrew and Londo's times have no fraction (microsecond 0 in `isoformat()`);
/// - Andrew's conversation with someone not in the CSV;
/// - Bayko and Londo's, where Londo's row was lost (delete, then a crash before the put).
async fn original_table() -> TestTable {
    let table = TestTable::new().await;
    for (me, other) in [(A, B), (B, A)] {
        original_row(
            &table,
            me.0,
            other,
            OLD_AB,
            "2022-12-31T23:00:00.500000+00:00",
        )
        .await;
        original_row(
            &table,
            me.0,
            other,
            NEW_AB,
            "2023-03-20T10:00:00.123456-04:00",
        )
        .await;
    }
    original_message(&table, OLD_AB, "2022-12-31T23:00:00.500000+00:00", A).await;
    original_message(&table, NEW_AB, "2023-03-20T10:00:00.123456-04:00", B).await;
    for (me, other) in [(A, L), (L, A)] {
        original_row(&table, me.0, other, AL, "2023-02-01T12:00:00+00:00").await;
    }
    original_message(&table, AL, "2023-02-01T12:00:00+00:00", L).await;
    for (me, other) in [(A, X), (X, A)] {
        original_row(&table, me.0, other, AX, "2023-01-15T08:00:00.000001+00:00").await;
    }
    original_row(&table, BAYKO, L, BL, "2023-04-01T00:00:00.000002+00:00").await;
    original_message(&table, BL, "2023-04-01T00:00:00.000002+00:00", B).await;
    table.requests.reset();
    table
}

async fn migrate(table: &TestTable, users: &[LegacyUser]) -> messaging::store::Applied {
    let found = table.store.scan_for_migration(3, &|_| {}).await.unwrap();
    let plan = plan(users, &found, Timestamp::now()).unwrap();
    table
        .store
        .apply_migration(&plan, Timestamp::now(), &|_| {})
        .await
        .unwrap()
}

async fn user(store: &Store, handle: &str) -> User {
    store
        .user_by_handle(&Handle::parse(handle).unwrap())
        .await
        .unwrap()
        .unwrap()
}

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

#[tokio::test]
async fn a_migrated_table_serves_every_migrated_user() {
    let table = original_table().await;
    let before: Vec<_> = message_items(&table).await;

    let applied = migrate(&table, &csv_users()).await;

    assert_eq!(applied.users.written, 4);
    assert!(applied.user_conflicts.is_empty(), "{applied:?}");
    let store = &table.store;
    let (andrew, bayko, londo) = (
        user(store, "andrewbrown").await,
        user(store, "bayko").await,
        user(store, "londo").await,
    );
    assert_eq!(andrew.uuid, uuid(ANDREW), "uuids are kept");

    // Inboxes read through the API's access pattern, newest first, every conversation.
    let page = PageRequest::new(20, None).unwrap();
    let inbox = store.list_inbox(andrew.uuid, &page).await.unwrap().items;
    let groups: Vec<Uuid> = inbox.iter().map(|row| row.group_uuid).collect();
    assert_eq!(groups.len(), 4, "{inbox:?}");
    // The local-offset time is read as what it is: 10:00 at -04:00 is 14:00 UTC.
    let newest_ab = inbox.iter().find(|r| r.group_uuid == uuid(NEW_AB)).unwrap();
    assert_eq!(
        newest_ab.last_message_at,
        "2023-03-20T14:00:00.123456+00:00"
    );

    // Both old conversations with Bayko stay readable by their members; not by others.
    for group in [OLD_AB, NEW_AB] {
        let messages = store
            .list_messages(bayko.uuid, uuid(group), &page)
            .await
            .unwrap();
        assert_eq!(messages.items.len(), 1);
        assert!(
            store
                .list_messages(londo.uuid, uuid(group), &page)
                .await
                .is_err()
        );
    }

    // Appending to an old conversation works; a new message sorts after the old ones.
    let reply = store
        .append_message(
            &andrew,
            uuid(AL),
            MessageText::parse("back after the migration").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    let messages = store
        .list_messages(londo.uuid, uuid(AL), &page)
        .await
        .unwrap();
    assert_eq!(messages.items.last().unwrap().uuid, reply.uuid);

    // Messaging Bayko by handle reuses the conversation with the newest message.
    let sent = store
        .send_to_user(
            &andrew,
            &bayko,
            MessageText::parse("hello again").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(sent.group_uuid, uuid(NEW_AB));
    // And starting a conversation with someone new works as for any user.
    let vir = user(store, "vir").await;
    let started = store
        .send_to_user(
            &londo,
            &vir,
            MessageText::parse("welcome").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert!(store.is_member(started.group_uuid, vir.uuid).await.unwrap());

    // The stream moves the old rows forward, in one query and one transaction.
    table.requests.reset();
    let advance = store
        .advance_inbox_rows(&reply, &RowPositions::disabled())
        .await
        .unwrap();
    assert_eq!(advance.moved, 2, "{advance:?}");
    assert_eq!(table.requests.total(), 2, "{:?}", table.requests.snapshot());
    let londos = store.list_inbox(londo.uuid, &page).await.unwrap().items;
    let with_andrew = londos
        .iter()
        .find(|row| row.group_uuid == uuid(AL))
        .unwrap();
    assert_eq!(with_andrew.last_message, "back after the migration");

    // Londo's lost row of the conversation with Bayko is back, at its newest message.
    assert!(
        londos
            .iter()
            .any(|row| row.group_uuid == uuid(BL) && row.other.uuid == bayko.uuid),
        "{londos:?}"
    );
    // And messages were never rewritten.
    let after: Vec<_> = message_items(&table).await;
    assert!(before.iter().all(|item| after.contains(item)));
}

#[tokio::test]
async fn a_conversation_with_someone_not_in_the_csv_is_left_as_it_is() {
    let table = original_table().await;
    migrate(&table, &csv_users()).await;
    let store = &table.store;
    let andrew = user(store, "andrewbrown").await;
    let page = PageRequest::new(20, None).unwrap();
    // Still in the inbox, as the original left it; no membership was written for it.
    let row = store
        .list_inbox(andrew.uuid, &page)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|row| row.group_uuid == uuid(AX))
        .unwrap();
    assert_eq!(row.last_message_at, "2023-01-15T08:00:00.000001+00:00");
    assert!(!store.is_member(uuid(AX), andrew.uuid).await.unwrap());
}

#[tokio::test]
async fn a_second_run_writes_nothing() {
    let table = original_table().await;
    migrate(&table, &csv_users()).await;
    let snapshot = everything(&table).await;

    let found = table.store.scan_for_migration(2, &|_| {}).await.unwrap();
    let again = plan(&csv_users(), &found, Timestamp::now()).unwrap();
    assert_eq!(again.writes(), 0, "{again:?}");
    assert_eq!(again.report.users_registered_before, 4);
    let applied = table
        .store
        .apply_migration(&again, Timestamp::now(), &|_| {})
        .await
        .unwrap();
    assert_eq!(applied.written(), 0);
    assert_eq!(everything(&table).await, snapshot);
}

#[tokio::test]
async fn a_plan_from_a_stale_scan_overwrites_nothing() {
    let table = original_table().await;
    let found = table.store.scan_for_migration(1, &|_| {}).await.unwrap();
    let plan = plan(&csv_users(), &found, Timestamp::now()).unwrap();
    // Between the scan and the writes, the migration already ran (another operator).
    migrate(&table, &csv_users()).await;
    let snapshot = everything(&table).await;

    let applied = table
        .store
        .apply_migration(&plan, Timestamp::now(), &|_| {})
        .await
        .unwrap();

    assert_eq!(applied.written(), 0, "{applied:?}");
    assert_eq!(everything(&table).await, snapshot);
}

#[tokio::test]
async fn a_handle_someone_took_in_this_system_is_reported_not_overwritten() {
    let table = original_table().await;
    let taken = table.user("londo").await;

    let applied = migrate(&table, &csv_users()).await;

    assert_eq!(applied.users.written, 3);
    assert_eq!(applied.user_conflicts.len(), 1, "{applied:?}");
    assert_eq!(applied.user_conflicts[0].0, "londo");
    assert_eq!(user(&table.store, "londo").await.uuid, taken.uuid);
}

async fn message_items(table: &TestTable) -> Vec<String> {
    everything(table)
        .await
        .into_iter()
        .filter(|item| item.contains("\"MSG#"))
        .collect()
}

async fn everything(table: &TestTable) -> Vec<String> {
    table.snapshot().await
}

#[tokio::test]
async fn writes_that_meet_a_transaction_are_retried_and_end_as_without_one() {
    let calm = original_table().await;
    let expected = migrate(&calm, &csv_users()).await;

    let table = original_table().await;
    let dynamodb = RefusingClient::new();
    let store = dynamodb.store_for(&table);
    // A fan-out or membership change holding the items the migration writes, for a moment.
    dynamodb.refuse_times("PutItem", Refusal::ItemInTransaction, 2);
    dynamodb.refuse_times("UpdateItem", Refusal::ItemInTransaction, 2);
    let found = store.scan_for_migration(3, &|_| {}).await.unwrap();
    let migration = plan(&csv_users(), &found, Timestamp::now()).unwrap();
    let applied = store
        .apply_migration(&migration, Timestamp::now(), &|_| {})
        .await
        .unwrap();

    assert_eq!(dynamodb.refused(), 4);
    assert_eq!(
        applied, expected,
        "every write landed once, nothing skipped for it"
    );
    let found = store.scan_for_migration(3, &|_| {}).await.unwrap();
    let again = plan(&csv_users(), &found, Timestamp::now()).unwrap();
    assert_eq!(again.writes(), 0, "nothing left to migrate: {again:?}");
}
