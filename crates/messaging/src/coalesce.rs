//! Per batch, per conversation, only the newest message moves the rows; every message
//! counts towards unread; a message's edits and deletes fold into it.

use std::collections::HashMap;

use uuid::Uuid;

use crate::model::Message;
use crate::unread::Arrival;

/// The newest message of one conversation in a batch, when and by whom each of the
/// batch's messages of the conversation was sent (what unread counts add), and where in
/// the batch the conversation first appeared (a retry must restart there to cover all its
/// records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub message: Message,
    pub arrivals: Vec<Arrival>,
    pub first_position: usize,
}

impl Newest {
    /// A message alone in its batch.
    pub fn alone(message: Message) -> Self {
        Self {
            arrivals: vec![Arrival::from(&message)],
            message,
            first_position: 0,
        }
    }

    /// Messages of one conversation applied together (demo data, tools): the newest moves
    /// the rows, all of them count.
    pub fn of(messages: impl IntoIterator<Item = Message>) -> Option<Self> {
        newest_per_conversation(messages.into_iter().enumerate())
            .into_iter()
            .next()
    }
}

/// Groups `(position in batch, message)` by conversation and keeps the newest message of
/// each (greatest `created_at`; on a tie, the later record). Conversations come back in
/// the order they first appear in the batch.
pub fn newest_per_conversation(
    arrivals: impl IntoIterator<Item = (usize, Message)>,
) -> Vec<Newest> {
    let mut by_group: HashMap<Uuid, Newest> = HashMap::new();
    for (position, message) in arrivals {
        match by_group.get_mut(&message.group_uuid) {
            None => {
                by_group.insert(
                    message.group_uuid,
                    Newest {
                        arrivals: vec![Arrival::from(&message)],
                        message,
                        first_position: position,
                    },
                );
            }
            Some(newest) => {
                newest.first_position = newest.first_position.min(position);
                newest.arrivals.push(Arrival::from(&message));
                if message.created_at >= newest.message.created_at {
                    newest.message = message;
                }
            }
        }
    }
    let mut newest: Vec<Newest> = by_group.into_values().collect();
    newest.sort_by_key(|n| n.first_position);
    newest
}

/// Folds a batch's changes of one conversation (new images of edited or deleted messages,
/// in stream order) into its new messages: a message inserted in the batch takes its
/// newest version (highest `revision`), so its fan-out writes the preview as it now is.
/// Returns the changes of messages the batch did not insert, one per message (its newest
/// version), in the order the messages first appear: those change rows already out there.
pub fn fold_changes(
    inserted: &mut [Message],
    changes: impl IntoIterator<Item = Message>,
) -> Vec<Message> {
    let mut pending: Vec<Message> = Vec::new();
    for changed in changes {
        let same = |message: &&mut Message| {
            message.created_at == changed.created_at && message.uuid == changed.uuid
        };
        let target = match inserted.iter_mut().find(same) {
            Some(message) => message,
            None => match pending.iter_mut().find(same) {
                Some(message) => message,
                None => {
                    pending.push(changed);
                    continue;
                }
            },
        };
        if changed.life.revision > target.life.revision {
            *target = changed;
        }
    }
    pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserSummary;

    fn message(group: u128, at: &str, text: &str) -> Message {
        Message {
            life: Default::default(),
            group_uuid: Uuid::from_u128(group),
            uuid: Uuid::new_v4(),
            text: text.to_owned(),
            created_at: at.to_owned(),
            sender: UserSummary {
                uuid: Uuid::from_u128(99),
                handle: "h".into(),
                display_name: "H".into(),
            },
        }
    }

    #[test]
    fn keeps_the_newest_message_of_each_conversation() {
        let batch = vec![
            (0, message(1, "2024-01-01T00:00:01.000000+00:00", "a1")),
            (1, message(2, "2024-01-01T00:00:02.000000+00:00", "b1")),
            (2, message(1, "2024-01-01T00:00:03.000000+00:00", "a2")),
            // Out of order: older than a2, arrives after it.
            (3, message(1, "2024-01-01T00:00:02.500000+00:00", "a-late")),
            (4, message(3, "2023-12-31T23:59:59.000000+00:00", "c1")),
        ];
        let newest = newest_per_conversation(batch);
        let summary: Vec<(u128, &str, usize)> = newest
            .iter()
            .map(|n| {
                (
                    n.message.group_uuid.as_u128(),
                    n.message.text.as_str(),
                    n.first_position,
                )
            })
            .collect();
        assert_eq!(summary, vec![(1, "a2", 0), (2, "b1", 1), (3, "c1", 4)]);
        // Every message of a conversation is kept for unread counts, late ones included.
        let times: Vec<&str> = newest[0]
            .arrivals
            .iter()
            .map(|a| a.created_at.as_str())
            .collect();
        assert_eq!(
            times,
            [
                "2024-01-01T00:00:01.000000+00:00",
                "2024-01-01T00:00:03.000000+00:00",
                "2024-01-01T00:00:02.500000+00:00"
            ]
        );
        assert_eq!(newest[1].arrivals.len(), 1);
    }

    #[test]
    fn first_position_is_the_earliest_record_of_the_conversation() {
        let batch = vec![
            (7, message(1, "2024-01-01T00:00:09.000000+00:00", "newest")),
            (3, message(1, "2024-01-01T00:00:01.000000+00:00", "oldest")),
        ];
        let newest = newest_per_conversation(batch);
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].first_position, 3);
        assert_eq!(newest[0].message.text, "newest");
    }

    fn version(of: &Message, revision: u64, text: &str) -> Message {
        let mut version = of.clone();
        version.text = text.to_owned();
        version.life.revision = revision;
        if text.is_empty() {
            version.life.deleted_at = Some("2024-01-01T00:01:00.000000+00:00".into());
        } else {
            version.life.edited_at = Some("2024-01-01T00:01:00.000000+00:00".into());
        }
        version
    }

    #[test]
    fn a_new_message_takes_its_newest_version_whatever_the_order_of_its_changes() {
        let new = message(1, "2024-01-01T00:00:03.000000+00:00", "typo");
        let older = message(1, "2024-01-01T00:00:01.000000+00:00", "old");
        let changes = vec![
            version(&new, 1, "fixed"),
            version(&older, 1, "old, edited"),
            version(&new, 3, ""),
            // A replayed older version after the delete changes nothing.
            version(&new, 2, "fixed again"),
            version(&older, 2, "old, edited twice"),
        ];
        let mut inserted = vec![new.clone()];
        let pending = fold_changes(&mut inserted, changes);
        assert_eq!(inserted[0].text, "");
        assert_eq!(inserted[0].life.revision, 3);
        assert!(inserted[0].life.deleted_at.is_some());
        // The message not inserted here: one change, its newest version.
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].uuid, older.uuid);
        assert_eq!(
            (pending[0].text.as_str(), pending[0].life.revision),
            ("old, edited twice", 2)
        );
    }

    #[test]
    fn an_empty_batch_has_no_conversations() {
        assert!(newest_per_conversation(Vec::new()).is_empty());
    }
}
