//! Read receipts: a read raises the reader's receipt (the members list's `read_through`)
//! and tells a direct conversation's other row (its owner's `seen`), in the read's own
//! transaction; never lowered, carried by moves, exact under a lagging index and racing
//! fan-outs.

use messaging::coalesce::Newest;
use messaging::items::ReadReceiptItem;
use messaging::store::{MarkedRead, ReadUpTo, RowPositions};
use messaging::{Message, PageRequest, StoreError, User, keys};
use testkit::{IndexFault, LaggingIndex, Refusal, RefusingClient, TestTable};
use uuid::Uuid;

use crate::{cold, group_of, inbox, row_of, say, second, text, users};

/// A direct conversation Andrew started with `words`, fanned out.
async fn direct(table: &TestTable) -> (User, User, Message) {
    let people = users(table, 2).await;
    let sent = table
        .store
        .send_to_user(&people[0], &people[1], text("hello"), second(1))
        .await
        .unwrap();
    table
        .store
        .advance_inbox_rows(&sent, &cold())
        .await
        .unwrap();
    table.requests.reset();
    (people[0].clone(), people[1].clone(), sent)
}

async fn reply(table: &TestTable, who: &User, to: &Message, s: u32) -> Message {
    let message = say(table, who, to.group_uuid, s, "reply").await;
    table
        .store
        .advance_inbox_rows(&message, &cold())
        .await
        .unwrap();
    message
}

async fn receipt(table: &TestTable, group: Uuid, reader: &User) -> Option<ReadReceiptItem> {
    let key = keys::read_receipt(group, reader.uuid);
    let item = table
        .store
        .client()
        .get_item()
        .table_name(table.store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.pk))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.sk))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    Some(serde_dynamo::from_item(item).unwrap())
}

async fn seen_in_inbox(table: &TestTable, owner: &User, group: Uuid) -> Option<bool> {
    inbox(&table.store, owner.uuid)
        .await
        .into_iter()
        .find(|entry| entry.group_uuid == group)
        .unwrap()
        .seen
}

async fn read_through_of(table: &TestTable, asker: &User, group: Uuid) -> Vec<Option<String>> {
    table
        .store
        .group_members(asker.uuid, group)
        .await
        .unwrap()
        .into_iter()
        .map(|member| member.read_through)
        .collect()
}

#[tokio::test]
async fn a_read_is_seen_by_the_sender_and_listed_until_the_sender_writes_again() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    assert_eq!(seen_in_inbox(&table, &andrew, group).await, Some(false));
    assert_eq!(read_through_of(&table, &andrew, group).await, [None, None]);
    table.requests.reset();

    let marked = table
        .store
        .mark_read(&bayko, group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 0 });
    assert_eq!(
        (
            table.requests.of("Query"),
            table.requests.of("TransactWriteItems"),
            table.requests.total()
        ),
        (1, 1, 2),
        "both rows from one index Query; row, receipt and the other row in one transaction"
    );
    let receipt = receipt(&table, group, &bayko).await.unwrap();
    assert_eq!(receipt.read_through, hello.created_at);
    assert_eq!(receipt.user_handle, bayko.handle.as_str());
    assert_eq!(seen_in_inbox(&table, &andrew, group).await, Some(true));
    // Bayko's own last message is not his: nothing of his to be seen.
    assert_eq!(seen_in_inbox(&table, &bayko, group).await, Some(false));
    // Oldest member first: Andrew has read nothing (his own first message aside).
    assert_eq!(
        read_through_of(&table, &bayko, group).await,
        [None, Some(hello.created_at.clone())]
    );

    // Andrew writes again: his row moves and carries Bayko's read, which is now older.
    let again = reply(&table, &andrew, &hello, 2).await;
    let row = row_of(&table.store, andrew.uuid, group).await;
    assert_eq!(
        row.peer_read_through.as_deref(),
        Some(hello.created_at.as_str())
    );
    assert_eq!(row.last_sender_uuid, Some(andrew.uuid));
    assert_eq!(seen_in_inbox(&table, &andrew, group).await, Some(false));
    // Bayko's newest page marks it, and Andrew sees it.
    table
        .store
        .read_messages(&bayko, group, &PageRequest::new(20, None).unwrap())
        .await
        .unwrap();
    assert_eq!(seen_in_inbox(&table, &andrew, group).await, Some(true));
    assert_eq!(
        receipt_of(&table, group, &bayko).await,
        Some(again.created_at.clone())
    );
}

async fn receipt_of(table: &TestTable, group: Uuid, reader: &User) -> Option<String> {
    receipt(table, group, reader).await.map(|r| r.read_through)
}

