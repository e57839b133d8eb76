//! Blocking through the API: `POST`/`DELETE /api/users/@{handle}/block`, `GET /api/blocks`,
//! and `403 ["messaging_blocked"]` on every way two users could still meet, whichever of
//! them blocked, with nothing written.

use functions::routes::Route;
use lambda_http::http::StatusCode;
use messaging::User;
use serde_json::{Value, json};

use crate::{
    ANDREW_SUB, BAYKO_SUB, LONDO_SUB, World, anonymous, as_user, codes, event, in_group, parts,
    request, send, with_body, with_query, world,
};

/// `event` from `sub`, naming `handle` (`@` included, as API Gateway passes it).
fn naming(mut event: Value, sub: &str, handle: &str) -> Value {
    event["pathParameters"]["handle"] = json!(handle);
    let path = format!("/api/users/{handle}/block");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    as_user(event, sub)
}

async fn serve(w: &World, route: Route, event: &Value) -> (StatusCode, Option<String>, Value) {
    parts(w.api.serve(route, request(event)).await.unwrap())
}

async fn block(w: &World, sub: &str, handle: &str) -> StatusCode {
    let event = naming(event("api-block-user.json"), sub, handle);
    serve(w, Route::BlockUser, &event).await.0
}

async fn unblock(w: &World, sub: &str, handle: &str) -> StatusCode {
    let event = naming(event("api-unblock-user.json"), sub, handle);
    serve(w, Route::UnblockUser, &event).await.0
}

/// `POST /api/messages` from `sub` with `body`.
async fn post_message(w: &World, sub: &str, body: Value) -> (StatusCode, Value) {
    let event = with_body(
        as_user(event("api-create-message-to-handle.json"), sub),
        &body.to_string(),
    );
    let (status, _, body) = serve(w, Route::CreateMessage, &event).await;
    (status, body)
}

