//! Sends a client names (`client_message_id`): a repeat within a day answers the first
//! answer and writes nothing, whatever happened in between (the reply lost, a duplicate at
//! the same instant, a full rate-limit window, a block, a second transaction); another
//! request under the same id is refused; ids are per sender.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use messaging::keys;
use messaging::store::{ClientMessageId, Limits, RateLimit, SEND_RECORD_SECONDS};
use messaging::{Store, StoreError, Timestamp, User};
use testkit::{FailRequests, Failure, TestTable};
use uuid::Uuid;

use crate::{name, raw_items_with_prefix, text, users};

/// `seconds` after the start of the next hour: records must not lie in the past, where
/// DynamoDB Local's TTL deletes them (as DynamoDB does, lazily) in the middle of a test.
fn soon(seconds: i64) -> Timestamp {
    let now = time::OffsetDateTime::now_utc();
    let hour = now.unix_timestamp().div_euclid(3600) * 3600 + 3600;
    Timestamp::from_datetime(
        time::OffsetDateTime::from_unix_timestamp(hour + seconds).expect("a time"),
    )
}

fn id_for(id: Uuid, words: &str) -> ClientMessageId {
    ClientMessageId::new(id, &["test", words])
}

async fn messages_of(table: &TestTable, group: Uuid) -> Vec<(String, String)> {
    raw_items_with_prefix(table, &keys::message_pk(group)).await
}

async fn conversation(table: &TestTable, a: &User, b: &User) -> Uuid {
    table
        .store
        .send_to_user(a, b, text("hello"), soon(0))
        .await
        .unwrap()
        .group_uuid
}

#[tokio::test]
async fn a_repeat_answers_the_first_send_and_writes_nothing() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    let id = id_for(Uuid::new_v4(), "tooling");
    let first = table
        .store
        .append_message_once(&andrew, group, text("tooling"), soon(1), &id)
        .await
        .unwrap();
    let snapshot = table.snapshot().await;
    table.requests.reset();
    let again = table
        .store
        .append_message_once(&andrew, group, text("tooling"), soon(5), &id)
        .await
        .unwrap();
    assert_eq!(
        again, first,
        "same uuid, created_at, conversation, text, sender"
    );
    // The cancelled transaction, then one strongly consistent read of the record.
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.of("GetItem"), 1);
    assert_eq!(table.requests.total(), 2, "{:?}", table.requests.snapshot());
    assert_eq!(table.snapshot().await, snapshot, "the repeat wrote nothing");
    assert_eq!(messages_of(&table, group).await.len(), 2);
}

#[tokio::test]
async fn a_first_send_costs_no_request_more_and_the_record_expires_a_day_later() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    table.requests.reset();
    let id = Uuid::new_v4();
    let sent = table
        .store
        .append_message_once(&andrew, group, text("hi"), soon(1), &id_for(id, "hi"))
        .await
        .unwrap();
    assert_eq!(table.requests.total(), 1, "one TransactWriteItems");
    let key = keys::send_record(andrew.uuid, id);
    let record = table
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
        .item
        .expect("the send record");
    let expires: i64 = record["expires_at"].as_n().unwrap().parse().unwrap();
    let sent_at = soon(1).as_datetime().unix_timestamp();
    assert_eq!(expires, sent_at + SEND_RECORD_SECONDS);
    assert_eq!(
        record["message_uuid"].as_s().unwrap(),
        &sent.uuid.to_string()
    );
    assert_eq!(record["created_at"].as_s().unwrap(), &sent.created_at);
}

#[tokio::test]
async fn after_a_day_the_id_sends_again() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    let id = id_for(Uuid::new_v4(), "hi");
    let first = table
        .store
        .append_message_once(&andrew, group, text("hi"), soon(1), &id)
        .await
        .unwrap();
    // The TTL removes records lazily: one past its expiry is still there, and is replaced.
    let a_day_later = soon(SEND_RECORD_SECONDS + 2);
    let second_send = table
        .store
        .append_message_once(&andrew, group, text("hi"), a_day_later, &id)
        .await
        .unwrap();
    assert_ne!(second_send.uuid, first.uuid);
    assert_eq!(messages_of(&table, group).await.len(), 3);
}

#[tokio::test]
async fn another_request_under_the_same_id_is_refused_and_writes_nothing() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    let id = Uuid::new_v4();
    table
        .store
        .append_message_once(&andrew, group, text("one"), soon(1), &id_for(id, "one"))
        .await
        .unwrap();
    let snapshot = table.snapshot().await;
    let other = table
        .store
        .append_message_once(&andrew, group, text("two"), soon(2), &id_for(id, "two"))
        .await
        .unwrap_err();
    assert!(
        matches!(other, StoreError::ClientMessageIdReused),
        "{other:?}"
    );
    assert_eq!(table.snapshot().await, snapshot);
}

