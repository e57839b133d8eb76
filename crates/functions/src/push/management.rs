//! The API Gateway Management API, as the push uses it: clients with the SDK's retries off,
//! `PostToConnection` retried here instead, bounded and counted, and `DeleteConnection` for
//! connections past their expiry.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::Client as ManagementClient;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use uuid::Uuid;

/// How a post is retried before it is given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostRetry {
    /// Attempts per post, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubled each time, with jitter.
    pub base_backoff: Duration,
}

impl Default for PostRetry {
    /// Four attempts over at most ~0.4 s: API Gateway's throttling is per account and
    /// region (a token bucket) and clears within that when it is a burst; beyond it, the
    /// frame is late anyway and the client catches up by reading.
    fn default() -> Self {
        Self {
            attempts: 4,
            base_backoff: Duration::from_millis(25),
        }
    }
}

/// The Management API client for `endpoint`, built from the environment's SDK
/// configuration. The SDK's own retries are off: [`super::PushHandler`] retries throttled
/// posts itself, bounded and counted.
pub fn management_client(sdk_config: &aws_config::SdkConfig, endpoint: &str) -> ManagementClient {
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk_config)
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .timeout_config(post_timeouts())
        .build();
    ManagementClient::from_conf(config)
}

/// The Management API client for a local stand-in at `endpoint`, with the dummy
/// credentials and region of every local client.
pub fn local_management_client(endpoint: &str) -> ManagementClient {
    ManagementClient::from_conf(local_management_config(endpoint).build())
}

/// The configuration of [`local_management_client`], to extend (interceptors) first.
pub fn local_management_config(endpoint: &str) -> aws_sdk_apigatewaymanagement::config::Builder {
    aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_apigatewaymanagement::config::Region::new(
            messaging::connect::LOCAL_REGION,
        ))
        .credentials_provider(messaging::connect::local_credentials())
        .retry_config(RetryConfig::disabled())
        .timeout_config(post_timeouts())
}

/// A post is small and its endpoint regional: a stuck one must not hold the conversation.
fn post_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .build()
}

/// How posting one frame to one connection ended (the push's posts, `ws-typing`'s, and
/// presence's frames from `ws-connect` and `ws-disconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Posted {
    Delivered,
    Gone,
    Failed,
}

/// `PostToConnection`, retried on throttling and transient failures; `throttled` hears of
/// every throttled attempt as it happens.
pub(crate) async fn post(
    management: &ManagementClient,
    retry: PostRetry,
    connection_id: &str,
    frame: &[u8],
    throttled: impl Fn(),
) -> Posted {
    for attempt in 1..=retry.attempts {
        let result = management
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(frame))
            .send()
            .await;
        let retryable = match result {
            Ok(_) => return Posted::Delivered,
            Err(SdkError::ServiceError(error)) => {
                let status = error.raw().status().as_u16();
                let error = error.err();
                if error.is_gone_exception() || status == 410 {
                    return Posted::Gone;
                }
                if error.is_limit_exceeded_exception() || status == 429 {
                    throttled();
                    true
                } else {
                    // 5xx may pass; Forbidden or a frame too large will not.
                    status >= 500
                }
            }
            // No answer (connection refused, timeout): the endpoint may recover.
            Err(SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => true,
            Err(_) => false,
        };
        if !retryable {
            tracing::warn!(connection = %connection_id, "post refused; skipping");
            return Posted::Failed;
        }
        if attempt < retry.attempts {
            tokio::time::sleep(backoff(retry.base_backoff, attempt)).await;
        }
    }
    tracing::warn!(connection = %connection_id, attempts = retry.attempts, "post still failing after its retries; skipping");
    Posted::Failed
}

/// How closing a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    Closed,
    /// 410: API Gateway had closed it already.
    AlreadyGone,
    Failed,
}

/// `DeleteConnection`, once: API Gateway closes the socket and runs `$disconnect`. A
/// failure is left to the next batch that finds the connection (it gets no frame meanwhile),
/// or to the user's next `$connect` when it closes the oldest beyond the cap.
pub(crate) async fn delete(management: &ManagementClient, connection_id: &str) -> Deleted {
    match management
        .delete_connection()
        .connection_id(connection_id)
        .send()
        .await
    {
        Ok(_) => Deleted::Closed,
        Err(SdkError::ServiceError(error))
            if error.err().is_gone_exception() || error.raw().status().as_u16() == 410 =>
        {
            Deleted::AlreadyGone
        }
        Err(error) => {
            tracing::warn!(connection = %connection_id, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error), "could not close a connection");
            Deleted::Failed
        }
    }
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1 << (attempt - 1).min(10));
    let jitter_percent = u32::from(Uuid::new_v4().as_bytes()[0]) % 50;
    exponential + exponential * jitter_percent / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(20);
        for attempt in 1..=4 {
            let wait = backoff(base, attempt);
            let floor = base * (1 << (attempt - 1));
            assert!(wait >= floor && wait < floor * 3 / 2, "{attempt}: {wait:?}");
        }
    }
}
