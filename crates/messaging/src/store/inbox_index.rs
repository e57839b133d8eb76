//! The group index (`message-group-sk-index`) seen as a conversation's inbox rows, and the
//! condition that proves such a view right when a row is written: shared by the fan-out,
//! membership changes and reads.
//!
//! The index is eventually consistent: a Query may miss rows, show a deleted row beside its
//! moved copy (a ghost), or show a row where it used to be. A view keeps one row per owner,
//! and every write made from it is conditioned on the row being exactly as read
//! ([`Unchanged`]), so a stale view is re-read, never written from.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::{Item, Store, StoreError, from_item, to_item};
use crate::items::InboxRowItem;
use crate::keys;
use crate::model::Message;
use crate::schema::{GROUP_INDEX, GROUP_INDEX_PARTITION_KEY, PARTITION_KEY, SORT_KEY};
use crate::timestamp::Timestamp;

/// The attributes a moved row copies from the row it replaces (or, for the unread ones,
/// computes from it). The conditions of a move require each to be unchanged, so a move
/// never writes back a stale copy (from a lagging index or an outdated hint) over a newer
/// one: a member added or leaving (`member_count`), a read (`unread`, `unread_at`,
/// `read_through`, and the other member's read, `peer_read_through`) or a concurrent fan-out
/// cancels the move, which then re-reads.
const COPIED_ATTRIBUTES: [&str; 11] = [
    GROUP_INDEX_PARTITION_KEY,
    "user_uuid",
    "user_display_name",
    "user_handle",
    "member_count",
    "kind",
    "name",
    "unread",
    "unread_at",
    "read_through",
    "peer_read_through",
];
/// What "newer" is decided on; part of the row's identity for the conditions as well.
const LAST_MESSAGE_AT: &str = "last_message_at";
/// Which version of the previewed message the row shows (edits and deletes raise it,
/// `store/previews.rs`). Not copied by a move (the new message brings its own), but
/// conditioned on by every write from a read of the row, so an in-place rewrite from a
/// stale read (a lagging index, an outdated hint, a read racing an edit) can never put an
/// older text back.
pub(super) const MESSAGE_REVISION: &str = "message_revision";

impl Store {
    /// What the group index shows of `group`'s inbox rows, one row per owner.
    pub(super) async fn index_view(&self, group: Uuid) -> Result<IndexView, StoreError> {
        let items = self.index_items(self.index_query(group)).await?;
        Ok(IndexView::from_items(group, items))
    }

    /// `owner`'s row of `group`: from the index the first time (cheap, and usually right),
    /// and when the index shows none or a row it showed (`seen`) has moved, from the table
    /// itself (strongly consistent, so a lagging index cannot show the old position
    /// again): the owner's inbox from where the row was seen onwards, newest first, which
    /// for a conversation that keeps moving is a few items.
    pub(super) async fn current_row(
        &self,
        owner: Uuid,
        group: Uuid,
        seen: Option<&InboxRowItem>,
    ) -> Result<Option<InboxRowItem>, StoreError> {
        if seen.is_none()
            && let Some(row) = self.indexed_row_of(owner, group).await?
        {
            return Ok(Some(row));
        }
        let mut query = self
            .client
            .query()
            .table_name(self.table())
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::inbox_pk(owner)))
            .expression_attribute_values(":group", AttributeValue::S(group.to_string()))
            .filter_expression("#group = :group")
            .scan_index_forward(false)
            .consistent_read(true);
        query = match seen {
            Some(row) => query
                .key_condition_expression("#pk = :pk AND #sk >= :seen")
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":seen", AttributeValue::S(row.sk.clone())),
            None => query.key_condition_expression("#pk = :pk"),
        };
        let mut pages = query.into_paginator().items().send();
        // Newest first: the first match is the row (one per owner and conversation).
        if let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            return Ok(Some(from_item::<InboxRowItem>(item)?));
        }
        Ok(None)
    }

    /// `owner`'s row of `group`, as the index shows it (the newest, if it shows a ghost
    /// beside it). One Query of the conversation, filtered to the owner's partition.
    pub(super) async fn indexed_row_of(
        &self,
        owner: Uuid,
        group: Uuid,
    ) -> Result<Option<InboxRowItem>, StoreError> {
        let query = self
            .index_query(group)
            .filter_expression("#pk = :pk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::inbox_pk(owner)));
        let items = self.index_items(query).await?;
        Ok(IndexView::from_items(group, items)
            .rows
            .into_iter()
            .find(|row| row.owner() == Some(owner)))
    }

    pub(super) fn index_query(&self, group: Uuid) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table())
            .index_name(GROUP_INDEX)
            .key_condition_expression("#group = :group")
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(":group", AttributeValue::S(group.to_string()))
    }

    /// Every item `query` finds, all pages.
    pub(super) async fn index_items(
        &self,
        query: QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut pages = query.into_paginator().items().send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(|err| StoreError::from_sdk("Query", err))?);
        }
        Ok(items)
    }
}

