//! What each request would cost on DynamoDB, in read and write request units, measured on
//! DynamoDB Local: every request is sent with `ReturnConsumedCapacity: INDEXES` and the
//! reply's `ConsumedCapacity` is added up per operation, table and index apart, with
//! DynamoDB's rules played where DynamoDB Local reports less (see [`CapacityMeter`]).
//!
//! The rules (AWS, "DynamoDB read and write operations",
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html;
//! "Amazon DynamoDB Transactions: How it works", capacity management,
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling):
//! a read is one unit per 4 KB (strongly consistent) or half of it (eventually consistent),
//! a Query's items summed before rounding up; a write is one unit per 1 KB of the larger of
//! the item before and after; every write also writes each index the item is (or was) in;
//! a transaction reads or writes every item twice (prepare and commit).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// Request units, table and indexes apart (on-demand: read and write request units; the
/// same numbers are provisioned capacity units per second).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub table_read: f64,
    pub index_read: f64,
    pub table_write: f64,
    pub index_write: f64,
}

impl Units {
    pub fn read(&self) -> f64 {
        self.table_read + self.index_read
    }

    pub fn write(&self) -> f64 {
        self.table_write + self.index_write
    }

    pub fn add(&mut self, other: &Units) {
        self.table_read += other.table_read;
        self.index_read += other.index_read;
        self.table_write += other.table_write;
        self.index_write += other.index_write;
    }

    /// These units divided by `n` (per call, per message).
    pub fn per(&self, n: f64) -> Units {
        Units {
            table_read: self.table_read / n,
            index_read: self.index_read / n,
            table_write: self.table_write / n,
            index_write: self.index_write / n,
        }
    }
}

/// An SDK interceptor adding up the request units each operation consumes.
///
/// DynamoDB Local (3.3.0, checked by this module's tests) reports the units of every
/// successful request, table and each index apart, and already doubles a transaction's
/// puts, updates and deletes. Where it reports less than DynamoDB charges, the meter adds:
///
/// - a `ConditionCheck` in `TransactWriteItems`: Local counts nothing; DynamoDB reads or
///   writes every item of a transaction twice, so it is charged as a transactional write of
///   an item up to 1 KB (2 units; the items checked here, memberships and pairs, are a few
///   hundred bytes);
/// - a `Query` or `Scan` that matches nothing: Local reports 0; DynamoDB's minimum is one
///   4 KB read (0.5 eventually consistent, 1 strongly consistent), as for a `GetItem` of a
///   missing item, which Local does charge.
///
/// A request refused with an error (a failed condition, a cancelled transaction, a
/// throttle) carries no `ConsumedCapacity` on DynamoDB Local; DynamoDB charges a failed
/// conditional write all the same. Those attempts are counted in [`Self::unpriced`], not
/// guessed.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    state: Arc<Mutex<Meter>>,
}

#[derive(Debug, Default)]
struct Meter {
    by_operation: BTreeMap<String, Units>,
    unpriced: u64,
}

/// What the reply's units need added, known from the request.
#[derive(Debug, Clone, Default)]
struct Pending {
    condition_checks: usize,
    /// A Query or Scan: its minimum charge, and whether it reads an index.
    minimum_read: Option<(f64, bool)>,
}

impl Storable for Pending {
    type Storer = StoreReplace<Self>;
}

