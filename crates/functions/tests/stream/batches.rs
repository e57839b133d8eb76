//! Batches applied: every conversation to its newest message, at two requests each (one
//! once this environment knows where the rows are), replays and races changing nothing, and
//! unread counts exact however batches split.

use crate::support::recorded::InboxRowMover;
use aws_lambda_events::dynamodb::EventRecord;
use messaging::Timestamp;
use messaging::store::RowPositions;
use testkit::TestTable;

use crate::{
    Cast, Stream, at, cast, conversation, event, inbox, last_of, pk, rows_by_group, snapshot, text,
    two_conversations, unread,
};

#[tokio::test]
async fn every_record_of_a_multi_conversation_batch_is_applied() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ab = conversation(
        &table,
        &andrew,
        &bayko,
        "2024-12-31T23:59:00.000000+00:00",
        5,
    )
    .await;
    let al = conversation(
        &table,
        &andrew,
        &londo,
        "2025-01-01T00:00:10.000000+00:00",
        3,
    )
    .await;
    let bl = conversation(
        &table,
        &bayko,
        &londo,
        "2025-01-01T00:00:20.000000+00:00",
        4,
    )
    .await;
    let records = stream.next_records("MSG#", 12).await;

    let handler = InboxRowMover::new(table.store.clone());
    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.messages, 12);
    assert_eq!(summary.conversations, 3);
    assert_eq!(summary.rows_moved, 6);
    assert_eq!(summary.malformed, 0);
    assert_eq!(
        summary.skipped,
        records.len() - 12,
        "users, pairs, memberships, inbox rows"
    );
    for (user, expected) in [
        (&andrew, vec![(&ab, 4), (&al, 2)]),
        (&bayko, vec![(&ab, 4), (&bl, 3)]),
        (&londo, vec![(&al, 2), (&bl, 3)]),
    ] {
        let rows = rows_by_group(&table, user).await;
        assert_eq!(rows.len(), expected.len());
        for (messages, newest) in expected {
            let last = &messages[newest];
            assert_eq!(
                rows[&last.group_uuid],
                (last.text.clone(), last.created_at.clone()),
                "{}'s row of {}",
                user.handle,
                last.group_uuid
            );
        }
    }
    // Newest conversation first in every inbox.
    assert_eq!(inbox(&table, &londo).await[0].group_uuid, bl[0].group_uuid);
}

#[tokio::test]
async fn a_batch_costs_two_requests_per_conversation() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    conversation(
        &table,
        &andrew,
        &bayko,
        "2025-02-01T10:00:00.000000+00:00",
        30,
    )
    .await;
    conversation(
        &table,
        &andrew,
        &londo,
        "2025-02-01T11:00:00.000000+00:00",
        30,
    )
    .await;
    let records = stream.next_records("MSG#", 60).await;
    table.requests.reset();
    InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert_eq!(
        table.requests.of("Query"),
        2,
        "{:?}",
        table.requests.snapshot()
    );
    assert_eq!(table.requests.of("TransactWriteItems"), 2);
    assert_eq!(table.requests.total(), 4);
}

#[tokio::test]
async fn replaying_a_batch_changes_nothing() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    conversation(
        &table,
        &andrew,
        &bayko,
        "2025-03-01T08:00:00.000000+00:00",
        4,
    )
    .await;
    conversation(
        &table,
        &londo,
        &bayko,
        "2025-03-01T09:00:00.000000+00:00",
        2,
    )
    .await;
    let records = stream.next_records("MSG#", 6).await;
    let handler = InboxRowMover::new(table.store.clone());
    handler.handle(&event(&records)).await;
    let before = snapshot(&table).await;
    for _ in 0..3 {
        let (response, summary) = handler.handle(&event(&records)).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(summary.rows_moved, 0);
        assert_eq!(summary.rows_current, 4);
    }
    assert_eq!(snapshot(&table).await, before);
}

