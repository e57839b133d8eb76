//! The stream carries changes: `MODIFY` records of edited and deleted messages update every
//! inbox preview of the message, with the guarantees of new messages (conditions, replays,
//! races with the fan-out of newer messages, partial batch failure), and malformed ones are
//! skipped. The changes are written here as `edit` writes them (one `UpdateItem` of the
//! `MSG#` item setting the contract's `change*` attributes), so the records are the table's
//! own.

use std::collections::HashMap;

use crate::support::recorded::InboxRowMover;
use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use messaging::{Message, Timestamp, User};
use testkit::{
    FailRequests, Failure, IndexFault, LaggingIndex, Refusal, RefusingClient, TestTable,
};

use crate::support::logs_of;
use crate::{
    Cast, Stream, at, cast, conversation, event, inbox, pk, rows_by_group, snapshot, text, unread,
};

const EDITED_AT: &str = "2025-11-01T09:00:00.000000+00:00";
const DELETED_AT: &str = "2025-11-01T09:05:00.000000+00:00";

/// One change of a message as the contract writes it: the text and marks, `ADD revision`
/// (edits and deletes), and every `change*` attribute.
async fn change_message(
    table: &TestTable,
    message: &Message,
    kind: &str,
    by: &User,
    set: &[(&str, AttributeValue)],
    extra: &str,
) {
    let mut update = table
        .store
        .client()
        .update_item()
        .table_name(table.store.table())
        .key(
            "pk",
            AttributeValue::S(format!("MSG#{}", message.group_uuid)),
        )
        .key("sk", AttributeValue::S(message.created_at.clone()))
        .expression_attribute_values(":kind", AttributeValue::S(kind.into()))
        .expression_attribute_values(":by", AttributeValue::S(by.uuid.to_string()))
        .expression_attribute_values(":handle", AttributeValue::S(by.handle.to_string()))
        .expression_attribute_values(":name", AttributeValue::S(by.display_name.to_string()))
        .expression_attribute_values(":change_at", AttributeValue::S(EDITED_AT.into()));
    let mut sets = vec![
        "change = :kind".to_owned(),
        "change_by = :by".to_owned(),
        "change_by_handle = :handle".to_owned(),
        "change_by_display_name = :name".to_owned(),
        "change_at = :change_at".to_owned(),
    ];
    for (i, (attribute, value)) in set.iter().enumerate() {
        sets.push(format!("{attribute} = :v{i}"));
        update = update.expression_attribute_values(format!(":v{i}"), value.clone());
    }
    let mut expression = format!("SET {}", sets.join(", "));
    expression.push_str(extra);
    if extra.contains(":one") {
        update = update.expression_attribute_values(":one", AttributeValue::N("1".into()));
    }
    update
        .update_expression(expression)
        .send()
        .await
        .expect("change the message");
}

async fn edit(table: &TestTable, message: &Message, new_text: &str) {
    let by = sender(table, message).await;
    change_message(
        table,
        message,
        "edited",
        &by,
        &[
            ("message", AttributeValue::S(new_text.into())),
            ("edited_at", AttributeValue::S(EDITED_AT.into())),
        ],
        " REMOVE change_emoji ADD revision :one",
    )
    .await;
}

async fn delete(table: &TestTable, message: &Message) {
    let by = sender(table, message).await;
    change_message(
        table,
        message,
        "deleted",
        &by,
        &[
            ("message", AttributeValue::S(String::new())),
            ("deleted_at", AttributeValue::S(DELETED_AT.into())),
        ],
        " REMOVE reactions, change_emoji ADD revision :one",
    )
    .await;
}

async fn sender(table: &TestTable, message: &Message) -> User {
    table
        .store
        .user_by_uuid(message.sender.uuid)
        .await
        .unwrap()
        .expect("the sender exists")
}

/// The next `count` MODIFY records of message items.
async fn modifies(stream: &mut Stream, count: usize) -> Vec<EventRecord> {
    stream
        .next_records("MSG#", count)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#") && r.event_name == "MODIFY")
        .collect()
}

