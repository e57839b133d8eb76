//! `messaging-push` with the stream events in `events/`, against DynamoDB Local and the
//! local stack's stand-in for API Gateway's Management API (the SDK posts to it over HTTP,
//! exactly as in Lambda). Connections are open sockets of the stand-in; a connection item
//! without one is answered `410 Gone`, as API Gateway answers for a closed connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::Event;
use aws_sdk_apigatewaymanagement::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_apigatewaymanagement::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_apigatewaymanagement::error::BoxError;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use axum::body::Bytes;
use functions::batch::Deadline;
use functions::push::{PostRetry, PushFrame, local_management_config};
use local::filter::EventFilter;
use local::websocket::OpenConnections;
use messaging::items::MembershipItem;
use messaging::model::Connection;
use messaging::{Store, Timestamp, keys};
use testkit::{FailRequests, Failure, TestTable};
use tokio::sync::mpsc::UnboundedReceiver;

mod support;
use support::recorded::{InboxRowMover, PushHandler};
use support::{
    ANDREW, BAYKO, BAYKO_LONDO, LONDO, WITH_BAYKO, WITH_LONDO, event_file, management_api, uuid,
};

const MALLORY: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";

/// The memberships of the three conversations the stream events are about.
async fn table_with_members() -> TestTable {
    let table = TestTable::new().await;
    for (group, a, b) in [
        (WITH_BAYKO, ANDREW, BAYKO),
        (WITH_LONDO, ANDREW, LONDO),
        (BAYKO_LONDO, BAYKO, LONDO),
    ] {
        for member in [a, b] {
            put(
                &table.store,
                &MembershipItem::new(
                    uuid(group),
                    uuid(member),
                    "2026-11-01T00:00:00.000000+00:00",
                ),
            )
            .await;
        }
    }
    table
}

async fn put<T: serde::Serialize>(store: &Store, item: &T) {
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(serde_dynamo::to_item(item).unwrap()))
        .send()
        .await
        .unwrap();
}

/// A connection item of `user`, opened `age` ago.
async fn connection(table: &TestTable, user: &str, id: &str, age: Duration) -> Connection {
    let at = time::OffsetDateTime::now_utc() - age;
    let connection = Connection::opened(uuid(user), id.to_owned(), Timestamp::from_datetime(at));
    table.store.put_connection(&connection).await.unwrap();
    connection
}

async fn has_connection_item(table: &TestTable, user: &str, id: &str) -> bool {
    let key = keys::connection(uuid(user), id);
    table
        .store
        .client()
        .get_item()
        .table_name(table.store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.pk))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.sk))
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

/// Every frame queued for a socket so far (the push has finished when `handle` returns).
fn frames(receiver: &mut UnboundedReceiver<Bytes>) -> Vec<PushFrame> {
    let mut frames = Vec::new();
    while let Ok(frame) = receiver.try_recv() {
        frames.push(serde_json::from_slice(&frame).expect("a JSON frame"));
    }
    frames
}

fn texts(frames: &[PushFrame]) -> Vec<&str> {
    frames.iter().map(|f| f.message.message.as_str()).collect()
}

