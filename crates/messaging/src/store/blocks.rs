//! Blocking: who blocked whom, and the checks that keep two people apart while either has
//! blocked the other.
//!
//! A block is one item per direction, `BLOCK#<blocker>` / `USER#<blocked>` ([`BlockItem`]):
//! the blocker's list is one Query of their own partition, and "may these two talk" is two
//! keys. One item per pair (a key sorted from both uuids) would make that one key, but the
//! blocker's list still needs an item in the blocker's partition, so every block would be
//! two items kept in step, for a saving only where pairs are checked, and the hot path does
//! not check pairs at all:
//!
//! - **posting** names the conversation by its uuid only; the other member is unknown
//!   without a read. So where the two already share a direct conversation, a block also
//!   names the blocker in both memberships' `blockers` set, in the block's transaction.
//!   Appending already `ConditionCheck`s the sender's membership; its condition also asks
//!   for no `blockers` ([`MEMBER_NOT_BLOCKED`]). A message costs no extra item, and the
//!   push, which reads the memberships anyway, skips the blockers at no cost.
//! - **starting** a direct conversation (once per pair) `ConditionCheck`s both directions'
//!   block items in its transaction ([`BlockChecks`]). A block that finds no conversation
//!   checks in its own transaction that the pair still does not exist, so a start and a
//!   block racing each other are serialized: either the start sees the block, or the block
//!   sees the conversation and marks its memberships.
//! - **groups** (create, add) read both directions' items for every named person with one
//!   strongly consistent `BatchGetItem` before the write ([`Store::refuse_blocked`]): a
//!   creating transaction of 49 members is 99 items already. A block landing between that
//!   read and the group's write (milliseconds) lets the group form; that outcome is the
//!   one a block placed just after the creation gives (existing groups stay, the blocker
//!   can leave), so it is accepted rather than paid for on every group write.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};
use uuid::Uuid;

use super::requests::{Cancelled, Order, backoff};
use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, from_item, key_item};
use crate::items::{BLOCKERS_ATTRIBUTE, BlockItem, InboxRowItem, MembershipItem};
use crate::keys::{self, Key};
use crate::model::{ConversationKind, User, UserSummary};
use crate::page::{Page, PageRequest, decode_cursor};
use crate::schema::PARTITION_KEY;
use crate::timestamp::Timestamp;

/// The condition appending puts on the sender's membership: the sender is a member and,
/// in a direct conversation, neither member has blocked the other (a group membership
/// never carries `blockers`).
pub(super) const MEMBER_NOT_BLOCKED: &str =
    "attribute_exists(pk) AND attribute_not_exists(#blockers)";

/// What blocking did: both are answered alike (blocking twice is not an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    Blocked,
    /// Blocked before: nothing was written, and the first block's time stays.
    AlreadyBlocked,
}

/// What unblocking did: both are answered alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblocking {
    Unblocked,
    /// There was no block: nothing was written.
    NotBlocked,
}

/// One entry of a blocker's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedUser {
    pub user: UserSummary,
    pub blocked_at: String,
}

/// The block checks appended to a transaction, by position: which cancellation is theirs.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockChecks {
    first: usize,
}

impl BlockChecks {
    /// Whether the transaction was cancelled because one of the two had blocked the other.
    pub(super) fn refused(self, cancelled: &Cancelled) -> bool {
        (self.first..self.first + 2).any(|index| cancelled.condition_failed(index))
    }
}

/// Whether a membership change adds or removes the blocker from `blockers`.
#[derive(Debug, Clone, Copy)]
enum Mark {
    Add,
    Remove,
}

