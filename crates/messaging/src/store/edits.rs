//! Editing a message and deleting it for everyone (issue 20): the sender's changes of a
//! message already sent.
//!
//! Both start from [`Store::find_message`] (one strongly consistent `GetItem`) and write in
//! one `TransactWriteItems` of three items: the sender's membership check (appending's:
//! still a member, not blocked), the `MSG#` update and the sender's `send` limit charge
//! (edits and deletes count against sending). The update is conditioned on the item
//! existing, being the editor's, not deleted, and still at the revision that was read:
//! a concurrent edit or delete cancels it, and the change is decided again on a fresh read
//! (a reaction never does: it does not touch `revision`). So what is answered is exactly
//! the text, times and revision the write produced; only `reactions` is as read, since a
//! reaction may land between the read and the write.
//!
//! Every change sets all `change*` attributes, so the stream's new image alone says what
//! happened (`change`: `edited` or `deleted`). Decisions where the issue is silent:
//! - the message of someone else, of another conversation or unknown, a sender who left,
//!   and a deleted message being edited: [`StoreError::MessageNotFound`] (a deleted message
//!   is gone; its placeholder cannot take text again);
//! - a sender blocked in a direct conversation: [`StoreError::Blocked`], as appending;
//! - an edit to the text the message already has and a second delete write nothing (no
//!   revision, no stream record, no charge) and answer the message as it is, after one
//!   strongly consistent read of the caller's membership, so a sender who left still gets
//!   `MessageNotFound`.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use uuid::Uuid;

use super::limits::Limited;
use super::requests::backoff;
use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, from_item, key_item};
use crate::items::{CHANGE_ATTRIBUTE, MembershipItem, MessageChangeKind, REACTIONS_ATTRIBUTE};
use crate::keys::{self, Key};
use crate::model::{Message, User};
use crate::timestamp::Timestamp;
use crate::validate::MessageText;

/// Position of the `MSG#` update in the transaction (the membership check is 0, the
/// charge comes last).
const MESSAGE_ITEM: usize = 1;

/// A change the sender makes to their message.
#[derive(Debug, Clone)]
enum Change {
    Edit(MessageText),
    Delete,
}

impl Change {
    fn kind(&self) -> MessageChangeKind {
        match self {
            Self::Edit(_) => MessageChangeKind::Edited,
            Self::Delete => MessageChangeKind::Deleted,
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            Self::Edit(_) => "EditMessage",
            Self::Delete => "DeleteMessage",
        }
    }
}

/// What a change does to a message as found.
enum Decision {
    /// Not the caller's to change: another's message, or (for an edit) a deleted one.
    Refuse,
    /// Already so: nothing to write.
    Unchanged,
    /// Write this version.
    Write(Box<Message>),
}

impl Store {
    /// The sender replaces the text of their message `message_uuid` of `group`; answers the
    /// message as it now is (`edited_at` set, `revision` one more). One `GetItem` and one
    /// `TransactWriteItems` (3 items with a limit), retried on a fresh read when a
    /// concurrent edit or delete cancels it.
    #[tracing::instrument(skip(self, editor, text), fields(table = %self.table, editor = %editor.uuid), err(level = "debug"))]
    pub async fn edit_message(
        &self,
        editor: &User,
        group: Uuid,
        message_uuid: Uuid,
        text: MessageText,
        now: Timestamp,
    ) -> Result<Message, StoreError> {
        self.change_message(editor, group, message_uuid, Change::Edit(text), now)
            .await
    }

    /// The sender deletes their message `message_uuid` of `group` for everyone: its text is
    /// emptied in the table, its reactions removed, `deleted_at` set; it keeps its place.
    /// Answers the message as it now is; deleting again answers the same and writes nothing.
    #[tracing::instrument(skip(self, editor), fields(table = %self.table, editor = %editor.uuid), err(level = "debug"))]
    pub async fn delete_message(
        &self,
        editor: &User,
        group: Uuid,
        message_uuid: Uuid,
        now: Timestamp,
    ) -> Result<Message, StoreError> {
        self.change_message(editor, group, message_uuid, Change::Delete, now)
            .await
    }

