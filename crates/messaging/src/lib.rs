//! Cruddur Messaging: the domain and the DynamoDB store, free of any Lambda concern.
//!
//! - [`validate`] (the leaf: input rules), [`timestamp`], [`page`], [`model`] (domain
//!   types), [`unread`] (unread counting), [`coalesce`], [`reactions`] (the emoji set,
//!   counts): pure domain logic.
//! - [`keys`], [`items`], [`message_id`]: how the domain is stored in the single table
//!   (a message's uuid carries its sort key).
//! - [`schema`]: the table definition, the one source of truth.
//! - [`store`]: every access pattern over `aws-sdk-dynamodb`.
//! - [`connect`], [`metrics`]: building clients, counting requests.
//! - [`migration`]: what a table written by the original system needs (pure planning).

pub mod coalesce;
pub mod connect;
pub mod items;
pub mod keys;
pub mod message_id;
pub mod metrics;
pub mod migration;
pub mod model;
pub mod page;
pub mod reactions;
pub mod schema;
pub mod store;
pub mod timestamp;
pub mod unread;
pub mod validate;

pub use model::{InboxEntry, Message, MessageLife, Reaction, User, UserSummary};
pub use page::{Page, PageRequest};
pub use store::{Store, StoreError};
pub use timestamp::Timestamp;