/// Each member's preview of `group`: (text, edited_at, deleted, unread).
async fn previews(
    table: &TestTable,
    users: &[&User],
    group: uuid::Uuid,
) -> HashMap<String, (String, Option<String>, bool, u32)> {
    let mut previews = HashMap::new();
    for user in users {
        let row = inbox(table, user)
            .await
            .into_iter()
            .find(|row| row.group_uuid == group)
            .unwrap_or_else(|| panic!("{} has no row of {group}", user.handle));
        previews.insert(
            user.handle.to_string(),
            (row.last_message, row.edited_at, row.deleted, row.unread),
        );
    }
    previews
}

/// A conversation of Andrew and Bayko whose rows show its second message, applied.
async fn applied_conversation(
    table: &TestTable,
    cast: &Cast,
    stream: &mut Stream,
    start: &str,
) -> Vec<Message> {
    let messages = conversation(table, &cast.andrew, &cast.bayko, start, 2).await;
    let records = stream.next_records("MSG#", 2).await;
    let (response, _) = InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert!(response.batch_item_failures.is_empty());
    messages
}

#[tokio::test]
async fn an_edit_reaches_every_preview_of_the_message_and_a_delete_empties_them() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-01T08:00:00.000000+00:00",
    )
    .await;
    let group = messages[0].group_uuid;
    let users = [&cast.andrew, &cast.bayko];
    let before = previews(&table, &users, group).await;

    edit(&table, &messages[1], "m1, fixed").await;
    let edited = modifies(&mut stream, 1).await;
    let handler = InboxRowMover::new(table.store.clone());
    let (response, summary) = handler.handle(&event(&edited)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.changes, summary.changes_applied), (1, 1));
    assert_eq!(summary.rows_changed, 2);
    for user in users {
        let (text, edited_at, deleted, unread) =
            &previews(&table, &users, group).await[user.handle.as_str()];
        assert_eq!(text, "m1, fixed");
        assert_eq!(edited_at.as_deref(), Some(EDITED_AT));
        assert!(!deleted);
        assert_eq!(
            *unread,
            before[user.handle.as_str()].3,
            "an edit counts nothing"
        );
    }

    delete(&table, &messages[1]).await;
    let deleted = modifies(&mut stream, 1).await;
    let (response, summary) = handler.handle(&event(&deleted)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rows_changed, 2);
    for user in users {
        let (text, edited_at, deleted, unread) =
            &previews(&table, &users, group).await[user.handle.as_str()];
        assert_eq!(text, "", "the text is gone from the preview");
        assert!(deleted);
        assert_eq!(edited_at.as_deref(), Some(EDITED_AT), "edited_at is kept");
        assert_eq!(
            *unread,
            before[user.handle.as_str()].3,
            "a deleted message still counts as one"
        );
    }
    // The rows stay where they were: the message keeps its place.
    assert_eq!(
        rows_by_group(&table, &cast.andrew).await[&group].1,
        messages[1].created_at
    );
}

#[tokio::test]
async fn an_edit_of_a_message_no_preview_shows_writes_nothing() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-02T08:00:00.000000+00:00",
    )
    .await;
    edit(&table, &messages[0], "m0, fixed").await;
    let edited = modifies(&mut stream, 1).await;
    let settled = snapshot(&table).await;
    table.requests.reset();

    // A fresh environment: nothing hinted, every member's row read.
    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event(&edited))
        .await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rows_changed, 0);
    assert_eq!(snapshot(&table).await, settled);
    assert_eq!(table.requests.of("UpdateItem"), 0);
    assert_eq!(table.requests.of("TransactWriteItems"), 0);
    assert_eq!(
        summary.change_reads, 3,
        "the memberships and two members' rows"
    );
}

