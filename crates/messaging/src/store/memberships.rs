//! Who belongs to a conversation: the `MBR#<group>` items, listed or counted with one
//! strongly consistent Query (all pages) wherever they are needed. Strongly consistent
//! because the first message of a conversation is written with its memberships, and every
//! reader (fan-out, push, a membership change, the members list) may come moments later.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::presence::Presence;
use super::{Store, StoreError, from_item};
use crate::items::{GroupDeparturesItem, MembershipItem, ReadReceiptItem, UserItem};
use crate::keys::{self, Key};
use crate::model::User;
use crate::schema::{PARTITION_KEY, SORT_KEY};

/// Everything `MBR#<group>` holds, read at one instant.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupPartition {
    pub(super) memberships: Vec<MembershipItem>,
    /// The leaves seen ([`GroupDeparturesItem`]); absent before the first.
    pub(super) departures: Option<GroupDeparturesItem>,
    /// The last member left ([`crate::items::GroupEndedItem`]).
    pub(super) ended: bool,
    /// How far members have read ([`ReadReceiptItem`]), leavers' included.
    pub(super) receipts: Vec<ReadReceiptItem>,
}

/// One member of a conversation, as `GET /api/message_groups/{id}/members` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub uuid: Uuid,
    pub handle: String,
    pub display_name: String,
    pub joined_at: String,
    /// Has a live connection (`store/presence.rs`: what that means, and its bound).
    pub online: bool,
    /// The member's last `$connect` or `$disconnect`; `None` if never connected.
    pub last_seen_at: Option<String>,
    /// `created_at` of the newest message the member has read; `None` before their
    /// first read.
    pub read_through: Option<String>,
}

impl Store {
    /// Every membership of `group`, strongly consistent.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn memberships(&self, group: Uuid) -> Result<Vec<MembershipItem>, StoreError> {
        let mut pages = self
            .memberships_query(group)
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

    /// The whole `MBR#<group>` partition in one strongly consistent Query (all pages): the
    /// memberships, the leaves seen, whether the group ended and the read receipts. A group
    /// has at most 50 members (and a receipt per member who ever read, about 150 bytes), so
    /// this is one small page; the fan-out reads it only when the rows it sees cannot say
    /// how many members there are, a leave and the members list every time.
    pub(super) async fn group_partition(&self, group: Uuid) -> Result<GroupPartition, StoreError> {
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
        let mut partition = GroupPartition::default();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            match item.get(SORT_KEY) {
                Some(AttributeValue::S(sk)) if sk.starts_with(keys::USER_PREFIX) => {
                    partition
                        .memberships
                        .push(from_item::<MembershipItem>(item)?);
                }
                Some(AttributeValue::S(sk)) if sk == keys::GROUP_DEPARTURES_SK => {
                    partition.departures = Some(from_item::<GroupDeparturesItem>(item)?);
                }
                Some(AttributeValue::S(sk)) if sk == keys::GROUP_ENDED_SK => {
                    partition.ended = true;
                }
                Some(AttributeValue::S(sk)) if sk.starts_with(keys::READ_RECEIPT_PREFIX) => {
                    partition.receipts.push(from_item::<ReadReceiptItem>(item)?);
                }
                other => {
                    tracing::warn!(%group, sk = ?other, "unknown item among the memberships; ignored")
                }
            }
        }
        Ok(partition)
    }

    /// The members' items only: the partition also holds the group's end marker.
    fn memberships_query(&self, group: Uuid) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :member)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::membership_pk(group)))
            .expression_attribute_values(":member", AttributeValue::S(keys::USER_PREFIX.into()))
            .consistent_read(true)
    }

    /// The members of a conversation `reader` belongs to (direct or group), oldest member
    /// first, each with how far they have read and whether they are online: one strongly
    /// consistent Query of the conversation's `MBR#` partition (memberships and read
    /// receipts side by side), one `BatchGetItem` of the profiles (which carry presence, so
    /// `online` costs nothing more).
    pub async fn group_members(
        &self,
        reader: Uuid,
        group: Uuid,
    ) -> Result<Vec<Member>, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.group_members_at(reader, group, now).await
    }

    /// [`Store::group_members`] with `online` as of `now` (epoch seconds).
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn group_members_at(
        &self,
        reader: Uuid,
        group: Uuid,
        now: i64,
    ) -> Result<Vec<Member>, StoreError> {
        let GroupPartition {
            memberships,
            receipts,
            ..
        } = self.group_partition(group).await?;
        if !memberships.iter().any(|m| m.user_uuid == reader) {
            return Err(StoreError::NotMember(group));
        }
        let mut read_through: HashMap<Uuid, String> = receipts
            .into_iter()
            .map(|receipt| (receipt.user_uuid, receipt.read_through))
            .collect();
        let keys: Vec<Key> = memberships
            .iter()
            .map(|m| keys::user_profile(m.user_uuid))
            .collect();
        let profiles: HashMap<Uuid, (User, Presence)> = self
            .batch_get(keys, false)
            .await?
            .into_iter()
            .map(|item| {
                let presence = Presence::of_item(&item);
                from_item::<UserItem>(item)
                    .map(|user| (user.user_uuid, (user.into_user(), presence)))
            })
            .collect::<Result<_, _>>()?;
        let mut members: Vec<Member> = memberships
            .into_iter()
            .filter_map(|m| match profiles.get(&m.user_uuid) {
                Some((user, presence)) => Some(Member {
                    uuid: user.uuid,
                    handle: user.handle.to_string(),
                    display_name: user.display_name.to_string(),
                    joined_at: m.joined_at,
                    online: presence.online_at(now),
                    last_seen_at: presence.last_seen_at.clone(),
                    read_through: read_through.remove(&m.user_uuid),
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
}
