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

/// `now` moved by `seconds`.
fn later(now: Timestamp, seconds: i64) -> Timestamp {
    Timestamp::from_datetime(now.as_datetime() + time::Duration::seconds(seconds))
}

#[tokio::test]
async fn a_handle_reservation_holds_for_its_sign_up_until_it_expires() {
    use messaging::store::{HANDLE_RESERVATION_SECONDS, HandleReservation};
    let table = TestTable::new().await;
    let store = &table.store;
    let handle = Handle::parse("Zathras").unwrap();
    let t0 = Timestamp::now();

    table.requests.reset();
    assert_eq!(
        store.reserve_handle(&handle, "user-a", t0).await.unwrap(),
        HandleReservation::Reserved
    );
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [("TransactWriteItems".to_owned(), 1)],
        "checked and reserved in one request"
    );
    let reservation = store.handle_reservation(&handle).await.unwrap().unwrap();
    assert_eq!(
        reservation.expires_at,
        t0.as_datetime().unix_timestamp() + HANDLE_RESERVATION_SECONDS,
        "expires by the table's TTL"
    );
    // Its own sign-up again (Cognito retries triggers), any case of the handle: held.
    let lower = Handle::parse("zathras").unwrap();
    assert_eq!(
        store
            .reserve_handle(&lower, "user-a", later(t0, 60))
            .await
            .unwrap(),
        HandleReservation::Reserved
    );
    // Another sign-up, until the reservation expires.
    let almost = later(t0, HANDLE_RESERVATION_SECONDS - 60);
    assert_eq!(
        store
            .reserve_handle(&handle, "user-b", almost)
            .await
            .unwrap(),
        HandleReservation::ReservedByAnother
    );
    // The late first sign-up can no longer claim it once another holds it...
    let expired = later(t0, HANDLE_RESERVATION_SECONDS + 61);
    assert_eq!(
        store
            .reserve_handle(&handle, "user-b", expired)
            .await
            .unwrap(),
        HandleReservation::Reserved
    );
    let error = store
        .register_signed_up_user(new_user("Zathras", "user-a"), "user-a", expired)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::HandleTaken(_)), "{error:?}");
    assert!(store.user_by_handle(&handle).await.unwrap().is_none());
    // ...and the holder's claim registers it and clears the reservation.
    let registered = store
        .register_signed_up_user(new_user("Zathras", "user-b"), "user-b", expired)
        .await
        .unwrap();
    assert!(matches!(registered, Registration::Created(_)));
    assert!(store.handle_reservation(&handle).await.unwrap().is_none());
    // Claimed: no sign-up can reserve it any more, whoever it is.
    for name in ["user-a", "user-b"] {
        assert_eq!(
            store.reserve_handle(&handle, name, expired).await.unwrap(),
            HandleReservation::Taken
        );
    }
    // A replayed confirmation is still idempotent.
    let again = store
        .register_signed_up_user(new_user("Zathras", "user-b"), "user-b", expired)
        .await
        .unwrap();
    assert!(matches!(again, Registration::AlreadyRegistered(_)));
}

#[tokio::test]
async fn a_confirmation_without_a_live_reservation_claims_a_free_handle() {
    let table = TestTable::new().await;
    let store = &table.store;
    // Signed up before reservations existed, or confirmed after its reservation expired
    // and TTL removed it: nobody else holds the handle, so the claim goes through.
    let registered = store
        .register_signed_up_user(new_user("Ivanova", "user-i"), "user-i", Timestamp::now())
        .await
        .unwrap();
    assert!(matches!(registered, Registration::Created(_)));
    let t0 = Timestamp::now();
    store
        .reserve_handle(&Handle::parse("Lennier").unwrap(), "user-l", t0)
        .await
        .unwrap();
    let expired = later(t0, messaging::store::HANDLE_RESERVATION_SECONDS + 1);
    let registered = store
        .register_signed_up_user(new_user("Lennier", "user-m"), "user-m", expired)
        .await
        .unwrap();
    assert!(
        matches!(registered, Registration::Created(_)),
        "an expired hold is no hold"
    );
}
