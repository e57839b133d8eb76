//! Inbox previews follow edits and deletes (issue 20): every inbox row whose last message
//! is an edited or deleted message comes to show its newest version, with the guarantees
//! of pattern E's moves.
//!
//! **Which rows.** A row showing a message sits at `GRP#<member>` / the message's
//! `created_at` (a microsecond or a few later when another conversation's row of the same
//! owner held that key when it moved, `target_sort_key`). So the rows are computed, not
//! searched for: the members from `MBR#<group>` (one strongly consistent Query), and each
//! member's row from a strongly consistent Query of that owner's partition between the
//! message's time and a millisecond later, filtered to the conversation. The group index
//! would find them in one Query, but it lags: a row the fan-out moved to the message a
//! moment ago may not be in it yet, and its preview would then keep the old text for good.
//! Where this environment's hint ([`RowPositions`]) already puts a member's row past the
//! message, nothing is read for that member (rows only move forward); where it shows the
//! row at the message, the update goes straight out, its condition proving the hint.
//!
//! **Conditions.** Each row is updated alone (`UpdateItem`), only while it is at that key,
//! of this conversation, showing this message (`last_message_at`) at a lower
//! `message_revision` than the change's. A row that moved on, or that already shows this or
//! a newer version, fails the condition, which means there is nothing to do: so a replay,
//! or an older version arriving after a newer one, changes nothing. Every other write of a
//! row from a read (moves, recounts, marking read, membership changes) is conditioned on
//! `message_revision` too ([`super::inbox_index::Unchanged`]), so none puts the older text
//! back. A row being moved by a transaction right now (`TransactionConflictException`) is
//! read again, a bounded number of times, then reported for retry.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;
use uuid::Uuid;

use super::inbox_index::{MESSAGE_REVISION, non_empty};
use super::requests::backoff;
use super::{MAX_WRITE_ATTEMPTS, RowPositions, Store, StoreError, from_item, key_item};
use crate::items::InboxRowItem;
use crate::keys::{self, Key};
use crate::model::Message;
use crate::schema::{GROUP_INDEX_PARTITION_KEY, PARTITION_KEY, SORT_KEY};
use crate::timestamp::Timestamp;

/// Members' rows looked up or updated at once for one change.
const ROWS_IN_FLIGHT: usize = 16;

/// How far after its message's time a row may have been put (`target_sort_key` bumps by a
/// microsecond per collision; a thousand collisions in one owner's inbox at one instant do
/// not happen).
const BUMP_WINDOW: time::Duration = time::Duration::milliseconds(1);

/// What following a batch's changes of one conversation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Previewed {
    /// Rows updated to a newer version of their message.
    pub changed: usize,
    /// Rows found already at this or a newer version, or past the message: left alone.
    pub current: usize,
    /// Strongly consistent reads: the memberships, and members' partitions.
    pub reads: usize,
    /// Members whose row the hint placed, so nothing was read for them.
    pub hinted: usize,
    /// The group's last member left: no row left to change.
    pub ended: bool,
}

impl Previewed {
    fn add(&mut self, row: RowOutcome) {
        self.changed += usize::from(row.changed);
        self.current += usize::from(!row.changed && row.exists);
        self.reads += row.reads;
        self.hinted += usize::from(row.hinted);
    }
}

/// One member's row and one change.
#[derive(Debug, Clone, Copy, Default)]
struct RowOutcome {
    changed: bool,
    /// A row of the conversation was found (or known) at or past the message.
    exists: bool,
    reads: usize,
    hinted: bool,
}

