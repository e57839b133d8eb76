//! Presence: who is online, and who is told when that changes.
//!
//! **State on the profile.** A user's presence lives on their `USER#<uuid>` / `PROFILE`
//! item, which the members read already fetches (its `BatchGetItem` of the profiles), so
//! listing members with presence costs no request more. `ws-connect` and `ws-disconnect`
//! keep three attributes there, each with one `UpdateItem`:
//!
//! - `live_connections`: a string set of the connection ids recorded open (`ADD` on
//!   `$connect`, `DELETE` on `$disconnect`; DynamoDB removes an emptied set);
//! - `online_until`: epoch seconds, the latest `expires_at` of the connections recorded
//!   since the set was last empty. `$disconnect` can be lost and connection items expire by
//!   TTL, so a set that still names a dead connection must not keep anyone online forever;
//! - `last_seen_at`: the last time a connection of theirs opened or closed.
//!
//! A user is **online at `now`** while `live_connections` is not empty and `online_until`
//! is after `now`. A lost `$disconnect` therefore shows someone online at most until the
//! expiry of a connection they opened (two hours after it opened, or its token's `exp` if
//! earlier), and the next `$connect` prunes the dead ids ([`Store::forget_connections`]).
//! The `HANDLE#` and `SUB#` copies of the profile carry none of it: only the profile is
//! updated, and the directory's readers ignore attributes they do not know.
//!
//! **Watches.** A client showing a direct conversation asks for its partner's presence on
//! its WebSocket (`ws-presence`); that records a watch, `WATCH#<watched>` /
//! `<connection id>`, expiring with the watcher's connection. The watched user's
//! `$connect`/`$disconnect` reads its watches with one Query and posts to those connections.
//! A connection watches one user at a time: the connection's own item names whom it
//! watches (`watching`), and a new watch deletes the one it replaces.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::requests::retry_conflicts;
use super::{Item, Store, StoreError, from_item, key_item, to_item};
use crate::keys;
use crate::model::Connection;
use crate::schema::PARTITION_KEY;
use crate::timestamp::Timestamp;

/// The profile's string set of recorded connection ids.
pub const LIVE_CONNECTIONS_ATTRIBUTE: &str = "live_connections";
/// The profile's bound on `online` (epoch seconds).
pub const ONLINE_UNTIL_ATTRIBUTE: &str = "online_until";
/// The profile's last `$connect` or `$disconnect` (the sortable timestamp format).
pub const LAST_SEEN_AT_ATTRIBUTE: &str = "last_seen_at";
/// On a connection item: the user whose presence the connection watches.
pub const WATCHING_ATTRIBUTE: &str = "watching";

/// A user's presence as their profile records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    pub live_connections: BTreeSet<String>,
    pub online_until: Option<i64>,
    pub last_seen_at: Option<String>,
}

impl Presence {
    /// Has a live connection at `now` (epoch seconds), as far as the profile can say: see
    /// the module's documentation for the bound on a lost `$disconnect`.
    pub fn online_at(&self, now: i64) -> bool {
        !self.live_connections.is_empty() && self.online_until.is_some_and(|until| until > now)
    }

    /// The presence attributes of a profile item (absent ones: never connected).
    pub fn of_item(item: &Item) -> Self {
        let live_connections = match item.get(LIVE_CONNECTIONS_ATTRIBUTE) {
            Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        let online_until = match item.get(ONLINE_UNTIL_ATTRIBUTE) {
            Some(AttributeValue::N(number)) => number.parse().ok(),
            _ => None,
        };
        let last_seen_at = match item.get(LAST_SEEN_AT_ATTRIBUTE) {
            Some(AttributeValue::S(text)) => Some(text.clone()),
            _ => None,
        };
        Self {
            live_connections,
            online_until,
            last_seen_at,
        }
    }
}

/// A user's presence just before and just after one of their connections opened or closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// The profile's handle, for the frames.
    pub handle: String,
    pub before: Presence,
    pub after: Presence,
}

