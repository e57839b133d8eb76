//! `ws-typing` with API Gateway-shaped WebSocket MESSAGE events (`events/ws-typing.json` and
//! variations), against DynamoDB Local and the local stack's Management API stand-in: typing
//! from a member reaches exactly the other members' connections, a keystroke inside 2 s is
//! dropped (on a warm environment without a request, across environments by the
//! membership's `typing_at`), and bad input gets an error frame on the sender's connection.

use std::time::Duration;

use axum::body::Bytes;
use functions::clock::SystemClock;
use functions::push::local_management_client;
use functions::websocket::WebSocketEvent;
use functions::ws_actions::{ActionError, ErrorFrame, Outcome, TypingFrame};
use local::websocket::OpenConnections;
use messaging::items::MembershipItem;
use messaging::model::Connection;
use messaging::{Store, Timestamp};
use serde_json::{Value, json};
use testkit::TestTable;
use tokio::sync::mpsc::UnboundedReceiver;

mod support;
use support::recorded::WsTyping;
use support::{ANDREW, BAYKO, LONDO, ManualClock, WITH_BAYKO, event_json, management_api, uuid};

/// The connection `events/ws-typing.json` comes from (Andrew's).
const SENDER_CONNECTION: &str = "CXuKzeB9oAMCJdw=";

struct World {
    table: TestTable,
    open: OpenConnections,
    endpoint: String,
}

impl World {
    /// Andrew and Bayko share `WITH_BAYKO`; Londo is not in it.
    async fn new() -> Self {
        let table = TestTable::new().await;
        for member in [ANDREW, BAYKO] {
            put(
                &table.store,
                &MembershipItem::new(
                    uuid(WITH_BAYKO),
                    uuid(member),
                    "2026-11-01T00:00:00.000000+00:00",
                ),
            )
            .await;
        }
        let open = OpenConnections::default();
        let endpoint = management_api(open.clone()).await;
        Self {
            table,
            open,
            endpoint,
        }
    }

    fn handler(&self) -> WsTyping {
        WsTyping::new(
            self.table.store.clone(),
            local_management_client(&self.endpoint),
        )
    }

    /// An open socket of `user` with its item, as `$connect` leaves it.
    async fn connect(&self, user: &str, id: &str) -> UnboundedReceiver<Bytes> {
        let connection = Connection::opened(uuid(user), id.to_owned(), Timestamp::now());
        self.table.store.put_connection(&connection).await.unwrap();
        self.open.open(id)
    }
}

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

/// `events/ws-typing.json` with another body (None: as recorded).
fn typing_event(body: Option<&str>) -> WebSocketEvent {
    let mut event = event_json("ws-typing.json");
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    serde_json::from_value(event).unwrap()
}

/// The same frame from another user's connection.
fn typing_event_of(user: &str, handle: &str, connection: &str) -> WebSocketEvent {
    let mut event = event_json("ws-typing.json");
    let context = &mut event["requestContext"];
    context["connectionId"] = json!(connection);
    context["authorizer"]["user_uuid"] = json!(user);
    context["authorizer"]["principalId"] = json!(user);
    context["authorizer"]["handle"] = json!(handle);
    context["authorizer"]["display_name"] = json!(handle.to_uppercase());
    serde_json::from_value(event).unwrap()
}

/// Every frame queued on a socket so far (posts are awaited by the handler: nothing is late).
fn frames(socket: &mut UnboundedReceiver<Bytes>) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Ok(frame) = socket.try_recv() {
        frames.push(serde_json::from_slice(&frame).unwrap());
    }
    frames
}

