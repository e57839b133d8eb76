//! The items that store the domain types, one per kind of the single table (see
//! [`crate::keys`]), and their conversions. Attribute names are the original system's, so
//! data it wrote stays readable.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys;
use crate::model::{
    Connection, ConversationKind, InboxEntry, Message, MessageLife, Reaction, User, UserSummary,
};
use crate::unread::{Arrival, UnreadState};
use crate::validate::{DisplayName, Handle};

/// `MSG#<group>` / `<created_at>`. Deliberately without `message_group_uuid`, which keeps
/// messages out of the GSI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageItem {
    pub pk: String,
    pub sk: String,
    pub message_uuid: Uuid,
    pub message: String,
    pub user_uuid: Uuid,
    pub user_display_name: String,
    pub user_handle: String,
    /// When the sender last edited `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// When the sender deleted the message for everyone: `message` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// Edits and deletes so far: each adds 1 (`ADD revision :one`), so copies of the text
    /// (inbox previews) keep the newest version whatever order changes reach them in.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub revision: u64,
    /// Reactions, as a string set of `<member uuid>#<emoji>` ([`reaction_entry`]): a set,
    /// so `ADD` and `DELETE` of one member's reaction are atomic and idempotent, and
    /// concurrent reactions never lose or double a count. DynamoDB has no empty set: none
    /// means the attribute is absent.
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reactions: Vec<String>,
    /// What the write that produced this version did (absent on the message as sent):
    /// each change sets all `change*` attributes, so a stream record's new image alone
    /// says what happened, and the stream filters key on `change`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<MessageChangeKind>,
    /// Who made that change (the sender for edits and deletes, a member for reactions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_by: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_by_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_by_display_name: Option<String>,
    /// The emoji of a reaction change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_emoji: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_at: Option<String>,
}

/// What one change of a message did; the value of its `change` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageChangeKind {
    Edited,
    Deleted,
    Reacted,
    Unreacted,
}

impl MessageChangeKind {
    /// The attribute value, as the stream filters name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edited => "edited",
            Self::Deleted => "deleted",
            Self::Reacted => "reacted",
            Self::Unreacted => "unreacted",
        }
    }
}

/// The message attribute holding reactions.
pub const REACTIONS_ATTRIBUTE: &str = "reactions";
/// The message attribute saying what its last change did.
pub const CHANGE_ATTRIBUTE: &str = "change";

/// One reaction's entry in a message's `reactions` set.
pub fn reaction_entry(reaction: &Reaction) -> String {
    format!("{}#{}", reaction.member, reaction.emoji)
}

/// The reaction an entry of `reactions` names; `None` for an entry not written here.
pub fn parse_reaction_entry(entry: &str) -> Option<Reaction> {
    let (member, emoji) = entry.split_at_checked(36)?;
    let emoji = emoji.strip_prefix('#')?;
    if emoji.is_empty() {
        return None;
    }
    Some(Reaction {
        emoji: emoji.to_owned(),
        member: Uuid::parse_str(member).ok()?,
    })
}

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

impl MessageItem {
    pub fn new(message: &Message) -> Self {
        Self {
            pk: keys::message_pk(message.group_uuid),
            sk: message.created_at.clone(),
            message_uuid: message.uuid,
            message: message.text.clone(),
            user_uuid: message.sender.uuid,
            user_display_name: message.sender.display_name.clone(),
            user_handle: message.sender.handle.clone(),
            edited_at: message.life.edited_at.clone(),
            deleted_at: message.life.deleted_at.clone(),
            revision: message.life.revision,
            reactions: message.life.reactions.iter().map(reaction_entry).collect(),
            change: None,
            change_by: None,
            change_by_handle: None,
            change_by_display_name: None,
            change_emoji: None,
            change_at: None,
        }
    }

    /// The conversation of this message, from its `pk`.
    pub fn group_uuid(&self) -> Option<Uuid> {
        keys::group_of_message_pk(&self.pk).and_then(Result::ok)
    }

    pub fn into_message(self) -> Option<Message> {
        Some(Message {
            group_uuid: self.group_uuid()?,
            uuid: self.message_uuid,
            text: self.message,
            created_at: self.sk,
            sender: UserSummary {
                uuid: self.user_uuid,
                handle: self.user_handle,
                display_name: self.user_display_name,
            },
            life: MessageLife {
                edited_at: self.edited_at,
                deleted_at: self.deleted_at,
                revision: self.revision,
                reactions: self
                    .reactions
                    .iter()
                    .filter_map(|entry| parse_reaction_entry(entry))
                    .collect(),
            },
        })
    }
}

