//! What each request would cost on DynamoDB, in read and write request units, measured on
//! DynamoDB Local: every request is sent with `ReturnConsumedCapacity: INDEXES`, the
//! reply's `ConsumedCapacity` is added up per operation, table and index apart, and
//! DynamoDB's rules are played where DynamoDB Local reports otherwise (see
//! [`CapacityMeter`]).
//!
//! The rules (AWS, "DynamoDB read and write operations",
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html;
//! "Amazon DynamoDB Transactions: How it works", capacity management,
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling):
//! a read is one unit per 4 KB (strongly consistent) or half of it (eventually consistent),
//! a Query's items summed before rounding up; a write is one unit per 1 KB of the larger of
//! the item before and after; a write also writes each index the item is (or was) in;
//! a transaction reads or writes every item twice (prepare and commit).

use std::collections::{BTreeMap, HashMap};
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
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use messaging::schema::{GROUP_INDEX_PARTITION_KEY, PARTITION_KEY, SORT_KEY};

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
/// DynamoDB Local (3.3.0, checked by `crates/bench/tests/consumed_capacity.rs`) reports
/// right the units of single-item writes (the larger of the item before and after, and
/// each index the item is in), of `GetItem`, `BatchGetItem` and of `Query`s that find
/// something. Where it does not, the meter plays DynamoDB's rules:
///
/// - `TransactWriteItems`: DynamoDB Local reports one item's units whatever the number of
///   items, so the meter computes them from the request: per item, 2 units per KB
///   (rounded up) of the larger of the item before and after (prepare and commit), a
///   `ConditionCheck` included; per item in the group index (it carries
///   `message_group_uuid`), 1 more unit per KB for the index, a standard write: indexes
///   are not part of a transaction, its changes propagate to them after it completes. An
///   item's size before is the size this meter last saw of it (written or read through
///   it); an item it never saw is taken as up to 1 KB and outside the index, and counted
///   in [`CapacityMeter::assumed`]. Sizes follow "Item sizes and formats" (attribute
///   names and values, UTF-8).
/// - A `Query` or `Scan` that matches nothing: DynamoDB Local reports 0; DynamoDB's
///   minimum is one 4 KB read (0.5 eventually consistent, 1 strongly consistent), as for a
///   `GetItem` of a missing item, which DynamoDB Local does charge.
///
/// A request refused with an error (a failed condition, a cancelled transaction, a
/// throttle) carries no `ConsumedCapacity`; DynamoDB charges a failed conditional write
/// all the same. Those attempts are counted in [`CapacityMeter::unpriced`], not guessed.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    state: Arc<Mutex<Meter>>,
}

/// (table, partition key, sort key).
type ItemKey = (String, String, String);

/// What the meter knows of an item: its size, and whether the group index holds it.
#[derive(Debug, Clone, Copy)]
struct Known {
    bytes: usize,
    indexed: bool,
}

#[derive(Debug, Default)]
struct Meter {
    by_operation: BTreeMap<String, Units>,
    unpriced: u64,
    assumed: u64,
    items: HashMap<ItemKey, Known>,
}

/// A write's effect on what the meter knows, applied once the write succeeded.
#[derive(Debug, Clone)]
enum Effect {
    Put(ItemKey, Known),
    Delete(ItemKey),
}

/// What the request says that the reply does not.
#[derive(Debug, Clone, Default)]
struct Pending {
    table: String,
    /// A transaction's units, computed from its items.
    transaction: Option<Units>,
    assumed: u64,
    effects: Vec<Effect>,
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

    /// Transaction items whose size the meter had not seen (taken as up to 1 KB).
    pub fn assumed(&self) -> u64 {
        self.lock().assumed
    }

