//! Presence over the WebSocket API, with `events/ws-presence.json` (an API Gateway `MESSAGE`
//! event) against DynamoDB Local and the local Management API stand-in: `ws-presence`'s
//! answers and error frames, and the frames `ws-connect`/`ws-disconnect` post to watchers
//! only.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use std::time::Duration;

use functions::presence::PresenceFrame;
use functions::push::local_management_client;
use functions::websocket::WebSocketEvent;
use functions::ws_actions::{ActionError, ErrorFrame, PRESENCE_ACTION};
use local::websocket::OpenConnections;
use messaging::model::Connection;
use messaging::validate::{GroupName, MessageText};
use messaging::{Timestamp, User, keys};
use serde_json::{Value, json};
use testkit::TestTable;
use uuid::Uuid;

mod support;
use support::recorded::{WsConnections, WsPresence};
use support::{event_json, management_api};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The authorizer context of `user`'s connection `id`, opened a moment ago, its token valid
/// for an hour.
fn context_of(event: &mut Value, user: &User, id: &str) {
    let context = &mut event["requestContext"];
    context["connectionId"] = json!(id);
    context["connectedAt"] = json!((now() - 1) * 1000);
    context["authorizer"]["user_uuid"] = json!(user.uuid.to_string());
    context["authorizer"]["principalId"] = json!(user.uuid.to_string());
    context["authorizer"]["handle"] = json!(user.handle.as_str());
    context["authorizer"]["exp"] = json!((now() + 3600).to_string());
}

fn route_event(name: &str, user: &User, id: &str) -> WebSocketEvent {
    let mut event = event_json(name);
    context_of(&mut event, user, id);
    serde_json::from_value(event).unwrap()
}

/// `events/ws-presence.json` from `user`'s connection `id` with `body` as the frame's text.
fn presence_event(user: &User, id: &str, body: &str) -> WebSocketEvent {
    let mut event = event_json("ws-presence.json");
    context_of(&mut event, user, id);
    event["body"] = json!(body);
    serde_json::from_value(event).unwrap()
}

fn asking_for(group: Uuid) -> String {
    json!({"action": "presence", "message_group_uuid": group.to_string()}).to_string()
}

/// The frame the route answers with.
fn answered(response: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> Value {
    assert_eq!(response.status_code, 200);
    match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => serde_json::from_str(text).unwrap(),
        other => panic!("a text body, got {other:?}"),
    }
}

/// The code of the error frame the route answers with (every action's shape).
fn refused(response: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> String {
    let frame: ErrorFrame = serde_json::from_value(answered(response)).unwrap();
    assert_eq!(
        (frame.kind.as_str(), frame.action.as_deref()),
        ("error", Some("presence"))
    );
    assert!(!frame.message.is_empty());
    frame.code
}

/// The next frame on `socket`, within a few seconds.
async fn next_frame<T: AsRef<[u8]>>(socket: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> Value {
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.recv())
        .await
        .expect("a frame within 5 s")
        .expect("the socket is open");
    serde_json::from_slice(frame.as_ref()).unwrap()
}

async fn direct(table: &TestTable, a: &User, b: &User) -> Uuid {
    table
        .store
        .send_to_user(a, b, MessageText::parse("Hello").unwrap(), Timestamp::now())
        .await
        .unwrap()
        .group_uuid
}

#[test]
fn the_event_file_parses_as_api_gateway_sends_it() {
    let event: WebSocketEvent = serde_json::from_value(event_json("ws-presence.json")).unwrap();
    assert_eq!(event.request_context.route_key, PRESENCE_ACTION);
    let frame = functions::ws_actions::ClientFrame::of_event(&event).unwrap();
    assert_eq!(frame.action.as_deref(), Some(PRESENCE_ACTION));
    assert_eq!(
        frame.group_uuid().unwrap(),
        uuid::uuid!("5ae290ed-55d1-47a0-bc6d-fe2bc2700399")
    );
    let sender = functions::ws_actions::Sender::try_from(&event).unwrap();
    assert_eq!(sender.handle, "andrewbrown");
    let connection = Connection::try_from(&event).unwrap();
    assert_eq!(connection.connection_id, "CXuKzeB9oAMCJdw=");
    assert_eq!(connection.expires_at, 1_795_346_100, "with its token");
}

#[tokio::test]
async fn a_member_gets_the_partners_presence_and_watches_it() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let group = direct(&table, &andrew, &bayko).await;
    let connections = WsConnections::new(table.store.clone());
    connections
        .connect(&route_event("ws-connect.json", &andrew, "andrew-screen="))
        .await
        .unwrap();
    let presence = WsPresence::new(table.store.clone());

    table.requests.reset();
    let answer = presence
        .handle(&presence_event(
            &andrew,
            "andrew-screen=",
            &asking_for(group),
        ))
        .await
        .unwrap();
    let frame: PresenceFrame = serde_json::from_value(answered(&answer)).unwrap();
    assert_eq!(
        frame,
        PresenceFrame::new(group, "bayko".to_owned(), false, None),
        "never connected: offline, no last_seen_at"
    );
    // Query MBR#, GetItem profile ‖ PutItem watch + UpdateItem connection.
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [
            ("GetItem".to_owned(), 1),
            ("PutItem".to_owned(), 1),
            ("Query".to_owned(), 1),
            ("UpdateItem".to_owned(), 1)
        ]
    );
    let watches = table.store.watchers_of(bayko.uuid).await.unwrap();
    assert_eq!(watches.len(), 1);
    assert_eq!(
        (watches[0].watcher, watches[0].connection_id.as_str()),
        (andrew.uuid, "andrew-screen=")
    );

    connections
        .connect(&route_event("ws-connect.json", &bayko, "bayko-phone="))
        .await
        .unwrap();
    let answer = presence
        .handle(&presence_event(
            &andrew,
            "andrew-screen=",
            &asking_for(group),
        ))
        .await
        .unwrap();
    let frame: PresenceFrame = serde_json::from_value(answered(&answer)).unwrap();
    assert!(frame.online);
    assert!(frame.last_seen_at.is_some());
}

