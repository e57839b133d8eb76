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

/// One row of a user's inbox: a conversation, the other member, the last message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub group_uuid: Uuid,
    pub other: UserSummary,
    pub last_message: String,
    pub last_message_at: String,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub pk: String,
    pub sk: String,
    pub message_group_uuid: Uuid,
    pub message: String,
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
    /// rows written by the original system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
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
        }
    }

    /// The time of the last message this row shows: what "newer" is decided against.
    pub fn last_message_at(&self) -> &str {
        self.last_message_at.as_deref().unwrap_or(&self.sk)
    }

    pub fn into_entry(self) -> InboxEntry {
        InboxEntry {
            group_uuid: self.message_group_uuid,
            other: UserSummary {
                uuid: self.user_uuid,
                handle: self.user_handle,
                display_name: self.user_display_name,
            },
            last_message_at: self.last_message_at.unwrap_or(self.sk),
            last_message: self.message,
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
