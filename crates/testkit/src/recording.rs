//! A recorder of what the SDK sends, so a test can assert what was asked (say, a strongly
//! consistent read) rather than what came back.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde_json::Value;

/// One request attempt as sent: the operation and its JSON body.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub operation: String,
    pub body: Value,
}

/// An interceptor keeping every attempt's operation and JSON body.
#[derive(Debug, Clone, Default)]
pub struct RecordRequests {
    sent: Arc<Mutex<Vec<SentRequest>>>,
}

impl RecordRequests {
    pub fn new() -> Self {
        Self::default()
    }

    /// The attempts of `operation`, in order.
    pub fn of(&self, operation: &str) -> Vec<SentRequest> {
        self.lock()
            .iter()
            .filter(|sent| sent.operation == operation)
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SentRequest>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Intercept for RecordRequests {
    fn name(&self) -> &'static str {
        "RecordRequests"
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or_else(|| "unknown".to_owned(), |m| m.name().to_owned());
        let bytes = context.request().body().bytes().unwrap_or_default();
        let body = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        self.lock().push(SentRequest { operation, body });
        Ok(())
    }
}
