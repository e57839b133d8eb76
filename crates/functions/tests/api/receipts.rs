//! Read receipts through the API: the newest page or `POST …/read` marks a read that the
//! members list gives as `read_through` and the other member's inbox as `seen`; an inbox
//! page costs no request more for it; a busy row is a 503, never a 500.

use functions::api::{GroupMember, InboxItem};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use serde_json::Value;
use testkit::{IndexFault, LaggingIndex};

use crate::{
    ANDREW_SUB, LONDO_SUB, World, api_over, as_user, event, in_group, parts, request, send, world,
};

/// The group the API events of `events/` name.
const EVENT_GROUP: &str = "b7e4c2a9-3f1d-4e8b-a6c5-9d0e1f2a3b4c";

fn at_group(event: Value, group: &str) -> Value {
    serde_json::from_str(&event.to_string().replace(EVENT_GROUP, group)).unwrap()
}

async fn inbox(w: &World, sub: &str) -> Vec<InboxItem> {
    let inbox = as_user(event("api-list-message-groups.json"), sub);
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroups, request(&inbox))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn members(w: &World, sub: &str, group: &str) -> Vec<GroupMember> {
    let list = as_user(
        at_group(event("api-list-message-group-members.json"), group),
        sub,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test]
async fn the_sender_sees_the_read_and_the_members_list_says_how_far() {
    let w = world().await;
    let psst = send(&w, &w.andrew, &w.londo, "psst").await;
    let direct = psst.group_uuid.to_string();
    assert_eq!(inbox(&w, ANDREW_SUB).await[0].seen, Some(false));
    let listed = members(&w, ANDREW_SUB, &direct).await;
    assert!(
        listed.iter().all(|m| m.read_through.is_none()),
        "{listed:?}"
    );

    // Londo opens the conversation: its newest page marks it read.
    let read = as_user(
        in_group(event("api-list-messages.json"), &direct),
        LONDO_SUB,
    );
    let (status, _, _) = parts(
        w.api
            .serve(Route::ListMessages, request(&read))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);

    w.table.requests.reset();
    let andrews = inbox(&w, ANDREW_SUB).await;
    assert_eq!(andrews[0].seen, Some(true));
    assert_eq!(
        w.table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        vec![("Query".to_owned(), 2)],
        "seen costs the inbox page nothing"
    );
    // Londo's last message is Andrew's: nothing of Londo's to be seen.
    assert_eq!(inbox(&w, LONDO_SUB).await[0].seen, Some(false));
    let listed = members(&w, LONDO_SUB, &direct).await;
    let londo = listed.iter().find(|m| m.handle == "londo").unwrap();
    assert_eq!(
        londo.read_through.as_deref(),
        Some(psst.created_at.as_str())
    );
    let andrew = listed.iter().find(|m| m.handle == "andrewbrown").unwrap();
    assert_eq!(andrew.read_through, None);
    // The JSON shape: the original fields, and the new ones only added.
    let raw = serde_json::to_value(&andrews[0]).unwrap();
    assert_eq!(raw["seen"], true);
    assert_eq!(raw["handle"], "londo");
}

/// The group index lagging (each read shows rows where they were before they last moved,
/// as DynamoDB's eventually consistent index may:
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads):
/// `POST …/read` still marks, records and tells the other row, with no 5xx.
#[tokio::test]
async fn posting_read_under_a_lagging_index_loses_no_read() {
    let w = world().await;
    let psst = send(&w, &w.andrew, &w.londo, "psst").await;
    let direct = psst.group_uuid.to_string();
    let lag = LaggingIndex::new();
    let store = w.table.store_with(lag.clone());
    // The index client sees the rows where they are, then they move on.
    let api = api_over(store.clone());
    let mark = as_user(
        at_group(event("api-mark-message-group-read.json"), &direct),
        ANDREW_SUB,
    );
    api.serve(Route::MarkMessageGroupRead, request(&mark))
        .await
        .unwrap();
    let again = send(&w, &w.andrew, &w.londo, "again").await;
    store
        .advance_inbox_rows(&again, &messaging::store::RowPositions::disabled())
        .await
        .unwrap();
    let _lag = lag.then(IndexFault::OldPositions, 100);

    let mark = as_user(
        at_group(event("api-mark-message-group-read.json"), &direct),
        LONDO_SUB,
    );
    let (status, _, body) = parts(
        api.serve(Route::MarkMessageGroupRead, request(&mark))
            .await
            .unwrap(),
    );

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(inbox(&w, ANDREW_SUB).await[0].seen, Some(true));
    let listed = members(&w, ANDREW_SUB, &direct).await;
    let londo = listed.iter().find(|m| m.handle == "londo").unwrap();
    assert_eq!(
        londo.read_through.as_deref(),
        Some(again.created_at.as_str())
    );
}
