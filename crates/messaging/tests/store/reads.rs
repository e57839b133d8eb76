//! Marking read: two requests, nothing more when already read; the newest page marks up to
//! what it showed; reads racing fan-outs leave exact unread counts.

use std::collections::HashMap;

use messaging::coalesce::Newest;
use messaging::store::{MarkedRead, ReadUpTo, RowPositions};
use messaging::{PageRequest, StoreError};
use testkit::{IndexFault, LaggingIndex, Refusal, RefusingClient, TestTable};
use uuid::Uuid;

use crate::{assert_unread_is_exact, cold, group_of, row_of, say};

#[tokio::test]
async fn marking_read_is_two_requests_and_nothing_more_when_already_read() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let hello = say(&table, &members[1], group, 1, "hello").await;
    let batch = Newest::of([hello.clone()]).unwrap();
    table
        .store
        .advance_conversation(&batch, &cold())
        .await
        .unwrap();
    assert_eq!(row_of(&table.store, members[2].uuid, group).await.unread, 2);
    table.requests.reset();

    let marked = table
        .store
        .mark_read(&members[2], group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 0 });
    assert_eq!(table.requests.of("Query"), 1);
    // The row and the reader's receipt, together.
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.total(), 2);
    let row = row_of(&table.store, members[2].uuid, group).await;
    assert_eq!((row.unread, row.unread_at.len()), (0, 0));
    assert_eq!(row.read_through.as_deref(), Some(hello.created_at.as_str()));
    table.requests.reset();
    let again = table
        .store
        .mark_read(&members[2], group, &ReadUpTo::Row)
        .await
        .unwrap();
    assert_eq!(again, MarkedRead::AlreadyRead);
    assert_eq!(table.requests.total(), 1);
    // Someone else's read is theirs alone.
    assert_eq!(row_of(&table.store, members[1].uuid, group).await.unread, 1);
    let stranger = table.user("stranger").await;
    let none = table
        .store
        .mark_read(&stranger, group, &ReadUpTo::Row)
        .await
        .unwrap();
    assert_eq!(none, MarkedRead::NoRow);
}

#[tokio::test]
async fn the_newest_page_marks_read_up_to_what_it_showed_and_no_further() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let reader = &members[2];
    let page = PageRequest::new(20, None).unwrap();
    // Committed but not yet fanned out: the page shows it, the row does not.
    let seen = say(&table, &members[1], group, 1, "seen on the page").await;

    let read = table
        .store
        .read_messages(reader, group, &page)
        .await
        .unwrap();

    assert_eq!(read.items.last(), Some(&seen));
    let row = row_of(&table.store, reader.uuid, group).await;
    assert_eq!(row.unread, 0);
    assert_eq!(row.read_through.as_deref(), Some(seen.created_at.as_str()));
    // The fan-out then moves the row past it: what the page showed never counts.
    let unseen = say(&table, &members[0], group, 2, "not seen yet").await;
    let batch = Newest::of([seen.clone(), unseen.clone()]).unwrap();
    table
        .store
        .advance_conversation(&batch, &cold())
        .await
        .unwrap();
    assert_eq!(row_of(&table.store, reader.uuid, group).await.unread, 1);
    // An older page (a cursor) reads without marking anything.
    let older = PageRequest::new(1, None).unwrap();
    let newest_page = table
        .store
        .list_messages(reader.uuid, group, &older)
        .await
        .unwrap();
    let cursor = newest_page.next_cursor.unwrap();
    let second_page = older.with_cursor(Some(cursor));
    table
        .store
        .read_messages(reader, group, &second_page)
        .await
        .unwrap();
    assert_eq!(row_of(&table.store, reader.uuid, group).await.unread, 1);
    // A page read before the fan-out moved the row (it ended at `unseen`), marked after:
    // the row already counts a message the page did not show, which stays unread.
    let shown = unseen.created_at.clone();
    let late = say(&table, &members[1], group, 3, "after the page").await;
    table
        .store
        .advance_conversation(&Newest::of([late.clone()]).unwrap(), &cold())
        .await
        .unwrap();
    assert_eq!(row_of(&table.store, reader.uuid, group).await.unread, 2);
    let marked = table
        .store
        .mark_read(reader, group, &ReadUpTo::Message(shown))
        .await
        .unwrap();
    assert_eq!(marked, MarkedRead::Marked { unread: 1 });
    assert_unread_is_exact(&table.store, reader, &[first, seen, unseen, late]).await;
}

