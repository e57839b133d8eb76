//! The inbox: conversations newest first, what a warm read costs, pages in the cursor header.

use functions::api::ListItem;
use functions::routes::Route;
use lambda_http::http::StatusCode;
use serde_json::json;

use crate::{BAYKO_SUB, as_user, codes, event, parts, request, send, with_query, world};

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
async fn a_warm_inbox_read_costs_two_concurrent_queries() {
    let w = world().await;
    send(&w, &w.andrew, &w.bayko, "hello").await;
    let inbox = request(&event("api-list-message-groups.json"));
    w.api.serve(Route::ListMessageGroups, inbox).await.unwrap();
    w.table.requests.reset();
    let inbox = request(&event("api-list-message-groups.json"));
    w.api.serve(Route::ListMessageGroups, inbox).await.unwrap();
    // The inbox page and, alongside, the caller's block list (hidden direct rows).
    assert_eq!(
        w.table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        vec![("Query".to_owned(), 2)]
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
