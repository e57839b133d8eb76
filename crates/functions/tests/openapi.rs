//! `docs/openapi.yaml` (and the frame of `docs/asyncapi.yaml`) agree with the code: every
//! route of `Route::ALL` is described with its method, path, function and access; every
//! error code the handlers can answer is listed under the status the code gives it, and
//! nothing else is; the answers' schemas accept serialised values of the types the handlers
//! answer with, field for field; lists document `x-next-cursor`, refusals `Retry-After`.
//! A route, a field or an error code added in code without its description fails here.
//! What the handlers actually answer over HTTP is checked by schemathesis against a running
//! stack (`scripts/fuzz-api.sh`, `make fuzz`).

use std::collections::{BTreeMap, BTreeSet};

use functions::api::{
    BlockedItem, CreatedMessage, GroupMember, InboxItem, ListItem, MessageReactions, UserShort,
};
use functions::http::{ApiError, HandlerError, NEXT_CURSOR_HEADER, service_busy_response};
use functions::push::PushFrame;
use functions::routes::{Access, Route};
use messaging::StoreError;
use messaging::model::ConversationKind;
use messaging::page::PageError;
use messaging::validate::ValidationError;
use serde::Serialize;
use serde_json::{Value, json};

fn document() -> &'static Value {
    local::api_docs::openapi().unwrap_or_else(|error| panic!("docs/openapi.yaml: {error}"))
}

fn operation(route: Route) -> &'static Value {
    let operation = &document()["paths"][route.path()][route.method().to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "{} is not described in docs/openapi.yaml",
        route.key()
    );
    operation
}

/// Follows a local `$ref` (`#/components/...`), repeatedly.
fn resolve(value: &'static Value) -> &'static Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("not a local reference: {reference}"));
            resolve(
                document()
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling reference: {reference}")),
            )
        }
        None => value,
    }
}

/// An operation's responses by status, references followed.
fn responses(route: Route) -> BTreeMap<u16, &'static Value> {
    operation(route)["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: no responses", route.key()))
        .iter()
        .map(|(status, response)| {
            let status = status
                .parse()
                .unwrap_or_else(|_| panic!("{}: status {status:?}", route.key()));
            (status, resolve(response))
        })
        .collect()
}

