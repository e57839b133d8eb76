//! Pattern E against DynamoDB's behaviour, not only DynamoDB Local's: a group index that
//! lags (rows missing, ghosts, old positions), transactions that must not name an item
//! twice, and the per-environment hint of where rows are.

use aws_sdk_dynamodb::types::AttributeValue;
use messaging::items::{InboxRowItem, MembershipItem, MessageItem};
use messaging::keys;
use messaging::store::{Advance, RowPositions};
use messaging::{InboxEntry, Message, Store, StoreError, User};
use testkit::{FailRequests, Failure, IndexFault, LaggingIndex, TestTable};
use uuid::Uuid;

use crate::{at, cold, inbox, text};

/// Asserts every owner has exactly one row of `group`, showing `message`.
async fn assert_rows_at(store: &Store, owners: &[&User], message: &Message) {
    for owner in owners {
        let rows: Vec<InboxEntry> = inbox(store, owner.uuid)
            .await
            .into_iter()
            .filter(|row| row.group_uuid == message.group_uuid)
            .collect();
        assert_eq!(rows.len(), 1, "{}: {rows:?}", owner.handle);
        assert_eq!(rows[0].last_message, message.text, "{}", owner.handle);
        assert_eq!(rows[0].last_message_at, message.created_at);
    }
}

struct Pair {
    table: TestTable,
    andrew: User,
    bayko: User,
    first: Message,
}

impl Pair {
    /// Andrew and Bayko share a conversation whose first message is at 10:00.
    async fn new() -> Self {
        let table = TestTable::new().await;
        let andrew = table.user("andrewbrown").await;
        let bayko = table.user("bayko").await;
        let first = table
            .store
            .send_to_user(
                &andrew,
                &bayko,
                text("first"),
                at("2025-06-01T10:00:00.000000+00:00"),
            )
            .await
            .unwrap();
        table.requests.reset();
        Self {
            table,
            andrew,
            bayko,
            first,
        }
    }

    async fn reply(&self, when: &str, words: &str) -> Message {
        let message = self
            .table
            .store
            .append_message(&self.bayko, self.first.group_uuid, text(words), at(when))
            .await
            .unwrap();
        self.table.requests.reset();
        message
    }

    fn members(&self) -> [&User; 2] {
        [&self.andrew, &self.bayko]
    }
}

#[tokio::test]
async fn an_index_that_shows_nothing_yet_is_re_read_until_the_rows_show() {
    let pair = Pair::new().await;
    let reply = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "reply")
        .await;
    let index = LaggingIndex::new().then(IndexFault::ShowNothing, 2);
    let store = pair.table.store_with(index.clone());

    let advance = store.advance_inbox_rows(&reply, &cold()).await.unwrap();

    assert_eq!((advance.moved, advance.current), (2, 0), "{advance:?}");
    assert_eq!(advance.index_reads, 3);
    assert_eq!(index.reads(), 3);
    // Nothing visible carries no member count: the memberships, read once, say two.
    assert_eq!(pair.table.requests.of("Query"), 4);
    assert_rows_at(&pair.table.store, &pair.members(), &reply).await;
}

#[tokio::test]
async fn an_index_that_never_catches_up_is_a_transient_failure_and_moves_nothing() {
    let pair = Pair::new().await;
    let reply = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "reply")
        .await;
    let store = pair
        .table
        .store_with(LaggingIndex::new().then(IndexFault::ShowNothing, 100));

    let error = store.advance_inbox_rows(&reply, &cold()).await.unwrap_err();

    assert!(
        matches!(
            error,
            StoreError::IndexLagging {
                seen: 0,
                expected: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_transient(), "reported for retry, never skipped");
    assert_rows_at(&pair.table.store, &pair.members(), &pair.first).await;
}

#[tokio::test]
async fn a_partial_view_is_re_read_not_taken_for_the_whole() {
    let pair = Pair::new().await;
    let reply = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "reply")
        .await;
    let index = LaggingIndex::new().then(IndexFault::Hide(1), 2);
    let store = pair.table.store_with(index.clone());

    let advance = store.advance_inbox_rows(&reply, &cold()).await.unwrap();

    assert_eq!(advance.moved, 2, "{advance:?}");
    assert_eq!(advance.index_reads, 3);
    // The visible row carries the count; a second short view might be a count a leave
    // left too high, so the memberships are read once, and say the index lags.
    assert_eq!(pair.table.requests.of("Query"), 4);
    assert_rows_at(&pair.table.store, &pair.members(), &reply).await;
}

