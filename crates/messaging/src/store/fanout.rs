//! Pattern E's write side: every member's inbox row follows the newest message.
//!
//! Two ways to find a conversation's rows:
//!
//! - **the hint** ([`RowPositions`]): where this execution environment itself last put them.
//!   Lambda hands a shard to one invocation at a time, so the next message of a
//!   conversation usually finds its rows exactly where the previous batch left them. The
//!   transaction goes straight out (one request); its conditions prove the hint right, and a
//!   cancellation falls back to the index.
//! - **the index** (`message-group-sk-index`): eventually consistent. A Query may miss rows,
//!   show a deleted row beside its moved copy (a ghost), or show a row where it used to be.
//!   Rows are deduplicated per owner, counted against the conversation's member count, and
//!   every write is conditioned on the row being exactly as read, so a stale view is
//!   re-read, never written from.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use lru::LruCache;
use uuid::Uuid;

use super::inbox_index::{IndexView, Unchanged, non_empty, target_sort_key};
use super::memberships::GroupPartition;
use super::requests::backoff;
use super::{FailureKind, MAX_WRITE_ATTEMPTS, Store, StoreError, key_item, to_item};
use crate::coalesce::Newest;
use crate::items::InboxRowItem;
use crate::keys::Key;
use crate::model::{ConversationKind, Message};

/// `TransactWriteItems` takes at most 100 items: 50 rows, each a delete and a put.
const ROWS_PER_TRANSACTION: usize = 50;

/// What advancing a conversation's inbox rows did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Advance {
    /// Rows written: moved to the new message, or (rarely) recounted in place for a
    /// message committed after a newer one and so delivered in a later batch.
    pub moved: usize,
    /// Rows already at or past the message with nothing new to count, left alone.
    pub current: usize,
    /// Index entries that are not a readable inbox row (a corrupt or foreign item): logged
    /// and left alone, so they cannot hold up the other members' rows.
    pub skipped_rows: usize,
    /// Queries of the group index, re-reads included; 0 when the hint was right.
    pub index_reads: u32,
    /// The rows were where this environment's hint said; no index query was needed.
    pub hinted: bool,
    /// The conversation is a group whose last member left after the message was posted:
    /// nobody's row is left to move. A normal end, not a failure.
    pub ended: bool,
}

/// Where this execution environment last put each conversation's inbox rows: the rows as
/// written, keyed by conversation, least recently used evicted first. Only ever a hint:
/// every write made from it is conditioned on the rows being exactly as remembered.
#[derive(Debug)]
pub struct RowPositions {
    rows: Option<Mutex<LruCache<Uuid, Arc<[InboxRowItem]>>>>,
}

impl RowPositions {
    /// Remembers up to `conversations` conversations (two-member rows take about 0.5 KB).
    pub fn new(conversations: usize) -> Self {
        Self {
            rows: NonZeroUsize::new(conversations).map(|cap| Mutex::new(LruCache::new(cap))),
        }
    }

    /// Remembers nothing: every update reads the index.
    pub fn disabled() -> Self {
        Self { rows: None }
    }

    fn get(&self, group: Uuid) -> Option<Arc<[InboxRowItem]>> {
        self.lock()?.get(&group).cloned()
    }

    fn remember(&self, group: Uuid, rows: Vec<InboxRowItem>) {
        if let Some(mut cache) = self.lock() {
            cache.put(group, rows.into());
        }
    }

    /// The rows as this environment last left them, for the preview changes.
    pub(super) fn rows_of(&self, group: Uuid) -> Option<Arc<[InboxRowItem]>> {
        self.get(group)
    }

    /// A preview change landed on the row at `pk`/`sk`: the remembered copy shows it too,
    /// so the next move from the hint is not refused for a stale `message_revision`.
    pub(super) fn show_preview(&self, message: &Message, pk: &str, sk: &str) {
        let Some(mut cache) = self.lock() else {
            return;
        };
        let Some(rows) = cache.get(&message.group_uuid) else {
            return;
        };
        if !rows.iter().any(|row| row.pk == pk && row.sk == sk) {
            return;
        }
        let rows: Vec<InboxRowItem> = rows
            .iter()
            .map(|row| {
                let mut row = row.clone();
                if row.pk == pk && row.sk == sk && row.previews_older_version_of(message) {
                    row.show_preview_of(message);
                }
                row
            })
            .collect();
        cache.put(message.group_uuid, rows.into());
    }