fn json_schema(response: &'static Value) -> Option<&'static Value> {
    response
        .pointer("/content/application~1json/schema")
        .map(resolve)
}

/// The error codes a documented error body may carry: the `enum` of its array's items, in
/// every alternative (`oneOf`) that is an array.
fn documented_codes(schema: &'static Value) -> BTreeSet<&'static str> {
    let alternatives: Vec<&Value> = match schema.get("oneOf").and_then(Value::as_array) {
        Some(alternatives) => alternatives.iter().map(resolve).collect(),
        None => vec![schema],
    };
    alternatives
        .into_iter()
        .filter(|schema| schema["type"] == "array")
        .flat_map(|schema| {
            schema["items"]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("an error body without its codes: {schema}"))
                .iter()
                .map(|code| code.as_str().expect("codes are strings"))
        })
        .collect()
}

/// Every validation error; the `match` makes a new variant a compile error here until it
/// is listed.
fn every_validation_error() -> Vec<ValidationError> {
    use ValidationError::*;
    let all = vec![
        MessageBlank,
        MessageTooLong,
        HandleBlank,
        HandleInvalid,
        DisplayNameBlank,
        DisplayNameTooLong,
        MessageGroupUuidBlank,
        MessageGroupUuidInvalid,
        ReceiverIsSelf,
        GroupNameBlank,
        GroupNameTooLong,
        GroupHandlesBlank,
        GroupTooLarge,
        MessageUuidInvalid,
        ReactionUnknown,
    ];
    for error in &all {
        match error {
            MessageBlank
            | MessageTooLong
            | HandleBlank
            | HandleInvalid
            | DisplayNameBlank
            | DisplayNameTooLong
            | MessageGroupUuidBlank
            | MessageGroupUuidInvalid
            | ReceiverIsSelf
            | GroupNameBlank
            | GroupNameTooLong
            | GroupHandlesBlank
            | GroupTooLarge
            | MessageUuidInvalid
            | ReactionUnknown => {}
        }
    }
    all
}

/// Display names only come from sign-up (the Cognito triggers), never through this API.
const SIGN_UP_ONLY: [ValidationError; 2] = [
    ValidationError::DisplayNameBlank,
    ValidationError::DisplayNameTooLong,
];

/// Every (status, code) the HTTP API can answer, each derived from the code that answers it:
/// the `ApiError` variants, the store's answers as `HandlerError` turns them into responses,
/// the validation and paging errors, the literal codes of the handlers (`api.rs`), and the
/// busy answer.
fn answerable() -> BTreeSet<(u16, &'static str)> {
    let group = uuid::Uuid::nil();
    let mut errors: Vec<ApiError> = vec![
        ApiError::Unauthenticated,
        ApiError::JsonInvalid,
        ApiError::JsonNotObject,
        ApiError::FieldTypeInvalid,
        ApiError::BodyTooLarge,
        ApiError::RateLimited {
            retry_after_seconds: 1,
        },
        // The literal codes of api.rs's handlers.
        ApiError::NotFound("user_not_registered"),
        ApiError::NotFound("user_reciever_not_found"),
        ApiError::NotFound("user_not_found"),
        ApiError::BadRequest("user_blocks_self"),
        ApiError::Validation(vec!["client_message_id_invalid"]),
        ApiError::BodyRefused(functions::http::HANDLES_TOO_MANY),
    ];
    errors.extend(
        [PageError::LimitInvalid, PageError::CursorInvalid]
            .into_iter()
            .map(ApiError::from),
    );
    errors.extend(
        every_validation_error()
            .into_iter()
            .filter(|error| !SIGN_UP_ONLY.contains(error))
            .map(ApiError::from),
    );
    let store_answers = [
        StoreError::NotMember(group),
        StoreError::MessageNotFound {
            group,
            message: group,
        },
        StoreError::SelfConversation,
        StoreError::DirectConversation(group),
        StoreError::GroupWithoutOthers,
        StoreError::GroupTooLarge {
            members: 51,
            max: 50,
        },
        StoreError::Blocked,
        StoreError::SelfBlock,
        StoreError::ClientMessageIdReused,
        StoreError::Page(PageError::CursorInvalid),
        StoreError::RateLimited {
            user: group,
            limit: "send",
            retry_after: std::time::Duration::from_millis(1500),
        },
    ];
    for answer in store_answers {
        listed_here(&answer);
        match HandlerError::from(answer) {
            HandlerError::Api(error) => errors.push(error),
            other => panic!("the store's answer became {other:?}"),
        }
    }
    errors.iter().for_each(api_error_listed_here);
    let mut pairs: BTreeSet<(u16, &'static str)> = errors
        .iter()
        .flat_map(|error| {
            let status = error.status().as_u16();
            error.codes().into_iter().map(move |code| (status, code))
        })
        .collect();
    let busy = service_busy_response();
    let codes: Vec<String> = serde_json::from_str(&body_text(busy.body())).unwrap();
    assert_eq!(codes, ["service_busy"]);
    pairs.insert((busy.status().as_u16(), "service_busy"));
    pairs
}

/// Does not compile when `StoreError` gains a variant: an answer the API can give must be
/// added to [`answerable`] (or named here as never reaching a client as 4xx).
fn listed_here(answer: &StoreError) {
    match answer {
        StoreError::NotMember(_)
        | StoreError::MessageNotFound { .. }
        | StoreError::SelfConversation
        | StoreError::DirectConversation(_)
        | StoreError::GroupWithoutOthers
        | StoreError::GroupTooLarge { .. }
        | StoreError::Blocked
        | StoreError::SelfBlock
        | StoreError::ClientMessageIdReused
        | StoreError::Page(_)
        | StoreError::RateLimited { .. } => {}
        // Sign-up only (Cognito triggers), or infrastructure: 500 or the busy answer.
        StoreError::HandleTaken(_)
        | StoreError::SubRegistered { .. }
        | StoreError::SubBlank
        | StoreError::CorruptItem { .. }
        | StoreError::Encode(_)
        | StoreError::IndexLagging { .. }
        | StoreError::NoMembers(_)
        | StoreError::Contention { .. }
        | StoreError::Dynamo { .. } => {}
    }
}

/// Does not compile when `ApiError` gains a variant; each is listed in [`answerable`].
fn api_error_listed_here(error: &ApiError) {
    match error {
        ApiError::Unauthenticated
        | ApiError::JsonInvalid
        | ApiError::JsonNotObject
        | ApiError::FieldTypeInvalid
        | ApiError::BodyTooLarge
        | ApiError::BodyRefused(_)
        | ApiError::Validation(_)
        | ApiError::Page(_)
        | ApiError::NotFound(_)
        | ApiError::RateLimited { .. }
        | ApiError::BadRequest(_)
        | ApiError::Forbidden(_)
        | ApiError::Conflict(_) => {}
    }
}

fn body_text(body: &lambda_http::Body) -> String {
    match body {
        lambda_http::Body::Text(text) => text.clone(),
        other => panic!("not a text body: {other:?}"),
    }
}

#[test]
fn every_route_is_described_with_its_function_and_access() {
    let paths = document()["paths"].as_object().expect("paths");
    let mut described = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            described.insert(format!("{} {path}", method.to_ascii_uppercase()));
        }
    }
    let routes: BTreeSet<String> = Route::ALL.iter().map(|r| r.key().to_owned()).collect();
    assert_eq!(
        described, routes,
        "operations in docs/openapi.yaml vs Route::ALL"
    );

    assert_eq!(document()["openapi"], "3.1.0");
    assert_eq!(document()["security"], json!([{"bearer": []}]));
    let scheme = &document()["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
    for route in Route::ALL {
        let operation = operation(route);
        assert_eq!(
            operation["operationId"],
            route.function(),
            "{}",
            route.key()
        );
        let statuses = responses(route);
        match route.access() {
            Access::Public => {
                assert_eq!(
                    operation["security"],
                    json!([]),
                    "{} is public",
                    route.key()
                );
                assert!(
                    !statuses.contains_key(&401),
                    "{}: public, no 401",
                    route.key()
                );
            }
            Access::Jwt => {
                assert!(
                    operation.get("security").is_none(),
                    "{}: the bearer scheme applies",
                    route.key()
                );
                assert!(statuses.contains_key(&401), "{}: 401 missing", route.key());
            }
        }
        // Path parameters: each `{name}` of the route is described, and nothing else.
        let in_path: BTreeSet<&str> = route
            .path()
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let described: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(resolve)
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        assert_eq!(described, in_path, "{}: path parameters", route.key());
    }
}

#[test]
fn every_error_code_is_documented_under_its_status_and_nothing_else_is() {
    let answerable = answerable();
    let mut documented = BTreeSet::new();
    for route in Route::ALL {
        for (status, response) in responses(route) {
            if status < 400 {
                continue;
            }
            let schema = json_schema(response)
                .unwrap_or_else(|| panic!("{} {status}: no JSON body", route.key()));
            let codes = documented_codes(schema);
            assert!(!codes.is_empty(), "{} {status}: no codes", route.key());
            for code in codes {
                assert!(
                    answerable.contains(&(status, code)),
                    "{} documents {status} {code:?}, which the code never answers",
                    route.key()
                );
                documented.insert((status, code));
            }
        }
    }
    let missing: Vec<_> = answerable.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "answered but documented nowhere: {missing:?}"
    );
}

