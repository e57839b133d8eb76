//! Group conversations and unread counts against DynamoDB Local, with DynamoDB's lagging
//! index played where it matters: creating (one transaction, two for 50 members), members
//! added and leaving (every row's `member_count` kept right, so fan-outs never wait for a
//! row that will not come), and marking read racing the fan-out.

use std::collections::HashMap;

use messaging::coalesce::Newest;
use messaging::items::{InboxRowItem, MembershipItem};
use messaging::keys;
use messaging::model::ConversationKind;
use messaging::store::{MEMBERS_IN_CREATING_TRANSACTION, MarkedRead, ReadUpTo, RowPositions};
use messaging::validate::{GroupName, Handle, MessageText};
use messaging::{InboxEntry, Message, PageRequest, Store, StoreError, Timestamp, User};
use testkit::{IndexFault, LaggingIndex, TestTable};
use uuid::Uuid;

fn text(value: &str) -> MessageText {
    MessageText::parse(value).unwrap()
}

fn name(value: &str) -> GroupName {
    GroupName::parse(value).unwrap()
}

fn at(value: &str) -> Timestamp {
    Timestamp::parse(value).unwrap()
}

fn second(s: u32) -> Timestamp {
    at(&format!(
        "2025-07-01T09:{:02}:{:02}.000000+00:00",
        s / 60,
        s % 60
    ))
}

fn cold() -> RowPositions {
    RowPositions::disabled()
}

/// `owner`'s row of `group`, read from the table (not the index); fails unless exactly one.
async fn row_of(store: &Store, owner: Uuid, group: Uuid) -> InboxRowItem {
    let rows: Vec<InboxRowItem> = inbox_rows(store, owner)
        .await
        .into_iter()
        .filter(|row| row.message_group_uuid == group)
        .collect();
    assert_eq!(rows.len(), 1, "{owner}: {rows:?}");
    rows.into_iter().next().unwrap()
}

async fn inbox_rows(store: &Store, owner: Uuid) -> Vec<InboxRowItem> {
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(keys::inbox_pk(owner)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    output
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).unwrap())
        .collect()
}

async fn entry(store: &Store, owner: Uuid, group: Uuid) -> Option<InboxEntry> {
    store
        .list_inbox(owner, &PageRequest::new(100, None).unwrap())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|row| row.group_uuid == group)
}

async fn memberships(table: &TestTable, group: Uuid) -> Vec<MembershipItem> {
    table
        .snapshot()
        .await
        .iter()
        .map(|json| serde_json::from_str::<serde_json::Value>(json).unwrap())
        .filter(|item| item["pk"] == keys::membership_pk(group))
        .map(|item| serde_json::from_value(item).unwrap())
        .collect()
}

async fn users(table: &TestTable, count: usize) -> Vec<User> {
    users_named(table, "member", count).await
}

async fn users_named(table: &TestTable, prefix: &str, count: usize) -> Vec<User> {
    let mut users = Vec::with_capacity(count);
    for i in 0..count {
        users.push(table.user(&format!("{prefix}{i:02}")).await);
    }
    users
}

/// A group of `size` members created by the first at second 0.
async fn group_of(table: &TestTable, size: usize) -> (Vec<User>, Message) {
    let members = users(table, size).await;
    let first = table
        .store
        .create_group(
            &members[0],
            &name("Bootcamp"),
            &members[1..],
            text("Welcome"),
            second(0),
        )
        .await
        .unwrap();
    table.requests.reset();
    (members, first)
}

async fn say(table: &TestTable, who: &User, group: Uuid, s: u32, words: &str) -> Message {
    let message = table
        .store
        .append_message(who, group, text(words), second(s))
        .await
        .unwrap();
    table.requests.reset();
    message
}

/// The invariant unread counts keep, whatever the interleaving: a row counts exactly the
/// messages from others after what its owner read, up to the message it shows.
async fn assert_unread_is_exact(store: &Store, owner: &User, messages: &[Message]) {
    let group = messages[0].group_uuid;
    let row = row_of(store, owner.uuid, group).await;
    let read = row.read_through.clone().unwrap_or_default();
    let expected = messages
        .iter()
        .filter(|m| m.sender.uuid != owner.uuid)
        .filter(|m| m.created_at.as_str() > read.as_str())
        .filter(|m| m.created_at.as_str() <= row.last_message_at())
        .count();
    assert_eq!(row.unread as usize, expected, "{}: {row:?}", owner.handle);
}

