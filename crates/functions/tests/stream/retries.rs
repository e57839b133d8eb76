//! What is reported for retry, from the failed conversation's first record, and converges
//! when retried: failed and rejected transactions, an index that lags (DynamoDB's behaviour
//! that DynamoDB Local does not show).

use crate::support::recorded::InboxRowMover;
use messaging::Message;
use testkit::{FailRequests, Failure, IndexFault, LaggingIndex, TestTable};

use crate::{
    Cast, Stream, cast, conversation, event, first_of, first_record_of, inbox, last_of, pk,
    rows_by_group, two_conversations, unread,
};

#[tokio::test]
async fn a_failed_conversation_is_reported_and_a_retry_from_it_converges() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let first = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-08-01T08:00:00.000000+00:00",
        3,
    )
    .await;
    let failing = conversation(
        &table,
        &andrew,
        &londo,
        "2025-08-01T08:10:00.000000+00:00",
        3,
    )
    .await;
    let last = conversation(
        &table,
        &bayko,
        &londo,
        "2025-08-01T08:20:00.000000+00:00",
        3,
    )
    .await;
    let records = stream.next_records("MSG#", 9).await;
    let before: Vec<_> = [&andrew, &bayko, &londo]
        .iter()
        .map(|user| (user.uuid, user.handle.clone()))
        .collect();

    let fail = FailRequests::mentioning(
        "TransactWriteItems",
        failing[0].group_uuid.to_string(),
        Failure::Network,
    );
    let handler = InboxRowMover::new(table.store_with(fail.clone()));
    let (response, summary) = handler.handle(&event(&records)).await;

    assert_eq!(summary.failed_conversations, 1);
    let first_failing_record = records
        .iter()
        .position(|r| pk(r) == format!("MSG#{}", failing[0].group_uuid))
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        records[first_failing_record].change.sequence_number
    );
    // The other conversations were applied, the failing one kept its rows as they were.
    let newest = |messages: &[Message]| {
        let m = messages.last().unwrap();
        (m.text.clone(), m.created_at.clone())
    };
    assert_eq!(
        rows_by_group(&table, &bayko).await[&first[0].group_uuid],
        newest(&first)
    );
    assert_eq!(
        rows_by_group(&table, &bayko).await[&last[0].group_uuid],
        newest(&last)
    );
    for user in [&andrew, &londo] {
        let row = &rows_by_group(&table, user).await[&failing[0].group_uuid];
        assert_eq!(row.1, failing[0].created_at, "still present, not moved");
    }
    drop(before);

    // Lambda retries from the reported record; with the fault gone it converges.
    fail.heal();
    let (response, _) = handler
        .handle(&event(&records[first_failing_record..]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    for user in [&andrew, &londo] {
        assert_eq!(
            rows_by_group(&table, user).await[&failing[0].group_uuid],
            newest(&failing)
        );
    }
    for user in [&bayko, &londo] {
        assert_eq!(
            rows_by_group(&table, user).await[&last[0].group_uuid],
            newest(&last)
        );
    }
    // The retry replayed `last` (applied the first time) and counted nothing twice: in
    // each conversation the starter sent m0 and m2, the other m1.
    for messages in [&first, &failing, &last] {
        let group = messages[0].group_uuid;
        let starter = messages[0].sender.uuid;
        for user in [&andrew, &bayko, &londo] {
            if inbox(&table, user)
                .await
                .iter()
                .any(|r| r.group_uuid == group)
            {
                let expected = if user.uuid == starter { 1 } else { 2 };
                assert_eq!(
                    unread(&table, user, group).await,
                    expected,
                    "{}",
                    user.handle
                );
            }
        }
    }
}

#[tokio::test]
async fn an_index_that_shows_no_rows_yet_never_passes_for_nothing_to_do() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    // The first reads of the index show none of the rows, as right after they were written.
    let index = LaggingIndex::new().then(IndexFault::ShowNothing, 3);
    let handler = InboxRowMover::new(table.store_with(index.clone())).with_concurrency(1);

    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty(), "{summary:?}");
    assert_eq!(index.pending(), 0);
    assert_eq!(summary.rows_moved, 4, "{summary:?}");
    assert_eq!(summary.index_reads, 5, "three empty reads, then one each");
    for user in [&cast.andrew, &cast.bayko] {
        assert_eq!(
            rows_by_group(&table, user).await[&ab[0].group_uuid],
            last_of(&ab)
        );
    }
    for user in [&cast.andrew, &cast.londo] {
        assert_eq!(
            rows_by_group(&table, user).await[&al[0].group_uuid],
            last_of(&al)
        );
    }
}

#[tokio::test]
async fn an_index_that_does_not_catch_up_is_reported_for_retry_and_the_retry_converges() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    let handler = InboxRowMover::new(
        table.store_with(LaggingIndex::new().then(IndexFault::ShowNothing, 1000)),
    );

    let (response, summary) = handler.handle(&event(&records)).await;

    assert_eq!(summary.failed_conversations, 2, "{summary:?}");
    assert_eq!(summary.abandoned_conversations, 0);
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, ab[0].group_uuid)
    );
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&ab[0].group_uuid],
        first_of(&ab),
        "nothing moved on a view that showed nothing"
    );

    // Lambda retries the batch from there; by then the index has caught up.
    let (response, _) = InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&ab[0].group_uuid],
        last_of(&ab)
    );
    assert_eq!(
        rows_by_group(&table, &cast.londo).await[&al[0].group_uuid],
        last_of(&al)
    );
}

#[tokio::test]
async fn a_rejected_transaction_is_reported_for_retry_not_skipped() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    let reject = FailRequests::mentioning(
        "TransactWriteItems",
        al[0].group_uuid.to_string(),
        Failure::Rejected,
    );
    let handler = InboxRowMover::new(table.store_with(reject.clone()));

    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(reject.failed() > 0);
    assert_eq!(summary.failed_conversations, 1, "{summary:?}");
    assert_eq!(summary.abandoned_conversations, 0);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_record_of(&records, al[0].group_uuid)
    );
    assert_eq!(
        rows_by_group(&table, &cast.bayko).await[&ab[0].group_uuid],
        last_of(&ab)
    );
}
