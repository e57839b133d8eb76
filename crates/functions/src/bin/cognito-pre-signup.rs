//! Lambda `cognito-pre-signup`: the user pool's pre sign-up trigger.

use functions::cognito::pre_signup;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = &functions::store_from_env().await;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Boxed: the store future nests deeper than the compiler's layout limit.
            Box::pin(pre_signup(store, event.payload))
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