#[test]
fn every_route_documents_its_answers() {
    for route in Route::ALL {
        let statuses: BTreeSet<u16> = responses(route).into_keys().collect();
        let success = match route {
            Route::LeaveMessageGroup
            | Route::MarkMessageGroupRead
            | Route::BlockUser
            | Route::UnblockUser => 204,
            Route::ListMessageGroups
            | Route::ListMessages
            | Route::CreateMessage
            | Route::GetUserShort
            | Route::CreateMessageGroup
            | Route::ListMessageGroupMembers
            | Route::AddMessageGroupMembers
            | Route::ListBlocks
            | Route::AddReaction
            | Route::RemoveReaction
            | Route::UpdateMessage
            | Route::DeleteMessage => 200,
        };
        assert!(statuses.contains(&success), "{}: {success}", route.key());
        // Every route reads the table, so a busy table is 503 everywhere; every route looks
        // someone up (the caller, or the card's user), so 404 too.
        assert!(statuses.contains(&503), "{}: 503", route.key());
        assert!(statuses.contains(&404), "{}: 404", route.key());
        // A body is read (413, 400) exactly where one is described.
        let reads_body = operation(route).get("requestBody").is_some();
        for status in [400, 413] {
            if reads_body {
                assert!(statuses.contains(&status), "{}: {status}", route.key());
            }
        }
        if !reads_body {
            assert!(!statuses.contains(&413), "{}: no body, no 413", route.key());
        }
    }
}

