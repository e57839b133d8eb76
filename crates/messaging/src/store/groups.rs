//! Group membership changes: creating a group with its first message, adding members,
//! leaving. (Listing members is `memberships.rs`; marking read is `reads.rs`.)
//!
//! Every row's `member_count` is an upper bound of the group's rows, never below it: the
//! fan-out waits in the lagging index until it sees that many owners, or (seeing fewer)
//! asks the memberships, so a count too high costs one Query and a count too low would
//! leave a hidden row behind. Adding raises the count on every existing row in the
//! transaction that adds, each update conditioned on the count it replaces and always to a
//! higher value, so two adds never both succeed on one reading and every stream
//! environment's hint (whose conditions include the count) is broken, sending the next
//! fan-out to the index, where it finds the new rows.
//!
//! Leaving touches only the leaver's own items and the group's departures marker: a member
//! who keeps posting keeps moving every other row, so a leave conditioned on those rows
//! could be held off for good. The remaining rows keep their count, one too high, until
//! the fan-out next moves them: it sees fewer owners than the count, reads the memberships
//! and writes their number. A count only falls where a row's key changes, so no add can be
//! fooled by a count that went down and back up at the key it read.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use uuid::Uuid;

use super::idempotency::{ClientMessageId, Once, Repeat};
use super::inbox_index::target_sort_key;
use super::limits::{Charge, Limited};
use super::requests::backoff;
use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, key_item, to_item};
use crate::items::{
    GroupDeparturesItem, GroupEndedItem, InboxRowItem, MembershipItem, MessageItem,
};
use crate::keys::{self, Key};
use crate::model::{ConversationKind, Message, User};
use crate::schema::GROUP_INDEX_PARTITION_KEY;
use crate::timestamp::Timestamp;
use crate::validate::{GroupName, MAX_GROUP_MEMBERS, MessageText};

/// `TransactWriteItems` takes at most 100 items
/// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Members the creating transaction writes: a membership and an inbox row each, plus the
/// first message, in at most 100 items, so 49. A group of 50 gets its 50th member in a
/// second transaction, exactly as `POST .../members` adds one (see [`Store::create_group`]).
pub const MEMBERS_IN_CREATING_TRANSACTION: usize = (MAX_TRANSACTION_ITEMS - 1) / 2;

/// What adding members did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Members added; people already in the group are not added again.
    pub added: usize,
    /// Members the group has now.
    pub members: usize,
}

/// A group as one consistent read sees it: its memberships (strongly consistent), every
/// member's inbox row (from the index, one per member, re-read until it shows exactly the
/// members), and its newest message.
#[derive(Debug, Clone)]
struct GroupState {
    memberships: Vec<MembershipItem>,
    rows: Vec<InboxRowItem>,
    newest: Option<Message>,
}

impl GroupState {
    fn member_uuids(&self) -> HashSet<Uuid> {
        self.memberships.iter().map(|m| m.user_uuid).collect()
    }

    fn name(&self) -> String {
        self.rows
            .iter()
            .find_map(|row| row.name.clone())
            .unwrap_or_default()
    }
}

/// Where a new member's inbox row starts.
#[derive(Debug, Clone, Copy)]
enum NewRows<'m> {
    /// At the conversation's newest message, read: nothing from before joining counts.
    AtNewest,
    /// At the group's first message, unread: the members a creation adds after its first
    /// transaction see the welcome as everyone else does.
    Welcome(&'m Message),
}

impl NewRows<'_> {
    /// Where the rows start: the welcome, or the conversation's newest message.
    fn position<'s>(&'s self, state: &'s GroupState) -> Option<&'s Message> {
        match self {
            NewRows::Welcome(message) => Some(*message),
            NewRows::AtNewest => state.newest.as_ref(),
        }
    }

    /// `owner`'s new row of `group`, at `position`.
    fn row(
        &self,
        owner: Uuid,
        group: Uuid,
        name: &str,
        member_count: u32,
        position: &Message,
    ) -> InboxRowItem {
        let mut row = InboxRowItem::new_group(owner, group, name, member_count, position);
        if matches!(self, NewRows::AtNewest) {
            row.unread = 0;
            row.unread_at.clear();
            row.read_through = Some(position.created_at.clone());
        }
        row
    }
}

