//! Lambda `messaging-stream`: the table's DynamoDB stream → inbox rows.

use std::time::SystemTime;

use aws_lambda_events::dynamodb::Event;
use functions::stream::{Deadline, METRICS_NAMESPACE, StreamHandler};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // One handler per execution environment: it remembers where it put each
    // conversation's rows, so the next batch usually moves them in one request.
    let handler = &StreamHandler::new(functions::store_from_env().await);
    let function_name =
        &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "messaging-stream".into());
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
