//! Reactions: a member adds or takes back one emoji on a message.
//!
//! A message's reactions are one string set on its own item, `reactions`, of
//! `<member uuid>#<emoji>` entries (`items::reaction_entry`). A reaction is one
//! `TransactWriteItems` of three items:
//!
//! 0. a `ConditionCheck` of the member's membership, the one appending makes
//!    (`member_check`: a member, and no block in a direct conversation);
//! 1. an `Update` of the `MSG#` item: `ADD` (or `DELETE`) of the member's entry, and every
//!    `change*` attribute, so the stream record's new image says who reacted with what.
//!    Its condition: the message is there, is this message and is not deleted, and the entry
//!    is absent (for an add) or present (for a removal);
//! 2. the member's `send` rate-limit window (reactions count against sending), when limits
//!    are on.
//!
//! `ADD` and `DELETE` of a set element are applied by DynamoDB to the item as it is when the
//! write lands, not to what was read, so concurrent reactions of different members never
//! lose or double an entry, and the count of an emoji is the number of entries naming it.
//! The entry condition makes a repeat (the same member, emoji and direction) cancel the
//! transaction: it writes nothing, charges no limit, and leaves no stream record, so no
//! duplicate push frame. A cancelled reaction is told from a deleted message by reading the
//! message again.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use uuid::Uuid;

use super::limits::Limited;
use super::requests::backoff;
use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, key_item};
use crate::items::{CHANGE_ATTRIBUTE, MessageChangeKind, REACTIONS_ATTRIBUTE, reaction_entry};
use crate::keys::{self, Key};
use crate::model::{Message, Reaction, User};
use crate::reactions::Emoji;
use crate::timestamp::Timestamp;

/// Positions in the reaction's transaction (the limit's update, when any, comes last).
const MEMBERSHIP_ITEM: usize = 0;
const MESSAGE_ITEM: usize = 1;

/// What a reaction request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reacted {
    /// The message with the caller's change applied: as read before the write, so another
    /// member's reaction landing between the read and the write is not in it (the push's
    /// `reaction` frames carry exact counts).
    pub message: Message,
    /// False when the reaction was already as asked: nothing was written.
    pub changed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Add,
    Remove,
}

impl Direction {
    fn change(self) -> MessageChangeKind {
        match self {
            Self::Add => MessageChangeKind::Reacted,
            Self::Remove => MessageChangeKind::Unreacted,
        }
    }

    /// Whether `message` already is as this direction would leave it.
    fn done(self, message: &Message, reaction: &Reaction) -> bool {
        let present = message.life.reactions.contains(reaction);
        match self {
            Self::Add => present,
            Self::Remove => !present,
        }
    }

    fn apply(self, message: &mut Message, reaction: &Reaction) {
        match self {
            Self::Add => message.life.reactions.push(reaction.clone()),
            Self::Remove => message.life.reactions.retain(|r| r != reaction),
        }
    }
}

impl Store {
    /// `member` reacts to message `uuid` of `group` with `emoji`. Reacting again with the
    /// same emoji changes nothing. A message that is not there, deleted, or in a
    /// conversation `member` does not belong to is [`StoreError::MessageNotFound`]; a
    /// direct conversation with a block is [`StoreError::Blocked`], as for appending.
    #[tracing::instrument(skip(self, member), fields(table = %self.table, member = %member.uuid), err(level = "debug"))]
    pub async fn react(
        &self,
        member: &User,
        group: Uuid,
        uuid: Uuid,
        emoji: Emoji,
        now: Timestamp,
    ) -> Result<Reacted, StoreError> {
        self.change_reaction(member, group, uuid, emoji, now, Direction::Add)
            .await
    }

    /// `member` takes back their `emoji` reaction; taking back one that is not there
    /// changes nothing. Refusals as for [`Store::react`].
    #[tracing::instrument(skip(self, member), fields(table = %self.table, member = %member.uuid), err(level = "debug"))]
    pub async fn unreact(
        &self,
        member: &User,
        group: Uuid,
        uuid: Uuid,
        emoji: Emoji,
        now: Timestamp,
    ) -> Result<Reacted, StoreError> {
        self.change_reaction(member, group, uuid, emoji, now, Direction::Remove)
            .await
    }