#[tokio::test]
async fn a_members_typing_reaches_every_connection_of_the_other_member_and_no_one_else() {
    let world = World::new().await;
    let mut sender = world.connect(ANDREW, SENDER_CONNECTION).await;
    let mut senders_laptop = world.connect(ANDREW, "andrew-laptop=").await;
    let mut bayko_phone = world.connect(BAYKO, "bayko-phone-A=").await;
    let mut bayko_laptop = world.connect(BAYKO, "bayko-laptop-B=").await;
    let mut londo = world.connect(LONDO, "londo-phone-C=").await;
    let handler = world.handler();
    world.table.requests.reset();

    let response = handler.handle(&typing_event(None)).await.unwrap();
    assert_eq!(response.status_code, 200);
    assert!(
        response.body.is_none(),
        "one-way: nothing for API Gateway to pass on"
    );

    let expected = serde_json::to_value(TypingFrame {
        kind: "typing".into(),
        message_group_uuid: uuid(WITH_BAYKO),
        handle: "andrewbrown".into(),
        display_name: "Andrew Brown".into(),
    })
    .unwrap();
    assert_eq!(
        expected,
        json!({
            "type": "typing",
            "message_group_uuid": WITH_BAYKO,
            "handle": "andrewbrown",
            "display_name": "Andrew Brown",
        })
    );
    assert_eq!(frames(&mut bayko_phone), std::slice::from_ref(&expected));
    assert_eq!(frames(&mut bayko_laptop), [expected]);
    assert!(frames(&mut sender).is_empty(), "not echoed to the sender");
    assert!(
        frames(&mut senders_laptop).is_empty(),
        "nor to the sender's other devices"
    );
    assert!(
        frames(&mut londo).is_empty(),
        "nor to anyone outside the conversation"
    );
    // The claim, the members, each member's connections.
    assert_eq!(
        world.table.requests.snapshot(),
        [("Query".to_owned(), 3), ("UpdateItem".to_owned(), 1)].into()
    );
}

#[tokio::test]
async fn typing_faster_than_every_two_seconds_is_dropped_here_for_free_and_elsewhere_by_the_table()
{
    let world = World::new().await;
    let _sender = world.connect(ANDREW, SENDER_CONNECTION).await;
    let mut bayko = world.connect(BAYKO, "bayko-phone-A=").await;
    let clock = ManualClock::new();
    let handler = world.handler().with_clock(clock.clone());
    let event = typing_event(None);

    assert_eq!(
        handler.handle_frame(&event).await.unwrap(),
        Outcome::Forwarded { delivered: 1 }
    );
    assert_eq!(frames(&mut bayko).len(), 1);

    // The next keystrokes on the same warm environment: dropped without a request.
    world.table.requests.reset();
    clock.advance(Duration::from_millis(1_900));
    for _ in 0..5 {
        assert_eq!(
            handler.handle_frame(&event).await.unwrap(),
            Outcome::Dropped
        );
    }
    assert_eq!(world.table.requests.total(), 0);

    // Another environment (its own memory) that gets the next keystroke: the membership's
    // typing_at drops it, in one request, and nothing is posted.
    let elsewhere = world.handler().with_clock(std::sync::Arc::new(SystemClock));
    assert_eq!(
        elsewhere.handle_frame(&event).await.unwrap(),
        Outcome::Dropped
    );
    assert_eq!(
        world.table.requests.snapshot(),
        [("UpdateItem".to_owned(), 1)].into()
    );
    assert!(frames(&mut bayko).is_empty(), "dropped, not queued");

    // Two seconds after the last forwarded one, it goes again.
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        handler.handle_frame(&event).await.unwrap(),
        Outcome::Forwarded { delivered: 1 }
    );
    assert_eq!(frames(&mut bayko).len(), 1);
}

#[tokio::test]
async fn a_non_members_typing_gets_an_error_frame_and_reaches_no_one() {
    let world = World::new().await;
    let mut andrew = world.connect(ANDREW, SENDER_CONNECTION).await;
    let mut bayko = world.connect(BAYKO, "bayko-phone-A=").await;
    let mut londo = world.connect(LONDO, "londo-phone-C=").await;
    let handler = world.handler();
    let before = world.table.snapshot().await;

    let outcome = handler
        .handle_frame(&typing_event_of(LONDO, "londo", "londo-phone-C="))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Refused(ActionError::GroupNotFound));
    assert_eq!(
        frames(&mut londo),
        [json!({
            "type": "error",
            "action": "typing",
            "code": "message_group_not_found",
            "message": "no such conversation",
        })]
    );
    assert!(frames(&mut andrew).is_empty() && frames(&mut bayko).is_empty());
    assert_eq!(world.table.snapshot().await, before, "nothing written");
}

