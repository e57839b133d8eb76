//! Editing a message and deleting it for everyone: the sender only, what the item holds
//! after each, what a race ends in, what each costs in requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use messaging::items::{MessageChangeKind, MessageItem};
use messaging::store::{Item, Limits, RateLimit};
use messaging::{Message, Store, StoreError, User, keys};
use testkit::{Refusal, RefusingClient, TestTable};
use uuid::Uuid;

use crate::{group_of, say, second, text};

/// The message item as stored, read from the table itself.
async fn stored(table: &TestTable, message: &Message) -> Item {
    table
        .store
        .client()
        .get_item()
        .table_name(table.store.table())
        .key(
            "pk",
            AttributeValue::S(keys::message_pk(message.group_uuid)),
        )
        .key("sk", AttributeValue::S(message.created_at.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the message item is there")
}

async fn stored_item(table: &TestTable, message: &Message) -> MessageItem {
    serde_dynamo::from_item(stored(table, message).await).unwrap()
}

fn is_not_found(result: &Result<Message, StoreError>, message: &Message) -> bool {
    matches!(
        result,
        Err(StoreError::MessageNotFound { group, message: uuid })
            if *group == message.group_uuid && *uuid == message.uuid
    )
}

/// A direct conversation of two with one message from the first.
async fn direct(table: &TestTable) -> (User, User, Message) {
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let sent = table
        .store
        .send_to_user(&andrew, &bayko, text("Helo"), second(1))
        .await
        .unwrap();
    table.requests.reset();
    (andrew, bayko, sent)
}

#[tokio::test]
async fn the_sender_edits_with_one_read_and_one_transaction() {
    let table = TestTable::new().await;
    let (andrew, _, sent) = direct(&table).await;

    let edited = table
        .store
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("Hello"),
            second(5),
        )
        .await
        .unwrap();

    assert_eq!(edited.text, "Hello");
    assert_eq!(edited.uuid, sent.uuid);
    assert_eq!(edited.created_at, sent.created_at, "it keeps its place");
    assert_eq!(edited.life.edited_at, Some(second(5).to_string()));
    assert_eq!(edited.life.revision, 1);
    assert_eq!(table.requests.of("GetItem"), 1);
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.total(), 2);
    // The table holds what was answered, and what the change was, for the stream.
    let item = stored_item(&table, &sent).await;
    assert_eq!(item.message, "Hello");
    assert_eq!(item.revision, 1);
    assert_eq!(item.edited_at, Some(second(5).to_string()));
    assert_eq!(item.change, Some(MessageChangeKind::Edited));
    assert_eq!(item.change_by, Some(andrew.uuid));
    assert_eq!(item.change_by_handle.as_deref(), Some("andrewbrown"));
    assert_eq!(
        item.change_by_display_name.as_deref(),
        Some(andrew.display_name.as_str())
    );
    assert_eq!(item.change_at, Some(second(5).to_string()));
    assert_eq!(item.deleted_at, None);
    assert_eq!(
        table
            .store
            .find_message(sent.group_uuid, sent.uuid)
            .await
            .unwrap(),
        Some(edited)
    );

    // Every edit counts.
    let again = table
        .store
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("Hello!"),
            second(6),
        )
        .await
        .unwrap();
    assert_eq!(again.life.revision, 2);
    assert_eq!(stored_item(&table, &sent).await.revision, 2);
}

#[tokio::test]
async fn the_same_text_again_writes_nothing() {
    let table = TestTable::new().await;
    let (andrew, _, sent) = direct(&table).await;

    let same = table
        .store
        .edit_message(&andrew, sent.group_uuid, sent.uuid, text("Helo"), second(5))
        .await
        .unwrap();

    assert_eq!(same, sent);
    assert_eq!(table.requests.of("TransactWriteItems"), 0);
    // The message, then the caller's membership.
    assert_eq!(table.requests.of("GetItem"), 2);
    let item = stored_item(&table, &sent).await;
    assert_eq!((item.revision, item.change), (0, None));
}