#[tokio::test]
async fn ids_are_per_sender() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    let id = id_for(Uuid::new_v4(), "same");
    let from_andrew = table
        .store
        .append_message_once(&andrew, group, text("same"), soon(1), &id)
        .await
        .unwrap();
    let from_bayko = table
        .store
        .append_message_once(&bayko, group, text("same"), soon(1), &id)
        .await
        .unwrap();
    assert_ne!(from_andrew.uuid, from_bayko.uuid);
    assert_eq!(messages_of(&table, group).await.len(), 3);
}

#[tokio::test]
async fn duplicates_sent_at_once_write_one_message_and_answer_alike() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    // Starting a conversation (six items, the pair's condition) and appending to it: two
    // environments each, their own clients.
    let (one, two) = (table.store_with_own_client(), table.store_with_own_client());
    let id = id_for(Uuid::new_v4(), "first");
    let (a, b) = tokio::join!(
        one.send_to_user_once(&andrew, &bayko, text("first"), soon(1), &id),
        two.send_to_user_once(&andrew, &bayko, text("first"), soon(1), &id),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(messages_of(&table, a.group_uuid).await.len(), 1);
    assert_eq!(
        raw_items_with_prefix(&table, keys::PAIR_PREFIX).await.len(),
        1
    );

    let id = id_for(Uuid::new_v4(), "second");
    let (c, d) = tokio::join!(
        one.append_message_once(&andrew, a.group_uuid, text("second"), soon(2), &id),
        two.append_message_once(&andrew, a.group_uuid, text("second"), soon(2), &id),
    );
    let (c, d) = (c.unwrap(), d.unwrap());
    assert_eq!(c, d);
    assert_eq!(messages_of(&table, a.group_uuid).await.len(), 2);
}

/// Lets `TransactWriteItems` reach the table, then loses its reply (as a timeout after
/// DynamoDB committed would), until healed.
#[derive(Debug, Clone, Default)]
struct LoseReplies {
    healed: Arc<AtomicBool>,
    lost: Arc<AtomicUsize>,
}

