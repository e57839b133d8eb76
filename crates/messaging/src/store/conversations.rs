//! Conversations: reading messages (A) and inboxes (B), appending (C), starting (D).

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use uuid::Uuid;

use super::blocks;
use super::idempotency::{ClientMessageId, Once, Repeat};
use super::limits::Limited;
use super::requests::{Order, backoff};
use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, from_item, key_item};
use crate::items::{BLOCKERS_ATTRIBUTE, InboxRowItem, MembershipItem, MessageItem, PairItem};
use crate::keys;
use crate::model::{InboxEntry, Message, User};
use crate::page::{Page, PageRequest, decode_cursor};
use crate::schema::PARTITION_KEY;
use crate::timestamp::Timestamp;
use crate::validate::MessageText;

impl Store {
    /// Pattern A: a page of a conversation, newest page first, oldest first within the
    /// page. The membership check comes first and the page is read only for a member: a
    /// non-member's request reads nothing of the conversation (one round trip more than
    /// running both at once, the price of never touching a partition one may not read).
    #[tracing::instrument(skip(self, page), fields(table = %self.table), err(level = "debug"))]
    pub async fn list_messages(
        &self,
        reader: Uuid,
        group: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        // Validate the cursor before reading anything.
        let start_after = decode_message_cursor(group, page)?;
        if !self.is_member(group, reader).await? {
            return Err(StoreError::NotMember(group));
        }
        self.message_page(group, start_after, page.limit()).await
    }

    /// A page of a conversation with no membership check: for operators' tools only.
    #[tracing::instrument(skip(self, page), fields(table = %self.table), err(level = "debug"))]
    pub async fn conversation_messages(
        &self,
        group: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        let start_after = decode_message_cursor(group, page)?;
        self.message_page(group, start_after, page.limit()).await
    }

