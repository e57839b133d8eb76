//! The typing signal's write against DynamoDB Local: one conditional UpdateItem of the
//! sender's membership decides member / too soon / blocked / not a member, across callers
//! (the shared state is the item, not a process), and stores nothing else.

use std::time::Duration;

use messaging::keys;
use messaging::store::{TYPING_AT_ATTRIBUTE, TYPING_INTERVAL, TypingClaim};
use testkit::TestTable;

use super::{name, second, text};

const T0: i64 = 1_800_000_000_000;

#[tokio::test]
async fn one_typing_per_member_and_conversation_each_interval_one_request_each() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let group = table
        .store
        .create_group(
            &andrew,
            &name("G"),
            std::slice::from_ref(&bayko),
            text("hi"),
            second(0),
        )
        .await
        .unwrap()
        .group_uuid;
    let store = &table.store;
    table.requests.reset();

    let claim = |member, at| store.claim_typing(group, member, at, TYPING_INTERVAL);
    assert_eq!(claim(andrew.uuid, T0).await.unwrap(), TypingClaim::Forward);
    assert_eq!(table.requests.total(), 1, "{:?}", table.requests.snapshot());
    assert_eq!(table.requests.of("UpdateItem"), 1);
    // A keystroke 1.999 s later is dropped; another member is not held up by it.
    assert_eq!(
        claim(andrew.uuid, T0 + 1_999).await.unwrap(),
        TypingClaim::TooSoon
    );
    assert_eq!(
        claim(bayko.uuid, T0 + 1_999).await.unwrap(),
        TypingClaim::Forward
    );
    // The drop did not move the window: exactly one interval after the last forward passes.
    assert_eq!(
        claim(andrew.uuid, T0 + 2_000).await.unwrap(),
        TypingClaim::Forward
    );
    assert_eq!(
        claim(andrew.uuid, T0 + 3_000).await.unwrap(),
        TypingClaim::TooSoon
    );
    // A second environment (its own client) shares the state: it is on the item.
    let other = table.store_with_own_client();
    assert_eq!(
        other
            .claim_typing(group, andrew.uuid, T0 + 3_500, TYPING_INTERVAL)
            .await
            .unwrap(),
        TypingClaim::TooSoon
    );
    // A non-member gets no item written, and is told so.
    assert_eq!(claim(londo.uuid, T0).await.unwrap(), TypingClaim::NotMember);
    // Seven claims (the other client counts into the same counter), one request each.
    assert_eq!(
        table.requests.snapshot(),
        [("UpdateItem".to_owned(), 7)].into()
    );
    let memberships = store.memberships(group).await.unwrap();
    assert_eq!(memberships.len(), 2, "nothing was written for the outsider");
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(keys::membership(group, andrew.uuid).pk),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(keys::membership(group, andrew.uuid).sk),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        item[TYPING_AT_ATTRIBUTE].as_n().unwrap(),
        &(T0 + 2_000).to_string(),
        "the last forwarded instant, nothing else"
    );
}

#[tokio::test]
async fn a_left_member_is_not_a_member_and_a_blocked_direct_conversation_refuses_both() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let store = &table.store;
    let group = store
        .create_group(
            &andrew,
            &name("G"),
            &[bayko.clone(), londo.clone()],
            text("hi"),
            second(0),
        )
        .await
        .unwrap()
        .group_uuid;
    // Typing first, so the leave deletes a membership carrying `typing_at`.
    assert_eq!(
        store
            .claim_typing(group, londo.uuid, T0, TYPING_INTERVAL)
            .await
            .unwrap(),
        TypingClaim::Forward
    );
    store
        .leave_group(londo.uuid, group, second(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_typing(group, londo.uuid, T0 + 5_000, TYPING_INTERVAL)
            .await
            .unwrap(),
        TypingClaim::NotMember
    );

    let direct = store
        .send_to_user(&andrew, &bayko, text("hello"), second(2))
        .await
        .unwrap()
        .group_uuid;
    assert_eq!(
        store
            .claim_typing(direct, bayko.uuid, T0, TYPING_INTERVAL)
            .await
            .unwrap(),
        TypingClaim::Forward
    );
    store.block(&andrew, &bayko, second(3)).await.unwrap();
    for member in [andrew.uuid, bayko.uuid] {
        assert_eq!(
            store
                .claim_typing(direct, member, T0 + 60_000, TYPING_INTERVAL)
                .await
                .unwrap(),
            TypingClaim::Blocked,
            "neither side of a block learns the other is typing"
        );
    }
    // A send's own condition still holds after typing wrote the membership: typing never
    // keeps a member from sending.
    store
        .claim_typing(group, bayko.uuid, T0 + 60_000, Duration::from_secs(2))
        .await
        .unwrap();
    store
        .append_message(&bayko, group, text("still here"), second(4))
        .await
        .unwrap();
}
