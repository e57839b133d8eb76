//! Group conversations: creating one with its first message, listing, adding and removing
//! members, and marking a conversation read.
//!
//! Every membership change rewrites `member_count` on every remaining inbox row in the
//! transaction that changes the memberships, each update conditioned on the count it
//! replaces. The count is what the fan-out waits for in the lagging index, so it must never
//! say more rows than exist (or fewer); and as every change replaces it, two concurrent
//! changes of one group cannot both succeed on what they read: the second re-reads.
//! Changing the rows also breaks every stream environment's hint for the conversation (its
//! conditions include the count), so the next fan-out reads the index and finds new rows.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, TransactWriteItem, Update,
};
use uuid::Uuid;

use super::fanout::{IndexView, Unchanged, non_empty, target_sort_key};
use super::{Item, MAX_WRITE_ATTEMPTS, Store, StoreError, backoff, from_item, key_item};
use crate::items::{InboxRowItem, MembershipItem, MessageItem, UserItem};
use crate::keys::{self, Key};
use crate::model::{ConversationKind, Message, User};
use crate::schema::{GROUP_INDEX, GROUP_INDEX_PARTITION_KEY, PARTITION_KEY};
use crate::timestamp::Timestamp;
use crate::validate::{GroupName, Handle, MAX_GROUP_MEMBERS, MessageText};

/// `TransactWriteItems` takes at most 100 items
/// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Members the creating transaction writes: a membership and an inbox row each, plus the
/// first message, in at most 100 items, so 49. A group of 50 gets its 50th member in a
/// second transaction, exactly as `POST .../members` adds one (see [`Store::create_group`]).
pub const MEMBERS_IN_CREATING_TRANSACTION: usize = (MAX_TRANSACTION_ITEMS - 1) / 2;

/// `BatchGetItem` takes at most 100 keys.
const MAX_BATCH_GET_KEYS: usize = 100;

/// How many times marking read re-reads the caller's row when a write (a fan-out, another
/// read) changed it first, or the index does not show it yet.
const MARK_READ_ATTEMPTS: u32 = 3;

/// One member of a conversation, as `GET /api/message_groups/{id}/members` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub uuid: Uuid,
    pub handle: String,
    pub display_name: String,
    pub joined_at: String,
}