#[tokio::test]
async fn replayed_change_records_change_nothing() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-03T08:00:00.000000+00:00",
    )
    .await;
    let group = messages[0].group_uuid;
    edit(&table, &messages[1], "fixed").await;
    delete(&table, &messages[1]).await;
    let records = modifies(&mut stream, 2).await;
    let handler = InboxRowMover::new(table.store.clone());
    handler.handle(&event(&records)).await;
    let settled = snapshot(&table).await;

    // The whole batch again, each record alone, and the edit after the delete: in a
    // fresh environment too, so the rows are read, not hinted.
    for replay in [
        records.clone(),
        vec![records[0].clone()],
        vec![records[1].clone(), records[0].clone()],
    ] {
        for handler in [&handler, &InboxRowMover::new(table.store.clone())] {
            table.requests.reset();
            let (response, summary) = handler.handle(&event(&replay)).await;
            assert!(response.batch_item_failures.is_empty());
            assert_eq!(summary.rows_changed, 0);
            assert_eq!(
                table.requests.of("UpdateItem"),
                0,
                "no write, not even refused"
            );
            assert_eq!(snapshot(&table).await, settled);
        }
    }
    let users = [&cast.andrew, &cast.bayko];
    assert!(previews(&table, &users, group).await.values().all(|p| p.2));
}

#[tokio::test]
async fn a_delete_racing_an_edit_ends_deleted() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-04T08:00:00.000000+00:00",
    )
    .await;
    let group = messages[0].group_uuid;
    edit(&table, &messages[1], "fixed").await;
    delete(&table, &messages[1]).await;
    let records = modifies(&mut stream, 2).await;
    let (edit_record, delete_record) = (&records[0], &records[1]);

    // Two environments at once, one with each record (as two retries of split batches
    // could), each writing from its own read.
    let edits = InboxRowMover::new(table.store_with_own_client());
    let deletes = InboxRowMover::new(table.store_with_own_client());
    let (edit_event, delete_event) = (
        event(std::slice::from_ref(edit_record)),
        event(std::slice::from_ref(delete_record)),
    );
    let (edited, deleted) = tokio::join!(edits.handle(&edit_event), deletes.handle(&delete_event));
    assert!(edited.0.batch_item_failures.is_empty());
    assert!(deleted.0.batch_item_failures.is_empty());
    let users = [&cast.andrew, &cast.bayko];
    for (text, _, deleted, _) in previews(&table, &users, group).await.values() {
        assert_eq!(text, "");
        assert!(deleted);
    }
    // And the edit arriving last, on its own, still changes nothing.
    let (_, summary) = edits
        .handle(&event(std::slice::from_ref(edit_record)))
        .await;
    assert_eq!(summary.rows_changed, 0);
    assert!(previews(&table, &users, group).await.values().all(|p| p.2));
}

#[tokio::test]
async fn an_edit_racing_the_fan_out_of_a_newer_message_never_puts_the_older_text_back() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    for (round, start) in [
        "2025-11-05T08:00:00.000000+00:00",
        "2025-11-05T09:00:00.000000+00:00",
        "2025-11-05T10:00:00.000000+00:00",
    ]
    .into_iter()
    .enumerate()
    {
        let messages = applied_conversation(&table, &cast, &mut stream, start).await;
        let group = messages[0].group_uuid;
        edit(&table, &messages[1], "m1, fixed").await;
        let newer = table
            .store
            .append_message(
                &cast.andrew,
                group,
                text("m2"),
                Timestamp::from_datetime(at(start).as_datetime() + time::Duration::seconds(30)),
            )
            .await
            .unwrap();
        let records = stream.next_records("MSG#", 2).await;
        let edit_record: Vec<EventRecord> = records
            .iter()
            .filter(|r| r.event_name == "MODIFY" && pk(r).starts_with("MSG#"))
            .cloned()
            .collect();
        let insert_record: Vec<EventRecord> = records
            .iter()
            .filter(|r| r.event_name == "INSERT" && pk(r).starts_with("MSG#"))
            .cloned()
            .collect();
        // The fan-out reads an index that lags (ghosts of the rows where the edit found
        // them); the edit runs in another environment.
        let lag = LaggingIndex::new().then(IndexFault::Ghosts, 2);
        let fan_out = InboxRowMover::new(table.store_with(lag));
        let edits = InboxRowMover::new(table.store_with_own_client());
        match round {
            0 => {
                edits.handle(&event(&edit_record)).await;
                fan_out.handle(&event(&insert_record)).await;
            }
            1 => {
                fan_out.handle(&event(&insert_record)).await;
                edits.handle(&event(&edit_record)).await;
            }
            _ => {
                let (edit_event, insert_event) = (event(&edit_record), event(&insert_record));
                let (a, b) = tokio::join!(edits.handle(&edit_event), fan_out.handle(&insert_event));
                assert!(a.0.batch_item_failures.is_empty());
                assert!(b.0.batch_item_failures.is_empty());
            }
        }
        let users = [&cast.andrew, &cast.bayko];
        for (handle, (shown, edited_at, deleted, _)) in previews(&table, &users, group).await {
            assert_eq!(shown, "m2", "round {round}: {handle}'s preview");
            assert_eq!(edited_at, None, "round {round}: m2 was never edited");
            assert!(!deleted);
        }
        assert_eq!(
            rows_by_group(&table, &cast.bayko).await[&group].1,
            newer.created_at
        );
    }
}

