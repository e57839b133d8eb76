//! Group conversations: creating (one transaction, two for 50 members), members added
//! (every row's `member_count` raised with them, so fan-outs never miss a new row) and
//! leaving (the leaver's own items only; the fan-out corrects the count it leaves too high),
//! adds waiting for a lagging index to show every row.

use messaging::coalesce::Newest;
use messaging::items::MembershipItem;
use messaging::keys;
use messaging::model::ConversationKind;
use messaging::store::{MEMBERS_IN_CREATING_TRANSACTION, RowPositions};
use messaging::{InboxEntry, Message, PageRequest, Store, StoreError, User};
use testkit::{IndexFault, LaggingIndex, TestTable};
use uuid::Uuid;

use crate::{
    assert_unread_is_exact, cold, group_of, inbox_rows, name, raw_items_with_prefix, row_of, say,
    second, text, users, users_named,
};

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
        // Beside the memberships, the partition holds the group's markers (ENDED,
        // DEPARTURES).
        .filter(|item| {
            item["sk"]
                .as_str()
                .is_some_and(|sk| sk.starts_with("USER#"))
        })
        .map(|item| serde_json::from_value(item).unwrap())
        .collect()
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

    assert_eq!(table.requests.total(), 2, "{:?}", table.requests.snapshot());
    // The block items between the creator and each guest, then the group.
    assert_eq!(table.requests.of("BatchGetItem"), 1);
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
        .leave_group(stranger.uuid, direct.group_uuid, second(9))
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
async fn leaving_touches_only_the_leavers_items_and_the_next_fan_out_corrects_the_count() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    let positions = RowPositions::default();
    table
        .store
        .advance_inbox_rows(&first, &positions)
        .await
        .unwrap();
    let others_before = [
        row_of(&table.store, members[0].uuid, group).await,
        row_of(&table.store, members[1].uuid, group).await,
    ];
    table.requests.reset();

    table
        .store
        .leave_group(members[2].uuid, group, second(1))
        .await
        .unwrap();

    assert!(inbox_rows(&table.store, members[2].uuid).await.is_empty());
    assert_eq!(memberships(&table, group).await.len(), 2);
    // Nobody else's row was touched: a member who keeps moving them cannot hold it off.
    for (member, before) in members[..2].iter().zip(&others_before) {
        assert_eq!(&row_of(&table.store, member.uuid, group).await, before);
    }
    // One write: the leaver's membership and row, and the group's departures marker.
    assert_eq!(table.requests.of("TransactWriteItems"), 1);
    let page = PageRequest::new(20, None).unwrap();
    let refused = table
        .store
        .list_messages(members[2].uuid, group, &page)
        .await;
    assert!(matches!(refused, Err(StoreError::NotMember(_))));
    let refused = table
        .store
        .leave_group(members[2].uuid, group, second(2))
        .await;
    assert!(matches!(refused, Err(StoreError::NotMember(_))));

    // The hint remembers three rows (one gone); the index shows two under a count of
    // three; re-read, the memberships say two: the rows move and carry that count.
    let reply = say(&table, &members[1], group, 3, "bye then").await;
    let advance = table
        .store
        .advance_inbox_rows(&reply, &positions)
        .await
        .unwrap();
    assert_eq!((advance.moved, advance.index_reads), (2, 2), "{advance:?}");
    for member in &members[..2] {
        let row = row_of(&table.store, member.uuid, group).await;
        assert_eq!(row.member_count, Some(2), "{}", member.handle);
        assert_eq!(row.last_message_at(), reply.created_at);
    }
    // Corrected: the next message is one transaction again, no read.
    let next = say(&table, &members[0], group, 4, "still here").await;
    let advance = table
        .store
        .advance_inbox_rows(&next, &positions)
        .await
        .unwrap();
    assert!(advance.hinted, "{advance:?}");
    assert_eq!(table.requests.of("Query"), 0);

    // The last two leave; nothing remains but the messages.
    table
        .store
        .leave_group(members[0].uuid, group, second(5))
        .await
        .unwrap();
    table
        .store
        .leave_group(members[1].uuid, group, second(6))
        .await
        .unwrap();
    assert!(memberships(&table, group).await.is_empty());
    assert!(inbox_rows(&table.store, members[1].uuid).await.is_empty());
}

