//! Domain types, and the items that store them (attribute names are the original system's,
//! so data it wrote stays readable).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys;
use crate::validate::{DisplayName, Handle};

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uuid: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub cognito_sub: String,
}

impl User {
    pub fn summary(&self) -> UserSummary {
        UserSummary {
            uuid: self.uuid,
            handle: self.handle.as_str().to_owned(),
            display_name: self.display_name.as_str().to_owned(),
        }
    }
}

/// Who wrote a message, or who the other member of a conversation is, as copied into
/// message items and inbox rows (so a list needs no second read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub uuid: Uuid,
    pub handle: String,
    pub display_name: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub group_uuid: Uuid,
    pub uuid: Uuid,
    pub text: String,
    pub created_at: String,
    pub sender: UserSummary,
}

impl Message {
    /// A new message with a fresh uuid.
    pub fn new(group_uuid: Uuid, sender: UserSummary, text: String, created_at: String) -> Self {
        Self {
            group_uuid,
            uuid: Uuid::new_v4(),
            text,
            created_at,
            sender,
        }
    }
}

/// Direct (two people, found again through their pair) or group (named, up to
/// [`MAX_GROUP_MEMBERS`] people who can be added and can leave).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    /// Also what items without a `kind` are: every conversation the original system wrote,
    /// and every one-to-one conversation written here, so direct rows keep their shape.
    #[default]
    Direct,
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    pub fn is_direct(&self) -> bool {
        *self == Self::Direct
    }
}

/// The most members a group has: its creator and 49 others.
pub const MAX_GROUP_MEMBERS: usize = 50;

/// How many of a row's unread messages it names by time (`unread_at`): enough to recognise
/// a message counted before (a replay, or a message committed after a newer one) and to
/// mark read exactly up to a message. The count itself (`unread`) has no bound.
pub const UNREAD_TIMES_KEPT: usize = 20;

/// One row of a user's inbox: a conversation, the other member (in a group, the last
/// sender), the last message, and how many messages from others the owner has not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub group_uuid: Uuid,
    pub kind: ConversationKind,
    /// A group's name; `None` for a direct conversation.
    pub name: Option<String>,
    pub member_count: Option<u32>,
    pub other: UserSummary,
    pub last_message: String,
    pub last_message_at: String,
    pub unread: u32,
}

/// A message as unread counts need it: when it was sent, and by whom (the owner's own
/// messages never count).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arrival {
    pub created_at: String,
    pub sender: Uuid,
}

impl From<&Message> for Arrival {
    fn from(message: &Message) -> Self {
        Self {
            created_at: message.created_at.clone(),
            sender: message.sender.uuid,
        }
    }
}

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
        })
    }
}

/// `GRP#<owner>` / `<last_message_at>`: the owner's view of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
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
    /// `created_at` of the newest [`UNREAD_TIMES_KEPT`] of those messages, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread_at: Vec<String>,
    /// `created_at` of the newest message the owner has read: nothing at or before it
    /// counts; empty when nothing is read yet. Absent until the row is first read or
    /// counted (the original system's rows, and rows of conversations their owner started);
    /// until then the row's own position stands for it, so history older than unread
    /// counts never counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_through: Option<String>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl InboxItem {
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
            ..Self::default()
        }
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
            ..Self::default()
        }
        .with_first_message_counted(owner, last)
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

    /// Counts the messages of `arrivals` that are unread for the owner and not counted
    /// yet; returns how many. Called on the row as read, before it moves.
    ///
    /// A message counts if another member sent it after what the owner has read, and this
    /// row has not counted it before. Counted messages are named in `unread_at` until read,
    /// so a message is recognised as counted even when it is older than the row's position
    /// (a replayed batch, or a message committed after a newer one and so delivered in a
    /// later batch). Only when more than [`UNREAD_TIMES_KEPT`] messages are unread can an
    /// old message be unnamed: then one older than every named one is taken as counted,
    /// which can miss an increment but never double one.
    pub fn count_unread(&mut self, arrivals: &[Arrival]) -> usize {
        let owner = self.owner();
        let position = self.last_message_at().to_owned();
        let read_through = self
            .read_through
            .clone()
            .unwrap_or_else(|| position.clone());
        let all_named = self.unread as usize <= self.unread_at.len();
        let oldest_named = self.unread_at.first().cloned();
        let mut counted: Vec<String> = Vec::new();
        for arrival in arrivals {
            let at = &arrival.created_at;
            if Some(arrival.sender) == owner
                || *at <= read_through
                || self.unread_at.contains(at)
                || counted.contains(at)
            {
                continue;
            }
            let not_counted_before = *at > position
                || all_named
                || oldest_named.as_ref().is_some_and(|oldest| at > oldest);
            if not_counted_before {
                counted.push(at.clone());
            }
        }
        // From now on the read mark is explicit: the position moves, what was read does not.
        self.read_through = Some(read_through);
        let added = counted.len();
        self.unread = self
            .unread
            .saturating_add(u32::try_from(added).unwrap_or(u32::MAX));
        self.unread_at.extend(counted);
        self.unread_at.sort();
        self.unread_at.dedup();
        let excess = self.unread_at.len().saturating_sub(UNREAD_TIMES_KEPT);
        self.unread_at.drain(..excess);
        added
    }

    /// The row once its owner has read the conversation up to the message created at
    /// `through`, or `None` if that changes nothing. Messages after `through` stay unread.
    pub fn marked_read_through(&self, through: &str) -> Option<Self> {
        let read_through = match &self.read_through {
            Some(read) if read.as_str() > through => read.clone(),
            _ => through.to_owned(),
        };
        let still_unread: Vec<String> = self
            .unread_at
            .iter()
            .filter(|at| at.as_str() > through)
            .cloned()
            .collect();
        let unnamed = (self.unread as usize).saturating_sub(self.unread_at.len());
        let unread = if through >= self.last_message_at() {
            // Everything this row counted is at or before its position.
            0
        } else if unnamed == 0
            || self
                .unread_at
                .first()
                .is_some_and(|oldest| through >= oldest.as_str())
        {
            // Unnamed messages are older than every named one, so read too.
            u32::try_from(still_unread.len()).unwrap_or(u32::MAX)
        } else {
            // Read up to a point older than every named message: the unnamed ones may be
            // on either side of it, so the count stays (an over-count, never a loss).
            self.unread
        };
        let unread_at = if unread == 0 {
            Vec::new()
        } else {
            still_unread
        };
        let marked = Self {
            unread,
            unread_at,
            read_through: Some(read_through),
            ..self.clone()
        };
        (marked != *self).then_some(marked)
    }

    pub fn into_entry(self) -> InboxEntry {
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
}