#[tokio::test]
async fn ghosts_beside_moved_rows_are_never_named_twice_in_a_transaction() {
    let pair = Pair::new().await;
    let index = LaggingIndex::new();
    let store = pair.table.store_with(index.clone());
    let second = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "second")
        .await;
    // Moves the rows from `first` to `second`; the index has seen both positions.
    store.advance_inbox_rows(&second, &cold()).await.unwrap();
    let third = pair
        .reply("2025-06-01T10:00:02.000000+00:00", "third")
        .await;
    let index = index.then(IndexFault::Ghosts, 1);

    let advance = store.advance_inbox_rows(&third, &cold()).await.unwrap();

    // Each owner shows twice (at `first`, deleted, and at `second`); one move each, in one
    // transaction that DynamoDB accepts (the testkit rejects repeated keys as it does).
    assert_eq!(index.pending(), 0, "the ghost read happened");
    assert_eq!((advance.moved, advance.current), (2, 0), "{advance:?}");
    assert_eq!(advance.index_reads, 1);
    assert_eq!(pair.table.requests.of("TransactWriteItems"), 1);
    assert_rows_at(&pair.table.store, &pair.members(), &third).await;
}

#[tokio::test]
async fn old_positions_are_re_read_never_written_from() {
    let pair = Pair::new().await;
    let index = LaggingIndex::new();
    let store = pair.table.store_with(index.clone());
    let second = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "second")
        .await;
    store.advance_inbox_rows(&second, &cold()).await.unwrap();
    let third = pair
        .reply("2025-06-01T10:00:02.000000+00:00", "third")
        .await;
    // The index shows the rows where they were before `second` moved them.
    index.clone().then(IndexFault::OldPositions, 2);

    let advance = store.advance_inbox_rows(&third, &cold()).await.unwrap();

    // Two cancelled transactions (the old rows are gone), then the caught-up read.
    assert_eq!(advance.index_reads, 3, "{advance:?}");
    assert_eq!(advance.moved, 2);
    assert_eq!(pair.table.requests.of("TransactWriteItems"), 3);
    assert_rows_at(&pair.table.store, &pair.members(), &third).await;
    // An old position that is already past a late message is no reason to write.
    index.clone().then(IndexFault::OldPositions, 1);
    let advance = store.advance_inbox_rows(&second, &cold()).await.unwrap();
    assert_eq!((advance.moved, advance.current), (0, 2));
    assert_rows_at(&pair.table.store, &pair.members(), &third).await;
}

#[tokio::test]
async fn a_corrupt_row_is_skipped_and_the_other_members_rows_still_move() {
    let pair = Pair::new().await;
    let reply = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "reply")
        .await;
    // A third row of the conversation that is not a valid inbox row (no other member).
    pair.table
        .store
        .client()
        .put_item()
        .table_name(pair.table.store.table())
        .item("pk", AttributeValue::S(keys::inbox_pk(Uuid::new_v4())))
        .item("sk", AttributeValue::S(pair.first.created_at.clone()))
        .item(
            "message_group_uuid",
            AttributeValue::S(pair.first.group_uuid.to_string()),
        )
        .send()
        .await
        .unwrap();

    let advance = pair
        .table
        .store
        .advance_inbox_rows(&reply, &cold())
        .await
        .unwrap();

    assert_eq!(advance.moved, 2, "{advance:?}");
    assert_eq!(advance.skipped_rows, 1);
    assert_rows_at(&pair.table.store, &pair.members(), &reply).await;
}

/// Writes a conversation the way the original system did: inbox rows without
/// `last_message_at` or `member_count`, with or without our membership items.
async fn original_conversation(table: &TestTable, a: &User, b: &User, memberships: bool) -> Uuid {
    let group = Uuid::new_v4();
    let sk = "2023-12-31T23:00:00.123456+00:00";
    for (owner, other) in [(a, b), (b, a)] {
        let row = InboxRowItem {
            pk: keys::inbox_pk(owner.uuid),
            sk: sk.into(),
            message_group_uuid: group,
            message: "from the original".into(),
            user_uuid: other.uuid,
            user_display_name: other.display_name.as_str().into(),
            user_handle: other.handle.as_str().into(),
            last_message_at: None,
            member_count: None,
            ..InboxRowItem::default()
        };
        put(table, serde_dynamo::to_item(row).unwrap()).await;
        if memberships {
            let membership = MembershipItem::new(group, owner.uuid, sk);
            put(table, serde_dynamo::to_item(membership).unwrap()).await;
        }
    }
    table.requests.reset();
    group
}

