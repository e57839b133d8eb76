//! Lambda `list-message-group-members`: `GET /api/message_groups/{message_group_uuid}/members`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::ListMessageGroupMembers).await
}
