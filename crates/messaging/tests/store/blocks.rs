//! Blocking: while either of two users has blocked the other, neither can start or post to
//! their direct conversation, nor make a group with the other; nothing refused is written;
//! the blocker's inbox and push lose the direct conversation until the block is lifted.

use std::collections::HashSet;
use std::sync::Mutex;

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use messaging::keys;
use messaging::store::{Blocking, Unblocking};
use messaging::{PageRequest, StoreError, User};
use testkit::TestTable;
use uuid::Uuid;

use crate::{inbox, name, second, text};

/// Andrew and Bayko, who share a direct conversation (Andrew started it at second 0).
async fn acquainted(table: &TestTable) -> (User, User, Uuid) {
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let hello = table
        .store
        .send_to_user(&andrew, &bayko, text("Hello"), second(0))
        .await
        .unwrap();
    table.requests.reset();
    (andrew, bayko, hello.group_uuid)
}

/// Every way either of `a` and `b` can message the other directly, each refused as
/// `Blocked`, and the table unchanged by all of them.
async fn assert_neither_can_message(table: &TestTable, a: &User, b: &User, group: Option<Uuid>) {
    let before = table.snapshot().await;
    for (from, to) in [(a, b), (b, a)] {
        let by_handle = table
            .store
            .send_to_user(from, to, text("Are you there?"), second(10))
            .await;
        assert!(
            matches!(by_handle, Err(StoreError::Blocked)),
            "{} → {}: {by_handle:?}",
            from.handle,
            to.handle
        );
        if let Some(group) = group {
            let in_conversation = table
                .store
                .append_message(from, group, text("Are you there?"), second(11))
                .await;
            assert!(
                matches!(in_conversation, Err(StoreError::Blocked)),
                "{} in {group}: {in_conversation:?}",
                from.handle
            );
        }
    }
    assert_eq!(table.snapshot().await, before, "nothing refused is written");
}

#[tokio::test]
async fn a_block_stops_both_members_of_a_direct_conversation_whoever_blocked() {
    for blocker_is_the_starter in [true, false] {
        let table = TestTable::new().await;
        let (andrew, bayko, group) = acquainted(&table).await;
        let (blocker, blocked) = if blocker_is_the_starter {
            (&andrew, &bayko)
        } else {
            (&bayko, &andrew)
        };
        assert_eq!(
            table
                .store
                .block(blocker, blocked, second(5))
                .await
                .unwrap(),
            Blocking::Blocked
        );
        assert_neither_can_message(&table, &andrew, &bayko, Some(group)).await;
        // Reading the history is not posting: both still can.
        for reader in [&andrew, &bayko] {
            let page = table
                .store
                .list_messages(reader.uuid, group, &PageRequest::new(10, None).unwrap())
                .await
                .unwrap();
            assert_eq!(page.items.len(), 1);
        }
    }
}

#[tokio::test]
async fn a_block_before_any_conversation_refuses_starting_one_either_way() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    table.store.block(&bayko, &andrew, second(1)).await.unwrap();
    assert_neither_can_message(&table, &andrew, &bayko, None).await;
    assert_eq!(
        table
            .store
            .conversation_between(andrew.uuid, bayko.uuid, true)
            .await
            .unwrap(),
        None
    );

    // Lifting it lets the conversation start, and nobody is marked as a blocker in it.
    assert_eq!(
        table.store.unblock(bayko.uuid, andrew.uuid).await.unwrap(),
        Unblocking::Unblocked
    );
    let hello = table
        .store
        .send_to_user(&andrew, &bayko, text("Hello"), second(20))
        .await
        .unwrap();
    table
        .store
        .append_message(&bayko, hello.group_uuid, text("Hi"), second(21))
        .await
        .unwrap();
}

