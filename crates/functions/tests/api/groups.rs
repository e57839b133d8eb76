//! Group conversations and unread counts: creating from the group events, what a group
//! may be, members listed, added and leaving, and marking read.

use functions::api::{CreatedMessage, GroupMember, ListItem};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use testkit::{Refusal, RefusingClient};

use crate::support::logs_of;
use crate::{
    ANDREW_SUB, BAYKO_SUB, LONDO_SUB, World, anonymous, api_over, as_user, codes, event, in_group,
    parts, register, request, send, with_body, world,
};

/// The conversation id the group events carry (the demo group's).
const EVENT_GROUP: &str = "b7e4c2a9-3f1d-4e8b-a6c5-9d0e1f2a3b4c";

/// `event` aimed at another conversation.
fn at_group(event: Value, group: &str) -> Value {
    let text = event.to_string().replace(EVENT_GROUP, group);
    serde_json::from_str(&text).unwrap()
}

/// Creates "Bootcamp" (andrew, bayko, londo) through the create-message-group handler.
async fn bootcamp(w: &World) -> CreatedMessage {
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::CreateMessageGroup,
                request(&event("api-create-message-group.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn inbox_json(w: &World, sub: &str) -> Vec<Value> {
    let inbox = as_user(event("api-list-message-groups.json"), sub);
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroups, request(&inbox))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

fn item_of<'v>(items: &'v [Value], group: &str) -> Option<&'v Value> {
    items.iter().find(|item| item["uuid"] == group)
}