impl Store {
    /// Every inbox row of `group` whose last message is one of `changes` (new versions of
    /// edited or deleted messages, one per message) comes to show that version. Costs one
    /// strongly consistent Query of `MBR#<group>`, then per change and member at most one
    /// strongly consistent Query (none where the hint places the row) and one `UpdateItem`
    /// where the row shows an older version.
    #[tracing::instrument(skip(self, changes, positions), fields(table = %self.table, changes = changes.len()), err(level = "debug"))]
    pub async fn change_previews(
        &self,
        group: Uuid,
        changes: &[Message],
        positions: &RowPositions,
    ) -> Result<Previewed, StoreError> {
        let mut previewed = Previewed::default();
        if changes.is_empty() {
            return Ok(previewed);
        }
        let partition = self.group_partition(group).await?;
        previewed.reads += 1;
        if partition.memberships.is_empty() {
            if partition.ended {
                previewed.ended = true;
                return Ok(previewed);
            }
            // A conversation the original system wrote and nobody migrated: no memberships
            // to compute keys from, so the index is the best that can be known.
            return self
                .change_indexed_previews(group, changes, previewed)
                .await;
        }
        let owners: Vec<Uuid> = partition.memberships.iter().map(|m| m.user_uuid).collect();
        for change in changes {
            let hint: HashMap<String, InboxRowItem> = positions
                .rows_of(group)
                .map(|rows| rows.iter().map(|r| (r.pk.clone(), r.clone())).collect())
                .unwrap_or_default();
            // Owned: a stream of borrowed owners defeats the compiler's proof that the
            // handler's future is `Send`.
            let rows: Vec<(Uuid, Option<InboxRowItem>)> = owners
                .iter()
                .map(|owner| (*owner, hint.get(&keys::inbox_pk(*owner)).cloned()))
                .collect();
            let outcomes: Vec<Result<RowOutcome, StoreError>> = futures_util::stream::iter(rows)
                .map(|(owner, hinted)| self.change_preview_of(owner, change, hinted, positions))
                .buffer_unordered(ROWS_IN_FLIGHT)
                .collect()
                .await;
            for outcome in outcomes {
                previewed.add(outcome?);
            }
        }
        Ok(previewed)
    }

