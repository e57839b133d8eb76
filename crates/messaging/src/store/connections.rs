//! WebSocket connections, for real-time push: one item per open connection under its user
//! (`CONN#<user>`), so the push consumer finds every connection of a member with one Query.

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use uuid::Uuid;

use super::requests::retry_conflicts;
use super::{Store, StoreError, from_item, to_item};
use crate::items::ConnectionItem;
use crate::keys;
use crate::model::Connection;
use crate::schema;

impl Store {
    /// Records an open connection. One `PutItem`; a replayed `$connect` rewrites the same
    /// item. No transaction writes `CONN#` items today; should one ever, a conflict is
    /// retried (the put is right whatever the item holds), never a failed `$connect`.
    #[tracing::instrument(skip(self, connection), fields(table = %self.table, user = %connection.user_uuid, connection = %connection.connection_id), err(level = "debug"))]
    pub async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let item = to_item(&ConnectionItem::new(connection))?;
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
        Ok(())
    }

    /// Forgets a connection. One `DeleteItem`; forgetting one already gone is no error
    /// (`$disconnect` and a 410 from API Gateway may both ask).
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn delete_connection(
        &self,
        user: Uuid,
        connection_id: &str,
    ) -> Result<(), StoreError> {
        self.delete_key(&keys::connection(user, connection_id))
            .await
    }

    /// Every connection item of `user`, expired ones included: the push closes those
    /// (DynamoDB deletes expired items lazily, typically within days, and an item may expire
    /// with its token while API Gateway still holds the socket open). One Query, strongly
    /// consistent (1 read unit per 4 KB against 0.5: a few connection items are well under
    /// one unit either way), so a connection whose `$connect` has just written its item is
    /// found by the very next push. An item that
    /// does not read as a connection is skipped (logged), so that one bad item never keeps a
    /// member from their other connections' frames.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn connections_of(&self, user: Uuid) -> Result<Vec<Connection>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(keys::connections_pk(user)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut connections = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|err| StoreError::from_sdk("Query", err))?;
            match from_item::<ConnectionItem>(item) {
                Ok(item) => connections.push(item.into_connection()),
                Err(error) => tracing::warn!(%error, "skipping an unreadable connection item"),
            }
        }
        Ok(connections)
    }

    /// Who a new message of `group` is pushed to: its members (but a direct conversation's
    /// members who blocked the other, see `blocks.rs`), read strongly consistently
    /// (one Query of `MBR#<group>`), because the first message of a conversation is
    /// written in the same transaction as its memberships, and an eventually consistent
    /// read that soon after could miss them.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn recipients(&self, group: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let memberships = self.memberships(group).await?;
        // A member who blocked the other member of a direct conversation gets no frames of it.
        Ok(memberships
            .into_iter()
            .filter(|m| !m.blocks_partner())
            .map(|m| m.user_uuid)
            .collect())
    }

    /// Turns the table's time to live on for [`schema::TTL_ATTRIBUTE`] unless it is on
    /// already (DynamoDB refuses to enable it twice). `CreateTable` cannot set it.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub(crate) async fn ensure_time_to_live(&self) -> Result<(), StoreError> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(self.table())
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("DescribeTimeToLive", err))?
            .time_to_live_description;
        let status = current.as_ref().and_then(|d| d.time_to_live_status());
        let attribute = current.as_ref().and_then(|d| d.attribute_name());
        match status {
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
                if attribute != Some(schema::TTL_ATTRIBUTE) {
                    // A table has one TTL attribute; changing it is an operator's decision.
                    tracing::warn!(
                        attribute = attribute.unwrap_or("?"),
                        expected = schema::TTL_ATTRIBUTE,
                        "the table's time to live uses another attribute; connection items will not expire"
                    );
                }
                Ok(())
            }
            _ => {
                let specification = schema::time_to_live_specification()
                    .map_err(|err| StoreError::build("UpdateTimeToLive", err))?;
                self.client
                    .update_time_to_live()
                    .table_name(self.table())
                    .time_to_live_specification(specification)
                    .send()
                    .await
                    .map_err(|err| StoreError::from_sdk("UpdateTimeToLive", err))?;
                Ok(())
            }
        }
    }
}