#[tokio::test]
async fn adds_after_a_leave_raise_every_count_and_the_limit_holds() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 50).await;
    let group = first.group_uuid;
    table
        .store
        .leave_group(members[49].uuid, group, second(1))
        .await
        .unwrap();
    // The rows still say 50 (nothing has moved them since); 49 members.
    assert_eq!(
        row_of(&table.store, members[0].uuid, group)
            .await
            .member_count,
        Some(50)
    );
    let extra = users_named(&table, "extra", 2).await;

    let added = table
        .store
        .add_members(members[0].uuid, group, &extra[..1], second(2))
        .await
        .unwrap();

    assert_eq!(added.members, 50);
    // Raised past the 50 it read (an add always changes the count it conditions on), so
    // never below the rows that exist; the newcomer's row says what the memberships say.
    assert_eq!(
        row_of(&table.store, members[0].uuid, group)
            .await
            .member_count,
        Some(51)
    );
    assert_eq!(
        row_of(&table.store, extra[0].uuid, group)
            .await
            .member_count,
        Some(50)
    );
    let refused = table
        .store
        .add_members(members[1].uuid, group, &extra[1..], second(3))
        .await;
    assert!(
        matches!(refused, Err(StoreError::GroupTooLarge { members: 51, .. })),
        "{refused:?}"
    );
    // The next fan-out sees 50 owners under a count of 51 and writes the memberships' 50.
    let reply = say(&table, &extra[0], group, 4, "hello").await;
    table
        .store
        .advance_inbox_rows(&reply, &cold())
        .await
        .unwrap();
    for member in [&members[0], &extra[0]] {
        let row = row_of(&table.store, member.uuid, group).await;
        assert_eq!(row.member_count, Some(50), "{}", member.handle);
        assert_eq!(row.last_message_at(), reply.created_at);
    }
}

#[tokio::test]
async fn concurrent_adds_after_a_leave_never_pass_fifty() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 50).await;
    let group = first.group_uuid;
    table
        .store
        .leave_group(members[49].uuid, group, second(1))
        .await
        .unwrap();
    let extra = users_named(&table, "extra", 4).await;
    // The rows say 50 and there are 49 members: four members each add one newcomer at once
    // (each from its own client, as four Lambdas would). Whatever the interleaving, one
    // lands and the others re-read and find the group full.
    let stores: Vec<Store> = (0..4).map(|_| table.store_with_own_client()).collect();
    let adds = stores
        .iter()
        .zip(&extra)
        .enumerate()
        .map(|(i, (store, user))| {
            store.add_members(
                members[i].uuid,
                group,
                std::slice::from_ref(user),
                second(2),
            )
        });
    let outcomes = futures_util::future::join_all(adds).await;

    let landed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(landed, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().err())
            .all(|error| matches!(error, StoreError::GroupTooLarge { .. })),
        "{outcomes:?}"
    );
    assert_eq!(memberships(&table, group).await.len(), 50);
}

#[tokio::test]
async fn two_last_members_leaving_at_once_end_the_group_once() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 2).await;
    let group = first.group_uuid;
    let (a, b) = (table.store_with_own_client(), table.store_with_own_client());

    let (left_a, left_b) = tokio::join!(
        a.leave_group(members[0].uuid, group, second(1)),
        b.leave_group(members[1].uuid, group, second(1))
    );

    left_a.unwrap();
    left_b.unwrap();
    // Whichever landed second saw itself last (the departures marker made it re-read).
    let markers = raw_items_with_prefix(&table, "MBR#").await;
    assert_eq!(
        markers,
        vec![
            (
                keys::membership_pk(group),
                keys::GROUP_DEPARTURES_SK.to_owned()
            ),
            (keys::membership_pk(group), keys::GROUP_ENDED_SK.to_owned()),
        ]
    );
}