async fn put(table: &TestTable, item: messaging::store::Item) {
    table.put_raw(item).await.unwrap();
}

async fn raw_message(table: &TestTable, group: Uuid, sender: &User, when: &str) -> Message {
    let message = Message::new(group, sender.summary(), "new".into(), when.into());
    put(
        table,
        serde_dynamo::to_item(MessageItem::new(&message)).unwrap(),
    )
    .await;
    table.requests.reset();
    message
}

#[tokio::test]
async fn the_original_systems_rows_are_counted_by_their_memberships_and_gain_a_count() {
    let pair = Pair::new().await;
    let table = &pair.table;
    let group = original_conversation(table, &pair.andrew, &pair.bayko, true).await;
    let message = raw_message(
        table,
        group,
        &pair.andrew,
        "2024-01-02T00:00:00.000000+00:00",
    )
    .await;
    // The visible row carries no count; only the memberships can tell one row is missing.
    let store = table.store_with(LaggingIndex::new().then(IndexFault::Hide(1), 1));

    let advance = store.advance_inbox_rows(&message, &cold()).await.unwrap();

    assert_eq!(advance.moved, 2, "{advance:?}");
    assert_eq!(advance.index_reads, 2);
    assert_rows_at(&table.store, &pair.members(), &message).await;
    // Moved rows carry the count now: the next update needs no membership read.
    let next = raw_message(
        table,
        group,
        &pair.bayko,
        "2024-01-03T00:00:00.000000+00:00",
    )
    .await;
    table
        .store
        .advance_inbox_rows(&next, &cold())
        .await
        .unwrap();
    assert_eq!(
        table.requests.of("Query"),
        1,
        "{:?}",
        table.requests.snapshot()
    );
}

#[tokio::test]
async fn unmigrated_original_rows_move_on_what_the_index_shows() {
    let pair = Pair::new().await;
    let table = &pair.table;
    let group = original_conversation(table, &pair.andrew, &pair.bayko, false).await;
    let message = raw_message(
        table,
        group,
        &pair.andrew,
        "2024-01-02T00:00:00.000000+00:00",
    )
    .await;

    let advance = table
        .store
        .advance_inbox_rows(&message, &cold())
        .await
        .unwrap();

    assert_eq!(advance.moved, 2, "{advance:?}");
    assert_rows_at(&table.store, &pair.members(), &message).await;
}

#[tokio::test]
async fn a_message_in_a_conversation_without_members_or_rows_can_never_move_anything() {
    let pair = Pair::new().await;
    let orphan = raw_message(
        &pair.table,
        Uuid::new_v4(),
        &pair.andrew,
        "2025-01-01T00:00:00.000000+00:00",
    )
    .await;

    let error = pair
        .table
        .store
        .advance_inbox_rows(&orphan, &cold())
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::NoMembers(_)), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_rejected_transaction_is_retried_and_then_reported_not_skipped() {
    let pair = Pair::new().await;
    let reply = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "reply")
        .await;
    let reject = FailRequests::mentioning(
        "TransactWriteItems",
        pair.first.group_uuid.to_string(),
        Failure::Rejected,
    );
    let store = pair.table.store_with(reject.clone());

    let error = store.advance_inbox_rows(&reply, &cold()).await.unwrap_err();

    assert!(
        matches!(error, StoreError::Dynamo { .. }),
        "the rejection itself: {error}"
    );
    assert!(reject.failed() > 1, "re-read and tried again");
    assert_rows_at(&pair.table.store, &pair.members(), &pair.first).await;
}

#[tokio::test]
async fn dynamodb_rejects_a_transaction_naming_an_item_twice_and_the_testkit_plays_it() {
    let table = TestTable::new().await;
    let item = |value: &str| {
        let mut put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(table.store.table())
            .item("pk", AttributeValue::S("X#1".into()))
            .item("sk", AttributeValue::S("1".into()))
            .item("v", AttributeValue::S(value.into()));
        put = put.condition_expression("attribute_not_exists(pk)");
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put.build().unwrap())
            .build()
    };
    let error = table
        .store
        .client()
        .transact_write_items()
        .transact_items(item("a"))
        .transact_items(item("b"))
        .send()
        .await
        .unwrap_err();
    let service = error.into_service_error();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&service),
        Some("ValidationException"),
        "{service:?}"
    );
    assert!(table.store.scan_all().await.unwrap().is_empty());
}