impl Store {
    /// Creates a group of `creator` and `others` (duplicates collapse; 1 to 49 others) with
    /// its first message.
    ///
    /// Up to 49 members, one transaction: every membership, every inbox row (the first
    /// message unread for everyone but the creator) and the message. `TransactWriteItems`
    /// takes at most 100 items, so 50 members (101 items) cannot be one: the first 49 are
    /// created as above, and the 50th is then added exactly as [`Store::add_members`] adds
    /// one, in a second transaction that also rewrites `member_count` on the 49 rows. Each
    /// transaction is atomic and every state between them is a whole, consistent group (of
    /// 49), so no reader, fan-out or push ever sees a member without a row or a count that
    /// disagrees with the rows. If the second fails after its retries, the group exists
    /// with 49 members and the error says so to the caller, who can add the last one.
    #[tracing::instrument(skip(self, creator, name, others, text), fields(table = %self.table, creator = %creator.uuid, others = others.len()), err(level = "debug"))]
    pub async fn create_group(
        &self,
        creator: &User,
        name: &GroupName,
        others: &[User],
        text: MessageText,
        now: Timestamp,
    ) -> Result<Message, StoreError> {
        self.create_group_as(creator, name, others, text, now, Uuid::new_v4())
            .await
    }

    /// [`Store::create_group`] with a chosen conversation id (demo data with stable ids).
    #[tracing::instrument(skip(self, creator, name, others, text), fields(table = %self.table, creator = %creator.uuid, others = others.len()), err(level = "debug"))]
    pub async fn create_group_as(
        &self,
        creator: &User,
        name: &GroupName,
        others: &[User],
        text: MessageText,
        now: Timestamp,
        group: Uuid,
    ) -> Result<Message, StoreError> {
        self.create_group_named(creator, name, others, text, now, group, None)
            .await
    }

