//! Finding one message by the address the API gives it, `{message_group_uuid}/{message_uuid}`:
//! what editing, deleting and reacting start from.

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::{Store, StoreError, from_item};
use crate::items::MessageItem;
use crate::keys::{self, Key};
use crate::message_id;
use crate::model::Message;

impl Store {
    /// Message `uuid` of conversation `group`, or `None`. Checks nothing about who asks:
    /// callers check membership (or authorship) in their own write.
    ///
    /// A uuid written here carries the message's `created_at`, its sort key
    /// ([`message_id`]): one strongly consistent `GetItem` (strongly, because a client may
    /// edit a message the moment it is sent). Any other uuid (the original system's
    /// UUIDv4s) is looked for by reading the conversation, newest first, with a filter on
    /// `message_uuid`: as many pages as it takes, paid by the partition's size. Only
    /// messages migrated from the original system pay that.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn find_message(
        &self,
        group: Uuid,
        uuid: Uuid,
    ) -> Result<Option<Message>, StoreError> {
        let item = match message_id::location(uuid) {
            Some(created_at) => {
                let key = Key::new(keys::message_pk(group), created_at.to_string());
                self.get_item("FindMessage", &key, true).await?
            }
            None => self.search_conversation(group, uuid).await?,
        };
        let Some(item) = item else {
            return Ok(None);
        };
        let item: MessageItem = from_item(item)?;
        if item.message_uuid != uuid {
            return Ok(None);
        }
        Ok(item.into_message())
    }

    async fn search_conversation(
        &self,
        group: Uuid,
        uuid: Uuid,
    ) -> Result<Option<super::Item>, StoreError> {
        let mut start_key = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk")
                .filter_expression("message_uuid = :uuid")
                .expression_attribute_values(":pk", AttributeValue::S(keys::message_pk(group)))
                .expression_attribute_values(":uuid", AttributeValue::S(uuid.to_string()))
                .scan_index_forward(false)
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|err| StoreError::from_sdk("FindMessage", err))?;
            if let Some(found) = output.items.unwrap_or_default().into_iter().next() {
                return Ok(Some(found));
            }
            match output.last_evaluated_key {
                Some(key) => start_key = Some(key),
                None => return Ok(None),
            }
        }
    }
}