/// `GRP#<owner>` / `<last_message_at>`: the owner's view of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRowItem {
    pub pk: String,
    pub sk: String,
    pub message_group_uuid: Uuid,
    pub message: String,
    /// The other member of a direct conversation; the last sender of a group.
    pub user_uuid: Uuid,
    pub user_display_name: String,
    pub user_handle: String,
    /// When the last message was sent. Usually equal to `sk`; differs when the row had to
    /// move a microsecond on to avoid another conversation's row of the same owner.
    /// Absent in rows written by the original system, where `sk` is the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<String>,
    /// How many members the conversation has, i.e. how many rows the index must show
    /// before the fan-out may trust it (the index is eventually consistent). Absent in
    /// rows written by the original system. Every membership change rewrites it on every
    /// remaining row, in the transaction that changes the memberships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
    /// Absent for a direct conversation, as in the original system's rows.
    #[serde(default, skip_serializing_if = "ConversationKind::is_direct")]
    pub kind: ConversationKind,
    /// A group's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Messages from others since the owner last read the conversation. Absent: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unread: u32,
    /// `created_at` of the newest [`crate::unread::UNREAD_TIMES_KEPT`] of those messages,
    /// oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread_at: Vec<String>,
    /// `created_at` of the newest message the owner has read: nothing at or before it
    /// counts; empty when nothing is read yet. Absent until the row is first read or
    /// counted (the original system's rows, and rows of conversations their owner started);
    /// until then the row's own position stands for it, so history older than unread
    /// counts never counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_through: Option<String>,
    /// Direct conversations only: `created_at` of the newest message the other member
    /// has read, written by that member's read (`store/reads.rs`), so the owner's inbox
    /// says `seen` without another request. Absent until the other member first reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_read_through: Option<String>,
    /// Who sent the last message this row shows; absent in rows written before it was
    /// kept (then `seen` is false until the next message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sender_uuid: Option<Uuid>,
    /// The previewed message's `revision` as this row shows it (edits and deletes each
    /// add 1): a preview change lands only over a lower one, and every write from a read of
    /// the row is conditioned on it, so no order of deliveries puts an older text back.
    /// Absent: 0, the message as sent.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub message_revision: u64,
    /// When the previewed message was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_edited_at: Option<String>,
    /// When the previewed message was deleted for everyone (`message` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_deleted_at: Option<String>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl InboxRowItem {
    /// A row of a new one-to-one conversation.
    pub fn new(owner: Uuid, group_uuid: Uuid, other: &UserSummary, last: &Message) -> Self {
        Self {
            pk: keys::inbox_pk(owner),
            sk: last.created_at.clone(),
            message_group_uuid: group_uuid,
            message: last.text.clone(),
            user_uuid: other.uuid,
            user_display_name: other.display_name.clone(),
            user_handle: other.handle.clone(),
            last_message_at: Some(last.created_at.clone()),
            member_count: Some(2),
            last_sender_uuid: Some(last.sender.uuid),
            ..Self::default()
        }
        .showing(last)
        .with_first_message_counted(owner, last)
    }

    /// A row of a new group at its first message (the group shows its last sender).
    pub fn new_group(
        owner: Uuid,
        group_uuid: Uuid,
        name: &str,
        member_count: u32,
        last: &Message,
    ) -> Self {
        Self {
            pk: keys::inbox_pk(owner),
            sk: last.created_at.clone(),
            message_group_uuid: group_uuid,
            message: last.text.clone(),
            user_uuid: last.sender.uuid,
            user_display_name: last.sender.display_name.clone(),
            user_handle: last.sender.handle.clone(),
            last_message_at: Some(last.created_at.clone()),
            member_count: Some(member_count),
            kind: ConversationKind::Group,
            name: Some(name.to_owned()),
            last_sender_uuid: Some(last.sender.uuid),
            ..Self::default()
        }
        .showing(last)
        .with_first_message_counted(owner, last)
    }

    /// The row previewing `message` as this version of it is: its text, and what its edits
    /// and delete made of it.
    fn showing(mut self, message: &Message) -> Self {
        self.show_preview_of(message);
        self
    }

    /// Shows `message` (this version of it) as the row's preview, in place.
    pub fn show_preview_of(&mut self, message: &Message) {
        self.message = message.text.clone();
        self.message_revision = message.life.revision;
        self.message_edited_at = message.life.edited_at.clone();
        self.message_deleted_at = message.life.deleted_at.clone();
    }

    /// Whether this row previews `message` in a version older than this one: the same
    /// message (by its time), a lower revision.
    pub fn previews_older_version_of(&self, message: &Message) -> bool {
        self.message_group_uuid == message.group_uuid
            && self.last_message_at() == message.created_at
            && self.message_revision < message.life.revision
    }

    /// The first message is unread for everyone but its sender, who has read nothing of
    /// the conversation yet (an empty read mark sorts before every time).
    fn with_first_message_counted(mut self, owner: Uuid, first: &Message) -> Self {
        if first.sender.uuid != owner {
            self.unread = 1;
            self.unread_at = vec![first.created_at.clone()];
            self.read_through = Some(String::new());
        }
        self
    }

    /// Whose inbox this row is in, from its `pk`.
    pub fn owner(&self) -> Option<Uuid> {
        self.pk
            .strip_prefix(keys::INBOX_PREFIX)
            .and_then(|owner| Uuid::parse_str(owner).ok())
    }

    /// The time of the last message this row shows: what "newer" is decided against.
    pub fn last_message_at(&self) -> &str {
        self.last_message_at.as_deref().unwrap_or(&self.sk)
    }

    /// The row's unread attributes.
    pub fn unread_state(&self) -> UnreadState {
        UnreadState {
            unread: self.unread,
            unread_at: self.unread_at.clone(),
            read_through: self.read_through.clone(),
        }
    }

    fn set_unread_state(&mut self, state: UnreadState) {
        self.unread = state.unread;
        self.unread_at = state.unread_at;
        self.read_through = state.read_through;
    }

    /// Counts the messages of `arrivals` that are unread for the owner and not counted
    /// yet ([`UnreadState::count`]); returns how many. Called on the row as read, before it
    /// moves.
    pub fn count_unread(&mut self, arrivals: &[Arrival]) -> usize {
        let mut state = self.unread_state();
        let added = state.count(self.owner(), self.last_message_at(), arrivals);
        self.set_unread_state(state);
        added
    }

    /// The row once its owner has read the conversation up to the message created at
    /// `through` ([`UnreadState::read_up_to`]), or `None` if that changes nothing.
    pub fn marked_read_through(&self, through: &str) -> Option<Self> {
        let read = self
            .unread_state()
            .read_up_to(self.last_message_at(), through)?;
        let mut marked = self.clone();
        marked.set_unread_state(read);
        Some(marked)
    }

    /// Direct conversations: whether the other member has read the owner's last message.
    /// `None` for a group (its members list says who read how far).
    pub fn seen(&self) -> Option<bool> {
        if self.kind != ConversationKind::Direct {
            return None;
        }
        let own_last = self.owner().is_some() && self.last_sender_uuid == self.owner();
        Some(
            own_last
                && self
                    .peer_read_through
                    .as_deref()
                    .is_some_and(|read| read >= self.last_message_at()),
        )
    }

    pub fn into_entry(self) -> InboxEntry {
        let seen = self.seen();
        InboxEntry {
            group_uuid: self.message_group_uuid,
            kind: self.kind,
            name: self.name,
            member_count: self.member_count,
            other: UserSummary {
                uuid: self.user_uuid,
                handle: self.user_handle,
                display_name: self.user_display_name,
            },
            last_message_at: self.last_message_at.unwrap_or(self.sk),
            last_message: self.message,
            unread: self.unread,
            seen,
            edited_at: self.message_edited_at,
            deleted: self.message_deleted_at.is_some(),
        }
    }
}