#[test]
fn lists_document_their_cursor_and_refusals_their_wait() {
    for route in Route::ALL {
        let operation = operation(route);
        let parameters: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(resolve)
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        let responses = responses(route);
        let paged = parameters.contains("limit");
        if paged {
            assert_eq!(
                parameters,
                BTreeSet::from(["limit", "cursor"]),
                "{}",
                route.key()
            );
            let limit = resolve(
                operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(resolve)
                    .find(|parameter| parameter["name"] == "limit")
                    .unwrap(),
            );
            assert_eq!(
                (
                    &limit["schema"]["minimum"],
                    &limit["schema"]["maximum"],
                    &limit["schema"]["default"]
                ),
                (
                    &json!(1),
                    &json!(messaging::page::MAX_LIMIT),
                    &json!(messaging::page::DEFAULT_LIMIT)
                ),
                "{}",
                route.key()
            );
        }
        let cursor_header = responses
            .get(&200)
            .and_then(|ok| ok["headers"].get(NEXT_CURSOR_HEADER));
        assert_eq!(
            cursor_header.is_some(),
            paged,
            "{}: {NEXT_CURSOR_HEADER}",
            route.key()
        );
        for status in [429, 503] {
            if let Some(response) = responses.get(&status) {
                let retry_after = resolve(&response["headers"]["Retry-After"]);
                assert_eq!(retry_after["required"], true, "{} {status}", route.key());
                assert_eq!(
                    retry_after["schema"]["type"],
                    "integer",
                    "{} {status}",
                    route.key()
                );
            }
        }
    }
}

/// The schema each route's success answers with: the shape of `api.rs`'s answer.
fn success_schema(route: Route) -> Option<(bool, &'static str)> {
    let (list, name) = match route {
        Route::ListMessageGroups => (true, "InboxItem"),
        Route::ListMessages => (true, "ListItem"),
        Route::CreateMessage
        | Route::CreateMessageGroup
        | Route::UpdateMessage
        | Route::DeleteMessage => (false, "CreatedMessage"),
        Route::GetUserShort => (false, "UserShort"),
        Route::ListMessageGroupMembers | Route::AddMessageGroupMembers => (true, "GroupMember"),
        Route::ListBlocks => (true, "BlockedItem"),
        Route::AddReaction | Route::RemoveReaction => (false, "MessageReactions"),
        Route::LeaveMessageGroup
        | Route::MarkMessageGroupRead
        | Route::BlockUser
        | Route::UnblockUser => return None,
    };
    Some((list, name))
}

#[test]
fn success_answers_have_their_types_schemas() {
    for route in Route::ALL {
        let responses = responses(route);
        match success_schema(route) {
            None => {
                assert!(
                    responses[&204].get("content").is_none(),
                    "{}: 204 has no body",
                    route.key()
                );
            }
            Some((list, name)) => {
                // Unresolved: the answer names its schema.
                let schema = &responses[&200]["content"]["application/json"]["schema"];
                let item = if list {
                    assert_eq!(schema["type"], "array", "{}", route.key());
                    &schema["items"]
                } else {
                    schema
                };
                assert_eq!(
                    item["$ref"],
                    format!("#/components/schemas/{name}"),
                    "{}",
                    route.key()
                );
            }
        }
    }
}

const UUID_A: &str = "5ae290ed-55d1-47a0-bc6d-fe2bc2700399";
const UUID_B: &str = "3882aebe-0b44-4c38-a7bd-7f34a0b1a8f0";
const AT: &str = "2026-11-23T18:14:53.598005+00:00";

/// Every answer type with every optional field filled, under its schema's name.
fn samples() -> Vec<(&'static str, Value)> {
    fn value(sample: impl Serialize) -> Value {
        serde_json::to_value(sample).unwrap()
    }
    let inbox = |kind, name: Option<&str>, member_count| InboxItem {
        uuid: UUID_A.into(),
        display_name: "Bootcamp".into(),
        handle: "bayko".into(),
        message: "hello".into(),
        created_at: AT.into(),
        kind,
        name: name.map(str::to_owned),
        member_count,
        unread: 3,
        seen: Some(true),
        edited_at: Some(AT.into()),
        deleted: true,
    };
    let created = CreatedMessage {
        message_group_uuid: UUID_A.into(),
        uuid: UUID_B.into(),
        display_name: "Andrew Brown".into(),
        handle: "andrewbrown".into(),
        message: "Hello 🙂".into(),
        created_at: AT.into(),
        edited_at: Some(AT.into()),
        deleted: true,
        deleted_at: Some(AT.into()),
    };
    vec![
        (
            "InboxItem",
            value(inbox(ConversationKind::Group, Some("Bootcamp"), Some(3))),
        ),
        (
            "InboxItem",
            value(inbox(ConversationKind::Direct, None, None)),
        ),
        (
            "ListItem",
            value(ListItem {
                uuid: UUID_B.into(),
                display_name: "Andrew Brown".into(),
                handle: "andrewbrown".into(),
                message: "hello".into(),
                created_at: AT.into(),
                reactions: [("👍".to_owned(), 2), ("❤️".to_owned(), 1)].into(),
                my_reactions: vec!["👍".into()],
                edited_at: Some(AT.into()),
                deleted: true,
                deleted_at: Some(AT.into()),
            }),
        ),
        ("CreatedMessage", value(created.clone())),
        (
            "MessageReactions",
            value(MessageReactions {
                message_group_uuid: UUID_A.into(),
                uuid: UUID_B.into(),
                reactions: [("🎉".to_owned(), 1)].into(),
                my_reactions: vec!["🎉".into()],
            }),
        ),
        (
            "GroupMember",
            value(GroupMember {
                uuid: UUID_B.into(),
                handle: "londo".into(),
                display_name: "Londo Mollari".into(),
                joined_at: AT.into(),
                online: true,
                last_seen_at: Some(AT.into()),
                read_through: Some(AT.into()),
            }),
        ),
        (
            "UserShort",
            value(UserShort {
                uuid: UUID_B.into(),
                handle: "londo".into(),
                display_name: "Londo Mollari".into(),
            }),
        ),
        (
            "BlockedItem",
            value(BlockedItem {
                uuid: UUID_B.into(),
                handle: "londo".into(),
                display_name: "Londo Mollari".into(),
                blocked_at: AT.into(),
            }),
        ),
    ]
}