// --- the hint: where this execution environment last put the rows ---

#[tokio::test]
async fn rows_this_environment_moved_are_moved_again_in_one_request() {
    let pair = Pair::new().await;
    let positions = RowPositions::default();
    let second = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "second")
        .await;
    let advance = pair
        .table
        .store
        .advance_inbox_rows(&second, &positions)
        .await
        .unwrap();
    assert!(!advance.hinted);
    assert_eq!(pair.table.requests.total(), 2);

    let third = pair
        .reply("2025-06-01T10:00:02.000000+00:00", "third")
        .await;
    let advance = pair
        .table
        .store
        .advance_inbox_rows(&third, &positions)
        .await
        .unwrap();

    assert_eq!(
        advance,
        Advance {
            moved: 2,
            hinted: true,
            ..Advance::default()
        }
    );
    assert_eq!(pair.table.requests.snapshot().len(), 1);
    assert_eq!(pair.table.requests.of("TransactWriteItems"), 1);
    assert_rows_at(&pair.table.store, &pair.members(), &third).await;

    // A replay the hint knows to be older than the rows costs nothing at all.
    pair.table.requests.reset();
    let replay = pair
        .table
        .store
        .advance_inbox_rows(&second, &positions)
        .await
        .unwrap();
    assert_eq!((replay.moved, replay.current), (0, 2));
    assert_eq!(pair.table.requests.total(), 0);
}

#[tokio::test]
async fn a_hint_made_stale_by_another_environment_falls_back_to_the_index() {
    let pair = Pair::new().await;
    let (here, elsewhere) = (RowPositions::default(), RowPositions::default());
    let store = &pair.table.store;
    let second = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "second")
        .await;
    store.advance_inbox_rows(&second, &here).await.unwrap();
    let third = pair
        .reply("2025-06-01T10:00:02.000000+00:00", "third")
        .await;
    store.advance_inbox_rows(&third, &elsewhere).await.unwrap();
    let fourth = pair
        .reply("2025-06-01T10:00:03.000000+00:00", "fourth")
        .await;

    let advance = store.advance_inbox_rows(&fourth, &here).await.unwrap();

    assert!(!advance.hinted, "{advance:?}");
    assert_eq!(advance.moved, 2);
    // The cancelled hinted transaction, then the index path.
    assert_eq!(pair.table.requests.of("TransactWriteItems"), 2);
    assert_eq!(pair.table.requests.of("Query"), 1);
    assert_rows_at(store, &pair.members(), &fourth).await;
    // And the hint is right again.
    let fifth = pair
        .reply("2025-06-01T10:00:04.000000+00:00", "fifth")
        .await;
    assert!(
        store
            .advance_inbox_rows(&fifth, &here)
            .await
            .unwrap()
            .hinted
    );
}

#[tokio::test]
async fn a_hint_never_writes_back_a_row_changed_since() {
    let pair = Pair::new().await;
    let positions = RowPositions::default();
    let store = &pair.table.store;
    let second = pair
        .reply("2025-06-01T10:00:01.000000+00:00", "second")
        .await;
    store.advance_inbox_rows(&second, &positions).await.unwrap();
    // Someone renames Bayko in Andrew's row, in place (same key, same last message).
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(keys::inbox_pk(pair.andrew.uuid)))
        .key("sk", AttributeValue::S(second.created_at.clone()))
        .update_expression("SET user_display_name = :name")
        .expression_attribute_values(":name", AttributeValue::S("Bayko Renamed".into()))
        .send()
        .await
        .unwrap();
    let third = pair
        .reply("2025-06-01T10:00:02.000000+00:00", "third")
        .await;

    let advance = store.advance_inbox_rows(&third, &positions).await.unwrap();

    assert!(!advance.hinted, "the hint's conditions failed: {advance:?}");
    let andrews = inbox(store, pair.andrew.uuid).await;
    assert_eq!(andrews[0].other.display_name, "Bayko Renamed");
    assert_rows_at(store, &pair.members(), &third).await;
}
