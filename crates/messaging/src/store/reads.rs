//! Marking a conversation read: the explicit route, and the newest page of a conversation
//! marking what it showed. The caller's row is found through the group index and rewritten
//! only if it is still exactly as read, so reads and fan-outs racing end exact.
//!
//! The same transaction records the read where others see it: the reader's receipt
//! (`MBR#<group>` / `READ#<reader>`, [`ReadReceiptItem`]: the members list's `read_through`,
//! and through the stream the push's `read` frame), and in a direct conversation the other
//! member's row (`peer_read_through`: their inbox's `seen`). Neither is ever lowered, so of
//! two devices reading at once the further read stands.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use uuid::Uuid;

use super::inbox_index::{IndexView, Unchanged, non_empty};
use super::requests::{Cancelled, backoff};
use super::{Store, StoreError, key_item, to_item};
use crate::items::{InboxRowItem, ReadReceiptItem};
use crate::keys::{self, Key};
use crate::model::{ConversationKind, Message, User, UserSummary};
use crate::page::{Page, PageRequest};
use crate::schema::PARTITION_KEY;

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

/// The rows one read writes.
#[derive(Debug, Clone)]
struct ReadRows {
    /// The reader's own row.
    own: InboxRowItem,
    /// A direct conversation's other row, which learns how far the reader has read; `None`
    /// for a group, or when the other member has no row (it left nothing to tell).
    partner: Option<InboxRowItem>,
}

/// Which items of a read's transaction must be read again before the next attempt.
#[derive(Debug, Clone, Copy, Default)]
struct Stale {
    own: bool,
    partner: bool,
}

/// What one attempt at writing a read came to.
enum Wrote {
    Done,
    Retry(Stale),
}

impl Store {
    /// Marks the conversation read for `reader` up to `up_to`: finds the caller's row
    /// through the index (one Query; a direct conversation's other row comes with it) and,
    /// in one transaction, rewrites its unread state on the condition that the row is
    /// exactly as read (the fan-out's `Unchanged`), raises the reader's receipt and, in a
    /// direct conversation, the other row's `peer_read_through`. Two requests; none
    /// written when already read.
    ///
    /// A fan-out that moves a row first cancels the transaction: what changed is re-read
    /// (at most [`MARK_READ_ATTEMPTS`] reads) and read again up to the same message, so
    /// whatever the order the row ends with 0 unread, or with exactly the messages newer
    /// than the read. A fan-out that reads the rows before and writes after is cancelled
    /// by its own conditions (`unread`, `unread_at`, `read_through`, `peer_read_through`
    /// are among them) and re-reads.
    #[tracing::instrument(skip(self, reader), fields(table = %self.table, reader = %reader.uuid), err(level = "debug"))]
    pub async fn mark_read(
        &self,
        reader: &User,
        group: Uuid,
        up_to: &ReadUpTo,
    ) -> Result<MarkedRead, StoreError> {
        self.mark_read_from(reader, group, up_to, None, Stale::default())
            .await
    }

