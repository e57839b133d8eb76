//! DynamoDB's rule that a transaction names each item once, which DynamoDB Local does not
//! always apply.

use std::collections::HashSet;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use messaging::schema::{PARTITION_KEY, SORT_KEY};

/// What DynamoDB answers a `TransactWriteItems` that names one item twice, before it
/// evaluates any condition: "You can't target the same item with multiple operations within
/// the same transaction" and "ValidationException: Transaction request cannot include
/// multiple operations on one item"
/// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
/// DynamoDB Local evaluates the conditions first and, when one fails, cancels the
/// transaction instead (`TransactionCanceledException`, reasons `[None,
/// ConditionalCheckFailed]`), which code may mistake for a key collision. Either way nothing
/// is written, so replacing the reply is all it takes to play DynamoDB.
#[derive(Debug, Clone, Default)]
pub struct RejectRepeatedKeys;

impl RejectRepeatedKeys {
    pub fn new() -> Self {
        Self
    }
}

/// Marks an operation whose transaction names an item twice.
#[derive(Debug, Clone)]
struct RepeatedKey(String);

impl Storable for RepeatedKey {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RejectRepeatedKeys {
    fn name(&self) -> &'static str {
        "RejectRepeatedKeys"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(input) = context.input().downcast_ref::<TransactWriteItemsInput>() else {
            return Ok(());
        };
        if let Some(repeated) = repeated_key(input.transact_items()) {
            cfg.interceptor_state().store_put(RepeatedKey(repeated));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(RepeatedKey(key)) = cfg.load::<RepeatedKey>().cloned() else {
            return Ok(());
        };
        tracing::debug!(%key, "playing DynamoDB: transaction names an item twice");
        *context.response_mut() = validation_exception(
            "Transaction request cannot include multiple operations on one item",
        )?;
        Ok(())
    }
}

/// The reply DynamoDB gives a request it refuses (HTTP 400, awsJson1_0 error body).
pub(crate) fn validation_exception(message: &str) -> Result<Response<SdkBody>, BoxError> {
    let body = serde_json::json!({
        "__type": "com.amazon.coral.validate#ValidationException",
        "message": message,
    });
    let mut reply = Response::new(
        StatusCode::try_from(400).map_err(|err| format!("status: {err}"))?,
        SdkBody::from(body.to_string()),
    );
    reply
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    Ok(reply)
}

/// The first (table, key) named twice, if any.
fn repeated_key(items: &[TransactWriteItem]) -> Option<String> {
    let mut seen = HashSet::new();
    for item in items {
        let (table, key) = if let Some(put) = item.put() {
            let key = [PARTITION_KEY, SORT_KEY].map(|name| put.item().get(name).map(text));
            (put.table_name(), key)
        } else if let Some(delete) = item.delete() {
            (delete.table_name(), key_of(delete.key()))
        } else if let Some(update) = item.update() {
            (update.table_name(), key_of(update.key()))
        } else if let Some(check) = item.condition_check() {
            (check.table_name(), key_of(check.key()))
        } else {
            continue;
        };
        let name = format!("{table}: {key:?}");
        if !seen.insert(name.clone()) {
            return Some(name);
        }
    }
    None
}

fn key_of(key: &std::collections::HashMap<String, AttributeValue>) -> [Option<String>; 2] {
    [PARTITION_KEY, SORT_KEY].map(|name| key.get(name).map(text))
}

fn text(value: &AttributeValue) -> String {
    format!("{value:?}")
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put};

    use super::*;

    fn key(pk: &str, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
        [(PARTITION_KEY, pk), (SORT_KEY, sk)]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), AttributeValue::S(value.to_owned())))
            .collect()
    }

    fn put(pk: &str, sk: &str) -> TransactWriteItem {
        let put = Put::builder()
            .table_name("t")
            .set_item(Some(key(pk, sk)))
            .build()
            .unwrap();
        TransactWriteItem::builder().put(put).build()
    }

    fn delete(pk: &str, sk: &str) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name("t")
            .set_key(Some(key(pk, sk)))
            .build()
            .unwrap();
        TransactWriteItem::builder().delete(delete).build()
    }

    #[test]
    fn an_item_named_twice_is_found_whatever_the_operations() {
        assert!(repeated_key(&[delete("a", "1"), put("a", "2"), put("b", "2")]).is_none());
        assert!(repeated_key(&[put("a", "1"), put("a", "1")]).is_some());
        assert!(repeated_key(&[delete("a", "1"), put("a", "1")]).is_some());
        let check = ConditionCheck::builder()
            .table_name("t")
            .set_key(Some(key("a", "1")))
            .condition_expression("attribute_exists(pk)")
            .build()
            .unwrap();
        let check = TransactWriteItem::builder().condition_check(check).build();
        assert!(repeated_key(&[check, put("a", "1")]).is_some());
    }
}
