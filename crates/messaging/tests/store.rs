//! The store's access patterns against DynamoDB Local, one fresh table per test.

use std::collections::HashSet;

use messaging::keys;
use messaging::page::PageError;
use messaging::store::{NewUser, Registration, RowPositions, TableStatus};
use messaging::validate::{DisplayName, Handle, MessageText};
use messaging::{Message, PageRequest, StoreError, Timestamp};
use testkit::TestTable;
use time::macros::datetime;
use uuid::Uuid;

fn text(value: &str) -> MessageText {
    MessageText::parse(value).unwrap()
}

fn at(value: &str) -> Timestamp {
    Timestamp::parse(value).unwrap()
}

fn new_user(handle: &str, sub: &str) -> NewUser {
    NewUser {
        handle: Handle::parse(handle).unwrap(),
        display_name: DisplayName::parse("Someone").unwrap(),
        cognito_sub: sub.to_owned(),
    }
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

#[tokio::test]
async fn users_are_found_by_sub_and_by_handle_in_one_read_each() {
    let table = TestTable::new().await;
    let registered = table
        .store
        .register_user(new_user("LondoM", "sub-londo"), Timestamp::now())
        .await
        .unwrap();
    let Registration::Created(londo) = registered else {
        panic!("expected a new user, got {registered:?}");
    };
    table.requests.reset();

    let by_sub = table.store.user_by_sub("sub-londo").await.unwrap();
    assert_eq!(by_sub.as_ref(), Some(&londo));
    assert_eq!(table.requests.total(), 1);

    table.requests.reset();
    let by_handle = table
        .store
        .user_by_handle(&Handle::parse("londom").unwrap())
        .await
        .unwrap();
    assert_eq!(by_handle.as_ref(), Some(&londo));
    assert_eq!(by_handle.unwrap().handle.as_str(), "LondoM");
    assert_eq!(table.requests.total(), 1);

    assert_eq!(
        table.store.user_by_uuid(londo.uuid).await.unwrap(),
        Some(londo)
    );
    assert_eq!(table.store.user_by_sub("nobody").await.unwrap(), None);
    assert_eq!(table.store.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn handles_are_unique_whatever_their_case() {
    let table = TestTable::new().await;
    table
        .store
        .register_user(new_user("andrewbrown", "sub-1"), Timestamp::now())
        .await
        .unwrap();
    let err = table
        .store
        .register_user(new_user("AndrewBrown", "sub-2"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::HandleTaken(ref h) if h == "AndrewBrown"),
        "{err}"
    );
    // Nothing of the refused registration was written.
    assert_eq!(table.store.user_by_sub("sub-2").await.unwrap(), None);
    assert_eq!(table.store.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn registration_replays_are_idempotent_and_subs_cannot_change_handle() {
    let table = TestTable::new().await;
    let first = table
        .store
        .register_user(new_user("bayko", "sub-bayko"), Timestamp::now())
        .await
        .unwrap();
    let again = table
        .store
        .register_user(new_user("Bayko", "sub-bayko"), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(again, Registration::AlreadyRegistered(first.user().clone()));

    let err = table
        .store
        .register_user(new_user("other", "sub-bayko"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SubRegistered { ref handle, .. } if handle == "bayko"),
        "{err}"
    );
    assert_eq!(
        table
            .store
            .user_by_handle(&Handle::parse("other").unwrap())
            .await
            .unwrap(),
        None
    );

    let blank = table
        .store
        .register_user(new_user("blank", "  "), Timestamp::now())
        .await
        .unwrap_err();
    assert!(matches!(blank, StoreError::SubBlank));
}

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

#[tokio::test]
async fn message_pages_walk_every_message_once_across_a_year_boundary() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    // 150 messages, one every ten minutes, from 2023-12-31 10:00 to 2024-01-01 10:50.
    let start = datetime!(2023-12-31 10:00 UTC);
    let sent_at: Vec<Timestamp> = (0..150)
        .map(|i| Timestamp::from_datetime(start + time::Duration::minutes(10 * i)))
        .collect();
    let group = table
        .store
        .send_to_user(&andrew, &bayko, text("m0"), sent_at[0])
        .await
        .unwrap()
        .group_uuid;
    for (i, now) in sent_at.iter().enumerate().skip(1) {
        let sender = if i % 2 == 0 { &andrew } else { &bayko };
        table
            .store
            .append_message(sender, group, text(&format!("m{i}")), *now)
            .await
            .unwrap();
    }

    table.requests.reset();
    let mut page = PageRequest::new(7, None).unwrap();
    let mut pages = Vec::new();
    loop {
        let result = table
            .store
            .list_messages(bayko.uuid, group, &page)
            .await
            .unwrap();
        assert!(
            result
                .items
                .windows(2)
                .all(|w| w[0].created_at < w[1].created_at),
            "oldest first within a page"
        );
        pages.push(result.items);
        match result.next_cursor {
            Some(cursor) => page = page.with_cursor(Some(cursor)),
            None => break,
        }
    }
    assert_eq!(pages.len(), 150usize.div_ceil(7));
    assert_eq!(table.requests.of("Query"), pages.len() as u64);
    assert_eq!(table.requests.of("GetItem"), pages.len() as u64);
    // Pages come newest first; reversing them gives the whole conversation in order.
    let walked: Vec<String> = pages.into_iter().rev().flatten().map(|m| m.text).collect();
    let expected: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    assert_eq!(walked, expected);
}

#[tokio::test]
async fn inbox_pages_walk_every_conversation_once_newest_first() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let start = datetime!(2023-12-31 20:00 UTC);
    let mut expected = Vec::new();
    for i in 0..23 {
        let friend = table.user(&format!("friend{i}")).await;
        let now = Timestamp::from_datetime(start + time::Duration::hours(i));
        let sent = table
            .store
            .send_to_user(&friend, &andrew, text(&format!("hi {i}")), now)
            .await
            .unwrap();
        expected.push(sent.group_uuid);
    }
    expected.reverse();

    let mut page = PageRequest::new(10, None).unwrap();
    let mut walked = Vec::new();
    let mut pages = 0;
    loop {
        let result = table.store.list_inbox(andrew.uuid, &page).await.unwrap();
        pages += 1;
        walked.extend(result.items.iter().map(|row| row.group_uuid));
        match result.next_cursor {
            Some(cursor) => page = page.with_cursor(Some(cursor)),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(walked, expected);
}

#[tokio::test]
async fn cursors_from_elsewhere_or_tampered_are_refused_without_reading() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let mut groups = Vec::new();
    for other in [&bayko, &londo] {
        for i in 0..3 {
            let sent = table
                .store
                .send_to_user(&andrew, other, text(&format!("{i}")), Timestamp::now())
                .await
                .unwrap();
            groups.push(sent.group_uuid);
        }
    }
    let (with_bayko, with_londo) = (groups[0], groups[3]);
    let first_page = PageRequest::new(1, None).unwrap();
    let bayko_cursor = table
        .store
        .list_messages(andrew.uuid, with_bayko, &first_page)
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    let inbox_cursor = table
        .store
        .list_inbox(andrew.uuid, &first_page)
        .await
        .unwrap()
        .next_cursor
        .unwrap();

    table.requests.reset();
    let cases = [
        // Another conversation's cursor, in a conversation the reader belongs to.
        table
            .store
            .list_messages(
                andrew.uuid,
                with_londo,
                &first_page.with_cursor(Some(bayko_cursor.clone())),
            )
            .await,
        // An inbox cursor used on a conversation.
        table
            .store
            .list_messages(
                andrew.uuid,
                with_bayko,
                &first_page.with_cursor(Some(inbox_cursor.clone())),
            )
            .await,
        // Garbage.
        table
            .store
            .list_messages(
                andrew.uuid,
                with_bayko,
                &first_page.with_cursor(Some("x".into())),
            )
            .await,
    ];
    for result in cases {
        assert!(
            matches!(result, Err(StoreError::Page(PageError::CursorInvalid))),
            "{result:?}"
        );
    }
    // Someone else's inbox cursor.
    let stolen = table
        .store
        .list_inbox(londo.uuid, &first_page.with_cursor(Some(inbox_cursor)))
        .await;
    assert!(
        matches!(stolen, Err(StoreError::Page(PageError::CursorInvalid))),
        "{stolen:?}"
    );
    assert_eq!(table.requests.total(), 0, "refused before any read");
}

async fn inbox_rows(table: &TestTable, owner: Uuid) -> Vec<messaging::InboxEntry> {
    table
        .store
        .list_inbox(owner, &PageRequest::new(100, None).unwrap())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn inbox_rows_move_forward_only_in_one_query_and_one_transaction() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let first = table
        .store
        .send_to_user(
            &andrew,
            &bayko,
            text("first"),
            at("2024-12-31T23:00:00.000000+00:00"),
        )
        .await
        .unwrap();
    let newer = table
        .store
        .append_message(
            &bayko,
            first.group_uuid,
            text("newer"),
            at("2025-01-01T01:00:00.000000+00:00"),
        )
        .await
        .unwrap();
    let older = table
        .store
        .append_message(
            &bayko,
            first.group_uuid,
            text("older"),
            at("2025-01-01T00:30:00.000000+00:00"),
        )
        .await
        .unwrap();

    table.requests.reset();
    let advance = table
        .store
        .advance_inbox_rows(&newer, &RowPositions::disabled())
        .await
        .unwrap();
    assert_eq!((advance.moved, advance.current), (2, 0), "{advance:?}");
    assert_eq!(advance.index_reads, 1);
    assert_eq!(table.requests.of("Query"), 1);
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.total(), 2);

    // Replaying changes nothing. An older message delivered late (committed after the
    // newer one) moves nothing either, but is counted once as unread, in place, for the
    // member who did not send it.
    let advance_by = |message: &Message| {
        let store = table.store.clone();
        let message = message.clone();
        async move {
            let advance = store
                .advance_inbox_rows(&message, &RowPositions::disabled())
                .await
                .unwrap();
            (advance.moved, advance.current)
        }
    };
    assert_eq!(advance_by(&newer).await, (0, 2));
    assert_eq!(advance_by(&older).await, (1, 1), "andrew's row recounted");
    for message in [&newer, &older, &first] {
        assert_eq!(advance_by(message).await, (0, 2));
    }
    for (owner, unread) in [(andrew.uuid, 2), (bayko.uuid, 1)] {
        let rows = inbox_rows(&table, owner).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].last_message, "newer");
        assert_eq!(rows[0].last_message_at, newer.created_at);
        assert_eq!(
            rows[0].unread, unread,
            "first is andrew's, newer and older bayko's"
        );
    }
    // The other member is still the other member.
    assert_eq!(
        inbox_rows(&table, andrew.uuid).await[0].other,
        bayko.summary()
    );
}

#[tokio::test]
async fn an_inbox_row_never_overwrites_another_conversations_row_at_the_same_microsecond() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let same = at("2025-03-01T12:00:00.000000+00:00");
    let with_bayko = table
        .store
        .send_to_user(&andrew, &bayko, text("to bayko"), same)
        .await
        .unwrap();
    let with_londo = table
        .store
        .send_to_user(
            &andrew,
            &londo,
            text("to londo"),
            at("2025-03-01T11:00:00.000000+00:00"),
        )
        .await
        .unwrap();
    let reply = table
        .store
        .append_message(&londo, with_londo.group_uuid, text("from londo"), same)
        .await
        .unwrap();
    table
        .store
        .advance_inbox_rows(&reply, &RowPositions::disabled())
        .await
        .unwrap();

    let rows = inbox_rows(&table, andrew.uuid).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let by_group: std::collections::HashMap<Uuid, &messaging::InboxEntry> =
        rows.iter().map(|row| (row.group_uuid, row)).collect();
    assert_eq!(by_group[&with_bayko.group_uuid].last_message, "to bayko");
    assert_eq!(by_group[&with_londo.group_uuid].last_message, "from londo");
    // The row sits a microsecond on, but shows when the message was sent.
    assert_eq!(
        by_group[&with_londo.group_uuid].last_message_at,
        "2025-03-01T12:00:00.000000+00:00"
    );
    let keys = raw_items_with_prefix(&table, &keys::inbox_pk(andrew.uuid)).await;
    assert!(
        keys.iter()
            .any(|(_, sk)| sk == "2025-03-01T12:00:00.000001+00:00"),
        "{keys:?}"
    );
    // A replay recognises the moved row as current.
    let again = table
        .store
        .advance_inbox_rows(&reply, &RowPositions::disabled())
        .await
        .unwrap();
    assert_eq!(again.moved, 0);
}

#[tokio::test]
async fn a_row_moved_a_microsecond_on_still_follows_the_next_message() {
    let table = TestTable::new().await;
    let alice = table.user("alice").await;
    let bob = table.user("bob").await;
    let carol = table.user("carol").await;
    let t = "2025-05-05T05:05:01.000000+00:00";
    let t_plus = "2025-05-05T05:05:01.000001+00:00";
    // Alice's row of the conversation with Carol sits at t.
    table
        .store
        .send_to_user(&carol, &alice, text("y1"), at(t))
        .await
        .unwrap();
    let x0 = table
        .store
        .send_to_user(
            &bob,
            &alice,
            text("x0"),
            at("2025-05-05T05:05:00.000000+00:00"),
        )
        .await
        .unwrap();
    // x1 at t: Alice's row of the conversation with Bob has to go to t + 1 µs.
    let x1 = table
        .store
        .append_message(&bob, x0.group_uuid, text("x1"), at(t))
        .await
        .unwrap();
    table
        .store
        .advance_inbox_rows(&x1, &RowPositions::disabled())
        .await
        .unwrap();
    // x2 at exactly t + 1 µs must still move her row.
    let x2 = table
        .store
        .append_message(&bob, x0.group_uuid, text("x2"), at(t_plus))
        .await
        .unwrap();
    assert_eq!(x2.created_at, t_plus);
    let advance = table
        .store
        .advance_inbox_rows(&x2, &RowPositions::disabled())
        .await
        .unwrap();
    assert_eq!(advance.moved, 2, "{advance:?}");
    for user in [&alice, &bob] {
        let rows = inbox_rows(&table, user.uuid).await;
        let row = rows.iter().find(|r| r.group_uuid == x0.group_uuid).unwrap();
        assert_eq!(row.last_message, "x2", "{}", user.handle);
        assert_eq!(row.last_message_at, t_plus);
    }
    assert_eq!(inbox_rows(&table, alice.uuid).await.len(), 2);
    // Replays change nothing.
    assert_eq!(
        table
            .store
            .advance_inbox_rows(&x1, &RowPositions::disabled())
            .await
            .unwrap()
            .moved,
        0
    );
    assert_eq!(
        table
            .store
            .advance_inbox_rows(&x2, &RowPositions::disabled())
            .await
            .unwrap()
            .moved,
        0
    );
}