    fn forget(&self, group: Uuid) {
        if let Some(mut cache) = self.lock() {
            cache.pop(&group);
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, LruCache<Uuid, Arc<[InboxRowItem]>>>> {
        // A panic while holding the lock cannot leave the cache inconsistent: it is a hint.
        self.rows
            .as_ref()
            .map(|rows| rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl Default for RowPositions {
    /// 10,000 conversations: a few MB, far more than one shard's hot conversations.
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl Store {
    /// [`Store::advance_conversation`] for a message alone in its batch.
    pub async fn advance_inbox_rows(
        &self,
        message: &Message,
        positions: &RowPositions,
    ) -> Result<Advance, StoreError> {
        self.advance_conversation(&Newest::alone(message.clone()), positions)
            .await
    }

    /// Moves every inbox row of the batch's conversation whose last message is older than
    /// the batch's newest message to it: delete the old row and put the new one in one
    /// transaction (all rows of the conversation in one, up to 50 members; more in further
    /// transactions, each row still moving atomically), so no instant exists where a
    /// member has zero or two rows. Rows at or past the message stay: replays and
    /// out-of-order deliveries change nothing.
    ///
    /// Each row written adds to its `unread` the batch's messages from other members that
    /// it has not counted ([`InboxRowItem::count_unread`]); that is decided on the row as read
    /// and proven by the write's conditions, so no retry, replay or concurrent read counts
    /// a message twice.
    ///
    /// Costs one transaction when `positions` knows where the rows are, else one index
    /// query and one transaction; re-reads when the index shows fewer members than the
    /// conversation has, or when a condition shows the read was stale, a bounded number of
    /// times, and then fails with a transient error instead of guessing.
    #[tracing::instrument(skip(self, batch, positions), fields(table = %self.table, group = %batch.message.group_uuid, at = %batch.message.created_at, messages = batch.arrivals.len()), err(level = "debug"))]
    pub async fn advance_conversation(
        &self,
        batch: &Newest,
        positions: &RowPositions,
    ) -> Result<Advance, StoreError> {
        let group = batch.message.group_uuid;
        let mut moved_by_hint = 0;
        if let Some(known) = positions.get(group) {
            match self.advance_known_rows(batch, &known).await {
                Ok(Hinted::Done { advance, rows }) => {
                    positions.remember(group, rows);
                    return Ok(advance);
                }
                Ok(Hinted::Missed { moved }) => {
                    tracing::debug!(
                        moved,
                        "rows were not where the hint said; reading the index"
                    );
                    positions.forget(group);
                    moved_by_hint = moved;
                }
                Err(err) => {
                    // Whether the transaction landed is unknown: the hint may be stale.
                    positions.forget(group);
                    return Err(err);
                }
            }
        }
        let (mut advance, rows) = self.advance_indexed_rows(batch).await?;
        advance.moved += moved_by_hint;
        positions.remember(group, rows);
        Ok(advance)
    }

    /// The hot path: move the rows from where this environment last put them.
    async fn advance_known_rows(
        &self,
        batch: &Newest,
        known: &[InboxRowItem],
    ) -> Result<Hinted, StoreError> {
        let (changes, mut rows) = plan_changes(known.iter(), batch, None);
        let current = rows.len();
        let mut moved = 0;
        for chunk in changes.chunks(ROWS_PER_TRANSACTION) {
            let plan = MovePlan::new(self, chunk, &batch.message, &HashMap::new())?;
            match self.transact("AdvanceInboxRows", plan.items).await {
                Ok(Ok(())) => {
                    moved += chunk.len();
                    rows.extend(plan.moved_rows);
                }
                // A row moved on, or changed, since this environment wrote it; or a key
                // collision that the index path resolves.
                Ok(Err(_)) => return Ok(Hinted::Missed { moved }),
                Err(err) if err.failure_kind() == Some(FailureKind::Rejected) => {
                    tracing::warn!(error = %err, "transaction from the hint rejected; reading the index");
                    return Ok(Hinted::Missed { moved });
                }
                Err(err) => return Err(err),
            }
        }
        Ok(Hinted::Done {
            advance: Advance {
                moved,
                current,
                hinted: true,
                ..Advance::default()
            },
            rows,
        })
    }

    /// The cold path: find the rows through the group index, which may lag.
    async fn advance_indexed_rows(
        &self,
        batch: &Newest,
    ) -> Result<(Advance, Vec<InboxRowItem>), StoreError> {
        let group = batch.message.group_uuid;
        // A member whose inbox already holds another conversation's row at exactly this
        // microsecond gets this row a microsecond later (keys must differ); the row still
        // counts as at-or-past the message for later replays.
        let mut bumps: HashMap<String, u32> = HashMap::new();
        // The group's partition, read at most once per update.
        let mut census: Option<GroupPartition> = None;
        let mut shortfalls = 0;
        let mut moved = 0;
        let mut last_failure = None;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            let mut view = self.index_view(group).await?;
            let count_for_rows = match view.member_count {
                Some(count) if view.owners >= count as usize => None,
                // Fewer owners than the rows' count: usually an index that catches up
                // within one re-read; if not, a leave may have left the count too high,
                // and the memberships decide.
                Some(count) if shortfalls == 0 => {
                    shortfalls += 1;
                    tracing::debug!(seen = view.owners, count, "index lagging; re-reading");
                    last_failure = Some(StoreError::IndexLagging {
                        group,
                        seen: view.owners,
                        expected: count as usize,
                    });
                    continue;
                }
                _ => match self.rows_of_members(group, &mut view, &mut census).await? {
                    Census::Members(count) => Some(count),
                    Census::Unmigrated => None,
                    Census::Lagging { seen, expected } => {
                        // Missing rows would silently keep their old message. Never take
                        // "not visible" for "nothing to move".
                        tracing::debug!(seen, expected, "index lagging; re-reading");
                        last_failure = Some(StoreError::IndexLagging {
                            group,
                            seen,
                            expected,
                        });
                        continue;
                    }
                    Census::Ended => {
                        tracing::info!(%group, "the group ended before its message was fanned out");
                        return Ok((
                            Advance {
                                ended: true,
                                index_reads: attempt + 1,
                                ..Advance::default()
                            },
                            Vec::new(),
                        ));
                    }
                },
            };

            // Moved rows carry the count the memberships gave (the original system's rows
            // gain one, rows a leave left one too high are corrected), so the next update of
            // the conversation needs no membership read.
            let (changes, mut rows) = plan_changes(view.rows.iter(), batch, count_for_rows);
            let current = rows.len();
            let written = self
                .write_indexed_changes(&changes, &batch.message, &mut bumps, attempt)
                .await?;
            moved += written.moved;
            match written.failure {
                Some(failure) => last_failure = Some(failure),
                None => {
                    rows.extend(written.rows);
                    let advance = Advance {
                        moved,
                        current,
                        skipped_rows: view.skipped,
                        index_reads: attempt + 1,
                        hinted: false,
                        ended: false,
                    };
                    return Ok((advance, rows));
                }
            }
        }
        Err(last_failure.unwrap_or(StoreError::Contention {
            operation: "AdvanceInboxRows",
            attempts: MAX_WRITE_ATTEMPTS,
        }))
    }

    /// Who the rows must belong to, when the rows the index shows cannot say: none is
    /// visible, the original system's rows carry no count, the index lags, or members left
    /// since the rows last moved (a leave lowers no one else's count, see `groups.rs`). One
    /// strongly consistent Query of `MBR#<group>` answers (once per update, kept in
    /// `census`), the end marker included. Rows of
    /// people who are not members (a leaver's row the index still shows) are dropped from
    /// `view`: they are not moved, so no new message reaches someone who left.
    async fn rows_of_members(
        &self,
        group: Uuid,
        view: &mut IndexView,
        census: &mut Option<GroupPartition>,
    ) -> Result<Census, StoreError> {
        let partition = match census {
            Some(partition) => partition,
            None => census.insert(self.group_partition(group).await?),
        };
        if partition.memberships.is_empty() {
            return Ok(match (view.owners, partition.ended) {
                // Whatever a lagging index still shows of the last rows.
                (_, true) => Census::Ended,
                // No membership and no row: nothing will ever show up to move.
                (0, false) => return Err(StoreError::NoMembers(group)),
                // An original conversation that was never migrated: what the index shows is
                // the best that can be known.
                _ => Census::Unmigrated,
            });
        }
        let members: HashSet<Uuid> = partition.memberships.iter().map(|m| m.user_uuid).collect();
        let corrupt_owners = view.owners - view.rows.len();
        view.rows
            .retain(|row| row.owner().is_some_and(|owner| members.contains(&owner)));
        let seen = view.rows.len() + corrupt_owners;
        if seen < members.len() {
            return Ok(Census::Lagging {
                seen,
                expected: members.len(),
            });
        }
        Ok(Census::Members(
            u32::try_from(members.len()).unwrap_or(u32::MAX),
        ))
    }

    /// Writes the changes planned from an index read, [`ROWS_PER_TRANSACTION`] rows per
    /// transaction. A cancelled or rejected transaction does not stop the later ones (each
    /// row moves atomically on its own); it asks for a re-read, and a put that found its key
    /// taken moves that owner's row a microsecond further next time.
    async fn write_indexed_changes(
        &self,
        changes: &[(&InboxRowItem, InboxRowItem)],
        message: &Message,
        bumps: &mut HashMap<String, u32>,
        attempt: u32,
    ) -> Result<Written, StoreError> {
        let mut written = Written::default();
        for chunk in changes.chunks(ROWS_PER_TRANSACTION) {
            let plan = MovePlan::new(self, chunk, message, bumps)?;
            match self.transact("AdvanceInboxRows", plan.items).await {
                Ok(Ok(())) => {
                    written.moved += chunk.len();
                    written.rows.extend(plan.moved_rows);
                }
                Ok(Err(cancelled)) => {
                    // A put whose key was taken collided with another conversation's
                    // row of the same owner; a delete whose condition failed means the
                    // index showed a row that moved or changed since: re-read either way.
                    for (index, owner) in &plan.key_free_puts {
                        if cancelled.condition_failed(*index) {
                            *bumps.entry(owner.clone()).or_default() += 1;
                        }
                    }
                    written.failure = Some(StoreError::Contention {
                        operation: "AdvanceInboxRows",
                        attempts: attempt + 1,
                    });
                }
                Err(err) if err.failure_kind() == Some(FailureKind::Rejected) => {
                    // DynamoDB rejects a transaction naming one item twice, which a view
                    // with ghosts could have led to; a fresh read may not. Not a verdict
                    // on the conversation: re-read, and in the end report it for retry.
                    tracing::warn!(error = %err, "inbox transaction rejected; re-reading");
                    written.failure = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Ok(written)
    }
}

/// What writing the changes of one index read did. Rows of transactions that landed
/// stay moved even when a later one failed.
#[derive(Default)]
struct Written {
    moved: usize,
    /// The rows as the landed transactions left them.
    rows: Vec<InboxRowItem>,
    /// Why the rows must be read again, if they must: the last transaction that failed.
    failure: Option<StoreError>,
}

/// What the hot path did.
enum Hinted {
    Done {
        advance: Advance,
        rows: Vec<InboxRowItem>,
    },
    /// The rows were not where the hint said (or a collision needs the index path);
    /// `moved` rows of earlier transactions did move and stay moved.
    Missed { moved: usize },
}

/// What the memberships say about the rows an index read showed.
enum Census {
    /// Every member's row is in the view (only members' rows are left in it); this many.
    Members(u32),
    /// A conversation the original system wrote, never migrated (no memberships): move
    /// what the index shows.
    Unmigrated,
    /// Not every member's row is visible yet.
    Lagging { seen: usize, expected: usize },
    /// No member, and the group's last member left: nothing left to move.
    Ended,
}

/// What each row of a conversation becomes for `batch`: the rows to write (as read, and
/// as they will be), and the rows left as they are.
fn plan_changes<'r>(
    rows: impl Iterator<Item = &'r InboxRowItem>,
    batch: &Newest,
    member_count: Option<u32>,
) -> (Vec<(&'r InboxRowItem, InboxRowItem)>, Vec<InboxRowItem>) {
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for row in rows {
        match advanced_row(row, batch, member_count) {
            Some(next) => changes.push((row, next)),
            None => unchanged.push(row.clone()),
        }
    }
    (changes, unchanged)
}

/// The row once `batch` is applied to it, or `None` if nothing changes: moved to the
/// batch's newest message when it shows an older one (its sort key is settled by the
/// plan), else rewritten in place only if it has messages to count.
fn advanced_row(
    row: &InboxRowItem,
    batch: &Newest,
    member_count: Option<u32>,
) -> Option<InboxRowItem> {
    let message = &batch.message;
    let mut next = row.clone();
    let counted = next.count_unread(&batch.arrivals);
    if row.last_message_at() < message.created_at.as_str() {
        // The message as the batch last saw it: an edit or delete in the same batch is
        // folded in (`coalesce::fold_changes`), so the preview never starts out stale.
        next.show_preview_of(message);
        next.last_message_at = Some(message.created_at.clone());
        next.last_sender_uuid = Some(message.sender.uuid);
        next.member_count = member_count.or(row.member_count);
        if next.kind == ConversationKind::Group {
            // A group's row shows who spoke last.
            next.user_uuid = message.sender.uuid;
            next.user_handle = message.sender.handle.clone();
            next.user_display_name = message.sender.display_name.clone();
        }
        Some(next)
    } else if row.previews_older_version_of(message) {
        // Already at this message (an earlier attempt of the batch moved it) but showing
        // an older version of it: the batch's edit or delete still lands.
        next.show_preview_of(message);
        Some(next)
    } else {
        (counted > 0).then_some(next)
    }
}

/// The transaction items that write some rows of a conversation.
struct MovePlan {
    items: Vec<TransactWriteItem>,
    /// The rows as they are once the transaction lands.
    moved_rows: Vec<InboxRowItem>,
    /// Item index and owner of every put that needs its key free, to find collisions.
    key_free_puts: Vec<(usize, String)>,
}

impl MovePlan {
    fn new(
        store: &Store,
        changes: &[(&InboxRowItem, InboxRowItem)],
        message: &Message,
        bumps: &HashMap<String, u32>,
    ) -> Result<Self, StoreError> {
        let mut plan = Self {
            items: Vec::with_capacity(changes.len() * 2),
            moved_rows: Vec::with_capacity(changes.len()),
            key_free_puts: Vec::new(),
        };
        for (row, next) in changes {
            let mut next = next.clone();
            if next.last_message_at() != row.last_message_at() {
                next.sk = target_sort_key(message, bumps.get(&row.pk).copied().unwrap_or(0));
            }
            if next.sk == row.sk {
                // A count only ever falls where the row's key changes: an add conditioned
                // on the count it read at this key must never see that value come back.
                next.member_count = row.member_count.or(next.member_count);
                // Recounted in place, or a row moved a microsecond on earlier already sits
                // at this key: rewrite it (a transaction cannot name one item twice).
                plan.items.push(store.put_row(&next, Some(row))?);
            } else {
                plan.items.push(store.delete_row(row)?);
                plan.key_free_puts.push((plan.items.len(), row.pk.clone()));
                plan.items.push(store.put_row(&next, None)?);
            }
            plan.moved_rows.push(next);
        }
        Ok(plan)
    }
}

impl Store {
    /// Deletes the row only if it is still exactly as read: if a concurrent writer moved or
    /// changed it, or the index showed a ghost, the transaction fails and the caller
    /// re-reads.
    fn delete_row(&self, row: &InboxRowItem) -> Result<TransactWriteItem, StoreError> {
        let unchanged = Unchanged::of(row)?;
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .condition_expression(unchanged.expression)
            .set_expression_attribute_names(Some(unchanged.names))
            .set_expression_attribute_values(non_empty(unchanged.values))
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Puts a moved row: at a free key, or in place of `replacing` if it is still as read.
    fn put_row(
        &self,
        row: &InboxRowItem,
        replacing: Option<&InboxRowItem>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(row)?));
        let put = match replacing {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => {
                let unchanged = Unchanged::of(previous)?;
                put.condition_expression(unchanged.expression)
                    .set_expression_attribute_names(Some(unchanged.names))
                    .set_expression_attribute_values(non_empty(unchanged.values))
            }
        }
        .build()
        .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    const GROUP: Uuid = Uuid::from_u128(0x9999);

    fn row(owner: u128) -> InboxRowItem {
        InboxRowItem {
            pk: keys::inbox_pk(Uuid::from_u128(owner)),
            sk: "t".to_owned(),
            message_group_uuid: GROUP,
            ..InboxRowItem::default()
        }
    }

    #[test]
    fn a_disabled_cache_remembers_nothing_and_a_full_one_evicts_the_oldest() {
        let disabled = RowPositions::disabled();
        disabled.remember(GROUP, vec![row(1)]);
        assert!(disabled.get(GROUP).is_none());
        let cache = RowPositions::new(1);
        cache.remember(Uuid::from_u128(1), vec![row(1)]);
        cache.remember(Uuid::from_u128(2), vec![row(2)]);
        assert!(cache.get(Uuid::from_u128(1)).is_none());
        assert_eq!(cache.get(Uuid::from_u128(2)).unwrap().len(), 1);
        cache.forget(Uuid::from_u128(2));
        assert!(cache.get(Uuid::from_u128(2)).is_none());
    }
}