/// A hint is a read like any other: an environment that moved the rows to a message, and
/// then recounts them for a late, older message, must not write its remembered (pre-edit)
/// text over the edit another environment applied.
#[tokio::test]
async fn a_stale_hint_never_writes_the_text_an_edit_replaced() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = conversation(
        &table,
        &cast.andrew,
        &cast.bayko,
        "2025-11-06T08:00:00.000000+00:00",
        2,
    )
    .await;
    let group = messages[0].group_uuid;
    let records = stream.next_records("MSG#", 2).await;
    let hinted = InboxRowMover::new(table.store.clone());
    hinted.handle(&event(&records)).await;
    let andrew_unread = unread(&table, &cast.andrew, group).await;

    edit(&table, &messages[1], "m1, fixed").await;
    let edited = modifies(&mut stream, 1).await;
    InboxRowMover::new(table.store_with_own_client())
        .handle(&event(&edited))
        .await;
    // Bayko's message committed late: older than m1, so the rows only count it.
    table
        .store
        .append_message(
            &cast.bayko,
            group,
            text("late"),
            at("2025-11-06T08:00:00.500000+00:00"),
        )
        .await
        .unwrap();
    let late = stream.next_records("MSG#", 1).await;

    let (response, summary) = hinted.handle(&event(&late)).await;

    assert!(response.batch_item_failures.is_empty());
    assert!(
        summary.index_reads >= 1,
        "the hint was refused, the index read"
    );
    let users = [&cast.andrew, &cast.bayko];
    let now = previews(&table, &users, group).await;
    for (handle, (shown, edited_at, _, _)) in &now {
        assert_eq!(shown, "m1, fixed", "{handle}'s preview");
        assert_eq!(edited_at.as_deref(), Some(EDITED_AT));
    }
    assert_eq!(
        now["andrewbrown"].3,
        andrew_unread + 1,
        "the late message counted"
    );
}

#[tokio::test]
async fn a_new_message_and_its_changes_in_one_batch_fan_out_its_newest_version() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-07T08:00:00.000000+00:00",
    )
    .await;
    let group = messages[0].group_uuid;
    let newer = table
        .store
        .append_message(
            &cast.bayko,
            group,
            text("typo"),
            at("2025-11-07T08:00:05.000000+00:00"),
        )
        .await
        .unwrap();
    edit(&table, &newer, "no typo").await;
    // And an edit of an older message, which no preview shows once the batch is applied.
    edit(&table, &messages[0], "m0, fixed").await;
    let records = stream.next_records("MSG#", 3).await;
    let batch: Vec<EventRecord> = records
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    assert_eq!(
        batch
            .iter()
            .map(|r| r.event_name.as_str())
            .collect::<Vec<_>>(),
        ["INSERT", "MODIFY", "MODIFY"]
    );
    table.requests.reset();

    let handler = InboxRowMover::new(table.store.clone());
    let (response, summary) = handler.handle(&event(&batch)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.messages, summary.changes), (1, 2));
    assert_eq!(
        summary.changes_applied, 0,
        "folded, or older than the newest"
    );
    assert_eq!(summary.change_reads, 0);
    assert_eq!(table.requests.of("UpdateItem"), 0);
    let users = [&cast.andrew, &cast.bayko];
    for (shown, edited_at, _, _) in previews(&table, &users, group).await.values() {
        assert_eq!(shown, "no typo");
        assert_eq!(edited_at.as_deref(), Some(EDITED_AT));
    }

    // A retry of the batch after its rows moved (the same records): nothing changes.
    let settled = snapshot(&table).await;
    let (_, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event(&batch))
        .await;
    assert_eq!(summary.rows_moved, 0);
    assert_eq!(snapshot(&table).await, settled);
}