    async fn change_message(
        &self,
        editor: &User,
        group: Uuid,
        message_uuid: Uuid,
        change: Change,
        now: Timestamp,
    ) -> Result<Message, StoreError> {
        let not_found = || StoreError::MessageNotFound {
            group,
            message: message_uuid,
        };
        let mut charge = self.charge(editor.uuid, Limited::Send, now)?;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let found = self
                .find_message(group, message_uuid)
                .await?
                .ok_or_else(not_found)?;
            let changed = match decide(editor, &found, &change, now) {
                Decision::Refuse => return Err(not_found()),
                Decision::Unchanged => {
                    return match self.member_unblocked(group, editor.uuid).await? {
                        Membership::Member => Ok(found),
                        Membership::Blocked => Err(StoreError::Blocked),
                        Membership::None => Err(not_found()),
                    };
                }
                Decision::Write(changed) => *changed,
            };
            let mut items = vec![
                self.member_check(group, editor.uuid)?,
                self.message_update(editor, &found, &change, now)?,
            ];
            charge.add_to(&mut items);
            match self.transact(change.operation(), items).await? {
                Ok(()) => return Ok(changed),
                Err(cancelled) if cancelled.condition_failed(0) => {
                    return Err(match self.refused_append(group, editor.uuid).await? {
                        StoreError::NotMember(_) => not_found(),
                        refusal => refusal,
                    });
                }
                Err(cancelled) if charge.refused(&cancelled) => return Err(charge.rate_limited()),
                // Edited or deleted since the read: decide again on what it is now.
                Err(cancelled) if cancelled.condition_failed(MESSAGE_ITEM) => {}
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            operation: change.operation(),
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// The `MSG#` item's update: the change's attributes, every `change*` attribute, one
    /// more revision; only if the item is still the editor's, not deleted, at the revision
    /// read.
    fn message_update(
        &self,
        editor: &User,
        found: &Message,
        change: &Change,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let now = now.to_string();
        let by = editor.summary();
        let (set, remove) = match change {
            Change::Edit(_) => ("#message = :text, #edited_at = :now", "#change_emoji"),
            Change::Delete => (
                "#message = :text, #deleted_at = :now",
                "#change_emoji, #reactions",
            ),
        };
        let text = match change {
            Change::Edit(text) => text.as_str().to_owned(),
            Change::Delete => String::new(),
        };
        let at_revision = if found.life.revision == 0 {
            "attribute_not_exists(#revision)"
        } else {
            "#revision = :revision"
        };
        let mut update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&Key::new(
                keys::message_pk(found.group_uuid),
                found.created_at.clone(),
            ))))
            .update_expression(format!(
                "SET {set}, #change = :change, #change_by = :by, #change_by_handle = :handle, \
                 #change_by_display_name = :name, #change_at = :now \
                 REMOVE {remove} ADD #revision :one"
            ))
            .condition_expression(format!(
                "attribute_exists(pk) AND #user_uuid = :editor \
                 AND attribute_not_exists(#deleted_at) AND {at_revision}"
            ))
            .expression_attribute_names("#message", "message")
            .expression_attribute_names("#deleted_at", "deleted_at")
            .expression_attribute_names("#user_uuid", "user_uuid")
            .expression_attribute_names("#revision", "revision")
            .expression_attribute_names("#change", CHANGE_ATTRIBUTE)
            .expression_attribute_names("#change_by", "change_by")
            .expression_attribute_names("#change_by_handle", "change_by_handle")
            .expression_attribute_names("#change_by_display_name", "change_by_display_name")
            .expression_attribute_names("#change_at", "change_at")
            .expression_attribute_names("#change_emoji", "change_emoji")
            .expression_attribute_values(":text", AttributeValue::S(text))
            .expression_attribute_values(":now", AttributeValue::S(now))
            .expression_attribute_values(
                ":change",
                AttributeValue::S(change.kind().as_str().to_owned()),
            )
            .expression_attribute_values(":by", AttributeValue::S(by.uuid.to_string()))
            .expression_attribute_values(":handle", AttributeValue::S(by.handle))
            .expression_attribute_values(":name", AttributeValue::S(by.display_name))
            .expression_attribute_values(":editor", AttributeValue::S(editor.uuid.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        match change {
            Change::Edit(_) => {
                update = update.expression_attribute_names("#edited_at", "edited_at");
            }
            Change::Delete => {
                update = update.expression_attribute_names("#reactions", REACTIONS_ATTRIBUTE);
            }
        }
        if found.life.revision != 0 {
            update = update.expression_attribute_values(
                ":revision",
                AttributeValue::N(found.life.revision.to_string()),
            );
        }
        let update = update
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Whether `user` is a member of `group` whom no block keeps from writing there: what
    /// the transaction's membership check holds, read (strongly consistent) for the changes
    /// that write nothing.
    async fn member_unblocked(&self, group: Uuid, user: Uuid) -> Result<Membership, StoreError> {
        let membership = self
            .get_item("GetItem", &keys::membership(group, user), true)
            .await?
            .map(from_item::<MembershipItem>)
            .transpose()?;
        Ok(match membership {
            None => Membership::None,
            Some(membership) if membership.blockers.is_empty() => Membership::Member,
            Some(_) => Membership::Blocked,
        })
    }
}

enum Membership {
    None,
    Member,
    Blocked,
}

fn decide(editor: &User, found: &Message, change: &Change, now: Timestamp) -> Decision {
    if found.sender.uuid != editor.uuid {
        return Decision::Refuse;
    }
    let deleted = found.life.deleted_at.is_some();
    let mut changed = found.clone();
    match change {
        Change::Edit(_) if deleted => return Decision::Refuse,
        Change::Edit(text) if text.as_str() == found.text => return Decision::Unchanged,
        Change::Edit(text) => {
            changed.text = text.as_str().to_owned();
            changed.life.edited_at = Some(now.to_string());
        }
        Change::Delete if deleted => return Decision::Unchanged,
        Change::Delete => {
            changed.text = String::new();
            changed.life.deleted_at = Some(now.to_string());
            changed.life.reactions.clear();
        }
    }
    changed.life.revision += 1;
    Decision::Write(Box::new(changed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageLife;
    use crate::validate::{DisplayName, Handle};

    fn user(handle: &str) -> User {
        User {
            uuid: Uuid::new_v4(),
            handle: Handle::parse(handle).unwrap(),
            display_name: DisplayName::parse(handle).unwrap(),
            cognito_sub: handle.to_owned(),
        }
    }

    fn sent_by(sender: &User) -> Message {
        Message::new(
            Uuid::new_v4(),
            sender.summary(),
            "hello".into(),
            "2026-12-01T06:00:00.000000+00:00".into(),
        )
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-12-01T06:01:00.000000+00:00").unwrap()
    }

    fn edit(text: &str) -> Change {
        Change::Edit(MessageText::parse(text).unwrap())
    }

    #[test]
    fn only_the_sender_changes_a_message() {
        let (andrew, bayko) = (user("andrew"), user("bayko"));
        let message = sent_by(&andrew);
        assert!(matches!(
            decide(&bayko, &message, &edit("mine now"), now()),
            Decision::Refuse
        ));
        assert!(matches!(
            decide(&bayko, &message, &Change::Delete, now()),
            Decision::Refuse
        ));
    }

    #[test]
    fn an_edit_sets_the_text_and_the_time_and_counts_a_revision() {
        let andrew = user("andrew");
        let message = sent_by(&andrew);
        let Decision::Write(edited) = decide(&andrew, &message, &edit("hello!"), now()) else {
            panic!("an edit of another text writes");
        };
        assert_eq!(edited.text, "hello!");
        assert_eq!(edited.life.edited_at, Some(now().to_string()));
        assert_eq!(edited.life.revision, 1);
        assert_eq!(edited.created_at, message.created_at);
        assert!(matches!(
            decide(&andrew, &message, &edit("hello"), now()),
            Decision::Unchanged
        ));
    }

    #[test]
    fn a_delete_empties_the_text_keeps_the_edit_and_drops_reactions() {
        let andrew = user("andrew");
        let mut message = sent_by(&andrew);
        message.life = MessageLife {
            edited_at: Some("2026-12-01T06:00:30.000000+00:00".into()),
            deleted_at: None,
            revision: 1,
            reactions: vec![crate::model::Reaction {
                emoji: "👍".into(),
                member: Uuid::new_v4(),
            }],
        };
        let Decision::Write(deleted) = decide(&andrew, &message, &Change::Delete, now()) else {
            panic!("a first delete writes");
        };
        assert_eq!(deleted.text, "");
        assert_eq!(deleted.life.deleted_at, Some(now().to_string()));
        assert_eq!(deleted.life.edited_at, message.life.edited_at);
        assert_eq!(deleted.life.revision, 2);
        assert!(deleted.life.reactions.is_empty());
        // Deleted: deleting again changes nothing; editing finds nothing to edit.
        assert!(matches!(
            decide(&andrew, &deleted, &Change::Delete, now()),
            Decision::Unchanged
        ));
        assert!(matches!(
            decide(&andrew, &deleted, &edit("back"), now()),
            Decision::Refuse
        ));
    }
}
