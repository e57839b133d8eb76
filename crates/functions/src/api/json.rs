//! The API's JSON: the bodies the routes read and the shapes they answer with. The answers
//! keep the original frontend's field names.

use std::collections::BTreeMap;
use std::fmt;

use messaging::model::ConversationKind;
use messaging::reactions;
use messaging::store::{BlockedUser, Member};
use messaging::validate::MAX_GROUP_MEMBERS;
use messaging::{InboxEntry, Message, User};
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::http::HANDLES_TOO_MANY;

/// A message of a conversation, in the original frontend's shape (`uuid` is the
/// message's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListItem {
    pub uuid: String,
    pub display_name: String,
    pub handle: String,
    pub message: String,
    pub created_at: String,
    /// How many members reacted with each emoji; absent when none did.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reactions: BTreeMap<String, u32>,
    /// The emoji the reader reacted with; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub my_reactions: Vec<String>,
    /// When the sender last edited the text (absent when never edited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// Deleted for everyone: `message` is then `""` (absent when not deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

impl From<Message> for ListItem {
    fn from(message: Message) -> Self {
        Self {
            reactions: reactions::counts(&message.life.reactions),
            uuid: message.uuid.to_string(),
            display_name: message.sender.display_name,
            handle: message.sender.handle,
            message: message.text,
            created_at: message.created_at,
            edited_at: message.life.edited_at,
            deleted: message.life.deleted_at.is_some(),
            deleted_at: message.life.deleted_at,
            my_reactions: Vec::new(),
        }
    }
}

impl ListItem {
    /// The message as `reader` sees it: with the emoji they reacted with.
    pub fn for_reader(message: Message, reader: Uuid) -> Self {
        let mine = reactions::of_member(&message.life.reactions, reader);
        Self {
            my_reactions: mine,
            ..Self::from(message)
        }
    }
}

/// The answer to adding or removing a reaction: the message's reactions after the change,
/// as `ListItem` carries them (`reactions` and `my_reactions` always present here, `{}` and
/// `[]` when none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReactions {
    pub message_group_uuid: String,
    /// The message's.
    pub uuid: String,
    pub reactions: BTreeMap<String, u32>,
    pub my_reactions: Vec<String>,
}

impl MessageReactions {
    pub fn for_reader(message: &Message, reader: Uuid) -> Self {
        Self {
            message_group_uuid: message.group_uuid.to_string(),
            uuid: message.uuid.to_string(),
            reactions: reactions::counts(&message.life.reactions),
            my_reactions: reactions::of_member(&message.life.reactions, reader),
        }
    }
}

/// A conversation of the inbox: the original frontend's shape (`uuid` is the
/// conversation's; for a direct conversation `display_name` and `handle` are the other
/// member's) plus fields it ignores. A group shows its name as `display_name` and its
/// last sender's handle as `handle`, and carries `name` and `member_count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub uuid: String,
    pub display_name: String,
    pub handle: String,
    pub message: String,
    pub created_at: String,
    pub kind: ConversationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
    /// Messages from others since the caller last read the conversation.
    pub unread: u32,
    /// A direct conversation only: whether the other member has read the caller's last
    /// message (false when the last message is theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<bool>,
    /// When the previewed message was edited (absent if never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// The previewed message was deleted for everyone; `message` is then `""`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl From<InboxEntry> for InboxItem {
    fn from(row: InboxEntry) -> Self {
        let group = row.kind == ConversationKind::Group;
        Self {
            uuid: row.group_uuid.to_string(),
            display_name: match (&row.name, group) {
                (Some(name), true) => name.clone(),
                _ => row.other.display_name,
            },
            handle: row.other.handle,
            message: row.last_message,
            created_at: row.last_message_at,
            kind: row.kind,
            name: row.name.filter(|_| group),
            member_count: row.member_count.filter(|_| group),
            unread: row.unread,
            seen: row.seen.filter(|_| !group),
            edited_at: row.edited_at,
            deleted: row.deleted,
        }
    }
}

/// One member, as `GET /api/message_groups/{id}/members` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub uuid: String,
    pub handle: String,
    pub display_name: String,
    pub joined_at: String,
    /// Has a live WebSocket connection (bounded by the connection's expiry when its
    /// `$disconnect` was lost: docs/ARCHITECTURE.md, "Presence").
    pub online: bool,
    /// The member's last connect or disconnect; absent if they never connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
    /// `created_at` of the newest message the member has read; absent before their first
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_through: Option<String>,
}

impl From<Member> for GroupMember {
    fn from(member: Member) -> Self {
        Self {
            uuid: member.uuid.to_string(),
            handle: member.handle,
            display_name: member.display_name,
            joined_at: member.joined_at,
            online: member.online,
            last_seen_at: member.last_seen_at,
            read_through: member.read_through,
        }
    }
}

/// The answer to `POST /api/messages`: the new message, `uuid` being the message's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedMessage {
    pub message_group_uuid: String,
    pub uuid: String,
    pub display_name: String,
    pub handle: String,
    pub message: String,
    pub created_at: String,
    /// When the sender last edited the text (absent when never edited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// Deleted for everyone: `message` is then `""` (absent when not deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