/// `MBR#<group>` / `USER#<member>`: a stable key to `ConditionCheck` membership against,
/// unlike the inbox row whose sort key moves with every message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipItem {
    pub pk: String,
    pub sk: String,
    pub group_uuid: Uuid,
    pub user_uuid: Uuid,
    pub joined_at: String,
    /// Absent for a direct conversation: whether the conversation can be left or grown is
    /// read from the caller's own membership.
    #[serde(default, skip_serializing_if = "ConversationKind::is_direct")]
    pub kind: ConversationKind,
    /// Only on a direct conversation's two memberships: who of the two blocked the other
    /// (a string set, [`BLOCKERS_ATTRIBUTE`]). While it is there, appending's membership
    /// check fails and the push skips the blockers. DynamoDB has no empty set: removing
    /// the last blocker removes the attribute.
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub blockers: Vec<Uuid>,
}

/// The membership attribute naming a direct conversation's blockers.
pub const BLOCKERS_ATTRIBUTE: &str = "blockers";

impl MembershipItem {
    /// Whether this member blocked the conversation's other member.
    pub fn blocks_partner(&self) -> bool {
        self.blockers.contains(&self.user_uuid)
    }

    pub fn new(group_uuid: Uuid, member: Uuid, joined_at: &str) -> Self {
        let key = keys::membership(group_uuid, member);
        Self {
            pk: key.pk,
            sk: key.sk,
            group_uuid,
            user_uuid: member,
            joined_at: joined_at.to_owned(),
            kind: ConversationKind::Direct,
            blockers: Vec::new(),
        }
    }

