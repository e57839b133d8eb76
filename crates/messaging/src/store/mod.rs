//! The DynamoDB store: every access pattern of the brief, as methods of [`Store`].
//!
//! | pattern | method | requests |
//! |---|---|---|
//! | A: messages of a conversation | [`Store::list_messages`] | GetItem (consistent), then Query (member only) |
//! | B: a user's inbox | [`Store::list_inbox`] | Query ‖ Query (the owner's blocks: hidden direct rows) |
//! | C: append to a conversation | [`Store::append_message`] | TransactWriteItems |
//! | D: message a user by handle | [`Store::send_to_user`] | GetItem + TransactWriteItems |
//! | E: inbox rows follow the newest message, unread counts | [`Store::advance_conversation`] | TransactWriteItems where this environment knows the rows ([`RowPositions`]), else Query (GSI) + TransactWriteItems |
//! | E': inbox previews follow edits and deletes | [`Store::change_previews`] | Query (consistent, `MBR#`), then per member Query (consistent, none where the hint places the row) + UpdateItem where the row shows an older version |
//! | create a group | [`Store::create_group`] | BatchGetItem (blocks) + TransactWriteItems (+1 for a 50th member) |
//! | a conversation's members | [`Store::group_members`] | Query + BatchGetItem |
//! | a conversation's memberships | [`Store::memberships`], [`Store::recipients`] (for push) | Query (consistent) |
//! | add members / leave | [`Store::add_members`], [`Store::leave_group`] | Query ‖ Query (GSI) ‖ Query, then TransactWriteItems |
//! | mark read | [`Store::mark_read`], [`Store::read_messages`] (the newest page of A) | Query (GSI) + UpdateItem |
//! | users | [`Store::register_user`], [`Store::user_by_sub`], [`Store::user_by_handle`], [`Store::handle_taken`], [`Store::users_by_handles`] | one each |
//! | block, unblock, list blocks | [`Store::block`], [`Store::unblock`], [`Store::list_blocks`] | GetItem + TransactWriteItems; Query |
//! | WebSocket connections | [`Store::put_connection`], [`Store::delete_connection`], [`Store::connections_of`] (a user's) | one each |
//! | presence (`store/presence.rs`) | [`Store::presence_connected`], [`Store::presence_disconnected`] (the profile), [`Store::watch`], [`Store::watchers_of`] | UpdateItem; PutItem + UpdateItem (+ DeleteItem); Query |
//! | sends named by the client (`client_message_id`) | [`Store::append_message_once`], [`Store::send_to_user_once`], [`Store::create_group_once`] | none more: one more item in the send's transaction; a repeat: + GetItem |
//! | one message by its uuid (edit, delete, react start here) | [`Store::find_message`] | GetItem (consistent); the original system's uuids: Query the conversation, filtered |
//! | typing: membership and at most one per 2 s, at once | [`Store::claim_typing`] | UpdateItem (conditional) |
//! | react, unreact | [`Store::react`], [`Store::unreact`] | GetItem (consistent) + TransactWriteItems; a repeat: + GetItem, writes nothing |
//! | edit, delete for everyone (sender only) | [`Store::edit_message`], [`Store::delete_message`] | GetItem (consistent) + TransactWriteItems (membership check, `MSG#` update, limit) |
//! | per-user rate limits | [`Store::with_limits`]: sends (C, D) and group changes (create, add) | none: one more item in their own transaction |

mod admin;
mod blocks;
mod connections;
mod conversations;
mod edits;
mod error;
mod fanout;
mod groups;
mod idempotency;
mod inbox_index;
mod limits;
mod memberships;
mod messages;
mod migration;
mod presence;
mod previews;
mod reactions;
mod reads;
mod requests;
mod typing;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use admin::{TableStatus, list_tables};
pub use blocks::{BlockedUser, Blocking, Unblocking};
pub use error::{FailureKind, StoreError};
pub use fanout::{Advance, RowPositions};
pub use groups::{Added, MEMBERS_IN_CREATING_TRANSACTION};
pub use idempotency::{ClientMessageId, SEND_RECORD_SECONDS};
pub use limits::{Limited, Limits, RateLimit, Window};
pub use memberships::Member;
pub use migration::{Applied, Outcomes, Wrote};
pub use presence::{Presence, PresenceChange, Watch, Watching};
pub use previews::Previewed;
pub use reactions::Reacted;
pub use reads::{MarkedRead, ReadUpTo};
pub use typing::{TYPING_AT_ATTRIBUTE, TYPING_INTERVAL, TypingClaim};
pub use users::{HANDLE_RESERVATION_SECONDS, HandleReservation, NewUser, Registration};

use crate::keys::Key;
use crate::schema::{PARTITION_KEY, SORT_KEY};

/// One item of the table, as the SDK sends and receives it.
pub type Item = HashMap<String, AttributeValue>;

/// How many times a write is retried when a concurrent write or a same-microsecond
/// collision cancels its transaction. Collisions need one retry in practice.
const MAX_WRITE_ATTEMPTS: u32 = 8;

/// Cheap to clone: the SDK client is reference-counted.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: Arc<str>,
    /// Per-user limits on sends and group changes (none unless set: `with_limits`).
    limits: Limits,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: Arc::from(table.into()),
            limits: Limits::NONE,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

pub(crate) fn key_item(key: &Key) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_owned(), AttributeValue::S(key.pk.clone())),
        (SORT_KEY.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|err| StoreError::Encode(err.to_string()))
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => value.clone(),
        _ => String::from("?"),
    };
    let (pk, sk) = (text(PARTITION_KEY), text(SORT_KEY));
    serde_dynamo::from_item(item).map_err(|err| StoreError::CorruptItem {
        pk,
        sk,
        message: err.to_string(),
    })
}