#[tokio::test]
async fn unblocking_restores_posting_only_once_neither_blocks() {
    let table = TestTable::new().await;
    let (andrew, bayko, group) = acquainted(&table).await;
    table.store.block(&andrew, &bayko, second(1)).await.unwrap();
    table.store.block(&bayko, &andrew, second(2)).await.unwrap();

    // Andrew lifts his block; Bayko's still holds, for both.
    table.store.unblock(andrew.uuid, bayko.uuid).await.unwrap();
    assert_neither_can_message(&table, &andrew, &bayko, Some(group)).await;

    table.store.unblock(bayko.uuid, andrew.uuid).await.unwrap();
    let again = table
        .store
        .append_message(&andrew, group, text("Friends again?"), second(30))
        .await
        .unwrap();
    assert_eq!(again.group_uuid, group);
    let reply = table
        .store
        .send_to_user(&bayko, &andrew, text("Friends again."), second(31))
        .await
        .unwrap();
    assert_eq!(reply.group_uuid, group, "the same conversation goes on");
}

#[tokio::test]
async fn blocking_twice_and_unblocking_nobody_write_nothing() {
    let table = TestTable::new().await;
    let (andrew, bayko, _) = acquainted(&table).await;
    let londo = table.user("londo").await;
    table.store.block(&andrew, &bayko, second(1)).await.unwrap();

    let before = table.snapshot().await;
    assert_eq!(
        table.store.block(&andrew, &bayko, second(9)).await.unwrap(),
        Blocking::AlreadyBlocked
    );
    assert_eq!(
        table.store.unblock(andrew.uuid, londo.uuid).await.unwrap(),
        Unblocking::NotBlocked
    );
    // Bayko never blocked Andrew: lifting that takes nothing of Andrew's block.
    assert_eq!(
        table.store.unblock(bayko.uuid, andrew.uuid).await.unwrap(),
        Unblocking::NotBlocked
    );
    assert_eq!(table.snapshot().await, before);

    let listed = table
        .store
        .list_blocks(andrew.uuid, &PageRequest::new(10, None).unwrap())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].blocked_at,
        second(1).to_string(),
        "the first block's time"
    );
}

#[tokio::test]
async fn nobody_blocks_themself() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let before = table.snapshot().await;
    assert!(matches!(
        table.store.block(&andrew, &andrew, second(1)).await,
        Err(StoreError::SelfBlock)
    ));
    assert!(matches!(
        table.store.unblock(andrew.uuid, andrew.uuid).await,
        Err(StoreError::SelfBlock)
    ));
    assert_eq!(table.snapshot().await, before);
}

#[tokio::test]
async fn a_blocked_pair_cannot_be_put_in_a_group_by_either_but_a_third_person_can() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let group = table
        .store
        .create_group(
            &andrew,
            &name("Crew"),
            std::slice::from_ref(&londo),
            text("Hi"),
            second(0),
        )
        .await
        .unwrap()
        .group_uuid;
    table.store.block(&bayko, &andrew, second(1)).await.unwrap();

    let before = table.snapshot().await;
    for (creator, other) in [(&andrew, &bayko), (&bayko, &andrew)] {
        let created = table
            .store
            .create_group(
                creator,
                &name("Together"),
                &[londo.clone(), other.clone()],
                text("Hi"),
                second(2),
            )
            .await;
        assert!(matches!(created, Err(StoreError::Blocked)), "{created:?}");
    }
    let added = table
        .store
        .add_members(andrew.uuid, group, std::slice::from_ref(&bayko), second(3))
        .await;
    assert!(matches!(added, Err(StoreError::Blocked)), "{added:?}");
    assert_eq!(table.snapshot().await, before, "nothing refused is written");

    // Londo blocked nobody and nobody blocked Londo: a group of all three is Londo's call,
    // and once in it, both post there (existing shared groups stay).
    let added = table
        .store
        .add_members(londo.uuid, group, std::slice::from_ref(&bayko), second(4))
        .await
        .unwrap();
    assert_eq!(added.members, 3);
    for member in [&andrew, &bayko] {
        table
            .store
            .append_message(member, group, text("Still here"), second(5))
            .await
            .unwrap();
    }
    // And leaving still works.
    table
        .store
        .leave_group(bayko.uuid, group, messaging::Timestamp::now())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_group_of_fifty_reads_every_named_pair_in_one_batch() {
    let table = TestTable::new().await;
    let creator = table.user("creator").await;
    let mut others = Vec::new();
    for i in 0..49 {
        others.push(table.user(&format!("guest{i:02}")).await);
    }
    // The very last guest blocked the creator: found in the one batch, before any write.
    table
        .store
        .block(&others[48], &creator, second(1))
        .await
        .unwrap();
    table.requests.reset();
    let before = table.snapshot().await;
    let created = table
        .store
        .create_group(&creator, &name("All"), &others, text("Hi"), second(2))
        .await;
    assert!(matches!(created, Err(StoreError::Blocked)), "{created:?}");
    assert_eq!(table.requests.of("BatchGetItem"), 1);
    assert_eq!(table.requests.of("TransactWriteItems"), 0);
    assert_eq!(table.snapshot().await, before);

    table
        .store
        .unblock(others[48].uuid, creator.uuid)
        .await
        .unwrap();
    table.requests.reset();
    table
        .store
        .create_group(&creator, &name("All"), &others, text("Hi"), second(3))
        .await
        .unwrap();
    assert_eq!(table.requests.of("BatchGetItem"), 1, "98 keys, one request");
}