impl Intercept for LoseReplies {
    fn name(&self) -> &'static str {
        "LoseReplies"
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let transaction = cfg
            .load::<Metadata>()
            .is_some_and(|metadata| metadata.name() == "TransactWriteItems");
        if transaction && !self.healed.load(Ordering::SeqCst) {
            self.lost.fetch_add(1, Ordering::SeqCst);
            return Err("injected: the reply was lost".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_repeat_after_a_lost_reply_answers_what_was_committed() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let lose = LoseReplies::default();
    let store: Store = table.store_with(lose.clone());
    let id = id_for(Uuid::new_v4(), "are you there");
    store
        .send_to_user_once(&andrew, &bayko, text("are you there"), soon(1), &id)
        .await
        .expect_err("the reply is lost");
    assert!(lose.lost.load(Ordering::SeqCst) >= 1);
    // The first attempt did start the conversation.
    let inbox = crate::inbox(&table.store, andrew.uuid).await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let group = inbox[0].group_uuid;
    let before = table.snapshot().await;

    lose.healed.store(true, Ordering::SeqCst);
    let again = store
        .send_to_user_once(&andrew, &bayko, text("are you there"), soon(3), &id)
        .await
        .unwrap();
    assert_eq!(again.group_uuid, group);
    let stored = messages_of(&table, group).await;
    assert_eq!(stored.len(), 1, "one message: {stored:?}");
    assert_eq!(again.created_at, stored[0].1);
    assert_eq!(table.snapshot().await, before, "the repeat wrote nothing");
}

#[tokio::test]
async fn a_repeat_is_neither_charged_nor_refused_by_a_full_window() {
    let table = TestTable::new().await;
    let [andrew, bayko] = [table.user("andrewbrown").await, table.user("bayko").await];
    let group = conversation(&table, &andrew, &bayko).await;
    // One send per window of a minute.
    let store = table.store.clone().with_limits(Limits {
        send: Some(RateLimit {
            cap: 1,
            window: Duration::from_secs(60),
        }),
        group_changes: None,
    });
    let id = id_for(Uuid::new_v4(), "once");
    let first = store
        .append_message_once(&andrew, group, text("once"), soon(1), &id)
        .await
        .unwrap();
    let windows = raw_items_with_prefix(&table, keys::LIMIT_PREFIX).await;
    let snapshot = table.snapshot().await;
    let again = store
        .append_message_once(&andrew, group, text("once"), soon(2), &id)
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(table.snapshot().await, snapshot, "not counted");
    assert_eq!(
        raw_items_with_prefix(&table, keys::LIMIT_PREFIX).await,
        windows
    );
    // A new send in the same window is refused as before.
    let other = store
        .append_message_once(
            &andrew,
            group,
            text("more"),
            soon(3),
            &id_for(Uuid::new_v4(), "more"),
        )
        .await
        .unwrap_err();
    assert!(matches!(other, StoreError::RateLimited { .. }), "{other:?}");
}

#[tokio::test]
async fn a_group_of_fifty_named_by_the_client_fits_and_is_created_once() {
    let table = TestTable::new().await;
    let members = users(&table, 50).await;
    let store = table.store.clone().with_limits(Limits::defaults());
    let id = id_for(Uuid::new_v4(), "Everyone");
    table.requests.reset();
    let first = store
        .create_group_once(
            &members[0],
            &name("Everyone"),
            &members[1..],
            text("Welcome"),
            soon(0),
            &id,
        )
        .await
        .unwrap();
    // 48 founders (97 items, the record and the window: 99), then the last two together.
    assert_eq!(table.requests.of("TransactWriteItems"), 2);
    let group = first.group_uuid;
    assert_eq!(
        raw_items_with_prefix(&table, &keys::membership_pk(group))
            .await
            .len(),
        50
    );
    for member in &members {
        let row = crate::row_of(&table.store, member.uuid, group).await;
        assert_eq!(row.member_count, Some(50));
    }
    let snapshot = table.snapshot().await;
    let again = store
        .create_group_once(
            &members[0],
            &name("Everyone"),
            &members[1..],
            text("Welcome"),
            soon(30),
            &id,
        )
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(table.snapshot().await, snapshot, "the repeat wrote nothing");
    assert_eq!(raw_items_with_prefix(&table, "MBR#").await.len(), 50);
}

#[tokio::test]
async fn a_group_creation_repeated_after_a_block_answers_the_creation() {
    let table = TestTable::new().await;
    let members = users(&table, 3).await;
    let id = id_for(Uuid::new_v4(), "Trio");
    let first = table
        .store
        .create_group_once(
            &members[0],
            &name("Trio"),
            &members[1..],
            text("Hi"),
            soon(0),
            &id,
        )
        .await
        .unwrap();
    table
        .store
        .block(&members[1], &members[0], soon(1))
        .await
        .unwrap();
    let again = table
        .store
        .create_group_once(
            &members[0],
            &name("Trio"),
            &members[1..],
            text("Hi"),
            soon(2),
            &id,
        )
        .await
        .unwrap();
    assert_eq!(again, first);
    // A new creation is refused.
    let refused = table
        .store
        .create_group_once(
            &members[0],
            &name("Trio"),
            &members[1..],
            text("Hi"),
            soon(3),
            &id_for(Uuid::new_v4(), "Trio"),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Blocked), "{refused:?}");
}

#[tokio::test]
async fn a_repeat_finishes_a_named_creation_whose_second_transaction_failed() {
    let table = TestTable::new().await;
    let members = users(&table, 50).await;
    // The second transaction (the last two members) fails as the network would.
    let fail = FailRequests::mentioning(
        "TransactWriteItems",
        members[49].uuid.to_string(),
        Failure::Network,
    );
    let store = table.store_with(fail.clone());
    let id = id_for(Uuid::new_v4(), "Everyone");
    let everyone = name("Everyone");
    let create = |at| {
        store.create_group_once(
            &members[0],
            &everyone,
            &members[1..],
            text("Welcome"),
            at,
            &id,
        )
    };
    create(soon(0))
        .await
        .expect_err("the second transaction fails");
    let memberships = raw_items_with_prefix(&table, "MBR#").await;
    assert_eq!(memberships.len(), 48, "a whole group of 48 meanwhile");
    let group = memberships[0].0.trim_start_matches("MBR#").to_owned();

    fail.heal();
    let finished = create(soon(5)).await.unwrap();
    assert_eq!(finished.group_uuid.to_string(), group);
    assert_eq!(
        finished.created_at,
        soon(0).to_string(),
        "the first's message"
    );
    assert_eq!(raw_items_with_prefix(&table, "MBR#").await.len(), 50);
    for member in &members {
        let row = crate::row_of(&table.store, member.uuid, finished.group_uuid).await;
        assert_eq!(row.member_count, Some(50));
        assert_eq!(row.message, "Welcome");
    }
    assert_eq!(messages_of(&table, finished.group_uuid).await.len(), 1);
    // Finished: a further repeat reads and writes nothing else.
    let snapshot = table.snapshot().await;
    assert_eq!(create(soon(9)).await.unwrap(), finished);
    assert_eq!(table.snapshot().await, snapshot);
}
