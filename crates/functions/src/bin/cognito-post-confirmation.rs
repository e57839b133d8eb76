//! Lambda `cognito-post-confirmation`: the user pool's post-confirmation trigger.

use functions::cognito::post_confirmation;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = &functions::store_from_env().await;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Boxed: the registration future nests deeper than the compiler's layout limit.
            Box::pin(post_confirmation(store, event.payload))
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