    /// [`Store::create_group_as`], with the send record of a creation the client named.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_group_named(
        &self,
        creator: &User,
        name: &GroupName,
        others: &[User],
        text: MessageText,
        now: Timestamp,
        group: Uuid,
        client_message_id: Option<&ClientMessageId>,
    ) -> Result<Message, StoreError> {
        let members = distinct_members(creator, others)?;
        let mut message = Message::new(
            group,
            creator.summary(),
            text.into_string(),
            now.to_string(),
        );
        let mut once = self.once(creator.uuid, client_message_id, now);
        match self
            .refuse_blocked(creator.uuid, others.iter().map(|user| user.uuid))
            .await
        {
            // A block placed since the first creation does not change its answer.
            Err(StoreError::Blocked) if once.is_named() => {
                return match self.repeated_send(&once, &message).await? {
                    Repeat::Answer(first) | Repeat::Unfinished(first) => Ok(first),
                    Repeat::Gone => Err(StoreError::Blocked),
                };
            }
            checked => checked?,
        }
        // The send record takes an item of the creating transaction: one member fewer.
        let founding = if once.is_named() {
            MEMBERS_IN_CREATING_TRANSACTION - 1
        } else {
            MEMBERS_IN_CREATING_TRANSACTION
        };
        let (first, rest) = members.split_at(members.len().min(founding));
        let rest: Vec<User> = rest.iter().map(|user| (*user).clone()).collect();
        once.unfinished = !rest.is_empty();
        let charge = self.charge(creator.uuid, Limited::GroupChange, now)?;
        let (known, at) = match self
            .write_founding_members(first, name, &mut message, now, charge, &mut once)
            .await?
        {
            Founded::Written(state, at) => (Some(state), at),
            Founded::Repeated(first, false) => return Ok(first),
            // The first's second transaction never landed (it answered 503): this repeat
            // adds the last members, read afresh, and only then answers.
            Founded::Repeated(first, true) => {
                message = first;
                (None, now)
            }
        };
        if !rest.is_empty() {
            let finishing = once.finishing()?;
            self.add_to_group(
                creator.uuid,
                message.group_uuid,
                &rest,
                at,
                known,
                NewRows::Welcome(&message),
                finishing,
            )
            .await?;
        }
        Ok(message)
    }

    /// The creating transaction: every membership and inbox row of `first` and the
    /// message, at `now` or, when a member's inbox already holds another conversation's
    /// row at that microsecond, the first free one after it. Returns the group as written
    /// and the time it was written at.
    async fn write_founding_members(
        &self,
        first: &[&User],
        name: &GroupName,
        message: &mut Message,
        now: Timestamp,
        mut charge: Charge,
        once: &mut Once,
    ) -> Result<Founded, StoreError> {
        let group = message.group_uuid;
        let count = u32::try_from(first.len()).unwrap_or(u32::MAX);
        let mut at = now;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            message.place_at(at);
            let memberships: Vec<MembershipItem> = first
                .iter()
                .map(|member| MembershipItem::in_group(group, member.uuid, &message.created_at))
                .collect();
            let rows: Vec<InboxRowItem> = first
                .iter()
                .map(|member| {
                    InboxRowItem::new_group(member.uuid, group, name.as_str(), count, message)
                })
                .collect();
            let mut items = Vec::with_capacity(first.len() * 2 + 1);
            for (membership, row) in memberships.iter().zip(&rows) {
                items.push(self.put_new(membership)?);
                items.push(self.put_new(row)?);
            }
            items.push(self.put_new(&MessageItem::new(message))?);
            charge.add_to(&mut items);
            once.add_to(&mut items, message)?;
            match self.transact("CreateGroup", items).await? {
                Ok(()) => {
                    let state = GroupState {
                        memberships,
                        rows,
                        newest: Some(message.clone()),
                    };
                    return Ok(Founded::Written(state, at));
                }
                Err(cancelled) if once.repeated(&cancelled) => {
                    match self.repeated_send(once, message).await? {
                        Repeat::Answer(first) => return Ok(Founded::Repeated(first, false)),
                        Repeat::Unfinished(first) => return Ok(Founded::Repeated(first, true)),
                        Repeat::Gone => backoff(attempt).await,
                    }
                }
                Err(cancelled) if charge.refused(&cancelled) => return Err(charge.rate_limited()),
                // A member's inbox already holds another conversation's row at exactly
                // this microsecond (odd items are rows, the last is the message): the
                // whole group takes the next one.
                Err(cancelled)
                    if (0..first.len()).any(|i| cancelled.condition_failed(2 * i + 1))
                        || cancelled.condition_failed(2 * first.len()) =>
                {
                    at = at.next_micro();
                }
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            operation: "CreateGroup",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// Adds `users` to a group `caller` belongs to, each with an inbox row at the
    /// conversation's newest message, read (nothing from before joining counts). People
    /// already in the group are left as they are. One transaction: every new membership
    /// and row, and `member_count` on every existing row (at most 49 + 2 × 49 items).
    ///
    /// Reads the memberships (strongly consistent), every row (index, re-read until it
    /// shows exactly the members) and the newest message: three requests sent together,
    /// then the transaction; a concurrent change of the group re-reads, a bounded number of
    /// times.
    #[tracing::instrument(skip(self, users), fields(table = %self.table, users = users.len()), err(level = "debug"))]
    pub async fn add_members(
        &self,
        caller: Uuid,
        group: Uuid,
        users: &[User],
        now: Timestamp,
    ) -> Result<Added, StoreError> {
        if users.iter().any(|user| user.uuid == caller) {
            return Err(StoreError::SelfConversation);
        }
        self.refuse_blocked(caller, users.iter().map(|user| user.uuid))
            .await?;
        self.add_to_group(caller, group, users, now, None, NewRows::AtNewest, None)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn add_to_group(
        &self,
        caller: Uuid,
        group: Uuid,
        users: &[User],
        now: Timestamp,
        mut known: Option<GroupState>,
        new_rows: NewRows<'_>,
        finishing: Option<TransactWriteItem>,
    ) -> Result<Added, StoreError> {
        // An add is a group change; a creation's 50th member is part of the creation, which
        // was charged already.
        let mut charge = match new_rows {
            NewRows::AtNewest => self.charge(caller, Limited::GroupChange, now)?,
            NewRows::Welcome(_) => Charge::none(),
        };
        // A new member whose inbox holds another conversation's row at exactly the new
        // row's microsecond gets the row a microsecond later.
        let mut bumps: HashMap<Uuid, u32> = HashMap::new();
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let state = match known.take() {
                Some(state) => state,
                None => {
                    if attempt > 0 {
                        backoff(attempt - 1).await;
                    }
                    self.group_state(group, caller).await?
                }
            };
            let current = state.member_uuids();
            let joining = newcomers(users, &current);
            if joining.is_empty() {
                if let Some(finish) = &finishing {
                    // Someone added them meanwhile: only the record is left to finish (a
                    // cancellation means it is gone, which finishes it as well).
                    let _ = self
                        .transact("FinishCreateGroup", vec![finish.clone()])
                        .await?;
                }
                return Ok(Added {
                    added: 0,
                    members: current.len(),
                });
            }
            let total = current.len() + joining.len();
            if total > MAX_GROUP_MEMBERS {
                return Err(StoreError::GroupTooLarge {
                    members: total,
                    max: MAX_GROUP_MEMBERS,
                });
            }
            let mut adding =
                self.adding_transaction(group, &state, &joining, new_rows, now, &bumps)?;
            charge.add_to(&mut adding.items);
            // A named creation's record learns, with the last members, that it is finished.
            adding.items.extend(finishing.clone());
            match self.transact("AddGroupMembers", adding.items).await? {
                Ok(()) => {
                    return Ok(Added {
                        added: joining.len(),
                        members: total,
                    });
                }
                Err(cancelled) if charge.refused(&cancelled) => return Err(charge.rate_limited()),
                Err(cancelled) => {
                    for (index, user) in &adding.row_puts {
                        if cancelled.condition_failed(*index) {
                            *bumps.entry(*user).or_default() += 1;
                        }
                    }
                    tracing::debug!(attempt, "group changed while adding members; re-reading");
                }
            }
        }
        Err(StoreError::Contention {
            operation: "AddGroupMembers",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// The transaction adding `joining` to the group as `state` shows it: `member_count` on
    /// every existing row (conditioned on the count read), and a membership and an inbox
    /// row per newcomer, each row a microsecond further per collision seen (`bumps`).
    fn adding_transaction(
        &self,
        group: Uuid,
        state: &GroupState,
        joining: &[&User],
        new_rows: NewRows<'_>,
        now: Timestamp,
        bumps: &HashMap<Uuid, u32>,
    ) -> Result<Adding, StoreError> {
        let position = new_rows
            .position(state)
            .ok_or(StoreError::NoMembers(group))?;
        let members = state.member_uuids().len();
        let new_count = count_of(members + joining.len());
        let name = state.name();
        let joined_at = now.to_string();
        let mut items = Vec::with_capacity(state.rows.len() + 2 * joining.len());
        for row in &state.rows {
            // A row a leave left too high keeps rising, by one at least: an add must always
            // change the count it conditions on (see the module's comment).
            let raised = row
                .member_count
                .map_or(new_count, |count| new_count.max(count.saturating_add(1)));
            items.push(self.set_member_count(row, row.member_count, raised)?);
        }
        let mut row_puts = Vec::with_capacity(joining.len());
        for user in joining {
            items.push(self.put_new(&MembershipItem::in_group(group, user.uuid, &joined_at))?);
            let mut row = new_rows.row(user.uuid, group, &name, new_count, position);
            row.sk = target_sort_key(position, bumps.get(&user.uuid).copied().unwrap_or(0));
            row_puts.push((items.len(), user.uuid));
            items.push(self.put_new(&row)?);
        }
        Ok(Adding { items, row_puts })
    }

    /// Removes `member` from a group: the membership and the member's inbox row, in one
    /// transaction with the group's departures marker; the last member's leave also marks
    /// the group ended. A direct conversation cannot be left.
    ///
    /// Nothing else is read or written: the other rows keep their `member_count` (the
    /// fan-out corrects it when it next moves them), so no other member's activity can
    /// hold a leave off. What can cancel one: the leaver's own row moving between the read
    /// and the write (a message fanned out meanwhile; the row is then read again from the
    /// table, strongly consistent, from where it was seen, and the leave retried at once)
    /// and another membership change landing meanwhile (re-read after a backoff).
    #[tracing::instrument(skip(self, now), fields(table = %self.table), err(level = "debug"))]
    pub async fn leave_group(
        &self,
        member: Uuid,
        group: Uuid,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // The leaver's row as last seen. Rows only move forward, so it is there or later.
        let mut seen: Option<InboxRowItem> = None;
        let mut wait = false;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if wait {
                backoff(attempt - 1).await;
            }
            let (partition, row) = tokio::join!(
                self.group_partition(group),
                self.current_row(member, group, seen.as_ref())
            );
            let partition = partition?;
            let Some(own) = partition.memberships.iter().find(|m| m.user_uuid == member) else {
                return Err(StoreError::NotMember(group));
            };
            if own.kind == ConversationKind::Direct {
                return Err(StoreError::DirectConversation(group));
            }
            let row = row?;
            let last = partition.memberships.len() == 1;
            let departures = partition.departures.as_ref().map(|d| d.departures);
            let mut items = vec![
                self.delete_existing(&keys::membership(group, member))?,
                self.put_departures(group, departures, &now)?,
            ];
            if last {
                // The group ends for good, and says so to a fan-out of a message posted
                // just before.
                items.push(self.put_new(&GroupEndedItem::new(group, &now.to_string()))?);
            }
            let row_item = items.len();
            match &row {
                Some(row) => items.push(self.delete_own_row(row, last)?),
                None => {
                    tracing::warn!(%group, %member, "member without an inbox row; leaving anyway")
                }
            }
            match self.transact("LeaveGroup", items).await? {
                Ok(()) => return Ok(()),
                Err(cancelled) => {
                    // The row moved on (or, for the last member, someone was added), or a
                    // fan-out is moving it right now: the index is behind, so the row is
                    // read again from the table, at once unless another writer holds it.
                    if row.is_some() && cancelled.condition_failed(row_item) {
                        tracing::debug!(attempt, "the leaver's row moved; reading it again");
                        seen = row;
                        wait = false;
                    } else {
                        tracing::debug!(attempt, "group changed while leaving; re-reading");
                        if row.is_some() && cancelled.conflicted(row_item) {
                            seen = row;
                        }
                        wait = true;
                    }
                }
            }
        }
        Err(StoreError::Contention {
            operation: "LeaveGroup",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// The group as one change needs it, for `caller`: refuses a non-member and a direct
    /// conversation at once; re-reads (bounded) until the index shows exactly one row per
    /// member, since every row must be rewritten.
    async fn group_state(&self, group: Uuid, caller: Uuid) -> Result<GroupState, StoreError> {
        let mut last_failure = None;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            let (memberships, view, newest) = tokio::join!(
                self.memberships(group),
                self.index_view(group),
                self.newest_message(group)
            );
            let memberships = memberships?;
            let Some(own) = memberships.iter().find(|m| m.user_uuid == caller) else {
                return Err(StoreError::NotMember(group));
            };
            if own.kind == ConversationKind::Direct {
                return Err(StoreError::DirectConversation(group));
            }
            let (view, newest) = (view?, newest?);
            let members: HashSet<Uuid> = memberships.iter().map(|m| m.user_uuid).collect();
            let owners: HashSet<Uuid> = view.rows.iter().filter_map(InboxRowItem::owner).collect();
            if owners == members && view.skipped == 0 {
                return Ok(GroupState {
                    memberships,
                    rows: view.rows,
                    newest,
                });
            }
            tracing::debug!(
                seen = owners.len(),
                members = members.len(),
                "index does not show the group's rows yet; re-reading"
            );
            last_failure = Some(StoreError::IndexLagging {
                group,
                seen: owners.len(),
                expected: members.len(),
            });
        }
        Err(last_failure.unwrap_or(StoreError::Contention {
            operation: "ReadGroup",
            attempts: MAX_WRITE_ATTEMPTS,
        }))
    }
    /// Sets a row's member count, if it still carries the count the change was read with
    /// (none: the original system's row, never moved since).
    fn set_member_count(
        &self,
        row: &InboxRowItem,
        from: Option<u32>,
        to: u32,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .update_expression("SET #count = :to")
            .expression_attribute_names("#count", "member_count")
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
            .expression_attribute_values(
                ":group",
                AttributeValue::S(row.message_group_uuid.to_string()),
            );
        let update = match from {
            Some(from) => update
                .condition_expression("#count = :from AND #group = :group")
                .expression_attribute_values(":from", AttributeValue::N(from.to_string())),
            None => update.condition_expression("attribute_not_exists(#count) AND #group = :group"),
        }
        .build()
        .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Deletes the leaver's row, if it is still at the key read. The last member's also
    /// needs the count read: every add raises it on every row, so an add that landed since
    /// (the group is then not ending) cancels the leave.
    fn delete_own_row(
        &self,
        row: &InboxRowItem,
        last: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(
                ":group",
                AttributeValue::S(row.message_group_uuid.to_string()),
            );
        let delete = match (last, row.member_count) {
            (false, _) => delete.condition_expression("#group = :group"),
            (true, Some(count)) => delete
                .condition_expression("#group = :group AND #count = :count")
                .expression_attribute_names("#count", "member_count")
                .expression_attribute_values(":count", AttributeValue::N(count.to_string())),
            (true, None) => delete
                .condition_expression("#group = :group AND attribute_not_exists(#count)")
                .expression_attribute_names("#count", "member_count"),
        }
        .build()
        .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// One more departure on the group's marker, if it still holds the number read (none:
    /// the first leave). Two leaves of one group never both land on one reading.
    fn put_departures(
        &self,
        group: Uuid,
        read: Option<u64>,
        now: &Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let marker =
            GroupDeparturesItem::new(group, read.unwrap_or(0).saturating_add(1), &now.to_string());
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&marker)?));
        let put = match read {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(read) => put
                .condition_expression("#departures = :read")
                .expression_attribute_names("#departures", "departures")
                .expression_attribute_values(":read", AttributeValue::N(read.to_string())),
        }
        .build()
        .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_existing(&self, key: &Key) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(key)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

/// What the creating transaction did.
enum Founded {
    /// Wrote the group: as written, and at what time.
    Written(GroupState, Timestamp),
    /// Found the creation named by the client done before: its first answer, and whether
    /// its second transaction is still to come.
    Repeated(Message, bool),
}

/// The transaction that adds members.
struct Adding {
    items: Vec<TransactWriteItem>,
    /// Item index and owner of every new row, to find the ones whose key was taken.
    row_puts: Vec<(usize, Uuid)>,
}

/// A new group's members, the creator first, each once: refuses the creator among the
/// others, no others, and more than [`MAX_GROUP_MEMBERS`].
fn distinct_members<'u>(
    creator: &'u User,
    others: &'u [User],
) -> Result<Vec<&'u User>, StoreError> {
    let mut members: Vec<&User> = vec![creator];
    for user in others {
        if user.uuid == creator.uuid {
            return Err(StoreError::SelfConversation);
        }
        if !members.iter().any(|member| member.uuid == user.uuid) {
            members.push(user);
        }
    }
    if members.len() < 2 {
        return Err(StoreError::GroupWithoutOthers);
    }
    if members.len() > MAX_GROUP_MEMBERS {
        return Err(StoreError::GroupTooLarge {
            members: members.len(),
            max: MAX_GROUP_MEMBERS,
        });
    }
    Ok(members)
}

/// The `users` not among `current`, each once.
fn newcomers<'u>(users: &'u [User], current: &HashSet<Uuid>) -> Vec<&'u User> {
    let mut joining: Vec<&User> = Vec::new();
    for user in users {
        if !current.contains(&user.uuid) && !joining.iter().any(|j| j.uuid == user.uuid) {
            joining.push(user);
        }
    }
    joining
}

fn count_of(members: usize) -> u32 {
    u32::try_from(members).unwrap_or(u32::MAX)
}
