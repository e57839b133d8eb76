//! Editing and deleting a message through the API: the sender only, 404 (never 403) for
//! anyone else, bad input a precise 4xx, and the conversation showing what happened.

use functions::api::{CreatedMessage, ListItem};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use messaging::Message;
use serde_json::{Value, json};

use crate::{
    ANDREW_SUB, BAYKO_SUB, LONDO_SUB, World, anonymous, as_user, codes, event, in_group, parts,
    request, send, with_body, world,
};

/// `event` addressed to `message` of `group` (both as given: they may be anything).
fn at_message(mut event: Value, group: &str, message: &str) -> Value {
    event["pathParameters"] = json!({"message_group_uuid": group, "message_uuid": message});
    event["rawPath"] = json!(format!("/api/messages/{group}/{message}"));
    event
}

fn edit_event(sub: &str, message: &Message, text: &str) -> Value {
    let event = at_message(
        event("api-update-message.json"),
        &message.group_uuid.to_string(),
        &message.uuid.to_string(),
    );
    with_body(as_user(event, sub), &json!({ "message": text }).to_string())
}

fn delete_event(sub: &str, message: &Message) -> Value {
    let event = at_message(
        event("api-delete-message.json"),
        &message.group_uuid.to_string(),
        &message.uuid.to_string(),
    );
    as_user(event, sub)
}

fn without_body(mut event: Value) -> Value {
    event.as_object_mut().unwrap().remove("body");
    event
}

async fn serve(w: &World, route: Route, event: &Value) -> (StatusCode, Value) {
    let (status, _, body) = parts(w.api.serve(route, request(event)).await.unwrap());
    (status, body)
}