#[tokio::test]
async fn posting_costs_no_extra_request_and_starting_one_transaction() {
    let table = TestTable::new().await;
    let (andrew, bayko, group) = acquainted(&table).await;
    table
        .store
        .append_message(&bayko, group, text("Reply"), second(1))
        .await
        .unwrap();
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [("TransactWriteItems".to_owned(), 1)]
    );

    let londo = table.user("londo").await;
    table
        .store
        .send_to_user(&andrew, &londo, text("Hello"), second(2))
        .await
        .unwrap();
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    assert_eq!(table.requests.total(), 2, "GetItem of the pair + the start");
}

#[tokio::test]
async fn the_blockers_inbox_hides_the_direct_conversation_until_unblocked() {
    let table = TestTable::new().await;
    let (andrew, bayko, direct) = acquainted(&table).await;
    let londo = table.user("londo").await;
    let crew = table
        .store
        .create_group(
            &andrew,
            &name("Crew"),
            &[bayko.clone(), londo.clone()],
            text("Hi"),
            second(1),
        )
        .await
        .unwrap()
        .group_uuid;
    let groups_of = |entries: Vec<messaging::InboxEntry>| -> HashSet<Uuid> {
        entries.into_iter().map(|entry| entry.group_uuid).collect()
    };

    table.store.block(&andrew, &bayko, second(2)).await.unwrap();
    assert_eq!(
        groups_of(inbox(&table.store, andrew.uuid).await),
        HashSet::from([crew]),
        "the blocker's inbox: the shared group stays, the direct conversation goes"
    );
    assert_eq!(
        groups_of(inbox(&table.store, bayko.uuid).await),
        HashSet::from([crew, direct]),
        "the blocked one's inbox is as it was"
    );
    // The push: the blocker is no recipient of the direct conversation; of the group, yes.
    assert_eq!(table.store.recipients(direct).await.unwrap(), [bayko.uuid]);
    assert_eq!(table.store.recipients(crew).await.unwrap().len(), 3);

    table.store.unblock(andrew.uuid, bayko.uuid).await.unwrap();
    assert_eq!(
        groups_of(inbox(&table.store, andrew.uuid).await),
        HashSet::from([crew, direct])
    );
    let mut recipients = table.store.recipients(direct).await.unwrap();
    recipients.sort();
    let mut both = vec![andrew.uuid, bayko.uuid];
    both.sort();
    assert_eq!(recipients, both);
}

