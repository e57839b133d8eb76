//! The user directory: one profile stored under three keys (uuid, handle, Cognito sub),
//! written together in one transaction whose conditions enforce uniqueness; look-ups by
//! each key, and by many handles at once.
//!
//! Sign-up holds a handle in two steps, so that of two people signing up for one handle at
//! once, exactly one gets past the form and nobody is confirmed without a profile: the pre
//! sign-up trigger reserves it for the Cognito user name ([`Store::reserve_handle`]), and
//! the confirmation claims it with the profile, only if no other sign-up's live reservation
//! holds it ([`Store::register_signed_up_user`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use uuid::Uuid;

use super::requests::backoff;
use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, from_item, key_item, to_item};
use crate::items::{HandleReservationItem, UserItem};
use crate::keys::{self, Key};
use crate::model::User;
use crate::timestamp::Timestamp;
use crate::validate::{DisplayName, Handle};

/// Cognito subs are UUIDs; this bound only keeps junk out of the key.
const MAX_SUB_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub handle: Handle,
    pub display_name: DisplayName,
    pub cognito_sub: String,
}

/// How long a sign-up holds its handle: the confirmation code Cognito sends is valid for 24
/// hours (Cognito developer guide, "Signing up and confirming user accounts"), so a sign-up
/// confirmed with it finds its handle still held. A later confirmation still gets the
/// handle unless another sign-up reserved it after this one expired.
pub const HANDLE_RESERVATION_SECONDS: i64 = 24 * 60 * 60;

/// What reserving a handle for a sign-up found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleReservation {
    /// Held for this sign-up (newly, or again: Cognito retries triggers).
    Reserved,
    /// A registered user holds the handle.
    Taken,
    /// Another sign-up in progress holds it, and its reservation has not expired.
    ReservedByAnother,
}

/// A reservation is free to take (or to clear) when there is none, it has expired, or it is
/// this user name's.
const RESERVATION_IS_FREE_OR_MINE: &str =
    "attribute_not_exists(pk) OR expires_at < :now OR cognito_username = :username";

/// Registration is idempotent: replaying the same sign-up returns the existing user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Created(User),
    AlreadyRegistered(User),
}

impl Registration {
    pub fn user(&self) -> &User {
        match self {
            Self::Created(user) | Self::AlreadyRegistered(user) => user,
        }
    }
}

impl Store {
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn register_user(
        &self,
        new: NewUser,
        now: Timestamp,
    ) -> Result<Registration, StoreError> {
        self.register_user_as(Uuid::new_v4(), new, now).await
    }

    /// [`Store::register_user`] with the uuid the user already has (users of the original
    /// system, whose uuid their messages and inbox rows carry).
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn register_user_as(
        &self,
        uuid: Uuid,
        new: NewUser,
        now: Timestamp,
    ) -> Result<Registration, StoreError> {
        self.register(uuid, new, now, None).await
    }

