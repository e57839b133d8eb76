//! Throttling and transaction conflicts. DynamoDB Local never throttles and never cancels a
//! transaction for a conflict with another one. [`RefusingClient`] plays both: an HTTP client for the SDK that answers the
//! chosen operations itself, with DynamoDB's documented error replies, and sends every other
//! request on to DynamoDB Local. A refused request never reaches the table, as with
//! DynamoDB, so nothing is half-written behind the test's back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::RuntimeComponents;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use messaging::Store;
use messaging::connect::local_config;

use crate::chance::Chance;
use crate::table::{TestTable, endpoint};

/// How DynamoDB refuses a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// HTTP 400 `ProvisionedThroughputExceededException`: the table or a partition is over
    /// its capacity. The SDK retries it (with backoff) before giving up. See "Error handling
    /// with DynamoDB", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
    Throttling,
    /// HTTP 400 `TransactionCanceledException` with reason `TransactionConflict` on the
    /// first item: another transaction holds one of its items. Not retried by the SDK; the
    /// caller decides. Same page, "Transactional conflict handling" in
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
    TransactionConflict,
    /// HTTP 400 `TransactionConflictException`: a single-item `PutItem`, `UpdateItem` or
    /// `DeleteItem` on an item that a running `TransactWriteItems` is changing. DynamoDB
    /// Local serialises the two instead; the SDK does not retry it. "Transaction conflict
    /// handling in DynamoDB" in
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
    ItemInTransaction,
}

impl Refusal {
    fn index(self) -> usize {
        match self {
            Self::Throttling => 0,
            Self::TransactionConflict => 1,
            Self::ItemInTransaction => 2,
        }
    }

    fn response(self) -> HttpResponse {
        let body = match self {
            Self::Throttling => serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            }),
            Self::ItemInTransaction => serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                "message": "Transaction is ongoing for the item",
            }),
            Self::TransactionConflict => serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]",
                "CancellationReasons": [
                    {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
                    {"Code": "None"},
                ],
            }),
        };
        let mut response = HttpResponse::new(
            StatusCode::try_from(400).expect("400 is a status code"),
            SdkBody::from(body.to_string()),
        );
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        response
            .headers_mut()
            .insert("x-amzn-requestid", uuid::Uuid::new_v4().to_string());
        response
    }
}

/// An HTTP client that refuses chosen DynamoDB operations as DynamoDB would, and forwards
/// the rest to DynamoDB Local. Clones share their rules and counters.
#[derive(Debug, Clone)]
pub struct RefusingClient {
    inner: SharedHttpClient,
    rules: Arc<Mutex<HashMap<String, Rule>>>,
    refused: Arc<AtomicU64>,
    /// Refusals at a rate, for requests no count rule refuses: each drawn on its own from
    /// `chance`, in the order they were added; the first that hits refuses.
    rates: Arc<Mutex<Vec<RateRule>>>,
    chance: Chance,
    refused_by_kind: Arc<[AtomicU64; 3]>,
}

impl Default for RefusingClient {
    fn default() -> Self {
        Self::new()
    }
}

impl RefusingClient {
    pub fn new() -> Self {
        Self::seeded(Chance::random_seed())
    }

    /// A client whose rate-based refusals ([`RefusingClient::refuse_at_rate`]) draw from
    /// `seed`'s sequence.
    pub fn seeded(seed: u64) -> Self {
        Self {
            // DynamoDB Local speaks plain HTTP on loopback.
            inner: aws_smithy_http_client::Builder::new().build_http(),
            rules: Arc::default(),
            refused: Arc::default(),
            rates: Arc::default(),
            chance: Chance::seeded(seed),
            refused_by_kind: Arc::default(),
        }
    }

    /// From now on, refuse requests of `operation` with `refusal` at `rate` (0 to 1), as
    /// DynamoDB does now and then under load or beside other writers, rather than at a
    /// moment a test chose. Several rates on one operation draw each on its own.
    pub fn refuse_at_rate(&self, operation: &str, refusal: Refusal, rate: f64) {
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(RateRule {
                operation: operation.to_owned(),
                refusal,
                rate,
            });
    }

    /// How many requests were refused with `refusal` (each SDK attempt counts).
    pub fn refused_as(&self, refusal: Refusal) -> u64 {
        self.refused_by_kind[refusal.index()].load(Ordering::SeqCst)
    }

    /// From now on, answer every `operation` (e.g. "GetItem") with `refusal`.
    pub fn refuse(&self, operation: &str, refusal: Refusal) {
        self.lock().insert(
            operation.to_owned(),
            Rule {
                refusal,
                remaining: None,
            },
        );
    }

    /// Answer the next `times` requests of `operation` with `refusal`, then let it through:
    /// a transaction that was in the way has finished.
    pub fn refuse_times(&self, operation: &str, refusal: Refusal, times: u32) {
        self.lock().insert(
            operation.to_owned(),
            Rule {
                refusal,
                remaining: Some(times),
            },
        );
    }