async fn page(w: &World, sub: &str, message: &Message) -> Vec<ListItem> {
    let event = as_user(
        in_group(
            event("api-list-messages.json"),
            &message.group_uuid.to_string(),
        ),
        sub,
    );
    let (status, body) = serve(w, Route::ListMessages, &event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test]
async fn the_conversation_shows_an_edit_and_a_delete() {
    let w = world().await;
    let first = send(&w, &w.andrew, &w.bayko, "Helo").await;
    let second = send(&w, &w.andrew, &w.bayko, "I take that back").await;

    let (status, body) = serve(
        &w,
        Route::UpdateMessage,
        &edit_event(ANDREW_SUB, &first, "Hello"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let edited: CreatedMessage = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(edited.uuid, first.uuid.to_string());
    assert_eq!(edited.message_group_uuid, first.group_uuid.to_string());
    assert_eq!(edited.message, "Hello");
    assert_eq!(edited.created_at, first.created_at);
    assert!(edited.edited_at.is_some());
    assert!(body.get("deleted").is_none() && body.get("deleted_at").is_none());

    let (status, body) = serve(&w, Route::DeleteMessage, &delete_event(ANDREW_SUB, &second)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"], json!(true), "{body}");
    assert_eq!(body["message"], json!(""));
    assert!(body["deleted_at"].is_string());
    assert!(body.get("edited_at").is_none());
    // Again: the same answer.
    let (again_status, again) =
        serve(&w, Route::DeleteMessage, &delete_event(ANDREW_SUB, &second)).await;
    assert_eq!((again_status, &again), (StatusCode::OK, &body));

    // Both members see it so, each message in its place.
    for sub in [ANDREW_SUB, BAYKO_SUB] {
        let items = page(&w, sub, &first).await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].uuid, first.uuid.to_string());
        assert_eq!(items[0].message, "Hello");
        assert_eq!(items[0].edited_at, edited.edited_at);
        assert!(!items[0].deleted);
        assert_eq!(items[1].uuid, second.uuid.to_string());
        assert_eq!(items[1].message, "");
        assert!(items[1].deleted);
        assert_eq!(items[1].deleted_at.as_deref(), body["deleted_at"].as_str());
    }
    // The page as the original frontend reads it: unchanged fields for an untouched message.
    let untouched = send(&w, &w.bayko, &w.andrew, "ok").await;
    let event = as_user(
        in_group(
            event("api-list-messages.json"),
            &untouched.group_uuid.to_string(),
        ),
        ANDREW_SUB,
    );
    let (_, raw) = serve(&w, Route::ListMessages, &event).await;
    let last = raw.as_array().unwrap().last().unwrap();
    let keys: Vec<&str> = last
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["created_at", "display_name", "handle", "message", "uuid"]
    );
}

#[tokio::test]
async fn anyone_but_the_sender_is_told_not_found_never_forbidden() {
    let w = world().await;
    let message = send(&w, &w.andrew, &w.bayko, "mine").await;
    let elsewhere = send(&w, &w.bayko, &w.londo, "theirs").await;
    let mut wrong_conversation = message.clone();
    wrong_conversation.group_uuid = elsewhere.group_uuid;
    let mut unknown = message.clone();
    unknown.uuid = uuid::Uuid::new_v4();

    for (what, sub, target) in [
        ("the other member", BAYKO_SUB, &message),
        ("a stranger", LONDO_SUB, &message),
        (
            "the sender, in another conversation",
            ANDREW_SUB,
            &wrong_conversation,
        ),
        (
            "a member of that other conversation",
            BAYKO_SUB,
            &wrong_conversation,
        ),
        ("the sender, an unknown uuid", ANDREW_SUB, &unknown),
    ] {
        for (route, event) in [
            (Route::UpdateMessage, edit_event(sub, target, "changed")),
            (Route::DeleteMessage, delete_event(sub, target)),
        ] {
            let (status, body) = serve(&w, route, &event).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{what} {route:?}: {body}");
            assert_eq!(codes(&body), ["message_not_found"], "{what} {route:?}");
        }
    }
    let items = page(&w, ANDREW_SUB, &message).await;
    assert_eq!(items[0].message, "mine");
    assert!(items[0].edited_at.is_none() && !items[0].deleted);
}

#[tokio::test]
async fn bad_input_gets_a_precise_client_error() {
    let w = world().await;
    let message = send(&w, &w.andrew, &w.bayko, "mine").await;
    let group = message.group_uuid.to_string();
    let uuid = message.uuid.to_string();
    let edit = |body: &str| {
        with_body(
            as_user(
                at_message(event("api-update-message.json"), &group, &uuid),
                ANDREW_SUB,
            ),
            body,
        )
    };
    let too_long = json!({ "message": "x".repeat(1025) }).to_string();
    let cases: Vec<(&str, Route, Value, StatusCode, Vec<&str>)> = vec![
        (
            "blank",
            Route::UpdateMessage,
            edit(r#"{"message": "   "}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_blank"],
        ),
        (
            "no message",
            Route::UpdateMessage,
            edit(r#"{"text": "hello"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_blank"],
        ),
        (
            "too long",
            Route::UpdateMessage,
            edit(&too_long),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_exceed_max_chars_1024"],
        ),
        (
            "malformed JSON",
            Route::UpdateMessage,
            edit(r#"{"message": "#),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
        (
            "not an object",
            Route::UpdateMessage,
            edit(r#"["hello"]"#),
            StatusCode::BAD_REQUEST,
            vec!["json_not_object"],
        ),
        (
            "a number for the text",
            Route::UpdateMessage,
            edit(r#"{"message": 5}"#),
            StatusCode::BAD_REQUEST,
            vec!["json_field_type_invalid"],
        ),
        (
            "no body",
            Route::UpdateMessage,
            without_body(as_user(
                at_message(event("api-update-message.json"), &group, &uuid),
                ANDREW_SUB,
            )),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
        (
            "bad ids and a blank text, all said at once",
            Route::UpdateMessage,
            with_body(
                as_user(
                    at_message(event("api-update-message.json"), "nope", "nada"),
                    ANDREW_SUB,
                ),
                r#"{"message": ""}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![
                "message_group_uuid_invalid",
                "message_uuid_invalid",
                "message_blank",
            ],
        ),
        (
            "a bad message uuid",
            Route::DeleteMessage,
            as_user(
                at_message(event("api-delete-message.json"), &group, "123"),
                ANDREW_SUB,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_uuid_invalid"],
        ),
        (
            "a bad conversation uuid",
            Route::DeleteMessage,
            as_user(
                at_message(event("api-delete-message.json"), "not-a-uuid", &uuid),
                ANDREW_SUB,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_uuid_invalid"],
        ),
        (
            "anonymous",
            Route::DeleteMessage,
            anonymous(delete_event(ANDREW_SUB, &message)),
            StatusCode::UNAUTHORIZED,
            vec!["unauthenticated"],
        ),
        (
            "not registered",
            Route::UpdateMessage,
            edit_event("no-such-sub", &message, "hi"),
            StatusCode::NOT_FOUND,
            vec!["user_not_registered"],
        ),
    ];
    for (what, route, event, expected, expected_codes) in cases {
        let (status, body) = serve(&w, route, &event).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert_eq!(codes(&body), expected_codes, "{what}");
    }
    // Nothing of it changed the message.
    let items = page(&w, ANDREW_SUB, &message).await;
    assert_eq!(items[0].message, "mine");
    assert!(items[0].edited_at.is_none());
}

#[tokio::test]
async fn a_blocked_sender_is_refused_as_a_send_is() {
    let w = world().await;
    let message = send(&w, &w.andrew, &w.bayko, "mine").await;
    w.table
        .store
        .block(&w.bayko, &w.andrew, messaging::Timestamp::now())
        .await
        .unwrap();

    let (status, body) = serve(
        &w,
        Route::UpdateMessage,
        &edit_event(ANDREW_SUB, &message, "sorry"),
    )
    .await;

    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(codes(&body), ["messaging_blocked"]);
}
