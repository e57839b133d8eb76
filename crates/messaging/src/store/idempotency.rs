//! Sends a client names (`client_message_id`): a repeat within a day answers what the first
//! answered and writes nothing, so a client may retry a send whose reply it lost.
//!
//! The first send puts a record (`IDEM#<sender>` / `<client_message_id>`: the request's
//! hash and the answer: conversation, message uuid, `created_at`) in its own
//! `TransactWriteItems`, conditioned on the key being free (or holding an expired record
//! the TTL has not removed yet). A first send costs no extra request, only one more item. A
//! repeat's transaction is cancelled by that condition, whatever else it would have done:
//! the record's reason is looked at before every other (the rate-limit window, the block
//! checks, the membership, a key collision), so a repeat is never charged (a cancelled
//! transaction writes nothing) and never refused for a full window or a block placed since.
//! Only then, on the repeat path alone, one strongly consistent `GetItem` reads the record:
//! the same hash answers the stored reply, another hash is
//! [`StoreError::ClientMessageIdReused`].
//!
//! The hash covers what the request asks for (its fields, as the caller passes them), not
//! the time of the attempt, so a retry of a send that timed out after DynamoDB committed it
//! finds its own record and answers the original reply.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::requests::Cancelled;
use super::{MEMBERS_IN_CREATING_TRANSACTION, Store, StoreError, from_item, key_item, to_item};
use crate::items::SendRecordItem;
use crate::keys::{self, Key};
use crate::model::{Message, User};
use crate::schema::TTL_ATTRIBUTE;
use crate::timestamp::Timestamp;
use crate::validate::{GroupName, MessageText};

/// How long a send record answers repeats: a day, as the issue asks.
pub const SEND_RECORD_SECONDS: i64 = 24 * 60 * 60;

/// A client's id for one send, with what that send asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessageId {
    id: Uuid,
    request_hash: String,
}

