//! Presence against DynamoDB Local: the profile's recorded connections and their bound,
//! what the members read shows, a lost `$disconnect`, and watches (one per connection).

use aws_sdk_dynamodb::types::AttributeValue;
use messaging::model::Connection;
use messaging::store::{Watch, Watching};
use messaging::{Timestamp, User, keys};
use testkit::TestTable;
use uuid::Uuid;

use super::text;

fn now() -> Timestamp {
    Timestamp::now()
}

fn epoch(at: Timestamp) -> i64 {
    at.as_datetime().unix_timestamp()
}

/// `user`'s connection `id`, opened at `at`, its token expiring at `exp`.
fn connection(user: &User, id: &str, at: Timestamp, exp: i64) -> Connection {
    Connection::opened(user.uuid, id.to_owned(), at).ending_with_token(Some(exp))
}

/// Andrew and Bayko's direct conversation.
async fn pair(table: &TestTable) -> (User, User, Uuid) {
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let message = table
        .store
        .send_to_user(&andrew, &bayko, text("Hello"), now())
        .await
        .unwrap();
    (andrew, bayko, message.group_uuid)
}

/// (online, last_seen_at) of `member` in the members list as `reader` sees it at `at`.
async fn shown(
    table: &TestTable,
    reader: &User,
    group: Uuid,
    member: &User,
    at: i64,
) -> (bool, Option<String>) {
    let members = table
        .store
        .group_members_at(reader.uuid, group, at)
        .await
        .unwrap();
    let member = members.iter().find(|m| m.uuid == member.uuid).unwrap();
    (member.online, member.last_seen_at.clone())
}

async fn raw(
    table: &TestTable,
    key: &keys::Key,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    table
        .store
        .client()
        .get_item()
        .table_name(table.store.table())
        .key("pk", AttributeValue::S(key.pk.clone()))
        .key("sk", AttributeValue::S(key.sk.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn connects_and_disconnects_show_in_the_members_read_at_one_update_each() {
    let table = TestTable::new().await;
    let (andrew, bayko, group) = pair(&table).await;
    let opened = now();
    let t = epoch(opened);
    assert_eq!(
        shown(&table, &andrew, group, &bayko, t).await,
        (false, None)
    );

    table.requests.reset();
    let phone = connection(&bayko, "phone=", opened, t + 3600);
    let change = table
        .store
        .presence_connected(&phone, opened)
        .await
        .unwrap()
        .expect("bayko has a profile");
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [("UpdateItem".to_owned(), 1)]
    );
    assert_eq!(change.handle, "bayko");
    assert_eq!(change.online_changed_at(t), Some(true));
    assert_eq!(
        shown(&table, &andrew, group, &bayko, t).await,
        (true, Some(opened.to_string()))
    );

    // A second device changes nothing anyone is told.
    let laptop = connection(&bayko, "laptop=", opened, t + 1800);
    let change = table
        .store
        .presence_connected(&laptop, opened)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.online_changed_at(t), None);
    assert_eq!(
        change.after.online_until,
        Some(t + 3600),
        "the later expiry stays"
    );

    table.requests.reset();
    let closed = now();
    let change = table
        .store
        .presence_disconnected(bayko.uuid, "phone=", closed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [("UpdateItem".to_owned(), 1)]
    );
    assert_eq!(
        change.online_changed_at(t),
        None,
        "the laptop is still open"
    );
    let change = table
        .store
        .presence_disconnected(bayko.uuid, "laptop=", closed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.online_changed_at(t), Some(false));
    assert_eq!(
        shown(&table, &andrew, group, &bayko, t).await,
        (false, Some(closed.to_string()))
    );
    // The emptied set is gone (DynamoDB keeps no empty set).
    let profile = raw(&table, &keys::user_profile(bayko.uuid)).await.unwrap();
    assert!(!profile.contains_key("live_connections"));
}

#[tokio::test]
async fn a_lost_disconnect_leaves_nobody_online_past_their_connections_expiry() {
    let table = TestTable::new().await;
    let (andrew, bayko, group) = pair(&table).await;
    let opened = now();
    let t = epoch(opened);
    // Its $disconnect never comes.
    let lost = connection(&bayko, "lost=", opened, t + 600);
    table.store.presence_connected(&lost, opened).await.unwrap();
    assert!(shown(&table, &andrew, group, &bayko, t + 599).await.0);
    assert!(
        !shown(&table, &andrew, group, &bayko, t + 600).await.0,
        "offline at the lost connection's expiry"
    );

    // A later connection that closes properly: the lost id keeps bayko online only up to
    // the latest expiry recorded, never longer.
    let later = connection(&bayko, "later=", opened, t + 900);
    table
        .store
        .presence_connected(&later, opened)
        .await
        .unwrap();
    table
        .store
        .presence_disconnected(bayko.uuid, "later=", now())
        .await
        .unwrap();
    assert!(shown(&table, &andrew, group, &bayko, t + 899).await.0);
    assert!(!shown(&table, &andrew, group, &bayko, t + 900).await.0);

    // ws-connect prunes the lost id: then the closed connection leaves bayko offline at once.
    table
        .store
        .forget_connections(bayko.uuid, &["lost=".to_owned()])
        .await
        .unwrap();
    assert!(!shown(&table, &andrew, group, &bayko, t).await.0);

    // With nothing recorded, a new connection sets the bound to its own expiry, even an
    // earlier one than before.
    let short = connection(&bayko, "short=", opened, t + 60);
    let change = table
        .store
        .presence_connected(&short, opened)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.after.online_until, Some(t + 60));
    assert!(!shown(&table, &andrew, group, &bayko, t + 60).await.0);
}

