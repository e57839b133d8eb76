//! The table's schema, defined once. The CLI's `schema-load`, the tests and the
//! `template.yaml` check all read it from here.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_smithy_types::error::operation::BuildError;

pub const DEFAULT_TABLE_NAME: &str = "cruddur-messages";
/// Environment variable that names the table in every function and tool.
pub const TABLE_NAME_ENV: &str = "TABLE_NAME";

pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
/// Finds every member's inbox row of a conversation (pattern E). Only inbox rows carry
/// `message_group_uuid`, so the index holds nothing else.
pub const GROUP_INDEX: &str = "message-group-sk-index";
pub const GROUP_INDEX_PARTITION_KEY: &str = "message_group_uuid";
pub const GROUP_INDEX_SORT_KEY: &str = SORT_KEY;
/// The stream handler needs the inserted message, not what it replaced.
pub const STREAM_VIEW: StreamViewType = StreamViewType::NewImage;

/// The table name from `TABLE_NAME`, or the default.
pub fn table_name_from_env() -> String {
    std::env::var(TABLE_NAME_ENV)
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned())
}

/// Every attribute used in a key of the table or its index; all strings.
pub fn attribute_definitions() -> Result<Vec<AttributeDefinition>, BuildError> {
    [PARTITION_KEY, SORT_KEY, GROUP_INDEX_PARTITION_KEY]
        .into_iter()
        .map(|name| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        })
        .collect()
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, BuildError> {
    Ok(vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()?,
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()?,
    ])
}

pub fn table_key_schema() -> Result<Vec<KeySchemaElement>, BuildError> {
    key_schema(PARTITION_KEY, SORT_KEY)
}

pub fn global_secondary_indexes() -> Result<Vec<GlobalSecondaryIndex>, BuildError> {
    Ok(vec![
        GlobalSecondaryIndex::builder()
            .index_name(GROUP_INDEX)
            .set_key_schema(Some(key_schema(
                GROUP_INDEX_PARTITION_KEY,
                GROUP_INDEX_SORT_KEY,
            )?))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()?,
    ])
}

pub fn stream_specification() -> Result<StreamSpecification, BuildError> {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(STREAM_VIEW)
        .build()
}

/// On-demand: the local default and the template's default.
pub const BILLING_MODE: BillingMode = BillingMode::PayPerRequest;

/// The table's time-to-live attribute: epoch seconds after which DynamoDB may delete the
/// item. Only connection items carry it (API Gateway closes a WebSocket connection after
/// two hours at most, so an item left behind by a lost `$disconnect` goes away by itself).
/// DynamoDB deletes expired items lazily, within days, so readers also skip expired ones.
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub fn time_to_live_specification() -> Result<TimeToLiveSpecification, BuildError> {
    TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
}