impl MembershipItem {
    pub fn new(group_uuid: Uuid, member: Uuid, joined_at: &str) -> Self {
        let key = keys::membership(group_uuid, member);
        Self {
            pk: key.pk,
            sk: key.sk,
            group_uuid,
            user_uuid: member,
            joined_at: joined_at.to_owned(),
            kind: ConversationKind::Direct,
        }
    }

    pub fn in_group(group_uuid: Uuid, member: Uuid, joined_at: &str) -> Self {
        Self {
            kind: ConversationKind::Group,
            ..Self::new(group_uuid, member, joined_at)
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

/// A user's open WebSocket connection, by API Gateway's connection id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub user_uuid: Uuid,
    pub connection_id: String,
    /// When API Gateway accepted it (the sortable timestamp format).
    pub connected_at: String,
    /// Epoch seconds after which the connection cannot be open any more.
    pub expires_at: i64,
}

impl Connection {
    /// API Gateway closes a WebSocket connection after two hours at most
    /// (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
    pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(2 * 60 * 60);

    /// A connection accepted at `connected_at`, expiring [`Self::MAX_DURATION`] later.
    pub fn opened(user_uuid: Uuid, connection_id: String, connected_at: crate::Timestamp) -> Self {
        let expires_at = connected_at.as_datetime().unix_timestamp()
            + i64::try_from(Self::MAX_DURATION.as_secs()).unwrap_or(i64::MAX);
        Self {
            user_uuid,
            connection_id,
            connected_at: connected_at.to_string(),
            expires_at,
        }
    }

    /// Whether it may still be open at `now_epoch_seconds`.
    pub fn is_live_at(&self, now_epoch_seconds: i64) -> bool {
        self.expires_at > now_epoch_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);

    fn at(second: u32) -> String {
        format!("2025-01-01T00:00:{second:02}.000000+00:00")
    }

    fn from(sender: Uuid, second: u32) -> Arrival {
        Arrival {
            created_at: at(second),
            sender,
        }
    }

    /// The owner's row at `second`, nothing unread, read mark as the row's position.
    fn row(second: u32) -> InboxItem {
        InboxItem {
            pk: keys::inbox_pk(OWNER),
            sk: at(second),
            last_message_at: Some(at(second)),
            ..InboxItem::default()
        }
    }

    #[test]
    fn only_others_messages_after_the_read_mark_count() {
        let mut item = row(10);
        let added = item.count_unread(&[from(OTHER, 11), from(OWNER, 12), from(OTHER, 13)]);
        assert_eq!(added, 2);
        assert_eq!(item.unread, 2);
        assert_eq!(item.unread_at, [at(11), at(13)]);
        // History older than the row's first count never counts.
        assert_eq!(item.read_through.as_deref(), Some(at(10).as_str()));
    }

    #[test]
    fn a_message_counted_once_is_never_counted_again() {
        let mut item = row(10);
        item.count_unread(&[from(OTHER, 11), from(OTHER, 12)]);
        // The row moved to 12; the same batch again, and then a message committed after
        // a newer one (so delivered later) that is older than the row's position.
        item.last_message_at = Some(at(12));
        let before = item.clone();
        assert_eq!(item.count_unread(&[from(OTHER, 11), from(OTHER, 12)]), 0);
        assert_eq!(item, before);
        let mut late = item.clone();
        let mut late_arrival = from(OTHER, 11);
        late_arrival.created_at = "2025-01-01T00:00:11.500000+00:00".into();
        assert_eq!(
            late.count_unread(&[late_arrival]),
            1,
            "late, not counted yet"
        );
        assert_eq!(late.unread, 3);
    }

    #[test]
    fn a_late_message_older_than_every_named_one_is_taken_as_counted_once_names_overflow() {
        let mut item = row(0);
        let many: Vec<Arrival> = (1..=UNREAD_TIMES_KEPT as u32 + 5)
            .map(|s| from(OTHER, s))
            .collect();
        assert_eq!(item.count_unread(&many), UNREAD_TIMES_KEPT + 5);
        assert_eq!(item.unread_at.len(), UNREAD_TIMES_KEPT);
        item.last_message_at = Some(at(UNREAD_TIMES_KEPT as u32 + 5));
        // Second 3 is counted but no longer named: a replay must not count it again.
        assert_eq!(item.count_unread(&[from(OTHER, 3)]), 0);
    }

    #[test]
    fn reading_up_to_a_message_keeps_only_later_ones_unread() {
        let mut item = row(10);
        item.count_unread(&[from(OTHER, 11), from(OTHER, 12), from(OTHER, 13)]);
        item.last_message_at = Some(at(13));
        let read = item.marked_read_through(&at(12)).unwrap();
        assert_eq!((read.unread, read.unread_at.clone()), (1, vec![at(13)]));
        assert_eq!(read.read_through.as_deref(), Some(at(12).as_str()));
        // A message the page showed but the row has not reached yet never counts later.
        let mut ahead = item.marked_read_through(&at(15)).unwrap();
        assert_eq!(ahead.unread, 0);
        assert_eq!(ahead.count_unread(&[from(OTHER, 14), from(OTHER, 16)]), 1);
        // Reading again changes nothing.
        assert!(read.marked_read_through(&at(12)).is_none());
        assert!(read.marked_read_through(&at(11)).is_none(), "never unread");
    }

    #[test]
    fn reading_before_every_named_message_keeps_an_unnamed_count() {
        let mut item = row(0);
        let many: Vec<Arrival> = (1..=UNREAD_TIMES_KEPT as u32 + 5)
            .map(|s| from(OTHER, s))
            .collect();
        item.count_unread(&many);
        item.last_message_at = Some(at(UNREAD_TIMES_KEPT as u32 + 5));
        let total = item.unread;
        // Read up to second 2: names start at 6, so what the five unnamed are is unknown.
        let read = item.marked_read_through(&at(2)).unwrap();
        assert_eq!(read.unread, total, "an over-count, never a loss");
        // Up to the oldest named one: every unnamed one is older, so read as well.
        let read = item.marked_read_through(&at(6)).unwrap();
        assert_eq!(read.unread as usize, UNREAD_TIMES_KEPT - 1);
        // Up to the row's position: everything.
        assert_eq!(item.marked_read_through(&at(25)).unwrap().unread, 0);
    }

    #[test]
    fn rows_start_with_the_first_message_unread_for_everyone_but_its_sender() {
        let sender = UserSummary {
            uuid: OTHER,
            handle: "bayko".into(),
            display_name: "Bayko".into(),
        };
        let first = Message::new(Uuid::from_u128(9), sender.clone(), "hi".into(), at(1));
        let mine = InboxItem::new_group(OTHER, first.group_uuid, "Crew", 3, &first);
        let theirs = InboxItem::new_group(OWNER, first.group_uuid, "Crew", 3, &first);
        assert_eq!((mine.unread, theirs.unread), (0, 1));
        assert_eq!(theirs.user_handle, "bayko", "a group shows its last sender");
        assert_eq!(theirs.owner(), Some(OWNER));
        let entry = theirs.into_entry();
        assert_eq!(entry.kind, ConversationKind::Group);
        assert_eq!(entry.name.as_deref(), Some("Crew"));
        let direct = InboxItem::new(OWNER, first.group_uuid, &sender, &first);
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
    fn direct_rows_and_memberships_keep_the_original_shape() {
        let sender = UserSummary {
            uuid: OWNER,
            handle: "andrewbrown".into(),
            display_name: "Andrew".into(),
        };
        let first = Message::new(Uuid::from_u128(9), sender.clone(), "hi".into(), at(1));
        let row =
            serde_json::to_value(InboxItem::new(OWNER, first.group_uuid, &sender, &first)).unwrap();
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
                "member_count",
                "message",
                "message_group_uuid",
                "pk",
                "sk",
                "user_display_name",
                "user_handle",
                "user_uuid"
            ],
            "a direct row the sender owns gains nothing"
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