#[tokio::test]
async fn bad_frames_get_precise_error_frames() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let carol = table.user("carol").await;
    let with_bayko = direct(&table, &andrew, &bayko).await;
    let between_others = direct(&table, &bayko, &carol).await;
    let group = table
        .store
        .create_group(
            &andrew,
            &GroupName::parse("Bootcamp").unwrap(),
            &[bayko.clone(), carol.clone()],
            MessageText::parse("Hi all").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap()
        .group_uuid;
    let presence = WsPresence::new(table.store.clone());
    let ask = |body: &str| presence_event(&andrew, "andrew=", body);

    for (case, body, code) in [
        (
            "not JSON",
            "{\"action\":\"presence\",",
            ActionError::JsonInvalid,
        ),
        ("not an object", "[1, 2]", ActionError::JsonNotObject),
        ("empty", "", ActionError::JsonInvalid),
        (
            "no uuid",
            r#"{"action":"presence"}"#,
            ActionError::GroupUuidInvalid,
        ),
        (
            "not a uuid",
            r#"{"action":"presence","message_group_uuid":"nope"}"#,
            ActionError::GroupUuidInvalid,
        ),
        (
            "a number",
            r#"{"action":"presence","message_group_uuid":7}"#,
            ActionError::GroupUuidInvalid,
        ),
    ] {
        table.requests.reset();
        let answer = presence.handle(&ask(body)).await.unwrap();
        assert_eq!(refused(&answer), code.code(), "{case}");
        assert_eq!(table.requests.total(), 0, "{case}: nothing read");
    }
    let long = format!(
        r#"{{"action":"presence","message_group_uuid":"{with_bayko}","pad":"{}"}}"#,
        "x".repeat(5000)
    );
    assert_eq!(
        refused(&presence.handle(&ask(&long)).await.unwrap()),
        "body_too_large"
    );
    let mut binary = ask(&asking_for(with_bayko));
    binary.is_base64_encoded = true;
    assert_eq!(
        refused(&presence.handle(&binary).await.unwrap()),
        "json_invalid"
    );

    for (case, group, code) in [
        ("someone else's", between_others, "message_group_not_found"),
        (
            "no such conversation",
            Uuid::new_v4(),
            "message_group_not_found",
        ),
        ("a group", group, "message_group_not_direct"),
    ] {
        let answer = presence.handle(&ask(&asking_for(group))).await.unwrap();
        assert_eq!(refused(&answer), code, "{case}");
    }
    table
        .store
        .block(&bayko, &andrew, Timestamp::now())
        .await
        .unwrap();
    let answer = presence
        .handle(&ask(&asking_for(with_bayko)))
        .await
        .unwrap();
    assert_eq!(
        refused(&answer),
        "messaging_blocked",
        "blocked by the partner"
    );

    let mut anonymous = event_json("ws-presence.json");
    anonymous["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let anonymous: WebSocketEvent = serde_json::from_value(anonymous).unwrap();
    table.requests.reset();
    assert_eq!(
        refused(&presence.handle(&anonymous).await.unwrap()),
        "connection_unknown"
    );
    assert_eq!(table.requests.total(), 0);
    // Nothing was watched by any refused frame.
    for user in [&bayko, &carol] {
        assert!(table.store.watchers_of(user.uuid).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn only_watchers_hear_of_a_connect_and_a_disconnect() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let carol = table.user("carol").await;
    let with_andrew = direct(&table, &andrew, &bayko).await;
    // Carol talks to bayko too, and is connected, but does not show that conversation.
    direct(&table, &carol, &bayko).await;
    let open = OpenConnections::default();
    let management = local_management_client(&management_api(open.clone()).await);
    let connections = WsConnections::new(table.store.clone())
        .with_cap(10, management.clone())
        .with_presence_frames(management);
    let presence = WsPresence::new(table.store.clone());

    let mut andrew_screen = open.open("andrew-screen=");
    connections
        .connect(&route_event("ws-connect.json", &andrew, "andrew-screen="))
        .await
        .unwrap();
    let mut carol_screen = open.open("carol-screen=");
    connections
        .connect(&route_event("ws-connect.json", &carol, "carol-screen="))
        .await
        .unwrap();
    presence
        .handle(&presence_event(
            &andrew,
            "andrew-screen=",
            &asking_for(with_andrew),
        ))
        .await
        .unwrap();

    open.open("bayko-phone=");
    connections
        .connect(&route_event("ws-connect.json", &bayko, "bayko-phone="))
        .await
        .unwrap();
    let frame = next_frame(&mut andrew_screen).await;
    assert_eq!(frame["type"], "presence");
    assert_eq!(frame["handle"], "bayko");
    assert_eq!(frame["online"], true);
    assert_eq!(frame["message_group_uuid"], with_andrew.to_string());

    // A second device, and closing one of two, change nothing anyone is told.
    open.open("bayko-laptop=");
    connections
        .connect(&route_event("ws-connect.json", &bayko, "bayko-laptop="))
        .await
        .unwrap();
    connections
        .disconnect(&route_event("ws-disconnect.json", &bayko, "bayko-laptop="))
        .await
        .unwrap();
    table.requests.reset();
    connections
        .disconnect(&route_event("ws-disconnect.json", &bayko, "bayko-phone="))
        .await
        .unwrap();
    // DeleteItem, UpdateItem (presence), Query WATCH#bayko; one post.
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [
            ("DeleteItem".to_owned(), 1),
            ("Query".to_owned(), 1),
            ("UpdateItem".to_owned(), 1)
        ]
    );
    let frame = next_frame(&mut andrew_screen).await;
    assert_eq!(
        (frame["handle"].as_str(), frame["online"].as_bool()),
        (Some("bayko"), Some(false))
    );
    assert!(frame["last_seen_at"].is_string());
    assert!(
        andrew_screen.try_recv().is_err(),
        "exactly two frames: online, then offline"
    );
    assert!(
        carol_screen.try_recv().is_err(),
        "carol watches nobody: no frame"
    );

    // A watcher gone (410) is forgotten at the next change.
    open.close("andrew-screen=");
    connections
        .connect(&route_event("ws-connect.json", &bayko, "bayko-again="))
        .await
        .unwrap();
    assert!(
        table
            .store
            .watchers_of(bayko.uuid)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn connecting_forgets_ids_whose_disconnect_was_lost() {
    let table = TestTable::new().await;
    let bayko = table.user("bayko").await;
    // A connection whose $disconnect never came and whose item expired (the TTL may not
    // have removed it yet).
    let at = Timestamp::parse("2026-11-22T10:00:00.000000+00:00").unwrap();
    let lost = Connection::opened(bayko.uuid, "lost=".to_owned(), at);
    table.store.put_connection(&lost).await.unwrap();
    table.store.presence_connected(&lost, at).await.unwrap();
    let connections = WsConnections::new(table.store.clone());
    connections
        .connect(&route_event("ws-connect.json", &bayko, "fresh="))
        .await
        .unwrap();
    let profile = table
        .store
        .client()
        .get_item()
        .table_name(table.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(keys::user_profile(bayko.uuid).pk),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(keys::PROFILE_SK.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        profile["live_connections"],
        aws_sdk_dynamodb::types::AttributeValue::Ss(vec!["fresh=".to_owned()])
    );
}

#[tokio::test]
async fn the_members_answer_says_who_is_online_and_when_each_was_last_seen() {
    use functions::directory::Directory;
    use functions::routes::Route;
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let group = direct(&table, &andrew, &bayko).await;
    let api = support::recorded::Api::new(Directory::new(
        table.store.clone(),
        Duration::ZERO,
        std::sync::Arc::new(functions::clock::SystemClock),
    ));
    let members = || async {
        let mut event = event_json("api-list-message-group-members.json");
        event["pathParameters"]["message_group_uuid"] = json!(group.to_string());
        event["rawPath"] = json!(format!("/api/message_groups/{group}/members"));
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(andrew.cognito_sub);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = api
            .serve(Route::ListMessageGroupMembers, request)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        body.as_array()
            .unwrap()
            .iter()
            .find(|member| member["handle"] == "bayko")
            .cloned()
            .unwrap()
    };
    let never = members().await;
    assert_eq!(never["online"], false);
    assert!(
        never.get("last_seen_at").is_none(),
        "absent if never connected"
    );

    let connections = WsConnections::new(table.store.clone());
    connections
        .connect(&route_event("ws-connect.json", &bayko, "bayko-phone="))
        .await
        .unwrap();
    let online = members().await;
    assert_eq!(online["online"], true);
    assert!(online["last_seen_at"].is_string());

    connections
        .disconnect(&route_event("ws-disconnect.json", &bayko, "bayko-phone="))
        .await
        .unwrap();
    let gone = members().await;
    assert_eq!(gone["online"], false);
    assert!(gone["last_seen_at"].as_str() >= online["last_seen_at"].as_str());
}