#[test]
fn the_schemas_accept_the_answers_field_for_field() {
    let schemas = &document()["components"]["schemas"];
    let mut fields_checked = BTreeSet::new();
    for (name, sample) in samples() {
        let schema = &schemas[name];
        if let Err(errors) = validate(schema, &sample) {
            panic!("{name} {sample}: {errors:?}");
        }
        // Field for field: the first (fullest) sample of each type names every property.
        if fields_checked.insert(name) {
            let documented: BTreeSet<&str> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let sent: BTreeSet<&str> = sample
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(documented, sent, "{name}: documented vs serialised fields");
        }
    }
    // And the schemas refuse what the answers never are.
    let mut wrong_kind = samples()[0].1.clone();
    wrong_kind["kind"] = json!("channel");
    assert!(validate(&schemas["InboxItem"], &wrong_kind).is_err());
    let mut extra = samples()[3].1.clone();
    extra["extra"] = json!(1);
    assert!(validate(&schemas["CreatedMessage"], &extra).is_err());
    let mut missing = samples()[3].1.clone();
    missing.as_object_mut().unwrap().remove("created_at");
    assert!(validate(&schemas["CreatedMessage"], &missing).is_err());
    let mut bad_time = samples()[3].1.clone();
    bad_time["created_at"] = json!("yesterday");
    assert!(validate(&schemas["CreatedMessage"], &bad_time).is_err());
}

#[test]
fn error_bodies_are_arrays_of_documented_codes() {
    let mut rate_limited = ApiError::RateLimited {
        retry_after_seconds: 4,
    }
    .into_response();
    let body: Value = serde_json::from_str(&body_text(rate_limited.body())).unwrap();
    let documented = json_schema(responses(Route::CreateMessage)[&429]).unwrap();
    validate(documented, &body).unwrap();
    assert_eq!(
        rate_limited.headers_mut().remove("retry-after").unwrap(),
        "4"
    );
    let validation = ApiError::Validation(vec!["message_blank", "handle_invalid"]).into_response();
    let body: Value = serde_json::from_str(&body_text(validation.body())).unwrap();
    validate(
        json_schema(responses(Route::CreateMessage)[&422]).unwrap(),
        &body,
    )
    .unwrap();
    // A code another status owns is refused by this status's schema.
    assert!(
        validate(
            json_schema(responses(Route::CreateMessage)[&422]).unwrap(),
            &json!(["rate_limited"])
        )
        .is_err()
    );
}

#[test]
fn the_pushed_frame_is_the_asyncapi_message() {
    let asyncapi = local::api_docs::asyncapi().unwrap();
    assert_eq!(asyncapi["asyncapi"], "3.0.0");
    let schema = &asyncapi["components"]["schemas"]["MessageFrame"];
    let created = samples()
        .into_iter()
        .find(|(name, _)| *name == "CreatedMessage")
        .unwrap()
        .1;
    let created: CreatedMessage = serde_json::from_value(created).unwrap();
    let frame = serde_json::to_value(PushFrame {
        kind: PushFrame::MESSAGE.to_owned(),
        message: created,
    })
    .unwrap();
    validate_in(asyncapi, schema, &frame).unwrap();
    let documented: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let sent: BTreeSet<&str> = frame
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(documented, sent);
    // The connection's token parameter is the authorizer's identity source.
    let query = &asyncapi["channels"]["push"]["bindings"]["ws"]["query"];
    assert_eq!(
        query["required"],
        json!([functions::websocket::TOKEN_PARAMETER])
    );
    // The example frame is one.
    let example = &asyncapi["components"]["messages"]["message"]["examples"][0]["payload"];
    validate_in(asyncapi, schema, example).unwrap();
    assert!(serde_json::from_value::<PushFrame>(example.clone()).is_ok());
}

