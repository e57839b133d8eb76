//! Marking a conversation read: the explicit route, and the newest page of a conversation
//! marking what it showed. The caller's row is found through the group index and rewritten
//! only if it is still exactly as read, so reads and fan-outs racing end exact.

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::inbox_index::{Unchanged, non_empty};
use super::requests::backoff;
use super::{Store, StoreError, key_item};
use crate::items::InboxRowItem;
use crate::keys::Key;
use crate::model::Message;
use crate::page::{Page, PageRequest};

/// How many times marking read re-reads the caller's row when a write (a fan-out, another
/// read) changed it first or is changing it, or the index does not show it yet.
const MARK_READ_ATTEMPTS: u32 = 3;

/// Up to which message a reader has read a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadUpTo {
    /// The message created at this time, the newest a page showed: anything newer stays
    /// unread, even if the inbox row already counts it.
    Message(String),
    /// Whatever the caller's inbox row shows: its unread count becomes 0.
    Row,
}

/// What marking read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkedRead {
    /// The row was written; this many messages remain unread (newer than the read).
    Marked { unread: u32 },
    /// Nothing to change: already read that far.
    AlreadyRead,
    /// The index did not show the caller's row (a row written moments ago, or none: the
    /// caller is not a member). The caller decides which.
    NoRow,
}

