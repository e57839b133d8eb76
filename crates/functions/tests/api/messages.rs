//! A conversation's messages: pages across a year boundary, starting and reusing a
//! conversation by handle, and what a message may be.

use functions::api::{CreatedMessage, ListItem};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use messaging::Timestamp;
use messaging::validate::MessageText;
use serde_json::{Value, json};

use crate::{
    BAYKO_SUB, as_user, codes, event, in_group, parts, request, send, with_body, with_query, world,
};

#[tokio::test]
async fn a_long_conversation_pages_across_a_year_boundary_exactly_once() {
    let w = world().await;
    let start = time::macros::datetime!(2024-12-31 20:00 UTC);
    let first = w
        .table
        .store
        .send_to_user(
            &w.andrew,
            &w.bayko,
            MessageText::parse("m0").unwrap(),
            Timestamp::from_datetime(start),
        )
        .await
        .unwrap();
    for i in 1..300 {
        let sender = if i % 2 == 0 { &w.andrew } else { &w.bayko };
        let at = Timestamp::from_datetime(start + time::Duration::minutes(i));
        w.table
            .store
            .append_message(
                sender,
                first.group_uuid,
                MessageText::parse(format!("m{i}")).unwrap(),
                at,
            )
            .await
            .unwrap();
    }
    let group = first.group_uuid.to_string();
    let mut pages: Vec<Vec<ListItem>> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "40")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.as_str()));
        }
        let page_event = with_query(in_group(event("api-list-messages.json"), &group), &query);
        let (status, next, body) = parts(
            w.api
                .serve(Route::ListMessages, request(&page_event))
                .await
                .unwrap(),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        pages.push(serde_json::from_value(body).unwrap());
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages.len(), 8);
    for page in &pages {
        assert!(
            page.windows(2).all(|w| w[0].created_at < w[1].created_at),
            "oldest first in a page"
        );
    }
    let texts: Vec<String> = pages
        .into_iter()
        .rev()
        .flatten()
        .map(|item| item.message)
        .collect();
    let expected: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);

    // Another conversation's cursor is refused, as is an edited one.
    let other = send(&w, &w.andrew, &w.londo, "other")
        .await
        .group_uuid
        .to_string();
    let first_page = with_query(
        in_group(event("api-list-messages.json"), &group),
        &[("limit", "1")],
    );
    let cursor = parts(
        w.api
            .serve(Route::ListMessages, request(&first_page))
            .await
            .unwrap(),
    )
    .1
    .unwrap();
    for (target, cursor) in [(&other, cursor.clone()), (&group, format!("{cursor}x"))] {
        let bad = with_query(
            in_group(event("api-list-messages.json"), target),
            &[("cursor", &cursor)],
        );
        let (status, _, body) = parts(
            w.api
                .serve(Route::ListMessages, request(&bad))
                .await
                .unwrap(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(codes(&body), ["cursor_invalid"]);
    }
}

#[tokio::test]
async fn a_conversation_id_that_is_not_a_uuid_is_refused() {
    let w = world().await;
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::ListMessages,
                request(&event("api-list-messages-bad-uuid.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(codes(&body), ["message_group_uuid_invalid"]);
    assert_eq!(w.table.requests.total(), 0);
}

#[tokio::test]
async fn messaging_a_handle_starts_then_reuses_the_conversation_in_both_directions() {
    let w = world().await;
    let to_bayko = with_body(
        event("api-create-message-to-self.json"),
        &json!({"message": "Hello Bayko", "handle": "Bayko"}).to_string(),
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&to_bayko))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let created: CreatedMessage = serde_json::from_value(body).unwrap();
    assert_eq!(created.handle, "andrewbrown");
    assert_eq!(created.display_name, "Andrew Brown");
    assert_eq!(created.message, "Hello Bayko");
    assert_ne!(
        created.uuid,
        w.andrew.uuid.to_string(),
        "uuid is the message's, not the sender's"
    );
    assert!(Timestamp::parse(&created.created_at).is_ok());

    // Bayko answers by handle: the same conversation.
    let reply = as_user(
        with_body(
            event("api-create-message-to-self.json"),
            &json!({"message": "Hi!", "handle": "andrewbrown"}).to_string(),
        ),
        BAYKO_SUB,
    );
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&reply))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["message_group_uuid"],
        json!(created.message_group_uuid)
    );

    // And by conversation id.
    let by_group = as_user(
        with_body(
            event("api-create-message-to-group.json"),
            &json!({"message": "Again", "message_group_uuid": created.message_group_uuid})
                .to_string(),
        ),
        BAYKO_SUB,
    );
    w.table.requests.reset();
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&by_group))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(w.table.requests.total(), 1, "a warm append is one request");

    let read = in_group(event("api-list-messages.json"), &created.message_group_uuid);
    let (_, _, body) = parts(
        w.api
            .serve(Route::ListMessages, request(&read))
            .await
            .unwrap(),
    );
    let items: Vec<ListItem> = serde_json::from_value(body).unwrap();
    let texts: Vec<&str> = items.iter().map(|item| item.message.as_str()).collect();
    assert_eq!(texts, ["Hello Bayko", "Hi!", "Again"]);
    assert_eq!(items[0].uuid, created.uuid);
}

