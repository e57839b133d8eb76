//! The API functions through their Lambda handlers, with API Gateway payload-2.0 events
//! (the files in `events/`, adjusted per test), against DynamoDB Local. One test binary,
//! a module per subject; here the world every test starts from and the event helpers.

mod access;
mod blocks;
mod edits;
mod errors;
mod groups;
mod idempotency;
mod inbox;
mod limits;
mod messages;
mod reactions;
mod receipts;
mod sign_up;
#[path = "../support/mod.rs"]
mod support;
mod users;

use std::sync::Arc;
use std::time::Duration;

use functions::directory::Directory;
use functions::http::NEXT_CURSOR_HEADER;
use functions::routes::Route;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::store::NewUser;
use messaging::validate::{DisplayName, Handle, MessageText};
use messaging::{Timestamp, User};
use serde_json::{Value, json};
use testkit::TestTable;

use support::ManualClock;
use support::recorded::Api;

const ANDREW_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e01";

const BAYKO_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e02";

const LONDO_SUB: &str = "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e03";

const TTL: Duration = Duration::from_secs(60);

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
    let clock = ManualClock::monotonic_only();
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

/// An API over `store` with a cold user cache.
fn api_over(store: messaging::Store) -> Api {
    Api::new(Directory::new(store, TTL, ManualClock::monotonic_only()))
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