#[tokio::test]
async fn an_older_read_never_lowers_a_newer_one() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    let m2 = reply(&table, &andrew, &hello, 2).await;
    let m3 = reply(&table, &andrew, &hello, 3).await;
    table
        .store
        .mark_read(&bayko, group, &ReadUpTo::Message(m3.created_at.clone()))
        .await
        .unwrap();

    let older = table
        .store
        .mark_read(&bayko, group, &ReadUpTo::Message(m2.created_at.clone()))
        .await
        .unwrap();

    assert_eq!(older, MarkedRead::AlreadyRead);
    assert_eq!(
        receipt_of(&table, group, &bayko).await,
        Some(m3.created_at.clone())
    );
    let row = row_of(&table.store, andrew.uuid, group).await;
    assert_eq!(row.peer_read_through, Some(m3.created_at));
}

/// Two devices of one reader, reading up to different messages at once, many times over:
/// the receipt and the other row end at the furthest read, whatever the interleaving.
#[tokio::test]
async fn reads_from_two_devices_at_once_end_at_the_furthest() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    let mut messages = vec![hello.clone()];
    for s in 2..8 {
        messages.push(reply(&table, &andrew, &hello, s).await);
    }
    let mut tasks = Vec::new();
    for message in &messages {
        for _device in 0..2 {
            let store = table.store.clone();
            let bayko = bayko.clone();
            let up_to = ReadUpTo::Message(message.created_at.clone());
            tasks.push(tokio::spawn(async move {
                store.mark_read(&bayko, group, &up_to).await
            }));
        }
    }
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) | Err(StoreError::Contention { .. }) => {}
            Err(err) => panic!("{err}"),
        }
    }
    // Whatever gave up under contention, a last read settles it (the app reads again).
    table
        .store
        .mark_read(&bayko, group, &ReadUpTo::Row)
        .await
        .unwrap();
    let newest = messages.last().unwrap().created_at.clone();
    assert_eq!(
        receipt_of(&table, group, &bayko).await,
        Some(newest.clone())
    );
    let row = row_of(&table.store, andrew.uuid, group).await;
    assert_eq!(row.peer_read_through, Some(newest));
    assert_eq!(row_of(&table.store, bayko.uuid, group).await.unread, 0);
}

/// DynamoDB's index may show a moved row where it was ("Global secondary indexes:
/// eventually consistent", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads):
/// the other row's update then fails its condition, and that row is read from the table.
#[tokio::test]
async fn a_lagging_index_showing_the_other_row_where_it_was_loses_no_read() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    let index = LaggingIndex::new();
    let store = table.store_with(index.clone());
    // Seen by this client's index at the first position (Andrew's read looks them up),
    // then moved by Andrew's reply.
    store
        .mark_read(&andrew, group, &ReadUpTo::Row)
        .await
        .unwrap();
    let m2 = say(&table, &andrew, group, 2, "again").await;
    store
        .advance_conversation(
            &Newest::of([m2.clone()]).unwrap(),
            &RowPositions::disabled(),
        )
        .await
        .unwrap();
    let index = index.then(IndexFault::OldPositions, 10);

    let marked = store
        .mark_read(&bayko, group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 0 });
    assert_eq!(index.pending(), 9, "the index is read once");
    assert_eq!(
        receipt_of(&table, group, &bayko).await,
        Some(m2.created_at.clone())
    );
    let row = row_of(&table.store, andrew.uuid, group).await;
    assert_eq!(row.peer_read_through, Some(m2.created_at.clone()));
    assert_eq!(seen_in_inbox(&table, &andrew, group).await, Some(true));
}

/// An index that does not show the other row yet: the table has it.
#[tokio::test]
async fn an_index_hiding_the_other_row_still_tells_it() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    let index = LaggingIndex::new().then(IndexFault::Hide(1), 1);
    let store = table.store_with(index.clone());

    // Hide(1) leaves out one row: either Bayko's (then the read finds nothing to mark on
    // this look and looks again) or Andrew's (then the table is asked).
    let marked = store
        .mark_read(&bayko, group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 0 });
    assert_eq!(
        receipt_of(&table, group, &bayko).await,
        Some(hello.created_at.clone())
    );
    let row = row_of(&table.store, andrew.uuid, group).await;
    assert_eq!(row.peer_read_through, Some(hello.created_at));
}