    /// One member's row and one change.
    async fn change_preview_of(
        &self,
        owner: Uuid,
        change: &Message,
        hinted: Option<InboxRowItem>,
        positions: &RowPositions,
    ) -> Result<RowOutcome, StoreError> {
        let mut outcome = RowOutcome::default();
        let mut row = match hinted {
            Some(row) if row.last_message_at() > change.created_at.as_str() => {
                outcome.hinted = true;
                outcome.exists = true;
                return Ok(outcome);
            }
            Some(row) if row.last_message_at() == change.created_at => {
                outcome.hinted = true;
                Some(row)
            }
            // Not known here, or the hint is behind the message: read.
            _ => None,
        };
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            let current = match row.take() {
                Some(row) => row,
                None => {
                    outcome.reads += 1;
                    match self.row_at_message(owner, change).await? {
                        Some(row) => row,
                        // Moved past the message before this change arrived, or never at it.
                        None => return Ok(outcome),
                    }
                }
            };
            outcome.exists = true;
            if !current.previews_older_version_of(change) {
                return Ok(outcome);
            }
            match self.update_preview(&current, change).await? {
                Updated::Changed => {
                    positions.show_preview(change, &current.pk, &current.sk);
                    outcome.changed = true;
                    return Ok(outcome);
                }
                Updated::Settled => return Ok(outcome),
                Updated::InTransaction => continue,
            }
        }
        Err(StoreError::Contention {
            operation: "ChangePreview",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// `owner`'s row of the message's conversation if it is at that message: strongly
    /// consistent, from the message's time to [`BUMP_WINDOW`] later.
    async fn row_at_message(
        &self,
        owner: Uuid,
        message: &Message,
    ) -> Result<Option<InboxRowItem>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(self.table())
            .consistent_read(true)
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::inbox_pk(owner)))
            .expression_attribute_values(":at", AttributeValue::S(message.created_at.clone()))
            .expression_attribute_values(
                ":group",
                AttributeValue::S(message.group_uuid.to_string()),
            )
            .filter_expression("#group = :group");
        let query = match Timestamp::parse(&message.created_at) {
            Ok(at) => query
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :at AND :until")
                .expression_attribute_values(
                    ":until",
                    AttributeValue::S(
                        Timestamp::from_datetime(at.as_datetime() + BUMP_WINDOW).to_string(),
                    ),
                ),
            // Not ours to reformat: a bumped key is this one with a suffix.
            Err(_) => query.key_condition_expression("#pk = :pk AND begins_with(#sk, :at)"),
        };
        let mut pages = query.into_paginator().items().send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            let row = from_item::<InboxRowItem>(item)?;
            if row.last_message_at() == message.created_at {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// The row shows `change` if it is still at its key, of this conversation, showing this
    /// message at a lower revision.
    async fn update_preview(
        &self,
        row: &InboxRowItem,
        change: &Message,
    ) -> Result<Updated, StoreError> {
        let mut names = HashMap::from([
            ("#pk".to_owned(), PARTITION_KEY.to_owned()),
            ("#sk".to_owned(), SORT_KEY.to_owned()),
            ("#group".to_owned(), GROUP_INDEX_PARTITION_KEY.to_owned()),
            ("#at".to_owned(), "last_message_at".to_owned()),
            ("#rev".to_owned(), MESSAGE_REVISION.to_owned()),
            ("#text".to_owned(), "message".to_owned()),
        ]);
        let mut values = HashMap::from([
            (
                ":group".to_owned(),
                AttributeValue::S(change.group_uuid.to_string()),
            ),
            (
                ":at".to_owned(),
                AttributeValue::S(change.created_at.clone()),
            ),
            (
                ":rev".to_owned(),
                AttributeValue::N(change.life.revision.to_string()),
            ),
            (":text".to_owned(), AttributeValue::S(change.text.clone())),
        ]);
        let mut set = vec!["#text = :text", "#rev = :rev"];
        let mut remove = Vec::new();
        for (name, attribute, value, placeholder) in [
            (
                "#edited",
                "message_edited_at",
                &change.life.edited_at,
                ":edited",
            ),
            (
                "#deleted",
                "message_deleted_at",
                &change.life.deleted_at,
                ":deleted",
            ),
        ] {
            names.insert(name.to_owned(), attribute.to_owned());
            match value {
                Some(value) => {
                    values.insert(placeholder.to_owned(), AttributeValue::S(value.clone()));
                    set.push(if name == "#edited" {
                        "#edited = :edited"
                    } else {
                        "#deleted = :deleted"
                    });
                }
                None => remove.push(name),
            }
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
            .condition_expression(
                "attribute_exists(#pk) AND #group = :group \
                 AND (#at = :at OR (attribute_not_exists(#at) AND #sk = :at)) \
                 AND (attribute_not_exists(#rev) OR #rev < :rev)",
            )
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(non_empty(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Updated::Changed),
            Err(err) => match err.as_service_error() {
                // Moved on, or at this or a newer version already.
                Some(e) if e.is_conditional_check_failed_exception() => Ok(Updated::Settled),
                // A fan-out or membership transaction holds the row right now; it may fail
                // and leave the row at this message: read again.
                Some(e) if e.is_transaction_conflict_exception() => Ok(Updated::InTransaction),
                _ => Err(StoreError::from_sdk("UpdateItem", err)),
            },
        }
    }

    /// [`Store::change_previews`] for a conversation without memberships: the rows the
    /// group index shows (it may lag: the original system's conversations accept that).
    async fn change_indexed_previews(
        &self,
        group: Uuid,
        changes: &[Message],
        mut previewed: Previewed,
    ) -> Result<Previewed, StoreError> {
        let view = self.index_view(group).await?;
        previewed.reads += 1;
        for change in changes {
            for row in &view.rows {
                if row.last_message_at() != change.created_at {
                    continue;
                }
                if !row.previews_older_version_of(change) {
                    previewed.current += 1;
                    continue;
                }
                match self.update_preview(row, change).await? {
                    Updated::Changed => previewed.changed += 1,
                    Updated::Settled => previewed.current += 1,
                    Updated::InTransaction => {
                        return Err(StoreError::Contention {
                            operation: "ChangePreview",
                            attempts: 1,
                        });
                    }
                }
            }
        }
        Ok(previewed)
    }
}

/// How a conditional preview update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Updated {
    Changed,
    /// Nothing to do: the row moved on or shows this or a newer version.
    Settled,
    /// A transaction was writing the row: read it again.
    InTransaction,
}