    pub fn in_group(group_uuid: Uuid, member: Uuid, joined_at: &str) -> Self {
        Self {
            kind: ConversationKind::Group,
            ..Self::new(group_uuid, member, joined_at)
        }
    }
}

/// `MBR#<group>` / `ENDED`: written with the last member's leave. A message posted before
/// that leave and fanned out after it then finds a group that ended, not a conversation
/// that never had members (the one case the stream treats as an incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEndedItem {
    pub pk: String,
    pub sk: String,
    pub group_uuid: Uuid,
    pub ended_at: String,
}

impl GroupEndedItem {
    pub fn new(group_uuid: Uuid, ended_at: &str) -> Self {
        let key = keys::group_ended(group_uuid);
        Self {
            pk: key.pk,
            sk: key.sk,
            group_uuid,
            ended_at: ended_at.to_owned(),
        }
    }
}

/// `MBR#<group>` / `DEPARTURES`: the leaves a group has seen, rewritten by every leave on
/// the condition that it still holds the value read. Leaves touch no other member's item
/// (a member who keeps posting keeps moving the others' rows), so this is where two
/// leaves meet: of two members leaving at once, the second re-reads and, if it is now the
/// last, ends the group. Posting and adding never touch it. Absent until the first leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDeparturesItem {
    pub pk: String,
    pub sk: String,
    pub group_uuid: Uuid,
    pub departures: u64,
    pub last_departed_at: String,
}

impl GroupDeparturesItem {
    pub fn new(group_uuid: Uuid, departures: u64, last_departed_at: &str) -> Self {
        let key = keys::group_departures(group_uuid);
        Self {
            pk: key.pk,
            sk: key.sk,
            group_uuid,
            departures,
            last_departed_at: last_departed_at.to_owned(),
        }
    }
}

/// `MBR#<group>` / `READ#<member>`: how far a member has read the conversation, written
/// in the transaction that marks their inbox row read, never lowered. The members list
/// reads it with the memberships (one Query of the partition); the push turns each write
/// into a `read` frame for the other members (its stream filter takes `READ#` keys only).
/// The handle is copied (profiles never change) so the frame needs no profile read. A
/// member who leaves keeps theirs; the members list shows only current members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReceiptItem {
    pub pk: String,
    pub sk: String,
    pub group_uuid: Uuid,
    pub user_uuid: Uuid,
    pub user_handle: String,
    /// `created_at` of the newest message the member has read.
    pub read_through: String,
}

impl ReadReceiptItem {
    pub fn new(group_uuid: Uuid, reader: &UserSummary, read_through: &str) -> Self {
        let key = keys::read_receipt(group_uuid, reader.uuid);
        Self {
            pk: key.pk,
            sk: key.sk,
            group_uuid,
            user_uuid: reader.uuid,
            user_handle: reader.handle.clone(),
            read_through: read_through.to_owned(),
        }
    }
}

/// `PAIR#<a>#<b>` / `PAIR`: the one conversation two users share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairItem {
    pub pk: String,
    pub sk: String,
    pub group_uuid: Uuid,
    pub created_at: String,
}

/// A user record. Stored three times, under `USER#<uuid>`, `HANDLE#<handle>` and
/// `SUB#<sub>`, so each lookup is one `GetItem` and uniqueness is a put condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserItem {
    pub pk: String,
    pub sk: String,
    pub user_uuid: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub cognito_sub: String,
    pub created_at: String,
}