#[tokio::test]
async fn a_group_is_created_in_one_transaction_with_its_welcome_unread_for_the_others() {
    let table = TestTable::new().await;
    let creator = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    table.requests.reset();

    let first = table
        .store
        .create_group(
            &creator,
            &name("  Bootcamp "),
            &[bayko.clone(), londo.clone(), bayko.clone()],
            text("Welcome"),
            second(0),
        )
        .await
        .unwrap();

    assert_eq!(table.requests.total(), 1, "{:?}", table.requests.snapshot());
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    let group = first.group_uuid;
    for (user, unread) in [(&creator, 0), (&bayko, 1), (&londo, 1)] {
        let entry = entry(&table.store, user.uuid, group).await.unwrap();
        assert_eq!(entry.kind, ConversationKind::Group);
        assert_eq!(entry.name.as_deref(), Some("Bootcamp"));
        assert_eq!(entry.member_count, Some(3), "duplicates collapse");
        assert_eq!(entry.other.handle, "andrewbrown", "the last sender");
        assert_eq!(entry.last_message, "Welcome");
        assert_eq!(entry.unread, unread, "{}", user.handle);
    }
    let members = memberships(&table, group).await;
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m.kind == ConversationKind::Group));
    // Members read it and post to it like any conversation; others cannot.
    let page = PageRequest::new(20, None).unwrap();
    let read = table
        .store
        .list_messages(londo.uuid, group, &page)
        .await
        .unwrap();
    assert_eq!(read.items, vec![first.clone()]);
    say(&table, &londo, group, 1, "Hi all").await;
    let stranger = table.user("stranger").await;
    let refused = table.store.list_messages(stranger.uuid, group, &page).await;
    assert!(matches!(refused, Err(StoreError::NotMember(_))));
    let listed = table.store.group_members(bayko.uuid, group).await.unwrap();
    let handles: Vec<&str> = listed.iter().map(|m| m.handle.as_str()).collect();
    assert_eq!(handles, ["andrewbrown", "bayko", "londo"]);
    assert!(listed.iter().all(|m| m.joined_at == first.created_at));
    let refused = table.store.group_members(stranger.uuid, group).await;
    assert!(matches!(refused, Err(StoreError::NotMember(_))));
}

#[tokio::test]
async fn groups_refuse_their_creator_as_a_guest_no_guests_and_more_than_fifty() {
    let table = TestTable::new().await;
    let people = users(&table, 51).await;
    let create = |others: Vec<User>| {
        let store = table.store.clone();
        let creator = people[0].clone();
        async move {
            store
                .create_group(&creator, &name("G"), &others, text("hi"), second(0))
                .await
        }
    };
    assert!(matches!(
        create(vec![people[1].clone(), people[0].clone()]).await,
        Err(StoreError::SelfConversation)
    ));
    assert!(matches!(
        create(Vec::new()).await,
        Err(StoreError::GroupWithoutOthers)
    ));
    assert!(matches!(
        create(people[1..].to_vec()).await,
        Err(StoreError::GroupTooLarge {
            members: 51,
            max: 50
        })
    ));
    assert!(
        table
            .snapshot()
            .await
            .iter()
            .all(|item| !item.contains("MSG#"))
    );
}

#[tokio::test]
async fn fifty_members_take_a_second_transaction_that_adds_the_last_as_an_add_would() {
    let table = TestTable::new().await;
    assert_eq!(MEMBERS_IN_CREATING_TRANSACTION, 49, "49 × 2 + 1 = 99 items");
    let (members, first) = group_of(&table, 50).await;
    let group = first.group_uuid;

    let (members_now, welcome_unread): (Vec<u32>, Vec<u32>) = {
        let mut counts = Vec::new();
        let mut unread = Vec::new();
        for member in &members {
            let row = row_of(&table.store, member.uuid, group).await;
            counts.push(row.member_count.unwrap());
            unread.push(row.unread);
        }
        (counts, unread)
    };
    assert!(
        members_now.iter().all(|&count| count == 50),
        "{members_now:?}"
    );
    assert_eq!(welcome_unread[0], 0);
    assert!(welcome_unread[1..].iter().all(|&u| u == 1), "the 50th too");
    assert_eq!(memberships(&table, group).await.len(), 50);

    // One message moves all 50 rows in one transaction (100 items), and a replay changes
    // nothing.
    let reply = say(&table, &members[49], group, 1, "Thanks").await;
    let batch = Newest::of([reply.clone()]).unwrap();
    let advance = table
        .store
        .advance_conversation(&batch, &cold())
        .await
        .unwrap();
    assert_eq!(advance.moved, 50, "{advance:?}");
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    let before = table.snapshot().await;
    table
        .store
        .advance_conversation(&batch, &cold())
        .await
        .unwrap();
    assert_eq!(table.snapshot().await, before);
    let row = row_of(&table.store, members[0].uuid, group).await;
    assert_eq!((row.unread, row.user_handle.as_str()), (1, "member49"));
    assert_eq!(
        row_of(&table.store, members[49].uuid, group).await.unread,
        1
    );
}