#[tokio::test]
async fn an_older_message_after_a_newer_one_moves_nothing_and_counts_once() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    // m0 and m2 are andrew's, m1 and m3 bayko's.
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-04-01T08:00:00.000000+00:00",
        4,
    )
    .await;
    let records = stream.next_records("MSG#", 4).await;
    let message_records: Vec<EventRecord> = records
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let handler = InboxRowMover::new(table.store.clone());
    let group = messages[0].group_uuid;

    // Newest first, then each older one alone (as messages committed after a newer one
    // arrive), then all of them in reverse order.
    handler.handle(&event(&message_records[3..4])).await;
    let newest = (messages[3].text.clone(), messages[3].created_at.clone());
    // m2 is new to bayko and m1 to andrew: counted in place; m0 was counted when the
    // conversation started.
    for (older, recounted) in [(2, 1), (1, 1), (0, 0)] {
        let (_, summary) = handler
            .handle(&event(&message_records[older..=older]))
            .await;
        assert_eq!(summary.rows_moved, recounted, "m{older}");
        assert_eq!(rows_by_group(&table, &bayko).await[&group], newest);
    }
    let before = snapshot(&table).await;
    let reversed: Vec<EventRecord> = message_records.iter().rev().cloned().collect();
    let (_, summary) = handler.handle(&event(&reversed)).await;
    assert_eq!(summary.rows_moved, 0);
    assert_eq!(snapshot(&table).await, before, "nothing counted twice");
    for user in [&andrew, &bayko] {
        assert_eq!(rows_by_group(&table, user).await[&group], newest);
        let row = inbox(&table, user)
            .await
            .into_iter()
            .find(|row| row.group_uuid == group)
            .unwrap();
        assert_eq!(row.unread, 2, "{}: the other's two messages", user.handle);
    }
}

#[tokio::test]
async fn racing_handlers_leave_one_row_per_member_at_the_newest_message() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-07-01T08:00:00.000000+00:00",
        12,
    )
    .await;
    let records: Vec<EventRecord> = stream
        .next_records("MSG#", 12)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let group = messages[0].group_uuid;
    // Eight handlers, each with its own client, on overlapping slices of the stream.
    let handlers: Vec<InboxRowMover> = (0..8)
        .map(|_| InboxRowMover::new(table.store_with_own_client()))
        .collect();
    let runs = handlers.iter().enumerate().map(|(i, handler)| {
        // Half the handlers see the newest message, half stop earlier.
        let start = i % 4;
        let end = if i % 2 == 0 { records.len() } else { start + 6 };
        let slice = event(&records[start..end]);
        async move { handler.handle(&slice).await }
    });
    let results = futures_util::future::join_all(runs).await;
    for (response, _) in &results {
        assert!(response.batch_item_failures.is_empty());
    }
    let newest = (messages[11].text.clone(), messages[11].created_at.clone());
    for user in [&andrew, &bayko] {
        let rows = rows_by_group(&table, user).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[&group], newest);
    }
}

#[tokio::test]
async fn unread_counts_each_message_from_the_other_once_however_batches_split_and_replay() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    // Andrew sends m0, m2, m4; Bayko m1, m3, m5.
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-05-01T08:00:00.000000+00:00",
        6,
    )
    .await;
    let group = messages[0].group_uuid;
    let records: Vec<EventRecord> = stream
        .next_records("MSG#", 6)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let handler = InboxRowMover::new(table.store.clone());

    handler.handle(&event(&records[..2])).await;
    assert_eq!(unread(&table, &andrew, group).await, 1);
    assert_eq!(unread(&table, &bayko, group).await, 1);
    handler.handle(&event(&records[2..5])).await;
    let settled = (
        unread(&table, &andrew, group).await,
        unread(&table, &bayko, group).await,
    );
    assert_eq!(settled, (2, 3));
    // Lambda retrying the whole stretch from the start, then a batch overlapping it.
    handler.handle(&event(&records[..5])).await;
    handler.handle(&event(&records[3..])).await;
    assert_eq!(unread(&table, &andrew, group).await, 3);
    assert_eq!(unread(&table, &bayko, group).await, 3);
    let before = snapshot(&table).await;
    for _ in 0..2 {
        handler.handle(&event(&records)).await;
        InboxRowMover::new(table.store.clone())
            .with_positions(RowPositions::disabled())
            .handle(&event(&records[1..4]))
            .await;
    }
    assert_eq!(snapshot(&table).await, before, "replays count nothing");
}

