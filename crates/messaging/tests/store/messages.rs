//! Finding a message by its uuid: one read for a uuid written here, the conversation read
//! for the original system's, nothing across conversations.

use messaging::items::MessageItem;
use messaging::message_id;
use testkit::TestTable;
use uuid::Uuid;

use crate::{at, second, text};

#[tokio::test]
async fn a_message_sent_here_is_found_with_one_read() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let sent = table
        .store
        .send_to_user(&andrew, &bayko, text("Hello"), second(1))
        .await
        .unwrap();
    assert_eq!(
        message_id::location(sent.uuid).map(|at| at.to_string()),
        Some(sent.created_at.clone()),
        "the uuid carries where the message is"
    );
    table.requests.reset();

    let found = table
        .store
        .find_message(sent.group_uuid, sent.uuid)
        .await
        .unwrap();
    assert_eq!(found, Some(sent.clone()));
    assert_eq!(table.requests.of("GetItem"), 1);
    assert_eq!(table.requests.total(), 1);

    // The same uuid under another conversation, or a uuid of this scheme that was never
    // sent, is nothing: one read each, no search.
    table.requests.reset();
    let elsewhere = table.store.find_message(Uuid::new_v4(), sent.uuid).await;
    assert_eq!(elsewhere.unwrap(), None);
    let never = message_id::message_uuid_at(at("2025-07-01T09:00:01.000001+00:00"));
    let unsent = table.store.find_message(sent.group_uuid, never).await;
    assert_eq!(unsent.unwrap(), None);
    assert_eq!(table.requests.of("GetItem"), 2);
    assert_eq!(table.requests.total(), 2);
}

#[tokio::test]
async fn a_collision_moves_the_message_and_its_uuid_together() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let first = table
        .store
        .send_to_user(&andrew, &bayko, text("one"), second(2))
        .await
        .unwrap();
    let second_message = table
        .store
        .append_message(&bayko, first.group_uuid, text("two"), second(2))
        .await
        .unwrap();
    assert_ne!(first.created_at, second_message.created_at);
    let found = table
        .store
        .find_message(first.group_uuid, second_message.uuid)
        .await
        .unwrap()
        .expect("found at the microsecond it moved to");
    assert_eq!(found.text, "two");
}

#[tokio::test]
async fn the_original_systems_messages_are_found_by_reading_their_conversation() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let sent = table
        .store
        .send_to_user(&andrew, &bayko, text("new"), second(30))
        .await
        .unwrap();
    // A message as the original system wrote it: a UUIDv4, a fraction-less timestamp.
    let mut legacy = MessageItem::new(&sent);
    legacy.sk = "2023-03-21T23:04:53+00:00".into();
    legacy.message_uuid = Uuid::new_v4();
    legacy.message = "old".into();
    table
        .put_raw(serde_dynamo::to_item(&legacy).unwrap())
        .await
        .unwrap();
    table.requests.reset();

    let found = table
        .store
        .find_message(sent.group_uuid, legacy.message_uuid)
        .await
        .unwrap()
        .expect("found by its uuid");
    assert_eq!(found.text, "old");
    assert_eq!(found.created_at, "2023-03-21T23:04:53+00:00");
    assert_eq!(table.requests.of("Query"), 1);
    assert_eq!(table.requests.total(), 1);

    let missing = table
        .store
        .find_message(sent.group_uuid, Uuid::new_v4())
        .await;
    assert_eq!(missing.unwrap(), None);
}
