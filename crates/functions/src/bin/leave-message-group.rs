//! Lambda `leave-message-group`: `POST /api/message_groups/{message_group_uuid}/leave`.

use functions::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_route(Route::LeaveMessageGroup).await
}