impl ClientMessageId {
    /// `id` naming the request made of `fields` (in a fixed order; each field is
    /// length-prefixed, so no two lists of fields hash alike by concatenation).
    pub fn new(id: Uuid, fields: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for field in fields {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        Self {
            id,
            request_hash: URL_SAFE_NO_PAD.encode(hasher.finalize()),
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }
}

/// The send record of one send, to ride in the transaction that sends (or nothing, for a
/// send without a `client_message_id`).
#[derive(Debug, Clone)]
pub(crate) struct Once {
    record: Option<Record>,
    /// Where the put sits in the transaction last built.
    index: Option<usize>,
    /// The send (a group creation) has a second transaction still to come.
    pub(crate) unfinished: bool,
}

#[derive(Debug, Clone)]
struct Record {
    table: Arc<str>,
    key: Key,
    request_hash: String,
    /// Epoch seconds of the send: an older record than a day is free to overwrite.
    now: i64,
}

impl Once {
    pub(crate) fn none() -> Self {
        Self {
            record: None,
            index: None,
            unfinished: false,
        }
    }

    pub(crate) fn is_named(&self) -> bool {
        self.record.is_some()
    }

    /// Appends the record of `message` (as this attempt writes it) to a transaction's items,
    /// remembering its position.
    pub(crate) fn add_to(
        &mut self,
        items: &mut Vec<TransactWriteItem>,
        message: &Message,
    ) -> Result<(), StoreError> {
        let Some(record) = &self.record else {
            return Ok(());
        };
        let item = SendRecordItem {
            pk: record.key.pk.clone(),
            sk: record.key.sk.clone(),
            request_hash: record.request_hash.clone(),
            group_uuid: message.group_uuid,
            message_uuid: message.uuid,
            created_at: message.created_at.clone(),
            expires_at: record.now + SEND_RECORD_SECONDS,
            unfinished: self.unfinished,
        };
        let put = Put::builder()
            .table_name(&*record.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression("attribute_not_exists(pk) OR #expires < :now")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", AttributeValue::N(record.now.to_string()))
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        self.index = Some(items.len());
        items.push(TransactWriteItem::builder().put(put).build());
        Ok(())
    }

    /// Whether the record's condition cancelled the transaction: this id was sent before.
    pub(crate) fn repeated(&self, cancelled: &Cancelled) -> bool {
        self.index
            .is_some_and(|index| cancelled.condition_failed(index))
    }

    /// For the second transaction of a group creation: the record says it is finished.
    pub(crate) fn finishing(&self) -> Result<Option<TransactWriteItem>, StoreError> {
        let Some(record) = self.record.as_ref().filter(|_| self.unfinished) else {
            return Ok(None);
        };
        let update = Update::builder()
            .table_name(&*record.table)
            .set_key(Some(key_item(&record.key)))
            .update_expression("REMOVE #unfinished")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#unfinished", UNFINISHED_ATTRIBUTE)
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }
}

const UNFINISHED_ATTRIBUTE: &str = "unfinished";

/// What a send named by a client found.
pub(crate) enum Repeat {
    /// The same request: its first answer.
    Answer(Message),
    /// The same request, a group creation whose second transaction has not landed: its
    /// answer once the repeat has finished it.
    Unfinished(Message),
    /// No live record any more (it expired meanwhile): send again.
    Gone,
}

impl Store {
    /// Sends `text` into `group` once per `client_message_id` (see the module): pattern C
    /// with the send record in its transaction.
    #[tracing::instrument(skip(self, sender, text, client_message_id), fields(table = %self.table, sender = %sender.uuid, client_message_id = %client_message_id.id), err(level = "debug"))]
    pub async fn append_message_once(
        &self,
        sender: &User,
        group: Uuid,
        text: MessageText,
        now: Timestamp,
        client_message_id: &ClientMessageId,
    ) -> Result<Message, StoreError> {
        let message = Message::new(group, sender.summary(), text.into_string(), now.to_string());
        let once = self.once(sender.uuid, Some(client_message_id), now);
        self.append(sender.uuid, message, now, once).await
    }

    /// Sends `text` to `recipient` once per `client_message_id`: pattern D with the send
    /// record in the transaction that appends or starts the conversation.
    #[tracing::instrument(skip(self, sender, recipient, text, client_message_id), fields(table = %self.table, sender = %sender.uuid, recipient = %recipient.uuid, client_message_id = %client_message_id.id), err(level = "debug"))]
    pub async fn send_to_user_once(
        &self,
        sender: &User,
        recipient: &User,
        text: MessageText,
        now: Timestamp,
        client_message_id: &ClientMessageId,
    ) -> Result<Message, StoreError> {
        self.send_to_user_named(
            sender,
            recipient,
            text,
            now,
            Uuid::new_v4(),
            Some(client_message_id),
        )
        .await
    }

    /// Creates a group once per `client_message_id`: the record rides in the creating
    /// transaction, which then holds one member fewer (48: 2 × 48 + 1 items, the record and
    /// the creator's window make 99), so a group of 49 or 50 gets its last members in the
    /// second transaction (see [`Store::create_group`]).
    #[tracing::instrument(skip(self, creator, name, others, text, client_message_id), fields(table = %self.table, creator = %creator.uuid, others = others.len(), client_message_id = %client_message_id.id), err(level = "debug"))]
    pub async fn create_group_once(
        &self,
        creator: &User,
        name: &GroupName,
        others: &[User],
        text: MessageText,
        now: Timestamp,
        client_message_id: &ClientMessageId,
    ) -> Result<Message, StoreError> {
        self.create_group_named(
            creator,
            name,
            others,
            text,
            now,
            Uuid::new_v4(),
            Some(client_message_id),
        )
        .await
    }

    /// The send record of `sender`'s send at `now`, if the client named it.
    pub(crate) fn once(
        &self,
        sender: Uuid,
        client_message_id: Option<&ClientMessageId>,
        now: Timestamp,
    ) -> Once {
        Once {
            record: client_message_id.map(|named| Record {
                table: Arc::clone(&self.table),
                key: keys::send_record(sender, named.id),
                request_hash: named.request_hash.clone(),
                now: epoch_seconds(now),
            }),
            index: None,
            unfinished: false,
        }
    }

    /// The first answer to a send `once` names, read after the record's condition refused
    /// `attempted` (strongly consistent: the record may be milliseconds old, written by a
    /// duplicate sent at the same time). `attempted` gives what the record does not store,
    /// because a same-hash request has it too: the text and the sender.
    pub(crate) async fn repeated_send(
        &self,
        once: &Once,
        attempted: &Message,
    ) -> Result<Repeat, StoreError> {
        let Some(record) = &once.record else {
            return Ok(Repeat::Gone);
        };
        let Some(item) = self.get_item("GetItem", &record.key, true).await? else {
            return Ok(Repeat::Gone);
        };
        let stored: SendRecordItem = from_item(item)?;
        if stored.expires_at < record.now {
            return Ok(Repeat::Gone);
        }
        if stored.request_hash != record.request_hash {
            return Err(StoreError::ClientMessageIdReused);
        }
        tracing::info!(message_uuid = %stored.message_uuid, unfinished = stored.unfinished, "a repeated send: the first answer");
        let first = Message {
            life: Default::default(),
            group_uuid: stored.group_uuid,
            uuid: stored.message_uuid,
            text: attempted.text.clone(),
            created_at: stored.created_at,
            sender: attempted.sender.clone(),
        };
        Ok(if stored.unfinished {
            Repeat::Unfinished(first)
        } else {
            Repeat::Answer(first)
        })
    }
}

fn epoch_seconds(at: Timestamp) -> i64 {
    at.as_datetime().unix_timestamp()
}

// A named group creation's first transaction: 2 × 48 + 1 items, the record and the window.
const _: () = assert!(2 * (MEMBERS_IN_CREATING_TRANSACTION - 1) + 1 + 2 <= 100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_of_the_fields_and_their_bounds() {
        let id = Uuid::from_u128(7);
        let a = ClientMessageId::new(id, &["message", "group:1", "hello"]);
        assert_eq!(
            a,
            ClientMessageId::new(id, &["message", "group:1", "hello"])
        );
        assert_ne!(
            a.request_hash,
            ClientMessageId::new(id, &["message", "group:1", "hellO"]).request_hash
        );
        // Moving text across a field boundary is another request.
        assert_ne!(
            ClientMessageId::new(id, &["ab", "c"]).request_hash,
            ClientMessageId::new(id, &["a", "bc"]).request_hash
        );
        // SHA-256, base64url without padding: 43 characters.
        assert_eq!(a.request_hash.len(), 43);
    }
}
