//! `cruddur dev --like-aws`: what DynamoDB does and DynamoDB Local does not, played inside
//! the running stack at a small rate by the testkit's interceptors (the ones the store's
//! tests run on), so a frontend developer meets locally what AWS will answer:
//!
//! - throttling: `ProvisionedThroughputExceededException` on any data request, which the
//!   SDK retries with backoff ("Error handling with DynamoDB",
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html>);
//! - transaction conflicts: a `TransactWriteItems` cancelled with `TransactionConflict`, and a
//!   single-item write refused with `TransactionConflictException` ("Transaction conflict
//!   handling in DynamoDB",
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html>),
//!   which the store retries or answers `503 ["service_busy"]` for;
//! - a lagging group index: rows written in the last moment missing, shown where they were,
//!   or beside their ghost ("Reading data from a global secondary index",
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads>);
//! - and always, a transaction naming one item twice refused with `ValidationException`
//!   before its conditions are evaluated
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>).
//!
//! A refused request never reaches DynamoDB Local, as DynamoDB writes nothing it refuses.

use std::fmt;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use messaging::connect::local_config;
use testkit::{Chance, LaggingIndex, Refusal, RefusingClient, RejectRepeatedKeys};

use crate::websocket::WsTimeouts;

/// How often each behaviour is played.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LikeAwsRates {
    /// Share of writes refused for a transaction in the way.
    pub conflicts: f64,
    /// Share of requests throttled (each attempt drawn on its own).
    pub throttling: f64,
    /// Share of group index reads that lag, on the rows written within [`INDEX_LAG_WINDOW`].
    pub index_lag: f64,
    /// Where the draws start: the same seed draws the same sequence.
    pub seed: u64,
}

impl LikeAwsRates {
    pub const DEFAULT_CONFLICTS: f64 = 0.02;
    pub const DEFAULT_THROTTLING: f64 = 0.01;
    pub const DEFAULT_INDEX_LAG: f64 = 0.1;
}

impl Default for LikeAwsRates {
    fn default() -> Self {
        Self {
            conflicts: Self::DEFAULT_CONFLICTS,
            throttling: Self::DEFAULT_THROTTLING,
            index_lag: Self::DEFAULT_INDEX_LAG,
            seed: Chance::random_seed(),
        }
    }
}

/// API Gateway's WebSocket timeouts shortened so that they show within a session (idle
/// 1 minute instead of 10, at most 5 minutes instead of 2 hours): what `--like-aws` uses
/// unless `--ws-idle-timeout`/`--ws-max-duration` say otherwise.
pub const LIKE_AWS_WS_TIMEOUTS: WsTimeouts = WsTimeouts {
    idle: Duration::from_secs(60),
    max_duration: Duration::from_secs(5 * 60),
};

/// How long a written inbox row may lag in the group index: DynamoDB's "fraction of a
/// second, under normal conditions", rounded up.
pub const INDEX_LAG_WINDOW: Duration = Duration::from_secs(1);

/// Every operation the store sends that DynamoDB may throttle.
const DATA_OPERATIONS: [&str; 9] = [
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "TransactGetItems",
];
/// The single-item writes DynamoDB refuses while a transaction changes their item.
const SINGLE_ITEM_WRITES: [&str; 3] = ["PutItem", "UpdateItem", "DeleteItem"];

/// The behaviours of `--like-aws`, for one stack. Clones share their counters.
#[derive(Debug, Clone)]
pub struct LikeAws {
    rates: LikeAwsRates,
    refusals: RefusingClient,
    index: LaggingIndex,
}

