//! Domain types: users, messages, conversations, inbox entries, connections. How they are
//! stored is [`crate::items`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// What happened to it since it was sent: edits, a delete, reactions.
    pub life: MessageLife,
}

/// What happens to a message after it is sent (issue 20). All empty for a message as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageLife {
    /// When the sender last edited the text.
    pub edited_at: Option<String>,
    /// When the sender deleted it for everyone; its text is then empty.
    pub deleted_at: Option<String>,
    /// Edits and deletes so far, in order: what lets a copy of the text (an inbox preview)
    /// tell a newer version from an older one.
    pub revision: u64,
    /// One per (emoji, member), in no particular order.
    pub reactions: Vec<Reaction>,
}

/// One member's reaction to a message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reaction {
    pub emoji: String,
    pub member: Uuid,
}

impl Message {
    /// A new message with a fresh uuid, which carries `created_at` when that is a valid
    /// instant (see [`crate::message_id`]).
    pub fn new(group_uuid: Uuid, sender: UserSummary, text: String, created_at: String) -> Self {
        let uuid = crate::Timestamp::parse(&created_at)
            .map(crate::message_id::message_uuid_at)
            .unwrap_or_else(|_| Uuid::new_v4());
        Self {
            group_uuid,
            uuid,
            text,
            created_at,
            sender,
            life: MessageLife::default(),
        }
    }

    /// Moves a message not yet written to `at` (a collision took its microsecond), with a
    /// uuid that says so.
    pub fn place_at(&mut self, at: crate::Timestamp) {
        self.created_at = at.to_string();
        self.uuid = crate::message_id::message_uuid_at(at);
    }
}

/// Direct (two people, found again through their pair) or group (named, up to
/// [`crate::validate::MAX_GROUP_MEMBERS`] people who can be added and can leave).
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
    /// Direct conversations: whether the other member has read the owner's last message.
    pub seen: Option<bool>,
    /// When the previewed message was edited, if it was.
    pub edited_at: Option<String>,
    /// The previewed message was deleted for everyone (`last_message` is empty).
    pub deleted: bool,
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

    /// The connection ending with the token it was opened with: it expires at the earlier
    /// of API Gateway's maximum and the token's `exp` (epoch seconds), so a token that
    /// expires (or is revoked and not renewed) a minute after connecting stops receiving
    /// frames a minute later, not two hours later. `None` (no `exp` known) keeps the maximum.
    pub fn ending_with_token(mut self, token_expires_at: Option<i64>) -> Self {
        if let Some(exp) = token_expires_at {
            self.expires_at = self.expires_at.min(exp);
        }
        self
    }

    /// Whether it may still be open at `now_epoch_seconds`.
    pub fn is_live_at(&self, now_epoch_seconds: i64) -> bool {
        self.expires_at > now_epoch_seconds
    }
}
