//! Lambda `list-messages`: `GET /api/messages/{message_group_uuid}`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::ListMessages).await
}
