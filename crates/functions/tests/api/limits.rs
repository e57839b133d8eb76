//! Per-user limits through the handlers: over a window's cap, `429 ["rate_limited"]` with
//! `Retry-After` (whole seconds until the window ends), and nothing of the refused request
//! in any list a client reads.

use std::time::Duration;

use functions::routes::Route;
use lambda_http::http::StatusCode;
use lambda_http::http::header::RETRY_AFTER;
use messaging::PageRequest;
use messaging::store::{Limits, RateLimit};
use serde_json::json;

use crate::{
    ANDREW_SUB, BAYKO_SUB, LONDO_SUB, api_over, as_user, codes, event, parts, request, send,
    with_body, world,
};

/// Windows of a day: a test never straddles two of them, whatever the clock says.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn small_limits() -> Limits {
    Limits {
        send: Some(RateLimit {
            cap: 3,
            window: DAY,
        }),
        group_changes: Some(RateLimit {
            cap: 2,
            window: DAY,
        }),
    }
}

/// The limited API's answer to `event` as `route`: status, `Retry-After`, body.
async fn call(
    api: &functions::api::Api,
    route: Route,
    event: &serde_json::Value,
) -> (StatusCode, Option<u64>, serde_json::Value) {
    let response = api.serve(route, request(event)).await.unwrap();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .map(|value| value.to_str().unwrap().parse::<u64>().unwrap());
    let (status, _, body) = parts(response);
    (status, retry_after, body)
}

fn assert_rate_limited(answer: &(StatusCode, Option<u64>, serde_json::Value)) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(codes(body), ["rate_limited"]);
    let seconds = retry_after.expect("Retry-After");
    assert!((1..=DAY.as_secs()).contains(&seconds), "{seconds}");
}

#[tokio::test]
async fn sends_past_the_window_are_429_with_retry_after_and_never_listed() {
    let w = world().await;
    let api = api_over(w.table.store.clone().with_limits(small_limits()));
    let group = send(&w, &w.bayko, &w.andrew, "hello")
        .await
        .group_uuid
        .to_string();
    let append = |text: &str| {
        with_body(
            as_user(event("api-create-message-to-group.json"), BAYKO_SUB),
            &json!({"message": text, "message_group_uuid": group}).to_string(),
        )
    };
    for i in 0..3 {
        let answer = call(&api, Route::CreateMessage, &append(&format!("m{i}"))).await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.2);
        assert_eq!(answer.1, None, "no Retry-After on a success");
    }
    let refused = call(&api, Route::CreateMessage, &append("one too many")).await;
    assert_rate_limited(&refused);
    // Starting a conversation is a send too, and writes nothing when refused.
    let to_londo = with_body(
        as_user(event("api-create-message-to-handle.json"), BAYKO_SUB),
        &json!({"message": "hi londo", "handle": "londo"}).to_string(),
    );
    assert_rate_limited(&call(&api, Route::CreateMessage, &to_londo).await);

    let page = w
        .table
        .store
        .list_messages(
            w.andrew.uuid,
            group.parse().unwrap(),
            &PageRequest::new(50, None).unwrap(),
        )
        .await
        .unwrap();
    let texts: Vec<&str> = page.items.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hello", "m0", "m1", "m2"]);
    assert_eq!(
        w.table
            .store
            .conversation_between(w.bayko.uuid, w.londo.uuid, true)
            .await
            .unwrap(),
        None
    );
    let londo_inbox = w
        .table
        .store
        .list_inbox(w.londo.uuid, &PageRequest::new(50, None).unwrap())
        .await
        .unwrap();
    assert!(londo_inbox.items.is_empty());

    // The limit is the sender's: the others still write.
    let from_londo = as_user(event("api-create-message-to-handle.json"), LONDO_SUB);
    assert_eq!(
        call(&api, Route::CreateMessage, &from_londo).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn creating_groups_and_adding_members_share_one_window() {
    let w = world().await;
    let api = api_over(w.table.store.clone().with_limits(small_limits()));
    let create = as_user(event("api-create-message-group.json"), ANDREW_SUB);
    let (status, _, created) = call(&api, Route::CreateMessageGroup, &create).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let other = with_body(
        create.clone(),
        &json!({"name": "Pair", "handles": ["bayko"], "message": "just us"}).to_string(),
    );
    let (status, _, pair) = call(&api, Route::CreateMessageGroup, &other).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let group = pair["message_group_uuid"].as_str().unwrap();

    let mut add = event("api-add-message-group-members.json");
    add["pathParameters"]["message_group_uuid"] = json!(group);
    add["rawPath"] = json!(format!("/api/message_groups/{group}/members"));
    assert_rate_limited(&call(&api, Route::AddMessageGroupMembers, &add).await);
    assert_rate_limited(&call(&api, Route::CreateMessageGroup, &create).await);

    let members = w
        .table
        .store
        .group_members(w.andrew.uuid, group.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(members.len(), 2, "londo was not added");
    let inbox = w
        .table
        .store
        .list_inbox(w.andrew.uuid, &PageRequest::new(50, None).unwrap())
        .await
        .unwrap();
    assert_eq!(inbox.items.len(), 2, "no third group");
    // Sending is a limit of its own.
    let say = with_body(
        as_user(event("api-create-message-to-group.json"), ANDREW_SUB),
        &json!({"message": "still here", "message_group_uuid": group}).to_string(),
    );
    assert_eq!(
        call(&api, Route::CreateMessage, &say).await.0,
        StatusCode::OK
    );
}