#[tokio::test]
async fn the_next_batch_moves_rows_this_environment_placed_in_one_request_each() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let (ab, al, records) = two_conversations(&table, &cast, &mut stream).await;
    let handler = InboxRowMover::new(table.store.clone());
    handler.handle(&event(&records)).await;
    let later = |i: i64| {
        Timestamp::from_datetime(
            at("2025-10-01T09:00:00.000000+00:00").as_datetime() + time::Duration::seconds(i),
        )
    };
    let mut next = Vec::new();
    for (i, group) in [ab[0].group_uuid, al[0].group_uuid].into_iter().enumerate() {
        let message = table
            .store
            .append_message(&cast.andrew, group, text("next"), later(i as i64))
            .await
            .unwrap();
        next.push(message);
    }
    let records = stream.next_records("MSG#", 2).await;
    table.requests.reset();

    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.hinted_conversations, 2, "{summary:?}");
    assert_eq!(summary.index_reads, 0);
    assert_eq!(table.requests.of("TransactWriteItems"), 2);
    assert_eq!(table.requests.total(), 2, "{:?}", table.requests.snapshot());
    for user in [&cast.andrew, &cast.bayko] {
        assert_eq!(
            rows_by_group(&table, user).await[&ab[0].group_uuid],
            last_of(&next[..1])
        );
    }
}

#[tokio::test]
async fn a_fifty_member_group_moves_in_one_transaction_counts_every_sender_and_replays_nothing() {
    let table = TestTable::new().await;
    let mut members = Vec::new();
    for i in 0..50 {
        members.push(table.user(&format!("member{i:02}")).await);
    }
    let mut stream = Stream::of(&table).await;
    let name = messaging::validate::GroupName::parse("Fifty").unwrap();
    let first = table
        .store
        .create_group(
            &members[0],
            &name,
            &members[1..],
            text("welcome"),
            at("2025-09-01T08:00:00.000000+00:00"),
        )
        .await
        .unwrap();
    let group = first.group_uuid;
    let mut messages = vec![first];
    for (i, sender) in [3usize, 49, 3, 17].into_iter().enumerate() {
        let when = format!("2025-09-01T08:00:0{}.000000+00:00", i + 1);
        let message = table
            .store
            .append_message(&members[sender], group, text(&format!("m{i}")), at(&when))
            .await
            .unwrap();
        messages.push(message);
    }
    let records = stream.next_records("MSG#", 5).await;
    table.requests.reset();

    let handler = InboxRowMover::new(table.store.clone());
    let (response, summary) = handler.handle(&event(&records)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rows_moved, 50);
    assert_eq!(
        table.requests.of("Query"),
        1,
        "{:?}",
        table.requests.snapshot()
    );
    assert_eq!(
        table.requests.of("TransactWriteItems"),
        1,
        "100 items, one transaction"
    );
    let newest = messages.last().unwrap();
    for (i, member) in members.iter().enumerate() {
        let row = inbox(&table, member)
            .await
            .into_iter()
            .find(|row| row.group_uuid == group)
            .unwrap();
        assert_eq!(row.last_message_at, newest.created_at);
        assert_eq!(row.other.handle, "member17", "the last sender");
        let expected = messages
            .iter()
            .filter(|m| m.sender.uuid != member.uuid)
            .count();
        assert_eq!(row.unread as usize, expected, "member{i:02}");
    }
    let before = snapshot(&table).await;
    handler.handle(&event(&records)).await;
    InboxRowMover::new(table.store.clone())
        .handle(&event(&records[2..]))
        .await;
    assert_eq!(snapshot(&table).await, before, "replays change nothing");
}