#[tokio::test]
async fn added_members_start_read_at_the_newest_message_and_every_row_counts_them() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let positions = RowPositions::default();
    let hello = say(&table, &members[1], group, 1, "hello").await;
    table
        .store
        .advance_inbox_rows(&hello, &positions)
        .await
        .unwrap();
    // Sent, not yet fanned out when the newcomers join.
    let pending = say(&table, &members[2], group, 2, "pending").await;
    let newcomers = vec![table.user("bayko").await, table.user("londo").await];
    table.requests.reset();

    let added = table
        .store
        .add_members(members[0].uuid, group, &newcomers, second(3))
        .await
        .unwrap();

    assert_eq!((added.added, added.members), (2, 5));
    assert_eq!(
        table.requests.of("Query"),
        3,
        "memberships, index, newest message"
    );
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    for member in members.iter().chain(&newcomers) {
        let row = row_of(&table.store, member.uuid, group).await;
        assert_eq!(row.member_count, Some(5), "{}", member.handle);
    }
    for newcomer in &newcomers {
        let row = row_of(&table.store, newcomer.uuid, group).await;
        assert_eq!(
            row.last_message_at(),
            pending.created_at,
            "the newest message"
        );
        assert_eq!(row.unread, 0, "nothing from before joining counts");
        assert_eq!(row.name.as_deref(), Some("Bootcamp"));
    }
    // Adding them again changes nothing.
    let again = table
        .store
        .add_members(members[1].uuid, group, &newcomers, second(4))
        .await
        .unwrap();
    assert_eq!((again.added, again.members), (0, 5));

    // The stream's hint still holds the three old rows: the new count breaks its
    // conditions, the index shows all five, and the next message moves every row.
    let after = say(&table, &newcomers[0], group, 5, "glad to be here").await;
    let batch = Newest::of([pending.clone(), after.clone()]).unwrap();
    let advance = table
        .store
        .advance_conversation(&batch, &positions)
        .await
        .unwrap();
    assert!(!advance.hinted);
    assert_eq!(advance.moved, 5, "{advance:?}");
    let newcomer = row_of(&table.store, newcomers[1].uuid, group).await;
    assert_eq!(
        (newcomer.message.as_str(), newcomer.unread),
        ("glad to be here", 1)
    );
    let all = [first, hello, pending, after];
    for member in members.iter().chain(&newcomers) {
        assert_unread_is_exact(&table.store, member, &all).await;
    }
}

#[tokio::test]
async fn adding_is_refused_to_strangers_to_direct_conversations_and_past_fifty() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 48).await;
    let group = first.group_uuid;
    let extra = users_named(&table, "extra", 3).await;
    let stranger = table.user("stranger").await;

    let refused = table
        .store
        .add_members(stranger.uuid, group, &extra[..1], second(1))
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotMember(_))),
        "{refused:?}"
    );
    let refused = table
        .store
        .add_members(members[0].uuid, group, &extra, second(1))
        .await;
    assert!(
        matches!(refused, Err(StoreError::GroupTooLarge { members: 51, .. })),
        "{refused:?}"
    );
    let refused = table
        .store
        .add_members(members[0].uuid, group, &[members[0].clone()], second(1))
        .await;
    assert!(matches!(refused, Err(StoreError::SelfConversation)));
    let direct = table
        .store
        .send_to_user(&members[0], &stranger, text("hi"), second(1))
        .await
        .unwrap();
    let refused = table
        .store
        .add_members(members[0].uuid, direct.group_uuid, &extra[..1], second(2))
        .await;
    assert!(matches!(refused, Err(StoreError::DirectConversation(_))));
    let refused = table
        .store
        .leave_group(stranger.uuid, direct.group_uuid)
        .await;
    assert!(matches!(refused, Err(StoreError::DirectConversation(_))));
    assert_eq!(memberships(&table, group).await.len(), 48);
    // Up to fifty is fine.
    let added = table
        .store
        .add_members(members[0].uuid, group, &extra[..2], second(3))
        .await
        .unwrap();
    assert_eq!(added.members, 50);
}