/// Lambda may retry from a record after an earlier attempt moved the rows to the message
/// without its edit: the fan-out of the retried batch, with the edit folded in, finds the
/// rows at the message and writes the newer version in place.
#[tokio::test]
async fn a_retry_with_the_edit_updates_rows_already_at_the_message() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-08T08:00:00.000000+00:00",
    )
    .await;
    let group = messages[0].group_uuid;
    let newer = table
        .store
        .append_message(
            &cast.bayko,
            group,
            text("typo"),
            at("2025-11-08T08:00:05.000000+00:00"),
        )
        .await
        .unwrap();
    let insert = stream.next_records("MSG#", 1).await;
    InboxRowMover::new(table.store.clone())
        .handle(&event(&insert))
        .await;
    delete(&table, &newer).await;
    let mut retried = insert.clone();
    retried.extend(modifies(&mut stream, 1).await);
    let before = previews(&table, &[&cast.andrew, &cast.bayko], group).await;

    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event(&retried))
        .await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rows_moved, 2, "both rows rewritten in place");
    let after = previews(&table, &[&cast.andrew, &cast.bayko], group).await;
    for (handle, (shown, _, deleted, unread)) in &after {
        assert_eq!(shown, "");
        assert!(deleted);
        assert_eq!(*unread, before[handle].3, "nothing counted twice");
    }
}

#[tokio::test]
async fn a_failed_change_is_reported_from_its_conversations_first_record_and_converges() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let ab = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-09T08:00:00.000000+00:00",
    )
    .await;
    let al = conversation(
        &table,
        &cast.andrew,
        &cast.londo,
        "2025-11-09T08:10:00.000000+00:00",
        2,
    )
    .await;
    let inserts = stream.next_records("MSG#", 2).await;
    InboxRowMover::new(table.store.clone())
        .handle(&event(&inserts))
        .await;
    edit(&table, &ab[1], "ab fixed").await;
    edit(&table, &al[1], "al fixed").await;
    let records = modifies(&mut stream, 2).await;

    let fail =
        FailRequests::mentioning("UpdateItem", ab[0].group_uuid.to_string(), Failure::Network);
    let handler = InboxRowMover::new(table.store_with(fail.clone()));
    let (response, summary) = handler.handle(&event(&records)).await;

    assert_eq!(summary.failed_conversations, 1);
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier, records[0].change.sequence_number,
        "the failed conversation's first record"
    );
    let al_rows = rows_by_group(&table, &cast.londo).await;
    assert_eq!(
        al_rows[&al[0].group_uuid].0, "al fixed",
        "the other conversation applied"
    );

    fail.heal();
    let (response, _) = handler.handle(&event(&records)).await;
    assert!(response.batch_item_failures.is_empty());
    for user in [&cast.andrew, &cast.bayko] {
        assert_eq!(
            rows_by_group(&table, user).await[&ab[0].group_uuid].0,
            "ab fixed"
        );
    }
}

#[tokio::test]
async fn malformed_change_records_are_logged_with_their_event_id_and_skipped() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-10T08:00:00.000000+00:00",
    )
    .await;
    edit(&table, &messages[1], "fixed").await;
    let good = modifies(&mut stream, 1).await.remove(0);
    let broken = |id: &str, change: &dyn Fn(&mut EventRecord)| {
        let mut record = good.clone();
        record.event_id = id.to_owned();
        change(&mut record);
        record
    };
    let malformed = vec![
        broken("no-change", &|r| {
            r.change.new_image.remove("change");
        }),
        broken("unknown-change", &|r| {
            r.change.new_image.insert(
                "change".into(),
                serde_dynamo::AttributeValue::S("shouted".into()),
            );
        }),
        broken("no-image", &|r| r.change.new_image.clear()),
        broken("reaction-without-emoji", &|r| {
            r.change.new_image.insert(
                "change".into(),
                serde_dynamo::AttributeValue::S("reacted".into()),
            );
        }),
        broken("no-sequence-number", &|r| r.change.sequence_number = None),
    ];
    let mut batch = malformed.clone();
    batch.insert(2, good.clone());

    let ((response, summary), logs) =
        logs_of(InboxRowMover::new(table.store.clone()).handle(&event(&batch))).await;

    assert!(response.batch_item_failures.is_empty(), "never retried");
    assert_eq!(summary.malformed, malformed.len());
    assert_eq!((summary.changes, summary.rows_changed), (1, 2));
    for record in &malformed {
        assert!(
            logs.lines()
                .any(|line| line.contains("malformed") && line.contains(&record.event_id)),
            "no log line for {}:\n{logs}",
            record.event_id
        );
    }
}