/// The texts of the messages of `group` in `event`, in stream order.
fn stream_texts(event: &Event, group: &str) -> Vec<String> {
    event
        .records
        .iter()
        .filter(|r| {
            r.change.keys.get("pk")
                == Some(&serde_dynamo::AttributeValue::S(format!("MSG#{group}")))
        })
        .map(|r| match r.change.new_image.get("message") {
            Some(serde_dynamo::AttributeValue::S(text)) => text.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_reaches_every_live_connection_of_every_member_in_order_and_gone_ones_are_deleted()
{
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let hour = Duration::from_secs(3600);
    // Andrew on two devices, Bayko and Londo on one; Mallory is in none of the conversations.
    let mut sockets: HashMap<&str, UnboundedReceiver<Bytes>> = HashMap::new();
    for (user, id) in [
        (ANDREW, "andrew-phone="),
        (ANDREW, "andrew-laptop"),
        (BAYKO, "bayko-tablet="),
        (LONDO, "londo-desktop"),
        (MALLORY, "mallory-phone"),
    ] {
        connection(&table, user, id, hour).await;
        sockets.insert(id, open.open(id));
    }
    // Closed long ago without a $disconnect: API Gateway answers 410.
    connection(&table, BAYKO, "bayko-closed=", hour).await;
    // Just recorded by $connect, not open yet: also 410, but kept (it is opening).
    connection(&table, LONDO, "londo-opening", Duration::ZERO).await;
    table.requests.reset();

    let event = event_file("stream-batch.json");
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );
    let (response, summary) = handler.handle(&event).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(summary.messages, 7);
    assert_eq!(summary.skipped, 1, "the inbox-row insert");
    assert_eq!(summary.conversations, 3);
    assert_eq!(summary.member_queries, 3, "one per conversation");
    assert_eq!(
        summary.connection_queries, 3,
        "one per member, shared across conversations"
    );
    assert_eq!(summary.frames_sent, 5 + 5 + 5 + 4);
    assert_eq!(summary.failed_posts, 0);
    assert!(summary.gone_connections >= 2, "{summary:?}");

    let with_bayko = stream_texts(&event, WITH_BAYKO);
    let with_londo = stream_texts(&event, WITH_LONDO);
    let bayko_londo = stream_texts(&event, BAYKO_LONDO);
    assert_eq!(with_bayko.len(), 3);
    // Every message, not only the newest, and in order within each conversation (frames of
    // different conversations may interleave).
    let of = |frames: &[PushFrame], group: &str| -> Vec<String> {
        frames
            .iter()
            .filter(|f| f.message.message_group_uuid == group)
            .map(|f| f.message.message.clone())
            .collect()
    };
    for device in ["andrew-phone=", "andrew-laptop"] {
        let got = frames(sockets.get_mut(device).unwrap());
        assert_eq!(got.len(), 5, "{device}: {:?}", texts(&got));
        assert_eq!(of(&got, WITH_BAYKO), with_bayko, "{device}");
        assert_eq!(of(&got, WITH_LONDO), with_londo, "{device}");
    }
    let bayko = frames(sockets.get_mut("bayko-tablet=").unwrap());
    assert_eq!(of(&bayko, WITH_BAYKO), with_bayko);
    assert_eq!(of(&bayko, BAYKO_LONDO), bayko_londo);
    assert_eq!(bayko.len(), 5);
    let londo = frames(sockets.get_mut("londo-desktop").unwrap());
    assert_eq!(of(&londo, WITH_LONDO), with_londo);
    assert_eq!(of(&londo, BAYKO_LONDO), bayko_londo);
    assert_eq!(londo.len(), 4);
    assert!(
        frames(sockets.get_mut("mallory-phone").unwrap()).is_empty(),
        "not a member"
    );

    // The frame is the created-message shape plus its type. Conversations are pushed
    // concurrently, so only the order within one conversation is fixed.
    let first = bayko
        .iter()
        .find(|frame| frame.message.message_group_uuid == WITH_BAYKO)
        .expect("a frame of the conversation with bayko");
    assert_eq!(first.kind, "message");
    assert_eq!(first.message.message_group_uuid, WITH_BAYKO);
    assert_eq!(first.message.uuid.len(), 36, "the message's uuid");
    assert_eq!(first.message.handle, "andrewbrown");

    assert!(
        !has_connection_item(&table, BAYKO, "bayko-closed=").await,
        "410: deleted"
    );
    assert!(
        has_connection_item(&table, LONDO, "londo-opening").await,
        "still opening: kept"
    );
    assert!(has_connection_item(&table, BAYKO, "bayko-tablet=").await);
}

/// Answers the first `times` posts with API Gateway's throttling error. The stand-in never
/// throttles (as DynamoDB Local never does), and a throttled post must not be delivered,
/// so the request is turned away from any open connection before it is sent, and its reply
/// replaced before the SDK reads it.
#[derive(Debug, Clone)]
struct Throttle {
    left: Arc<AtomicUsize>,
}

impl Throttle {
    fn times(times: usize) -> Self {
        Self {
            left: Arc::new(AtomicUsize::new(times)),
        }
    }
}

/// Marks an attempt to throttle.
#[derive(Debug, Clone)]
struct Throttled;

impl aws_smithy_types::config_bag::Storable for Throttled {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for Throttle {
    fn name(&self) -> &'static str {
        "Throttle"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let throttle = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if throttle {
            cfg.interceptor_state().store_put(Throttled);
            let request = context.request_mut();
            let uri = request.uri().to_owned();
            let (base, _) = uri
                .split_once("/@connections/")
                .expect("a post to a connection");
            request.set_uri(format!("{base}/@connections/throttled"))?;
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Throttled>().is_some() {
            // What API Gateway answers a post over its rate: 429 LimitExceededException
            // (https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-connections-connectionid.html).
            let mut response = Response::new(
                StatusCode::try_from(429).unwrap(),
                SdkBody::from(r#"{"message":"Rate exceeded"}"#),
            );
            response
                .headers_mut()
                .insert("x-amzn-ErrorType", "LimitExceededException");
            *context.response_mut() = response;
        }
        Ok(())
    }
}

async fn throttled_push(times: usize) -> (functions::push::PushSummary, bool, Vec<PushFrame>) {
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    connection(&table, ANDREW, "andrew-phone=", Duration::from_secs(60)).await;
    let mut socket = open.open("andrew-phone=");
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(
        local_management_config(&endpoint)
            .interceptor(Throttle::times(times))
            .build(),
    );
    let handler = PushHandler::new(table.store.clone(), client).with_retry(PostRetry {
        attempts: 4,
        base_backoff: Duration::from_millis(1),
    });
    let (response, summary) = handler
        .handle(&event_file("stream-insert-message.json"))
        .await;
    (
        summary,
        response.batch_item_failures.is_empty(),
        frames(&mut socket),
    )
}

#[tokio::test]
async fn throttled_posts_are_retried_with_backoff() {
    let (summary, no_failures, frames) = throttled_push(2).await;
    assert!(no_failures);
    assert_eq!(summary.throttled_posts, 2);
    assert_eq!(summary.frames_sent, 1);
    assert_eq!(texts(&frames), ["Did the inbox move?"]);
}

#[tokio::test]
async fn a_post_throttled_past_its_retries_is_skipped_and_counted_not_retried_with_the_batch() {
    let (summary, no_failures, frames) = throttled_push(100).await;
    assert!(
        no_failures,
        "a push failure never makes Lambda retry the batch"
    );
    assert_eq!(summary.throttled_posts, 4, "bounded: four attempts");
    assert_eq!(summary.failed_posts, 1);
    assert_eq!(summary.frames_sent, 0);
    assert!(frames.is_empty());
}

#[tokio::test]
async fn unreadable_recipients_are_reported_for_retry_and_the_rest_is_pushed() {
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    connection(&table, ANDREW, "andrew-phone=", Duration::from_secs(60)).await;
    let mut andrew = open.open("andrew-phone=");
    let store = table.store_with(FailRequests::mentioning(
        "Query",
        format!("MBR#{BAYKO_LONDO}"),
        Failure::Network,
    ));
    let handler = PushHandler::new(store, functions::push::local_management_client(&endpoint));
    let event = event_file("stream-batch.json");
    let (response, summary) = handler.handle(&event).await;

    assert_eq!(summary.failed_conversations, 1);
    let first_bayko_londo = event
        .records
        .iter()
        .find(|r| {
            r.change.keys.get("pk")
                == Some(&serde_dynamo::AttributeValue::S(format!(
                    "MSG#{BAYKO_LONDO}"
                )))
        })
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier, first_bayko_londo.change.sequence_number,
        "Lambda retries from the failed conversation's first record"
    );
    assert_eq!(
        frames(&mut andrew).len(),
        5,
        "the other conversations went out"
    );
}

/// A deadline taken with `budget` to go (at the invocation's start), read when only `left`
/// remains.
fn nearly_spent(budget: Duration, left: Duration) -> Deadline {
    let start = Instant::now();
    let now = Arc::new(std::sync::Mutex::new(start));
    let clock = {
        let now = now.clone();
        Arc::new(move || *now.lock().unwrap())
    };
    let deadline = Deadline::with_clock(start + budget, clock);
    *now.lock().unwrap() = start + budget - left;
    deadline
}

#[tokio::test]
async fn near_the_deadline_nothing_starts_and_the_batch_is_reported_for_retry() {
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );
    table.requests.reset();
    let event = event_file("stream-batch.json");
    // The function's 30-second budget with 5 s left: margins scaled to it stop starting
    // at 6 s.
    let deadline = nearly_spent(Duration::from_secs(30), Duration::from_secs(5));
    let (response, summary) = handler.handle_until(&event, Some(deadline)).await;
    assert_eq!(summary.unstarted_conversations, 3);
    assert_eq!(table.requests.total(), 0);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        event.records[0].change.sequence_number
    );
}

/// A function deployed with a 5-second timeout: fixed 10-second margins would push
/// nothing, ever; margins scaled to the budget push every frame.
#[tokio::test]
async fn a_five_second_budget_pushes_every_frame() {
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let hour = Duration::from_secs(3600);
    connection(&table, ANDREW, "andrew-phone=", hour).await;
    let mut andrew = open.open("andrew-phone=");
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );
    let event = event_file("stream-batch.json");
    let deadline = Deadline::at(Instant::now() + Duration::from_secs(5));

    let (response, summary) = handler.handle_until(&event, Some(deadline)).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(summary.unstarted_conversations, 0, "{summary:?}");
    assert_eq!(
        frames(&mut andrew).len(),
        stream_texts(&event, WITH_BAYKO).len() + stream_texts(&event, WITH_LONDO).len()
    );
}

