//! What is skipped, never retried: records that are not message inserts, malformed ones
//! (logged with their event id), corrupt rows and conversations without members.

use crate::support::recorded::InboxRowMover;
use aws_lambda_events::dynamodb::EventRecord;
use messaging::validate::GroupName;
use messaging::{Message, Timestamp};
use testkit::TestTable;
use uuid::Uuid;

use crate::support::{event_file, logs_of};
use crate::{Cast, Stream, cast, conversation, event, pk, rows_by_group, snapshot, text};

#[tokio::test]
async fn records_that_are_not_message_inserts_are_ignored() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-05-01T08:00:00.000000+00:00",
        2,
    )
    .await;
    let mut stream = Stream::of(&table).await;
    // Catch up: everything so far.
    let all = stream.next_records("MSG#", 2).await;
    let handler = InboxRowMover::new(table.store.clone());
    handler.handle(&event(&all)).await;
    let before = snapshot(&table).await;

    // A MODIFY of a message (rewritten with a later-looking text) and a REMOVE of one.
    let client = table.store.client();
    let group = messages[0].group_uuid;
    client
        .update_item()
        .table_name(table.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("MSG#{group}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(messages[0].created_at.clone()),
        )
        .update_expression("SET message = :m")
        .expression_attribute_values(
            ":m",
            aws_sdk_dynamodb::types::AttributeValue::S("edited".into()),
        )
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name(table.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("MSG#{group}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(messages[0].created_at.clone()),
        )
        .send()
        .await
        .unwrap();
    let changes: Vec<EventRecord> = stream
        .next_records("MSG#", 2)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let kinds: Vec<&str> = changes.iter().map(|r| r.event_name.as_str()).collect();
    assert_eq!(kinds, ["MODIFY", "REMOVE"]);
    let expected_after = snapshot(&table).await;
    assert_ne!(expected_after, before, "the message item itself did change");

    // Inbox-row inserts (from a new conversation) alone, plus the MODIFY and REMOVE.
    table
        .store
        .send_to_user(&londo, &andrew, text("hi"), Timestamp::now())
        .await
        .unwrap();
    let fresh = stream.next_records("GRP#", 2).await;
    let mut batch: Vec<EventRecord> = changes.clone();
    batch.extend(fresh.into_iter().filter(|r| !pk(r).starts_with("MSG#")));
    let settled = snapshot(&table).await;
    let (response, summary) = handler.handle(&event(&batch)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.messages, 0);
    // The MODIFY names no `change` (every change of a message sets one): malformed, logged
    // and skipped; the REMOVE and the rows are not messages.
    assert_eq!((summary.changes, summary.malformed), (0, 1));
    assert_eq!(summary.skipped, batch.len() - 1);
    assert_eq!(snapshot(&table).await, settled);
}

#[tokio::test]
async fn malformed_records_are_logged_with_their_event_id_and_skipped() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let messages = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-06-01T08:00:00.000000+00:00",
        2,
    )
    .await;
    let good: Vec<EventRecord> = stream
        .next_records("MSG#", 2)
        .await
        .into_iter()
        .filter(|r| pk(r).starts_with("MSG#"))
        .collect();
    let malformed = event_file("stream-malformed.json");
    let mut batch = malformed.records.clone();
    batch.insert(1, good[1].clone());

    let ((response, summary), logs) =
        logs_of(InboxRowMover::new(table.store.clone()).handle(&event(&batch))).await;

    assert!(response.batch_item_failures.is_empty(), "never retried");
    assert_eq!(summary.malformed, malformed.records.len());
    assert_eq!(summary.messages, 1);
    assert_eq!(
        rows_by_group(&table, &andrew).await[&messages[1].group_uuid].0,
        messages[1].text
    );
    for record in &malformed.records {
        assert!(
            logs.lines()
                .any(|line| line.contains("malformed") && line.contains(&record.event_id)),
            "no log line for {}:\n{logs}",
            record.event_id
        );
    }
}

