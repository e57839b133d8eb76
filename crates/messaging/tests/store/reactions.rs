//! Reactions: one of each emoji per member, counts exact under concurrency and under
//! DynamoDB's transaction conflicts (played by testkit: DynamoDB Local serialises
//! transactions instead of cancelling them), repeats that write nothing, and refusals that
//! say no more than "not found".

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use messaging::items::MessageItem;
use messaging::reactions::{self, Emoji};
use messaging::store::{Limits, Reacted};
use messaging::{Message, Store, StoreError, User};
use messaging::{keys, message_id};
use testkit::{Refusal, RefusingClient, TestTable};
use uuid::Uuid;

use crate::{group_of, second, text};

fn emoji(text: &str) -> Emoji {
    Emoji::parse(text).unwrap()
}

/// The message item as stored, read strongly consistently.
async fn stored(store: &Store, message: &Message) -> MessageItem {
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
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
        .expect("the message is there");
    serde_dynamo::from_item(item).unwrap()
}

/// Counts per emoji, from the table.
async fn counts(store: &Store, message: &Message) -> BTreeMap<String, u32> {
    let found = store
        .find_message(message.group_uuid, message.uuid)
        .await
        .unwrap()
        .unwrap();
    reactions::counts(&found.life.reactions)
}

fn expected(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs
        .iter()
        .map(|(emoji, count)| ((*emoji).to_owned(), *count))
        .collect()
}

async fn react(store: &Store, who: &User, message: &Message, with: &str) -> Reacted {
    store
        .react(
            who,
            message.group_uuid,
            message.uuid,
            emoji(with),
            second(30),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn one_reaction_of_each_kind_per_member_in_one_transaction() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;

    let reacted = react(&table.store, &members[1], &first, "👍").await;

    assert!(reacted.changed);
    assert_eq!(
        reactions::counts(&reacted.message.life.reactions),
        expected(&[("👍", 1)])
    );
    assert_eq!(table.requests.of("GetItem"), 1, "finding the message");
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.total(), 2);

    // Another kind by the same member, the same kind by another (a bare heart is ❤️).
    react(&table.store, &members[1], &first, "🎉").await;
    react(&table.store, &members[2], &first, "👍").await;
    react(&table.store, &members[0], &first, "\u{2764}").await;
    assert_eq!(
        counts(&table.store, &first).await,
        expected(&[("👍", 2), ("🎉", 1), ("❤️", 1)])
    );

    // The item says what its last write did, and a reaction is not a revision.
    let item = stored(&table.store, &first).await;
    assert_eq!(item.change.map(|c| c.as_str()), Some("reacted"));
    assert_eq!(item.change_by, Some(members[0].uuid));
    assert_eq!(
        item.change_by_handle.as_deref(),
        Some(members[0].handle.as_str())
    );
    assert_eq!(
        item.change_by_display_name.as_deref(),
        Some(members[0].display_name.as_str())
    );
    assert_eq!(item.change_emoji.as_deref(), Some("❤️"));
    assert_eq!(item.change_at, Some(second(30).to_string()));
    assert_eq!(item.revision, 0);
    assert_eq!(item.message, "Welcome", "the text is untouched");
    let mut entries = item.reactions.clone();
    entries.sort();
    let mut wanted = vec![
        format!("{}#👍", members[1].uuid),
        format!("{}#🎉", members[1].uuid),
        format!("{}#👍", members[2].uuid),
        format!("{}#❤️", members[0].uuid),
    ];
    wanted.sort();
    assert_eq!(entries, wanted);
}

#[tokio::test]
async fn a_repeat_writes_nothing_and_answers_the_message_as_it_is() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 2).await;
    react(&table.store, &members[1], &first, "👍").await;
    let before = table.snapshot().await;
    table.requests.reset();

    let again = table
        .store
        .react(
            &members[1],
            first.group_uuid,
            first.uuid,
            emoji("👍\u{FE0F}"),
            second(40),
        )
        .await
        .unwrap();

    assert!(!again.changed);
    assert_eq!(
        reactions::counts(&again.message.life.reactions),
        expected(&[("👍", 1)])
    );
    // The cancelled transaction (its membership check still ran), and the read that told
    // a repeat from a deleted message.
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.of("GetItem"), 2);
    assert_eq!(table.requests.total(), 3);
    assert_eq!(table.snapshot().await, before, "nothing written");
    let item = stored(&table.store, &first).await;
    assert_eq!(
        item.change_at,
        Some(second(30).to_string()),
        "no new change"
    );

    // Taking back what is not there is the same: nothing written.
    let before = table.snapshot().await;
    let none = table
        .store
        .unreact(
            &members[0],
            first.group_uuid,
            first.uuid,
            emoji("👍"),
            second(41),
        )
        .await
        .unwrap();
    assert!(!none.changed);
    assert_eq!(table.snapshot().await, before);
}

