//! The API functions through their Lambda handlers, with API Gateway payload-2.0 events
//! (the files in `events/`, adjusted per test), against DynamoDB Local.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use functions::api::{Api, CreatedMessage, GroupMember, ListItem, UserShort};
use functions::directory::{Clock, Directory};
use functions::http::NEXT_CURSOR_HEADER;
use functions::routes::Route;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::store::NewUser;
use messaging::validate::{DisplayName, Handle, MessageText};
use messaging::{Timestamp, User};
use serde_json::{Value, json};
use testkit::{RecordRequests, Refusal, RefusingClient, TestTable};
use uuid::Uuid;

mod support;

const ANDREW_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e01";
const BAYKO_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e02";
const LONDO_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e03";
const TTL: Duration = Duration::from_secs(60);

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }

    fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap()
    }

    fn unix_seconds(&self) -> u64 {
        unreachable!("the directory ages its entries by `now` only")
    }
}

struct World {
    table: TestTable,
    api: Api,
    clock: Arc<ManualClock>,
    andrew: User,
    bayko: User,
    londo: User,
}

async fn register(table: &TestTable, handle: &str, name: &str, sub: &str) -> User {
    let new = NewUser {
        handle: Handle::parse(handle).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        cognito_sub: sub.to_owned(),
    };
    table
        .store
        .register_user(new, Timestamp::now())
        .await
        .unwrap()
        .user()
        .clone()
}

async fn world() -> World {
    let table = TestTable::new().await;
    let andrew = register(&table, "andrewbrown", "Andrew Brown", ANDREW_SUB).await;
    let bayko = register(&table, "bayko", "Andrew Bayko", BAYKO_SUB).await;
    let londo = register(&table, "londo", "Londo Mollari", LONDO_SUB).await;
    let clock = ManualClock::new();
    let api = Api::new(Directory::new(table.store.clone(), TTL, clock.clone()));
    table.requests.reset();
    World {
        table,
        api,
        clock,
        andrew,
        bayko,
        londo,
    }
}

fn event(name: &str) -> Value {
    support::event_json(name)
}

fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("a payload-2.0 event")
}

fn as_user(mut event: Value, sub: &str) -> Value {
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(sub);
    event
}

fn anonymous(mut event: Value) -> Value {
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    event
}

fn with_query(mut event: Value, query: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    event["rawQueryString"] = json!(
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    event["queryStringParameters"] = Value::Object(map);
    event
}

fn in_group(mut event: Value, group: &str) -> Value {
    event["pathParameters"]["message_group_uuid"] = json!(group);
    event["rawPath"] = json!(format!("/api/messages/{group}"));
    event
}

fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = json!(body);
    event
}

fn parts(response: Response<Body>) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let cursor = response
        .headers()
        .get(NEXT_CURSOR_HEADER)
        .map(|value| value.to_str().unwrap().to_owned());
    let body: &[u8] = response.body().as_ref();
    let json = serde_json::from_slice(body).unwrap_or(Value::Null);
    (status, cursor, json)
}

async fn send(world: &World, from: &User, to: &User, text: &str) -> messaging::Message {
    world
        .table
        .store
        .send_to_user(
            from,
            to,
            MessageText::parse(text).unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap()
}

fn codes(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array of codes: {value}"))
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn inbox_lists_conversations_newest_first_with_the_other_member() {
    let w = world().await;
    send(&w, &w.andrew, &w.bayko, "first").await;
    let newer = send(&w, &w.londo, &w.andrew, "newer").await;
    let response = w
        .api
        .serve(
            Route::ListMessageGroups,
            request(&event("api-list-message-groups.json")),
        )
        .await
        .unwrap();
    let (status, cursor, body) = parts(response);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cursor, None);
    let items: Vec<ListItem> = serde_json::from_value(body).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].uuid, newer.group_uuid.to_string());
    assert_eq!(items[0].handle, "londo");
    assert_eq!(items[0].display_name, "Londo Mollari");
    assert_eq!(items[0].message, "newer");
    assert_eq!(items[1].handle, "bayko");
}

#[tokio::test]
async fn a_warm_inbox_read_costs_one_request() {
    let w = world().await;
    send(&w, &w.andrew, &w.bayko, "hello").await;
    let inbox = request(&event("api-list-message-groups.json"));
    w.api.serve(Route::ListMessageGroups, inbox).await.unwrap();
    w.table.requests.reset();
    let inbox = request(&event("api-list-message-groups.json"));
    w.api.serve(Route::ListMessageGroups, inbox).await.unwrap();
    assert_eq!(
        w.table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        vec![("Query".to_owned(), 1)]
    );
}