#[tokio::test]
async fn a_delete_empties_the_item_and_a_second_one_answers_the_same_without_writing() {
    let table = TestTable::new().await;
    let (andrew, bayko, sent) = direct(&table).await;
    let edited = table
        .store
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("Hello"),
            second(2),
        )
        .await
        .unwrap();
    // A reaction as the reactions' code stores it: an entry of the string set.
    table
        .store
        .client()
        .update_item()
        .table_name(table.store.table())
        .key("pk", AttributeValue::S(keys::message_pk(sent.group_uuid)))
        .key("sk", AttributeValue::S(sent.created_at.clone()))
        .update_expression("ADD reactions :entry")
        .expression_attribute_values(
            ":entry",
            AttributeValue::Ss(vec![format!("{}#👍", bayko.uuid)]),
        )
        .send()
        .await
        .unwrap();
    table.requests.reset();

    let deleted = table
        .store
        .delete_message(&andrew, sent.group_uuid, sent.uuid, second(3))
        .await
        .unwrap();

    assert_eq!(deleted.text, "");
    assert_eq!(deleted.life.deleted_at, Some(second(3).to_string()));
    assert_eq!(deleted.life.edited_at, edited.life.edited_at, "kept");
    assert_eq!(deleted.life.revision, 2);
    assert!(deleted.life.reactions.is_empty());
    assert_eq!(deleted.created_at, sent.created_at, "it keeps its place");
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.total(), 2);
    // The text is gone from the item, not hidden: no attribute holds either version.
    let raw = stored(&table, &sent).await;
    for (name, value) in &raw {
        let shown = format!("{value:?}");
        assert!(
            !shown.contains("Helo") && !shown.contains("Hello"),
            "{name} = {shown}"
        );
    }
    assert_eq!(raw["message"], AttributeValue::S(String::new()));
    assert!(!raw.contains_key("reactions"));
    let item = stored_item(&table, &sent).await;
    assert_eq!(item.change, Some(MessageChangeKind::Deleted));
    assert_eq!(item.change_by, Some(andrew.uuid));
    assert_eq!(item.change_emoji, None);

    // Again: the same answer, nothing written.
    table.requests.reset();
    let again = table
        .store
        .delete_message(&andrew, sent.group_uuid, sent.uuid, second(9))
        .await
        .unwrap();
    assert_eq!(again, deleted);
    assert_eq!(table.requests.of("TransactWriteItems"), 0);
    assert_eq!(stored_item(&table, &sent).await.revision, 2);

    // A deleted message takes no text again.
    let edit = table
        .store
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("back"),
            second(10),
        )
        .await;
    assert!(is_not_found(&edit, &sent), "{edit:?}");
    assert_eq!(stored_item(&table, &sent).await.message, "");
}

#[tokio::test]
async fn only_the_sender_while_a_member_changes_a_message() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let (creator, member, leaver) = (&members[0], &members[1], &members[2]);
    let stranger = table.user("stranger").await;
    let group = first.group_uuid;
    let leavers = say(&table, leaver, group, 5, "I will be gone").await;
    table
        .store
        .leave_group(leaver.uuid, group, second(6))
        .await
        .unwrap();
    let (_, _, elsewhere) = direct(&table).await;

    let refused: Vec<(&str, Result<Message, StoreError>, &Message)> = vec![
        (
            "another member edits",
            table
                .store
                .edit_message(member, group, first.uuid, text("mine"), second(7))
                .await,
            &first,
        ),
        (
            "another member deletes",
            table
                .store
                .delete_message(member, group, first.uuid, second(7))
                .await,
            &first,
        ),
        (
            "a stranger deletes",
            table
                .store
                .delete_message(&stranger, group, first.uuid, second(7))
                .await,
            &first,
        ),
        (
            "the sender, after leaving, edits",
            table
                .store
                .edit_message(leaver, group, leavers.uuid, text("back"), second(7))
                .await,
            &leavers,
        ),
        (
            "the sender, after leaving, deletes",
            table
                .store
                .delete_message(leaver, group, leavers.uuid, second(7))
                .await,
            &leavers,
        ),
    ];
    for (what, result, message) in &refused {
        assert!(is_not_found(result, message), "{what}: {result:?}");
    }
    // The right uuid under the wrong conversation, and a uuid never sent.
    let wrong = table
        .store
        .delete_message(creator, elsewhere.group_uuid, first.uuid, second(7))
        .await;
    assert!(matches!(wrong, Err(StoreError::MessageNotFound { .. })));
    let unknown_uuid = messaging::message_id::message_uuid_at(second(8));
    let unknown = table
        .store
        .edit_message(creator, group, unknown_uuid, text("x"), second(8))
        .await;
    assert!(matches!(unknown, Err(StoreError::MessageNotFound { .. })));
    // None of them wrote.
    for message in [&first, &leavers] {
        let item = stored_item(&table, message).await;
        assert_eq!(item.revision, 0, "{item:?}");
        assert_eq!(item.change, None);
        assert_eq!(item.message, message.text);
    }
    // And the sender still can.
    let edited = table
        .store
        .edit_message(creator, group, first.uuid, text("Welcome!"), second(9))
        .await
        .unwrap();
    assert_eq!(edited.life.revision, 1);
}