/// Every way of messaging the other directly, both ways: each `403 ["messaging_blocked"]`,
/// and the table as it was.
async fn assert_messaging_refused(w: &World, a: (&str, &User), b: (&str, &User), group: &str) {
    let before = w.table.snapshot().await;
    for ((sub, _), (_, to)) in [(a, b), (b, a)] {
        for body in [
            json!({"message": "hello?", "handle": to.handle.as_str()}),
            json!({"message": "hello?", "message_group_uuid": group}),
        ] {
            let (status, answer) = post_message(w, sub, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {answer}");
            assert_eq!(codes(&answer), ["messaging_blocked"]);
        }
    }
    assert_eq!(
        w.table.snapshot().await,
        before,
        "nothing refused is written"
    );
}

#[tokio::test]
async fn a_block_from_its_event_refuses_both_sides_the_same_way_until_lifted() {
    let w = world().await;
    let group = send(&w, &w.bayko, &w.andrew, "hi")
        .await
        .group_uuid
        .to_string();

    // The event: Andrew blocks @bayko.
    let (status, _, body) = serve(&w, Route::BlockUser, &event("api-block-user.json")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_messaging_refused(&w, (ANDREW_SUB, &w.andrew), (BAYKO_SUB, &w.bayko), &group).await;

    // Londo is not concerned.
    let (status, _) =
        post_message(&w, LONDO_SUB, json!({"message": "hi", "handle": "bayko"})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _) = serve(&w, Route::UnblockUser, &event("api-unblock-user.json")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for sub in [ANDREW_SUB, BAYKO_SUB] {
        let (status, answer) = post_message(
            &w,
            sub,
            json!({"message": "back", "message_group_uuid": group}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

#[tokio::test]
async fn the_blocked_side_blocking_back_and_lifting_changes_nothing_for_the_first_block() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "hi")
        .await
        .group_uuid
        .to_string();
    assert_eq!(
        block(&w, BAYKO_SUB, "@andrewbrown").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        block(&w, ANDREW_SUB, "@Bayko").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        unblock(&w, BAYKO_SUB, "@andrewbrown").await,
        StatusCode::NO_CONTENT
    );
    // Andrew's block holds, for both.
    assert_messaging_refused(&w, (ANDREW_SUB, &w.andrew), (BAYKO_SUB, &w.bayko), &group).await;
}

#[tokio::test]
async fn a_block_refuses_starting_a_conversation_and_writes_nothing() {
    let w = world().await;
    assert_eq!(block(&w, BAYKO_SUB, "@londo").await, StatusCode::NO_CONTENT);
    let before = w.table.snapshot().await;
    for (sub, to) in [(LONDO_SUB, "bayko"), (BAYKO_SUB, "londo")] {
        let (status, answer) = post_message(&w, sub, json!({"message": "hi", "handle": to})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(codes(&answer), ["messaging_blocked"]);
    }
    assert_eq!(w.table.snapshot().await, before);
}

#[tokio::test]
async fn blocking_twice_and_lifting_no_block_are_204_and_write_nothing() {
    let w = world().await;
    assert_eq!(
        block(&w, ANDREW_SUB, "@bayko").await,
        StatusCode::NO_CONTENT
    );
    let before = w.table.snapshot().await;
    assert_eq!(
        block(&w, ANDREW_SUB, "@bayko").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        unblock(&w, ANDREW_SUB, "@londo").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(w.table.snapshot().await, before);
}

#[tokio::test]
async fn bad_block_requests_get_precise_answers_and_write_nothing() {
    let w = world().await;
    let before = w.table.snapshot().await;
    for route in [Route::BlockUser, Route::UnblockUser] {
        let file = match route {
            Route::BlockUser => "api-block-user.json",
            _ => "api-unblock-user.json",
        };
        for (handle, status, code) in [
            ("@AndrewBrown", StatusCode::BAD_REQUEST, "user_blocks_self"),
            ("@nobody", StatusCode::NOT_FOUND, "user_not_found"),
            ("bayko", StatusCode::NOT_FOUND, "user_not_found"),
            ("@-not-a-handle", StatusCode::NOT_FOUND, "user_not_found"),
        ] {
            let event = naming(event(file), ANDREW_SUB, handle);
            let (answer, _, body) = serve(&w, route, &event).await;
            assert_eq!(answer, status, "{route:?} {handle}: {body}");
            assert_eq!(codes(&body), [code], "{route:?} {handle}");
        }
        let (answer, _, body) = serve(&w, route, &anonymous(event(file))).await;
        assert_eq!(answer, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_eq!(w.table.snapshot().await, before);
}

#[tokio::test]
async fn groups_refuse_a_blocked_pair_whoever_creates_or_adds_and_leaving_still_works() {
    let w = world().await;
    // A group of all three, from before the block.
    let create = event("api-create-message-group.json");
    let (status, _, created) = serve(&w, Route::CreateMessageGroup, &create).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let existing = created["message_group_uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        block(&w, LONDO_SUB, "@andrewbrown").await,
        StatusCode::NO_CONTENT
    );

    let before = w.table.snapshot().await;
    // Andrew (blocked) creates a group with Londo (the blocker) ...
    let (status, _, body) = serve(&w, Route::CreateMessageGroup, &create).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(codes(&body), ["messaging_blocked"]);
    // ... and Londo with Andrew.
    let by_londo = with_body(
        as_user(create.clone(), LONDO_SUB),
        &json!({"name": "Ours", "handles": ["bayko", "andrewbrown"], "message": "hi"}).to_string(),
    );
    let (status, _, body) = serve(&w, Route::CreateMessageGroup, &by_londo).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(codes(&body), ["messaging_blocked"]);
    assert_eq!(
        w.table.snapshot().await,
        before,
        "nothing refused is written"
    );
    // Bayko's group with Andrew alone is Bayko's business; Londo cannot add Andrew to it.
    let (status, _, bayko_group) = serve(
        &w,
        Route::CreateMessageGroup,
        &with_body(
            as_user(create.clone(), BAYKO_SUB),
            &json!({"name": "Pair", "handles": ["andrewbrown"], "message": "hi"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{bayko_group}");
    let after_bayko = w.table.snapshot().await;
    let add = event("api-add-message-group-members.json");
    let bayko_group_uuid = bayko_group["message_group_uuid"].as_str().unwrap();
    let add_londo = with_body(
        as_user(in_members_path(add.clone(), bayko_group_uuid), ANDREW_SUB),
        &json!({"handles": ["londo"]}).to_string(),
    );
    let (status, _, body) = serve(&w, Route::AddMessageGroupMembers, &add_londo).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(codes(&body), ["messaging_blocked"]);
    assert_eq!(
        w.table.snapshot().await,
        after_bayko,
        "nothing refused is written"
    );

    // The group they already share stays: both post there, and Londo can leave.
    for sub in [ANDREW_SUB, LONDO_SUB] {
        let (status, answer) = post_message(
            &w,
            sub,
            json!({"message": "still here", "message_group_uuid": existing}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let leave = as_user(
        in_members_path(event("api-leave-message-group.json"), &existing),
        LONDO_SUB,
    );
    let (status, _, body) = serve(&w, Route::LeaveMessageGroup, &leave).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// A group route's event aimed at `group`.
fn in_members_path(mut event: Value, group: &str) -> Value {
    event["pathParameters"]["message_group_uuid"] = json!(group);
    event
}

#[tokio::test]
async fn the_block_list_is_the_callers_paged_with_a_cursor() {
    let w = world().await;
    assert_eq!(
        block(&w, ANDREW_SUB, "@bayko").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        block(&w, ANDREW_SUB, "@londo").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        block(&w, BAYKO_SUB, "@andrewbrown").await,
        StatusCode::NO_CONTENT
    );

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1")];
        if let Some(cursor) = cursor.as_deref() {
            query.push(("cursor", cursor));
        }
        let list = with_query(event("api-list-blocks.json"), &query);
        let (status, next, body) = serve(&w, Route::ListBlocks, &list).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body.as_array().unwrap();
        assert!(page.len() <= 1);
        listed.extend(page.iter().cloned());
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut handles: Vec<&str> = listed
        .iter()
        .map(|e| e["handle"].as_str().unwrap())
        .collect();
    handles.sort_unstable();
    assert_eq!(handles, ["bayko", "londo"], "Andrew's blocks only");
    let bayko = listed.iter().find(|e| e["handle"] == "bayko").unwrap();
    assert_eq!(bayko["display_name"], "Andrew Bayko");
    assert_eq!(bayko["uuid"], w.bayko.uuid.to_string());
    assert!(
        messaging::Timestamp::parse(bayko["blocked_at"].as_str().unwrap()).is_ok(),
        "{bayko}"
    );

    let bad = with_query(
        event("api-list-blocks.json"),
        &[("cursor", "bm90LWEtY3Vyc29y")],
    );
    let (status, _, body) = serve(&w, Route::ListBlocks, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = serve(
        &w,
        Route::ListBlocks,
        &anonymous(event("api-list-blocks.json")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_blockers_inbox_hides_the_direct_conversation_the_other_keeps_it() {
    let w = world().await;
    let direct = send(&w, &w.bayko, &w.andrew, "hi")
        .await
        .group_uuid
        .to_string();
    let inbox_of = |sub: &'static str| {
        let w = &w;
        async move {
            let (status, _, body) = serve(
                w,
                Route::ListMessageGroups,
                &as_user(event("api-list-message-groups.json"), sub),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body.as_array()
                .unwrap()
                .iter()
                .map(|item| item["uuid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        block(&w, ANDREW_SUB, "@bayko").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(inbox_of(ANDREW_SUB).await, Vec::<String>::new());
    assert_eq!(inbox_of(BAYKO_SUB).await, std::slice::from_ref(&direct));
    // The conversation itself can still be read by the blocker (its history is theirs).
    let read = as_user(
        in_group(event("api-list-messages.json"), &direct),
        ANDREW_SUB,
    );
    let (status, _, _) = serve(&w, Route::ListMessages, &read).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        unblock(&w, ANDREW_SUB, "@bayko").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(inbox_of(ANDREW_SUB).await, [direct]);
}
