//! Table administration for the CLI and the tests: create from the schema, drop, inspect.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use super::{FailureKind, Item, Store, StoreError};
use crate::schema;

/// How long `schema-load` waits for a new table to become ACTIVE (real DynamoDB takes
/// seconds; DynamoDB Local is immediate).
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStatus {
    Created,
    AlreadyExisted,
}

impl Store {
    /// Creates the table from [`crate::schema`] unless it exists, then waits until it is
    /// ACTIVE. Safe to run again and from two places at once.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn create_table_if_missing(&self) -> Result<TableStatus, StoreError> {
        let build = |err| StoreError::build("CreateTable", err);
        let result = self
            .client
            .create_table()
            .table_name(self.table())
            .set_attribute_definitions(Some(schema::attribute_definitions().map_err(build)?))
            .set_key_schema(Some(schema::table_key_schema().map_err(build)?))
            .set_global_secondary_indexes(Some(schema::global_secondary_indexes().map_err(build)?))
            .stream_specification(schema::stream_specification().map_err(build)?)
            .billing_mode(schema::BILLING_MODE)
            .send()
            .await;
        let status = match result {
            Ok(_) => TableStatus::Created,
            Err(err) if err.code() == Some("ResourceInUseException") => TableStatus::AlreadyExisted,
            Err(err) => return Err(StoreError::from_sdk("CreateTable", err)),
        };
        self.client
            .wait_until_table_exists()
            .table_name(self.table())
            .wait(TABLE_ACTIVE_TIMEOUT)
            .await
            .map_err(|err| StoreError::Dynamo {
                operation: "DescribeTable",
                kind: FailureKind::Other,
                message: format!(
                    "table did not become ACTIVE: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(err)
                ),
            })?;
        self.ensure_time_to_live().await?;
        Ok(status)
    }

    /// Deletes the table. Returns false when there was none.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn drop_table(&self) -> Result<bool, StoreError> {
        match self
            .client
            .delete_table()
            .table_name(self.table())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.code() == Some("ResourceNotFoundException") => Ok(false),
            Err(err) => Err(StoreError::from_sdk("DeleteTable", err)),
        }
    }

    /// Every item of the table, raw. For the CLI's `scan`; never on a request path.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(self.table())
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(|err| StoreError::from_sdk("Scan", err))?);
        }
        Ok(items)
    }

    /// The ARN of the table's stream, if it has one.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn stream_arn(&self) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .describe_table()
            .table_name(self.table())
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("DescribeTable", err))?;
        Ok(output.table.and_then(|table| table.latest_stream_arn))
    }
}

/// Names of all tables reachable with `client`.
pub async fn list_tables(client: &Client) -> Result<Vec<String>, StoreError> {
    let mut pages = client.list_tables().into_paginator().items().send();
    let mut names = Vec::new();
    while let Some(name) = pages.next().await {
        names.push(name.map_err(|err| StoreError::from_sdk("ListTables", err))?);
    }
    Ok(names)
}
