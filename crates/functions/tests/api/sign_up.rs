//! The user pool's triggers: pre sign-up refuses a handle, post confirmation registers.

use messaging::validate::Handle;
use serde_json::{Value, json};
use testkit::{Refusal, RefusingClient};

use crate::{event, world};

#[tokio::test]
async fn sign_up_registers_once_and_refuses_a_taken_handle() {
    let w = world().await;
    let confirmation = event("cognito-post-confirmation.json");
    let answer = crate::support::recorded::post_confirmation(&w.table.store, confirmation.clone())
        .await
        .unwrap();
    assert_eq!(answer, confirmation, "the event comes back unchanged");
    let vir = w
        .table
        .store
        .user_by_handle(&Handle::parse("vir").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vir.display_name.as_str(), "Vir Cotto");
    assert_eq!(vir.cognito_sub, "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e04");

    // Cognito retries the trigger: same result, no second user.
    let again = crate::support::recorded::post_confirmation(&w.table.store, confirmation.clone())
        .await
        .unwrap();
    assert_eq!(again, confirmation);
    assert_eq!(w.table.store.list_users().await.unwrap().len(), 4);

    let taken = crate::support::recorded::post_confirmation(
        &w.table.store,
        event("cognito-post-confirmation-handle-taken.json"),
    )
    .await
    .unwrap_err();
    assert!(taken.to_string().contains("already taken"), "{taken}");

    let mut missing = confirmation.clone();
    missing["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("preferred_username");
    let error = crate::support::recorded::post_confirmation(&w.table.store, missing)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the user has no preferred_username attribute"
    );
    let error = crate::support::recorded::post_confirmation(&w.table.store, json!([1]))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the event is not a Cognito post-confirmation event")
    );
}

#[tokio::test]
async fn pre_signup_refuses_an_invalid_or_taken_handle_before_the_account_exists() {
    use crate::support::recorded::pre_signup;
    let w = world().await;
    let items_before = w.table.store.scan_all().await.unwrap().len();
    w.table.requests.reset();

    for allowed in [
        "cognito-pre-signup.json",
        "cognito-pre-signup-admin-create-user.json",
    ] {
        let event = event(allowed);
        let answer = pre_signup(&w.table.store, event.clone()).await;
        assert_eq!(
            answer.unwrap(),
            event,
            "{allowed}: the event comes back unchanged"
        );
    }

    // Cognito shows the message on the sign-up form: "PreSignUp failed with error <message>."
    let taken = pre_signup(
        &w.table.store,
        event("cognito-pre-signup-handle-taken.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        taken.to_string(),
        r#"the handle "BAYKO" is already taken, choose another one"#,
        "case-insensitive"
    );
    let invalid = pre_signup(
        &w.table.store,
        event("cognito-pre-signup-handle-invalid.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        invalid.to_string(),
        "handle must be 1 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit"
    );
    let mut long_name = event("cognito-pre-signup.json");
    long_name["request"]["userAttributes"]["name"] = json!("n".repeat(65));
    let error = pre_signup(&w.table.store, long_name).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "display name is longer than 64 characters"
    );
    let mut no_handle = event("cognito-pre-signup.json");
    no_handle["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("preferred_username");
    let error = pre_signup(&w.table.store, no_handle).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the user has no preferred_username attribute"
    );
    let error = pre_signup(&w.table.store, json!({"triggerSource": 5}))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the event is not a Cognito pre sign-up event"),
        "{error}"
    );

    // One request per sign-up that gets to the directory (the handle checked and reserved
    // together); the two allowed sign-ups hold their handles now, nothing else was written.
    assert_eq!(
        w.table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        vec![("TransactWriteItems".to_owned(), 3)]
    );
    assert_eq!(
        w.table.store.scan_all().await.unwrap().len(),
        items_before + 2
    );
    for (handle, username) in [
        ("vir", "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e04"),
        ("lennier", "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e09"),
    ] {
        let reservation = w
            .table
            .store
            .handle_reservation(&Handle::parse(handle).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{handle} is reserved"));
        assert_eq!(reservation.cognito_username, username);
    }

    // A directory that does not answer refuses the sign-up with a message to try again,
    // rather than letting an account through unchecked.
    let dynamodb = RefusingClient::new();
    dynamodb.refuse("TransactWriteItems", Refusal::Throttling);
    let error = pre_signup(
        &dynamodb.store_for(&w.table),
        event("cognito-pre-signup.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "sign-up is unavailable for a moment, try again"
    );
}

#[tokio::test]
async fn post_confirmation_registers_only_on_confirm_sign_up() {
    use crate::support::recorded::post_confirmation;
    let w = world().await;
    // A password reset of a user whose preferred_username was changed to a taken handle
    // (possible before the handle became immutable): nothing to register, nothing to fail.
    let reset = event("cognito-post-confirmation-forgot-password.json");
    assert_eq!(
        post_confirmation(&w.table.store, reset.clone())
            .await
            .unwrap(),
        reset
    );
    let mut unknown_source = event("cognito-post-confirmation.json");
    unknown_source["triggerSource"] = json!("PostConfirmation_SomethingNew");
    assert_eq!(
        post_confirmation(&w.table.store, unknown_source.clone())
            .await
            .unwrap(),
        unknown_source
    );
    assert_eq!(w.table.requests.total(), 0, "not even a read");
    assert_eq!(w.table.store.list_users().await.unwrap().len(), 3);

    // The sign-up itself still registers, once.
    let confirmation = event("cognito-post-confirmation.json");
    for _ in 0..2 {
        post_confirmation(&w.table.store, confirmation.clone())
            .await
            .unwrap();
    }
    assert_eq!(w.table.store.list_users().await.unwrap().len(), 4);
}

/// A pre sign-up event of `user_name` asking for `handle`.
fn sign_up(handle: &str, user_name: &str) -> Value {
    let mut event = event("cognito-pre-signup.json");
    event["userName"] = json!(user_name);
    event["request"]["userAttributes"]["preferred_username"] = json!(handle);
    event
}

/// The post-confirmation event of the same sign-up (with email as the username attribute,
/// Cognito's user name is the `sub`).
fn confirmation(handle: &str, user_name: &str) -> Value {
    let mut event = event("cognito-post-confirmation.json");
    event["userName"] = json!(user_name);
    event["request"]["userAttributes"]["sub"] = json!(user_name);
    event["request"]["userAttributes"]["preferred_username"] = json!(handle);
    event
}

/// Both orders of two people signing up for one free handle, at the same moment: the first
/// to reach pre sign-up holds the handle, the second is refused on the form (before Cognito
/// creates an account), so whoever confirms is registered, and nobody is confirmed without
/// a profile. Before reservations, both passed pre sign-up and the second confirmation
/// failed after the account was confirmed.
#[tokio::test]
async fn of_two_sign_ups_for_one_handle_the_second_is_refused_before_its_account_exists() {
    use functions::cognito::{post_confirmation, pre_signup};
    let w = world().await;
    let store = &w.table.store;
    let (ann, bob) = (
        "0a000000-0000-4000-8000-00000000000a",
        "0b000000-0000-4000-8000-00000000000b",
    );
    for (first, second, handle) in [(ann, bob, "kosh"), (bob, ann, "Delenn")] {
        pre_signup(store, sign_up(handle, first)).await.unwrap();
        // Either case of the handle is the same handle.
        let refused = pre_signup(store, sign_up(&handle.to_uppercase(), second))
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "the handle {:?} is already taken, choose another one",
                handle.to_uppercase()
            ),
            "{handle}"
        );
        // Cognito retries a trigger: the same sign-up finds its own reservation.
        pre_signup(store, sign_up(handle, first)).await.unwrap();
        // The first confirms: registered. The second never had an account to confirm.
        post_confirmation(store, confirmation(handle, first))
            .await
            .unwrap();
        let user = store
            .user_by_handle(&Handle::parse(handle).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.cognito_sub, first, "{handle}");
        // The claim replaced the reservation: a later sign-up is refused as taken.
        assert!(
            store
                .handle_reservation(&Handle::parse(handle).unwrap())
                .await
                .unwrap()
                .is_none()
        );
        assert!(pre_signup(store, sign_up(handle, second)).await.is_err());
    }
}