#[tokio::test]
async fn inbox_pages_travel_in_the_cursor_header() {
    let w = world().await;
    send(&w, &w.andrew, &w.bayko, "one").await;
    send(&w, &w.andrew, &w.londo, "two").await;
    let first = w
        .api
        .serve(
            Route::ListMessageGroups,
            request(&event("api-list-message-groups-page.json")),
        )
        .await
        .unwrap();
    let (status, cursor, body) = parts(first);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["message"], "two");
    let cursor = cursor.expect("a next page");
    let second = with_query(
        event("api-list-message-groups.json"),
        &[("limit", "1"), ("cursor", &cursor)],
    );
    let (status, cursor, body) = parts(
        w.api
            .serve(Route::ListMessageGroups, request(&second))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["message"], "one");
    assert_eq!(cursor, None, "last page");

    // Bayko replays Andrew's cursor on his own inbox.
    let mut stolen = with_query(event("api-list-message-groups.json"), &[("cursor", "x")]);
    stolen["queryStringParameters"]["cursor"] = json!(
        parts(
            w.api
                .serve(
                    Route::ListMessageGroups,
                    request(&event("api-list-message-groups-page.json"))
                )
                .await
                .unwrap()
        )
        .1
        .unwrap()
    );
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::ListMessageGroups,
                request(&as_user(stolen, BAYKO_SUB)),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(codes(&body), ["cursor_invalid"]);

    let (status, _, body) = parts(
        w.api
            .serve(
                Route::ListMessageGroups,
                request(&event("api-list-message-groups-bad-cursor.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(codes(&body), ["cursor_invalid"]);
    for limit in ["0", "1000", "x"] {
        let bad = with_query(event("api-list-message-groups.json"), &[("limit", limit)]);
        let (status, _, body) = parts(
            w.api
                .serve(Route::ListMessageGroups, request(&bad))
                .await
                .unwrap(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit {limit}");
        assert_eq!(codes(&body), ["limit_invalid"]);
    }
}

#[tokio::test]
async fn callers_must_be_authenticated_and_registered() {
    let w = world().await;
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::ListMessageGroups,
                request(&event("api-list-message-groups-unauthenticated.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(codes(&body), ["unauthenticated"]);
    for (name, route) in [
        ("api-list-messages.json", 0),
        ("api-create-message-to-handle.json", 1),
    ] {
        let anonymous = request(&anonymous(event(name)));
        let response = match route {
            0 => w.api.serve(Route::ListMessages, anonymous).await,
            _ => w.api.serve(Route::CreateMessage, anonymous).await,
        };
        let (status, _, body) = parts(response.unwrap());
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(codes(&body), ["unauthenticated"]);
    }
    let stranger = as_user(event("api-list-message-groups.json"), "never-registered");
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroups, request(&stranger))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(codes(&body), ["user_not_registered"]);
}

#[tokio::test]
async fn a_third_user_can_neither_read_nor_post_nor_learn_a_conversation_exists() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "private")
        .await
        .group_uuid
        .to_string();
    let unknown = Uuid::new_v4().to_string();
    let mut answers = Vec::new();
    for target in [&group, &unknown] {
        let read = as_user(in_group(event("api-list-messages.json"), target), LONDO_SUB);
        answers.push(parts(
            w.api
                .serve(Route::ListMessages, request(&read))
                .await
                .unwrap(),
        ));
        let post = with_body(
            event("api-create-message-not-member.json"),
            &json!({"message": "let me in", "message_group_uuid": target}).to_string(),
        );
        answers.push(parts(
            w.api
                .serve(Route::CreateMessage, request(&post))
                .await
                .unwrap(),
        ));
    }
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::NOT_FOUND);
        assert_eq!(codes(body), ["message_group_not_found"]);
    }
    // An existing and an unknown conversation look exactly alike.
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[1], answers[3]);
    let messages = w
        .table
        .store
        .conversation_messages(Uuid::parse_str(&group).unwrap(), &Default::default())
        .await
        .unwrap();
    assert_eq!(messages.items.len(), 1, "nothing was posted");
}

#[tokio::test]
async fn a_long_conversation_pages_across_a_year_boundary_exactly_once() {
    let w = world().await;
    let start = time::macros::datetime!(2024-12-31 20:00 UTC);
    let first = w
        .table
        .store
        .send_to_user(
            &w.andrew,
            &w.bayko,
            MessageText::parse("m0").unwrap(),
            Timestamp::from_datetime(start),
        )
        .await
        .unwrap();
    for i in 1..300 {
        let sender = if i % 2 == 0 { &w.andrew } else { &w.bayko };
        let at = Timestamp::from_datetime(start + time::Duration::minutes(i));
        w.table
            .store
            .append_message(
                sender,
                first.group_uuid,
                MessageText::parse(format!("m{i}")).unwrap(),
                at,
            )
            .await
            .unwrap();
    }
    let group = first.group_uuid.to_string();
    let mut pages: Vec<Vec<ListItem>> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "40")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.as_str()));
        }
        let page_event = with_query(in_group(event("api-list-messages.json"), &group), &query);
        let (status, next, body) = parts(
            w.api
                .serve(Route::ListMessages, request(&page_event))
                .await
                .unwrap(),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        pages.push(serde_json::from_value(body).unwrap());
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages.len(), 8);
    for page in &pages {
        assert!(
            page.windows(2).all(|w| w[0].created_at < w[1].created_at),
            "oldest first in a page"
        );
    }
    let texts: Vec<String> = pages
        .into_iter()
        .rev()
        .flatten()
        .map(|item| item.message)
        .collect();
    let expected: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);

    // Another conversation's cursor is refused, as is an edited one.
    let other = send(&w, &w.andrew, &w.londo, "other")
        .await
        .group_uuid
        .to_string();
    let first_page = with_query(
        in_group(event("api-list-messages.json"), &group),
        &[("limit", "1")],
    );
    let cursor = parts(
        w.api
            .serve(Route::ListMessages, request(&first_page))
            .await
            .unwrap(),
    )
    .1
    .unwrap();
    for (target, cursor) in [(&other, cursor.clone()), (&group, format!("{cursor}x"))] {
        let bad = with_query(
            in_group(event("api-list-messages.json"), target),
            &[("cursor", &cursor)],
        );
        let (status, _, body) = parts(
            w.api
                .serve(Route::ListMessages, request(&bad))
                .await
                .unwrap(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(codes(&body), ["cursor_invalid"]);
    }
}

#[tokio::test]
async fn a_conversation_id_that_is_not_a_uuid_is_refused() {
    let w = world().await;
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::ListMessages,
                request(&event("api-list-messages-bad-uuid.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(codes(&body), ["message_group_uuid_invalid"]);
    assert_eq!(w.table.requests.total(), 0);
}

#[tokio::test]
async fn messaging_a_handle_starts_then_reuses_the_conversation_in_both_directions() {
    let w = world().await;
    let to_bayko = with_body(
        event("api-create-message-to-self.json"),
        &json!({"message": "Hello Bayko", "handle": "Bayko"}).to_string(),
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&to_bayko))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let created: CreatedMessage = serde_json::from_value(body).unwrap();
    assert_eq!(created.handle, "andrewbrown");
    assert_eq!(created.display_name, "Andrew Brown");
    assert_eq!(created.message, "Hello Bayko");
    assert_ne!(
        created.uuid,
        w.andrew.uuid.to_string(),
        "uuid is the message's, not the sender's"
    );
    assert!(Timestamp::parse(&created.created_at).is_ok());

    // Bayko answers by handle: the same conversation.
    let reply = as_user(
        with_body(
            event("api-create-message-to-self.json"),
            &json!({"message": "Hi!", "handle": "andrewbrown"}).to_string(),
        ),
        BAYKO_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&reply))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["message_group_uuid"],
        json!(created.message_group_uuid)
    );

    // And by conversation id.
    let by_group = as_user(
        with_body(
            event("api-create-message-to-group.json"),
            &json!({"message": "Again", "message_group_uuid": created.message_group_uuid})
                .to_string(),
        ),
        BAYKO_SUB,
    );
    w.table.requests.reset();
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&by_group))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(w.table.requests.total(), 1, "a warm append is one request");

    let read = in_group(event("api-list-messages.json"), &created.message_group_uuid);
    let (_, _, body) = parts(
        w.api
            .serve(Route::ListMessages, request(&read))
            .await
            .unwrap(),
    );
    let items: Vec<ListItem> = serde_json::from_value(body).unwrap();
    let texts: Vec<&str> = items.iter().map(|item| item.message.as_str()).collect();
    assert_eq!(texts, ["Hello Bayko", "Hi!", "Again"]);
    assert_eq!(items[0].uuid, created.uuid);
}