    async fn change_reaction(
        &self,
        member: &User,
        group: Uuid,
        uuid: Uuid,
        emoji: Emoji,
        now: Timestamp,
        direction: Direction,
    ) -> Result<Reacted, StoreError> {
        let not_found = || StoreError::MessageNotFound {
            group,
            message: uuid,
        };
        let reaction = Reaction {
            emoji: emoji.as_str().to_owned(),
            member: member.uuid,
        };
        let mut message = self
            .find_message(group, uuid)
            .await?
            .filter(|message| message.life.deleted_at.is_none())
            .ok_or_else(not_found)?;
        let mut charge = self.charge(member.uuid, Limited::Send, now)?;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            // Sent even when the read shows the reaction already there: the membership
            // check is what lets the caller see the message at all.
            let mut items = vec![
                self.member_check(group, member.uuid)?,
                self.reaction_update(member, &message, &reaction, direction, now)?,
            ];
            charge.add_to(&mut items);
            match self.transact("ChangeReaction", items).await? {
                Ok(()) => {
                    direction.apply(&mut message, &reaction);
                    return Ok(Reacted {
                        message,
                        changed: true,
                    });
                }
                Err(cancelled) if cancelled.condition_failed(MEMBERSHIP_ITEM) => {
                    return Err(match self.refused_append(group, member.uuid).await? {
                        StoreError::NotMember(_) => not_found(),
                        refusal => refusal,
                    });
                }
                Err(cancelled) if cancelled.condition_failed(MESSAGE_ITEM) => {
                    // Deleted, or the reaction already as asked (a repeat, or the same
                    // member's concurrent request): the message as it is now says which.
                    message = self
                        .find_message(group, uuid)
                        .await?
                        .filter(|message| message.life.deleted_at.is_none())
                        .ok_or_else(not_found)?;
                    if direction.done(&message, &reaction) {
                        return Ok(Reacted {
                            message,
                            changed: false,
                        });
                    }
                }
                Err(cancelled) if charge.refused(&cancelled) => return Err(charge.rate_limited()),
                // Another transaction held one of the items: try again shortly.
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            operation: "ChangeReaction",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// The `MSG#` item's part of a reaction: the entry added or removed, the change said.
    fn reaction_update(
        &self,
        member: &User,
        message: &Message,
        reaction: &Reaction,
        direction: Direction,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = Key::new(keys::message_pk(message.group_uuid), &message.created_at);
        let entry = reaction_entry(reaction);
        let (update, entry_condition) = match direction {
            Direction::Add => ("ADD", "NOT contains(#reactions, :entry)"),
            Direction::Remove => ("DELETE", "contains(#reactions, :entry)"),
        };
        let text = |value: &str| AttributeValue::S(value.to_owned());
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&key)))
            .update_expression(format!(
                "{update} #reactions :entries SET #change = :change, #change_by = :by, \
                 #change_by_handle = :handle, #change_by_display_name = :display_name, \
                 #change_emoji = :emoji, #change_at = :at"
            ))
            .condition_expression(format!(
                "attribute_exists(#pk) AND #message_uuid = :uuid \
                 AND attribute_not_exists(#deleted_at) AND {entry_condition}"
            ))
            .expression_attribute_names("#pk", crate::schema::PARTITION_KEY)
            .expression_attribute_names("#message_uuid", "message_uuid")
            .expression_attribute_names("#deleted_at", "deleted_at")
            .expression_attribute_names("#reactions", REACTIONS_ATTRIBUTE)
            .expression_attribute_names("#change", CHANGE_ATTRIBUTE)
            .expression_attribute_names("#change_by", "change_by")
            .expression_attribute_names("#change_by_handle", "change_by_handle")
            .expression_attribute_names("#change_by_display_name", "change_by_display_name")
            .expression_attribute_names("#change_emoji", "change_emoji")
            .expression_attribute_names("#change_at", "change_at")
            .expression_attribute_values(":entries", AttributeValue::Ss(vec![entry.clone()]))
            .expression_attribute_values(":entry", text(&entry))
            .expression_attribute_values(":uuid", text(&message.uuid.to_string()))
            .expression_attribute_values(":change", text(direction.change().as_str()))
            .expression_attribute_values(":by", text(&member.uuid.to_string()))
            .expression_attribute_values(":handle", text(member.handle.as_str()))
            .expression_attribute_values(":display_name", text(member.display_name.as_str()))
            .expression_attribute_values(":emoji", text(&reaction.emoji))
            .expression_attribute_values(":at", text(&now.to_string()))
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