/// A Management API endpoint that takes connections and never answers (a stuck stage, a
/// proxy) costs each post its bounded attempts, not the batch: the push answers, the post
/// counted as failed, nothing reported for retry. What kept `make invoke FN=messaging-push`
/// waiting was the function exiting at start without `WEBSOCKET_API_ENDPOINT`, not a post.
#[tokio::test]
async fn a_management_api_that_never_answers_fails_the_post_not_the_batch() {
    let table = table_with_members().await;
    connection(&table, ANDREW, "andrew-phone=", Duration::from_secs(3600)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let held = accepted.clone();
    tokio::spawn(async move {
        let mut silent = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.fetch_add(1, Ordering::SeqCst);
            silent.push(socket);
        }
    });
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    )
    .with_retry(PostRetry {
        attempts: 2,
        base_backoff: Duration::from_millis(1),
    });

    let event = event_file("stream-insert-message.json");
    // A guard against hanging, not a measurement: each attempt gives up on its own timeout.
    let (response, summary) = tokio::time::timeout(Duration::from_secs(60), handler.handle(&event))
        .await
        .expect("the push answers although the endpoint never does");

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(summary.failed_posts, 1, "{summary:?}");
    assert_eq!(summary.frames_sent, 0);
    assert!(accepted.load(Ordering::SeqCst) >= 1, "the post reached it");
}