#[tokio::test]
async fn a_group_is_created_from_its_event_and_shows_in_every_inbox_with_kind_and_unread() {
    let w = world().await;
    let direct = send(&w, &w.bayko, &w.andrew, "a direct one").await;

    let created = bootcamp(&w).await;

    assert_eq!(created.handle, "andrewbrown");
    assert_eq!(created.message, "Welcome to the bootcamp group");
    let group = created.message_group_uuid.clone();
    assert_ne!(created.uuid, group, "uuid is the message's");
    for (sub, unread) in [(ANDREW_SUB, 0), (BAYKO_SUB, 1), (LONDO_SUB, 1)] {
        let items = inbox_json(&w, sub).await;
        let item = item_of(&items, &group).unwrap();
        assert_eq!(item["kind"], "group");
        assert_eq!(item["display_name"], "Bootcamp", "a group's name");
        assert_eq!(item["name"], "Bootcamp");
        assert_eq!(item["handle"], "andrewbrown", "the last sender");
        assert_eq!(item["member_count"], 3);
        assert_eq!(item["unread"], unread, "{sub}");
    }
    // A direct conversation keeps the original shape, plus `kind`, `unread` and `seen`.
    let items = inbox_json(&w, ANDREW_SUB).await;
    let item = item_of(&items, &direct.group_uuid.to_string()).unwrap();
    let mut keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "display_name",
            "handle",
            "kind",
            "message",
            "seen",
            "unread",
            "uuid"
        ]
    );
    assert_eq!(
        (&item["kind"], &item["unread"]),
        (&json!("direct"), &json!(1))
    );
    assert_eq!(item["handle"], "bayko", "the other member");
    // The original frontend's shape still reads.
    let _: Vec<ListItem> = serde_json::from_value(Value::Array(items)).unwrap();
    // Posting to a group is POST /api/messages with its uuid, as for any conversation.
    let post = as_user(
        with_body(
            event("api-create-message-to-group.json"),
            &json!({"message": "Hello group", "message_group_uuid": group}).to_string(),
        ),
        LONDO_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&post))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn every_invalid_group_gets_its_codes_and_writes_nothing() {
    let w = world().await;
    let create = |body: &str| with_body(event("api-create-message-group.json"), body);
    let many: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
    let cases: Vec<(Value, StatusCode, Vec<&str>)> = vec![
        (
            create(r#"{"name": " ", "handles": ["bayko"], "message": "hi"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_name_blank"],
        ),
        (
            create(
                &json!({"name": "n".repeat(65), "handles": ["bayko"], "message": "hi"}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_name_exceed_max_chars_64"],
        ),
        (
            create(r#"{"name": "G", "handles": [], "message": "hi"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_handles_blank"],
        ),
        (
            create(&json!({"name": "G", "handles": many, "message": "hi"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_too_large"],
        ),
        (
            create(r#"{"name": "", "message": " "}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_name_blank", "group_handles_blank", "message_blank"],
        ),
        (
            create(r#"{"name": "G", "handles": ["bayko", "AndrewBrown"], "message": "hi"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["user_reciever_is_self"],
        ),
        (
            create(r#"{"name": "G", "handles": ["bayko", "nobody"], "message": "hi"}"#),
            StatusCode::NOT_FOUND,
            vec!["user_reciever_not_found"],
        ),
        (
            create(r#"{"name": "G", "handles": "bayko", "message": "hi"}"#),
            StatusCode::BAD_REQUEST,
            vec!["json_field_type_invalid"],
        ),
        (
            create(r#"{"name": "G", "#),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
        // A little too long: validation's answer. Far too long: refused once the bound is
        // read (3,000 entries fit the 16 KiB body limit; 100,000 do not, and get 413).
        (
            create(
                &json!({
                    "name": "G",
                    "handles": (0..55).map(|i| format!("guest{i:02}")).collect::<Vec<_>>(),
                    "message": "hi",
                })
                .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["group_too_large"],
        ),
        (
            create(&json!({"name": "G", "handles": vec!["b"; 3_000], "message": "hi"}).to_string()),
            StatusCode::BAD_REQUEST,
            vec!["group_handles_too_many"],
        ),
        (
            create(
                &json!({"name": "G", "handles": vec!["b"; 100_000], "message": "hi"}).to_string(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["body_too_large"],
        ),
    ];
    for (case, expected_status, expected_codes) in cases {
        let (status, _, body) = parts(
            w.api
                .serve(Route::CreateMessageGroup, request(&case))
                .await
                .unwrap(),
        );
        assert_eq!(status, expected_status, "{}", case["body"]);
        assert_eq!(codes(&body), expected_codes, "{}", case["body"]);
    }
    let (status, _, _) = parts(
        w.api
            .serve(
                Route::CreateMessageGroup,
                request(&anonymous(event("api-create-message-group.json"))),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let items = w.table.store.scan_all().await.unwrap();
    assert!(
        items
            .iter()
            .all(|item| !item["pk"].as_s().unwrap().starts_with("MSG#")),
        "no message was written"
    );
    // Duplicates collapse, case-insensitively.
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::CreateMessageGroup,
                request(&create(
                    r#"{"name": "G", "handles": ["bayko", "BAYKO", "@bayko"], "message": "hi"}"#,
                )),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = inbox_json(&w, BAYKO_SUB).await;
    assert_eq!(items[0]["member_count"], 2);
}

#[tokio::test]
async fn members_are_listed_to_members_added_by_members_and_groups_can_be_left() {
    let w = world().await;
    let group = bootcamp(&w).await.message_group_uuid;
    let mordo = register(&w.table, "mordo", "Mr Morden", "sub-mordo").await;
    let list = |sub: &str| {
        as_user(
            at_group(event("api-list-message-group-members.json"), &group),
            sub,
        )
    };
    let add = |sub: &str, body: &str| {
        as_user(
            with_body(
                at_group(event("api-add-message-group-members.json"), &group),
                body,
            ),
            sub,
        )
    };
    let leave = |sub: &str| as_user(at_group(event("api-leave-message-group.json"), &group), sub);

    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list(BAYKO_SUB)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let members: Vec<GroupMember> = serde_json::from_value(body).unwrap();
    let handles: Vec<&str> = members.iter().map(|m| m.handle.as_str()).collect();
    assert_eq!(handles, ["andrewbrown", "bayko", "londo"]);
    assert_eq!(members[2].display_name, "Londo Mollari");
    assert_eq!(members[0].uuid, w.andrew.uuid.to_string());
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list("sub-mordo")))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );

    // A stranger cannot add themself; a member adds them.
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::AddMessageGroupMembers,
                request(&add("sub-mordo", r#"{"handles": ["bayko"]}"#)),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );
    for (body, expected_status, expected) in [
        (
            r#"{"handles": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "group_handles_blank",
        ),
        (r#"{"handles": ["londo"]}"#, StatusCode::OK, ""),
        (
            r#"{"handles": ["bayko"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_reciever_is_self",
        ),
        (
            r#"{"handles": ["nobody"]}"#,
            StatusCode::NOT_FOUND,
            "user_reciever_not_found",
        ),
    ] {
        let (status, _, response) = parts(
            w.api
                .serve(
                    Route::AddMessageGroupMembers,
                    request(&add(BAYKO_SUB, body)),
                )
                .await
                .unwrap(),
        );
        assert_eq!(status, expected_status, "{body}: {response}");
        if !expected.is_empty() {
            assert_eq!(codes(&response), [expected], "{body}");
        }
    }
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::AddMessageGroupMembers,
                request(&add(BAYKO_SUB, r#"{"handles": ["mordo"]}"#)),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let members: Vec<GroupMember> = serde_json::from_value(body).unwrap();
    assert_eq!(members.len(), 4);
    assert_eq!(
        members[3].uuid,
        mordo.uuid.to_string(),
        "the newest member last"
    );
    let items = inbox_json(&w, "sub-mordo").await;
    let item = item_of(&items, &group).unwrap();
    assert_eq!(
        (&item["member_count"], &item["unread"]),
        (&json!(4), &json!(0))
    );

    // Londo leaves: gone from the inbox and the members, and cannot leave twice.
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&leave(LONDO_SUB)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(item_of(&inbox_json(&w, LONDO_SUB).await, &group).is_none());
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&leave(LONDO_SUB)))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );
    // The others' rows keep the count until the stream next moves them (the leave touches
    // nobody else's row); the members list is right at once.
    let items = inbox_json(&w, ANDREW_SUB).await;
    assert_eq!(item_of(&items, &group).unwrap()["member_count"], 4);
    let (_, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list(BAYKO_SUB)))
            .await
            .unwrap(),
    );
    assert_eq!(body.as_array().unwrap().len(), 3);
    let group_uuid: uuid::Uuid = group.parse().unwrap();
    let next = w
        .table
        .store
        .append_message(
            &w.bayko,
            group_uuid,
            messaging::validate::MessageText::parse("one fewer").unwrap(),
            messaging::Timestamp::now(),
        )
        .await
        .unwrap();
    w.table
        .store
        .advance_inbox_rows(&next, &messaging::store::RowPositions::disabled())
        .await
        .unwrap();
    let items = inbox_json(&w, ANDREW_SUB).await;
    assert_eq!(item_of(&items, &group).unwrap()["member_count"], 3);

    // A direct conversation can neither be left nor grown.
    let direct = send(&w, &w.andrew, &w.bayko, "just us")
        .await
        .group_uuid
        .to_string();
    let leave_direct = as_user(
        at_group(event("api-leave-message-group.json"), &direct),
        ANDREW_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&leave_direct))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_is_direct"]
        )
    );
    let grow_direct = as_user(
        with_body(
            at_group(event("api-add-message-group-members.json"), &direct),
            r#"{"handles": ["londo"]}"#,
        ),
        ANDREW_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::AddMessageGroupMembers, request(&grow_direct))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_is_direct"]
        )
    );
    // Its members are listed like a group's.
    let list_direct = as_user(
        at_group(event("api-list-message-group-members.json"), &direct),
        BAYKO_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessageGroupMembers, request(&list_direct))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 2);
    let bad = as_user(
        at_group(event("api-leave-message-group.json"), "not-a-uuid"),
        ANDREW_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::LeaveMessageGroup, request(&bad))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_uuid_invalid"]
        )
    );
}

#[tokio::test]
async fn reading_the_newest_page_or_posting_read_marks_a_conversation_read() {
    let w = world().await;
    let group = bootcamp(&w).await.message_group_uuid;
    let unread = |items: &[Value]| item_of(items, &group).unwrap()["unread"].clone();
    assert_eq!(unread(&inbox_json(&w, BAYKO_SUB).await), 1);
    assert_eq!(unread(&inbox_json(&w, LONDO_SUB).await), 1);

    // Bayko opens the conversation: its newest page marks it read.
    let read_page = as_user(in_group(event("api-list-messages.json"), &group), BAYKO_SUB);
    let (status, _, body) = parts(
        w.api
            .serve(Route::ListMessages, request(&read_page))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(unread(&inbox_json(&w, BAYKO_SUB).await), 0);

    // Londo marks it read explicitly: warm, two requests.
    let mark = as_user(
        at_group(event("api-mark-message-group-read.json"), &group),
        LONDO_SUB,
    );
    let (status, _, _) = parts(
        w.api
            .serve(Route::MarkMessageGroupRead, request(&mark))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(unread(&inbox_json(&w, LONDO_SUB).await), 0);
    w.table.requests.reset();
    let (status, _, _) = parts(
        w.api
            .serve(Route::MarkMessageGroupRead, request(&mark))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NO_CONTENT, "again: nothing to write");
    assert_eq!(
        w.table.requests.total(),
        1,
        "{:?}",
        w.table.requests.snapshot()
    );
    // From the event as it is (bayko, the demo group, which does not exist here).
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::MarkMessageGroupRead,
                request(&event("api-mark-message-group-read.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );
    let mordo = register(&w.table, "mordo", "Mr Morden", "sub-mordo").await;
    drop(mordo);
    let stranger = as_user(
        at_group(event("api-mark-message-group-read.json"), &group),
        "sub-mordo",
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::MarkMessageGroupRead, request(&stranger))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, codes(&body)),
        (StatusCode::NOT_FOUND, vec!["message_group_not_found"])
    );

    // A direct conversation: the recipient's first message is unread until read.
    let direct = send(&w, &w.andrew, &w.londo, "psst")
        .await
        .group_uuid
        .to_string();
    let items = inbox_json(&w, LONDO_SUB).await;
    assert_eq!(item_of(&items, &direct).unwrap()["unread"], 1);
    let read_direct = as_user(
        in_group(event("api-list-messages.json"), &direct),
        LONDO_SUB,
    );
    w.api
        .serve(Route::ListMessages, request(&read_direct))
        .await
        .unwrap();
    let items = inbox_json(&w, LONDO_SUB).await;
    assert_eq!(item_of(&items, &direct).unwrap()["unread"], 0);
}

#[tokio::test]
async fn marking_read_while_transactions_hold_the_row_is_busy_never_a_fault() {
    let w = world().await;
    let group = bootcamp(&w).await.message_group_uuid;
    let dynamodb = RefusingClient::new();
    let api = api_over(dynamodb.store_for(&w.table));
    let mark = as_user(
        at_group(event("api-mark-message-group-read.json"), &group),
        LONDO_SUB,
    );

    // A fan-out moving Londo's row for as long as marking read keeps trying: DynamoDB
    // cancels every marking transaction for a TransactionConflict.
    dynamodb.refuse("TransactWriteItems", Refusal::TransactionConflict);
    let (outcome, logs) = logs_of(api.serve(Route::MarkMessageGroupRead, request(&mark))).await;
    let response = outcome.expect("a busy row is an answer, not a fault");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(codes(&parts(response).2), ["service_busy"]);
    assert!(!logs.contains("ERROR"), "{logs}");
    let unread = |items: &[Value]| item_of(items, &group).unwrap()["unread"].clone();

    // The transaction ends: the next try re-reads the row and marks it.
    dynamodb.allow_all();
    dynamodb.refuse_times("TransactWriteItems", Refusal::TransactionConflict, 1);
    let (status, _, _) = parts(
        api.serve(Route::MarkMessageGroupRead, request(&mark))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(unread(&inbox_json(&w, LONDO_SUB).await), 0);
}

/// One member posting continuously while the stream moves every row after each message,
/// and the group index behind the moves (each read shows the rows where they were before
/// they last moved, as DynamoDB's can under a steady stream of writes: GSIs are eventually
/// consistent, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads),
/// and the leave's first transaction cancelled for a conflict with the stream's (DynamoDB
/// cancels a transaction that meets another on an item; DynamoDB Local serialises them,
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).
/// Another member still leaves on the first or second request.
#[tokio::test]
async fn a_member_who_keeps_posting_cannot_stop_another_from_leaving() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use messaging::store::RowPositions;
    use messaging::validate::MessageText;
    use testkit::{IndexFault, LaggingIndex};

    let w = world().await;
    let group = bootcamp(&w).await.message_group_uuid;
    let group_uuid: uuid::Uuid = group.parse().unwrap();
    let lag = LaggingIndex::new().then(IndexFault::OldPositions, 100_000);
    // The stream consumer's client learns the rows' positions from its own moves.
    let mover = w.table.store_with(lag.clone());
    let poster = w.table.store_with_own_client();
    let stop = Arc::new(AtomicBool::new(false));
    let (posted, mut posts) = tokio::sync::watch::channel(0usize);
    let andrew = w.andrew.clone();
    let posting = tokio::spawn({
        let stop = stop.clone();
        async move {
            let positions = RowPositions::default();
            let mut sent = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let text = MessageText::parse(format!("again {sent}")).unwrap();
                let message = poster
                    .append_message(&andrew, group_uuid, text, messaging::Timestamp::now())
                    .await
                    .unwrap();
                // Once Londo has left, the stream may find the index behind and retry
                // later; what matters here is that it kept moving Londo's row before.
                let _ = mover.advance_inbox_rows(&message, &positions).await;
                sent += 1;
                posted.send_replace(sent);
            }
            sent
        }
    });
    // Londo's row has moved at least twice before Londo asks.
    tokio::time::timeout(Duration::from_secs(30), posts.wait_for(|sent| *sent >= 2))
        .await
        .expect("the poster posts")
        .unwrap();

    let dynamodb = RefusingClient::new();
    dynamodb.refuse_times("TransactWriteItems", Refusal::TransactionConflict, 1);
    let config = messaging::connect::local_config(&testkit::endpoint())
        .http_client(dynamodb.clone())
        .interceptor(lag.clone())
        .build();
    let api = api_over(messaging::Store::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        w.table.store.table(),
    ));
    let leave = as_user(
        at_group(event("api-leave-message-group.json"), &group),
        LONDO_SUB,
    );
    let before = *posts.borrow();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = api
            .serve(Route::LeaveMessageGroup, request(&leave))
            .await
            .unwrap();
        answers.push(response.status());
        if response.status() == StatusCode::NO_CONTENT {
            break;
        }
    }
    let during = *posts.borrow() - before;
    stop.store(true, Ordering::SeqCst);
    let sent = posting.await.unwrap();

    assert_eq!(answers.last(), Some(&StatusCode::NO_CONTENT), "{answers:?}");
    assert!(during > 0, "the member kept posting while the other left");
    assert_eq!(dynamodb.refused(), 1, "the conflict was played");
    assert!(sent >= 2);
    let members = w.table.store.memberships(group_uuid).await.unwrap();
    assert!(members.iter().all(|m| m.user_uuid != w.londo.uuid));
    assert!(item_of(&inbox_json(&w, LONDO_SUB).await, &group).is_none());
    assert!(item_of(&inbox_json(&w, BAYKO_SUB).await, &group).is_some());
}
