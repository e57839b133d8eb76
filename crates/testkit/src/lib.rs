//! Test support for every crate's tests, `make bench` and `cruddur dev --like-aws`, never
//! for a Lambda: each test gets its own table on one shared DynamoDB Local ([`TestTable`]),
//! and where DynamoDB Local is kinder than DynamoDB, DynamoDB's documented behaviour is
//! played:
//!
//! - [`LaggingIndex`]: an eventually consistent group index (an SDK interceptor);
//! - [`RejectRepeatedKeys`]: transaction validation, on every test table's client;
//! - [`RefusingClient`]: throttling and transaction conflicts (an HTTP client for the SDK);
//! - [`FailRequests`]: chosen requests failing as the network or DynamoDB would fail them;
//! - [`RecordRequests`]: what the SDK sent, for assertions on the requests themselves;
//! - [`RecordFunctionCalls`]: what each function asked of AWS, as IAM authorizes it, for
//!   `scripts/check-iam.sh` (on every test table's client).
//!
//! The index and the refusals also play at a rate ([`LaggingIndex::at_rate`],
//! [`RefusingClient::refuse_at_rate`], drawing from a seeded [`Chance`]): how `cruddur dev
//! --like-aws` puts them into the running local stack.

mod chance;
pub mod consumed_capacity;
mod failing_requests;
mod iam_calls;
mod index_lag;
mod recording;
mod refusals;
mod table;
mod transaction_rules;

pub use chance::Chance;
pub use failing_requests::{FailRequests, Failure};
pub use iam_calls::{
    AsFunction, Authorization, CALLS_DIR_ENV, RecordFunctionCalls, as_function, current_function,
    dynamodb_authorizations, key_prefix, management_authorization, resource_family,
};
pub use index_lag::{IndexFault, LaggingIndex};
pub use recording::{RecordRequests, SentRequest};
pub use refusals::{Refusal, RefusingClient};
pub use table::{ENDPOINT_ENV, TestTable, endpoint};
pub use transaction_rules::RejectRepeatedKeys;