#[tokio::test]
async fn connection_items_never_reach_either_stream_function() {
    let event = event_file("stream-connection-items.json");
    assert_eq!(
        event.records.len(),
        2,
        "ws-connect's insert and TTL's removal"
    );
    for pattern in [
        functions::batch::FILTER_PATTERN,
        functions::push::FILTER_PATTERN,
    ] {
        let filter = EventFilter::parse(pattern).unwrap();
        assert!(event.records.iter().all(|record| !filter.matches(record)));
    }
    // And were they delivered anyway, both handlers would skip them without a request.
    let table = table_with_members().await;
    table.requests.reset();
    let (response, summary) = InboxRowMover::new(table.store.clone()).handle(&event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.skipped, summary.messages), (2, 0));
    let push = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client("http://127.0.0.1:9"),
    );
    let (response, summary) = push.handle(&event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.skipped, summary.messages), (2, 0));
    assert_eq!(table.requests.total(), 0);
}

#[tokio::test]
async fn a_connection_past_its_tokens_expiry_gets_no_frame_and_is_closed_and_forgotten() {
    let table = table_with_members().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let now = time::OffsetDateTime::now_utc();
    // Andrew's phone: its token expired a second ago, the socket is still open (API Gateway
    // knows nothing of tokens). His laptop: a token valid for an hour more.
    let at = Timestamp::from_datetime(now - time::Duration::minutes(5));
    let expired = Connection::opened(uuid(ANDREW), "andrew-phone=".into(), at)
        .ending_with_token(Some(now.unix_timestamp() - 1));
    let valid = Connection::opened(uuid(ANDREW), "andrew-laptop".into(), at)
        .ending_with_token(Some(now.unix_timestamp() + 3600));
    // Bayko's tablet expired too, and API Gateway has closed it already (410 on delete).
    let closed = Connection::opened(uuid(BAYKO), "bayko-tablet=".into(), at)
        .ending_with_token(Some(now.unix_timestamp() - 60));
    for connection in [&expired, &valid, &closed] {
        table.store.put_connection(connection).await.unwrap();
    }
    let mut phone = open.open("andrew-phone=");
    let mut laptop = open.open("andrew-laptop");

    let recorded = testkit::RecordRequests::new();
    let handler = PushHandler::new(
        table.store_with(recorded.clone()),
        functions::push::local_management_client(&endpoint),
    );
    let (response, summary) = handler
        .handle(&event_file("stream-insert-message.json"))
        .await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(texts(&frames(&mut laptop)), ["Did the inbox move?"]);
    assert!(
        frames(&mut phone).is_empty(),
        "no frame past the token's expiry"
    );
    assert!(
        !open.is_open("andrew-phone="),
        "closed with DeleteConnection"
    );
    assert!(open.is_open("andrew-laptop"));
    assert_eq!(summary.expired_connections, 2);
    assert_eq!(summary.failed_closes, 0);
    assert_eq!(summary.frames_sent, 1);
    assert_eq!(summary.gone_connections, 0, "nothing was posted to them");
    assert!(!has_connection_item(&table, ANDREW, "andrew-phone=").await);
    assert!(!has_connection_item(&table, BAYKO, "bayko-tablet=").await);
    assert!(has_connection_item(&table, ANDREW, "andrew-laptop").await);

    // Connections are read strongly consistently: one `$connect` wrote a moment ago is found.
    let connection_queries: Vec<_> = recorded
        .of("Query")
        .into_iter()
        .filter(|sent| sent.body.to_string().contains("CONN#"))
        .collect();
    assert_eq!(connection_queries.len(), 2, "one per member");
    for query in connection_queries {
        assert_eq!(query.body["ConsistentRead"], true, "{}", query.body);
    }
}