/// The hint sends an update without a read: its condition on the row's revision is what
/// keeps an older version from landing over a newer one another environment wrote.
#[tokio::test]
async fn an_older_version_sent_from_a_stale_hint_is_refused_by_the_rows_revision() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = conversation(
        &table,
        &cast.andrew,
        &cast.bayko,
        "2025-11-11T08:00:00.000000+00:00",
        2,
    )
    .await;
    let group = messages[0].group_uuid;
    let inserts = stream.next_records("MSG#", 2).await;
    let hinted = InboxRowMover::new(table.store.clone());
    hinted.handle(&event(&inserts)).await;
    edit(&table, &messages[1], "fixed").await;
    delete(&table, &messages[1]).await;
    let records = modifies(&mut stream, 2).await;
    // Another environment applies the delete.
    InboxRowMover::new(table.store_with_own_client())
        .handle(&event(&records[1..]))
        .await;
    table.requests.reset();

    // This one still remembers the rows as it moved them (revision 0) and gets the edit.
    let (response, summary) = hinted.handle(&event(&records[..1])).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        table.requests.of("Query"),
        1,
        "only MBR#: the rows were hinted"
    );
    assert_eq!(table.requests.of("UpdateItem"), 2, "sent, and refused");
    assert_eq!(summary.rows_changed, 0);
    let users = [&cast.andrew, &cast.bayko];
    for (text, _, deleted, _) in previews(&table, &users, group).await.values() {
        assert_eq!(text, "");
        assert!(deleted);
    }
}

/// DynamoDB refuses a single-item write on a row a transaction is changing (a fan-out
/// moving it, a membership change): DynamoDB Local never does, `RefusingClient` plays it.
/// The row is read again and the update sent again; refused past the bound, the
/// conversation is reported for retry, and the retry lands.
#[tokio::test]
async fn a_row_held_by_a_transaction_is_read_again_and_refused_for_good_is_retried() {
    let table = TestTable::new().await;
    let cast = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = applied_conversation(
        &table,
        &cast,
        &mut stream,
        "2025-11-12T08:00:00.000000+00:00",
    )
    .await;
    let group = messages[0].group_uuid;
    edit(&table, &messages[1], "fixed").await;
    let records = modifies(&mut stream, 1).await;
    let users = [&cast.andrew, &cast.bayko];

    let dynamodb = RefusingClient::new();
    dynamodb.refuse_times("UpdateItem", Refusal::ItemInTransaction, 1);
    let handler = InboxRowMover::new(dynamodb.store_for(&table));
    let (response, summary) = handler.handle(&event(&records)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(dynamodb.refused_as(Refusal::ItemInTransaction), 1);
    assert_eq!(summary.rows_changed, 2);
    assert!(
        previews(&table, &users, group)
            .await
            .values()
            .all(|p| p.0 == "fixed")
    );

    // Held for good: reported for retry from the record, and the retry converges.
    delete(&table, &messages[1]).await;
    let records = modifies(&mut stream, 1).await;
    dynamodb.refuse("UpdateItem", Refusal::ItemInTransaction);
    let (response, summary) = handler.handle(&event(&records)).await;
    assert_eq!(summary.failed_conversations, 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        records[0].change.sequence_number
    );
    dynamodb.allow_all();
    let (response, _) = handler.handle(&event(&records)).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(previews(&table, &users, group).await.values().all(|p| p.2));
}