#[tokio::test]
async fn every_invalid_message_gets_its_code_and_writes_nothing() {
    let w = world().await;
    let cases: Vec<(Value, StatusCode, Vec<&str>)> = vec![
        (
            event("api-create-message-blank.json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_blank"],
        ),
        (
            event("api-create-message-too-long.json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_exceed_max_chars_1024"],
        ),
        (
            event("api-create-message-malformed-json.json"),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
        (
            event("api-create-message-to-self.json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["user_reciever_is_self"],
        ),
        (
            event("api-create-message-unknown-handle.json"),
            StatusCode::NOT_FOUND,
            vec!["user_reciever_not_found"],
        ),
        (
            with_body(event("api-create-message-blank.json"), "[1, 2]"),
            StatusCode::BAD_REQUEST,
            vec!["json_not_object"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": 5, "handle": "bayko"}"#,
            ),
            StatusCode::BAD_REQUEST,
            vec!["json_field_type_invalid"],
        ),
        (
            with_body(event("api-create-message-blank.json"), ""),
            StatusCode::BAD_REQUEST,
            vec!["json_invalid"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                &json!({"message": "x".repeat(20_000), "handle": "bayko"}).to_string(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["body_too_large"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["user_reciever_handle_blank"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "", "handle": " "}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_blank", "user_reciever_handle_blank"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi", "message_group_uuid": ""}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_uuid_blank"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi", "message_group_uuid": "abc"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["message_group_uuid_invalid"],
        ),
        (
            with_body(
                event("api-create-message-blank.json"),
                r#"{"message": "hi", "handle": "no spaces allowed"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["handle_invalid"],
        ),
    ];
    for (case, expected_status, expected_codes) in cases {
        let (status, _, body) = parts(
            w.api
                .serve(Route::CreateMessage, request(&case))
                .await
                .unwrap(),
        );
        assert_eq!(status, expected_status, "{}", case["body"]);
        assert_eq!(codes(&body), expected_codes, "{}", case["body"]);
    }
    let items = w.table.store.scan_all().await.unwrap();
    assert!(
        items
            .iter()
            .all(|item| !item["pk"].as_s().unwrap().starts_with("MSG#")),
        "no message was written"
    );
}

#[tokio::test]
async fn the_1024_character_limit_counts_characters_not_bytes() {
    let w = world().await;
    for (text, ok) in [
        ("🙂".repeat(1024), true),
        ("é".repeat(1024), true),
        ("🙂".repeat(1025), false),
    ] {
        let case = with_body(
            event("api-create-message-blank.json"),
            &json!({"message": text, "handle": "bayko"}).to_string(),
        );
        let (status, _, body) = parts(
            w.api
                .serve(Route::CreateMessage, request(&case))
                .await
                .unwrap(),
        );
        if ok {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["message"].as_str().unwrap().chars().count(), 1024);
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(codes(&body), ["message_exceed_max_chars_1024"]);
        }
    }
}

#[tokio::test]
async fn a_base64_encoded_body_is_measured_after_decoding() {
    use base64::Engine;
    let w = world().await;
    let encode = |body: &Value| {
        base64::engine::general_purpose::STANDARD.encode(body.to_string().as_bytes())
    };
    let base64_event = |body: &Value| {
        let mut event = event("api-create-message-to-self.json");
        event["body"] = json!(encode(body));
        event["isBase64Encoded"] = json!(true);
        event
    };
    // 1000 characters of three bytes each: about 3 KB of JSON, 4 KB once encoded.
    let fits = json!({"message": "€".repeat(1000), "handle": "bayko"});
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&base64_event(&fits)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    // Padding that makes the encoded body larger than the limit, the decoded one not.
    let padded = json!({
        "message": "hello", "handle": "bayko",
        "padding": "x".repeat(functions::http::MAX_BODY_BYTES - 1024),
    });
    assert!(encode(&padded).len() > functions::http::MAX_BODY_BYTES);
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&base64_event(&padded)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let too_large = json!({
        "message": "hello", "handle": "bayko",
        "padding": "x".repeat(functions::http::MAX_BODY_BYTES),
    });
    let (status, _, body) = parts(
        w.api
            .serve(Route::CreateMessage, request(&base64_event(&too_large)))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(codes(&body), ["body_too_large"]);
}
