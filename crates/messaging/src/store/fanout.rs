//! Pattern E's write side: every member's inbox row follows the newest message.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use uuid::Uuid;

use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, backoff, from_item, key_item, to_item};
use crate::keys::Key;
use crate::model::{InboxItem, Message};
use crate::schema::{GROUP_INDEX, GROUP_INDEX_PARTITION_KEY};
use crate::timestamp::Timestamp;

/// `TransactWriteItems` takes at most 100 items: 50 rows, each a delete and a put.
const ROWS_PER_TRANSACTION: usize = 50;

/// What advancing a conversation's inbox rows did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Advance {
    /// Rows moved to the new message.
    pub moved: usize,
    /// Rows already at or past the message, left alone.
    pub current: usize,
}

impl Store {
    /// Moves every inbox row of `message`'s conversation whose last message is older than
    /// `message` to it: delete the old row and put the new one in one transaction (all rows
    /// of the conversation in one, up to 50 members), so no instant exists where a member
    /// has zero or two rows. Rows at or past the message stay: replays and out-of-order
    /// deliveries change nothing. Costs one GSI query and one transaction.
    ///
    /// The index is eventually consistent; when a condition shows the read was stale (a
    /// concurrent writer moved a row), this re-reads and tries again, a bounded number of
    /// times, and never writes without conditions.
    #[tracing::instrument(skip(self, message), fields(table = %self.table, group = %message.group_uuid, at = %message.created_at), err(level = "debug"))]
    pub async fn advance_inbox_rows(&self, message: &Message) -> Result<Advance, StoreError> {
        // A member whose inbox already holds another conversation's row at exactly this
        // microsecond gets this row a microsecond later (keys must differ); the row still
        // counts as at-or-past the message for later replays.
        let mut bumps: HashMap<String, u32> = HashMap::new();
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let rows = self.inbox_rows_of(message.group_uuid).await?;
            // The index lags behind the table: a row it does not show yet would silently
            // keep its old message. Rows say how many there are; wait until all show.
            let expected = rows
                .iter()
                .filter_map(|row| row.member_count)
                .max()
                .unwrap_or(0);
            if rows.len() < expected as usize {
                tracing::debug!(seen = rows.len(), expected, "index lagging; re-reading");
                backoff(attempt).await;
                continue;
            }
            let stale: Vec<&InboxItem> = rows
                .iter()
                .filter(|row| row.last_message_at() < message.created_at.as_str())
                .collect();
            let mut outcome = Advance {
                moved: 0,
                current: rows.len() - stale.len(),
            };
            if stale.is_empty() {
                return Ok(outcome);
            }
            let mut retry = false;
            for chunk in stale.chunks(ROWS_PER_TRANSACTION) {
                let mut items = Vec::with_capacity(chunk.len() * 2);
                // Where each row's put of a delete+put pair sits, to find collisions.
                let mut moved_puts = Vec::with_capacity(chunk.len());
                for row in chunk {
                    let sk = target_sort_key(message, bumps.get(&row.pk).copied().unwrap_or(0));
                    if sk == row.sk {
                        // A row moved a microsecond on earlier already sits at this key:
                        // rewrite it in place (a transaction cannot touch one item twice).
                        items.push(self.put_row(row, message, sk, RowCondition::StillOurs)?);
                    } else {
                        items.push(self.delete_row(row)?);
                        moved_puts.push((items.len(), &row.pk));
                        items.push(self.put_row(row, message, sk, RowCondition::KeyFree)?);
                    }
                }
                match self.transact("AdvanceInboxRows", items).await? {
                    Ok(()) => outcome.moved += chunk.len(),
                    Err(cancelled) => {
                        for (index, owner) in moved_puts {
                            if cancelled.condition_failed(index) {
                                *bumps.entry(owner.clone()).or_default() += 1;
                            }
                        }
                        retry = true;
                    }
                }
            }
            if !retry {
                return Ok(outcome);
            }
            backoff(attempt).await;
        }
        Err(StoreError::Contention {
            operation: "AdvanceInboxRows",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// Every member's inbox row of `group`, through the GSI.
    async fn inbox_rows_of(&self, group: Uuid) -> Result<Vec<InboxItem>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(self.table())
            .index_name(GROUP_INDEX)
            .key_condition_expression("#group = :group")
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(":group", AttributeValue::S(group.to_string()))
            .into_paginator()
            .items()
            .send();
        let mut rows = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            rows.push(from_item::<InboxItem>(item)?);
        }
        Ok(rows)
    }

    /// Deletes the row only if it still is this conversation's row at this position: if a
    /// concurrent writer moved it, the transaction fails and the caller re-reads.
    fn delete_row(&self, row: &InboxItem) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .condition_expression("#group = :group")
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(
                ":group",
                AttributeValue::S(row.message_group_uuid.to_string()),
            )
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn put_row(
        &self,
        row: &InboxItem,
        message: &Message,
        sk: String,
        condition: RowCondition,
    ) -> Result<TransactWriteItem, StoreError> {
        let moved = InboxItem {
            pk: row.pk.clone(),
            sk,
            message_group_uuid: row.message_group_uuid,
            message: message.text.clone(),
            user_uuid: row.user_uuid,
            user_display_name: row.user_display_name.clone(),
            user_handle: row.user_handle.clone(),
            last_message_at: Some(message.created_at.clone()),
            member_count: row.member_count,
        };
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&moved)?));
        let put = match condition {
            RowCondition::KeyFree => put.condition_expression("attribute_not_exists(pk)"),
            RowCondition::StillOurs => {
                let unchanged = match &row.last_message_at {
                    Some(previous) => put
                        .condition_expression("#group = :group AND #at = :previous")
                        .expression_attribute_values(
                            ":previous",
                            AttributeValue::S(previous.clone()),
                        ),
                    None => {
                        put.condition_expression("#group = :group AND attribute_not_exists(#at)")
                    }
                };
                unchanged
                    .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
                    .expression_attribute_names("#at", "last_message_at")
                    .expression_attribute_values(
                        ":group",
                        AttributeValue::S(row.message_group_uuid.to_string()),
                    )
            }
        }
        .build()
        .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// What a put of a moved row requires.
enum RowCondition {
    /// The new key holds nothing (not another conversation's row).
    KeyFree,
    /// The row is rewritten in place: it must still be this conversation's, unchanged since
    /// it was read.
    StillOurs,
}

fn target_sort_key(message: &Message, bump: u32) -> String {
    if bump == 0 {
        return message.created_at.clone();
    }
    match Timestamp::parse(&message.created_at) {
        Ok(mut at) => {
            for _ in 0..bump {
                at = at.next_micro();
            }
            at.to_string()
        }
        // Not ours to reformat; a suffix still sorts after the original value.
        Err(_) => format!("{}#{bump}", message.created_at),
    }
}