    /// [`Store::mark_read`], knowing the rows were `seen` where a write found `stale` ones
    /// gone or changed. After a failed write those are read from the table, not the index:
    /// the index may still show where they were for a moment after a fan-out moved them.
    async fn mark_read_from(
        &self,
        reader: &User,
        group: Uuid,
        up_to: &ReadUpTo,
        mut seen: Option<ReadRows>,
        mut stale: Stale,
    ) -> Result<MarkedRead, StoreError> {
        let reader_summary = reader.summary();
        for attempt in 0..MARK_READ_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            // Not seen yet: the index only (a row it does not show yet is retried, never
            // searched for through the caller's whole inbox).
            let rows = match &seen {
                None => self.indexed_read_rows(reader.uuid, group).await?,
                Some(rows) => self.reread(group, rows.clone(), stale).await?,
            };
            let Some(rows) = rows else {
                continue;
            };
            let through = match up_to {
                ReadUpTo::Message(at) => at.as_str(),
                ReadUpTo::Row => rows.own.last_message_at(),
            };
            let Some(read) = rows.own.marked_read_through(through) else {
                return Ok(MarkedRead::AlreadyRead);
            };
            match self.write_read(&reader_summary, &rows, &read).await? {
                Wrote::Done => {
                    return Ok(MarkedRead::Marked {
                        unread: read.unread,
                    });
                }
                Wrote::Retry(again) => {
                    stale = again;
                    seen = Some(rows);
                }
            }
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
    #[tracing::instrument(skip(self, reader, page), fields(table = %self.table, reader = %reader.uuid), err(level = "debug"))]
    pub async fn read_messages(
        &self,
        reader: &User,
        group: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        if page.cursor().is_some() {
            return self.list_messages(reader.uuid, group, page).await;
        }
        // The membership check first, as for any page; then the page and the caller's row
        // together, so a non-member reads neither.
        if !self.is_member(group, reader.uuid).await? {
            return Err(StoreError::NotMember(group));
        }
        let (messages, rows) = tokio::join!(
            self.message_page(group, None, page.limit()),
            self.indexed_read_rows(reader.uuid, group)
        );
        let messages = messages?;
        let Some(newest) = messages.items.last() else {
            return Ok(messages);
        };
        let marked = self
            .mark_page_read(reader, group, rows, &newest.created_at)
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
    /// rows looked up beside the page; any doubt about them is settled by
    /// [`Store::mark_read`], which looks again.
    async fn mark_page_read(
        &self,
        reader: &User,
        group: Uuid,
        rows: Result<Option<ReadRows>, StoreError>,
        newest_at: &str,
    ) -> Result<MarkedRead, StoreError> {
        let up_to = || ReadUpTo::Message(newest_at.to_owned());
        let Some(rows) = rows? else {
            return self.mark_read(reader, group, &up_to()).await;
        };
        let Some(read) = rows.own.marked_read_through(newest_at) else {
            return Ok(MarkedRead::AlreadyRead);
        };
        match self.write_read(&reader.summary(), &rows, &read).await? {
            Wrote::Done => Ok(MarkedRead::Marked {
                unread: read.unread,
            }),
            // A row moved or changed since: look again, from where it was.
            Wrote::Retry(stale) => {
                self.mark_read_from(reader, group, &up_to(), Some(rows), stale)
                    .await
            }
        }
    }

    /// The reader's row and, in a direct conversation, the other member's, as the index
    /// shows them: one Query of the conversation, filtered to the reader's partition and to
    /// direct rows (they carry no `kind`), so a group answers with the reader's row alone.
    /// `None` when the index shows no row of the reader.
    async fn indexed_read_rows(
        &self,
        reader: Uuid,
        group: Uuid,
    ) -> Result<Option<ReadRows>, StoreError> {
        let query = self
            .index_query(group)
            .filter_expression("#pk = :pk OR attribute_not_exists(#kind)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":pk", AttributeValue::S(keys::inbox_pk(reader)));
        let mut rows = IndexView::from_items(group, self.index_items(query).await?).rows;
        let Some(own) = rows.iter().position(|row| row.owner() == Some(reader)) else {
            return Ok(None);
        };
        let own = rows.swap_remove(own);
        let partner = match own.kind {
            ConversationKind::Group => None,
            // A row naming its own owner as the other member (not one this system writes)
            // has no other row to tell; a transaction naming one item twice is refused.
            ConversationKind::Direct if own.user_uuid == reader => None,
            ConversationKind::Direct => match rows
                .into_iter()
                .find(|row| row.owner() == Some(own.user_uuid))
            {
                Some(row) => Some(row),
                // Not shown yet (a lagging index): the table has it.
                None => self.current_row(own.user_uuid, group, None).await?,
            },
        };
        Ok(Some(ReadRows { own, partner }))
    }

    /// The `stale` rows of `rows` read again from the table (strongly consistent, from
    /// where they were seen); the others as they were. `None` when the reader's row is
    /// not found.
    async fn reread(
        &self,
        group: Uuid,
        rows: ReadRows,
        stale: Stale,
    ) -> Result<Option<ReadRows>, StoreError> {
        let own = match stale.own {
            true => {
                let owner = rows.own.owner().ok_or_else(|| StoreError::CorruptItem {
                    pk: rows.own.pk.clone(),
                    sk: rows.own.sk.clone(),
                    message: "an inbox row's pk names no user".into(),
                })?;
                self.current_row(owner, group, Some(&rows.own)).await?
            }
            false => Some(rows.own),
        };
        let partner = match (stale.partner, rows.partner) {
            (true, Some(partner)) => match partner.owner() {
                Some(owner) => self.current_row(owner, group, Some(&partner)).await?,
                None => None,
            },
            (_, partner) => partner,
        };
        // No row of the reader's any more: it left meanwhile, or the row is being moved.
        Ok(own.map(|own| ReadRows { own, partner }))
    }

    /// One transaction: `read`'s unread state over the reader's row if it is still exactly
    /// as read, the reader's receipt raised to `read`'s `read_through`, and the other row
    /// of a direct conversation told. The receipt and the other row are conditioned on
    /// holding an older read (or none), so an older read never lowers a newer one: a
    /// transaction cancelled on one of those alone is written again without it.
    async fn write_read(
        &self,
        reader: &UserSummary,
        rows: &ReadRows,
        read: &InboxRowItem,
    ) -> Result<Wrote, StoreError> {
        let through = read.read_through.clone().unwrap_or_default();
        let mut receipt = true;
        let mut partner = rows.partner.as_ref().filter(|partner| {
            partner
                .peer_read_through
                .as_deref()
                .is_none_or(|seen| seen < through.as_str())
        });
        // At most twice: once more without the items already ahead of this read.
        for _ in 0..2 {
            let mut items = vec![self.read_row_update(&rows.own, read)?];
            if receipt {
                items.push(self.receipt_update(&ReadReceiptItem::new(
                    rows.own.message_group_uuid,
                    reader,
                    &through,
                ))?);
            }
            let partner_index = items.len();
            if let Some(partner) = partner {
                items.push(self.peer_read_update(partner, &through)?);
            }
            let cancelled = match self.transact("MarkRead", items).await? {
                Ok(()) => return Ok(Wrote::Done),
                Err(cancelled) => cancelled,
            };
            let failed =
                |index: usize| cancelled.condition_failed(index) || cancelled.conflicted(index);
            // Both rows came from one index read: if one was stale, so may the other be
            // (DynamoDB need not report every failed condition), so both are read again.
            let row_failed = failed(0) || (partner.is_some() && failed(partner_index));
            let stale = Stale {
                own: row_failed,
                partner: row_failed && partner.is_some(),
            };
            let receipt_ahead = receipt && cancelled.condition_failed(1);
            if stale.own || stale.partner || !receipt_ahead || conflicted_anywhere(&cancelled) {
                return Ok(Wrote::Retry(stale));
            }
            // Only the receipt was ahead (another device read further): the row still
            // takes this read, and the other row already knows at least as much.
            receipt = false;
            partner = None;
        }
        Ok(Wrote::Retry(Stale::default()))
    }

    /// The reader's row, rewritten with `read`'s unread state if it is still as read.
    fn read_row_update(
        &self,
        row: &InboxRowItem,
        read: &InboxRowItem,
    ) -> Result<TransactWriteItem, StoreError> {
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
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .update_expression(expression)
            .condition_expression(unchanged.expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(non_empty(values))
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The reader's receipt set to `receipt`, unless it already says as far or further.
    fn receipt_update(&self, receipt: &ReadReceiptItem) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(receipt)?;
        let value = |name: &str| {
            item.get(name)
                .cloned()
                .unwrap_or(AttributeValue::Null(true))
        };
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&receipt.pk, &receipt.sk))))
            .update_expression(
                "SET #group = :group, #user = :user, #handle = :handle, #through = :through",
            )
            .condition_expression("attribute_not_exists(#through) OR #through < :through")
            .expression_attribute_names("#group", "group_uuid")
            .expression_attribute_names("#user", "user_uuid")
            .expression_attribute_names("#handle", "user_handle")
            .expression_attribute_names("#through", "read_through")
            .expression_attribute_values(":group", value("group_uuid"))
            .expression_attribute_values(":user", value("user_uuid"))
            .expression_attribute_values(":handle", value("user_handle"))
            .expression_attribute_values(":through", value("read_through"))
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The other row of a direct conversation learns the reader's read, if it is still
    /// there (a fan-out moves rows by delete and put) and knew of an older read only. A
    /// move racing this write is cancelled by its own conditions (`peer_read_through` is
    /// among the attributes a move copies) and copies the new value when it re-reads.
    fn peer_read_update(
        &self,
        partner: &InboxRowItem,
        through: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&partner.pk, &partner.sk))))
            .update_expression("SET #peer = :through")
            .condition_expression(
                "attribute_exists(#pk) AND #group = :group \
                 AND (attribute_not_exists(#peer) OR #peer < :through)",
            )
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#group", "message_group_uuid")
            .expression_attribute_names("#peer", "peer_read_through")
            .expression_attribute_values(
                ":group",
                AttributeValue::S(partner.message_group_uuid.to_string()),
            )
            .expression_attribute_values(":through", AttributeValue::S(through.to_owned()))
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// Whether any item of the transaction was held by another transaction (then nothing is
/// known about its conditions, and the whole read is tried again).
fn conflicted_anywhere(cancelled: &Cancelled) -> bool {
    (0..3).any(|index| cancelled.conflicted(index))
}