impl PresenceChange {
    /// Whether `online` changed at `now`, and to what.
    pub fn online_changed_at(&self, now: i64) -> Option<bool> {
        let (before, after) = (self.before.online_at(now), self.after.online_at(now));
        (before != after).then_some(after)
    }
}

/// One connection watching one user's presence, for a direct conversation they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub watched: Uuid,
    pub watcher: Uuid,
    pub connection_id: String,
    pub message_group_uuid: Uuid,
    /// The watching connection's expiry (epoch seconds): the item's TTL.
    pub expires_at: i64,
}

/// `WATCH#<watched>` / `<connection id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct WatchItem {
    pk: String,
    sk: String,
    watched_uuid: Uuid,
    watcher_uuid: Uuid,
    connection_id: String,
    group_uuid: Uuid,
    /// The table's TTL attribute ([`crate::schema::TTL_ATTRIBUTE`]).
    expires_at: i64,
}

/// What recording a watch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watching {
    /// Recorded; `replaced` is whom the connection watched before (that watch is gone).
    Recorded { replaced: Option<Uuid> },
    /// The connection has no item (closed, or its `$connect` never recorded it): nothing
    /// is kept.
    ConnectionUnknown,
}

fn condition_failed<E>(err: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

impl Store {
    /// Records `connection` on its user's profile: its id in `live_connections`,
    /// `online_until` raised to its expiry (or set to it when no connection was recorded),
    /// `last_seen_at` = `now`. One `UpdateItem`; a second one, without `online_until`, only
    /// when another recorded connection expires later. `None` when the user has no profile
    /// (nothing is written: a profile is never created here).
    #[tracing::instrument(skip(self, connection), fields(table = %self.table, user = %connection.user_uuid, connection = %connection.connection_id), err(level = "debug"))]
    pub async fn presence_connected(
        &self,
        connection: &Connection,
        now: Timestamp,
    ) -> Result<Option<PresenceChange>, StoreError> {
        let ids = AttributeValue::Ss(vec![connection.connection_id.clone()]);
        let raising = self
            .update_presence(
                connection.user_uuid,
                "ADD #live :ids SET #until = :until, #seen = :now",
                "attribute_exists(#pk) AND (attribute_not_exists(#live) \
                 OR attribute_not_exists(#until) OR #until <= :until)",
                vec![
                    (":ids", ids.clone()),
                    (
                        ":until",
                        AttributeValue::N(connection.expires_at.to_string()),
                    ),
                    (":now", AttributeValue::S(now.to_string())),
                ],
            )
            .await?;
        let before = match raising {
            Some(before) => before,
            // No profile, or a recorded connection that expires later: keep its bound.
            None => match self
                .update_presence(
                    connection.user_uuid,
                    "ADD #live :ids SET #seen = :now",
                    "attribute_exists(#pk)",
                    vec![(":ids", ids), (":now", AttributeValue::S(now.to_string()))],
                )
                .await?
            {
                Some(before) => before,
                None => return Ok(None),
            },
        };
        let handle = handle_of(&before);
        let before = Presence::of_item(&before);
        let mut after = before.clone();
        after
            .live_connections
            .insert(connection.connection_id.clone());
        if after
            .online_until
            .is_none_or(|until| before.live_connections.is_empty() || until < connection.expires_at)
        {
            after.online_until = Some(connection.expires_at);
        }
        after.last_seen_at = Some(now.to_string());
        Ok(Some(PresenceChange {
            handle,
            before,
            after,
        }))
    }

    /// Removes `connection_id` from `user`'s recorded connections and sets `last_seen_at`.
    /// One `UpdateItem`; `None` when the user has no profile.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn presence_disconnected(
        &self,
        user: Uuid,
        connection_id: &str,
        now: Timestamp,
    ) -> Result<Option<PresenceChange>, StoreError> {
        let Some(before) = self
            .update_presence(
                user,
                "DELETE #live :ids SET #seen = :now",
                "attribute_exists(#pk)",
                vec![
                    (":ids", AttributeValue::Ss(vec![connection_id.to_owned()])),
                    (":now", AttributeValue::S(now.to_string())),
                ],
            )
            .await?
        else {
            return Ok(None);
        };
        let handle = handle_of(&before);
        let before = Presence::of_item(&before);
        let mut after = before.clone();
        after.live_connections.remove(connection_id);
        after.last_seen_at = Some(now.to_string());
        Ok(Some(PresenceChange {
            handle,
            before,
            after,
        }))
    }

    /// Removes connection ids whose `$disconnect` was lost from `user`'s recorded
    /// connections (`ws-connect` finds them: recorded, but without a live connection item).
    /// One `UpdateItem`; none for an empty list.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn forget_connections(
        &self,
        user: Uuid,
        connection_ids: &[String],
    ) -> Result<(), StoreError> {
        if connection_ids.is_empty() {
            return Ok(());
        }
        self.update_presence(
            user,
            "DELETE #live :ids",
            "attribute_exists(#pk)",
            vec![(":ids", AttributeValue::Ss(connection_ids.to_vec()))],
        )
        .await?;
        Ok(())
    }

    /// `user`'s handle and presence: one `GetItem` of the profile (eventually consistent:
    /// a frame a moment old is corrected by the next `$connect`/`$disconnect` frame, which
    /// the watch recorded just before this read receives). `None` without a profile.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn presence_of(&self, user: Uuid) -> Result<Option<(String, Presence)>, StoreError> {
        let item = self
            .get_item("GetItem", &keys::user_profile(user), false)
            .await?;
        Ok(item.map(|item| (handle_of(&item), Presence::of_item(&item))))
    }

    /// One `UpdateItem` of `user`'s profile, conditioned; the item as it was before, or
    /// `None` when the condition failed.
    async fn update_presence(
        &self,
        user: Uuid,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Item>, StoreError> {
        let key = key_item(&keys::user_profile(user));
        let mut request = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#pk", PARTITION_KEY)
            .return_values(ReturnValue::AllOld);
        for (name, attribute) in [
            ("#live", LIVE_CONNECTIONS_ATTRIBUTE),
            ("#until", ONLINE_UNTIL_ATTRIBUTE),
            ("#seen", LAST_SEEN_AT_ATTRIBUTE),
        ] {
            if update.contains(name) || condition.contains(name) {
                request = request.expression_attribute_names(name, attribute);
            }
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        let result = retry_conflicts("UpdateItem", || {
            let request = request.clone();
            async move {
                match request.send().await {
                    Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
                    Err(err) if condition_failed(&err) => Ok(None),
                    Err(err) => Err(StoreError::from_sdk("UpdateItem", err)),
                }
            }
        })
        .await?;
        Ok(result)
    }

    /// Records that `watch.connection_id` watches `watch.watched`, replacing whatever the
    /// connection watched before: `PutItem` of the watch, then `UpdateItem` of the
    /// connection's item (`watching`, conditioned on the item existing), then `DeleteItem` of
    /// the replaced watch, if any. Each watch is put before the connection names it, so of
    /// two watches of one connection at once, the one the connection names last survives
    /// and the other is deleted by it.
    #[tracing::instrument(skip(self, watch), fields(table = %self.table, watched = %watch.watched, connection = %watch.connection_id), err(level = "debug"))]
    pub async fn watch(&self, watch: &Watch) -> Result<Watching, StoreError> {
        let key = keys::watch(watch.watched, &watch.connection_id);
        let item = to_item(&WatchItem {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            watched_uuid: watch.watched,
            watcher_uuid: watch.watcher,
            connection_id: watch.connection_id.clone(),
            group_uuid: watch.message_group_uuid,
            expires_at: watch.expires_at,
        })?;
        retry_conflicts("PutItem", || async {
            self.client
                .put_item()
                .table_name(self.table())
                .set_item(Some(item.clone()))
                .send()
                .await
                .map_err(|err| StoreError::from_sdk("PutItem", err))
        })
        .await?;
        let connection = key_item(&keys::connection(watch.watcher, &watch.connection_id));
        let previous = retry_conflicts("UpdateItem", || async {
            let result = self
                .client
                .update_item()
                .table_name(self.table())
                .set_key(Some(connection.clone()))
                .update_expression("SET #watching = :watched")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#watching", WATCHING_ATTRIBUTE)
                .expression_attribute_values(
                    ":watched",
                    AttributeValue::S(watch.watched.to_string()),
                )
                .return_values(ReturnValue::UpdatedOld)
                .send()
                .await;
            match result {
                Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
                Err(err) if condition_failed(&err) => Ok(None),
                Err(err) => Err(StoreError::from_sdk("UpdateItem", err)),
            }
        })
        .await?;
        let Some(previous) = previous else {
            self.delete_watch(watch.watched, &watch.connection_id)
                .await?;
            return Ok(Watching::ConnectionUnknown);
        };
        let replaced = match previous.get(WATCHING_ATTRIBUTE) {
            Some(AttributeValue::S(text)) => Uuid::parse_str(text).ok(),
            _ => None,
        }
        .filter(|replaced| *replaced != watch.watched);
        if let Some(replaced) = replaced {
            self.delete_watch(replaced, &watch.connection_id).await?;
        }
        Ok(Watching::Recorded { replaced })
    }

    /// Every watch of `watched`, expired ones included (the caller skips those; the TTL
    /// removes them). One Query (all pages), strongly consistent, so a watch recorded a
    /// moment ago hears of the `$connect` that follows it. An unreadable item is skipped.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn watchers_of(&self, watched: Uuid) -> Result<Vec<Watch>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(keys::watches_pk(watched)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut watches = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            match from_item::<WatchItem>(item) {
                Ok(item) => watches.push(Watch {
                    watched: item.watched_uuid,
                    watcher: item.watcher_uuid,
                    connection_id: item.connection_id,
                    message_group_uuid: item.group_uuid,
                    expires_at: item.expires_at,
                }),
                Err(error) => tracing::warn!(%error, "skipping an unreadable watch item"),
            }
        }
        Ok(watches)
    }

    /// Forgets a watch (its connection is gone). One `DeleteItem`; one already gone is no
    /// error.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn delete_watch(&self, watched: Uuid, connection_id: &str) -> Result<(), StoreError> {
        self.delete_key(&keys::watch(watched, connection_id)).await
    }
}

