//! Lambda `mark-message-group-read`: `POST /api/message_groups/{message_group_uuid}/read`.

use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let api = &functions::api_from_env().await;
    lambda_http::run(service_fn(move |request: Request| {
        api.mark_message_group_read(request)
    }))
    .await
}
