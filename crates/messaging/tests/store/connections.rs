//! WebSocket connection items against DynamoDB Local: one strongly consistent Query finds a
//! user's connections (expired ones too, for the push to close), unreadable items are skipped,
//! and the table expires them by TTL.

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use messaging::model::Connection;
use messaging::schema::TTL_ATTRIBUTE;
use messaging::{Timestamp, keys};
use testkit::{Refusal, RefusingClient, TestTable};

fn opened(user: uuid::Uuid, id: &str, at: &str) -> Connection {
    Connection::opened(user, id.to_owned(), Timestamp::parse(at).unwrap())
}

/// `user`'s connections still live at `epoch`, sorted by id.
async fn live(table: &TestTable, user: uuid::Uuid, epoch: i64) -> Vec<Connection> {
    let mut live: Vec<Connection> = table
        .store
        .connections_of(user)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.is_live_at(epoch))
        .collect();
    live.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    live
}

#[tokio::test]
async fn a_users_connections_are_one_consistent_query_and_disconnect_removes_them() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let now = Timestamp::parse("2026-11-22T10:00:00.000000+00:00").unwrap();
    let epoch = now.as_datetime().unix_timestamp();
    let phone = opened(
        andrew.uuid,
        "phone-AAAA=",
        "2026-11-22T09:59:00.000000+00:00",
    );
    let laptop = opened(
        andrew.uuid,
        "laptop-BBB=",
        "2026-11-22T09:30:00.000000+00:00",
    );
    // Opened more than two hours ago: API Gateway has closed it, whatever the table says.
    let stale = opened(
        andrew.uuid,
        "stale-CCCC=",
        "2026-11-22T07:59:59.000000+00:00",
    );
    let other = opened(
        bayko.uuid,
        "bayko-DDDD=",
        "2026-11-22T09:59:00.000000+00:00",
    );
    for connection in [&phone, &laptop, &stale, &other] {
        table.store.put_connection(connection).await.unwrap();
    }
    table.requests.reset();

    // Every item, the expired one too: the push closes it.
    let recorded = testkit::RecordRequests::new();
    let mut all = table
        .store_with(recorded.clone())
        .connections_of(andrew.uuid)
        .await
        .unwrap();
    all.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    assert_eq!(all, vec![laptop.clone(), phone.clone(), stale.clone()]);
    assert!(!stale.is_live_at(epoch));
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        vec![("Query".to_owned(), 1)]
    );
    // Strongly consistent: a connection recorded by `$connect` a moment ago is found.
    let queries = recorded.of("Query");
    assert_eq!(queries.len(), 1);
    assert_eq!(
        queries[0].body["ConsistentRead"], true,
        "{:?}",
        queries[0].body
    );
    assert_eq!(
        live(&table, andrew.uuid, epoch).await,
        vec![laptop.clone(), phone.clone()]
    );

    table
        .store
        .delete_connection(andrew.uuid, &phone.connection_id)
        .await
        .unwrap();
    // Twice: `$disconnect` and a 410 may both ask.
    table
        .store
        .delete_connection(andrew.uuid, &phone.connection_id)
        .await
        .unwrap();
    assert_eq!(live(&table, andrew.uuid, epoch).await, vec![laptop]);
    assert_eq!(
        table.store.connections_of(bayko.uuid).await.unwrap(),
        vec![other]
    );
}

#[tokio::test]
async fn an_unreadable_connection_item_does_not_hide_the_others() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let good = opened(
        andrew.uuid,
        "good-AAAA=",
        "2026-11-22T09:59:00.000000+00:00",
    );
    table.store.put_connection(&good).await.unwrap();
    let broken = keys::connection(andrew.uuid, "broken-BB=");
    table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .item("pk", AttributeValue::S(broken.pk))
        .item("sk", AttributeValue::S(broken.sk))
        .item("expires_at", AttributeValue::S("soon".into()))
        .send()
        .await
        .unwrap();
    let all = table.store.connections_of(andrew.uuid).await.unwrap();
    assert_eq!(all, vec![good]);
}

#[tokio::test]
async fn the_table_expires_connection_items_by_ttl_and_schema_load_stays_idempotent() {
    let table = TestTable::new().await;
    let describe = || async {
        table
            .store
            .client()
            .describe_time_to_live()
            .table_name(table.store.table())
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap()
    };
    let ttl = describe().await;
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    assert!(matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ));
    // DynamoDB refuses to enable TTL twice: loading the schema again must not try.
    assert_eq!(
        table.store.create_table_if_missing().await.unwrap(),
        messaging::store::TableStatus::AlreadyExisted
    );
    assert_eq!(describe().await.attribute_name(), Some(TTL_ATTRIBUTE));

    let connection = opened(
        uuid::Uuid::new_v4(),
        "x-AAAAAAAA=",
        "2026-11-22T10:00:00.000000+00:00",
    );
    assert_eq!(
        connection.expires_at
            - Timestamp::parse("2026-11-22T10:00:00.000000+00:00")
                .unwrap()
                .as_datetime()
                .unix_timestamp(),
        2 * 60 * 60,
        "API Gateway's longest connection"
    );
}

#[tokio::test]
async fn recipients_are_a_conversations_members_read_consistently() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let first = table
        .store
        .send_to_user(
            &andrew,
            &bayko,
            messaging::validate::MessageText::parse("hello").unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    table.requests.reset();
    let mut recipients = table.store.recipients(first.group_uuid).await.unwrap();
    recipients.sort();
    let mut expected = vec![andrew.uuid, bayko.uuid];
    expected.sort();
    assert_eq!(recipients, expected);
    assert!(!recipients.contains(&londo.uuid));
    assert_eq!(table.requests.of("Query"), 1);
}

#[tokio::test]
async fn connection_writes_that_meet_a_transaction_are_retried() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let dynamodb = RefusingClient::new();
    let store = dynamodb.store_for(&table);
    let connection = opened(
        andrew.uuid,
        "phone-AAAA=",
        "2026-11-22T09:59:00.000000+00:00",
    );

    dynamodb.refuse_times("PutItem", Refusal::ItemInTransaction, 2);
    store.put_connection(&connection).await.unwrap();
    assert_eq!(dynamodb.refused(), 2);
    assert_eq!(
        store.connections_of(andrew.uuid).await.unwrap(),
        vec![connection.clone()]
    );

    dynamodb.refuse_times("DeleteItem", Refusal::ItemInTransaction, 1);
    store
        .delete_connection(andrew.uuid, &connection.connection_id)
        .await
        .unwrap();
    assert_eq!(dynamodb.refused(), 3);
    assert!(store.connections_of(andrew.uuid).await.unwrap().is_empty());

    // A write that keeps meeting transactions is busy, not a fault, and writes nothing.
    dynamodb.refuse("PutItem", Refusal::ItemInTransaction);
    let error = store.put_connection(&connection).await.unwrap_err();
    assert!(
        matches!(error, messaging::StoreError::Contention { .. }),
        "{error:?}"
    );
    assert!(store.connections_of(andrew.uuid).await.unwrap().is_empty());
}
