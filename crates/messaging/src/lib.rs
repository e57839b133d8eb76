//! Cruddur Messaging: the domain and the DynamoDB store, free of any Lambda concern.
//!
//! - [`keys`], [`timestamp`], [`model`], [`validate`], [`page`]: pure domain logic.
//! - [`schema`]: the table definition, the one source of truth.
//! - [`store`]: every access pattern over `aws-sdk-dynamodb`.
//! - [`connect`], [`metrics`]: building clients, counting requests.
//! - [`migration`]: what a table written by the original system needs (pure planning).

pub mod coalesce;
pub mod connect;
pub mod keys;
pub mod metrics;
pub mod migration;
pub mod model;
pub mod page;
pub mod schema;
pub mod store;
pub mod timestamp;
pub mod validate;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use model::{InboxEntry, Message, User, UserSummary};
pub use page::{Page, PageRequest};
pub use store::{Store, StoreError};
pub use timestamp::Timestamp;