impl UserItem {
    pub fn new(key: keys::Key, user: &User, created_at: &str) -> Self {
        Self {
            pk: key.pk,
            sk: key.sk,
            user_uuid: user.uuid,
            handle: user.handle.clone(),
            display_name: user.display_name.clone(),
            cognito_sub: user.cognito_sub.clone(),
            created_at: created_at.to_owned(),
        }
    }

    pub fn into_user(self) -> User {
        User {
            uuid: self.user_uuid,
            handle: self.handle,
            display_name: self.display_name,
            cognito_sub: self.cognito_sub,
        }
    }
}

/// `BLOCK#<blocker>` / `USER#<blocked>`: one direction of a block, with the blocked user's
/// handle and display name copied (profiles never change), so the blocker's list is one
/// Query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockItem {
    pub pk: String,
    pub sk: String,
    pub blocker_uuid: Uuid,
    pub user_uuid: Uuid,
    pub user_handle: String,
    pub user_display_name: String,
    pub blocked_at: String,
}

impl BlockItem {
    pub fn new(blocker: Uuid, blocked: &UserSummary, blocked_at: &str) -> Self {
        let key = keys::block(blocker, blocked.uuid);
        Self {
            pk: key.pk,
            sk: key.sk,
            blocker_uuid: blocker,
            user_uuid: blocked.uuid,
            user_handle: blocked.handle.clone(),
            user_display_name: blocked.display_name.clone(),
            blocked_at: blocked_at.to_owned(),
        }
    }

    pub fn blocked(&self) -> UserSummary {
        UserSummary {
            uuid: self.user_uuid,
            handle: self.user_handle.clone(),
            display_name: self.user_display_name.clone(),
        }
    }
}

/// `HANDLE#<handle>` / `RESERVATION`: a sign-up in progress holds the handle, written by
/// the pre sign-up trigger and deleted when the confirmed user claims the handle; DynamoDB's
/// TTL (`expires_at`) removes one whose sign-up was never confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleReservationItem {
    pub pk: String,
    pub sk: String,
    pub handle: Handle,
    /// The Cognito user name of the sign-up (`userName` of the trigger events).
    pub cognito_username: String,
    pub reserved_at: String,
    /// Epoch seconds; the table's TTL attribute ([`crate::schema::TTL_ATTRIBUTE`]).
    pub expires_at: i64,
}

/// `CONN#<user>` / `<connection id>`: one open WebSocket connection of a user, written by
/// `ws-connect`, removed by `ws-disconnect`, by the push consumer when API Gateway answers
/// 410 Gone, or by DynamoDB's TTL (`expires_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionItem {
    pub pk: String,
    pub sk: String,
    pub user_uuid: Uuid,
    pub connection_id: String,
    pub connected_at: String,
    /// Epoch seconds; the table's TTL attribute ([`crate::schema::TTL_ATTRIBUTE`]).
    pub expires_at: i64,
}

impl ConnectionItem {
    pub fn new(connection: &Connection) -> Self {
        let key = keys::connection(connection.user_uuid, &connection.connection_id);
        Self {
            pk: key.pk,
            sk: key.sk,
            user_uuid: connection.user_uuid,
            connection_id: connection.connection_id.clone(),
            connected_at: connection.connected_at.clone(),
            expires_at: connection.expires_at,
        }
    }

    pub fn into_connection(self) -> Connection {
        Connection {
            user_uuid: self.user_uuid,
            connection_id: self.connection_id,
            connected_at: self.connected_at,
            expires_at: self.expires_at,
        }
    }
}