#[tokio::test]
async fn presence_never_creates_a_profile_and_leaves_the_directory_as_it_was() {
    let table = TestTable::new().await;
    let (_andrew, bayko, _group) = pair(&table).await;
    let stranger = Uuid::new_v4();
    let opened = now();
    let connection = Connection::opened(stranger, "x=".to_owned(), opened);
    assert_eq!(
        table
            .store
            .presence_connected(&connection, opened)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        table
            .store
            .presence_disconnected(stranger, "x=", opened)
            .await
            .unwrap(),
        None
    );
    assert!(raw(&table, &keys::user_profile(stranger)).await.is_none());

    let phone = Connection::opened(bayko.uuid, "phone=".to_owned(), opened);
    table
        .store
        .presence_connected(&phone, opened)
        .await
        .unwrap();
    // The directory reads the profile and its copies as before.
    assert_eq!(
        table.store.user_by_uuid(bayko.uuid).await.unwrap(),
        Some(bayko.clone())
    );
    assert_eq!(
        table.store.user_by_sub(&bayko.cognito_sub).await.unwrap(),
        Some(bayko.clone())
    );
    assert_eq!(
        table.store.user_by_handle(&bayko.handle).await.unwrap(),
        Some(bayko.clone())
    );
    for copy in [
        keys::handle_claim(&bayko.handle),
        keys::cognito_sub(&bayko.cognito_sub),
    ] {
        let item = raw(&table, &copy).await.unwrap();
        assert!(!item.contains_key("live_connections"), "{copy:?}");
        assert!(!item.contains_key("last_seen_at"), "{copy:?}");
    }
}

#[tokio::test]
async fn a_connection_watches_one_user_at_a_time() {
    let table = TestTable::new().await;
    let (andrew, bayko, group) = pair(&table).await;
    let carol = table.user("carol").await;
    let opened = now();
    let t = epoch(opened);
    let screen = connection(&andrew, "screen=", opened, t + 3600);
    table.store.put_connection(&screen).await.unwrap();
    let watch = |watched: &User| Watch {
        watched: watched.uuid,
        watcher: andrew.uuid,
        connection_id: "screen=".to_owned(),
        message_group_uuid: group,
        expires_at: screen.expires_at,
    };

    table.requests.reset();
    assert_eq!(
        table.store.watch(&watch(&bayko)).await.unwrap(),
        Watching::Recorded { replaced: None }
    );
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [("PutItem".to_owned(), 1), ("UpdateItem".to_owned(), 1)]
    );
    assert_eq!(
        table.store.watchers_of(bayko.uuid).await.unwrap(),
        [watch(&bayko)]
    );
    // Again: the same watch, nothing replaced.
    assert_eq!(
        table.store.watch(&watch(&bayko)).await.unwrap(),
        Watching::Recorded { replaced: None }
    );
    assert_eq!(table.store.watchers_of(bayko.uuid).await.unwrap().len(), 1);

    // Another conversation shown on the same connection: the old watch goes.
    assert_eq!(
        table.store.watch(&watch(&carol)).await.unwrap(),
        Watching::Recorded {
            replaced: Some(bayko.uuid)
        }
    );
    assert!(
        table
            .store
            .watchers_of(bayko.uuid)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        table.store.watchers_of(carol.uuid).await.unwrap(),
        [watch(&carol)]
    );
    // The push still reads the connection item with its `watching`.
    assert_eq!(
        table.store.connections_of(andrew.uuid).await.unwrap(),
        std::slice::from_ref(&screen)
    );

    // A connection without an item (closed) keeps no watch.
    let gone = Watch {
        connection_id: "gone=".to_owned(),
        ..watch(&bayko)
    };
    assert_eq!(
        table.store.watch(&gone).await.unwrap(),
        Watching::ConnectionUnknown
    );
    assert!(
        table
            .store
            .watchers_of(bayko.uuid)
            .await
            .unwrap()
            .is_empty()
    );

    table
        .store
        .delete_watch(carol.uuid, "screen=")
        .await
        .unwrap();
    assert!(
        table
            .store
            .watchers_of(carol.uuid)
            .await
            .unwrap()
            .is_empty()
    );
}