#[tokio::test]
async fn leaving_keeps_every_remaining_rows_count_so_fan_outs_never_wait_for_a_gone_row() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let positions = RowPositions::default();
    table
        .store
        .advance_inbox_rows(&first, &positions)
        .await
        .unwrap();

    table
        .store
        .leave_group(members[2].uuid, group)
        .await
        .unwrap();

    assert!(inbox_rows(&table.store, members[2].uuid).await.is_empty());
    assert_eq!(memberships(&table, group).await.len(), 2);
    for member in &members[..2] {
        let row = row_of(&table.store, member.uuid, group).await;
        assert_eq!(row.member_count, Some(2));
    }
    let page = PageRequest::new(20, None).unwrap();
    let refused = table
        .store
        .list_messages(members[2].uuid, group, &page)
        .await;
    assert!(matches!(refused, Err(StoreError::NotMember(_))));
    let refused = table.store.leave_group(members[2].uuid, group).await;
    assert!(matches!(refused, Err(StoreError::NotMember(_))));

    // The hint remembers three rows; the index shows two, and two are expected: one
    // index read, no waiting.
    let reply = say(&table, &members[1], group, 1, "bye then").await;
    let advance = table
        .store
        .advance_inbox_rows(&reply, &positions)
        .await
        .unwrap();
    assert_eq!((advance.moved, advance.index_reads), (2, 1), "{advance:?}");
    // The last two leave; nothing remains but the messages.
    table
        .store
        .leave_group(members[0].uuid, group)
        .await
        .unwrap();
    table
        .store
        .leave_group(members[1].uuid, group)
        .await
        .unwrap();
    assert!(memberships(&table, group).await.is_empty());
    assert!(inbox_rows(&table.store, members[1].uuid).await.is_empty());
}