/// A fan-out's transaction holding a row (`TransactionConflict`): the read re-reads and
/// lands; a read that keeps meeting it is contention (503), never a 500 or a lost read.
#[tokio::test]
async fn conflicts_re_read_and_land() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    let dynamodb = RefusingClient::new();
    let store = dynamodb.store_for(&table);
    dynamodb.refuse_times("TransactWriteItems", Refusal::TransactionConflict, 2);

    let marked = store
        .mark_read(&bayko, group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 0 });
    assert_eq!(dynamodb.refused(), 2);
    assert_eq!(
        receipt_of(&table, group, &bayko).await,
        Some(hello.created_at.clone())
    );
    assert_eq!(
        row_of(&table.store, andrew.uuid, group)
            .await
            .peer_read_through,
        Some(hello.created_at)
    );
}

#[tokio::test]
async fn a_group_lists_every_members_read_and_its_inbox_items_say_nothing_of_seen() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let hi = say(&table, &members[1], group, 1, "hi").await;
    table.store.advance_inbox_rows(&hi, &cold()).await.unwrap();
    table.requests.reset();

    table
        .store
        .mark_read(&members[2], group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(
        table.requests.total(),
        2,
        "a group's read tells no other row: one Query, one transaction"
    );
    assert_eq!(
        read_through_of(&table, &members[0], group).await,
        [None, None, Some(hi.created_at.clone())]
    );
    assert_eq!(seen_in_inbox(&table, &members[1], group).await, None);
    // The members list is still one Query and one BatchGetItem.
    table.requests.reset();
    table
        .store
        .group_members(members[0].uuid, group)
        .await
        .unwrap();
    assert_eq!(
        (
            table.requests.of("Query"),
            table.requests.of("BatchGetItem")
        ),
        (1, 1)
    );
}

/// Fan-outs moving both rows (two stream environments, as a retry racing the original)
/// while both members read: the other member's read a row carries is always exactly the
/// reader's receipt (the two are written together, and a move that read the row before a
/// read is cancelled by its conditions and copies the new value when it re-reads).
#[tokio::test]
async fn reads_racing_fan_outs_never_lose_the_other_members_read() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    for round in 0..6u32 {
        let sender = if round % 2 == 0 { &andrew } else { &bayko };
        let message = say(&table, sender, group, 2 + round, "news").await;
        let update = Newest::of([message.clone()]).unwrap();
        let mut tasks = Vec::new();
        for positions in [RowPositions::default(), RowPositions::disabled()] {
            let store = table.store.clone();
            let update = update.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .advance_conversation(&update, &positions)
                    .await
                    .map(|_| ())
            }));
        }
        for reader in [&andrew, &bayko] {
            let store = table.store.clone();
            let reader = reader.clone();
            let up_to = ReadUpTo::Message(message.created_at.clone());
            tasks.push(tokio::spawn(async move {
                store.mark_read(&reader, group, &up_to).await.map(|_| ())
            }));
        }
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) | Err(StoreError::Contention { .. }) => {}
                Err(err) => panic!("{err}"),
            }
        }
        table
            .store
            .advance_conversation(&update, &cold())
            .await
            .unwrap();
        for (owner, reader) in [(&andrew, &bayko), (&bayko, &andrew)] {
            let row = row_of(&table.store, owner.uuid, group).await;
            assert_eq!(row.last_message_at(), message.created_at);
            assert_eq!(
                row.peer_read_through,
                receipt_of(&table, group, reader).await,
                "round {round}: {}'s row vs {}'s receipt",
                owner.handle,
                reader.handle
            );
        }
    }
}

/// A fan-out that remembers the rows from before a read (its hint) must not write them back:
/// the read changed them, so the hinted transaction's conditions fail, and the rows, re-read
/// from the index, move with the read. (That `peer_read_through` alone cancels a move is
/// `inbox_index`'s unit test: DynamoDB Local serialises the race that needs it.)
#[tokio::test]
async fn a_move_from_a_hint_older_than_a_read_carries_the_read() {
    let table = TestTable::new().await;
    let (andrew, bayko, hello) = direct(&table).await;
    let group = hello.group_uuid;
    let positions = RowPositions::default();
    let m1 = say(&table, &andrew, group, 2, "one").await;
    table
        .store
        .advance_conversation(&Newest::of([m1.clone()]).unwrap(), &positions)
        .await
        .unwrap();
    table
        .store
        .mark_read(&bayko, group, &ReadUpTo::Row)
        .await
        .unwrap();
    let m2 = say(&table, &andrew, group, 3, "two").await;

    let advance = table
        .store
        .advance_conversation(&Newest::of([m2.clone()]).unwrap(), &positions)
        .await
        .unwrap();

    assert!(!advance.hinted, "the hint predates the read: {advance:?}");
    let row = row_of(&table.store, andrew.uuid, group).await;
    assert_eq!(row.last_message_at(), m2.created_at);
    assert_eq!(row.peer_read_through, Some(m1.created_at));
    assert_eq!(seen_in_inbox(&table, &andrew, group).await, Some(false));
}
