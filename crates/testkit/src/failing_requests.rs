//! Requests that fail on purpose: those of one operation that mention a text (a
//! conversation's uuid, an owner's key), so a test fails one conversation of a batch and sees
//! what the caller makes of it. A failed request never reaches DynamoDB Local, so nothing
//! of it is written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::transaction_rules::validation_exception;

/// How a chosen request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// As a network failure would: no reply at all (the SDK's dispatch failure), which
    /// callers take for a transient failure.
    Network,
    /// As DynamoDB answers a request it refuses: HTTP 400 `ValidationException`, which
    /// sending the same request again cannot cure.
    Rejected,
}

/// An SDK interceptor failing every request of one operation whose body mentions a text,
/// until [`FailRequests::heal`]. Clones share the text and the count.
#[derive(Debug, Clone)]
pub struct FailRequests {
    operation: &'static str,
    failure: Failure,
    needle: Arc<Mutex<Option<String>>>,
    failed: Arc<AtomicUsize>,
}

impl FailRequests {
    /// Fails every `operation` (e.g. "TransactWriteItems") whose request mentions `text`.
    pub fn mentioning(operation: &'static str, text: impl Into<String>, failure: Failure) -> Self {
        Self {
            operation,
            failure,
            needle: Arc::new(Mutex::new(Some(text.into()))),
            failed: Arc::default(),
        }
    }

    /// From now on, let everything through.
    pub fn heal(&self) {
        *self.lock() = None;
    }

    /// How many request attempts were failed.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    /// The text `request` mentions, when it is to fail.
    fn chosen(&self, request: &HttpRequest, cfg: &ConfigBag) -> Option<String> {
        let is_operation = cfg
            .load::<Metadata>()
            .is_some_and(|metadata| metadata.name() == self.operation);
        let needle = self.lock().clone().filter(|_| is_operation)?;
        let body = request.body().bytes().unwrap_or_default();
        body.windows(needle.len())
            .any(|window| window == needle.as_bytes())
            .then_some(needle)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.needle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks an attempt whose reply is to be DynamoDB's refusal.
#[derive(Debug, Clone)]
struct Refused(bool);

impl Storable for Refused {
    type Storer = StoreReplace<Self>;
}

impl Intercept for FailRequests {
    fn name(&self) -> &'static str {
        "FailRequests"
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.failure != Failure::Network {
            return Ok(());
        }
        match self.chosen(context.request(), cfg) {
            Some(needle) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                Err(format!("injected failure: {} mentions {needle}", self.operation).into())
            }
            None => Ok(()),
        }
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let refused =
            self.failure == Failure::Rejected && self.chosen(context.request(), cfg).is_some();
        cfg.interceptor_state().store_put(Refused(refused));
        if refused {
            // Empty, so DynamoDB Local refuses it too and writes nothing.
            let request = context.request_mut();
            *request.body_mut() = SdkBody::from("{}");
            request.headers_mut().insert("content-length", "2");
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Refused>().is_some_and(|refused| refused.0) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            *context.response_mut() = validation_exception("injected: request refused")?;
        }
        Ok(())
    }
}
