//! Lambda `messaging-push`: the table's DynamoDB stream → WebSocket frames to every live
//! connection of every member of the conversation.

// The SDK futures inside tracing layers nest deeper than the default limit.
#![recursion_limit = "256"]

use std::time::SystemTime;

use aws_lambda_events::dynamodb::Event;
use functions::stream::{Deadline, METRICS_NAMESPACE};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let handler = &functions::push_from_env().await?;
    let function_name =
        &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "messaging-push".into());
    let log_level = &std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let deadline = Deadline::from_system_time(event.context.deadline());
        let (response, summary) = handler.handle_until(&event.payload, Some(deadline)).await;
        // Embedded metric format: CloudWatch reads metrics from this stdout line.
        println!(
            "{}",
            summary.to_emf(
                METRICS_NAMESPACE,
                function_name,
                SystemTime::now(),
                log_level.as_deref()
            )
        );
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
