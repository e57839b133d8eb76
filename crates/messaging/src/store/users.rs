//! The user directory: one profile stored under three keys (uuid, handle, Cognito sub),
//! written together in one transaction whose conditions enforce uniqueness; look-ups by
//! each key, and by many handles at once.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::requests::backoff;
use super::{MAX_WRITE_ATTEMPTS, Store, StoreError, from_item, key_item};
use crate::items::UserItem;
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
        let puts = [
            keys::user_profile(user.uuid),
            keys::handle_claim(&user.handle),
            keys::cognito_sub(&user.cognito_sub),
        ]
        .into_iter()
        .map(|key| self.put_new(&UserItem::new(key, &user, &created_at)))
        .collect::<Result<Vec<_>, _>>()?;

        for attempt in 0..MAX_WRITE_ATTEMPTS {
            match self.transact("RegisterUser", puts.clone()).await? {
                Ok(()) => return Ok(Registration::Created(user)),
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
        self.batch_get(keys)
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

    async fn get_user(&self, key: &Key, consistent: bool) -> Result<Option<User>, StoreError> {
        let item = self.get_item("GetItem", key, consistent).await?;
        item.map(|item| from_item::<UserItem>(item).map(UserItem::into_user))
            .transpose()
    }
}