impl Store {
    /// `blocker` blocks `blocked`: the block item and, when the two share a direct
    /// conversation, `blocker` in both memberships' `blockers`, in one transaction (after
    /// one strongly consistent `GetItem` of their pair). Blocking twice writes nothing.
    #[tracing::instrument(skip(self, blocker, blocked), fields(table = %self.table, blocker = %blocker.uuid, blocked = %blocked.uuid), err(level = "debug"))]
    pub async fn block(
        &self,
        blocker: &User,
        blocked: &User,
        now: Timestamp,
    ) -> Result<Blocking, StoreError> {
        if blocker.uuid == blocked.uuid {
            return Err(StoreError::SelfBlock);
        }
        let item = BlockItem::new(blocker.uuid, &blocked.summary(), &now.to_string());
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            let shared = self
                .conversation_between(blocker.uuid, blocked.uuid, true)
                .await?;
            let mut items = vec![self.put_new(&item)?];
            items.extend(self.mark_pair(shared, blocker.uuid, blocked.uuid, Mark::Add)?);
            match self.transact("Block", items).await? {
                Ok(()) => return Ok(Blocking::Blocked),
                Err(cancelled) if cancelled.condition_failed(0) => {
                    return Ok(Blocking::AlreadyBlocked);
                }
                // The two started a conversation meanwhile (or a write was in the way):
                // read the pair again.
                Err(_) => tracing::debug!(attempt, "block cancelled; re-reading the pair"),
            }
        }
        Err(StoreError::Contention {
            operation: "Block",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// `blocker` lifts their block of `blocked`: the block item goes and, when the two
    /// share a direct conversation, `blocker` leaves both memberships' `blockers` (the
    /// other's block, if any, stays). Unblocking someone not blocked writes nothing.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn unblock(&self, blocker: Uuid, blocked: Uuid) -> Result<Unblocking, StoreError> {
        if blocker == blocked {
            return Err(StoreError::SelfBlock);
        }
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt - 1).await;
            }
            // No conversation now means none while the block holds (starting one checks
            // the block), so only a shared one has marks to remove.
            let shared = self.conversation_between(blocker, blocked, true).await?;
            let mut items = vec![self.delete_block(blocker, blocked)?];
            items.extend(self.mark_pair(shared, blocker, blocked, Mark::Remove)?);
            match self.transact("Unblock", items).await? {
                Ok(()) => return Ok(Unblocking::Unblocked),
                Err(cancelled) if cancelled.condition_failed(0) => {
                    return Ok(Unblocking::NotBlocked);
                }
                Err(_) => tracing::debug!(attempt, "unblock cancelled; retrying"),
            }
        }
        Err(StoreError::Contention {
            operation: "Unblock",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// A page of the users `blocker` blocked, in the order of their uuids (stable across
    /// pages; the key has to be the blocked uuid for a transaction to check it). One Query;
    /// cursors as every other list's.
    #[tracing::instrument(skip(self, page), fields(table = %self.table), err(level = "debug"))]
    pub async fn list_blocks(
        &self,
        blocker: Uuid,
        page: &PageRequest,
    ) -> Result<Page<BlockedUser>, StoreError> {
        let pk = keys::blocks_pk(blocker);
        let start_after = page.cursor().map(|c| decode_cursor(c, &pk)).transpose()?;
        let blocked = self
            .query_page::<BlockItem>(&pk, start_after, page.limit(), Order::KeyOrder)
            .await?;
        Ok(Page {
            items: blocked
                .items
                .into_iter()
                .map(|item| BlockedUser {
                    user: item.blocked(),
                    blocked_at: item.blocked_at,
                })
                .collect(),
            next_cursor: blocked.next_cursor,
        })
    }

    /// Everyone `blocker` blocked, by uuid: the inbox hides their direct conversations.
    /// One strongly consistent Query of keys only (all pages), so an inbox read right after
    /// a block already hides the row.
    pub(super) async fn blocked_users(&self, blocker: Uuid) -> Result<HashSet<Uuid>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::blocks_pk(blocker)))
            .projection_expression("sk")
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut blocked = HashSet::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            if let Some(uuid) = item
                .get("sk")
                .and_then(|sk| sk.as_s().ok())
                .and_then(|sk| keys::blocked_of_sk(sk))
            {
                blocked.insert(uuid);
            }
        }
        Ok(blocked)
    }

    /// Refuses with [`StoreError::Blocked`] if `user` blocked any of `others` or any of
    /// them blocked `user`: one strongly consistent `BatchGetItem` of both directions'
    /// keys (98 for the 49 others a group can name), before a group write.
    #[tracing::instrument(skip(self, others), fields(table = %self.table), err(level = "debug"))]
    pub(super) async fn refuse_blocked(
        &self,
        user: Uuid,
        others: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), StoreError> {
        let pairs: Vec<Key> = others
            .into_iter()
            .filter(|other| *other != user)
            .flat_map(|other| [keys::block(user, other), keys::block(other, user)])
            .collect();
        if self.batch_get(pairs, true).await?.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Blocked)
        }
    }

    /// Appends to a direct conversation's starting transaction the checks that neither of
    /// `a` and `b` blocked the other (two `ConditionCheck`s on the block items).
    pub(super) fn add_block_checks(
        &self,
        items: &mut Vec<TransactWriteItem>,
        a: Uuid,
        b: Uuid,
    ) -> Result<BlockChecks, StoreError> {
        let checks = BlockChecks { first: items.len() };
        for key in [keys::block(a, b), keys::block(b, a)] {
            items.push(self.condition_check(&key, "attribute_not_exists(pk)")?);
        }
        Ok(checks)
    }

    /// Why appending's membership check failed: a direct membership is never removed, so
    /// one that exists failed on its `blockers`; otherwise the sender is not a member.
    pub(super) async fn refused_append(
        &self,
        group: Uuid,
        sender: Uuid,
    ) -> Result<StoreError, StoreError> {
        let membership = self
            .get_item("GetItem", &keys::membership(group, sender), true)
            .await?
            .map(from_item::<MembershipItem>)
            .transpose()?;
        Ok(match membership {
            Some(membership) if membership.kind == ConversationKind::Direct => StoreError::Blocked,
            _ => StoreError::NotMember(group),
        })
    }

    /// The pair's part of a block's transaction: with a shared conversation, `blocker`
    /// added to (or removed from) both memberships' `blockers`; without one, a block
    /// checks that none has been started meanwhile (an unblock needs nothing).
    fn mark_pair(
        &self,
        shared: Option<Uuid>,
        blocker: Uuid,
        other: Uuid,
        mark: Mark,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let Some(group) = shared else {
            return Ok(match mark {
                Mark::Add => vec![
                    self.condition_check(&keys::pair(blocker, other), "attribute_not_exists(pk)")?,
                ],
                Mark::Remove => Vec::new(),
            });
        };
        let expression = match mark {
            Mark::Add => "ADD #blockers :blocker",
            Mark::Remove => "DELETE #blockers :blocker",
        };
        [blocker, other]
            .into_iter()
            .map(|member| {
                let update = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key_item(&keys::membership(group, member))))
                    .update_expression(expression)
                    // Never create a membership: only mark the two that exist.
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#blockers", BLOCKERS_ATTRIBUTE)
                    .expression_attribute_values(
                        ":blocker",
                        AttributeValue::Ss(vec![blocker.to_string()]),
                    )
                    .build()
                    .map_err(|err| StoreError::build("TransactWriteItems", err))?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }

    fn delete_block(&self, blocker: Uuid, blocked: Uuid) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::block(blocker, blocked))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn condition_check(&self, key: &Key, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key_item(key)))
            .condition_expression(condition)
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// Whether `owner`'s inbox hides `row`: a direct conversation with someone `owner`
/// blocked (`blocked`, from [`Store::blocked_users`]); a direct row's `user_uuid` is the
/// other member.
pub(super) fn hidden_from_blocker(blocked: &HashSet<Uuid>, row: &InboxRowItem) -> bool {
    row.kind == ConversationKind::Direct && blocked.contains(&row.user_uuid)
}
