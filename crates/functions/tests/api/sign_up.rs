//! The user pool's triggers: pre sign-up refuses a handle, post confirmation registers.

use messaging::validate::Handle;
use serde_json::json;
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

    // It only reads, one handle claim per sign-up; nothing was written.
    assert_eq!(
        w.table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        vec![("GetItem".to_owned(), 3)]
    );
    assert_eq!(w.table.store.scan_all().await.unwrap().len(), items_before);

    // A directory that does not answer refuses the sign-up with a message to try again,
    // rather than letting an account through unchecked.
    let dynamodb = RefusingClient::new();
    dynamodb.refuse("GetItem", Refusal::Throttling);
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
