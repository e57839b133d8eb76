//! `client_message_id` through the handlers: a repeat answers the first answer byte for
//! byte and writes nothing; another body under the same id is `409
//! ["client_message_id_reused"]`; ids are per user; anything but a UUID is `422
//! ["client_message_id_invalid"]`, reported with the body's other invalid fields.

use functions::api::CreatedMessage;
use functions::routes::Route;
use lambda_http::http::StatusCode;
use messaging::keys;
use serde_json::{Value, json};

use crate::{
    ANDREW_SUB, BAYKO_SUB, World, as_user, codes, event, parts, request, send, with_body, world,
};

async fn call(w: &World, route: Route, event: &Value) -> (StatusCode, Value) {
    let (status, _, body) = parts(w.api.serve(route, request(event)).await.unwrap());
    (status, body)
}

async fn messages_of(w: &World, group: &str) -> usize {
    w.table
        .snapshot()
        .await
        .iter()
        .filter(|item| item.contains(&format!("MSG#{group}")))
        .count()
}

#[tokio::test]
async fn a_repeated_send_answers_the_first_answer_and_writes_nothing() {
    let w = world().await;
    // Londo to Bayko by handle, naming the send (the events/ file).
    let named = event("api-create-message-idempotent.json");
    let (status, first) = call(&w, Route::CreateMessage, &named).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let snapshot = w.table.snapshot().await;
    let (status, again) = call(&w, Route::CreateMessage, &named).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first, "the same body: uuid, created_at, group");
    assert_eq!(w.table.snapshot().await, snapshot, "nothing written");
    let created: CreatedMessage = serde_json::from_value(first).unwrap();
    assert_eq!(messages_of(&w, &created.message_group_uuid).await, 1);

    // The same id naming the conversation instead of the handle is another request.
    let other = with_body(
        named.clone(),
        &json!({
            "message": "Bayko, a word about the new inbox.",
            "message_group_uuid": created.message_group_uuid,
            "client_message_id": "0f8c2a4e-7b1d-4c3e-9a5f-2d6b8e1c4a70",
        })
        .to_string(),
    );
    let (status, body) = call(&w, Route::CreateMessage, &other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(codes(&body), ["client_message_id_reused"]);
    assert_eq!(w.table.snapshot().await, snapshot, "nothing written");
}

#[tokio::test]
async fn duplicates_at_once_answer_alike_with_one_message() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "hello").await.group_uuid;
    let body = json!({
        "message": "only once",
        "message_group_uuid": group.to_string(),
        "client_message_id": "b5f1c0de-1d2e-4f3a-8b9c-0a1b2c3d4e5f",
    })
    .to_string();
    let named = as_user(
        with_body(event("api-create-message-idempotent.json"), &body),
        ANDREW_SUB,
    );
    let (a, b) = tokio::join!(
        call(&w, Route::CreateMessage, &named),
        call(&w, Route::CreateMessage, &named)
    );
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(a, b);
    assert_eq!(messages_of(&w, &group.to_string()).await, 2);
}

#[tokio::test]
async fn ids_are_per_user() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "hello").await.group_uuid;
    let body = json!({
        "message": "same words",
        "message_group_uuid": group.to_string(),
        "client_message_id": "c0ffee00-1d2e-4f3a-8b9c-0a1b2c3d4e5f",
    })
    .to_string();
    let named = with_body(event("api-create-message-idempotent.json"), &body);
    let (from_andrew, andrews) = call(
        &w,
        Route::CreateMessage,
        &as_user(named.clone(), ANDREW_SUB),
    )
    .await;
    let (from_bayko, baykos) = call(&w, Route::CreateMessage, &as_user(named, BAYKO_SUB)).await;
    assert_eq!((from_andrew, from_bayko), (StatusCode::OK, StatusCode::OK));
    assert_ne!(andrews["uuid"], baykos["uuid"]);
    assert_eq!(messages_of(&w, &group.to_string()).await, 3);
}

#[tokio::test]
async fn an_invalid_id_is_422_with_the_other_invalid_fields() {
    let w = world().await;
    let snapshot = w.table.snapshot().await;
    for id in [
        "",
        "42",
        "not-a-uuid",
        "0f8c2a4e-7b1d-4c3e-9a5f-2d6b8e1c4a7",
    ] {
        let bad = with_body(
            event("api-create-message-idempotent.json"),
            &json!({"message": "hi", "handle": "bayko", "client_message_id": id}).to_string(),
        );
        let (status, body) = call(&w, Route::CreateMessage, &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id:?}: {body}");
        assert_eq!(codes(&body), ["client_message_id_invalid"]);
    }
    let both = with_body(
        event("api-create-message-idempotent.json"),
        &json!({"message": "", "handle": "bayko", "client_message_id": "x"}).to_string(),
    );
    let (status, body) = call(&w, Route::CreateMessage, &both).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(codes(&body), ["message_blank", "client_message_id_invalid"]);
    // Not a string at all: the body's shape is wrong.
    let number = with_body(
        event("api-create-message-idempotent.json"),
        &json!({"message": "hi", "handle": "bayko", "client_message_id": 42}).to_string(),
    );
    let (status, body) = call(&w, Route::CreateMessage, &number).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let group = with_body(
        event("api-create-message-group-idempotent.json"),
        &json!({"name": "Bootcamp", "handles": ["bayko"], "message": "hi", "client_message_id": "nope"}).to_string(),
    );
    let (status, body) = call(&w, Route::CreateMessageGroup, &group).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(codes(&body), ["client_message_id_invalid"]);
    assert_eq!(w.table.snapshot().await, snapshot, "nothing written");
}

#[tokio::test]
async fn a_repeated_group_creation_answers_the_first_and_makes_one_group() {
    let w = world().await;
    let named = event("api-create-message-group-idempotent.json");
    let (status, first) = call(&w, Route::CreateMessageGroup, &named).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let snapshot = w.table.snapshot().await;
    let (status, again) = call(&w, Route::CreateMessageGroup, &named).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(w.table.snapshot().await, snapshot, "nothing written");
    let groups = snapshot
        .iter()
        .filter(|item| {
            item.contains(keys::MEMBERSHIP_PREFIX) && item.contains(&w.londo.uuid.to_string())
        })
        .count();
    assert_eq!(groups, 1, "one membership of Londo: one group");

    // Another member list under the same id.
    let other = with_body(
        named,
        &json!({
            "name": "Bootcamp",
            "handles": ["bayko"],
            "message": "Welcome to the bootcamp group",
            "client_message_id": "6d1e9b3a-2c4f-4e8a-b7d0-5f3a9c2e1b84",
        })
        .to_string(),
    );
    let (status, body) = call(&w, Route::CreateMessageGroup, &other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(codes(&body), ["client_message_id_reused"]);
    // A message under the group creation's id is another request too.
    let message = as_user(
        with_body(
            event("api-create-message-idempotent.json"),
            &json!({
                "message": "Welcome to the bootcamp group",
                "handle": "bayko",
                "client_message_id": "6d1e9b3a-2c4f-4e8a-b7d0-5f3a9c2e1b84",
            })
            .to_string(),
        ),
        ANDREW_SUB,
    );
    let (status, body) = call(&w, Route::CreateMessage, &message).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}