#[tokio::test]
async fn a_fan_out_that_read_before_a_read_and_writes_after_it_is_cancelled_and_recounts() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let reader = &members[2];
    // The stream environment's hint is its view of the rows, taken before the read.
    let positions = RowPositions::default();
    table
        .store
        .advance_inbox_rows(&first, &positions)
        .await
        .unwrap();
    let m1 = say(&table, &members[1], group, 1, "one").await;
    table
        .store
        .advance_conversation(&Newest::of([m1.clone()]).unwrap(), &positions)
        .await
        .unwrap();
    let m2 = say(&table, &members[0], group, 2, "two").await;

    // The reader reads everything the rows show, while m2 is on its way.
    table
        .store
        .mark_read(reader, group, &ReadUpTo::Row)
        .await
        .unwrap();
    let advance = table
        .store
        .advance_conversation(&Newest::of([m2.clone()]).unwrap(), &positions)
        .await
        .unwrap();

    assert!(!advance.hinted, "the read broke the hint's conditions");
    let row = row_of(&table.store, reader.uuid, group).await;
    assert_eq!(row.unread, 1, "only the message after the read");
    assert_unread_is_exact(&table.store, reader, &[first, m1, m2]).await;
}

#[tokio::test]
async fn a_read_that_read_the_row_before_a_fan_out_and_writes_after_it_re_reads() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let reader = &members[2];
    let index = LaggingIndex::new();
    let store = table.store_with(index.clone());
    let m1 = say(&table, &members[1], group, 1, "one").await;
    store
        .advance_conversation(&Newest::of([m1.clone()]).unwrap(), &cold())
        .await
        .unwrap();
    let m2 = say(&table, &members[0], group, 2, "two").await;
    store
        .advance_conversation(&Newest::of([m2.clone()]).unwrap(), &cold())
        .await
        .unwrap();
    // The read's first look at the row sees it where it was before m2 moved it.
    let index = index.then(IndexFault::OldPositions, 1);
    table.requests.reset();

    let marked = store
        .mark_read(reader, group, &ReadUpTo::Message(m1.created_at.clone()))
        .await
        .unwrap();

    assert_eq!(index.pending(), 0);
    assert_eq!(marked, MarkedRead::Marked { unread: 1 });
    assert_eq!(
        table.requests.of("TransactWriteItems"),
        2,
        "the stale write failed"
    );
    assert_unread_is_exact(&table.store, reader, &[first, m1, m2]).await;
}

/// DynamoDB's index may show a moved row at its old position for a while ("Global
/// secondary indexes: eventually consistent"); DynamoDB Local never does. After the stale
/// write fails, the row is read from the table, so an index that keeps lagging does not
/// make marking read fail.
#[tokio::test]
async fn a_read_whose_index_keeps_showing_the_old_row_reads_the_table_and_marks() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let reader = &members[2];
    let index = LaggingIndex::new();
    let store = table.store_with(index.clone());
    let m1 = say(&table, &members[1], group, 1, "one").await;
    store
        .advance_conversation(&Newest::of([m1.clone()]).unwrap(), &cold())
        .await
        .unwrap();
    let m2 = say(&table, &members[0], group, 2, "two").await;
    store
        .advance_conversation(&Newest::of([m2.clone()]).unwrap(), &cold())
        .await
        .unwrap();
    // Every index read shows the row where it was before m2 moved it.
    let index = index.then(IndexFault::OldPositions, 10);
    let reads_before = index.reads();
    table.requests.reset();

    let marked = store
        .mark_read(reader, group, &ReadUpTo::Message(m1.created_at.clone()))
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 1 });
    assert_eq!(index.reads() - reads_before, 1, "the index is read once");
    assert_eq!(
        table.requests.of("TransactWriteItems"),
        2,
        "the stale write failed"
    );
    assert_unread_is_exact(&table.store, reader, &[first, m1, m2]).await;
}

