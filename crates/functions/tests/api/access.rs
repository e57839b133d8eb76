//! Who may call: authenticated, registered callers, and only the members of a conversation,
//! checked by a strongly consistent read.

use functions::routes::Route;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use testkit::RecordRequests;
use uuid::Uuid;

use crate::{
    LONDO_SUB, anonymous, api_over, as_user, codes, event, in_group, parts, request, send,
    with_body, world,
};

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

#[tokio::test]
async fn a_non_member_reads_nothing_of_the_message_partition() {
    let w = world().await;
    let group = send(&w, &w.andrew, &w.bayko, "private").await.group_uuid;
    let recorder = RecordRequests::new();
    let api = api_over(w.table.store_with(recorder.clone()));
    let message_pk = json!(messaging::keys::message_pk(group));
    let names_the_messages = |body: &Value| body.to_string().contains(message_pk.as_str().unwrap());
    // The newest page (which also looks for the reader's row to mark it read) and a later
    // page (with a cursor).
    let cursor = {
        let page = w
            .table
            .store
            .conversation_messages(group, &Default::default())
            .await
            .unwrap();
        messaging::page::encode_cursor(
            &messaging::keys::message_pk(group),
            &page.items[0].created_at,
        )
    };
    for query in [None, Some(cursor.as_str())] {
        recorder.clear();
        let mut read = as_user(
            in_group(event("api-list-messages.json"), &group.to_string()),
            LONDO_SUB,
        );
        if let Some(cursor) = query {
            read = crate::with_query(read, &[("cursor", cursor)]);
        }
        let (status, _, body) = parts(
            api.serve(Route::ListMessages, request(&read))
                .await
                .unwrap(),
        );
        assert_eq!(
            (status, codes(&body)),
            (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
        );
        let gate = recorder.of("GetItem");
        assert!(
            gate.iter()
                .any(|sent| sent.body["Key"]["pk"]["S"]
                    == json!(messaging::keys::membership_pk(group))),
            "the membership was checked: {gate:?}"
        );
        for operation in ["Query", "GetItem", "BatchGetItem"] {
            let read = recorder.of(operation);
            assert!(
                !read.iter().any(|sent| names_the_messages(&sent.body)),
                "{operation} of the message partition for a non-member: {read:?}"
            );
        }
        // Nor the group index (the newest page's look for the reader's row): no Query at all.
        assert!(
            recorder.of("Query").is_empty(),
            "{:?}",
            recorder.of("Query")
        );
    }
}