#[tokio::test]
async fn taking_back_removes_the_entry_and_the_last_one_the_attribute() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    react(&table.store, &members[1], &first, "😂").await;
    react(&table.store, &members[2], &first, "😂").await;

    let taken = table
        .store
        .unreact(
            &members[1],
            first.group_uuid,
            first.uuid,
            emoji("😂"),
            second(50),
        )
        .await
        .unwrap();

    assert!(taken.changed);
    assert_eq!(
        reactions::counts(&taken.message.life.reactions),
        expected(&[("😂", 1)])
    );
    let item = stored(&table.store, &first).await;
    assert_eq!(item.change.map(|c| c.as_str()), Some("unreacted"));
    assert_eq!(item.change_by, Some(members[1].uuid));
    assert_eq!(item.change_emoji.as_deref(), Some("😂"));
    assert_eq!(item.reactions, [format!("{}#😂", members[2].uuid)]);

    table
        .store
        .unreact(
            &members[2],
            first.group_uuid,
            first.uuid,
            emoji("😂"),
            second(51),
        )
        .await
        .unwrap();
    let raw = table
        .store
        .client()
        .get_item()
        .table_name(table.store.table())
        .key("pk", AttributeValue::S(keys::message_pk(first.group_uuid)))
        .key("sk", AttributeValue::S(first.created_at.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(
        !raw.contains_key("reactions"),
        "DynamoDB has no empty set: {raw:?}"
    );
    assert_eq!(raw["change"], AttributeValue::S("unreacted".into()));
}

#[tokio::test]
async fn concurrent_reactions_of_many_members_are_counted_exactly() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 12).await;
    let kinds = ["👍", "❤️", "🎉"];

    // Every member reacts with three emoji at once, each request on its own task.
    let mut tasks = Vec::new();
    for member in &members {
        for kind in kinds {
            let store = table.store_with_own_client();
            let (member, message) = (member.clone(), first.clone());
            tasks.push(tokio::spawn(async move {
                react(&store, &member, &message, kind).await.changed
            }));
        }
    }
    for task in tasks {
        assert!(task.await.unwrap());
    }
    assert_eq!(
        counts(&table.store, &first).await,
        expected(&[("👍", 12), ("❤️", 12), ("🎉", 12)])
    );

    // Half take back one, the others repeat theirs, all at once.
    let mut tasks = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let store = table.store_with_own_client();
        let (member, message) = (member.clone(), first.clone());
        tasks.push(tokio::spawn(async move {
            let (group, uuid) = (message.group_uuid, message.uuid);
            if i % 2 == 0 {
                store
                    .unreact(&member, group, uuid, emoji("👍"), second(60))
                    .await
            } else {
                store
                    .react(&member, group, uuid, emoji("👍"), second(60))
                    .await
            }
            .unwrap()
            .changed
        }));
    }
    let mut changed = 0;
    for task in tasks {
        changed += u32::from(task.await.unwrap());
    }
    assert_eq!(changed, 6, "only the removals wrote");
    assert_eq!(
        counts(&table.store, &first).await,
        expected(&[("👍", 6), ("❤️", 12), ("🎉", 12)])
    );
}

#[tokio::test]
async fn transaction_conflicts_are_retried_and_never_lose_or_double_a_count() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 10).await;
    // A third of the transactions meet another one on the same item, as DynamoDB
    // cancels them (`TransactionConflict`); DynamoDB Local would serialise them.
    let dynamodb = RefusingClient::seeded(20);
    dynamodb.refuse_at_rate("TransactWriteItems", Refusal::TransactionConflict, 0.3);

    let mut tasks = Vec::new();
    for member in &members {
        for kind in ["👍", "🙏"] {
            let store = dynamodb.store_for(&table);
            let (member, message) = (member.clone(), first.clone());
            tasks.push(tokio::spawn(async move {
                react(&store, &member, &message, kind).await
            }));
        }
    }
    for task in tasks {
        assert!(task.await.unwrap().changed);
    }

    assert!(
        dynamodb.refused_as(Refusal::TransactionConflict) > 0,
        "conflicts were played"
    );
    assert_eq!(
        counts(&table.store, &first).await,
        expected(&[("👍", 10), ("🙏", 10)])
    );
}

#[tokio::test]
async fn conflicts_that_never_end_are_contention_and_write_nothing() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 2).await;
    let dynamodb = RefusingClient::new();
    dynamodb.refuse("TransactWriteItems", Refusal::TransactionConflict);
    let store = dynamodb.store_for(&table);
    let before = table.snapshot().await;

    let error = store
        .react(
            &members[1],
            first.group_uuid,
            first.uuid,
            emoji("👍"),
            second(30),
        )
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Contention { .. }), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(table.snapshot().await, before);
}

