//! The stream events in `events/` (the files `cargo lambda invoke` uses) through the
//! handler, against a table holding the inbox rows they refer to.

use crate::support::recorded::InboxRowMover;
use messaging::items::InboxRowItem;
use messaging::{PageRequest, keys};
use testkit::TestTable;
use uuid::Uuid;

use crate::support::{ANDREW, BAYKO, BAYKO_LONDO, LONDO, WITH_BAYKO, WITH_LONDO, event_file, uuid};

/// When each conversation's rows were last moved, before any event; distinct per
/// conversation, as one owner cannot hold two rows at the same key.
const EARLIER: [&str; 3] = [
    "2026-11-22T09:00:00.000000+00:00",
    "2026-11-22T09:00:01.000000+00:00",
    "2026-11-22T09:00:02.000000+00:00",
];

/// Both members' inbox rows of each conversation the events mention, at an earlier time.
async fn table_with_inboxes() -> TestTable {
    let table = TestTable::new().await;
    for (earlier, group, a, b) in [
        (EARLIER[0], WITH_BAYKO, ANDREW, BAYKO),
        (EARLIER[1], WITH_LONDO, ANDREW, LONDO),
        (EARLIER[2], BAYKO_LONDO, BAYKO, LONDO),
    ] {
        for (owner, other) in [(a, b), (b, a)] {
            let row = InboxRowItem {
                pk: keys::inbox_pk(uuid(owner)),
                sk: earlier.to_owned(),
                message_group_uuid: uuid(group),
                message: "earlier".to_owned(),
                user_uuid: uuid(other),
                user_display_name: "Someone".to_owned(),
                user_handle: "someone".to_owned(),
                last_message_at: None,
                member_count: None,
                ..InboxRowItem::default()
            };
            table
                .store
                .client()
                .put_item()
                .table_name(table.store.table())
                .set_item(Some(serde_dynamo::to_item(row).unwrap()))
                .send()
                .await
                .unwrap();
        }
    }
    table.requests.reset();
    table
}

async fn last_messages(table: &TestTable, owner: &str) -> Vec<(Uuid, String)> {
    let mut rows: Vec<(Uuid, String)> = table
        .store
        .list_inbox(uuid(owner), &PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|row| (row.group_uuid, row.last_message))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn the_batch_event_moves_every_conversation_to_its_newest_message() {
    let table = table_with_inboxes().await;
    let event = event_file("stream-batch.json");
    let (response, summary) = InboxRowMover::new(table.store.clone()).handle(&event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.messages, 7);
    assert_eq!(summary.skipped, 1, "the inbox-row insert");
    assert_eq!(summary.conversations, 3);
    assert_eq!(summary.rows_moved, 6);
    let mut expected_andrew = vec![
        (uuid(WITH_BAYKO), "Both rows, or neither.".to_owned()),
        (uuid(WITH_LONDO), "Go ahead, Londo.".to_owned()),
    ];
    expected_andrew.sort();
    assert_eq!(last_messages(&table, ANDREW).await, expected_andrew);
    let mut expected_londo = vec![
        (uuid(WITH_LONDO), "Go ahead, Londo.".to_owned()),
        (uuid(BAYKO_LONDO), "I am. It is... efficient.".to_owned()),
    ];
    expected_londo.sort();
    assert_eq!(last_messages(&table, LONDO).await, expected_londo);
}

#[tokio::test]
async fn the_single_insert_event_moves_both_rows() {
    let table = table_with_inboxes().await;
    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event_file("stream-insert-message.json"))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rows_moved, 2);
    assert!(
        last_messages(&table, BAYKO)
            .await
            .contains(&(uuid(WITH_BAYKO), "Did the inbox move?".to_owned()))
    );
}

#[tokio::test]
async fn remove_modify_and_inbox_row_events_change_nothing() {
    let table = table_with_inboxes().await;
    let before = last_messages(&table, ANDREW).await;
    for name in [
        "stream-remove.json",
        "stream-modify.json",
        "stream-inbox-row-insert.json",
    ] {
        let event = event_file(name);
        let (response, summary) = InboxRowMover::new(table.store.clone()).handle(&event).await;
        assert!(response.batch_item_failures.is_empty(), "{name}");
        // A MODIFY of a message that names no change (a tool rewriting the item) is
        // malformed: every change of a message sets `change`.
        let malformed = usize::from(name == "stream-modify.json");
        assert_eq!(summary.malformed, malformed, "{name}");
        assert_eq!(summary.skipped, event.records.len() - malformed, "{name}");
        assert_eq!((summary.messages, summary.changes), (0, 0), "{name}");
    }
    assert_eq!(last_messages(&table, ANDREW).await, before);
}

#[tokio::test]
async fn the_change_events_follow_the_message_into_its_previews() {
    let table = table_with_inboxes().await;
    let handler = InboxRowMover::new(table.store.clone());
    handler
        .handle(&event_file("stream-insert-message.json"))
        .await;
    let event = event_file("stream-message-changes.json");
    let kinds: Vec<&str> = event
        .records
        .iter()
        .map(|r| r.event_name.as_str())
        .collect();
    assert_eq!(kinds, ["MODIFY"; 3], "an edit, a reaction, a delete");

    // The edit and the reaction alone first, then the delete.
    let (response, summary) = handler.handle(&crate::event(&event.records[..2])).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.changes, summary.rows_changed), (2, 2));
    for owner in [ANDREW, BAYKO] {
        assert!(
            last_messages(&table, owner).await.contains(&(
                uuid(WITH_BAYKO),
                "Did the inbox move? Both rows?".to_owned()
            )),
            "{owner}"
        );
    }
    let (response, summary) = handler.handle(&event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rows_changed, 2, "only the delete is new");
    for owner in [ANDREW, BAYKO] {
        let row = table
            .store
            .list_inbox(uuid(owner), &PageRequest::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|row| row.group_uuid == uuid(WITH_BAYKO))
            .unwrap();
        assert_eq!(row.last_message, "");
        assert!(row.deleted);
        assert_eq!(
            row.edited_at.as_deref(),
            Some("2026-11-22T10:17:02.250000+00:00")
        );
    }
}

#[tokio::test]
async fn the_malformed_event_is_skipped_without_failing_the_batch() {
    let table = table_with_inboxes().await;
    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event_file("stream-malformed.json"))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.malformed, 3);
    assert_eq!(table.requests.total(), 0, "nothing read or written");
}