#[test]
fn the_typing_and_error_frames_and_the_typing_action_are_the_asyncapi_messages() {
    use functions::ws_actions::{
        ACTIONS, ActionError, ClientFrame, ErrorFrame, PRESENCE_ACTION, TYPING_ACTION, TypingFrame,
    };
    let asyncapi = local::api_docs::asyncapi().unwrap();
    let schemas = &asyncapi["components"]["schemas"];
    let keys = |value: &Value| -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };

    let typing = serde_json::to_value(TypingFrame {
        kind: TypingFrame::TYPE.to_owned(),
        message_group_uuid: uuid::Uuid::new_v4(),
        handle: "andrewbrown".into(),
        display_name: "Andrew Brown".into(),
    })
    .unwrap();
    validate_in(asyncapi, &schemas["TypingFrame"], &typing).unwrap();
    assert_eq!(keys(&schemas["TypingFrame"]["properties"]), keys(&typing));
    let example = &asyncapi["components"]["messages"]["typing"]["examples"][0]["payload"];
    assert!(serde_json::from_value::<TypingFrame>(example.clone()).is_ok());

    // Every code an error frame can carry, and only those.
    let documented: BTreeSet<&str> = schemas["ErrorFrame"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    assert_eq!(documented, ActionError::CODES.into_iter().collect());
    // Every action's refusals, and a frame naming no action, in the one shape.
    for error in ActionError::ALL {
        for action in [Some(TYPING_ACTION), Some(PRESENCE_ACTION), None] {
            let frame = serde_json::to_value(ErrorFrame::new(action, &error)).unwrap();
            validate_in(asyncapi, &schemas["ErrorFrame"], &frame).unwrap();
            let mut sent = keys(&frame);
            sent.insert("action".to_owned());
            assert_eq!(keys(&schemas["ErrorFrame"]["properties"]), sent);
        }
    }
    let example = &asyncapi["components"]["messages"]["error"]["examples"];
    for example in example.as_array().unwrap() {
        let frame: ErrorFrame = serde_json::from_value(example["payload"].clone()).unwrap();
        assert!(ActionError::CODES.contains(&frame.code.as_str()));
    }

    // The client's frame: the action a route has, and the field the handler reads.
    assert_eq!(ACTIONS, [TYPING_ACTION, PRESENCE_ACTION]);
    assert_eq!(
        schemas["TypingAction"]["properties"]["action"]["const"],
        TYPING_ACTION
    );
    let example = &asyncapi["components"]["messages"]["typingAction"]["examples"][0]["payload"];
    validate_in(asyncapi, &schemas["TypingAction"], example).unwrap();
    let parsed = ClientFrame::parse(&example.to_string()).unwrap();
    assert_eq!(parsed.action.as_deref(), Some(TYPING_ACTION));
    assert!(parsed.fields["message_group_uuid"].is_string());
}

#[test]
fn the_read_frame_is_the_asyncapi_read_message() {
    let asyncapi = local::api_docs::asyncapi().unwrap();
    let schema = &asyncapi["components"]["schemas"]["ReadFrame"];
    let frame = serde_json::to_value(functions::push::ReadFrame {
        kind: functions::push::ReadFrame::READ.to_owned(),
        message_group_uuid: UUID_A.into(),
        handle: "bayko".into(),
        read_through: AT.into(),
    })
    .unwrap();
    validate_in(asyncapi, schema, &frame).unwrap();
    let documented: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let sent: BTreeSet<&str> = frame
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(documented, sent);
    let example = &asyncapi["components"]["messages"]["read"]["examples"][0]["payload"];
    validate_in(asyncapi, schema, example).unwrap();
    assert!(serde_json::from_value::<functions::push::ReadFrame>(example.clone()).is_ok());
}