fn handle_of(item: &Item) -> String {
    match item.get("handle") {
        Some(AttributeValue::S(handle)) => handle.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(ids: &[&str], until: Option<i64>) -> Presence {
        Presence {
            live_connections: ids.iter().map(|id| (*id).to_owned()).collect(),
            online_until: until,
            last_seen_at: None,
        }
    }

    #[test]
    fn online_needs_a_recorded_connection_and_a_bound_in_the_future() {
        assert!(presence(&["a"], Some(100)).online_at(99));
        assert!(
            !presence(&["a"], Some(100)).online_at(100),
            "a lost $disconnect ends at the bound"
        );
        assert!(!presence(&[], Some(100)).online_at(0));
        assert!(!presence(&["a"], None).online_at(0));
    }

    #[test]
    fn a_change_names_only_a_change_of_online() {
        let change = |before, after| PresenceChange {
            handle: "h".into(),
            before,
            after,
        };
        assert_eq!(
            change(presence(&[], None), presence(&["a"], Some(10))).online_changed_at(5),
            Some(true)
        );
        assert_eq!(
            change(presence(&["a"], Some(10)), presence(&["a", "b"], Some(10)))
                .online_changed_at(5),
            None,
            "a second device changes nothing"
        );
        assert_eq!(
            change(presence(&["a"], Some(10)), presence(&[], Some(10))).online_changed_at(5),
            Some(false)
        );
    }
}