#[tokio::test]
async fn adds_wait_for_a_lagging_index_to_show_every_row_and_leaves_do_not() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 4).await;
    let group = first.group_uuid;
    let index = LaggingIndex::new()
        .then(IndexFault::ShowNothing, 1)
        .then(IndexFault::Hide(2), 1);
    let store = table.store_with(index.clone());
    let newcomers = users_named(&table, "newcomer", 2).await;

    store
        .add_members(members[0].uuid, group, &newcomers[..1], second(1))
        .await
        .unwrap();

    assert_eq!(index.reads(), 3, "two short views re-read, never acted on");
    for member in members.iter().chain(&newcomers[..1]) {
        let row = row_of(&table.store, member.uuid, group).await;
        assert_eq!(row.member_count, Some(5), "{}", member.handle);
    }
    // Ghosts of moved rows are one row each, not a reason to refuse.
    let reply = say(&table, &members[0], group, 2, "moved").await;
    store.advance_inbox_rows(&reply, &cold()).await.unwrap();
    let index = index.then(IndexFault::Ghosts, 1);
    store
        .add_members(members[0].uuid, group, &newcomers[1..], second(3))
        .await
        .unwrap();
    assert_eq!(index.pending(), 0);
    assert_eq!(
        row_of(&table.store, newcomers[1].uuid, group)
            .await
            .member_count,
        Some(6)
    );
    // An index that never catches up is a transient failure that changes nothing.
    let stuck = table.store_with(LaggingIndex::new().then(IndexFault::Hide(1), 100));
    let stranger = table.user("stranger").await;
    let error = stuck
        .add_members(members[1].uuid, group, &[stranger], second(4))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::IndexLagging { .. }), "{error}");
    assert!(error.is_transient());
    assert_eq!(memberships(&table, group).await.len(), 6);
    // A leave needs only the leaver's own row, and finds it in the table when the index
    // shows nothing.
    let blind = table.store_with(LaggingIndex::new().then(IndexFault::ShowNothing, 100));
    blind
        .leave_group(members[1].uuid, group, second(5))
        .await
        .unwrap();
    assert!(inbox_rows(&table.store, members[1].uuid).await.is_empty());
    assert_eq!(memberships(&table, group).await.len(), 5);
}

#[tokio::test]
async fn a_group_whose_last_member_left_ends_and_its_last_message_moves_nothing() {
    let table = TestTable::new().await;
    let (members, first) = group_of(&table, 3).await;
    let group = first.group_uuid;
    // Posted, then everyone leaves before the stream fans it out.
    let last_words = say(&table, &members[1], group, 1, "bye all").await;
    for (left, member) in members.iter().enumerate() {
        assert!(
            raw_items_with_prefix(&table, "MBR#")
                .await
                .iter()
                .all(|(_, sk)| sk != keys::GROUP_ENDED_SK),
            "not ended while {} member(s) remain",
            members.len() - left
        );
        table
            .store
            .leave_group(member.uuid, group, second(9))
            .await
            .unwrap();
    }
    assert_eq!(
        raw_items_with_prefix(&table, "MBR#").await,
        vec![
            (
                keys::membership_pk(group),
                keys::GROUP_DEPARTURES_SK.to_owned()
            ),
            (keys::membership_pk(group), keys::GROUP_ENDED_SK.to_owned()),
        ],
        "only the markers are left"
    );
    assert!(table.store.memberships(group).await.unwrap().is_empty());

    table.requests.reset();
    let advance = table
        .store
        .advance_conversation(&Newest::of([last_words]).unwrap(), &cold())
        .await
        .expect("a group that ended is not a failure");

    assert!(advance.ended, "{advance:?}");
    assert_eq!(advance.moved, 0);
    // The index, then one read of MBR#<group>: no member, and the end marker.
    assert_eq!(
        table.requests.of("Query"),
        2,
        "{:?}",
        table.requests.snapshot()
    );

    // A conversation that never had members is still what it was: data that is wrong.
    let orphan = Message::new(
        Uuid::new_v4(),
        members[0].summary(),
        "to nobody".into(),
        second(2).to_string(),
    );
    let error = table
        .store
        .advance_conversation(&Newest::of([orphan]).unwrap(), &cold())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NoMembers(_)), "{error:?}");
}