#[tokio::test]
async fn the_stand_in_answers_410_until_connect_returns_and_delete_closes_an_open_connection() {
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let client = functions::push::local_management_client(&endpoint);
    let post = |id: &'static str| {
        client
            .post_to_connection()
            .connection_id(id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("{}"))
            .send()
    };
    // Not open yet (its `$connect` has not returned): gone, and nothing is queued for later.
    let error = post("opening-AAAA").await.unwrap_err().into_service_error();
    assert!(error.is_gone_exception(), "{error:?}");
    let mut socket = open.open("opening-AAAA");
    post("opening-AAAA").await.unwrap();
    assert_eq!(socket.try_recv().unwrap(), Bytes::from_static(b"{}"));
    assert!(socket.try_recv().is_err(), "the early post was not queued");

    client
        .delete_connection()
        .connection_id("opening-AAAA")
        .send()
        .await
        .unwrap();
    assert!(!open.is_open("opening-AAAA"));
    let error = client
        .delete_connection()
        .connection_id("opening-AAAA")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_gone_exception(), "{error:?}");
}

/// A group of 50 is created in two transactions (49 members with the message, then the
/// 50th as an add): the push of its first message, read from the table's own stream once
/// the creation has returned, reaches the 50th member too, because the members are read
/// strongly consistently when the record is handled, not when the message was written.
#[tokio::test]
async fn the_50th_member_of_a_50_member_group_gets_its_first_message() {
    let table = TestTable::new().await;
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let arn = table.store.stream_arn().await.unwrap().unwrap();
    let mut tail = local::stream_source::StreamTail::new(
        local::stream_source::local_streams_client(&testkit::endpoint()),
        arn,
    );
    let creator = table.user("creator").await;
    let mut others = Vec::new();
    for n in 1..50 {
        others.push(table.user(&format!("member{n:02}")).await);
    }
    let mut sockets = Vec::new();
    for member in std::iter::once(&creator).chain(&others) {
        let id = format!("{}-AAA=", member.uuid.simple());
        table
            .store
            .put_connection(&Connection::opened(
                member.uuid,
                id.clone(),
                Timestamp::now(),
            ))
            .await
            .unwrap();
        sockets.push((member.handle.to_string(), open.open(&id)));
    }
    let message = table
        .store
        .create_group(
            &creator,
            &messaging::validate::GroupName::parse("Fifty").unwrap(),
            &others,
            messaging::validate::MessageText::parse("Welcome, all 50").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        table
            .store
            .recipients(message.group_uuid)
            .await
            .unwrap()
            .len(),
        50
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let record = loop {
        let records = tail.poll().await.unwrap();
        if let Some(record) = records.into_iter().find(|r| {
            r.change.keys.get("pk")
                == Some(&serde_dynamo::AttributeValue::S(format!(
                    "MSG#{}",
                    message.group_uuid
                )))
        }) {
            break record;
        }
        assert!(
            Instant::now() < deadline,
            "the message never reached the stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut event = Event::default();
    event.records = vec![record];
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );
    let (response, summary) = handler.handle(&event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.frames_sent, 50, "{summary:?}");
    // Every member, the one added in the second transaction included.
    for (handle, socket) in &mut sockets {
        assert_eq!(texts(&frames(socket)), ["Welcome, all 50"], "{handle}");
    }
}

#[tokio::test]
async fn a_member_who_blocked_the_other_gets_no_frames_of_their_direct_conversation() {
    let table = TestTable::new().await;
    // Bayko blocked Andrew: both memberships of their conversation name Bayko.
    for (group, a, b, blockers) in [
        (WITH_BAYKO, ANDREW, BAYKO, vec![uuid(BAYKO)]),
        (WITH_LONDO, ANDREW, LONDO, Vec::new()),
        (BAYKO_LONDO, BAYKO, LONDO, Vec::new()),
    ] {
        for member in [a, b] {
            let membership = MembershipItem {
                blockers: blockers.clone(),
                ..MembershipItem::new(
                    uuid(group),
                    uuid(member),
                    "2026-11-01T00:00:00.000000+00:00",
                )
            };
            put(&table.store, &membership).await;
        }
    }
    let open = OpenConnections::default();
    let endpoint = management_api(open.clone()).await;
    let mut sockets: HashMap<&str, UnboundedReceiver<Bytes>> = HashMap::new();
    for (user, id) in [(ANDREW, "andrew-phone="), (BAYKO, "bayko-tablet=")] {
        connection(&table, user, id, Duration::from_secs(3600)).await;
        sockets.insert(id, open.open(id));
    }
    let event = event_file("stream-batch.json");
    let handler = PushHandler::new(
        table.store.clone(),
        functions::push::local_management_client(&endpoint),
    );
    let (response, _) = handler.handle(&event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let groups_of = |frames: Vec<PushFrame>| -> std::collections::BTreeSet<String> {
        frames
            .into_iter()
            .map(|frame| frame.message.message_group_uuid)
            .collect()
    };
    assert_eq!(
        groups_of(frames(sockets.get_mut("andrew-phone=").unwrap())),
        [WITH_BAYKO.to_owned(), WITH_LONDO.to_owned()].into(),
        "the blocked one still gets the frames"
    );
    assert_eq!(
        groups_of(frames(sockets.get_mut("bayko-tablet=").unwrap())),
        [BAYKO_LONDO.to_owned()].into(),
        "the blocker gets none of the direct conversation's"
    );
}
