//! Test support for every crate's tests (and `make bench`), never for a Lambda: each test
//! gets its own table on one shared DynamoDB Local ([`TestTable`]), and where DynamoDB Local
//! is kinder than DynamoDB, DynamoDB's documented behaviour is played:
//!
//! - [`LaggingIndex`]: an eventually consistent group index (an SDK interceptor);
//! - [`RejectRepeatedKeys`]: transaction validation, on every test table's client;
//! - [`RefusingClient`]: throttling and transaction conflicts (an HTTP client for the SDK);
//! - [`FailRequests`]: chosen requests failing as the network or DynamoDB would fail them;
//! - [`RecordRequests`]: what the SDK sent, for assertions on the requests themselves.

pub mod consumed_capacity;
mod failing_requests;
mod index_lag;
mod recording;
mod refusals;
mod table;
mod transaction_rules;

pub use failing_requests::{FailRequests, Failure};
pub use index_lag::{IndexFault, LaggingIndex};
pub use recording::{RecordRequests, SentRequest};
pub use refusals::{Refusal, RefusingClient};
pub use table::{ENDPOINT_ENV, TestTable, endpoint};
pub use transaction_rules::RejectRepeatedKeys;
