//! Lambda `list-message-groups`: `GET /api/message_groups`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::ListMessageGroups).await
}
