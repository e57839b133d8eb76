//! Reactions through the API: `PUT`/`DELETE
//! /api/messages/{message_group_uuid}/{message_uuid}/reactions/{emoji}` from their events,
//! answers with the message's reactions, conversation pages relative to the reader, and
//! every refusal a precise 4xx with nothing written.

use std::time::Duration;

use functions::routes::Route;
use lambda_http::http::StatusCode;
use lambda_http::http::header::RETRY_AFTER;
use messaging::store::{Limits, RateLimit};
use messaging::{Message, Timestamp};
use serde_json::{Value, json};
use testkit::{Refusal, RefusingClient};

use crate::{
    ANDREW_SUB, BAYKO_SUB, LONDO_SUB, World, anonymous, api_over, as_user, codes, event, in_group,
    parts, request, send, world,
};

/// The reaction event `name` from `sub`, addressed to `group`/`message` with `emoji` (the
/// path parameters as API Gateway hands them over: decoded).
fn reaction(name: &str, sub: &str, group: &str, message: &str, emoji: &str) -> Value {
    let mut event = as_user(event(name), sub);
    event["pathParameters"] = json!({
        "message_group_uuid": group,
        "message_uuid": message,
        "emoji": emoji,
    });
    let path = format!("/api/messages/{group}/{message}/reactions/{emoji}");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

fn add(sub: &str, message: &Message, emoji: &str) -> Value {
    let (group, uuid) = (message.group_uuid.to_string(), message.uuid.to_string());
    reaction("api-add-reaction.json", sub, &group, &uuid, emoji)
}

fn remove(sub: &str, message: &Message, emoji: &str) -> Value {
    let (group, uuid) = (message.group_uuid.to_string(), message.uuid.to_string());
    reaction("api-remove-reaction.json", sub, &group, &uuid, emoji)
}

async fn serve(w: &World, route: Route, event: &Value) -> (StatusCode, Value) {
    let (status, _, body) = parts(w.api.serve(route, request(event)).await.unwrap());
    (status, body)
}

/// The page of the conversation `sub` reads.
async fn page(w: &World, sub: &str, message: &Message) -> Vec<Value> {
    let event = as_user(
        in_group(
            event("api-list-messages.json"),
            &message.group_uuid.to_string(),
        ),
        sub,
    );
    let (status, body) = serve(w, Route::ListMessages, &event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn the_events_react_and_take_back_and_the_answer_is_the_messages_reactions() {
    let w = world().await;
    let hello = send(&w, &w.andrew, &w.bayko, "hello").await;
    let (group, uuid) = (hello.group_uuid.to_string(), hello.uuid.to_string());
    // The events as they are (Andrew, 👍 and a bare ❤), addressed to this message.
    let mut add_event = event("api-add-reaction.json");
    let mut remove_event = event("api-remove-reaction.json");
    for event in [&mut add_event, &mut remove_event] {
        event["pathParameters"]["message_group_uuid"] = json!(group);
        event["pathParameters"]["message_uuid"] = json!(uuid);
    }

    let (status, body) = serve(&w, Route::AddReaction, &add_event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "message_group_uuid": group,
            "uuid": uuid,
            "reactions": {"👍": 1},
            "my_reactions": ["👍"],
        })
    );

    let (status, body) = serve(&w, Route::AddReaction, &add(BAYKO_SUB, &hello, "❤️")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reactions"], json!({"👍": 1, "❤️": 1}));
    assert_eq!(
        body["my_reactions"],
        json!(["❤️"]),
        "relative to the caller"
    );

    // A bare ❤ takes back ❤️; Andrew has none, so nothing changes.
    let before = w.table.snapshot().await;
    let (status, body) = serve(&w, Route::RemoveReaction, &remove_event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reactions"], json!({"👍": 1, "❤️": 1}));
    assert_eq!(body["my_reactions"], json!(["👍"]));
    assert_eq!(w.table.snapshot().await, before, "nothing to take back");

    let bayko_removes = remove(BAYKO_SUB, &hello, "\u{2764}");
    let (status, body) = serve(&w, Route::RemoveReaction, &bayko_removes).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reactions"], json!({"👍": 1}));
    assert_eq!(body["my_reactions"], json!([]), "always present here");
}

#[tokio::test]
async fn a_repeat_answers_the_same_and_writes_nothing() {
    let w = world().await;
    let hello = send(&w, &w.andrew, &w.bayko, "hello").await;
    let first = serve(&w, Route::AddReaction, &add(BAYKO_SUB, &hello, "🎉")).await;
    let before = w.table.snapshot().await;

    let again = serve(&w, Route::AddReaction, &add(BAYKO_SUB, &hello, "🎉")).await;

    assert_eq!(again, first);
    assert_eq!(again.1["reactions"], json!({"🎉": 1}));
    assert_eq!(w.table.snapshot().await, before);
}

#[tokio::test]
async fn conversation_pages_carry_counts_and_the_readers_own() {
    let w = world().await;
    let hello = send(&w, &w.andrew, &w.bayko, "hello").await;
    let plain = send(&w, &w.bayko, &w.andrew, "no reactions here").await;
    for (sub, emoji) in [(ANDREW_SUB, "👍"), (BAYKO_SUB, "👍"), (BAYKO_SUB, "😂")] {
        let (status, body) = serve(&w, Route::AddReaction, &add(sub, &hello, emoji)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let andrews = page(&w, ANDREW_SUB, &hello).await;
    let baykos = page(&w, BAYKO_SUB, &hello).await;

    let find = |items: &[Value], message: &Message| {
        items
            .iter()
            .find(|item| item["uuid"] == message.uuid.to_string())
            .cloned()
            .unwrap()
    };
    let (for_andrew, for_bayko) = (find(&andrews, &hello), find(&baykos, &hello));
    assert_eq!(for_andrew["reactions"], json!({"👍": 2, "😂": 1}));
    assert_eq!(for_bayko["reactions"], for_andrew["reactions"]);
    assert_eq!(for_andrew["my_reactions"], json!(["👍"]));
    assert_eq!(for_bayko["my_reactions"], json!(["👍", "😂"]));
    // Absent when empty: the original frontend's shape is unchanged.
    let untouched = find(&andrews, &plain);
    let fields: Vec<&str> = untouched
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        ["created_at", "display_name", "handle", "message", "uuid"]
    );
}

#[tokio::test]
async fn outsiders_and_unknown_or_deleted_messages_are_404_message_not_found() {
    let w = world().await;
    let hello = send(&w, &w.andrew, &w.bayko, "hello").await;
    let other = send(&w, &w.londo, &w.bayko, "elsewhere").await;
    let before = w.table.snapshot().await;
    let group = hello.group_uuid.to_string();
    let never_sent =
        messaging::message_id::message_uuid_at(Timestamp::parse(&hello.created_at).unwrap())
            .to_string();

    for (route, event) in [
        // Londo is not in the conversation: same answer as for a message that is not there.
        (Route::AddReaction, add(LONDO_SUB, &hello, "👍")),
        (Route::RemoveReaction, remove(LONDO_SUB, &hello, "👍")),
        (
            Route::AddReaction,
            reaction(
                "api-add-reaction.json",
                BAYKO_SUB,
                &group,
                &never_sent,
                "👍",
            ),
        ),
        // Another conversation's message, addressed under this one.
        (
            Route::AddReaction,
            reaction(
                "api-add-reaction.json",
                ANDREW_SUB,
                &group,
                &other.uuid.to_string(),
                "👍",
            ),
        ),
    ] {
        let (status, body) = serve(&w, route, &event).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{event}: {body}");
        assert_eq!(codes(&body), ["message_not_found"]);
    }
    assert_eq!(w.table.snapshot().await, before, "nothing written");

    // Deleted for everyone (as `edit`'s delete leaves the item): no more reactions.
    let mut item = messaging::items::MessageItem::new(&hello);
    item.message = String::new();
    item.deleted_at = Some(Timestamp::now().to_string());
    item.revision = 1;
    w.table
        .put_raw(serde_dynamo::to_item(&item).unwrap())
        .await
        .unwrap();
    let (status, body) = serve(&w, Route::AddReaction, &add(BAYKO_SUB, &hello, "👍")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(codes(&body), ["message_not_found"]);
}

#[tokio::test]
async fn bad_input_is_a_precise_4xx_never_a_5xx() {
    let w = world().await;
    let hello = send(&w, &w.andrew, &w.bayko, "hello").await;
    let (group, uuid) = (hello.group_uuid.to_string(), hello.uuid.to_string());
    // As long as API Gateway lets a path be: request line and headers share 10240 bytes
    // (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html).
    let huge = "👍".repeat(2_400);
    let cases: Vec<(&str, &str, &str, Vec<&str>)> = vec![
        (&group, &uuid, "💩", vec!["reaction_unknown"]),
        (&group, &uuid, "👍🏽", vec!["reaction_unknown"]),
        (&group, &uuid, "", vec!["reaction_unknown"]),
        // Decoded once by API Gateway: a double encoding is not an emoji.
        (&group, &uuid, "%F0%9F%91%8D", vec!["reaction_unknown"]),
        (&group, &uuid, &huge, vec!["reaction_unknown"]),
        (&group, "not-a-uuid", "👍", vec!["message_uuid_invalid"]),
        (&group, &huge, "👍", vec!["message_uuid_invalid"]),
        ("5ae290ed", &uuid, "👍", vec!["message_group_uuid_invalid"]),
        (
            "x",
            "y",
            "z",
            vec![
                "message_group_uuid_invalid",
                "message_uuid_invalid",
                "reaction_unknown",
            ],
        ),
    ];
    let before = w.table.snapshot().await;
    for (group, message, emoji, expected) in cases {
        for name in ["api-add-reaction.json", "api-remove-reaction.json"] {
            let route = if name.contains("add") {
                Route::AddReaction
            } else {
                Route::RemoveReaction
            };
            let event = reaction(name, BAYKO_SUB, group, message, emoji);
            let (status, body) = serve(&w, route, &event).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}: {body}",
                &emoji.chars().take(8).collect::<String>()
            );
            assert_eq!(codes(&body), expected);
        }
    }
    assert_eq!(w.table.snapshot().await, before, "nothing written");

    let (status, _) = serve(
        &w,
        Route::AddReaction,
        &anonymous(add(BAYKO_SUB, &hello, "👍")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stranger = add("5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e99", &hello, "👍");
    let (status, body) = serve(&w, Route::AddReaction, &stranger).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(codes(&body), ["user_not_registered"]);
}

#[tokio::test]
async fn reactions_are_rate_limited_with_sends_and_conflicts_are_503() {
    let w = world().await;
    let hello = send(&w, &w.andrew, &w.bayko, "hello").await;
    let limited = api_over(w.table.store.clone().with_limits(Limits {
        send: Some(RateLimit {
            cap: 1,
            window: Duration::from_secs(24 * 60 * 60),
        }),
        group_changes: None,
    }));
    let first = limited
        .serve(Route::AddReaction, request(&add(BAYKO_SUB, &hello, "👍")))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let refused = limited
        .serve(Route::AddReaction, request(&add(BAYKO_SUB, &hello, "🎉")))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(RETRY_AFTER));
    let (_, _, body) = parts(refused);
    assert_eq!(codes(&body), ["rate_limited"]);

    let dynamodb = RefusingClient::new();
    dynamodb.refuse("TransactWriteItems", Refusal::TransactionConflict);
    let busy = api_over(dynamodb.store_for(&w.table));
    let before = w.table.snapshot().await;
    let response = busy
        .serve(
            Route::RemoveReaction,
            request(&remove(BAYKO_SUB, &hello, "👍")),
        )
        .await
        .expect("contention is an answer, not a fault");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(RETRY_AFTER));
    assert_eq!(w.table.snapshot().await, before);
}

#[tokio::test]
async fn a_migrated_message_with_a_uuid_v4_takes_reactions_too() {
    let w = world().await;
    let hello = send(&w, &w.andrew, &w.bayko, "hello").await;
    // As the original system wrote it: a UUIDv4 that says nothing of where it is.
    let mut legacy = messaging::items::MessageItem::new(&hello);
    legacy.sk = "2023-03-21T23:04:53+00:00".into();
    legacy.message_uuid = uuid::Uuid::new_v4();
    w.table
        .put_raw(serde_dynamo::to_item(&legacy).unwrap())
        .await
        .unwrap();
    let old = legacy.into_message().unwrap();

    let (status, body) = serve(&w, Route::AddReaction, &add(BAYKO_SUB, &old, "🙏")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reactions"], json!({"🙏": 1}));
    let (status, body) = serve(&w, Route::RemoveReaction, &remove(BAYKO_SUB, &old, "🙏")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reactions"], json!({}));
}
