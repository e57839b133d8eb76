//! Lambda `add-message-group-members`: `POST /api/message_groups/{message_group_uuid}/members`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::AddMessageGroupMembers).await
}