#[tokio::test]
async fn a_blocked_sender_is_refused_as_appending_is() {
    let table = TestTable::new().await;
    let (andrew, bayko, sent) = direct(&table).await;
    table.store.block(&bayko, &andrew, second(2)).await.unwrap();

    let edit = table
        .store
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("sorry"),
            second(3),
        )
        .await;
    let delete = table
        .store
        .delete_message(&andrew, sent.group_uuid, sent.uuid, second(3))
        .await;
    let same = table
        .store
        .edit_message(&andrew, sent.group_uuid, sent.uuid, text("Helo"), second(3))
        .await;

    assert!(matches!(edit, Err(StoreError::Blocked)), "{edit:?}");
    assert!(matches!(delete, Err(StoreError::Blocked)), "{delete:?}");
    assert!(matches!(same, Err(StoreError::Blocked)), "{same:?}");
    assert_eq!(stored_item(&table, &sent).await.message, "Helo");
}

#[tokio::test]
async fn changes_count_against_the_send_limit() {
    let table = TestTable::new().await;
    let (andrew, _, sent) = direct(&table).await;
    // One use per minute: the send above was written without limits; the first change
    // takes the window's one use, the second finds it full.
    let store = table.store.clone().with_limits(Limits {
        send: RateLimit::per_minute(1),
        group_changes: None,
    });

    store
        .edit_message(&andrew, sent.group_uuid, sent.uuid, text("one"), second(2))
        .await
        .unwrap();
    let refused = store
        .delete_message(&andrew, sent.group_uuid, sent.uuid, second(3))
        .await;

    assert!(
        matches!(refused, Err(StoreError::RateLimited { limit: "send", .. })),
        "{refused:?}"
    );
    let item = stored_item(&table, &sent).await;
    assert_eq!((item.message.as_str(), item.revision), ("one", 1));
}

/// Plays "another change landed between this read and this write": the next `reads`
/// answers of `GetItem` for the message's key show `stale` instead of what the table holds.
#[derive(Debug, Clone)]
struct StaleReads {
    stale: Item,
    reads: Arc<AtomicUsize>,
}

impl Intercept for StaleReads {
    fn name(&self) -> &'static str {
        "StaleReads"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let Some(reply) = output.downcast_mut::<GetItemOutput>() else {
            return Ok(());
        };
        let same_key = reply.item.as_ref().is_some_and(|item| {
            item.get("pk") == self.stale.get("pk") && item.get("sk") == self.stale.get("sk")
        });
        if same_key
            && self
                .reads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            reply.item = Some(self.stale.clone());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_change_read_before_another_landed_is_decided_again() {
    let table = TestTable::new().await;
    let (andrew, _, sent) = direct(&table).await;
    let as_sent = stored(&table, &sent).await;
    // An edit lands; the delete then reads the message as sent (a read just before the
    // edit): its condition on the revision cancels it, and a fresh read deletes revision 1.
    table
        .store
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("Hello"),
            second(2),
        )
        .await
        .unwrap();
    let stale = StaleReads {
        stale: as_sent.clone(),
        reads: Arc::new(AtomicUsize::new(1)),
    };
    let deleting = table.store_with(stale);
    table.requests.reset();

    let deleted = deleting
        .delete_message(&andrew, sent.group_uuid, sent.uuid, second(3))
        .await
        .unwrap();

    assert_eq!(deleted.life.revision, 2);
    assert_eq!(deleted.life.edited_at, Some(second(2).to_string()));
    assert_eq!(table.requests.of("GetItem"), 2);
    assert_eq!(table.requests.of("TransactWriteItems"), 2);
    let item = stored_item(&table, &sent).await;
    assert_eq!((item.message.as_str(), item.revision), ("", 2));
    assert_eq!(item.change, Some(MessageChangeKind::Deleted));

