//! Direct conversations: started in one transaction, reused in both directions, started
//! once however many start at the same time; appending.

use std::collections::HashSet;

use messaging::keys;
use messaging::{PageRequest, StoreError, Timestamp};
use testkit::TestTable;
use uuid::Uuid;

use crate::{at, raw_items_with_prefix, text};

#[tokio::test]
async fn starting_a_conversation_writes_everything_in_one_transaction() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;

    let sent = table
        .store
        .send_to_user(
            &andrew,
            &bayko,
            text("Hello Bayko"),
            at("2024-05-01T10:00:00.000000+00:00"),
        )
        .await
        .unwrap();
    // One read (is there a conversation already?) and one transaction.
    assert_eq!(table.requests.of("GetItem"), 1);
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.total(), 2);

    let group = sent.group_uuid;
    assert_eq!(sent.sender, andrew.summary());
    assert_ne!(
        sent.uuid, andrew.uuid,
        "the message uuid is not the sender's"
    );
    assert_eq!(
        table
            .store
            .conversation_between(bayko.uuid, andrew.uuid, true)
            .await
            .unwrap(),
        Some(group)
    );
    let mut members: Vec<Uuid> = table
        .store
        .memberships(group)
        .await
        .unwrap()
        .into_iter()
        .map(|membership| membership.user_uuid)
        .collect();
    members.sort();
    let mut expected = vec![andrew.uuid, bayko.uuid];
    expected.sort();
    assert_eq!(members, expected);

    for (owner, other) in [(&andrew, &bayko), (&bayko, &andrew)] {
        let inbox = table
            .store
            .list_inbox(owner.uuid, &PageRequest::default())
            .await
            .unwrap();
        assert_eq!(inbox.items.len(), 1);
        let row = &inbox.items[0];
        assert_eq!(row.group_uuid, group);
        assert_eq!(row.other, other.summary());
        assert_eq!(row.last_message, "Hello Bayko");
        assert_eq!(row.last_message_at, "2024-05-01T10:00:00.000000+00:00");
        assert_eq!(inbox.next_cursor, None);
    }
    let messages = table
        .store
        .list_messages(bayko.uuid, group, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(messages.items, vec![sent]);
}

#[tokio::test]
async fn an_existing_conversation_is_reused_in_both_directions() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let first = table
        .store
        .send_to_user(&andrew, &bayko, text("one"), Timestamp::now())
        .await
        .unwrap();
    let back = table
        .store
        .send_to_user(&bayko, &andrew, text("two"), Timestamp::now())
        .await
        .unwrap();
    let again = table
        .store
        .send_to_user(&andrew, &bayko, text("three"), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(back.group_uuid, first.group_uuid);
    assert_eq!(again.group_uuid, first.group_uuid);
    assert_eq!(
        raw_items_with_prefix(&table, keys::PAIR_PREFIX).await.len(),
        1
    );
    assert_eq!(
        raw_items_with_prefix(&table, keys::INBOX_PREFIX)
            .await
            .len(),
        2
    );
    let messages = table
        .store
        .list_messages(andrew.uuid, first.group_uuid, &PageRequest::default())
        .await
        .unwrap();
    let texts: Vec<_> = messages.items.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
}

#[tokio::test]
async fn simultaneous_starts_create_exactly_one_conversation() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    for round in 0..5 {
        let now = Timestamp::now();
        let (a, b) = tokio::join!(
            table
                .store
                .send_to_user(&andrew, &bayko, text(&format!("a{round}")), now),
            table
                .store
                .send_to_user(&bayko, &andrew, text(&format!("b{round}")), now),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.group_uuid, b.group_uuid, "round {round}");
        assert_ne!(
            a.created_at, b.created_at,
            "same microsecond, distinct messages"
        );
    }
    assert_eq!(
        raw_items_with_prefix(&table, keys::PAIR_PREFIX).await.len(),
        1
    );
    assert_eq!(
        raw_items_with_prefix(&table, keys::INBOX_PREFIX)
            .await
            .len(),
        2
    );
    assert_eq!(
        raw_items_with_prefix(&table, keys::MEMBERSHIP_PREFIX)
            .await
            .len(),
        2
    );
    assert_eq!(
        raw_items_with_prefix(&table, keys::MESSAGE_PREFIX)
            .await
            .len(),
        10
    );
}

#[tokio::test]
async fn messages_with_the_same_timestamp_never_overwrite_each_other() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let now = at("2024-12-31T23:59:59.999999+00:00");
    let first = table
        .store
        .send_to_user(&andrew, &bayko, text("first"), now)
        .await
        .unwrap();
    let group = first.group_uuid;
    table.requests.reset();
    let second = table
        .store
        .append_message(&bayko, group, text("second"), now)
        .await
        .unwrap();
    // The collision cost one extra attempt, and the message moved one microsecond on.
    assert_eq!(table.requests.of("TransactWriteItems"), 2);
    assert_eq!(second.created_at, "2025-01-01T00:00:00.000000+00:00");
    let (third, fourth) = tokio::join!(
        table
            .store
            .append_message(&andrew, group, text("third"), now),
        table
            .store
            .append_message(&bayko, group, text("fourth"), now),
    );
    let (third, fourth) = (third.unwrap(), fourth.unwrap());
    let stored = table
        .store
        .list_messages(andrew.uuid, group, &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(stored.len(), 4);
    let stored_ids: HashSet<Uuid> = stored.iter().map(|m| m.uuid).collect();
    for sent in [&first, &second, &third, &fourth] {
        assert!(stored_ids.contains(&sent.uuid), "{} lost", sent.text);
    }
    let sks: HashSet<&str> = stored.iter().map(|m| m.created_at.as_str()).collect();
    assert_eq!(sks.len(), 4);
}

#[tokio::test]
async fn appending_costs_one_request_and_requires_membership() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let group = table
        .store
        .send_to_user(&andrew, &bayko, text("private"), Timestamp::now())
        .await
        .unwrap()
        .group_uuid;

    table.requests.reset();
    table
        .store
        .append_message(&bayko, group, text("reply"), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(table.requests.total(), 1);

    let refused = table
        .store
        .append_message(&londo, group, text("let me in"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::NotMember(g) if g == group),
        "{refused}"
    );
    let read = table
        .store
        .list_messages(londo.uuid, group, &PageRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(read, StoreError::NotMember(_)), "{read}");
    // A conversation that does not exist looks exactly the same to a non-member.
    let unknown = table
        .store
        .list_messages(londo.uuid, Uuid::new_v4(), &PageRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotMember(_)), "{unknown}");
    let unknown_append = table
        .store
        .append_message(&andrew, Uuid::new_v4(), text("hello?"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(matches!(unknown_append, StoreError::NotMember(_)));

    assert_eq!(
        raw_items_with_prefix(&table, keys::MESSAGE_PREFIX)
            .await
            .len(),
        2
    );
    assert_eq!(
        table
            .store
            .list_inbox(londo.uuid, &PageRequest::default())
            .await
            .unwrap()
            .items,
        vec![]
    );
}

#[tokio::test]
async fn nobody_starts_a_conversation_with_themself() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let err = table
        .store
        .send_to_user(&andrew, &andrew, text("me"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SelfConversation));
    assert_eq!(table.requests.total(), 0);
}