#[tokio::test]
async fn reads_racing_fan_outs_leave_zero_or_exactly_the_messages_after_the_read() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 4).await;
    let group = first.group_uuid;
    let mut messages = vec![first];
    for round in 0..6u32 {
        let mut batch = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let s = 1 + round * 10 + u32::try_from(i).unwrap();
            batch.push(say(&table, member, group, s, &format!("r{round} m{i}")).await);
        }
        messages.extend(batch.iter().cloned());
        let update = Newest::of(batch).unwrap();
        // Two stream environments (a retry racing the original), and every member reading,
        // all at once.
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
        for member in &members {
            let store = table.store.clone();
            let reader = member.clone();
            let up_to = if round % 2 == 0 {
                ReadUpTo::Row
            } else {
                ReadUpTo::Message(messages[messages.len() - 2].created_at.clone())
            };
            tasks.push(tokio::spawn(async move {
                store.mark_read(&reader, group, &up_to).await.map(|_| ())
            }));
        }
        for task in tasks {
            match task.await.unwrap() {
                // Bounded retries may give up under this much contention: the stream
                // reports it for retry, the API answers 503. Never a wrong count.
                Ok(()) | Err(StoreError::Contention { .. }) => {}
                Err(err) => panic!("{err}"),
            }
        }
        // The retry Lambda would make.
        table
            .store
            .advance_conversation(&update, &cold())
            .await
            .unwrap();
        for member in &members {
            assert_unread_is_exact(&table.store, member, &messages).await;
        }
    }
    let by_owner: HashMap<Uuid, u32> = {
        let mut map = HashMap::new();
        for member in &members {
            let row = row_of(&table.store, member.uuid, group).await;
            assert_eq!(row.last_message_at(), messages.last().unwrap().created_at);
            map.insert(member.uuid, row.unread);
        }
        map
    };
    assert_eq!(by_owner.len(), 4);
}

// --- A transaction holding the row: DynamoDB's TransactionConflictException ---

/// A group of three whose third member has the first message and Bayko's hello unread.
async fn unread_row(table: &TestTable) -> (Vec<messaging::User>, Uuid) {
    let (members, first) = group_of(table, 3).await;
    let group = first.group_uuid;
    let hello = say(table, &members[1], group, 1, "hello").await;
    table
        .store
        .advance_conversation(&Newest::of([hello]).unwrap(), &cold())
        .await
        .unwrap();
    assert_eq!(row_of(&table.store, members[2].uuid, group).await.unread, 2);
    (members, group)
}

#[tokio::test]
async fn marking_read_while_a_transaction_holds_the_row_re_reads_it_and_marks() {
    let table = TestTable::new().await;
    let (members, group) = unread_row(&table).await;
    let dynamodb = RefusingClient::new();
    let store = dynamodb.store_for(&table);
    dynamodb.refuse_times("TransactWriteItems", Refusal::TransactionConflict, 1);
    table.requests.reset();

    let marked = store
        .mark_read(&members[2], group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 0 });
    assert_eq!(dynamodb.refused(), 1, "the SDK does not retry it itself");
    assert_eq!(
        (
            table.requests.of("Query"),
            table.requests.of("TransactWriteItems")
        ),
        (2, 2),
        "the row is read again before the second write"
    );
    assert_eq!(row_of(&table.store, members[2].uuid, group).await.unread, 0);
}

#[tokio::test]
async fn the_newest_page_marks_read_after_a_transaction_held_the_row() {
    let table = TestTable::new().await;
    let (members, group) = unread_row(&table).await;
    let dynamodb = RefusingClient::new();
    let store = dynamodb.store_for(&table);
    dynamodb.refuse_times("TransactWriteItems", Refusal::TransactionConflict, 1);

    let page = store
        .read_messages(&members[2], group, &PageRequest::new(20, None).unwrap())
        .await
        .unwrap();

    assert_eq!(page.items.len(), 2);
    assert_eq!(dynamodb.refused(), 1);
    assert_eq!(
        row_of(&table.store, members[2].uuid, group).await.unread,
        0,
        "the count does not silently stay"
    );
}

#[tokio::test]
async fn a_row_that_stays_in_transactions_is_contention() {
    let table = TestTable::new().await;
    let (members, group) = unread_row(&table).await;
    let dynamodb = RefusingClient::new();
    let store = dynamodb.store_for(&table);
    dynamodb.refuse("TransactWriteItems", Refusal::TransactionConflict);

    let error = store
        .mark_read(&members[2], group, &ReadUpTo::Row)
        .await
        .unwrap_err();

    assert!(
        matches!(error, StoreError::Contention { .. }),
        "busy, not a fault: {error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(
        dynamodb.refused(),
        3,
        "one write per read of the row, as many as marking read's attempts"
    );
}
