//! Lambda `get-user-short`: `GET /api/users/@{handle}/short`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::GetUserShort).await
}
