//! A busy table answers 503 `service_busy` with `Retry-After`; a real fault is a 500,
//! logged once with API Gateway's request id.

use functions::routes::Route;
use lambda_http::http::StatusCode;
use serde_json::json;
use testkit::{Refusal, RefusingClient};

use crate::support::logs_of;
use crate::{api_over, codes, event, in_group, parts, request, send, with_body, world};

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