    /// From now on, let everything through.
    pub fn allow_all(&self) {
        self.lock().clear();
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// How many requests were refused (each SDK attempt counts).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// A store on `table`'s table whose requests go through this client (and are counted by
    /// the table's request counter). The SDK's retry backoff starts at 1 ms instead of 1 s so
    /// the test does not wait for it; the number of attempts stays the SDK's default.
    pub fn store_for(&self, table: &TestTable) -> Store {
        let config = local_config(&endpoint())
            .http_client(self.clone())
            .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
            .interceptor(table.requests.clone())
            .interceptor(crate::RecordFunctionCalls::new())
            .build();
        Store::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            table.store.table(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Rule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The refusal for this request of `operation`, if any, counting it against its rule.
    fn refusal_for(&self, operation: &str) -> Option<Refusal> {
        let counted = {
            let mut rules = self.lock();
            rules
                .get_mut(operation)
                .and_then(|rule| match &mut rule.remaining {
                    None => Some(rule.refusal),
                    Some(0) => None,
                    Some(remaining) => {
                        *remaining -= 1;
                        Some(rule.refusal)
                    }
                })
        };
        counted.or_else(|| self.refusal_at_rate(operation))
    }

    fn refusal_at_rate(&self, operation: &str) -> Option<Refusal> {
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        rates
            .iter()
            .filter(|rule| rule.operation == operation)
            .find(|rule| self.chance.hits(rule.rate))
            .map(|rule| rule.refusal)
    }

    fn count(&self, refusal: Refusal) {
        self.refused.fetch_add(1, Ordering::SeqCst);
        self.refused_by_kind[refusal.index()].fetch_add(1, Ordering::SeqCst);
    }
}

/// An operation refused at a rate.
#[derive(Debug, Clone)]
struct RateRule {
    operation: String,
    refusal: Refusal,
    rate: f64,
}

/// How an operation is refused: always, or a number of times more.
#[derive(Debug, Clone, Copy)]
struct Rule {
    refusal: Refusal,
    remaining: Option<u32>,
}

impl HttpClient for RefusingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RefusingConnector {
            inner: self.inner.http_connector(settings, components),
            client: self.clone(),
        })
    }
}

#[derive(Debug)]
struct RefusingConnector {
    inner: SharedHttpConnector,
    client: RefusingClient,
}

impl HttpConnector for RefusingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // The JSON protocol names the operation in a header: `DynamoDB_20120810.GetItem`.
        let refusal = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .and_then(|operation| self.client.refusal_for(operation));
        match refusal {
            Some(refusal) => {
                self.client.count(refusal);
                HttpConnectorFuture::ready(Ok(refusal.response()))
            }
            None => self.inner.call(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_refuse_about_that_share_of_an_operations_requests_after_count_rules() {
        let client = RefusingClient::seeded(1);
        client.refuse_at_rate("UpdateItem", Refusal::Throttling, 0.1);
        client.refuse_at_rate("UpdateItem", Refusal::ItemInTransaction, 0.2);
        let refusals: Vec<Option<Refusal>> = (0..5000)
            .map(|_| client.refusal_for("UpdateItem"))
            .collect();
        let throttled = refusals
            .iter()
            .filter(|r| **r == Some(Refusal::Throttling))
            .count();
        let conflicted = refusals
            .iter()
            .filter(|r| **r == Some(Refusal::ItemInTransaction))
            .count();
        // 10% throttled; of the rest, 20% conflicted (18% of all).
        assert!((400..600).contains(&throttled), "{throttled}");
        assert!((750..1050).contains(&conflicted), "{conflicted}");
        assert_eq!(client.refusal_for("GetItem"), None, "no rule, no refusal");

        // A count rule comes first; once spent, the rates apply again.
        client.refuse_times("UpdateItem", Refusal::TransactionConflict, 3);
        for _ in 0..3 {
            assert_eq!(
                client.refusal_for("UpdateItem"),
                Some(Refusal::TransactionConflict)
            );
        }
        let after: Vec<_> = (0..1000)
            .map(|_| client.refusal_for("UpdateItem"))
            .collect();
        assert!(!after.contains(&Some(Refusal::TransactionConflict)));
        assert!(after.contains(&None) && after.contains(&Some(Refusal::Throttling)));
    }

    #[test]
    fn refusals_are_counted_by_kind() {
        let client = RefusingClient::seeded(2);
        client.count(Refusal::Throttling);
        client.count(Refusal::ItemInTransaction);
        client.count(Refusal::ItemInTransaction);
        assert_eq!(client.refused(), 3);
        assert_eq!(client.refused_as(Refusal::Throttling), 1);
        assert_eq!(client.refused_as(Refusal::ItemInTransaction), 2);
        assert_eq!(client.refused_as(Refusal::TransactionConflict), 0);
    }
}