#[tokio::test]
async fn bad_frames_get_precise_error_frames_and_cost_no_table_request() {
    let world = World::new().await;
    let mut andrew = world.connect(ANDREW, SENDER_CONNECTION).await;
    let mut bayko = world.connect(BAYKO, "bayko-phone-A=").await;
    let handler = world.handler();
    world.table.requests.reset();
    for (body, code) in [
        ("{\"action\":\"typing\"", "json_invalid"),
        ("typing", "json_invalid"),
        ("", "json_invalid"),
        ("[\"typing\"]", "json_not_object"),
        ("{\"action\":\"typing\"}", "message_group_uuid_invalid"),
        (
            "{\"action\":\"typing\",\"message_group_uuid\":\"not-a-uuid\"}",
            "message_group_uuid_invalid",
        ),
        (
            "{\"action\":\"typing\",\"message_group_uuid\":42}",
            "message_group_uuid_invalid",
        ),
        // As `$default` gets it: an action no route has.
        ("{\"action\":\"dance\"}", "action_unknown"),
        (
            "{\"message_group_uuid\":\"5ae290ed-55d1-47a0-bc6d-fe2bc2700399\"}",
            "action_unknown",
        ),
    ] {
        let mut event = typing_event(Some(body));
        if code == "action_unknown" || code.starts_with("json") {
            event.request_context.route_key = "$default".into();
        }
        let outcome = handler.handle_frame(&event).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Refused(ref e) if e.code() == code),
            "{body}: {outcome:?}"
        );
        let got = frames(&mut andrew);
        assert_eq!(got.len(), 1, "{body}");
        let frame: ErrorFrame = serde_json::from_value(got[0].clone()).unwrap();
        assert_eq!(
            (frame.kind.as_str(), frame.code.as_str()),
            ("error", code),
            "{body}"
        );
    }
    // The limits every action shares (ClientFrame::of_event): over 4 KiB, and a binary frame.
    let long = format!(
        r#"{{"action":"typing","message_group_uuid":"5ae290ed-55d1-47a0-bc6d-fe2bc2700399","pad":"{}"}}"#,
        "x".repeat(functions::ws_actions::MAX_FRAME_BYTES)
    );
    let mut binary = typing_event(Some(
        r#"{"action":"typing","message_group_uuid":"5ae290ed-55d1-47a0-bc6d-fe2bc2700399"}"#,
    ));
    binary.is_base64_encoded = true;
    for (event, code) in [
        (typing_event(Some(&long)), "body_too_large"),
        (binary, "json_invalid"),
    ] {
        handler.handle_frame(&event).await.unwrap();
        let got = frames(&mut andrew);
        let frame: ErrorFrame = serde_json::from_value(got[0].clone()).unwrap();
        assert_eq!(
            (frame.action.as_deref(), frame.code.as_str()),
            (Some("typing"), code)
        );
    }
    assert!(frames(&mut bayko).is_empty());
    assert_eq!(world.table.requests.total(), 0);
}

#[tokio::test]
async fn an_event_without_the_authorizers_context_is_answered_without_a_panic() {
    let world = World::new().await;
    let handler = world.handler();
    let mut event = typing_event(None);
    event.request_context.authorizer.clear();
    assert_eq!(
        handler.handle_frame(&event).await.unwrap(),
        Outcome::Unanswerable
    );
    let mut event = typing_event(None);
    event.request_context.connection_id.clear();
    assert_eq!(
        handler.handle(&event).await.unwrap().status_code,
        200,
        "API Gateway is answered; nobody can be told"
    );
}