/// The index's view of one conversation's rows.
#[derive(Debug, Default)]
pub(super) struct IndexView {
    /// At most one row per owner: the newest the index shows.
    pub(super) rows: Vec<InboxRowItem>,
    /// Distinct owners seen, corrupt rows included (they exist, even if they cannot move).
    pub(super) owners: usize,
    /// The largest member count any row carries.
    pub(super) member_count: Option<u32>,
    /// Entries that are not a readable inbox row of this conversation.
    pub(super) skipped: usize,
}

impl IndexView {
    pub(super) fn from_items(group: Uuid, items: Vec<Item>) -> Self {
        let mut view = Self::default();
        let mut newest: HashMap<String, InboxRowItem> = HashMap::new();
        let mut corrupt_owners: HashSet<String> = HashSet::new();
        for item in items {
            let pk = match item.get(PARTITION_KEY) {
                Some(AttributeValue::S(pk)) if pk.starts_with(keys::INBOX_PREFIX) => pk.clone(),
                other => {
                    view.skipped += 1;
                    tracing::warn!(%group, pk = ?other, "index entry is not an inbox row; left alone");
                    continue;
                }
            };
            let row = match from_item::<InboxRowItem>(item) {
                Ok(row) if row.message_group_uuid == group => row,
                Ok(row) => {
                    view.skipped += 1;
                    tracing::warn!(%group, pk = %row.pk, sk = %row.sk, "index entry of another conversation; left alone");
                    continue;
                }
                Err(err) => {
                    view.skipped += 1;
                    tracing::warn!(%group, error = %err, "corrupt inbox row; left alone, the other rows still move");
                    corrupt_owners.insert(pk);
                    continue;
                }
            };
            view.member_count = view.member_count.max(row.member_count);
            // Two rows of one owner: a ghost (a deleted row the index still shows) beside
            // its moved copy. Rows only move forward, so the newer one is the live one; a
            // transaction must never name both (DynamoDB rejects that).
            match newest.get(&row.pk) {
                Some(kept) if position(kept) >= position(&row) => {}
                _ => {
                    newest.insert(row.pk.clone(), row);
                }
            }
        }
        corrupt_owners.retain(|owner| !newest.contains_key(owner));
        view.owners = newest.len() + corrupt_owners.len();
        view.rows = newest.into_values().collect();
        view.rows.sort_by(|a, b| a.pk.cmp(&b.pk));
        view
    }
}

fn position(row: &InboxRowItem) -> (&str, &str) {
    (row.last_message_at(), &row.sk)
}

/// A condition that holds only while the item at a row's key is that row as read: this
/// conversation's, showing the same last message, with the same copied attributes. It is
/// what proves a hint or an index read right.
pub(super) struct Unchanged {
    pub(super) expression: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

impl Unchanged {
    pub(super) fn of(row: &InboxRowItem) -> Result<Self, StoreError> {
        let item = to_item(row)?;
        let mut condition = Self {
            expression: String::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        };
        for (i, attribute) in COPIED_ATTRIBUTES
            .iter()
            .chain([&LAST_MESSAGE_AT, &MESSAGE_REVISION])
            .enumerate()
        {
            let (name, value) = (format!("#a{i}"), format!(":a{i}"));
            if !condition.expression.is_empty() {
                condition.expression.push_str(" AND ");
            }
            match item.get(*attribute) {
                Some(current) => {
                    condition.expression.push_str(&format!("{name} = {value}"));
                    condition.values.insert(value, current.clone());
                }
                // The original system's rows have no count and no last_message_at.
                None => condition
                    .expression
                    .push_str(&format!("attribute_not_exists({name})")),
            }
            condition.names.insert(name, (*attribute).to_owned());
        }
        Ok(condition)
    }
}

pub(super) fn non_empty(
    values: HashMap<String, AttributeValue>,
) -> Option<HashMap<String, AttributeValue>> {
    (!values.is_empty()).then_some(values)
}

/// Where a row moved to `message` goes: at the message's time, or `bump` microseconds
/// later when the owner's inbox already holds another conversation's row there.
pub(super) fn target_sort_key(message: &Message, bump: u32) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserSummary;

    const GROUP: Uuid = Uuid::from_u128(0x9999);

    fn row(owner: u128, at: &str, count: Option<u32>) -> InboxRowItem {
        InboxRowItem {
            pk: keys::inbox_pk(Uuid::from_u128(owner)),
            sk: at.to_owned(),
            message_group_uuid: GROUP,
            message: format!("at {at}"),
            user_uuid: Uuid::from_u128(owner + 100),
            user_display_name: "Other".into(),
            user_handle: "other".into(),
            last_message_at: Some(at.to_owned()),
            member_count: count,
            ..InboxRowItem::default()
        }
    }

