//! Users' public profiles and the warm environment's cache of them.

use std::time::Duration;

use functions::api::{Api, UserShort};
use functions::routes::Route;
use lambda_http::http::StatusCode;
use serde_json::json;

use crate::{BAYKO_SUB, TTL, codes, event, parts, request, world};

#[tokio::test]
async fn user_short_is_public_and_case_insensitive() {
    let w = world().await;
    let (status, _, body) = parts(
        w.api
            .serve(
                Route::GetUserShort,
                request(&event("api-get-user-short.json")),
            )
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    let short: UserShort = serde_json::from_value(body).unwrap();
    assert_eq!(
        short,
        UserShort {
            uuid: w.bayko.uuid.to_string(),
            handle: "bayko".into(),
            display_name: "Andrew Bayko".into(),
        }
    );
    let mut upper = event("api-get-user-short.json");
    upper["pathParameters"]["handle"] = json!("@BAYKO");
    let (status, _, _) = parts(
        w.api
            .serve(Route::GetUserShort, request(&upper))
            .await
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    // No `@`: not this route, even for a real handle.
    for handle in ["@nobody", "@not a handle", "@", "bayko", ""] {
        let mut unknown = event("api-get-user-short-unknown.json");
        unknown["pathParameters"]["handle"] = json!(handle);
        let (status, _, body) = parts(
            w.api
                .serve(Route::GetUserShort, request(&unknown))
                .await
                .unwrap(),
        );
        assert_eq!(status, StatusCode::NOT_FOUND, "{handle:?}");
        assert_eq!(codes(&body), ["user_not_found"]);
    }
}

#[tokio::test]
async fn cached_profiles_are_refreshed_after_the_ttl() {
    let w = world().await;
    let short = |api: &Api| {
        let api = api.clone();
        async move {
            parts(
                api.serve(
                    Route::GetUserShort,
                    request(&event("api-get-user-short.json")),
                )
                .await
                .unwrap(),
            )
            .2
        }
    };
    assert_eq!(short(&w.api).await["display_name"], "Andrew Bayko");

    // Bayko changes his display name (written straight to the table: no API does it yet).
    for key in [
        messaging::keys::user_profile(w.bayko.uuid),
        messaging::keys::handle_claim(&w.bayko.handle),
        messaging::keys::cognito_sub(BAYKO_SUB),
    ] {
        w.table
            .store
            .client()
            .update_item()
            .table_name(w.table.store.table())
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.sk))
            .update_expression("SET display_name = :name")
            .expression_attribute_values(
                ":name",
                aws_sdk_dynamodb::types::AttributeValue::S("Bayko the Second".into()),
            )
            .send()
            .await
            .unwrap();
    }
    w.table.requests.reset();
    assert_eq!(
        short(&w.api).await["display_name"],
        "Andrew Bayko",
        "served from the cache"
    );
    assert_eq!(w.table.requests.total(), 0);
    w.clock.advance(TTL + Duration::from_millis(1));
    assert_eq!(short(&w.api).await["display_name"], "Bayko the Second");
    assert_eq!(w.table.requests.total(), 1);
}
