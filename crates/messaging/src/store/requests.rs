//! The requests every access pattern is built of: a get, a batch get, a page of a
//! partition, a put that only creates, a transaction whose cancellation the caller decides
//! about, and the backoff between retries.

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use serde::de::DeserializeOwned;

use super::{
    FailureKind, Item, MAX_WRITE_ATTEMPTS, Store, StoreError, from_item, key_item, to_item,
};
use crate::items::{BlockItem, InboxRowItem, MessageItem};
use crate::keys::Key;
use crate::page::{Page, encode_cursor};

/// `BatchGetItem` takes at most 100 keys.
const MAX_BATCH_GET_KEYS: usize = 100;

/// Why a transaction was cancelled, one entry per item in request order.
#[derive(Debug)]
pub(crate) struct Cancelled {
    reasons: Vec<Option<String>>,
}

impl Cancelled {
    /// Whether the condition of item `index` failed.
    pub(crate) fn condition_failed(&self, index: usize) -> bool {
        self.reasons.get(index).and_then(Option::as_deref) == Some("ConditionalCheckFailed")
    }

    /// Whether item `index` was held by another transaction (`TransactionConflict`).
    pub(crate) fn conflicted(&self, index: usize) -> bool {
        self.reasons.get(index).and_then(Option::as_deref) == Some("TransactionConflict")
    }
}

impl Store {
    /// Runs one `TransactWriteItems`. A cancellation is an expected outcome the caller
    /// decides about, so it comes back as `Ok(Err(_))`, not as a store error.
    pub(crate) async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancelled>, StoreError> {
        // The token makes the SDK's own retries of this exact request idempotent: without
        // it, a retried request whose first attempt did land would fail its own
        // `attribute_not_exists` condition and be mistaken for a collision.
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(err) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                    err.as_service_error()
                {
                    let reasons = cancel
                        .cancellation_reasons()
                        .iter()
                        .map(|reason| reason.code().map(str::to_owned))
                        .collect();
                    return Ok(Err(Cancelled { reasons }));
                }
                Err(StoreError::from_sdk(operation, err))
            }
        }
    }

    /// One unconditional `DeleteItem` of `key`, retried while a transaction holds the item;
    /// an item already gone is no error, so deleting is idempotent.
    pub(crate) async fn delete_key(&self, key: &Key) -> Result<(), StoreError> {
        let key = key_item(key);
        retry_conflicts("DeleteItem", || async {
            self.client
                .delete_item()
                .table_name(self.table())
                .set_key(Some(key.clone()))
                .send()
                .await
                .map_err(|err| StoreError::from_sdk("DeleteItem", err))
        })
        .await?;
        Ok(())
    }

    /// One `GetItem` of `key`; `operation` names it in errors.
    pub(crate) async fn get_item(
        &self,
        operation: &'static str,
        key: &Key,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key_item(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|err| StoreError::from_sdk(operation, err))?;
        Ok(output.item)
    }

    /// The items at `keys` that exist, by `BatchGetItem` (strongly consistent when
    /// `consistent`), retrying keys DynamoDB leaves unprocessed (it may under load) a
    /// bounded number of times.
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Key>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        let mut unique: Vec<Key> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        for chunk in unique.chunks(MAX_BATCH_GET_KEYS) {
            let mut pending: Vec<Item> = chunk.iter().map(key_item).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == MAX_WRITE_ATTEMPTS {
                    return Err(StoreError::Contention {
                        operation: "BatchGetItem",
                        attempts: attempt,
                    });
                }
                if attempt > 0 {
                    backoff(attempt - 1).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|err| StoreError::build("BatchGetItem", err))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(|err| StoreError::from_sdk("BatchGetItem", err))?;
                if let Some(mut responses) = output.responses {
                    found.extend(responses.remove(self.table()).unwrap_or_default());
                }
                if let Some(mut unprocessed) = output.unprocessed_keys {
                    pending = unprocessed
                        .remove(self.table())
                        .map(|keys| keys.keys)
                        .unwrap_or_default();
                }
            }
        }
        Ok(found)
    }

    /// A transactional put that only creates.
    pub(crate) fn put_new<T: serde::Serialize>(
        &self,
        item: &T,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(item)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|err| StoreError::build("TransactWriteItems", err))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// Runs a single-item write again, after a backoff, while DynamoDB answers that a
/// transaction is changing the same item (`TransactionConflictException`, which the SDK
/// does not retry and DynamoDB Local never gives): the transaction ends within
/// milliseconds. For writes that are right whatever the item holds, or whose condition
/// DynamoDB evaluates again when the retry lands; a write computed from a read of the item
/// must re-read it instead (as marking read does).
pub(crate) async fn retry_conflicts<T, F, Fut>(
    operation: &'static str,
    mut write: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    for attempt in 0..MAX_WRITE_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt - 1).await;
        }
        match write().await {
            Err(err) if err.failure_kind() == Some(FailureKind::Conflict) => {
                tracing::debug!(operation, attempt, "the item is in a transaction; retrying");
            }
            outcome => return outcome,
        }
    }
    Err(StoreError::Contention {
        operation,
        attempts: MAX_WRITE_ATTEMPTS,
    })
}

/// Backoff between retries of a conflicted transaction: short, growing, jittered so two
/// writers that collided do not collide again in lockstep.
pub(crate) async fn backoff(attempt: u32) {
    let base_ms = 5u64 << attempt.min(6);
    let jitter_ms = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % base_ms.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(base_ms + jitter_ms)).await;
}

/// The order a partition is paged in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Order {
    /// Sort keys descending: messages and inbox rows, whose sort keys are times.
    NewestFirst,
    /// Sort keys ascending.
    KeyOrder,
}

/// An item whose sort key a page's cursor names.
pub(crate) trait HasSortKey {
    fn sort_key(&self) -> &str;
}

impl HasSortKey for MessageItem {
    fn sort_key(&self) -> &str {
        &self.sk
    }
}

impl HasSortKey for InboxRowItem {
    fn sort_key(&self) -> &str {
        &self.sk
    }
}

impl HasSortKey for BlockItem {
    fn sort_key(&self) -> &str {
        &self.sk
    }
}

impl Store {
    /// One page of partition `pk` in `order`. Asks for one item more than the page to know
    /// whether another page exists, so the last page never carries a cursor.
    pub(crate) async fn query_page<T: DeserializeOwned + HasSortKey>(
        &self,
        pk: &str,
        start_after: Option<String>,
        limit: u32,
        order: Order,
    ) -> Result<Page<T>, StoreError> {
        let start_key = start_after.map(|sk| key_item(&Key::new(pk, sk)));
        let output = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .scan_index_forward(matches!(order, Order::KeyOrder))
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("Query", err))?;
        let stopped_early = output.last_evaluated_key.is_some();
        let mut items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item::<T>)
            .collect::<Result<Vec<_>, _>>()?;
        // More exists if the extra item came back, or if DynamoDB stopped at its 1 MB
        // page size before reaching the limit.
        let more = items.len() > limit as usize || stopped_early;
        items.truncate(limit as usize);
        let next_cursor = match items.last() {
            Some(last) if more => Some(encode_cursor(pk, last.sort_key())),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }
}