#[tokio::test]
async fn a_deleted_message_takes_no_reaction() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 2).await;
    react(&table.store, &members[1], &first, "👍").await;
    // Deleted as the contract says a delete leaves it (edit's write): no text, no reactions.
    let mut item = stored(&table.store, &first).await;
    item.message = String::new();
    item.deleted_at = Some(second(40).to_string());
    item.revision = 1;
    item.reactions.clear();
    table
        .put_raw(serde_dynamo::to_item(&item).unwrap())
        .await
        .unwrap();
    let before = table.snapshot().await;

    for remove in [false, true] {
        let (group, uuid) = (first.group_uuid, first.uuid);
        let outcome = if remove {
            table
                .store
                .unreact(&members[1], group, uuid, emoji("👍"), second(41))
                .await
        } else {
            table
                .store
                .react(&members[0], group, uuid, emoji("🎉"), second(41))
                .await
        };
        assert!(
            matches!(outcome, Err(StoreError::MessageNotFound { .. })),
            "{outcome:?}"
        );
    }
    assert_eq!(table.snapshot().await, before, "nothing written");
}

#[tokio::test]
async fn outsiders_unknown_messages_and_other_conversations_are_not_found() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 2).await;
    let outsider = table.user("outsider").await;
    let elsewhere = table
        .store
        .send_to_user(&outsider, &members[0], text("hi"), second(5))
        .await
        .unwrap();
    let before = table.snapshot().await;

    let attempts = [
        // Not a member of the conversation.
        (outsider.clone(), first.group_uuid, first.uuid),
        // A uuid that was never sent.
        (
            members[1].clone(),
            first.group_uuid,
            message_id::message_uuid_at(second(4)),
        ),
        // A message of another conversation, addressed under this one.
        (members[0].clone(), first.group_uuid, elsewhere.uuid),
        // A conversation that does not exist.
        (members[0].clone(), Uuid::new_v4(), first.uuid),
    ];
    for (who, group, uuid) in attempts {
        let outcome = table
            .store
            .react(&who, group, uuid, emoji("👍"), second(30))
            .await;
        assert!(
            matches!(outcome, Err(StoreError::MessageNotFound { .. })),
            "{}: {outcome:?}",
            who.handle
        );
    }
    assert_eq!(table.snapshot().await, before, "nothing written");

    // A member who left keeps no say: their earlier reaction stays, taking it back is 404.
    react(&table.store, &members[1], &first, "🎉").await;
    table
        .store
        .leave_group(members[1].uuid, first.group_uuid, second(31))
        .await
        .unwrap();
    let outcome = table
        .store
        .unreact(
            &members[1],
            first.group_uuid,
            first.uuid,
            emoji("🎉"),
            second(32),
        )
        .await;
    assert!(
        matches!(outcome, Err(StoreError::MessageNotFound { .. })),
        "{outcome:?}"
    );
    assert_eq!(counts(&table.store, &first).await, expected(&[("🎉", 1)]));
}

#[tokio::test]
async fn a_block_refuses_reactions_in_the_direct_conversation_as_it_refuses_messages() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let hello = table
        .store
        .send_to_user(&andrew, &bayko, text("hello"), second(1))
        .await
        .unwrap();
    table.store.block(&bayko, &andrew, second(2)).await.unwrap();

    let outcome = table
        .store
        .react(
            &andrew,
            hello.group_uuid,
            hello.uuid,
            emoji("👍"),
            second(3),
        )
        .await;

    assert!(matches!(outcome, Err(StoreError::Blocked)), "{outcome:?}");
    assert!(counts(&table.store, &hello).await.is_empty());
}

#[tokio::test]
async fn reactions_count_against_sending_and_repeats_are_free() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 2).await;
    // Two uses per window of 2 s.
    let store = table.store.clone().with_limits(Limits::new(2, 1, 0));
    let reactor = &members[1];
    let at = second(30);
    let (group, uuid) = (first.group_uuid, first.uuid);

    store
        .react(reactor, group, uuid, emoji("👍"), at)
        .await
        .unwrap();
    // A repeat is cancelled with nothing written: it charges nothing.
    for _ in 0..3 {
        let again = store
            .react(reactor, group, uuid, emoji("👍"), at)
            .await
            .unwrap();
        assert!(!again.changed);
    }
    store
        .react(reactor, group, uuid, emoji("🎉"), at)
        .await
        .unwrap();
    let refused = store
        .react(reactor, group, uuid, emoji("🙏"), at)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::RateLimited { limit: "send", .. }),
        "{refused:?}"
    );
    assert_eq!(
        counts(&table.store, &first).await,
        expected(&[("👍", 1), ("🎉", 1)])
    );
    // And a message in the same window is refused too: one budget for both.
    let send = store
        .append_message(reactor, group, text("and a message"), at)
        .await
        .unwrap_err();
    assert!(matches!(send, StoreError::RateLimited { .. }), "{send:?}");
}
