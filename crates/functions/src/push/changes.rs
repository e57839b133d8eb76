//! `messaging-push` for changes of messages (issue 20): an edit, a delete or a reaction
//! becomes a `message_updated`, `message_deleted` or `reaction` frame, sent like a new
//! message's frame (every live connection of every member, the same retries, 410s and
//! expiry), in stream order with the conversation's new messages: a frame goes out only
//! when the one before it has been posted everywhere.
//!
//! A frame carries what the record's new image says, so a client applies it without a
//! read: the new text, the time of the delete, an emoji's count after the change. A retried
//! batch posts its frames again, as it does messages; they are idempotent for a client that
//! keeps the newest `edited_at` and treats a delete as final.

use serde::{Deserialize, Serialize};

use super::PushFrame;
use crate::batch::{ChangedMessage, Conversation};
use messaging::items::MessageChangeKind;

/// The second pattern of `messaging-push`'s `FilterCriteria`: every `MODIFY` of a message
/// item whose new image names a `change` (all four kinds), matched on the table attribute
/// in `dynamodb.NewImage` by its type, as in "Filtering with table attributes",
/// <https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html>. The kinds are
/// listed rather than tested with `exists`, so a kind the push cannot frame costs no
/// invocation.
pub const CHANGES_PATTERN: &str = r#"{"eventName":["MODIFY"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"MSG#"}]}},"NewImage":{"change":{"S":["edited","deleted","reacted","unreacted"]}}}}"#;

/// A frame telling members a message changed; `uuid` is the message's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeFrame {
    MessageUpdated(MessageUpdated),
    MessageDeleted(MessageDeleted),
    Reaction(ReactionChanged),
}

/// `{"type":"message_updated", …}`: the message's new text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageUpdated {
    pub message_group_uuid: String,
    pub uuid: String,
    pub message: String,
    pub edited_at: String,
    /// The sender's (only the sender edits).
    pub handle: String,
    pub display_name: String,
    pub created_at: String,
}

/// `{"type":"message_deleted", …}`: the message stays in its place, without its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeleted {
    pub message_group_uuid: String,
    pub uuid: String,
    pub deleted_at: String,
    pub created_at: String,
}

/// `{"type":"reaction", …}`: a member added (`added`) or removed a reaction; `count` is the
/// emoji's count on the message after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionChanged {
    pub message_group_uuid: String,
    pub uuid: String,
    pub emoji: String,
    /// The reacting member's.
    pub handle: String,
    pub display_name: String,
    pub added: bool,
    pub count: usize,
}

impl ChangeFrame {
    pub const MESSAGE_UPDATED: &'static str = "message_updated";
    pub const MESSAGE_DELETED: &'static str = "message_deleted";
    pub const REACTION: &'static str = "reaction";

    /// The frame of a change, or `None` when its image lacks what the frame needs (the
    /// record reader already refuses reactions without their emoji or member).
    pub fn of(change: &ChangedMessage) -> Option<Self> {
        let message = &change.message;
        let group = message.group_uuid.to_string();
        let uuid = message.uuid.to_string();
        Some(match change.kind {
            MessageChangeKind::Edited => Self::MessageUpdated(MessageUpdated {
                message_group_uuid: group,
                uuid,
                message: message.text.clone(),
                edited_at: message
                    .life
                    .edited_at
                    .clone()
                    .or_else(|| change.at.clone())?,
                handle: message.sender.handle.clone(),
                display_name: message.sender.display_name.clone(),
                created_at: message.created_at.clone(),
            }),
            MessageChangeKind::Deleted => Self::MessageDeleted(MessageDeleted {
                message_group_uuid: group,
                uuid,
                deleted_at: message
                    .life
                    .deleted_at
                    .clone()
                    .or_else(|| change.at.clone())?,
                created_at: message.created_at.clone(),
            }),
            MessageChangeKind::Reacted | MessageChangeKind::Unreacted => {
                let emoji = change.emoji.clone()?;
                let by = change.by.clone()?;
                let count = message
                    .life
                    .reactions
                    .iter()
                    .filter(|reaction| reaction.emoji == emoji)
                    .count();
                Self::Reaction(ReactionChanged {
                    message_group_uuid: group,
                    uuid,
                    emoji,
                    handle: by.handle,
                    display_name: by.display_name,
                    added: change.kind == MessageChangeKind::Reacted,
                    count,
                })
            }
        })
    }
}

