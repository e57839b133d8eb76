//! Inbox rows follow the newest message: forward only, one query and one transaction,
//! never over another conversation's row, in chunks when a conversation has more rows than
//! one transaction holds.

use messaging::Message;
use messaging::coalesce::Newest;
use messaging::items::{InboxRowItem, MembershipItem};
use messaging::keys;
use messaging::store::RowPositions;
use testkit::{FailRequests, Failure, TestTable};
use uuid::Uuid;

use crate::{at, cold, inbox, raw_items_with_prefix, row_of, text};

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
        let rows = inbox(&table.store, owner).await;
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
        inbox(&table.store, andrew.uuid).await[0].other,
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

    let rows = inbox(&table.store, andrew.uuid).await;
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
        let rows = inbox(&table.store, user.uuid).await;
        let row = rows.iter().find(|r| r.group_uuid == x0.group_uuid).unwrap();
        assert_eq!(row.last_message, "x2", "{}", user.handle);
        assert_eq!(row.last_message_at, t_plus);
    }
    assert_eq!(inbox(&table.store, alice.uuid).await.len(), 2);
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

#[tokio::test]
async fn rows_beyond_one_transaction_move_in_chunks_and_a_failed_chunk_is_retried_alone() {
    // More rows than one transaction holds cannot come from the API (50 members, 100
    // items); conversations written by other tools can have them, so the fan-out chunks.
    let table = TestTable::new().await;
    let group = Uuid::new_v4();
    let start = "2025-08-01T00:00:00.000000+00:00";
    let mut owners: Vec<Uuid> = (0..60).map(|_| Uuid::new_v4()).collect();
    owners.sort_by_key(|owner| keys::inbox_pk(*owner));
    for owner in &owners {
        let row = InboxRowItem {
            pk: keys::inbox_pk(*owner),
            sk: start.into(),
            message_group_uuid: group,
            message: "start".into(),
            user_uuid: Uuid::new_v4(),
            user_display_name: "Someone".into(),
            user_handle: "someone".into(),
            last_message_at: Some(start.into()),
            member_count: Some(60),
            ..InboxRowItem::default()
        };
        table
            .put_raw(serde_dynamo::to_item(row).unwrap())
            .await
            .unwrap();
        let membership = MembershipItem::new(group, *owner, start);
        table
            .put_raw(serde_dynamo::to_item(membership).unwrap())
            .await
            .unwrap();
    }
    let sender = messaging::UserSummary {
        uuid: owners[0],
        handle: "first".into(),
        display_name: "First".into(),
    };
    let message = Message::new(
        group,
        sender,
        "to all sixty".into(),
        "2025-08-01T00:00:01.000000+00:00".into(),
    );
    let batch = Newest::of([message.clone()]).unwrap();
    // The second chunk (rows sorted by owner) names the last owner.
    let fail = FailRequests::mentioning(
        "TransactWriteItems",
        keys::inbox_pk(owners[59]),
        Failure::Network,
    );
    let failing = table.store_with(fail.clone());

    let error = failing
        .advance_conversation(&batch, &cold())
        .await
        .unwrap_err();

    assert!(error.is_transient(), "{error}");
    let moved = |row: &InboxRowItem| row.last_message_at() == message.created_at;
    let mut first_chunk = Vec::new();
    for owner in &owners {
        first_chunk.push(row_of(&table.store, *owner, group).await);
    }
    assert!(
        first_chunk[..50].iter().all(moved),
        "the first chunk landed"
    );
    assert!(!first_chunk[50..].iter().any(moved), "the second did not");

    fail.heal();
    let advance = failing.advance_conversation(&batch, &cold()).await.unwrap();
    assert_eq!((advance.moved, advance.current), (10, 50), "{advance:?}");
    for (i, owner) in owners.iter().enumerate() {
        let row = row_of(&table.store, *owner, group).await;
        assert!(moved(&row));
        if i < 50 {
            assert_eq!(row, first_chunk[i], "never moved back or counted twice");
        }
        assert_eq!(row.unread, u32::from(i != 0));
    }
}