    // An edit that read the message before the delete finds it deleted: 404, nothing
    // written back.
    let editing = table.store_with(StaleReads {
        stale: as_sent,
        reads: Arc::new(AtomicUsize::new(1)),
    });
    let late = editing
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("Hello?"),
            second(4),
        )
        .await;
    assert!(is_not_found(&late, &sent), "{late:?}");
    let item = stored_item(&table, &sent).await;
    assert_eq!((item.message.as_str(), item.revision), ("", 2));
}

#[tokio::test]
async fn a_delete_racing_an_edit_ends_deleted() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    // DynamoDB may also cancel either transaction for the other one (DynamoDB Local
    // serialises them): a conflict now and then, retried like any.
    let dynamodb = RefusingClient::seeded(20);
    dynamodb.refuse_at_rate("TransactWriteItems", Refusal::TransactionConflict, 0.3);
    let (editing, deleting): (Store, Store) =
        (dynamodb.store_for(&table), table.store_with_own_client());
    for round in 0..12u32 {
        let sent = table
            .store
            .send_to_user(&andrew, &bayko, text("Helo"), second(10 + round))
            .await
            .unwrap();
        let (edit, delete) = tokio::join!(
            editing.edit_message(
                &andrew,
                sent.group_uuid,
                sent.uuid,
                text("Hello"),
                second(40)
            ),
            deleting.delete_message(&andrew, sent.group_uuid, sent.uuid, second(41)),
        );
        let deleted = delete.unwrap();
        let item = stored_item(&table, &sent).await;
        assert_eq!(item.message, "", "round {round}");
        assert!(item.deleted_at.is_some(), "round {round}");
        assert_eq!(
            item.change,
            Some(MessageChangeKind::Deleted),
            "round {round}"
        );
        // Either the edit landed first (then the delete counted it) or it found the
        // message deleted; never an edit after the delete.
        match edit {
            Ok(edited) => {
                assert_eq!(edited.life.revision, 1, "round {round}");
                assert_eq!(deleted.life.revision, 2, "round {round}");
                assert_eq!(item.edited_at, edited.life.edited_at, "round {round}");
            }
            Err(error) => {
                assert!(
                    matches!(error, StoreError::MessageNotFound { .. }),
                    "round {round}: {error:?}"
                );
                assert_eq!(deleted.life.revision, 1, "round {round}");
                assert_eq!(item.edited_at, None, "round {round}");
            }
        }
        assert_eq!(item.revision, deleted.life.revision, "round {round}");
    }
    assert!(dynamodb.refused() > 0, "the conflicts were played");
}

#[tokio::test]
async fn a_conflict_is_retried_and_counted() {
    let table = TestTable::new().await;
    let (andrew, _, sent) = direct(&table).await;
    let dynamodb = RefusingClient::new();
    let store = dynamodb.store_for(&table);
    dynamodb.refuse_times("TransactWriteItems", Refusal::TransactionConflict, 2);

    let edited = store
        .edit_message(
            &andrew,
            sent.group_uuid,
            sent.uuid,
            text("Hello"),
            second(2),
        )
        .await
        .unwrap();

    assert_eq!(edited.life.revision, 1, "one edit, however many attempts");
    assert_eq!(dynamodb.refused(), 2);
    // A read before each attempt: a conflict may hide a change.
    assert_eq!(table.requests.of("TransactWriteItems"), 3);
    assert_eq!(table.requests.of("GetItem"), 3);
    assert_eq!(stored_item(&table, &sent).await.revision, 1);
}

#[tokio::test]
async fn a_message_of_the_original_system_is_edited_where_it_is() {
    let table = TestTable::new().await;
    let (andrew, _, sent) = direct(&table).await;
    // The original system's uuids are v4s: rewrite the stored uuid to one.
    let original = Uuid::new_v4();
    let mut item = stored(&table, &sent).await;
    item.insert(
        "message_uuid".into(),
        AttributeValue::S(original.to_string()),
    );
    table.put_raw(item).await.unwrap();

    let edited = table
        .store
        .edit_message(&andrew, sent.group_uuid, original, text("Hello"), second(2))
        .await
        .unwrap();

    assert_eq!(edited.uuid, original);
    assert_eq!(edited.created_at, sent.created_at);
    assert_eq!(stored_item(&table, &sent).await.message, "Hello");
}