#[tokio::test]
async fn membership_changes_wait_for_a_lagging_index_to_show_every_row() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 4).await;
    let group = first.group_uuid;
    let index = LaggingIndex::new()
        .then(IndexFault::ShowNothing, 1)
        .then(IndexFault::Hide(2), 1);
    let store = table.store_with(index.clone());

    store.leave_group(members[3].uuid, group).await.unwrap();

    assert_eq!(index.reads(), 3, "two short views re-read, never acted on");
    for member in &members[..3] {
        let row = row_of(&table.store, member.uuid, group).await;
        assert_eq!(row.member_count, Some(3));
    }
    // Ghosts of moved rows are one row each, not a reason to refuse.
    let reply = say(&table, &members[0], group, 1, "moved").await;
    store.advance_inbox_rows(&reply, &cold()).await.unwrap();
    let index = index.then(IndexFault::Ghosts, 1);
    let newcomer = table.user("newcomer").await;
    store
        .add_members(
            members[0].uuid,
            group,
            std::slice::from_ref(&newcomer),
            second(2),
        )
        .await
        .unwrap();
    assert_eq!(index.pending(), 0);
    assert_eq!(
        row_of(&table.store, newcomer.uuid, group)
            .await
            .member_count,
        Some(4)
    );
    // An index that never catches up is a transient failure that changes nothing.
    let stuck = table.store_with(LaggingIndex::new().then(IndexFault::Hide(1), 100));
    let error = stuck.leave_group(members[1].uuid, group).await.unwrap_err();
    assert!(matches!(error, StoreError::IndexLagging { .. }), "{error}");
    assert!(error.is_transient());
    assert_eq!(memberships(&table, group).await.len(), 4);
}

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
        .mark_read(members[2].uuid, group, &ReadUpTo::Row)
        .await
        .unwrap();

    assert_eq!(marked, MarkedRead::Marked { unread: 0 });
    assert_eq!(table.requests.of("Query"), 1);
    assert_eq!(table.requests.of("UpdateItem"), 1);
    assert_eq!(table.requests.total(), 2);
    let row = row_of(&table.store, members[2].uuid, group).await;
    assert_eq!((row.unread, row.unread_at.len()), (0, 0));
    assert_eq!(row.read_through.as_deref(), Some(hello.created_at.as_str()));
    table.requests.reset();
    let again = table
        .store
        .mark_read(members[2].uuid, group, &ReadUpTo::Row)
        .await
        .unwrap();
    assert_eq!(again, MarkedRead::AlreadyRead);
    assert_eq!(table.requests.total(), 1);
    // Someone else's read is theirs alone.
    assert_eq!(row_of(&table.store, members[1].uuid, group).await.unread, 1);
    let stranger = table.user("stranger").await;
    let none = table
        .store
        .mark_read(stranger.uuid, group, &ReadUpTo::Row)
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
        .read_messages(reader.uuid, group, &page)
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
        .read_messages(reader.uuid, group, &second_page)
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
        .mark_read(reader.uuid, group, &ReadUpTo::Message(shown))
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
        .mark_read(reader.uuid, group, &ReadUpTo::Row)
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

    let marked = store
        .mark_read(
            reader.uuid,
            group,
            &ReadUpTo::Message(m1.created_at.clone()),
        )
        .await
        .unwrap();

    assert_eq!(index.pending(), 0);
    assert_eq!(marked, MarkedRead::Marked { unread: 1 });
    assert_eq!(table.requests.of("UpdateItem"), 2, "the stale write failed");
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
            let reader = member.uuid;
            let up_to = if round % 2 == 0 {
                ReadUpTo::Row
            } else {
                ReadUpTo::Message(messages[messages.len() - 2].created_at.clone())
            };
            tasks.push(tokio::spawn(async move {
                store.mark_read(reader, group, &up_to).await.map(|_| ())
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

#[tokio::test]
async fn users_are_looked_up_by_many_handles_at_once() {
    let table = TestTable::new().await;
    let bayko = table.user("Bayko").await;
    let londo = table.user("londo").await;
    table.requests.reset();
    let handles: Vec<Handle> = ["bayko", "LONDO", "nobody"]
        .iter()
        .map(|h| Handle::parse(h).unwrap())
        .collect();

    let found = table.store.users_by_handles(&handles).await.unwrap();

    assert_eq!(table.requests.of("BatchGetItem"), 1);
    assert_eq!(found.len(), 2);
    assert_eq!(found["bayko"].uuid, bayko.uuid);
    assert_eq!(found["londo"].uuid, londo.uuid);
}

#[tokio::test]
async fn rows_beyond_one_transaction_move_in_chunks_and_a_failed_chunk_is_retried_alone() {
    use testkit::{FailRequests, Failure};
    // More rows than one transaction holds cannot come from the API (50 members, 100
    // items); conversations written by other tools can have them, so the fan-out chunks.
    let table = TestTable::new().await;
    let group = Uuid::new_v4();
    let start = "2025-08-01T00:00:00.000000+00:00";
    let mut owners: Vec<Uuid> = (0..60).map(|_| Uuid::new_v4()).collect();
    owners.sort_by_key(|owner| keys::inbox_pk(*owner));
    for owner in &owners {
        let row = InboxRowItem {
            pk: keys::inbox_pk(*owner),
            sk: start.into(),
            message_group_uuid: group,
            message: "start".into(),
            user_uuid: Uuid::new_v4(),
            user_display_name: "Someone".into(),
            user_handle: "someone".into(),
            last_message_at: Some(start.into()),
            member_count: Some(60),
            ..InboxRowItem::default()
        };
        table
            .put_raw(serde_dynamo::to_item(row).unwrap())
            .await
            .unwrap();
        let membership = MembershipItem::new(group, *owner, start);
        table
            .put_raw(serde_dynamo::to_item(membership).unwrap())
            .await
            .unwrap();
    }
    let sender = messaging::UserSummary {
        uuid: owners[0],
        handle: "first".into(),
        display_name: "First".into(),
    };
    let message = Message::new(
        group,
        sender,
        "to all sixty".into(),
        "2025-08-01T00:00:01.000000+00:00".into(),
    );
    let batch = Newest::of([message.clone()]).unwrap();
    // The second chunk (rows sorted by owner) names the last owner.
    let fail = FailRequests::mentioning(
        "TransactWriteItems",
        keys::inbox_pk(owners[59]),
        Failure::Network,
    );
    let failing = table.store_with(fail.clone());

    let error = failing
        .advance_conversation(&batch, &cold())
        .await
        .unwrap_err();

    assert!(error.is_transient(), "{error}");
    let moved = |row: &InboxRowItem| row.last_message_at() == message.created_at;
    let mut first_chunk = Vec::new();
    for owner in &owners {
        first_chunk.push(row_of(&table.store, *owner, group).await);
    }
    assert!(
        first_chunk[..50].iter().all(moved),
        "the first chunk landed"
    );
    assert!(!first_chunk[50..].iter().any(moved), "the second did not");

    fail.heal();
    let advance = failing.advance_conversation(&batch, &cold()).await.unwrap();
    assert_eq!((advance.moved, advance.current), (10, 50), "{advance:?}");
    for (i, owner) in owners.iter().enumerate() {
        let row = row_of(&table.store, *owner, group).await;
        assert!(moved(&row));
        if i < 50 {
            assert_eq!(row, first_chunk[i], "never moved back or counted twice");
        }
        assert_eq!(row.unread, u32::from(i != 0));
    }
}