    /// Forgets the units counted so far (not the item sizes seen).
    pub fn reset(&self) {
        let mut meter = self.lock();
        meter.by_operation.clear();
        meter.unpriced = 0;
        meter.assumed = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An item's size by "Item sizes and formats"
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
/// each attribute's name plus its value.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        // Up to 38 significant digits, about one byte per two, plus one.
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn key_of(table: &str, attributes: &HashMap<String, AttributeValue>) -> Option<ItemKey> {
    let text = |name: &str| match attributes.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    Some((table.to_owned(), text(PARTITION_KEY)?, text(SORT_KEY)?))
}

fn known(item: &HashMap<String, AttributeValue>) -> Known {
    Known {
        bytes: item_size(item),
        indexed: item.contains_key(GROUP_INDEX_PARTITION_KEY),
    }
}

/// Write units of `bytes`: one per KB, rounded up, at least one.
fn per_kb(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

impl Meter {
    fn before(&self, key: Option<&ItemKey>) -> Option<Known> {
        key.and_then(|key| self.items.get(key)).copied()
    }

    /// A transaction's units and effects, from its items (see [`CapacityMeter`]).
    fn transaction(&self, input: &TransactWriteItemsInput, pending: &mut Pending) {
        const UNSEEN: Known = Known {
            bytes: 1024,
            indexed: false,
        };
        let mut units = Units::default();
        for action in input.transact_items() {
            if let Some(put) = action.put() {
                let key = key_of(put.table_name(), put.item());
                let after = known(put.item());
                let before = self.before(key.as_ref());
                let larger = before.map_or(after.bytes, |b| b.bytes.max(after.bytes));
                units.table_write += 2.0 * per_kb(larger);
                if after.indexed {
                    units.index_write += per_kb(after.bytes);
                } else if let Some(before) = before.filter(|b| b.indexed) {
                    units.index_write += per_kb(before.bytes);
                }
                if let Some(key) = key {
                    pending.effects.push(Effect::Put(key, after));
                }
                continue;
            }
            let (key, deletes) = if let Some(delete) = action.delete() {
                (key_of(delete.table_name(), delete.key()), true)
            } else if let Some(update) = action.update() {
                (key_of(update.table_name(), update.key()), false)
            } else if let Some(check) = action.condition_check() {
                (key_of(check.table_name(), check.key()), false)
            } else {
                continue;
            };
            let before = self.before(key.as_ref()).unwrap_or_else(|| {
                pending.assumed += 1;
                UNSEEN
            });
            units.table_write += 2.0 * per_kb(before.bytes);
            if before.indexed && action.condition_check().is_none() {
                units.index_write += per_kb(before.bytes);
            }
            if let (true, Some(key)) = (deletes, key) {
                pending.effects.push(Effect::Delete(key));
            }
        }
        pending.transaction = Some(units);
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Put(key, known) => {
                    self.items.insert(key, known);
                }
                Effect::Delete(key) => {
                    self.items.remove(&key);
                }
            }
        }
    }

    fn saw<'a>(
        &mut self,
        table: &str,
        items: impl IntoIterator<Item = &'a HashMap<String, AttributeValue>>,
    ) {
        for item in items {
            if let Some(key) = key_of(table, item) {
                self.items.insert(key, known(item));
            }
        }
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
        let meter = self.lock();
        if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            meter.transaction(transaction, &mut pending);
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            pending.table = query.table_name.clone().unwrap_or_default();
            pending.minimum_read = Some((
                eventual_or_strong(query.consistent_read),
                query.index_name.is_some(),
            ));
        } else if let Some(scan) = input.downcast_ref::<ScanInput>() {
            pending.table = scan.table_name.clone().unwrap_or_default();
            pending.minimum_read = Some((
                eventual_or_strong(scan.consistent_read),
                scan.index_name.is_some(),
            ));
        } else if let Some(get) = input.downcast_ref::<GetItemInput>() {
            pending.table = get.table_name.clone().unwrap_or_default();
        } else if let Some(put) = input.downcast_ref::<PutItemInput>() {
            let table = put.table_name.clone().unwrap_or_default();
            if let Some((item, key)) = put
                .item
                .as_ref()
                .and_then(|item| Some((item, key_of(&table, item)?)))
            {
                pending.effects.push(Effect::Put(key, known(item)));
            }
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            let table = delete.table_name.clone().unwrap_or_default();
            if let Some(key) = delete.key.as_ref().and_then(|k| key_of(&table, k)) {
                pending.effects.push(Effect::Delete(key));
            }
        }
        drop(meter);
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
        let table = pending.table.as_str();
        let (reported, writes): (Vec<&ConsumedCapacity>, bool) =
            if let Some(o) = output.downcast_ref::<GetItemOutput>() {
                meter.saw(table, o.item());
                (o.consumed_capacity().into_iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
                meter.saw(table, o.items());
                (o.consumed_capacity().into_iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<ScanOutput>() {
                (o.consumed_capacity().into_iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
                if let Some(responses) = o.responses() {
                    for (table, items) in responses {
                        meter.saw(table, items);
                    }
                }
                (o.consumed_capacity().iter().collect(), false)
            } else if let Some(o) = output.downcast_ref::<PutItemOutput>() {
                (o.consumed_capacity().into_iter().collect(), true)
            } else if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
                (o.consumed_capacity().into_iter().collect(), true)
            } else if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
                (o.consumed_capacity().into_iter().collect(), true)
            } else if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
                (o.consumed_capacity().iter().collect(), true)
            } else if output.downcast_ref::<TransactWriteItemsOutput>().is_some() {
                (Vec::new(), true)
            } else {
                // Table administration and the like: not part of any access pattern.
                return Ok(());
            };
        let mut units = Units::default();
        for capacity in reported {
            let index: f64 = capacity
                .global_secondary_indexes()
                .map(|indexes| indexes.values().filter_map(|c| c.capacity_units()).sum())
                .unwrap_or_default();
            // Without a breakdown (TOTAL only), all of it is the table's.
            let table = match capacity.table() {
                Some(table) => table.capacity_units().unwrap_or_default(),
                None => capacity.capacity_units().unwrap_or_default() - index,
            };
            if writes {
                units.table_write += table;
                units.index_write += index;
            } else {
                units.table_read += table;
                units.index_read += index;
            }
        }
        if let Some(transaction) = pending.transaction {
            units = transaction;
        }
        if let Some((minimum, on_index)) = pending.minimum_read {
            if on_index && units.index_read == 0.0 {
                units.index_read = minimum;
            } else if !on_index && units.table_read == 0.0 {
                units.table_read = minimum;
            }
        }
        meter.assumed += pending.assumed;
        meter.apply(pending.effects);
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

    #[test]
    fn an_item_is_sized_by_its_names_and_values() {
        let item: HashMap<String, AttributeValue> = [
            ("pk".to_owned(), AttributeValue::S("MSG#1".into())),
            ("unread".to_owned(), AttributeValue::N("123".into())),
            (
                "unread_at".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("ab".into())]),
            ),
        ]
        .into();
        // 2 + 5, 6 + (2 + 1), 9 + (3 + 1 + 2).
        assert_eq!(item_size(&item), 7 + 9 + 15);
        assert_eq!(per_kb(0), 1.0);
        assert_eq!(per_kb(1024), 1.0);
        assert_eq!(per_kb(1025), 2.0);
    }
}