#[test]
fn the_change_frames_are_the_asyncapi_messages() {
    use functions::push::changes::{ChangeFrame, MessageDeleted, MessageUpdated, ReactionChanged};
    let asyncapi = local::api_docs::asyncapi().unwrap();
    let frames = [
        (
            "message_updated",
            "MessageUpdatedFrame",
            ChangeFrame::MessageUpdated(MessageUpdated {
                message_group_uuid: UUID_A.into(),
                uuid: UUID_B.into(),
                message: "edited".into(),
                edited_at: AT.into(),
                handle: "andrewbrown".into(),
                display_name: "Andrew Brown".into(),
                created_at: AT.into(),
            }),
        ),
        (
            "message_deleted",
            "MessageDeletedFrame",
            ChangeFrame::MessageDeleted(MessageDeleted {
                message_group_uuid: UUID_A.into(),
                uuid: UUID_B.into(),
                deleted_at: AT.into(),
                created_at: AT.into(),
            }),
        ),
        (
            "reaction",
            "ReactionFrame",
            ChangeFrame::Reaction(ReactionChanged {
                message_group_uuid: UUID_A.into(),
                uuid: UUID_B.into(),
                emoji: "👍".into(),
                handle: "bayko".into(),
                display_name: "Andrew Bayko".into(),
                added: false,
                count: 0,
            }),
        ),
    ];
    for (message, schema_name, frame) in frames {
        let schema = &asyncapi["components"]["schemas"][schema_name];
        let frame = serde_json::to_value(frame).unwrap();
        assert_eq!(frame["type"], message);
        validate_in(asyncapi, schema, &frame).unwrap_or_else(|e| panic!("{message}: {e:?}"));
        let documented: BTreeSet<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let sent: BTreeSet<&str> = frame
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(documented, sent, "{message}");
        let documented_message = &asyncapi["components"]["messages"][message];
        assert_eq!(
            documented_message["payload"]["$ref"],
            format!("#/components/schemas/{schema_name}")
        );
        let example = &documented_message["examples"][0]["payload"];
        validate_in(asyncapi, schema, example).unwrap();
        let parsed: ChangeFrame = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap()["type"], message);
        // Listed on the channel and received by an operation.
        let on_channel = asyncapi["channels"]["push"]["messages"]
            .as_object()
            .unwrap()
            .values()
            .any(|m| m["$ref"] == format!("#/components/messages/{message}"));
        assert!(on_channel, "{message} is on the push channel");
    }
}

/// The subset of JSON Schema (2020-12) the two documents use, enough to hold the code's
/// values to them: `$ref` (local), `type`, `enum`, `const`, `properties`, `required`,
/// `additionalProperties: false`, `items`, `minItems`, `minimum`, `minLength`, `maxLength`,
/// `oneOf`, `anyOf`, and the formats `uuid` and `date-time`. A keyword outside it fails
/// the test, so the subset cannot silently skip a rule the document adds. (schemathesis
/// validates the running stack's answers with a full implementation.)
fn validate(schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    validate_in(document(), schema, value)
}

