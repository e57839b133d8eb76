//! Lambda `messaging-stream`: the table's DynamoDB stream → inbox rows.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::dynamodb::Event;
use functions::stream::StreamHandler;
use lambda_runtime::{LambdaEvent, service_fn};

const METRICS_NAMESPACE: &str = "CruddurMessaging";

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let handler = &StreamHandler::new(functions::store_from_env().await);
    let function_name =
        &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "messaging-stream".into());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let (response, summary) = handler.handle(&event.payload).await;
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        // Embedded metric format: CloudWatch reads metrics from this stdout line.
        println!(
            "{}",
            summary.to_emf(METRICS_NAMESPACE, function_name, epoch_ms)
        );
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