/// `IDEM#<sender>` / `<client_message_id>`: a send the client named, and what it answered,
/// so a repeat answers the same (`store/idempotency.rs`). Put in the send's own
/// transaction; removed by DynamoDB's TTL (`expires_at`) a day later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecordItem {
    pub pk: String,
    pub sk: String,
    /// What the request asked for (SHA-256 of its fields, base64url): a repeat asking for
    /// something else is refused.
    pub request_hash: String,
    /// The conversation (not `message_group_uuid`: that attribute puts an item in the group
    /// index, which holds inbox rows only).
    pub group_uuid: Uuid,
    pub message_uuid: Uuid,
    pub created_at: String,
    /// Epoch seconds; the table's TTL attribute ([`crate::schema::TTL_ATTRIBUTE`]).
    pub expires_at: i64,
    /// A group creation whose last members (its second transaction) are not added yet: a
    /// repeat adds them. Removed by that second transaction.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unfinished: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);

    fn at(second: u32) -> String {
        format!("2025-01-01T00:00:{second:02}.000000+00:00")
    }

    #[test]
    fn rows_start_with_the_first_message_unread_for_everyone_but_its_sender() {
        let sender = UserSummary {
            uuid: OTHER,
            handle: "bayko".into(),
            display_name: "Bayko".into(),
        };
        let first = Message::new(Uuid::from_u128(9), sender.clone(), "hi".into(), at(1));
        let mine = InboxRowItem::new_group(OTHER, first.group_uuid, "Crew", 3, &first);
        let theirs = InboxRowItem::new_group(OWNER, first.group_uuid, "Crew", 3, &first);
        assert_eq!((mine.unread, theirs.unread), (0, 1));
        assert_eq!(theirs.user_handle, "bayko", "a group shows its last sender");
        assert_eq!(theirs.owner(), Some(OWNER));
        let entry = theirs.into_entry();
        assert_eq!(entry.kind, ConversationKind::Group);
        assert_eq!(entry.name.as_deref(), Some("Crew"));
        let direct = InboxRowItem::new(OWNER, first.group_uuid, &sender, &first);
        assert_eq!(direct.unread, 1);
        // The first message stays counted once the row moves on, and is read with the rest.
        let mut moved = direct.clone();
        let second = Arrival {
            created_at: at(2),
            sender: OTHER,
        };
        assert_eq!(moved.count_unread(&[Arrival::from(&first), second]), 1);
        moved.last_message_at = Some(at(2));
        assert_eq!(moved.unread, 2);
        let read = moved.marked_read_through(&at(1)).unwrap();
        assert_eq!((read.unread, read.unread_at), (1, vec![at(2)]));
    }

    #[test]
    fn a_direct_row_is_seen_when_the_other_member_read_the_owners_last_message() {
        let owner = UserSummary {
            uuid: OWNER,
            handle: "andrewbrown".into(),
            display_name: "Andrew".into(),
        };
        let other = UserSummary {
            uuid: Uuid::from_u128(2),
            handle: "bayko".into(),
            display_name: "Bayko".into(),
        };
        let mine = Message::new(Uuid::from_u128(9), owner.clone(), "hi".into(), at(1));
        let mut row = InboxRowItem::new(OWNER, mine.group_uuid, &other, &mine);
        assert_eq!(row.seen(), Some(false), "not read yet");
        row.peer_read_through = Some(at(0));
        assert_eq!(row.seen(), Some(false), "read, but not that far");
        row.peer_read_through = Some(at(1));
        assert_eq!(row.seen(), Some(true));
        assert_eq!(row.clone().into_entry().seen, Some(true));
        // The last message is the other member's: nothing of the owner's to be seen.
        row.last_sender_uuid = Some(other.uuid);
        assert_eq!(row.seen(), Some(false));
        // A row last moved before senders were kept cannot tell.
        row.last_sender_uuid = None;
        assert_eq!(row.seen(), Some(false));
        let group = InboxRowItem::new_group(OWNER, mine.group_uuid, "Bootcamp", 3, &mine);
        assert_eq!(group.seen(), None, "groups have the members list");
    }

    #[test]
    fn direct_rows_and_memberships_keep_the_original_shape() {
        let sender = UserSummary {
            uuid: OWNER,
            handle: "andrewbrown".into(),
            display_name: "Andrew".into(),
        };
        let first = Message::new(Uuid::from_u128(9), sender.clone(), "hi".into(), at(1));
        let row = serde_json::to_value(InboxRowItem::new(OWNER, first.group_uuid, &sender, &first))
            .unwrap();
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "last_message_at",
                "last_sender_uuid",
                "member_count",
                "message",
                "message_group_uuid",
                "pk",
                "sk",
                "user_display_name",
                "user_handle",
                "user_uuid"
            ],
            "a direct row the sender owns gains only who sent its last message"
        );
        let membership =
            serde_json::to_value(MembershipItem::new(first.group_uuid, OWNER, &at(1))).unwrap();
        assert!(membership.get("kind").is_none());
        let membership =
            serde_json::to_value(MembershipItem::in_group(first.group_uuid, OWNER, &at(1)))
                .unwrap();
        assert_eq!(membership["kind"], "group");
    }
}