/// [`validate`] with `$ref`s resolved in `root`.
fn validate_in(root: &Value, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    check(root, schema, value, "", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => root
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {reference}")),
        None => schema,
    };
    let Some(keywords) = schema.as_object() else {
        errors.push(format!("{at}: schema is not an object"));
        return;
    };
    let mut fail = |message: String| errors.push(format!("{at}: {message}"));
    let mut nested = Vec::new();
    for (keyword, rule) in keywords {
        match keyword.as_str() {
            "description" | "title" | "default" | "examples" => {}
            "type" => {
                let fits = match rule.as_str() {
                    Some("object") => value.is_object(),
                    Some("array") => value.is_array(),
                    Some("string") => value.is_string(),
                    Some("integer") => value.is_i64() || value.is_u64(),
                    Some("boolean") => value.is_boolean(),
                    other => panic!("type {other:?} not supported"),
                };
                if !fits {
                    fail(format!("{value} is not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    fail(format!("{value} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != value {
                    fail(format!("{value} is not {rule}"));
                }
            }
            "required" => {
                for name in rule.as_array().unwrap() {
                    if value.get(name.as_str().unwrap()).is_none() {
                        fail(format!("{name} missing"));
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, property) in rule.as_object().unwrap() {
                        if let Some(field) = object.get(name) {
                            nested.push((property, field, format!("{at}/{name}")));
                        }
                    }
                }
            }
            "additionalProperties" => {
                assert!(
                    rule == &json!(false) || rule.is_object(),
                    "`additionalProperties: false` or a schema"
                );
                if let Some(object) = value.as_object() {
                    let known = keywords.get("properties").and_then(Value::as_object);
                    for (name, field) in object {
                        if known.is_some_and(|known| known.contains_key(name)) {
                            continue;
                        }
                        if rule.is_object() {
                            // A map (reaction counts): every other field has this schema.
                            nested.push((rule, field, format!("{at}/{name}")));
                        } else {
                            fail(format!("{name} is not a documented field"));
                        }
                    }
                }
            }
            "items" => {
                for (i, item) in value
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    nested.push((rule, item, format!("{at}/{i}")));
                }
            }
            "minItems" => {
                if value
                    .as_array()
                    .is_some_and(|items| (items.len() as u64) < rule.as_u64().unwrap())
                {
                    fail(format!("fewer than {rule} items"));
                }
            }
            "minimum" => {
                if value
                    .as_f64()
                    .is_some_and(|number| number < rule.as_f64().unwrap())
                {
                    fail(format!("{value} < {rule}"));
                }
            }
            "minLength" | "maxLength" => {
                if let Some(text) = value.as_str() {
                    let length = text.chars().count() as u64;
                    let bound = rule.as_u64().unwrap();
                    if (keyword == "minLength" && length < bound)
                        || (keyword == "maxLength" && length > bound)
                    {
                        fail(format!("length {length} breaks {keyword} {bound}"));
                    }
                }
            }
            "format" => {
                if let Some(text) = value.as_str() {
                    let valid = match rule.as_str() {
                        Some("uuid") => uuid::Uuid::parse_str(text).is_ok(),
                        Some("date-time") => time::OffsetDateTime::parse(
                            text,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .is_ok(),
                        other => panic!("format {other:?} not supported"),
                    };
                    if !valid {
                        fail(format!("{value} is not a {rule}"));
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let passing = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|alternative| {
                        let mut inner = Vec::new();
                        check(root, alternative, value, at, &mut inner);
                        inner.is_empty()
                    })
                    .count();
                let fits = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !fits {
                    fail(format!("{passing} alternatives of {keyword} match {value}"));
                }
            }
            other => panic!("schema keyword {other:?} is outside the subset this test checks"),
        }
    }
    for (schema, value, at) in nested {
        check(root, schema, value, &at, errors);
    }
}

#[test]
fn the_presence_frames_are_the_asyncapi_messages() {
    use functions::presence::PresenceFrame;
    use functions::ws_actions::{ClientFrame, PRESENCE_ACTION};
    let asyncapi = local::api_docs::asyncapi().unwrap();
    let schemas = &asyncapi["components"]["schemas"];
    let frame = serde_json::to_value(PresenceFrame::new(
        uuid::Uuid::nil(),
        "bayko".into(),
        true,
        Some("2026-11-23T18:14:53.598005+00:00".into()),
    ))
    .unwrap();
    validate_in(asyncapi, &schemas["PresenceFrame"], &frame).unwrap();
    let documented: BTreeSet<&String> = schemas["PresenceFrame"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let sent: BTreeSet<&String> = frame.as_object().unwrap().keys().collect();
    assert_eq!(documented, sent);
    // Refusals are every action's `error` message (ErrorFrame, checked with typing's);
    // the reply of `presence` names it, and no presence-only error shape is left.
    assert!(schemas.get("PresenceErrorFrame").is_none());
    assert!(
        asyncapi["components"]["messages"]
            .get("presenceError")
            .is_none()
    );
    let replies: Vec<&str> = asyncapi["operations"]["askPresence"]["reply"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reply| reply["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        replies,
        [
            "#/channels/push/messages/presence",
            "#/channels/push/messages/error"
        ]
    );
    // The client's action is the route's key, and its example is a request the handler reads.
    assert_eq!(
        schemas["PresenceRequest"]["properties"]["action"]["const"],
        PRESENCE_ACTION
    );
    for (message, schema) in [
        ("presence", "PresenceFrame"),
        ("presenceRequest", "PresenceRequest"),
    ] {
        let example = &asyncapi["components"]["messages"][message]["examples"][0]["payload"];
        validate_in(asyncapi, &schemas[schema], example).unwrap();
    }
    let request = &asyncapi["components"]["messages"]["presenceRequest"]["examples"][0]["payload"];
    let parsed = ClientFrame::parse(&request.to_string()).unwrap();
    assert_eq!(parsed.action.as_deref(), Some(PRESENCE_ACTION));
    assert!(parsed.group_uuid().is_ok());
}

#[test]
fn the_emoji_parameter_lists_the_reaction_set() {
    let emoji = &document()["components"]["parameters"]["emoji"]["schema"]["enum"];
    assert_eq!(emoji, &json!(messaging::reactions::EMOJI));
}