#[tokio::test]
async fn corrupt_rows_and_conversations_without_members_are_skipped_not_retried() {
    let table = TestTable::new().await;
    let Cast { andrew, bayko, .. } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let good = conversation(
        &table,
        &andrew,
        &bayko,
        "2025-09-01T08:00:00.000000+00:00",
        2,
    )
    .await;
    // A corrupt inbox row in another conversation: indexed, but without its other member.
    let broken_group = Uuid::new_v4();
    table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("GRP#{}", Uuid::new_v4())),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("2025-01-01T00:00:00.000000+00:00".into()),
        )
        .item(
            "message_group_uuid",
            aws_sdk_dynamodb::types::AttributeValue::S(broken_group.to_string()),
        )
        .send()
        .await
        .unwrap();
    let broken = table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("MSG#{broken_group}")),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("2025-09-01T07:00:00.000000+00:00".into()),
        )
        .item(
            "message_uuid",
            aws_sdk_dynamodb::types::AttributeValue::S(Uuid::new_v4().to_string()),
        )
        .item(
            "message",
            aws_sdk_dynamodb::types::AttributeValue::S("hello".into()),
        )
        .item(
            "user_uuid",
            aws_sdk_dynamodb::types::AttributeValue::S(andrew.uuid.to_string()),
        )
        .item(
            "user_display_name",
            aws_sdk_dynamodb::types::AttributeValue::S("A".into()),
        )
        .item(
            "user_handle",
            aws_sdk_dynamodb::types::AttributeValue::S("a".into()),
        )
        .send()
        .await;
    broken.unwrap();
    // A message in a conversation that has neither members nor rows.
    let orphan = Message::new(
        Uuid::new_v4(),
        andrew.summary(),
        "to nobody".into(),
        "2025-09-01T07:30:00.000000+00:00".into(),
    );
    table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .set_item(Some(
            serde_dynamo::to_item(messaging::items::MessageItem::new(&orphan)).unwrap(),
        ))
        .send()
        .await
        .unwrap();
    let records = stream.next_records("MSG#", 4).await;
    let (response, summary) = InboxRowMover::new(table.store.clone())
        .handle(&event(&records))
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "not retried forever"
    );
    assert_eq!(summary.rows_skipped, 1, "the corrupt row: {summary:?}");
    assert_eq!(summary.abandoned_conversations, 1, "the orphan message");
    assert_eq!(summary.failed_conversations, 0);
    assert_eq!(
        rows_by_group(&table, &bayko).await[&good[0].group_uuid].0,
        "m1"
    );
}

#[tokio::test]
async fn a_group_whose_last_member_left_is_a_normal_end_not_an_incident() {
    let table = TestTable::new().await;
    let Cast {
        andrew,
        bayko,
        londo,
    } = cast(&table).await;
    let mut stream = Stream::of(&table).await;
    let first = table
        .store
        .create_group(
            &andrew,
            &GroupName::parse("Farewell").unwrap(),
            &[bayko.clone(), londo.clone()],
            text("welcome"),
            Timestamp::now(),
        )
        .await
        .unwrap();
    let group = first.group_uuid;
    table
        .store
        .append_message(&bayko, group, text("bye all"), Timestamp::now())
        .await
        .unwrap();
    // Everyone leaves before the stream delivers the two messages.
    for member in [&andrew, &bayko, &londo] {
        table
            .store
            .leave_group(member.uuid, group, Timestamp::now())
            .await
            .unwrap();
    }
    let records: Vec<EventRecord> = stream
        .next_records("MSG#", 2)
        .await
        .into_iter()
        .filter(|record| pk(record).starts_with("MSG#"))
        .collect();

    let ((response, summary), logs) =
        logs_of(InboxRowMover::new(table.store.clone()).handle(&event(&records))).await;

    assert!(response.batch_item_failures.is_empty(), "{summary:?}");
    assert_eq!(summary.ended_conversations, 1, "{summary:?}");
    assert_eq!(summary.abandoned_conversations, 0, "no alarm: {summary:?}");
    assert_eq!(summary.failed_conversations, 0);
    assert!(!logs.contains("ERROR"), "no error logged:\n{logs}");
}