    fn items(rows: &[InboxRowItem]) -> Vec<Item> {
        rows.iter().map(|row| to_item(row).unwrap()).collect()
    }

    #[test]
    fn a_ghost_beside_its_moved_copy_counts_once_and_the_newer_row_wins() {
        let t1 = "2025-01-01T00:00:01.000000+00:00";
        let t2 = "2025-01-01T00:00:02.000000+00:00";
        // The index shows owner 1 twice: at t1 (deleted, still indexed) and at t2.
        let view = IndexView::from_items(
            GROUP,
            items(&[
                row(1, t2, Some(2)),
                row(1, t1, Some(2)),
                row(2, t2, Some(2)),
            ]),
        );
        assert_eq!(view.owners, 2);
        assert_eq!(view.member_count, Some(2));
        assert_eq!(view.rows.len(), 2);
        assert!(view.rows.iter().all(|row| row.sk == t2), "{:?}", view.rows);
        // Whatever the order the index returns them in.
        let view = IndexView::from_items(GROUP, items(&[row(1, t1, Some(2)), row(1, t2, Some(2))]));
        assert_eq!(view.rows.len(), 1);
        assert_eq!(view.rows[0].sk, t2);
    }

    #[test]
    fn corrupt_and_foreign_entries_are_skipped_but_corrupt_rows_count_as_seen() {
        let t1 = "2025-01-01T00:00:01.000000+00:00";
        let mut corrupt = to_item(&row(3, t1, Some(3))).unwrap();
        corrupt.remove("user_uuid");
        let mut foreign = to_item(&row(4, t1, Some(3))).unwrap();
        foreign.insert(PARTITION_KEY.into(), AttributeValue::S("USER#x".into()));
        let mut other_group = row(5, t1, Some(3));
        other_group.message_group_uuid = Uuid::from_u128(1);
        let mut entries = items(&[row(1, t1, Some(3)), row(2, t1, Some(3)), other_group]);
        entries.extend([corrupt, foreign]);
        let view = IndexView::from_items(GROUP, entries);
        assert_eq!(view.rows.len(), 2);
        assert_eq!(view.skipped, 3);
        assert_eq!(view.owners, 3, "the corrupt row's owner has a row");
    }

    #[test]
    fn the_original_systems_rows_carry_no_member_count() {
        let view =
            IndexView::from_items(GROUP, items(&[row(1, "2023-01-01T00:00:00+00:00", None)]));
        assert_eq!(view.member_count, None);
        assert!(
            IndexView::from_items(GROUP, Vec::new())
                .member_count
                .is_none()
        );
    }

    #[test]
    fn a_move_is_conditioned_on_every_copied_attribute() {
        let mut original = row(1, "2023-01-01T00:00:00+00:00", None);
        original.last_message_at = None;
        let condition = Unchanged::of(&original).unwrap();
        let named: Vec<&str> = condition.names.values().map(String::as_str).collect();
        for attribute in COPIED_ATTRIBUTES
            .iter()
            .chain([&LAST_MESSAGE_AT, &MESSAGE_REVISION])
        {
            assert!(named.contains(attribute), "{attribute} unchecked");
        }
        // Absent attributes must stay absent: the original row has no position, count,
        // kind, name, unread state, peer read or preview revision.
        assert_eq!(
            condition.expression.matches("attribute_not_exists").count(),
            9,
            "{}",
            condition.expression
        );
        assert_eq!(condition.values.len(), 4);
    }

    #[test]
    fn a_move_is_cancelled_by_the_other_members_read_landing_first() {
        let mut row = row(1, "2025-01-01T00:00:01.000000+00:00", Some(2));
        row.peer_read_through = Some("2025-01-01T00:00:01.000000+00:00".into());
        let condition = Unchanged::of(&row).unwrap();
        let name = condition
            .names
            .iter()
            .find(|(_, attribute)| attribute.as_str() == "peer_read_through")
            .map(|(name, _)| name.clone())
            .expect("peer_read_through is conditioned on");
        let value = name.replace('#', ":");
        assert!(
            condition.expression.contains(&format!("{name} = {value}")),
            "{}",
            condition.expression
        );
        assert_eq!(
            condition.values[&value],
            AttributeValue::S("2025-01-01T00:00:01.000000+00:00".into())
        );
    }

    #[test]
    fn bumped_sort_keys_follow_the_message() {
        let message = Message {
            life: Default::default(),
            group_uuid: GROUP,
            uuid: Uuid::nil(),
            text: "x".into(),
            created_at: "2025-01-01T00:00:00.999999+00:00".into(),
            sender: UserSummary {
                uuid: Uuid::nil(),
                handle: "h".into(),
                display_name: "H".into(),
            },
        };
        assert_eq!(target_sort_key(&message, 0), message.created_at);
        assert_eq!(
            target_sort_key(&message, 2),
            "2025-01-01T00:00:01.000001+00:00"
        );
    }
}
