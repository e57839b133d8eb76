//! A send repeated after `messaging-stream` already moved the inbox rows to it: the repeat
//! answers the first answer and changes nothing, neither the message nor the moved rows
//! (their unread counts included).

use messaging::Timestamp;
use messaging::store::ClientMessageId;
use testkit::TestTable;
use uuid::Uuid;

use crate::support::recorded::InboxRowMover;
use crate::{Cast, Stream, cast, event, rows_by_group, snapshot, text, unread};

#[tokio::test]
async fn a_repeat_after_the_rows_moved_answers_the_first_and_moves_nothing() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    // Times of now: the send record must not lie in the past, where the TTL deletes it.
    let started = table
        .store
        .send_to_user(&andrew, &bayko, text("hello"), Timestamp::now())
        .await
        .unwrap();
    let id = ClientMessageId::new(Uuid::new_v4(), &["test", "did you get this?"]);
    let first = table
        .store
        .append_message_once(
            &andrew,
            started.group_uuid,
            text("did you get this?"),
            Timestamp::now(),
            &id,
        )
        .await
        .unwrap();
    let records = stream.next_records("MSG#", 2).await;
    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.messages, 2);
    let moved = (first.text.clone(), first.created_at.clone());
    assert_eq!(
        rows_by_group(&table, &bayko).await[&first.group_uuid],
        moved
    );
    assert_eq!(unread(&table, &bayko, first.group_uuid).await, 2);
    let before = snapshot(&table).await;

    let again = table
        .store
        .append_message_once(
            &andrew,
            started.group_uuid,
            text("did you get this?"),
            Timestamp::now(),
            &id,
        )
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        snapshot(&table).await,
        before,
        "no message, no row moved back"
    );
    assert_eq!(
        rows_by_group(&table, &andrew).await[&first.group_uuid],
        moved
    );
    assert_eq!(unread(&table, &bayko, first.group_uuid).await, 2);
}