impl CapacityMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Units per operation name (`Query`, `TransactWriteItems`, …) since the last reset.
    pub fn by_operation(&self) -> BTreeMap<String, Units> {
        self.lock().by_operation.clone()
    }

    pub fn total(&self) -> Units {
        let mut total = Units::default();
        for units in self.lock().by_operation.values() {
            total.add(units);
        }
        total
    }

    /// Attempts answered with an error, whose units DynamoDB Local does not report.
    pub fn unpriced(&self) -> u64 {
        self.lock().unpriced
    }

    pub fn reset(&self) {
        let mut meter = self.lock();
        meter.by_operation.clear();
        meter.unpriced = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sets `ReturnConsumedCapacity: INDEXES` on the operations that take it.
macro_rules! ask_for_units {
    ($input:expr, $($kind:ty),+) => {
        $(
            if let Some(input) = $input.downcast_mut::<$kind>() {
                input.return_consumed_capacity = Some(ReturnConsumedCapacity::Indexes);
            }
        )+
    };
}

fn eventual_or_strong(consistent: Option<bool>) -> f64 {
    if consistent == Some(true) { 1.0 } else { 0.5 }
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        ask_for_units!(
            input,
            GetItemInput,
            BatchGetItemInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            BatchWriteItemInput,
            TransactWriteItemsInput,
            QueryInput,
            ScanInput
        );
        let mut pending = Pending::default();
        if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            pending.condition_checks = transaction
                .transact_items()
                .iter()
                .filter(|item| item.condition_check().is_some())
                .count();
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            pending.minimum_read = Some((
                eventual_or_strong(query.consistent_read),
                query.index_name.is_some(),
            ));
        } else if let Some(scan) = input.downcast_ref::<ScanInput>() {
            pending.minimum_read = Some((
                eventual_or_strong(scan.consistent_read),
                scan.index_name.is_some(),
            ));
        }
        cfg.interceptor_state().store_put(pending);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or_else(|| "unknown".to_owned(), |m| m.name().to_owned());
        let pending = cfg.load::<Pending>().cloned().unwrap_or_default();
        let mut meter = self.lock();
        let Ok(output) = context.output_or_error() else {
            meter.unpriced += 1;
            return Ok(());
        };
        let (reported, writes): (Vec<&ConsumedCapacity>, bool) =
            if let Some(o) = output.downcast_ref::<GetItemOutput>() {
                (o.consumed_capacity().into_iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
                (o.consumed_capacity().into_iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<ScanOutput>() {
                (o.consumed_capacity().into_iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
                (o.consumed_capacity().iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<PutItemOutput>() {
                (o.consumed_capacity().into_iter().collect(), true)
            } else if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
                (o.consumed_capacity().into_iter().collect(), true)
            } else if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
                (o.consumed_capacity().into_iter().collect(), true)
            } else if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
                (o.consumed_capacity().iter().collect(), true)
            } else if let Some(o) = output.downcast_ref::<TransactWriteItemsOutput>() {
                (o.consumed_capacity().iter().collect(), true)
            } else {
                // Table administration and the like: not part of any access pattern.
                return Ok(());
            };
        let mut units = Units::default();
        for capacity in reported {
            let table = capacity
                .table()
                .and_then(|t| t.capacity_units())
                .unwrap_or_default();
            let index: f64 = capacity
                .global_secondary_indexes()
                .map(|indexes| indexes.values().filter_map(|c| c.capacity_units()).sum())
                .unwrap_or_default();
            // Without a breakdown (TOTAL only), all of it is the table's.
            let table = if capacity.table().is_none() {
                capacity.capacity_units().unwrap_or_default() - index
            } else {
                table
            };
            if writes {
                units.table_write += table;
                units.index_write += index;
            } else {
                units.table_read += table;
                units.index_read += index;
            }
        }
        units.table_write += 2.0 * pending.condition_checks as f64;
        if let Some((minimum, on_index)) = pending.minimum_read {
            if on_index && units.index_read == 0.0 {
                units.index_read = minimum;
            } else if !on_index && units.table_read == 0.0 {
                units.table_read = minimum;
            }
        }
        meter.by_operation.entry(operation).or_default().add(&units);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_add_and_divide_by_kind() {
        let mut units = Units {
            table_read: 1.0,
            index_read: 0.5,
            table_write: 4.0,
            index_write: 2.0,
        };
        units.add(&units.clone());
        assert_eq!(units.read(), 3.0);
        assert_eq!(units.write(), 12.0);
        assert_eq!(units.per(4.0).write(), 3.0);
    }
}