    pub(super) async fn message_page(
        &self,
        group: Uuid,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<Page<Message>, StoreError> {
        let newest_first = self
            .query_page::<MessageItem>(
                &keys::message_pk(group),
                start_after,
                limit,
                Order::NewestFirst,
            )
            .await?;
        let mut items = newest_first
            .items
            .into_iter()
            .map(stored_message)
            .collect::<Result<Vec<_>, _>>()?;
        items.reverse();
        Ok(Page {
            items,
            next_cursor: newest_first.next_cursor,
        })
    }

    /// The newest message of `group`, strongly consistent.
    pub(super) async fn newest_message(&self, group: Uuid) -> Result<Option<Message>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::message_pk(group)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("Query", err))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| stored_message(from_item::<MessageItem>(item)?))
            .transpose()
    }

    /// Pattern B: `owner`'s inbox, most recent conversation first. One query.
    #[tracing::instrument(skip(self, page), fields(table = %self.table), err(level = "debug"))]
    pub async fn list_inbox(
        &self,
        owner: Uuid,
        page: &PageRequest,
    ) -> Result<Page<InboxEntry>, StoreError> {
        let pk = keys::inbox_pk(owner);
        let start_after = page.cursor().map(|c| decode_cursor(c, &pk)).transpose()?;
        // The owner's blocks, read alongside: a direct conversation with someone they
        // blocked is hidden (the page may come out short; its cursor is unchanged).
        let (rows, blocked) = tokio::join!(
            self.query_page::<InboxRowItem>(&pk, start_after, page.limit(), Order::NewestFirst),
            self.blocked_users(owner),
        );
        let (rows, blocked) = (rows?, blocked?);
        Ok(Page {
            items: rows
                .items
                .into_iter()
                .filter(|row| !blocks::hidden_from_blocker(&blocked, row))
                .map(InboxRowItem::into_entry)
                .collect(),
            next_cursor: rows.next_cursor,
        })
    }

    /// Pattern C: appends a message to a conversation `sender` belongs to, in one
    /// `TransactWriteItems`: a condition on the membership item, and a put that never
    /// overwrites (a message already at this microsecond moves the new one 1 µs later).
    #[tracing::instrument(skip(self, sender, text), fields(table = %self.table, sender = %sender.uuid), err(level = "debug"))]
    pub async fn append_message(
        &self,
        sender: &User,
        group: Uuid,
        text: MessageText,
        now: Timestamp,
    ) -> Result<Message, StoreError> {
        let message = Message::new(group, sender.summary(), text.into_string(), now.to_string());
        self.append(sender.uuid, message, now, Once::none()).await
    }

    /// Writes `message` into its conversation at `now` or the first free microsecond after,
    /// with its send record when the client named the send (`once`).
    pub(super) async fn append(
        &self,
        sender: Uuid,
        mut message: Message,
        now: Timestamp,
        mut once: Once,
    ) -> Result<Message, StoreError> {
        let group = message.group_uuid;
        let mut at = now;
        let mut charge = self.charge(sender, Limited::Send, now)?;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            message.place_at(at);
            let mut items = vec![
                self.member_check(group, sender)?,
                self.put_new(&MessageItem::new(&message))?,
            ];
            charge.add_to(&mut items);
            once.add_to(&mut items, &message)?;
            match self.transact("AppendMessage", items).await? {
                Ok(()) => return Ok(message),
                // A repeat first: whatever else refused it, it answers what the first did.
                Err(cancelled) if once.repeated(&cancelled) => {
                    match self.repeated_send(&once, &message).await? {
                        Repeat::Answer(first) | Repeat::Unfinished(first) => return Ok(first),
                        Repeat::Gone => backoff(attempt).await,
                    }
                }
                Err(cancelled) if cancelled.condition_failed(0) => {
                    return Err(self.refused_append(group, sender).await?);
                }
                Err(cancelled) if charge.refused(&cancelled) => return Err(charge.rate_limited()),
                Err(cancelled) if cancelled.condition_failed(1) => at = at.next_micro(),
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            operation: "AppendMessage",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// Pattern D: sends `text` to `recipient`, in the conversation the two already share
    /// or in a new one. A new conversation (pair claim, both memberships, both inbox rows,
    /// the first message) is written in one `TransactWriteItems`. When two people start
    /// the same conversation at once, the pair claim's condition lets exactly one create
    /// it; the other appends to it.
    #[tracing::instrument(skip(self, sender, recipient, text), fields(table = %self.table, sender = %sender.uuid, recipient = %recipient.uuid), err(level = "debug"))]
    pub async fn send_to_user(
        &self,
        sender: &User,
        recipient: &User,
        text: MessageText,
        now: Timestamp,
    ) -> Result<Message, StoreError> {
        self.send_to_user_or_create(sender, recipient, text, now, Uuid::new_v4())
            .await
    }

    /// [`Store::send_to_user`], naming the uuid a new conversation gets (demo data with
    /// stable ids). An existing conversation keeps its own.
    #[tracing::instrument(skip(self, sender, recipient, text), fields(table = %self.table, sender = %sender.uuid, recipient = %recipient.uuid), err(level = "debug"))]
    pub async fn send_to_user_or_create(
        &self,
        sender: &User,
        recipient: &User,
        text: MessageText,
        now: Timestamp,
        new_group: Uuid,
    ) -> Result<Message, StoreError> {
        self.send_to_user_named(sender, recipient, text, now, new_group, None)
            .await
    }

    /// Pattern D, with the send record of a send the client named.
    pub(super) async fn send_to_user_named(
        &self,
        sender: &User,
        recipient: &User,
        text: MessageText,
        now: Timestamp,
        new_group: Uuid,
        client_message_id: Option<&ClientMessageId>,
    ) -> Result<Message, StoreError> {
        if sender.uuid == recipient.uuid {
            return Err(StoreError::SelfConversation);
        }
        if let Some(group) = self
            .conversation_between(sender.uuid, recipient.uuid, false)
            .await?
        {
            let message =
                Message::new(group, sender.summary(), text.into_string(), now.to_string());
            let once = self.once(sender.uuid, client_message_id, now);
            return self.append(sender.uuid, message, now, once).await;
        }

        let group = new_group;
        let mut message =
            Message::new(group, sender.summary(), text.into_string(), now.to_string());
        let pair = keys::pair(sender.uuid, recipient.uuid);
        let mut at = now;
        let mut charge = self.charge(sender.uuid, Limited::Send, now)?;
        let mut once = self.once(sender.uuid, client_message_id, now);
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            message.place_at(at);
            let mut items = self.starting_items(&pair, sender, recipient, &message)?;
            let block_checks = self.add_block_checks(&mut items, sender.uuid, recipient.uuid)?;
            charge.add_to(&mut items);
            once.add_to(&mut items, &message)?;
            match self.transact("StartConversation", items).await? {
                Ok(()) => return Ok(message),
                Err(cancelled) if once.repeated(&cancelled) => {
                    match self.repeated_send(&once, &message).await? {
                        Repeat::Answer(first) | Repeat::Unfinished(first) => return Ok(first),
                        Repeat::Gone => backoff(attempt).await,
                    }
                }
                Err(cancelled) if block_checks.refused(&cancelled) => {
                    return Err(StoreError::Blocked);
                }
                Err(cancelled) if charge.refused(&cancelled) => return Err(charge.rate_limited()),
                Err(cancelled) if cancelled.condition_failed(0) => {
                    // Someone created it first (or the eventually consistent read above
                    // missed it): the pair now names the conversation to append to.
                    let existing = self
                        .conversation_between(sender.uuid, recipient.uuid, true)
                        .await?
                        .ok_or(StoreError::Contention {
                            operation: "StartConversation",
                            attempts: attempt + 1,
                        })?;
                    message.group_uuid = existing;
                    return self.append(sender.uuid, message, at, once).await;
                }
                // An inbox row of either member already sits at this exact microsecond
                // (another conversation's): take the next one.
                Err(cancelled) if (3..=5).any(|i| cancelled.condition_failed(i)) => {
                    at = at.next_micro();
                }
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            operation: "StartConversation",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// The items that start a conversation, each put only if its key is free: the pair
    /// claim (item 0), both memberships (1, 2), both inbox rows (3, 4) and the first
    /// message (5).
    fn starting_items(
        &self,
        pair: &keys::Key,
        sender: &User,
        recipient: &User,
        message: &Message,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let group = message.group_uuid;
        Ok(vec![
            self.put_new(&PairItem {
                pk: pair.pk.clone(),
                sk: pair.sk.clone(),
                group_uuid: group,
                created_at: message.created_at.clone(),
            })?,
            self.put_new(&MembershipItem::new(
                group,
                sender.uuid,
                &message.created_at,
            ))?,
            self.put_new(&MembershipItem::new(
                group,
                recipient.uuid,
                &message.created_at,
            ))?,
            self.put_new(&InboxRowItem::new(
                sender.uuid,
                group,
                &recipient.summary(),
                message,
            ))?,
            self.put_new(&InboxRowItem::new(
                recipient.uuid,
                group,
                &sender.summary(),
                message,
            ))?,
            self.put_new(&MessageItem::new(message))?,
        ])
    }

    /// The conversation `a` and `b` share, if any. One `GetItem`.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn conversation_between(
        &self,
        a: Uuid,
        b: Uuid,
        consistent: bool,
    ) -> Result<Option<Uuid>, StoreError> {
        let item = self
            .get_item("GetItem", &keys::pair(a, b), consistent)
            .await?;
        Ok(item
            .map(from_item::<PairItem>)
            .transpose()?
            .map(|pair| pair.group_uuid))
    }

    /// Whether `user` belongs to `group`. One `GetItem` that reads only the key.
    ///
    /// Strongly consistent: this is the authorisation gate of reading a conversation, and the
    /// frontend opens a conversation right after creating it. An eventually consistent read
    /// can miss a membership written a moment ago and answer "not found" for a conversation
    /// the caller has just started (it costs one read unit instead of half of one).
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn is_member(&self, group: Uuid, user: Uuid) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::membership(group, user))))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("GetItem", err))?;
        Ok(output.item.is_some())
    }

    pub(super) fn member_check(
        &self,
        group: Uuid,
        user: Uuid,
    ) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::membership(group, user))))
            .condition_expression(blocks::MEMBER_NOT_BLOCKED)
            .expression_attribute_names("#blockers", BLOCKERS_ATTRIBUTE)
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// The message a message item stores; an item whose `pk` names no conversation is corrupt.
fn stored_message(item: MessageItem) -> Result<Message, StoreError> {
    let (pk, sk) = (item.pk.clone(), item.sk.clone());
    item.into_message().ok_or(StoreError::CorruptItem {
        pk,
        sk,
        message: "pk is not MSG#<uuid>".into(),
    })
}

fn decode_message_cursor(group: Uuid, page: &PageRequest) -> Result<Option<String>, StoreError> {
    let pk = keys::message_pk(group);
    Ok(page.cursor().map(|c| decode_cursor(c, &pk)).transpose()?)
}