impl Store {
    /// Marks the conversation read for `reader` up to `up_to`: finds the caller's row
    /// through the index (one Query, filtered to the caller's partition) and rewrites its
    /// unread state with an `UpdateItem` conditioned on the row being exactly as read
    /// (the fan-out's `Unchanged`). Two requests; none written when already read.
    ///
    /// A fan-out that moves the row first makes the update fail: the row is re-read (at
    /// most [`MARK_READ_ATTEMPTS`] reads) and read again up to the same message, so
    /// whatever the order the row ends with 0 unread, or with exactly the messages newer
    /// than the read. A fan-out that reads the row before and writes after is cancelled
    /// by its own conditions (`unread`, `unread_at`, `read_through` are among them) and
    /// re-reads.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn mark_read(
        &self,
        reader: Uuid,
        group: Uuid,
        up_to: &ReadUpTo,
    ) -> Result<MarkedRead, StoreError> {
        self.mark_read_from(reader, group, up_to, None).await
    }

    /// [`Store::mark_read`], knowing the row was `seen` where a write found it gone or
    /// changed. After a failed write the row is read from the table, not the index: the
    /// index may still show where it was for a moment after a fan-out moved it.
    async fn mark_read_from(
        &self,
        reader: Uuid,
        group: Uuid,
        up_to: &ReadUpTo,
        mut seen: Option<InboxRowItem>,
    ) -> Result<MarkedRead, StoreError> {
        for attempt in 0..MARK_READ_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            // Not seen yet: the index only (a row it does not show yet is retried, never
            // searched for through the caller's whole inbox).
            let row = match &seen {
                None => self.indexed_row_of(reader, group).await?,
                Some(seen) => self.current_row(reader, group, Some(seen)).await?,
            };
            let Some(row) = row else {
                continue;
            };
            let through = match up_to {
                ReadUpTo::Message(at) => at.as_str(),
                ReadUpTo::Row => row.last_message_at(),
            };
            let Some(read) = row.marked_read_through(through) else {
                return Ok(MarkedRead::AlreadyRead);
            };
            if self.write_read(&row, &read).await? {
                return Ok(MarkedRead::Marked {
                    unread: read.unread,
                });
            }
            seen = Some(row);
        }
        if seen.is_some() {
            Err(StoreError::Contention {
                operation: "MarkRead",
                attempts: MARK_READ_ATTEMPTS,
            })
        } else {
            Ok(MarkedRead::NoRow)
        }
    }

    /// [`Store::list_messages`], and when it is the newest page, marks the conversation
    /// read up to the page's newest message. After the membership check, the caller's row
    /// is looked up at the same time as the page (it is exact whichever comes first), so
    /// marking costs a round trip only when there is something to mark. Marking never fails
    /// the read: a failure is logged and the page returned.
    #[tracing::instrument(skip(self, page), fields(table = %self.table), err(level = "debug"))]
    pub async fn read_messages(
        &self,
        reader: Uuid,
        group: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        if page.cursor().is_some() {
            return self.list_messages(reader, group, page).await;
        }
        // The membership check first, as for any page; then the page and the caller's row
        // together, so a non-member reads neither.
        if !self.is_member(group, reader).await? {
            return Err(StoreError::NotMember(group));
        }
        let (messages, row) = tokio::join!(
            self.message_page(group, None, page.limit()),
            self.indexed_row_of(reader, group)
        );
        let messages = messages?;
        let Some(newest) = messages.items.last() else {
            return Ok(messages);
        };
        let marked = self
            .mark_page_read(reader, group, row, &newest.created_at)
            .await;
        match marked {
            Ok(MarkedRead::NoRow) => {
                tracing::warn!(%group, "the index does not show the reader's row yet; not marked read")
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(%group, error = %err, "could not mark the conversation read")
            }
        }
        Ok(messages)
    }

    /// Marks read up to the newest message a page showed (`newest_at`), starting from the
    /// row looked up beside the page; any doubt about that row is settled by
    /// [`Store::mark_read`], which looks again.
    async fn mark_page_read(
        &self,
        reader: Uuid,
        group: Uuid,
        row: Result<Option<InboxRowItem>, StoreError>,
        newest_at: &str,
    ) -> Result<MarkedRead, StoreError> {
        let up_to = || ReadUpTo::Message(newest_at.to_owned());
        let Some(row) = row? else {
            return self.mark_read(reader, group, &up_to()).await;
        };
        let Some(read) = row.marked_read_through(newest_at) else {
            return Ok(MarkedRead::AlreadyRead);
        };
        if self.write_read(&row, &read).await? {
            Ok(MarkedRead::Marked {
                unread: read.unread,
            })
        } else {
            // The row moved or changed since: look again, from where it was.
            self.mark_read_from(reader, group, &up_to(), Some(row))
                .await
        }
    }

    /// Writes `read`'s unread state over `row` if `row` is still exactly as read. `false`
    /// when it is not (moved, recounted or read meanwhile) or a transaction is changing it.
    async fn write_read(
        &self,
        row: &InboxRowItem,
        read: &InboxRowItem,
    ) -> Result<bool, StoreError> {
        let unchanged = Unchanged::of(row)?;
        let mut names = unchanged.names;
        let mut values = unchanged.values;
        let mut set = vec!["#r_through = :r_through".to_owned()];
        let mut remove = Vec::new();
        names.insert("#r_through".into(), "read_through".into());
        names.insert("#r_unread".into(), "unread".into());
        names.insert("#r_at".into(), "unread_at".into());
        values.insert(
            ":r_through".into(),
            AttributeValue::S(read.read_through.clone().unwrap_or_default()),
        );
        if read.unread == 0 {
            remove.push("#r_unread");
        } else {
            set.push("#r_unread = :r_unread".into());
            values.insert(
                ":r_unread".into(),
                AttributeValue::N(read.unread.to_string()),
            );
        }
        if read.unread_at.is_empty() {
            remove.push("#r_at");
        } else {
            set.push("#r_at = :r_at".into());
            values.insert(
                ":r_at".into(),
                AttributeValue::L(
                    read.unread_at
                        .iter()
                        .cloned()
                        .map(AttributeValue::S)
                        .collect(),
                ),
            );
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let result = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .update_expression(expression)
            .condition_expression(unchanged.expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(non_empty(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // Changed since it was read, or being changed right now by a fan-out's or a
            // membership change's transaction (`TransactionConflictException`, which
            // DynamoDB Local never gives): either way the row must be read again, since the
            // transaction may move or recount it.
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_conditional_check_failed_exception()
                        || e.is_transaction_conflict_exception()
                }) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::from_sdk("UpdateItem", err)),
        }
    }
}