    /// Registers the user of a confirmed sign-up, claiming the handle that Cognito user
    /// `username` reserved: one `TransactWriteItems` of the three puts and the reservation's
    /// delete, which holds unless another sign-up's live reservation holds the handle (this
    /// one's, an expired one or none at all let the claim through). Idempotent like
    /// [`Store::register_user`]; [`StoreError::HandleTaken`] if the handle is someone else's.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn register_signed_up_user(
        &self,
        new: NewUser,
        username: &str,
        now: Timestamp,
    ) -> Result<Registration, StoreError> {
        self.register(Uuid::new_v4(), new, now, Some(username))
            .await
    }

    /// Reserves `handle` for the sign-up of Cognito user `username`, for
    /// [`HANDLE_RESERVATION_SECONDS`]: one `TransactWriteItems` of a check that nobody has
    /// claimed the handle and a put of the reservation that holds if there is none, it has
    /// expired, or it is this user name's. Of two sign-ups for one handle, exactly one
    /// reserves it.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn reserve_handle(
        &self,
        handle: &Handle,
        username: &str,
        now: Timestamp,
    ) -> Result<HandleReservation, StoreError> {
        let epoch = now.as_datetime().unix_timestamp();
        let key = keys::handle_reservation(handle);
        let reservation = HandleReservationItem {
            pk: key.pk,
            sk: key.sk,
            handle: handle.clone(),
            cognito_username: username.to_owned(),
            reserved_at: now.to_string(),
            expires_at: epoch + HANDLE_RESERVATION_SECONDS,
        };
        let build = |err| StoreError::build("TransactWriteItems", err);
        let unclaimed = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::handle_claim(handle))))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&reservation)?))
            .condition_expression(RESERVATION_IS_FREE_OR_MINE)
            .set_expression_attribute_values(Some(reservation_values(username, epoch)))
            .build()
            .map_err(build)?;
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(unclaimed)
                .build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            match self.transact("ReserveHandle", items.clone()).await? {
                Ok(()) => return Ok(HandleReservation::Reserved),
                Err(cancelled) if cancelled.condition_failed(0) => {
                    return Ok(HandleReservation::Taken);
                }
                Err(cancelled) if cancelled.condition_failed(1) => {
                    return Ok(HandleReservation::ReservedByAnother);
                }
                // Another transaction on the claim or the reservation (the same sign-up
                // retried, a confirmation claiming): try again.
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            operation: "ReserveHandle",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    async fn register(
        &self,
        uuid: Uuid,
        new: NewUser,
        now: Timestamp,
        reserved_by: Option<&str>,
    ) -> Result<Registration, StoreError> {
        let sub = new.cognito_sub.trim();
        if sub.is_empty() || sub.len() > MAX_SUB_LEN {
            return Err(StoreError::SubBlank);
        }
        let user = User {
            uuid,
            handle: new.handle.clone(),
            display_name: new.display_name,
            cognito_sub: sub.to_owned(),
        };
        let created_at = now.to_string();
        let mut items = [
            keys::user_profile(user.uuid),
            keys::handle_claim(&user.handle),
            keys::cognito_sub(&user.cognito_sub),
        ]
        .into_iter()
        .map(|key| self.put_new(&UserItem::new(key, &user, &created_at)))
        .collect::<Result<Vec<_>, _>>()?;
        if let Some(username) = reserved_by {
            // Cleared with the claim: the claim answers every later sign-up from now on.
            let delete = Delete::builder()
                .table_name(self.table())
                .set_key(Some(key_item(&keys::handle_reservation(&user.handle))))
                .condition_expression(RESERVATION_IS_FREE_OR_MINE)
                .set_expression_attribute_values(Some(reservation_values(
                    username,
                    now.as_datetime().unix_timestamp(),
                )))
                .build()
                .map_err(|err| StoreError::build("TransactWriteItems", err))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }

        for attempt in 0..MAX_WRITE_ATTEMPTS {
            match self.transact("RegisterUser", items.clone()).await? {
                Ok(()) => return Ok(Registration::Created(user)),
                // Another sign-up holds the handle; it will claim it when confirmed.
                Err(cancelled)
                    if cancelled.condition_failed(3)
                        && !(0..3).any(|i| cancelled.condition_failed(i)) =>
                {
                    return Err(StoreError::HandleTaken(new.handle.to_string()));
                }
                // Another transaction on one of the keys (say, the same sign-up retried
                // while the first is in flight): try again, then look.
                Err(cancelled) if !(0..3).any(|i| cancelled.condition_failed(i)) => {
                    backoff(attempt).await;
                }
                Err(_) => {
                    // The sub or the handle exists. A replay of the same sign-up (a
                    // Cognito trigger retried) has both, with the same handle.
                    return match self
                        .get_user(&keys::cognito_sub(&user.cognito_sub), true)
                        .await?
                    {
                        Some(existing) if existing.handle.same_as(&new.handle) => {
                            Ok(Registration::AlreadyRegistered(existing))
                        }
                        Some(existing) => Err(StoreError::SubRegistered {
                            sub: user.cognito_sub,
                            handle: existing.handle.to_string(),
                        }),
                        None => Err(StoreError::HandleTaken(new.handle.to_string())),
                    };
                }
            }
        }
        Err(StoreError::Contention {
            operation: "RegisterUser",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// One `GetItem`.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        self.get_user(&keys::cognito_sub(sub), false).await
    }

    /// One `GetItem`; case-insensitive.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn user_by_handle(&self, handle: &Handle) -> Result<Option<User>, StoreError> {
        self.get_user(&keys::handle_claim(handle), false).await
    }

    /// The users holding `handles` (case-insensitive), by normalised handle; unknown
    /// handles are absent. One `BatchGetItem` of the handle claims per 100 handles.
    #[tracing::instrument(skip(self, handles), fields(table = %self.table, handles = handles.len()), err(level = "debug"))]
    pub async fn users_by_handles(
        &self,
        handles: &[Handle],
    ) -> Result<HashMap<String, User>, StoreError> {
        let keys = handles.iter().map(keys::handle_claim).collect();
        self.batch_get(keys, false)
            .await?
            .into_iter()
            .map(|item| {
                from_item::<UserItem>(item)
                    .map(UserItem::into_user)
                    .map(|user| (user.handle.normalized(), user))
            })
            .collect()
    }

    /// Whether someone holds `handle` (case-insensitive). One strongly consistent `GetItem`
    /// of the handle claim's key: a sign-up checked against a handle claimed a moment ago
    /// must see the claim.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn handle_taken(&self, handle: &Handle) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::handle_claim(handle))))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("GetItem", err))?;
        Ok(output.item.is_some())
    }

    /// One `GetItem`.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn user_by_uuid(&self, uuid: Uuid) -> Result<Option<User>, StoreError> {
        self.get_user(&keys::user_profile(uuid), false).await
    }

    /// Every registered user, by scanning: an admin tool, not a request path.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(self.table())
            .filter_expression("begins_with(pk, :prefix) AND sk = :sk")
            .expression_attribute_values(":prefix", AttributeValue::S(keys::USER_PREFIX.into()))
            .expression_attribute_values(":sk", AttributeValue::S(keys::PROFILE_SK.into()))
            .into_paginator()
            .items()
            .send();
        let mut users = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Scan", err))?;
            users.push(from_item::<UserItem>(item)?.into_user());
        }
        users.sort_by_key(|user| user.handle.normalized());
        Ok(users)
    }

    /// Whether a sign-up holds `handle` now (its reservation, if any, with its holder).
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn handle_reservation(
        &self,
        handle: &Handle,
    ) -> Result<Option<HandleReservationItem>, StoreError> {
        self.get_item("GetItem", &keys::handle_reservation(handle), true)
            .await?
            .map(from_item::<HandleReservationItem>)
            .transpose()
    }

    async fn get_user(&self, key: &Key, consistent: bool) -> Result<Option<User>, StoreError> {
        let item = self.get_item("GetItem", key, consistent).await?;
        item.map(|item| from_item::<UserItem>(item).map(UserItem::into_user))
            .transpose()
    }
}

fn reservation_values(username: &str, now_epoch: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (":now".to_owned(), AttributeValue::N(now_epoch.to_string())),
        (
            ":username".to_owned(),
            AttributeValue::S(username.to_owned()),
        ),
    ])
}
