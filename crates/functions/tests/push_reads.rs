//! `messaging-push`'s read frames, with the stream event in `events/` against DynamoDB Local
//! and the local stack's stand-in for the Management API: a receipt written or raised goes
//! to the other members' live connections, never to the reader's own or to strangers.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use functions::push::ReadFrame;
use local::filter::FilterCriteria;
use local::websocket::OpenConnections;
use messaging::items::MembershipItem;
use messaging::model::Connection;
use messaging::{Store, Timestamp};
use testkit::{FailRequests, Failure, TestTable};
use tokio::sync::mpsc::UnboundedReceiver;

mod support;
use support::recorded::PushHandler;
use support::{
    ANDREW, BAYKO, BAYKO_LONDO, LONDO, WITH_BAYKO, WITH_LONDO, event_file, management_api, uuid,
};

const MALLORY: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";

async fn put<T: serde::Serialize>(store: &Store, item: &T) {
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(serde_dynamo::to_item(item).unwrap()))
        .send()
        .await
        .unwrap();
}

async fn table_with_members() -> TestTable {
    let table = TestTable::new().await;
    for (group, a, b) in [
        (WITH_BAYKO, ANDREW, BAYKO),
        (WITH_LONDO, ANDREW, LONDO),
        (BAYKO_LONDO, BAYKO, LONDO),
    ] {
        for member in [a, b] {
            let membership = MembershipItem::new(
                uuid(group),
                uuid(member),
                "2026-11-01T00:00:00.000000+00:00",
            );
            put(&table.store, &membership).await;
        }
    }
    table
}

fn read_frames(receiver: &mut UnboundedReceiver<Bytes>) -> Vec<ReadFrame> {
    let mut frames = Vec::new();
    while let Ok(frame) = receiver.try_recv() {
        frames.push(serde_json::from_slice(&frame).expect("a read frame"));
    }
    frames
}

#[tokio::test]
async fn a_read_reaches_the_other_members_connections_only_once_per_reader() {
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let mut sockets: HashMap<&str, UnboundedReceiver<Bytes>> = HashMap::new();
    for (user, id) in [
        (ANDREW, "andrew-phone="),
        (ANDREW, "andrew-laptop"),
        (BAYKO, "bayko-tablet="),
        (LONDO, "londo-desktop"),
        (MALLORY, "mallory-phone"),
    ] {
        let at = time::OffsetDateTime::now_utc() - Duration::from_secs(3600);
        let connection =
            Connection::opened(uuid(user), id.to_owned(), Timestamp::from_datetime(at));
        table.store.put_connection(&connection).await.unwrap();
        sockets.insert(id, open.open(id));
    }
    let event = event_file("stream-read-receipts.json");
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );

    let (response, summary) = handler.handle(&event).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    // Bayko's read to Andrew's two devices; Londo's furthest read (two records, one
    // frame) to Bayko.
    assert_eq!(summary.frames_sent, 3, "{summary:?}");
    assert_eq!(summary.member_queries, 2, "one per conversation");
    assert_eq!(summary.skipped, 1, "the membership's change only");
    for device in ["andrew-phone=", "andrew-laptop"] {
        assert_eq!(
            read_frames(sockets.get_mut(device).unwrap()),
            [ReadFrame {
                kind: "read".into(),
                message_group_uuid: WITH_BAYKO.into(),
                handle: "bayko".into(),
                read_through: "2026-11-22T10:16:00.000001+00:00".into(),
            }],
            "{device}"
        );
    }
    assert_eq!(
        read_frames(sockets.get_mut("bayko-tablet=").unwrap()),
        [ReadFrame {
            kind: "read".into(),
            message_group_uuid: BAYKO_LONDO.into(),
            handle: "londo".into(),
            read_through: "2026-11-22T10:17:30.000000+00:00".into(),
        }],
        "the furthest of Londo's reads, not his own in Bayko's other conversation"
    );
    assert!(
        read_frames(sockets.get_mut("londo-desktop").unwrap()).is_empty(),
        "the reader's own connections get nothing"
    );
    assert!(read_frames(sockets.get_mut("mallory-phone").unwrap()).is_empty());
}