#[tokio::test]
async fn every_invalid_message_gets_its_code_and_writes_nothing() {
    let w = world().await;
    let cases: Vec<(Value, StatusCode, Vec<&str>)> = vec![
        (
            event("api-create-message-blank.json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_blank"],
        ),
        (
            event("api-create-message-too-long.json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_exceed_max_chars_1024"],
        ),
        (
            event("api-create-message-malformed-json.json"),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
        (
            event("api-create-message-to-self.json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["user_reciever_is_self"],
        ),
        (
            event("api-create-message-unknown-handle.json"),
            StatusCode::NOT_FOUND,
            vec!["user_reciever_not_found"],
        ),
        (
            with_body(event("api-create-message-blank.json"), "[1, 2]"),
            StatusCode::BAD_REQUEST,
            vec!["json_not_object"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": 5, "handle": "bayko"}"#,
            ),
            StatusCode::BAD_REQUEST,
            vec!["json_field_type_invalid"],
        ),
        (
            with_body(event("api-create-message-blank.json"), ""),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                &json!({"message": "x".repeat(20_000), "handle": "bayko"}).to_string(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["body_too_large"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["user_reciever_handle_blank"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "", "handle": " "}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_blank", "user_reciever_handle_blank"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi", "message_group_uuid": ""}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_uuid_blank"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi", "message_group_uuid": "abc"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_uuid_invalid"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi", "handle": "no spaces allowed"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["handle_invalid"],
        ),
    ];
    for (case, expected_status, expected_codes) in cases {
        let (status, _, body) = parts(
            w.api
                .serve(Route::CreateMessage, request(&case))
                .await
                .unwrap(),
        );
        assert_eq!(status, expected_status, "{}", case["body"]);
        assert_eq!(codes(&body), expected_codes, "{}", case["body"]);
    }
    let items = w.table.store.scan_all().await.unwrap();
    assert!(
        items
            .iter()
            .all(|item| !item["pk"].as_s().unwrap().starts_with("MSG#")),
        "no message was written"
    );
}

#[tokio::test]
async fn the_1024_character_limit_counts_characters_not_bytes() {
    let w = world().await;
    for (text, ok) in [
        ("🙂".repeat(1024), true),
        ("é".repeat(1024), true),
        ("🙂".repeat(1025), false),
    ] {
        let case = with_body(
            event("api-create-message-blank.json"),
            &json!({"message": text, "handle": "bayko"}).to_string(),
        );
        let (status, _, body) = parts(
            w.api
                .serve(Route::CreateMessage, request(&case))
                .await
                .unwrap(),
        );
        if ok {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["message"].as_str().unwrap().chars().count(), 1024);
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(codes(&body), ["message_exceed_max_chars_1024"]);
        }
    }
}

#[tokio::test]
async fn user_short_is_public_and_case_insensitive() {
    let w = world().await;
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::GetUserShort,
                request(&event("api-get-user-short.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    let short: UserShort = serde_json::from_value(body).unwrap();
    assert_eq!(
        short,
        UserShort {
            uuid: w.bayko.uuid.to_string(),
            handle: "bayko".into(),
            display_name: "Andrew Bayko".into(),
        }
    );
    let mut upper = event("api-get-user-short.json");
    upper["pathParameters"]["handle"] = json!("@BAYKO");
    let (status, _, _) = parts(
        w.api
            .serve(Route::GetUserShort, request(&upper))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    // No `@`: not this route, even for a real handle.
    for handle in ["@nobody", "@not a handle", "@", "bayko", ""] {
        let mut unknown = event("api-get-user-short-unknown.json");
        unknown["pathParameters"]["handle"] = json!(handle);
        let (status, _, body) = parts(
            w.api
                .serve(Route::GetUserShort, request(&unknown))
                .await
                .unwrap(),
        );
        assert_eq!(status, StatusCode::NOT_FOUND, "{handle:?}");
        assert_eq!(codes(&body), ["user_not_found"]);
    }
}

#[tokio::test]
async fn cached_profiles_are_refreshed_after_the_ttl() {
    let w = world().await;
    let short = |api: &Api| {
        let api = api.clone();
        async move {
            parts(
                api.serve(
                    Route::GetUserShort,
                    request(&event("api-get-user-short.json")),
                )
                .await
                .unwrap(),
            )
            .2
        }
    };
    assert_eq!(short(&w.api).await["display_name"], "Andrew Bayko");

    // Bayko changes his display name (written straight to the table: no API does it yet).
    for key in [
        messaging::keys::user_profile(w.bayko.uuid),
        messaging::keys::handle_claim(&w.bayko.handle),
        messaging::keys::cognito_sub(BAYKO_SUB),
    ] {
        w.table
            .store
            .client()
            .update_item()
            .table_name(w.table.store.table())
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.sk))
            .update_expression("SET display_name = :name")
            .expression_attribute_values(
                ":name",
                aws_sdk_dynamodb::types::AttributeValue::S("Bayko the Second".into()),
            )
            .send()
            .await
            .unwrap();
    }
    w.table.requests.reset();
    assert_eq!(
        short(&w.api).await["display_name"],
        "Andrew Bayko",
        "served from the cache"
    );
    assert_eq!(w.table.requests.total(), 0);
    w.clock.advance(TTL + Duration::from_millis(1));
    assert_eq!(short(&w.api).await["display_name"], "Bayko the Second");
    assert_eq!(w.table.requests.total(), 1);
}

#[tokio::test]
async fn sign_up_registers_once_and_refuses_a_taken_handle() {
    let w = world().await;
    let confirmation = event("cognito-post-confirmation.json");
    let answer = functions::cognito::post_confirmation(&w.table.store, confirmation.clone())
        .await
        .unwrap();
    assert_eq!(answer, confirmation, "the event comes back unchanged");
    let vir = w
        .table
        .store
        .user_by_handle(&Handle::parse("vir").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vir.display_name.as_str(), "Vir Cotto");
    assert_eq!(vir.cognito_sub, "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e04");

    // Cognito retries the trigger: same result, no second user.
    let again = functions::cognito::post_confirmation(&w.table.store, confirmation.clone())
        .await
        .unwrap();
    assert_eq!(again, confirmation);
    assert_eq!(w.table.store.list_users().await.unwrap().len(), 4);

    let taken = functions::cognito::post_confirmation(
        &w.table.store,
        event("cognito-post-confirmation-handle-taken.json"),
    )
    .await
    .unwrap_err();
    assert!(taken.to_string().contains("already taken"), "{taken}");

    let mut missing = confirmation.clone();
    missing["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("preferred_username");
    let error = functions::cognito::post_confirmation(&w.table.store, missing)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the user has no preferred_username attribute"
    );
    let error = functions::cognito::post_confirmation(&w.table.store, json!([1]))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the event is not a Cognito post-confirmation event")
    );
}

/// An API over `store` with a cold user cache.
fn api_over(store: messaging::Store) -> Api {
    Api::new(Directory::new(store, TTL, ManualClock::new()))
}

#[tokio::test]
async fn the_membership_gate_is_a_strongly_consistent_read() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "just started")
        .await
        .group_uuid;
    let recorder = RecordRequests::new();
    let api = api_over(w.table.store_with(recorder.clone()));
    let read = in_group(event("api-list-messages.json"), &group.to_string());
    let (status, _, body) = parts(
        api.serve(Route::ListMessages, request(&read))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");

    let membership_key = messaging::keys::membership(group, w.andrew.uuid);
    let gates: Vec<Value> = recorder
        .of("GetItem")
        .into_iter()
        .map(|sent| sent.body)
        .filter(|body| body["Key"]["pk"]["S"] == json!(membership_key.pk))
        .collect();
    assert_eq!(gates.len(), 1, "one membership check");
    assert_eq!(gates[0]["Key"]["sk"]["S"], json!(membership_key.sk));
    // Without it DynamoDB reads eventually consistently, and a membership written a moment
    // ago can be missed: the conversation the caller has just created would answer 404.
    assert_eq!(gates[0]["ConsistentRead"], json!(true), "{}", gates[0]);
}

/// Log lines written while `run` runs (on this thread), without colours.
async fn logs_of<F: std::future::Future>(run: F) -> (F::Output, String) {
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // Tokio tests run on one thread: the guard covers every future of the test.
    let output = {
        let _guard = tracing::subscriber::set_default(subscriber);
        run.await
    };
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    (output, text)
}

#[tokio::test]
async fn throttling_answers_503_service_busy_with_retry_after() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "hello").await.group_uuid;
    let dynamodb = RefusingClient::new();
    let api = api_over(dynamodb.store_for(&w.table));
    dynamodb.refuse("Query", Refusal::Throttling);
    dynamodb.refuse("GetItem", Refusal::Throttling);

    let inbox = request(&event("api-list-message-groups.json"));
    let (response, logs) = logs_of(api.serve(Route::ListMessageGroups, inbox)).await;
    let response = response.expect("a throttled request is an answer, not a fault");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(codes(&parts(response).2), ["service_busy"]);
    assert!(
        dynamodb.refused() > 1,
        "the SDK retried before giving up: {} attempts",
        dynamodb.refused()
    );
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("Bx7kQj0001EFg="))
        .collect();
    assert_eq!(lines.len(), 1, "logged once with the request id:\n{logs}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);

    // The conversation's reads too; nothing is cached from the refused lookups.
    let read = in_group(event("api-list-messages.json"), &group.to_string());
    let (status, _, body) = parts(
        api.serve(Route::ListMessages, request(&read))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(codes(&body), ["service_busy"]);

    // Once DynamoDB has capacity again, the same request succeeds.
    dynamodb.allow_all();
    let (status, _, body) = parts(
        api.serve(Route::ListMessages, request(&read))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn writes_that_keep_conflicting_answer_503_and_write_nothing() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "first").await.group_uuid;
    let dynamodb = RefusingClient::new();
    let api = api_over(dynamodb.store_for(&w.table));
    dynamodb.refuse("TransactWriteItems", Refusal::TransactionConflict);
    let append = with_body(
        event("api-create-message-to-group.json"),
        &json!({"message": "second", "message_group_uuid": group}).to_string(),
    );
    let (status, _, body) = parts(
        api.serve(Route::CreateMessage, request(&append))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(codes(&body), ["service_busy"]);
    assert!(dynamodb.refused() > 1, "the store retried the transaction");
    let messages = w
        .table
        .store
        .conversation_messages(group, &Default::default())
        .await
        .unwrap();
    assert_eq!(messages.items.len(), 1, "nothing was written");
}

#[tokio::test]
async fn a_real_fault_is_a_500_logged_once_with_the_request_id() {
    let w = world().await;
    // A table that does not exist: a deployment mistake, not the client's, not transient.
    let missing = messaging::Store::new(w.table.store.client().clone(), "no-such-table");
    let api = api_over(missing);
    let inbox = request(&event("api-list-message-groups.json"));
    let (outcome, logs) = logs_of(api.serve(Route::ListMessageGroups, inbox)).await;
    assert!(
        outcome.is_err(),
        "a fault is reported to Lambda (API Gateway answers 500)"
    );
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(lines.len(), 1, "logged once:\n{logs}");
    assert!(
        lines[0].contains("Bx7kQj0001EFg="),
        "with the request id: {}",
        lines[0]
    );
    assert!(
        lines[0].contains("ResourceNotFoundException"),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn a_base64_encoded_body_is_measured_after_decoding() {
    use base64::Engine;
    let w = world().await;
    let encode = |body: &Value| {
        base64::engine::general_purpose::STANDARD.encode(body.to_string().as_bytes())
    };
    let base64_event = |body: &Value| {
        let mut event = event("api-create-message-to-self.json");
        event["body"] = json!(encode(body));
        event["isBase64Encoded"] = json!(true);
        event
    };
    // 1000 characters of three bytes each: about 3 KB of JSON, 4 KB once encoded.
    let fits = json!({"message": "€".repeat(1000), "handle": "bayko"});
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&base64_event(&fits)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    // Padding that makes the encoded body larger than the limit, the decoded one not.
    let padded = json!({
        "message": "hello", "handle": "bayko",
        "padding": "x".repeat(functions::http::MAX_BODY_BYTES - 1024),
    });
    assert!(encode(&padded).len() > functions::http::MAX_BODY_BYTES);
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&base64_event(&padded)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let too_large = json!({
        "message": "hello", "handle": "bayko",
        "padding": "x".repeat(functions::http::MAX_BODY_BYTES),
    });
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&base64_event(&too_large)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(codes(&body), ["body_too_large"]);
}

#[tokio::test]
async fn pre_signup_refuses_an_invalid_or_taken_handle_before_the_account_exists() {
    use functions::cognito::pre_signup;
    let w = world().await;
    let items_before = w.table.store.scan_all().await.unwrap().len();
    w.table.requests.reset();

    for allowed in [
        "cognito-pre-signup.json",
        "cognito-pre-signup-admin-create-user.json",
    ] {
        let event = event(allowed);
        let answer = pre_signup(&w.table.store, event.clone()).await;
        assert_eq!(
            answer.unwrap(),
            event,
            "{allowed}: the event comes back unchanged"
        );
    }

    // Cognito shows the message on the sign-up form: "PreSignUp failed with error <message>."
    let taken = pre_signup(
        &w.table.store,
        event("cognito-pre-signup-handle-taken.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        taken.to_string(),
        r#"the handle "BAYKO" is already taken, choose another one"#,
        "case-insensitive"
    );
    let invalid = pre_signup(
        &w.table.store,
        event("cognito-pre-signup-handle-invalid.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        invalid.to_string(),
        "handle must be 1 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit"
    );
    let mut long_name = event("cognito-pre-signup.json");
    long_name["request"]["userAttributes"]["name"] = json!("n".repeat(65));
    let error = pre_signup(&w.table.store, long_name).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "display name is longer than 64 characters"
    );
    let mut no_handle = event("cognito-pre-signup.json");
    no_handle["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("preferred_username");
    let error = pre_signup(&w.table.store, no_handle).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the user has no preferred_username attribute"
    );
    let error = pre_signup(&w.table.store, json!({"triggerSource": 5}))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the event is not a Cognito pre sign-up event"),
        "{error}"
    );

    // It only reads, one handle claim per sign-up; nothing was written.
    assert_eq!(
        w.table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        vec![("GetItem".to_owned(), 3)]
    );
    assert_eq!(w.table.store.scan_all().await.unwrap().len(), items_before);

    // A directory that does not answer refuses the sign-up with a message to try again,
    // rather than letting an account through unchecked.
    let dynamodb = RefusingClient::new();
    dynamodb.refuse("GetItem", Refusal::Throttling);
    let error = pre_signup(
        &dynamodb.store_for(&w.table),
        event("cognito-pre-signup.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "sign-up is unavailable for a moment, try again"
    );
}

#[tokio::test]
async fn post_confirmation_registers_only_on_confirm_sign_up() {
    use functions::cognito::post_confirmation;
    let w = world().await;
    // A password reset of a user whose preferred_username was changed to a taken handle
    // (possible before the handle became immutable): nothing to register, nothing to fail.
    let reset = event("cognito-post-confirmation-forgot-password.json");
    assert_eq!(
        post_confirmation(&w.table.store, reset.clone())
            .await
            .unwrap(),
        reset
    );
    let mut unknown_source = event("cognito-post-confirmation.json");
    unknown_source["triggerSource"] = json!("PostConfirmation_SomethingNew");
    assert_eq!(
        post_confirmation(&w.table.store, unknown_source.clone())
            .await
            .unwrap(),
        unknown_source
    );
    assert_eq!(w.table.requests.total(), 0, "not even a read");
    assert_eq!(w.table.store.list_users().await.unwrap().len(), 3);

    // The sign-up itself still registers, once.
    let confirmation = event("cognito-post-confirmation.json");
    for _ in 0..2 {
        post_confirmation(&w.table.store, confirmation.clone())
            .await
            .unwrap();
    }
    assert_eq!(w.table.store.list_users().await.unwrap().len(), 4);
}

// -------------------------------------------------------------------------------------------
// Group conversations and unread counts (issue 12).
// -------------------------------------------------------------------------------------------

/// The conversation id the group events carry (the demo group's).
const EVENT_GROUP: &str = "b7e4c2a9-3f1d-4e8b-a6c5-9d0e1f2a3b4c";

/// `event` aimed at another conversation.
fn at_group(event: Value, group: &str) -> Value {
    let text = event.to_string().replace(EVENT_GROUP, group);
    serde_json::from_str(&text).unwrap()
}

/// Creates "Bootcamp" (andrew, bayko, londo) through the create-message-group handler.
async fn bootcamp(w: &World) -> CreatedMessage {
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::CreateMessageGroup,
                request(&event("api-create-message-group.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn inbox_json(w: &World, sub: &str) -> Vec<Value> {
    let inbox = as_user(event("api-list-message-groups.json"), sub);
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroups, request(&inbox))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

fn item_of<'v>(items: &'v [Value], group: &str) -> Option<&'v Value> {
    items.iter().find(|item| item["uuid"] == group)
}

#[tokio::test]
async fn a_group_is_created_from_its_event_and_shows_in_every_inbox_with_kind_and_unread() {
    let w = world().await;
    let direct = send(&w, &w.bayko, &w.andrew, "a direct one").await;

    let created = bootcamp(&w).await;

    assert_eq!(created.handle, "andrewbrown");
    assert_eq!(created.message, "Welcome to the bootcamp group");
    let group = created.message_group_uuid.clone();
    assert_ne!(created.uuid, group, "uuid is the message's");
    for (sub, unread) in [(ANDREW_SUB, 0), (BAYKO_SUB, 1), (LONDO_SUB, 1)] {
        let items = inbox_json(&w, sub).await;
        let item = item_of(&items, &group).unwrap();
        assert_eq!(item["kind"], "group");
        assert_eq!(item["display_name"], "Bootcamp", "a group's name");
        assert_eq!(item["name"], "Bootcamp");
        assert_eq!(item["handle"], "andrewbrown", "the last sender");
        assert_eq!(item["member_count"], 3);
        assert_eq!(item["unread"], unread, "{sub}");
    }
    // A direct conversation keeps the original shape, plus `kind` and `unread`.
    let items = inbox_json(&w, ANDREW_SUB).await;
    let item = item_of(&items, &direct.group_uuid.to_string()).unwrap();
    let mut keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "display_name",
            "handle",
            "kind",
            "message",
            "unread",
            "uuid"
        ]
    );
    assert_eq!(
        (&item["kind"], &item["unread"]),
        (&json!("direct"), &json!(1))
    );
    assert_eq!(item["handle"], "bayko", "the other member");
    // The original frontend's shape still reads.
    let _: Vec<ListItem> = serde_json::from_value(Value::Array(items)).unwrap();
    // Posting to a group is POST /api/messages with its uuid, as for any conversation.
    let post = as_user(
        with_body(
            event("api-create-message-to-group.json"),
            &json!({"message": "Hello group", "message_group_uuid": group}).to_string(),
        ),
        LONDO_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&post))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn every_invalid_group_gets_its_codes_and_writes_nothing() {
    let w = world().await;
    let create = |body: &str| with_body(event("api-create-message-group.json"), body);
    let many: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
    let cases: Vec<(Value, StatusCode, Vec<&str>)> = vec![
        (
            create(r#"{"name": " ", "handles": ["bayko"], "message": "hi"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_name_blank"],
        ),
        (
            create(
                &json!({"name": "n".repeat(65), "handles": ["bayko"], "message": "hi"}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_name_exceed_max_chars_64"],
        ),
        (
            create(r#"{"name": "G", "handles": [], "message": "hi"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_handles_blank"],
        ),
        (
            create(&json!({"name": "G", "handles": many, "message": "hi"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_too_large"],
        ),
        (
            create(r#"{"name": "", "message": " "}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_name_blank", "group_handles_blank", "message_blank"],
        ),
        (
            create(r#"{"name": "G", "handles": ["bayko", "AndrewBrown"], "message": "hi"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["user_reciever_is_self"],
        ),
        (
            create(r#"{"name": "G", "handles": ["bayko", "nobody"], "message": "hi"}"#),
            StatusCode::NOT_FOUND,
            vec!["user_reciever_not_found"],
        ),
        (
            create(r#"{"name": "G", "handles": "bayko", "message": "hi"}"#),
            StatusCode::BAD_REQUEST,
            vec!["json_field_type_invalid"],
        ),
        (
            create(r#"{"name": "G", "#),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
    ];
    for (case, expected_status, expected_codes) in cases {
        let (status, _, body) = parts(
            w.api
                .serve(Route::CreateMessageGroup, request(&case))
                .await
                .unwrap(),
        );
        assert_eq!(status, expected_status, "{}", case["body"]);
        assert_eq!(codes(&body), expected_codes, "{}", case["body"]);
    }
    let (status, _, _) = parts(
        w.api
            .serve(
                Route::CreateMessageGroup,
                request(&anonymous(event("api-create-message-group.json"))),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let items = w.table.store.scan_all().await.unwrap();
    assert!(
        items
            .iter()
            .all(|item| !item["pk"].as_s().unwrap().starts_with("MSG#")),
        "no message was written"
    );
    // Duplicates collapse, case-insensitively.
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::CreateMessageGroup,
                request(&create(
                    r#"{"name": "G", "handles": ["bayko", "BAYKO", "@bayko"], "message": "hi"}"#,
                )),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = inbox_json(&w, BAYKO_SUB).await;
    assert_eq!(items[0]["member_count"], 2);
}

#[tokio::test]
async fn members_are_listed_to_members_added_by_members_and_groups_can_be_left() {
    let w = world().await;
    let group = bootcamp(&w).await.message_group_uuid;
    let mordo = register(&w.table, "mordo", "Mr Morden", "sub-mordo").await;
    let list = |sub: &str| {
        as_user(
            at_group(event("api-list-message-group-members.json"), &group),
            sub,
        )
    };
    let add = |sub: &str, body: &str| {
        as_user(
            with_body(
                at_group(event("api-add-message-group-members.json"), &group),
                body,
            ),
            sub,
        )
    };
    let leave = |sub: &str| as_user(at_group(event("api-leave-message-group.json"), &group), sub);

    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list(BAYKO_SUB)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let members: Vec<GroupMember> = serde_json::from_value(body).unwrap();
    let handles: Vec<&str> = members.iter().map(|m| m.handle.as_str()).collect();
    assert_eq!(handles, ["andrewbrown", "bayko", "londo"]);
    assert_eq!(members[2].display_name, "Londo Mollari");
    assert_eq!(members[0].uuid, w.andrew.uuid.to_string());
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list("sub-mordo")))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );

    // A stranger cannot add themself; a member adds them.
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::AddMessageGroupMembers,
                request(&add("sub-mordo", r#"{"handles": ["bayko"]}"#)),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );
    for (body, expected_status, expected) in [
        (
            r#"{"handles": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "group_handles_blank",
        ),
        (r#"{"handles": ["londo"]}"#, StatusCode::OK, ""),
        (
            r#"{"handles": ["bayko"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_reciever_is_self",
        ),
        (
            r#"{"handles": ["nobody"]}"#,
            StatusCode::NOT_FOUND,
            "user_reciever_not_found",
        ),
    ] {
        let (status, _, response) = parts(
            w.api
                .serve(
                    Route::AddMessageGroupMembers,
                    request(&add(BAYKO_SUB, body)),
                )
                .await
                .unwrap(),
        );
        assert_eq!(status, expected_status, "{body}: {response}");
        if !expected.is_empty() {
            assert_eq!(codes(&response), [expected], "{body}");
        }
    }
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::AddMessageGroupMembers,
                request(&add(BAYKO_SUB, r#"{"handles": ["mordo"]}"#)),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let members: Vec<GroupMember> = serde_json::from_value(body).unwrap();
    assert_eq!(members.len(), 4);
    assert_eq!(
        members[3].uuid,
        mordo.uuid.to_string(),
        "the newest member last"
    );
    let items = inbox_json(&w, "sub-mordo").await;
    let item = item_of(&items, &group).unwrap();
    assert_eq!(
        (&item["member_count"], &item["unread"]),
        (&json!(4), &json!(0))
    );

    // Londo leaves: gone from the inbox and the members, and cannot leave twice.
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&leave(LONDO_SUB)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(item_of(&inbox_json(&w, LONDO_SUB).await, &group).is_none());
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&leave(LONDO_SUB)))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );
    let items = inbox_json(&w, ANDREW_SUB).await;
    assert_eq!(item_of(&items, &group).unwrap()["member_count"], 3);

    // A direct conversation can neither be left nor grown.
    let direct = send(&w, &w.andrew, &w.bayko, "just us")
        .await
        .group_uuid
        .to_string();
    let leave_direct = as_user(
        at_group(event("api-leave-message-group.json"), &direct),
        ANDREW_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&leave_direct))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_is_direct"]
        )
    );
    let grow_direct = as_user(
        with_body(
            at_group(event("api-add-message-group-members.json"), &direct),
            r#"{"handles": ["londo"]}"#,
        ),
        ANDREW_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::AddMessageGroupMembers, request(&grow_direct))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_is_direct"]
        )
    );
    // Its members are listed like a group's.
    let list_direct = as_user(
        at_group(event("api-list-message-group-members.json"), &direct),
        BAYKO_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list_direct))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 2);
    let bad = as_user(
        at_group(event("api-leave-message-group.json"), "not-a-uuid"),
        ANDREW_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&bad))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_uuid_invalid"]
        )
    );
}

#[tokio::test]
async fn reading_the_newest_page_or_posting_read_marks_a_conversation_read() {
    let w = world().await;
    let group = bootcamp(&w).await.message_group_uuid;
    let unread = |items: &[Value]| item_of(items, &group).unwrap()["unread"].clone();
    assert_eq!(unread(&inbox_json(&w, BAYKO_SUB).await), 1);
    assert_eq!(unread(&inbox_json(&w, LONDO_SUB).await), 1);

    // Bayko opens the conversation: its newest page marks it read.
    let read_page = as_user(in_group(event("api-list-messages.json"), &group), BAYKO_SUB);
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessages, request(&read_page))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(unread(&inbox_json(&w, BAYKO_SUB).await), 0);

    // Londo marks it read explicitly: warm, two requests.
    let mark = as_user(
        at_group(event("api-mark-message-group-read.json"), &group),
        LONDO_SUB,
    );
    let (status, _, _) = parts(
        w.api
            .serve(Route::MarkMessageGroupRead, request(&mark))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(unread(&inbox_json(&w, LONDO_SUB).await), 0);
    w.table.requests.reset();
    let (status, _, _) = parts(
        w.api
            .serve(Route::MarkMessageGroupRead, request(&mark))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NO_CONTENT, "again: nothing to write");
    assert_eq!(
        w.table.requests.total(),
        1,
        "{:?}",
        w.table.requests.snapshot()
    );
    // From the event as it is (bayko, the demo group, which does not exist here).
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::MarkMessageGroupRead,
                request(&event("api-mark-message-group-read.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );
    let mordo = register(&w.table, "mordo", "Mr Morden", "sub-mordo").await;
    drop(mordo);
    let stranger = as_user(
        at_group(event("api-mark-message-group-read.json"), &group),
        "sub-mordo",
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::MarkMessageGroupRead, request(&stranger))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );

    // A direct conversation: the recipient's first message is unread until read.
    let direct = send(&w, &w.andrew, &w.londo, "psst")
        .await
        .group_uuid
        .to_string();
    let items = inbox_json(&w, LONDO_SUB).await;
    assert_eq!(item_of(&items, &direct).unwrap()["unread"], 1);
    let read_direct = as_user(
        in_group(event("api-list-messages.json"), &direct),
        LONDO_SUB,
    );
    w.api
        .serve(Route::ListMessages, request(&read_direct))
        .await
        .unwrap();
    let items = inbox_json(&w, LONDO_SUB).await;
    assert_eq!(item_of(&items, &direct).unwrap()["unread"], 0);
}

#[test]
fn every_http_route_has_an_event_in_events() {
    for route in Route::ALL {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        let prefix = format!("api-{}", route.function());
        let found = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix) && name.ends_with(".json"))
            .any(|name| event(&name)["routeKey"] == route.key());
        assert!(found, "events/{prefix}*.json with routeKey {}", route.key());
    }
}