/// Truly at once: of two pre sign-ups running concurrently, exactly one holds the handle;
/// confirming it registers that one.
#[tokio::test]
async fn concurrent_sign_ups_for_one_handle_let_exactly_one_through() {
    use functions::cognito::{post_confirmation, pre_signup};
    let w = world().await;
    let store = &w.table.store;
    for round in 0..5 {
        let handle = format!("lyta{round}");
        let names = [
            format!("0a000000-0000-4000-8000-0000000000{round:02}"),
            format!("0b000000-0000-4000-8000-0000000000{round:02}"),
        ];
        let (a, b) = tokio::join!(
            pre_signup(store, sign_up(&handle, &names[0])),
            pre_signup(store, sign_up(&handle, &names[1])),
        );
        let allowed: Vec<&String> = [(a.is_ok(), &names[0]), (b.is_ok(), &names[1])]
            .into_iter()
            .filter_map(|(ok, name)| ok.then_some(name))
            .collect();
        assert_eq!(allowed.len(), 1, "round {round}: {allowed:?}");
        post_confirmation(store, confirmation(&handle, allowed[0]))
            .await
            .unwrap();
        let user = store
            .user_by_handle(&Handle::parse(&handle).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&user.cognito_sub, allowed[0]);
    }
}

/// A confirmation whose handle another sign-up holds (possible only once this one's
/// reservation expired, a day after it signed up) is refused rather than taking the handle
/// from under the sign-up that holds it now.
#[tokio::test]
async fn a_confirmation_cannot_claim_a_handle_another_sign_up_holds() {
    use functions::cognito::{post_confirmation, pre_signup};
    let w = world().await;
    let store = &w.table.store;
    let (late, holder) = (
        "0c000000-0000-4000-8000-00000000000c",
        "0d000000-0000-4000-8000-00000000000d",
    );
    pre_signup(store, sign_up("marcus", holder)).await.unwrap();
    let error = post_confirmation(store, confirmation("marcus", late))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("already taken"), "{error}");
    assert!(
        store
            .user_by_handle(&Handle::parse("marcus").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // The holder's confirmation goes through.
    post_confirmation(store, confirmation("marcus", holder))
        .await
        .unwrap();
}

/// The two trigger events of `events/` are one person's sign-up, as Cognito sends them (the
/// same user name): `make invoke` and the watch check run them in this order, and the
/// handle the first reserves is the one the second claims.
#[tokio::test]
async fn the_sign_up_events_are_one_sign_up_that_confirms() {
    use crate::support::recorded::{post_confirmation, pre_signup};
    let w = world().await;
    let sign_up = event("cognito-pre-signup.json");
    let confirmation = event("cognito-post-confirmation.json");
    assert_eq!(sign_up["userName"], confirmation["userName"]);
    pre_signup(&w.table.store, sign_up).await.unwrap();
    post_confirmation(&w.table.store, confirmation)
        .await
        .unwrap();
    let vir = w
        .table
        .store
        .user_by_handle(&Handle::parse("vir").unwrap())
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(vir.cognito_sub, "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e04");
}