#[tokio::test]
async fn a_hidden_row_keeps_the_inbox_paging() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let mut others = Vec::new();
    for (i, handle) in ["bayko", "londo", "mando"].into_iter().enumerate() {
        let other = table.user(handle).await;
        table
            .store
            .send_to_user(&other, &andrew, text("Hello"), second(i as u32))
            .await
            .unwrap();
        others.push(other);
    }
    // Londo's row is the newest but one: it would end the first page of two.
    table
        .store
        .block(&andrew, &others[1], second(9))
        .await
        .unwrap();
    let first = table
        .store
        .list_inbox(andrew.uuid, &PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1, "Mando's; Londo's is hidden");
    assert_eq!(first.items[0].other.uuid, others[2].uuid);
    let second_page = table
        .store
        .list_inbox(
            andrew.uuid,
            &PageRequest::new(2, first.next_cursor).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(second_page.items.len(), 1);
    assert_eq!(second_page.items[0].other.uuid, others[0].uuid);
    assert_eq!(second_page.next_cursor, None);
}

#[tokio::test]
async fn the_block_list_pages_with_cursors_of_its_own_partition() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let mut blocked = Vec::new();
    for i in 0..5 {
        let user = table.user(&format!("spammer{i}")).await;
        table.store.block(&andrew, &user, second(i)).await.unwrap();
        blocked.push(user);
    }
    let bayko = table.user("bayko").await;
    table.store.block(&bayko, &andrew, second(9)).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = table
            .store
            .list_blocks(andrew.uuid, &PageRequest::new(2, cursor).unwrap())
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<Uuid> = blocked.iter().map(|user| user.uuid).collect();
    expected.sort();
    assert_eq!(
        seen.iter().map(|entry| entry.user.uuid).collect::<Vec<_>>(),
        expected,
        "each once, in uuid order; Bayko's block of Andrew is Bayko's, not listed"
    );
    let spammer0 = seen
        .iter()
        .find(|entry| entry.user.uuid == blocked[0].uuid)
        .unwrap();
    assert_eq!(spammer0.user.handle, "spammer0");
    assert_eq!(spammer0.user.display_name, "User spammer0");
    assert_eq!(spammer0.blocked_at, second(0).to_string());

    // Bayko's cursor does not read Andrew's list.
    let foreign = messaging::page::encode_cursor(
        &keys::blocks_pk(bayko.uuid),
        &keys::block(bayko.uuid, andrew.uuid).sk,
    );
    let refused = table
        .store
        .list_blocks(andrew.uuid, &PageRequest::new(2, Some(foreign)).unwrap())
        .await;
    assert!(matches!(refused, Err(StoreError::Page(_))), "{refused:?}");
}

/// Runs `hook` once, just before the first `TransactWriteItems` of the client it is on: a
/// write of someone else landing between what the caller read and what it writes.
struct BeforeFirstTransaction {
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for BeforeFirstTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeFirstTransaction")
    }
}

impl Intercept for BeforeFirstTransaction {
    fn name(&self) -> &'static str {
        "BeforeFirstTransaction"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context
            .input()
            .downcast_ref::<TransactWriteItemsInput>()
            .is_some()
        {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_conversation_started_while_a_block_is_written_is_still_closed_by_it() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    // Between the block's read of the pair (none yet) and its transaction, Andrew starts
    // the conversation (another environment, its own client and runtime).
    let other = table.store_with_own_client();
    let (from, to) = (andrew.clone(), bayko.clone());
    let start = move || {
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(other.send_to_user(&from, &to, text("Hello"), second(1)))
                .unwrap();
        })
        .join()
        .unwrap();
    };
    let blocking_store = table.store_with(BeforeFirstTransaction {
        hook: Mutex::new(Some(Box::new(start))),
    });

    assert_eq!(
        blocking_store
            .block(&bayko, &andrew, second(2))
            .await
            .unwrap(),
        Blocking::Blocked
    );
    let group = table
        .store
        .conversation_between(andrew.uuid, bayko.uuid, true)
        .await
        .unwrap()
        .expect("the start landed first");
    // The block's check on the pair failed, it read the pair again and marked the
    // memberships the start wrote: the new conversation is closed both ways.
    assert_neither_can_message(&table, &andrew, &bayko, Some(group)).await;
}
