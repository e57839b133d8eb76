//! Lambda `create-message-group`: `POST /api/message_groups`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::CreateMessageGroup).await
}
