//! The user directory: look-ups by sub and handle(s), unique handles, idempotent
//! registration.

use messaging::store::{NewUser, Registration};
use messaging::validate::{DisplayName, Handle};
use messaging::{StoreError, Timestamp};
use testkit::TestTable;

fn new_user(handle: &str, sub: &str) -> NewUser {
    NewUser {
        handle: Handle::parse(handle).unwrap(),
        display_name: DisplayName::parse("Someone").unwrap(),
        cognito_sub: sub.to_owned(),
    }
}

#[tokio::test]
async fn users_are_found_by_sub_and_by_handle_in_one_read_each() {
    let table = TestTable::new().await;
    let registered = table
        .store
        .register_user(new_user("LondoM", "sub-londo"), Timestamp::now())
        .await
        .unwrap();
    let Registration::Created(londo) = registered else {
        panic!("expected a new user, got {registered:?}");
    };
    table.requests.reset();

    let by_sub = table.store.user_by_sub("sub-londo").await.unwrap();
    assert_eq!(by_sub.as_ref(), Some(&londo));
    assert_eq!(table.requests.total(), 1);

    table.requests.reset();
    let by_handle = table
        .store
        .user_by_handle(&Handle::parse("londom").unwrap())
        .await
        .unwrap();
    assert_eq!(by_handle.as_ref(), Some(&londo));
    assert_eq!(by_handle.unwrap().handle.as_str(), "LondoM");
    assert_eq!(table.requests.total(), 1);

    assert_eq!(
        table.store.user_by_uuid(londo.uuid).await.unwrap(),
        Some(londo)
    );
    assert_eq!(table.store.user_by_sub("nobody").await.unwrap(), None);
    assert_eq!(table.store.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn handles_are_unique_whatever_their_case() {
    let table = TestTable::new().await;
    table
        .store
        .register_user(new_user("andrewbrown", "sub-1"), Timestamp::now())
        .await
        .unwrap();
    let err = table
        .store
        .register_user(new_user("AndrewBrown", "sub-2"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::HandleTaken(ref h) if h == "AndrewBrown"),
        "{err}"
    );
    // Nothing of the refused registration was written.
    assert_eq!(table.store.user_by_sub("sub-2").await.unwrap(), None);
    assert_eq!(table.store.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn registration_replays_are_idempotent_and_subs_cannot_change_handle() {
    let table = TestTable::new().await;
    let first = table
        .store
        .register_user(new_user("bayko", "sub-bayko"), Timestamp::now())
        .await
        .unwrap();
    let again = table
        .store
        .register_user(new_user("Bayko", "sub-bayko"), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(again, Registration::AlreadyRegistered(first.user().clone()));

    let err = table
        .store
        .register_user(new_user("other", "sub-bayko"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SubRegistered { ref handle, .. } if handle == "bayko"),
        "{err}"
    );
    assert_eq!(
        table
            .store
            .user_by_handle(&Handle::parse("other").unwrap())
            .await
            .unwrap(),
        None
    );

    let blank = table
        .store
        .register_user(new_user("blank", "  "), Timestamp::now())
        .await
        .unwrap_err();
    assert!(matches!(blank, StoreError::SubBlank));
}

#[tokio::test]
async fn users_are_looked_up_by_many_handles_at_once() {
    let table = TestTable::new().await;
    let bayko = table.user("Bayko").await;
    let londo = table.user("londo").await;
    table.requests.reset();
    let handles: Vec<Handle> = ["bayko", "LONDO", "nobody"]
        .iter()
        .map(|h| Handle::parse(h).unwrap())
        .collect();

    let found = table.store.users_by_handles(&handles).await.unwrap();

    assert_eq!(table.requests.of("BatchGetItem"), 1);
    assert_eq!(found.len(), 2);
    assert_eq!(found["bayko"].uuid, bayko.uuid);
    assert_eq!(found["londo"].uuid, londo.uuid);
}
