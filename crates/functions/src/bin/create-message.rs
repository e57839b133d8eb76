//! Lambda `create-message`: `POST /api/messages`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::CreateMessage).await
}