#[tokio::test]
async fn the_trigger_takes_receipts_and_not_the_membership_changes_beside_them() {
    let event = event_file("stream-read-receipts.json");
    let push = FilterCriteria::parse(&functions::push::FILTER_PATTERNS).unwrap();
    let stream = FilterCriteria::parse(&functions::batch::FILTER_PATTERNS).unwrap();
    let kept: Vec<&str> = event
        .records
        .iter()
        .filter(|r| push.matches(r))
        .map(|r| r.event_id.as_str())
        .collect();
    assert_eq!(kept.len(), 3);
    assert!(
        event
            .records
            .iter()
            .filter(|r| !push.matches(r))
            .all(|r| r.event_name == "MODIFY"
                && r.change.keys.get("sk")
                    == Some(&serde_dynamo::AttributeValue::S(format!("USER#{LONDO}"))))
    );
    assert!(event.records.iter().all(|r| !stream.matches(r)));
}

#[tokio::test]
async fn unreadable_recipients_of_a_read_are_reported_for_retry_and_the_rest_is_pushed() {
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let at = time::OffsetDateTime::now_utc() - Duration::from_secs(60);
    let andrew = Connection::opened(
        uuid(ANDREW),
        "andrew-phone=".into(),
        Timestamp::from_datetime(at),
    );
    table.store.put_connection(&andrew).await.unwrap();
    let mut socket = open.open("andrew-phone=");
    let store = table.store_with(FailRequests::mentioning(
        "Query",
        format!("MBR#{BAYKO_LONDO}"),
        Failure::Network,
    ));
    let handler = PushHandler::new(store, functions::push::local_management_client(&endpoint));
    let event = event_file("stream-read-receipts.json");

    let (response, _) = handler.handle(&event).await;

    let first_bayko_londo_receipt = event
        .records
        .iter()
        .find(|r| {
            r.change.keys.get("sk")
                == Some(&serde_dynamo::AttributeValue::S(format!("READ#{LONDO}")))
        })
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_bayko_londo_receipt.change.sequence_number,
        "Lambda retries from the failed conversation's first receipt"
    );
    assert_eq!(read_frames(&mut socket).len(), 1, "Bayko's read went out");
}

#[tokio::test]
async fn a_blockers_read_is_not_pushed_to_the_member_they_blocked() {
    let table = TestTable::new().await;
    // Bayko blocked Andrew: both memberships of their conversation name Bayko.
    for member in [ANDREW, BAYKO] {
        let membership = MembershipItem {
            blockers: vec![uuid(BAYKO)],
            ..MembershipItem::new(
                uuid(WITH_BAYKO),
                uuid(member),
                "2026-11-01T00:00:00.000000+00:00",
            )
        };
        put(&table.store, &membership).await;
    }
    for member in [BAYKO, LONDO] {
        let membership = MembershipItem::new(
            uuid(BAYKO_LONDO),
            uuid(member),
            "2026-11-01T00:00:00.000000+00:00",
        );
        put(&table.store, &membership).await;
    }
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let mut sockets: HashMap<&str, UnboundedReceiver<Bytes>> = HashMap::new();
    for (user, id) in [(ANDREW, "andrew-phone="), (BAYKO, "bayko-tablet=")] {
        let at = time::OffsetDateTime::now_utc() - Duration::from_secs(3600);
        let connection =
            Connection::opened(uuid(user), id.to_owned(), Timestamp::from_datetime(at));
        table.store.put_connection(&connection).await.unwrap();
        sockets.insert(id, open.open(id));
    }
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );

    let (response, _) = handler
        .handle(&event_file("stream-read-receipts.json"))
        .await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(
        read_frames(sockets.get_mut("andrew-phone=").unwrap()).is_empty(),
        "Bayko's read of the conversation he blocked"
    );
    // Londo's read of his conversation with Bayko still reaches Bayko.
    let bayko = read_frames(sockets.get_mut("bayko-tablet=").unwrap());
    assert_eq!(bayko.len(), 1);
    assert_eq!(bayko[0].handle, "londo");
}