impl LikeAws {
    pub fn new(rates: LikeAwsRates) -> Self {
        let refusals = RefusingClient::seeded(rates.seed);
        // Throttling is drawn first: a throttled request is refused before DynamoDB
        // would look at the transactions on its items.
        for operation in DATA_OPERATIONS {
            refusals.refuse_at_rate(operation, Refusal::Throttling, rates.throttling);
        }
        refusals.refuse_at_rate(
            "TransactWriteItems",
            Refusal::TransactionConflict,
            rates.conflicts,
        );
        for operation in SINGLE_ITEM_WRITES {
            refusals.refuse_at_rate(operation, Refusal::ItemInTransaction, rates.conflicts);
        }
        // Another sequence than the refusals', from the same seed.
        let index = LaggingIndex::at_rate(
            rates.index_lag,
            INDEX_LAG_WINDOW,
            rates.seed.rotate_left(32) ^ 0x5DEE_CE66,
        );
        Self {
            rates,
            refusals,
            index,
        }
    }

    pub fn rates(&self) -> LikeAwsRates {
        self.rates
    }

    /// A DynamoDB client for DynamoDB Local at `endpoint_url` that meets these behaviours.
    /// The SDK's retry settings stay its defaults, as in a Lambda.
    pub fn client(&self, endpoint_url: &str) -> aws_sdk_dynamodb::Client {
        let config = local_config(endpoint_url)
            .http_client(self.refusals.clone())
            .interceptor(self.index.clone())
            .interceptor(RejectRepeatedKeys::new())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// What was played so far.
    pub fn injected(&self) -> Injected {
        Injected {
            transaction_conflicts: self.refusals.refused_as(Refusal::TransactionConflict),
            item_in_transaction: self.refusals.refused_as(Refusal::ItemInTransaction),
            throttles: self.refusals.refused_as(Refusal::Throttling),
            index_reads: self.index.reads() as u64,
            lagged_index_reads: self.index.lagged() as u64,
        }
    }

    /// `GET /_dev/like-aws`: [`Injected`] as JSON, for a developer or a test to look at.
    pub fn router(&self) -> Router {
        let like_aws = self.clone();
        Router::new().route(
            "/_dev/like-aws",
            get(move || {
                let injected = like_aws.injected();
                async move { axum::Json(injected) }
            }),
        )
    }
}

impl fmt::Display for LikeAws {
    /// The behaviours that are on, in a developer's words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tenths of a percent: 0.07 * 100.0 is 7.000000000000001.
        let percent = |rate: f64| (rate * 1000.0).round() / 10.0;
        write!(
            f,
            "transaction conflicts on {}% of writes, throttling on {}% of DynamoDB requests, \
             a lagging group index on {}% of its reads (rows written in the last {} ms), seed {}",
            percent(self.rates.conflicts),
            percent(self.rates.throttling),
            percent(self.rates.index_lag),
            INDEX_LAG_WINDOW.as_millis(),
            self.rates.seed
        )
    }
}

/// Counts of what `--like-aws` played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Injected {
    /// `TransactWriteItems` cancelled with `TransactionConflict`.
    pub transaction_conflicts: u64,
    /// Single-item writes refused with `TransactionConflictException`.
    pub item_in_transaction: u64,
    /// Requests refused with `ProvisionedThroughputExceededException` (each attempt).
    pub throttles: u64,
    /// Group index reads.
    pub index_reads: u64,
    /// Group index reads answered as a lagging index would.
    pub lagged_index_reads: u64,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} transaction conflicts, {} single-item writes refused for a transaction, \
             {} throttles, {} of {} group index reads lagged",
            self.transaction_conflicts,
            self.item_in_transaction,
            self.throttles,
            self.lagged_index_reads,
            self.index_reads
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_behaviours_are_described_with_their_rates_and_seed() {
        let like_aws = LikeAws::new(LikeAwsRates {
            conflicts: 0.02,
            throttling: 0.01,
            index_lag: 0.1,
            seed: 7,
        });
        let described = like_aws.to_string();
        for part in [
            "conflicts on 2% of writes",
            "throttling on 1% of",
            "index on 10% of its reads",
            "1000 ms",
            "seed 7",
        ] {
            assert!(described.contains(part), "{part}: {described}");
        }
        assert_eq!(
            like_aws.injected().to_string(),
            "0 transaction conflicts, 0 single-item writes refused for a transaction, \
             0 throttles, 0 of 0 group index reads lagged"
        );
    }
}
