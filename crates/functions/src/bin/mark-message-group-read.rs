//! Lambda `mark-message-group-read`: `POST /api/message_groups/{message_group_uuid}/read`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::MarkMessageGroupRead).await
}