/// The conversation's frames in stream order: each change where it fell among the new
/// messages. A frame that cannot be built is logged and left out.
pub(super) fn frames_in_order(conversation: Conversation) -> Vec<Vec<u8>> {
    let Conversation {
        group,
        messages,
        changes,
        ..
    } = conversation;
    let mut changes = changes.into_iter().peekable();
    let mut frames = Vec::new();
    let mut encode = |frame: Result<Vec<u8>, serde_json::Error>| match frame {
        Ok(frame) => frames.push(frame),
        Err(error) => tracing::error!(%group, %error, "could not encode a frame"),
    };
    for (index, message) in messages.into_iter().map(Some).chain([None]).enumerate() {
        while let Some(change) = changes.next_if(|change| change.follows <= index) {
            match ChangeFrame::of(&change) {
                Some(frame) => encode(serde_json::to_vec(&frame)),
                None => {
                    tracing::warn!(%group, message = %change.message.uuid, kind = change.kind.as_str(), "change without what its frame needs; not pushed")
                }
            }
        }
        if let Some(message) = message {
            encode(serde_json::to_vec(&PushFrame::from(message)));
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use messaging::{Message, MessageLife, Reaction, UserSummary};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    const AT: &str = "2026-11-22T10:15:30.123456+00:00";
    const LATER: &str = "2026-11-22T10:16:00.000000+00:00";

    fn message(life: MessageLife, text: &str) -> Message {
        Message {
            life,
            group_uuid: Uuid::from_u128(1),
            uuid: Uuid::from_u128(2),
            text: text.into(),
            created_at: AT.into(),
            sender: UserSummary {
                uuid: Uuid::from_u128(3),
                handle: "bayko".into(),
                display_name: "Andrew Bayko".into(),
            },
        }
    }

    fn change(kind: MessageChangeKind, message: Message, follows: usize) -> ChangedMessage {
        ChangedMessage {
            kind,
            message,
            by: Some(UserSummary {
                uuid: Uuid::from_u128(4),
                handle: "londo".into(),
                display_name: "Londo Mollari".into(),
            }),
            emoji: matches!(
                kind,
                MessageChangeKind::Reacted | MessageChangeKind::Unreacted
            )
            .then(|| "👍".to_owned()),
            at: Some(LATER.into()),
            follows,
        }
    }

    #[test]
    fn each_change_becomes_the_contracts_frame() {
        let edited = message(
            MessageLife {
                edited_at: Some(LATER.into()),
                revision: 1,
                ..MessageLife::default()
            },
            "fixed",
        );
        let frame = ChangeFrame::of(&change(MessageChangeKind::Edited, edited, 0)).unwrap();
        assert_eq!(
            serde_json::to_value(frame).unwrap(),
            json!({
                "type": "message_updated",
                "message_group_uuid": "00000000-0000-0000-0000-000000000001",
                "uuid": "00000000-0000-0000-0000-000000000002",
                "message": "fixed",
                "edited_at": LATER,
                "handle": "bayko",
                "display_name": "Andrew Bayko",
                "created_at": AT,
            })
        );
        let deleted = message(
            MessageLife {
                deleted_at: Some(LATER.into()),
                revision: 2,
                ..MessageLife::default()
            },
            "",
        );
        let frame = ChangeFrame::of(&change(MessageChangeKind::Deleted, deleted, 0)).unwrap();
        assert_eq!(
            serde_json::to_value(frame).unwrap(),
            json!({
                "type": "message_deleted",
                "message_group_uuid": "00000000-0000-0000-0000-000000000001",
                "uuid": "00000000-0000-0000-0000-000000000002",
                "deleted_at": LATER,
                "created_at": AT,
            })
        );
        let reacted = message(
            MessageLife {
                reactions: vec![
                    Reaction {
                        emoji: "👍".into(),
                        member: Uuid::from_u128(4),
                    },
                    Reaction {
                        emoji: "👍".into(),
                        member: Uuid::from_u128(3),
                    },
                    Reaction {
                        emoji: "🎉".into(),
                        member: Uuid::from_u128(3),
                    },
                ],
                ..MessageLife::default()
            },
            "hi",
        );
        let frame =
            ChangeFrame::of(&change(MessageChangeKind::Reacted, reacted.clone(), 0)).unwrap();
        assert_eq!(
            serde_json::to_value(frame).unwrap(),
            json!({
                "type": "reaction",
                "message_group_uuid": "00000000-0000-0000-0000-000000000001",
                "uuid": "00000000-0000-0000-0000-000000000002",
                "emoji": "👍",
                "handle": "londo",
                "display_name": "Londo Mollari",
                "added": true,
                "count": 2,
            })
        );
        let frame = ChangeFrame::of(&change(MessageChangeKind::Unreacted, reacted, 0)).unwrap();
        assert!(matches!(
            frame,
            ChangeFrame::Reaction(ReactionChanged {
                added: false,
                count: 2,
                ..
            })
        ));
    }

    #[test]
    fn frames_keep_stream_order_among_the_conversations_messages() {
        let edit = |follows, text: &str| {
            let life = MessageLife {
                edited_at: Some(LATER.into()),
                ..MessageLife::default()
            };
            change(MessageChangeKind::Edited, message(life, text), follows)
        };
        let mut second = message(MessageLife::default(), "second");
        second.uuid = Uuid::from_u128(9);
        let conversation = Conversation {
            group: Uuid::from_u128(1),
            first_position: 0,
            messages: vec![message(MessageLife::default(), "first"), second],
            // Before any message, after the first, after both.
            changes: vec![edit(0, "e0"), edit(1, "e1"), edit(2, "e2")],
        };
        let order: Vec<String> = frames_in_order(conversation)
            .iter()
            .map(|frame| {
                let frame: serde_json::Value = serde_json::from_slice(frame).unwrap();
                format!(
                    "{}:{}",
                    frame["type"].as_str().unwrap(),
                    frame["message"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                "message_updated:e0",
                "message:first",
                "message_updated:e1",
                "message:second",
                "message_updated:e2"
            ]
        );
    }
}
