//! Lambda `messaging-stream`: the table's DynamoDB stream → inbox rows.

use aws_lambda_events::dynamodb::Event;
use functions::batch::Deadline;
use functions::emf::MetricsLog;
use functions::inbox_rows::InboxRowMover;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // One handler per execution environment: it remembers where it put each
    // conversation's rows, so the next batch usually moves them in one request.
    let handler = &InboxRowMover::new(functions::store_from_env().await);
    let metrics = &MetricsLog::from_env("messaging-stream");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let deadline = Deadline::from_system_time(event.context.deadline());
        let (response, summary) = handler.handle_until(&event.payload, Some(deadline)).await;
        metrics.print(&summary);
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
