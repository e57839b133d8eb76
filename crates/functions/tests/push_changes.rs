//! `messaging-push` for changes of messages: `message_updated`, `message_deleted` and
//! `reaction` frames, from the stream events in `events/`, to every live connection of every
//! member, in stream order with the conversation's new messages, through the local stack's
//! Management API stand-in.

use std::collections::HashMap;

use aws_lambda_events::dynamodb::Event;
use axum::body::Bytes;
use functions::push::changes::{ChangeFrame, MessageDeleted, MessageUpdated, ReactionChanged};
use local::filter::FilterCriteria;
use local::websocket::OpenConnections;
use messaging::Timestamp;
use messaging::items::MembershipItem;
use messaging::model::Connection;
use serde_json::Value;
use testkit::TestTable;
use tokio::sync::mpsc::UnboundedReceiver;

mod support;
use support::recorded::PushHandler;
use support::{ANDREW, BAYKO, LONDO, WITH_BAYKO, event_file, management_api, uuid};

async fn members_of_with_bayko(table: &TestTable) {
    for member in [ANDREW, BAYKO] {
        let item = MembershipItem::new(
            uuid(WITH_BAYKO),
            uuid(member),
            "2026-11-01T00:00:00.000000+00:00",
        );
        table
            .store
            .client()
            .put_item()
            .table_name(table.store.table())
            .set_item(Some(serde_dynamo::to_item(item).unwrap()))
            .send()
            .await
            .unwrap();
    }
}

fn frames(receiver: &mut UnboundedReceiver<Bytes>) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Ok(frame) = receiver.try_recv() {
        frames.push(serde_json::from_slice(&frame).expect("a JSON frame"));
    }
    frames
}

/// The new message of `stream-insert-message.json`, then its edit, a reaction and its
/// delete (`stream-message-changes.json`), in one batch.
fn message_and_its_changes() -> Event {
    let mut event = event_file("stream-insert-message.json");
    event
        .records
        .extend(event_file("stream-message-changes.json").records);
    event
}

#[tokio::test]
async fn every_member_gets_the_change_frames_in_stream_order_after_the_message() {
    let table = TestTable::new().await;
    members_of_with_bayko(&table).await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let mut sockets: HashMap<&str, UnboundedReceiver<Bytes>> = HashMap::new();
    let hour = time::Duration::hours(1);
    for (user, id) in [
        (ANDREW, "andrew-phone="),
        (ANDREW, "andrew-laptop"),
        (BAYKO, "bayko-tablet="),
        (LONDO, "londo-desktop"),
    ] {
        let at = Timestamp::from_datetime(time::OffsetDateTime::now_utc() - hour);
        let connection = Connection::opened(uuid(user), id.to_owned(), at);
        table.store.put_connection(&connection).await.unwrap();
        sockets.insert(id, open.open(id));
    }
    table.requests.reset();
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );

    let (response, summary) = handler.handle(&message_and_its_changes()).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!((summary.messages, summary.changes), (1, 3));
    assert_eq!(summary.conversations, 1);
    assert_eq!(
        summary.member_queries, 1,
        "changes share the conversation's read"
    );
    assert_eq!(summary.frames_sent, 4 * 3);
    let expected = [
        serde_json::json!({
            "type": "message",
            "message_group_uuid": WITH_BAYKO,
            "uuid": "273a37f4-0000-4000-8000-c8d97bb951c4",
            "display_name": "Andrew Bayko",
            "handle": "bayko",
            "message": "Did the inbox move?",
            "created_at": "2026-11-22T10:15:30.123456+00:00",
        }),
        serde_json::to_value(ChangeFrame::MessageUpdated(MessageUpdated {
            message_group_uuid: WITH_BAYKO.into(),
            uuid: "273a37f4-0000-4000-8000-c8d97bb951c4".into(),
            message: "Did the inbox move? Both rows?".into(),
            edited_at: "2026-11-22T10:17:02.250000+00:00".into(),
            handle: "bayko".into(),
            display_name: "Andrew Bayko".into(),
            created_at: "2026-11-22T10:15:30.123456+00:00".into(),
        }))
        .unwrap(),
        serde_json::to_value(ChangeFrame::Reaction(ReactionChanged {
            message_group_uuid: WITH_BAYKO.into(),
            uuid: "273a37f4-0000-4000-8000-c8d97bb951c4".into(),
            emoji: "👍".into(),
            handle: "andrewbrown".into(),
            display_name: "Andrew Brown".into(),
            added: true,
            count: 1,
        }))
        .unwrap(),
        serde_json::to_value(ChangeFrame::MessageDeleted(MessageDeleted {
            message_group_uuid: WITH_BAYKO.into(),
            uuid: "273a37f4-0000-4000-8000-c8d97bb951c4".into(),
            deleted_at: "2026-11-22T10:18:45.500000+00:00".into(),
            created_at: "2026-11-22T10:15:30.123456+00:00".into(),
        }))
        .unwrap(),
    ];
    for device in ["andrew-phone=", "andrew-laptop", "bayko-tablet="] {
        assert_eq!(
            frames(sockets.get_mut(device).unwrap()),
            expected,
            "{device}"
        );
    }
    assert!(
        frames(sockets.get_mut("londo-desktop").unwrap()).is_empty(),
        "not a member"
    );
    assert_eq!(expected[1]["type"], ChangeFrame::MESSAGE_UPDATED);
    assert_eq!(expected[2]["type"], ChangeFrame::REACTION);
    assert_eq!(expected[3]["type"], ChangeFrame::MESSAGE_DELETED);
}

#[tokio::test]
async fn a_change_frame_to_a_gone_connection_deletes_it_as_a_message_frame_does() {
    let table = TestTable::new().await;
    members_of_with_bayko(&table).await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let at = Timestamp::from_datetime(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    // Closed without a $disconnect: API Gateway answers 410.
    table
        .store
        .put_connection(&Connection::opened(uuid(BAYKO), "bayko-closed=".into(), at))
        .await
        .unwrap();
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );

    let (response, summary) = handler
        .handle(&event_file("stream-message-changes.json"))
        .await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.gone_connections, 1, "one post, then known gone");
    assert!(
        table
            .store
            .connections_of(uuid(BAYKO))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_push_trigger_takes_every_change_and_the_stream_trigger_only_edits_and_deletes() {
    let changes = event_file("stream-message-changes.json");
    let push = FilterCriteria::parse(&functions::push::FILTER_PATTERNS).unwrap();
    let stream = FilterCriteria::parse(&functions::batch::FILTER_PATTERNS).unwrap();
    let kinds = |criteria: &FilterCriteria| -> Vec<String> {
        changes
            .records
            .iter()
            .filter(|r| criteria.matches(r))
            .map(|r| match r.change.new_image.get("change") {
                Some(serde_dynamo::AttributeValue::S(kind)) => kind.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(kinds(&push), ["edited", "reacted", "deleted"]);
    assert_eq!(kinds(&stream), ["edited", "deleted"]);
    // A MODIFY naming no change (stream-modify.json) reaches neither.
    let bare = event_file("stream-modify.json");
    assert!(
        bare.records
            .iter()
            .all(|r| !push.matches(r) && !stream.matches(r))
    );
}