impl From<Message> for CreatedMessage {
    fn from(message: Message) -> Self {
        Self {
            message_group_uuid: message.group_uuid.to_string(),
            uuid: message.uuid.to_string(),
            display_name: message.sender.display_name,
            handle: message.sender.handle,
            message: message.text,
            created_at: message.created_at,
            edited_at: message.life.edited_at,
            deleted: message.life.deleted_at.is_some(),
            deleted_at: message.life.deleted_at,
        }
    }
}

/// `GET /api/users/@{handle}/short`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserShort {
    pub uuid: String,
    pub handle: String,
    pub display_name: String,
}

impl From<User> for UserShort {
    fn from(user: User) -> Self {
        Self {
            uuid: user.uuid.to_string(),
            handle: user.handle.to_string(),
            display_name: user.display_name.to_string(),
        }
    }
}

/// One user the caller blocked, as `GET /api/blocks` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedItem {
    pub uuid: String,
    pub handle: String,
    pub display_name: String,
    pub blocked_at: String,
}

impl From<BlockedUser> for BlockedItem {
    fn from(blocked: BlockedUser) -> Self {
        Self {
            uuid: blocked.user.uuid.to_string(),
            handle: blocked.user.handle,
            display_name: blocked.user.display_name,
            blocked_at: blocked.blocked_at,
        }
    }
}

/// `POST /api/messages` body: `{message, message_group_uuid}` appends to a conversation,
/// `{message, handle}` messages a user (when both are given, the conversation wins).
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateMessageBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub message_group_uuid: Option<String>,
    #[serde(default)]
    pub handle: Option<String>,
    /// A UUID the client made for this send: a repeat within a day answers the first reply.
    #[serde(default)]
    pub client_message_id: Option<String>,
}

/// `PATCH /api/messages/{message_group_uuid}/{message_uuid}` body: the new text.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EditMessageBody {
    #[serde(default)]
    pub message: Option<String>,
}

/// `POST /api/message_groups` body.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateGroupBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub handles: Option<Handles>,
    #[serde(default)]
    pub message: Option<String>,
    /// As for `POST /api/messages`.
    #[serde(default)]
    pub client_message_id: Option<String>,
}

/// `POST /api/message_groups/{id}/members` body.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AddMembersBody {
    #[serde(default)]
    pub handles: Option<Handles>,
}

/// Most entries a `handles` array may have and still be read: the others a group can hold
/// plus a margin, so a list a little too long (or with duplicates, which collapse) still
/// gets validation's precise answer, and a list far too long is refused once this many
/// entries are read, however many follow.
pub(crate) const MAX_HANDLES_READ: usize = MAX_GROUP_MEMBERS + 10;

/// The `handles` of a group request, read at most [`MAX_HANDLES_READ`] entries far: one
/// more and the body is refused (`400 ["group_handles_too_many"]`) without reading the rest.
#[derive(Debug, Default)]
pub(super) struct Handles(pub Vec<String>);

impl<'de> Deserialize<'de> for Handles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(BoundedHandles)
    }
}

struct BoundedHandles;

impl<'de> Visitor<'de> for BoundedHandles {
    type Value = Handles;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "an array of at most {MAX_HANDLES_READ} handles")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Handles, A::Error> {
        if seq.size_hint().is_some_and(|len| len > MAX_HANDLES_READ) {
            return Err(de::Error::custom(HANDLES_TOO_MANY));
        }
        let mut handles = Vec::new();
        while handles.len() < MAX_HANDLES_READ {
            match seq.next_element::<String>()? {
                Some(handle) => handles.push(handle),
                None => return Ok(Handles(handles)),
            }
        }
        // One entry past the bound, skipped unread, says the list is too long.
        match seq.next_element::<IgnoredAny>()? {
            Some(_) => Err(de::Error::custom(HANDLES_TOO_MANY)),
            None => Ok(Handles(handles)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_handles_array_is_refused_once_the_bound_is_read() {
        // 100,000 entries; the one after the bound is not even a string, so reading on
        // past the bound would be a different error.
        let mut entries = vec!["\"h\"".to_owned(); MAX_HANDLES_READ];
        entries.push("5".to_owned());
        entries.extend(std::iter::repeat_n(
            "\"h\"".to_owned(),
            100_000 - entries.len(),
        ));
        let body = format!("{{\"handles\": [{}]}}", entries.join(","));

        let error = serde_json::from_str::<AddMembersBody>(&body).unwrap_err();

        assert!(error.is_data(), "{error}");
        assert!(error.to_string().starts_with(HANDLES_TOO_MANY), "{error}");
        // Where it stopped: right after the bound, far from the end.
        assert!(error.column() < body.len() / 100, "{error}");
    }

    #[test]
    fn handles_up_to_the_bound_are_read() {
        let entries = vec!["\"h\""; MAX_HANDLES_READ].join(",");
        let body: AddMembersBody =
            serde_json::from_str(&format!("{{\"handles\": [{entries}]}}")).unwrap();
        assert_eq!(body.handles.unwrap().0.len(), MAX_HANDLES_READ);
        let body: AddMembersBody = serde_json::from_str(r#"{"handles": null}"#).unwrap();
        assert!(body.handles.is_none());
        let wrong = serde_json::from_str::<AddMembersBody>(r#"{"handles": [1]}"#).unwrap_err();
        assert!(!wrong.to_string().starts_with(HANDLES_TOO_MANY));
    }
}
