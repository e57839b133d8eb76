//! Lambda `messaging-push`: the table's DynamoDB stream → WebSocket frames to every live
//! connection of every member of the conversation.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use aws_lambda_events::dynamodb::Event;
use functions::batch::Deadline;
use functions::emf::MetricsLog;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let handler = &functions::push_from_env().await?;
    let metrics = &MetricsLog::from_env("messaging-push");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let deadline = Deadline::from_system_time(event.context.deadline());
        let (response, summary) = handler.handle_until(&event.payload, Some(deadline)).await;
        metrics.print(&summary);
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