/// What adding members did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Members added; people already in the group are not added again.
    pub added: usize,
    /// Members the group has now.
    pub members: usize,
}

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
        let (first, rest) = members.split_at(members.len().min(MEMBERS_IN_CREATING_TRANSACTION));
        let count = u32::try_from(first.len()).unwrap_or(u32::MAX);
        let mut message = Message::new(
            group,
            creator.summary(),
            text.into_string(),
            now.to_string(),
        );
        let mut at = now;
        let mut created = None;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            message.created_at = at.to_string();
            let memberships: Vec<MembershipItem> = first
                .iter()
                .map(|member| MembershipItem::in_group(group, member.uuid, &message.created_at))
                .collect();
            let rows: Vec<InboxRowItem> = first
                .iter()
                .map(|member| {
                    InboxRowItem::new_group(member.uuid, group, name.as_str(), count, &message)
                })
                .collect();
            let mut items = Vec::with_capacity(first.len() * 2 + 1);
            for (membership, row) in memberships.iter().zip(&rows) {
                items.push(self.put_new(membership)?);
                items.push(self.put_new(row)?);
            }
            items.push(self.put_new(&MessageItem::new(&message))?);
            match self.transact("CreateGroup", items).await? {
                Ok(()) => {
                    created = Some(GroupState {
                        memberships,
                        rows,
                        newest: Some(message.clone()),
                    });
                    break;
                }
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
        let Some(state) = created else {
            return Err(StoreError::Contention {
                operation: "CreateGroup",
                attempts: MAX_WRITE_ATTEMPTS,
            });
        };
        if !rest.is_empty() {
            let rest: Vec<User> = rest.iter().map(|user| (*user).clone()).collect();
            self.add_to_group(
                creator.uuid,
                group,
                &rest,
                at,
                Some(state),
                NewRows::Welcome(&message),
            )
            .await?;
        }
        Ok(message)
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
        self.add_to_group(caller, group, users, now, None, NewRows::AtNewest)
            .await
    }

    async fn add_to_group(
        &self,
        caller: Uuid,
        group: Uuid,
        users: &[User],
        now: Timestamp,
        mut known: Option<GroupState>,
        new_rows: NewRows<'_>,
    ) -> Result<Added, StoreError> {
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
            let mut joining: Vec<&User> = Vec::new();
            for user in users {
                if !current.contains(&user.uuid) && !joining.iter().any(|j| j.uuid == user.uuid) {
                    joining.push(user);
                }
            }
            if joining.is_empty() {
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
            let position = match new_rows {
                NewRows::Welcome(message) => message,
                NewRows::AtNewest => state.newest.as_ref().ok_or(StoreError::NoMembers(group))?,
            };
            let (old_count, new_count) = (count_of(current.len()), count_of(total));
            let name = state.name();
            let joined_at = now.to_string();
            let mut items = Vec::with_capacity(state.rows.len() + 2 * joining.len());
            for row in &state.rows {
                items.push(self.set_member_count(row, old_count, new_count)?);
            }
            let mut row_puts = Vec::with_capacity(joining.len());
            for user in &joining {
                items.push(self.put_new(&MembershipItem::in_group(group, user.uuid, &joined_at))?);
                let mut row = InboxRowItem::new_group(user.uuid, group, &name, new_count, position);
                if matches!(new_rows, NewRows::AtNewest) {
                    row.unread = 0;
                    row.unread_at.clear();
                    row.read_through = Some(position.created_at.clone());
                }
                row.sk = target_sort_key(position, bumps.get(&user.uuid).copied().unwrap_or(0));
                row_puts.push((items.len(), user.uuid));
                items.push(self.put_new(&row)?);
            }
            match self.transact("AddGroupMembers", items).await? {
                Ok(()) => {
                    return Ok(Added {
                        added: joining.len(),
                        members: total,
                    });
                }
                Err(cancelled) => {
                    for (index, user) in &row_puts {
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

    /// Removes `member` from a group: the membership, the member's inbox row, and one from
    /// `member_count` on every other row, in one transaction (at most 51 items). A direct
    /// conversation cannot be left.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn leave_group(&self, member: Uuid, group: Uuid) -> Result<(), StoreError> {
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            let state = self.group_state(group, member).await?;
            let count = count_of(state.memberships.len());
            let mut items = vec![self.delete_existing(&keys::membership(group, member))?];
            for row in &state.rows {
                if row.owner() == Some(member) {
                    items.push(self.delete_row_of_count(row, count)?);
                } else {
                    items.push(self.set_member_count(row, count, count - 1)?);
                }
            }
            match self.transact("LeaveGroup", items).await? {
                Ok(()) => return Ok(()),
                Err(_) => tracing::debug!(attempt, "group changed while leaving; re-reading"),
            }
        }
        Err(StoreError::Contention {
            operation: "LeaveGroup",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// The members of a conversation `reader` belongs to (direct or group), oldest member
    /// first: one strongly consistent Query of the memberships, one `BatchGetItem` of the
    /// profiles.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn group_members(
        &self,
        reader: Uuid,
        group: Uuid,
    ) -> Result<Vec<Member>, StoreError> {
        let memberships = self.memberships(group).await?;
        if !memberships.iter().any(|m| m.user_uuid == reader) {
            return Err(StoreError::NotMember(group));
        }
        let keys: Vec<Key> = memberships
            .iter()
            .map(|m| keys::user_profile(m.user_uuid))
            .collect();
        let profiles: HashMap<Uuid, User> = self
            .batch_get(keys)
            .await?
            .into_iter()
            .map(|item| from_item::<UserItem>(item).map(UserItem::into_user))
            .map(|user| user.map(|user| (user.uuid, user)))
            .collect::<Result<_, _>>()?;
        let mut members: Vec<Member> = memberships
            .into_iter()
            .filter_map(|m| match profiles.get(&m.user_uuid) {
                Some(user) => Some(Member {
                    uuid: user.uuid,
                    handle: user.handle.to_string(),
                    display_name: user.display_name.to_string(),
                    joined_at: m.joined_at,
                }),
                None => {
                    tracing::warn!(%group, member = %m.user_uuid, "member without a profile; not listed");
                    None
                }
            })
            .collect();
        members.sort_by(|a, b| {
            (a.joined_at.as_str(), a.handle.to_ascii_lowercase())
                .cmp(&(b.joined_at.as_str(), b.handle.to_ascii_lowercase()))
        });
        Ok(members)
    }

    /// The users holding `handles` (case-insensitive), by normalised handle; unknown
    /// handles are absent. One `BatchGetItem` of the handle claims per 100 handles.
    #[tracing::instrument(skip(self, handles), fields(table = %self.table, handles = handles.len()), err(level = "debug"))]
    pub async fn users_by_handles(
        &self,
        handles: &[Handle],
    ) -> Result<HashMap<String, User>, StoreError> {
        let keys = handles.iter().map(keys::handle_claim).collect();
        self.batch_get(keys)
            .await?
            .into_iter()
            .map(|item| {
                from_item::<UserItem>(item)
                    .map(UserItem::into_user)
                    .map(|user| (user.handle.normalized(), user))
            })
            .collect()
    }

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
        let mut saw_row = false;
        for attempt in 0..MARK_READ_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            let Some(row) = self.own_row(reader, group).await? else {
                continue;
            };
            saw_row = true;
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
        }
        if saw_row {
            Err(StoreError::Contention {
                operation: "MarkRead",
                attempts: MARK_READ_ATTEMPTS,
            })
        } else {
            Ok(MarkedRead::NoRow)
        }
    }

    /// [`Store::list_messages`], and when it is the newest page, marks the conversation
    /// read up to the page's newest message. The caller's row is looked up at the same
    /// time as the page (it is exact whichever comes first), so reading costs one round
    /// trip more than before, and only when there is something to mark. Marking never fails
    /// the read: a failure is logged and the page returned.
    #[tracing::instrument(skip(self, page), fields(table = %self.table), err(level = "debug"))]
    pub async fn read_messages(
        &self,
        reader: Uuid,
        group: Uuid,
        page: &crate::PageRequest,
    ) -> Result<crate::Page<Message>, StoreError> {
        if page.cursor().is_some() {
            return self.list_messages(reader, group, page).await;
        }
        let (messages, row) = tokio::join!(
            self.list_messages(reader, group, page),
            self.own_row(reader, group)
        );
        let messages = messages?;
        let Some(newest) = messages.items.last() else {
            return Ok(messages);
        };
        let marked = match row {
            Ok(Some(row)) => match row.marked_read_through(&newest.created_at) {
                None => Ok(MarkedRead::AlreadyRead),
                Some(read) => match self.write_read(&row, &read).await {
                    Ok(true) => Ok(MarkedRead::Marked {
                        unread: read.unread,
                    }),
                    // The row moved or changed since: look again.
                    Ok(false) => {
                        self.mark_read(reader, group, &ReadUpTo::Message(newest.created_at.clone()))
                            .await
                    }
                    Err(err) => Err(err),
                },
            },
            Ok(None) => {
                self.mark_read(reader, group, &ReadUpTo::Message(newest.created_at.clone()))
                    .await
            }
            Err(err) => Err(err),
        };
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

    /// The caller's own row of `group`, as the index shows it (the newest, if it shows a
    /// ghost beside it).
    async fn own_row(&self, owner: Uuid, group: Uuid) -> Result<Option<InboxRowItem>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(self.table())
            .index_name(GROUP_INDEX)
            .key_condition_expression("#group = :group")
            .filter_expression("#pk = :pk")
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":group", AttributeValue::S(group.to_string()))
            .expression_attribute_values(":pk", AttributeValue::S(keys::inbox_pk(owner)))
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(|err| StoreError::from_sdk("Query", err))?);
        }
        Ok(IndexView::from_items(group, items)
            .rows
            .into_iter()
            .find(|row| row.owner() == Some(owner)))
    }

    /// Writes `read`'s unread state over `row` if `row` is still exactly as read. `false`
    /// when it is not (moved, recounted or read meanwhile).
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
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::from_sdk("UpdateItem", err)),
        }
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

    /// Every membership of `group`, strongly consistent.
    async fn memberships(&self, group: Uuid) -> Result<Vec<MembershipItem>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::membership_pk(group)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut memberships = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            memberships.push(from_item::<MembershipItem>(item)?);
        }
        Ok(memberships)
    }

    /// The newest message of `group`, strongly consistent.
    async fn newest_message(&self, group: Uuid) -> Result<Option<Message>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::message_pk(group)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("Query", err))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| {
                let message = from_item::<MessageItem>(item)?;
                let (pk, sk) = (message.pk.clone(), message.sk.clone());
                message.into_message().ok_or(StoreError::CorruptItem {
                    pk,
                    sk,
                    message: "pk is not MSG#<uuid>".into(),
                })
            })
            .transpose()
    }

    /// The items at `keys` that exist, by `BatchGetItem`, retrying keys DynamoDB leaves
    /// unprocessed (it may under load) a bounded number of times.
    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        let mut unique: Vec<Key> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        for chunk in unique.chunks(MAX_BATCH_GET_KEYS) {
            let mut pending: Vec<Item> = chunk.iter().map(key_item).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == MAX_WRITE_ATTEMPTS {
                    return Err(StoreError::Contention {
                        operation: "BatchGetItem",
                        attempts: attempt,
                    });
                }
                if attempt > 0 {
                    backoff(attempt - 1).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .build()
                    .map_err(|err| StoreError::build("BatchGetItem", err))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(|err| StoreError::from_sdk("BatchGetItem", err))?;
                if let Some(mut responses) = output.responses {
                    found.extend(responses.remove(self.table()).unwrap_or_default());
                }
                if let Some(mut unprocessed) = output.unprocessed_keys {
                    pending = unprocessed
                        .remove(self.table())
                        .map(|keys| keys.keys)
                        .unwrap_or_default();
                }
            }
        }
        Ok(found)
    }

    /// Sets a row's member count, if it still carries the count the change was read with.
    fn set_member_count(
        &self,
        row: &InboxRowItem,
        from: u32,
        to: u32,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .update_expression("SET #count = :to")
            .condition_expression("#count = :from AND #group = :group")
            .expression_attribute_names("#count", "member_count")
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
            .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
            .expression_attribute_values(
                ":group",
                AttributeValue::S(row.message_group_uuid.to_string()),
            )
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Deletes a leaving member's row, if it is still there with the count read.
    fn delete_row_of_count(
        &self,
        row: &InboxRowItem,
        count: u32,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(&row.pk, &row.sk))))
            .condition_expression("#count = :count AND #group = :group")
            .expression_attribute_names("#count", "member_count")
            .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
            .expression_attribute_values(":count", AttributeValue::N(count.to_string()))
            .expression_attribute_values(
                ":group",
                AttributeValue::S(row.message_group_uuid.to_string()),
            )
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
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

fn count_of(members: usize) -> u32 {
    u32::try_from(members).unwrap_or(u32::MAX)
}
