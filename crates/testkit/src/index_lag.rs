//! A global secondary index that lags behind its table, as DynamoDB's do and DynamoDB
//! Local's never do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use messaging::keys::INBOX_PREFIX;
use messaging::schema::{GROUP_INDEX, GROUP_INDEX_PARTITION_KEY, PARTITION_KEY, SORT_KEY};
use messaging::store::Item;

/// What one read of the group index gets wrong. DynamoDB propagates table writes to a
/// global secondary index asynchronously and item by item, and GSIs support eventually
/// consistent reads only, so a Query can return stale data: "changes to the table data are
/// propagated to the global secondary indexes within a fraction of a second, under normal
/// conditions", longer in rare failure scenarios
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads).
/// Moving a row is a delete plus a put of another key, each propagated on its own, so
/// between them the index may show either, both, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexFault {
    /// The reply lists none of the rows (all written or moved too recently).
    ShowNothing,
    /// The reply leaves out this many rows.
    Hide(usize),
    /// Every row this interceptor saw at an earlier position is shown there too, beside
    /// its moved copy: the delete has not reached the index, the put has.
    Ghosts,
    /// Every row is shown at the position it had before it last moved: neither the delete
    /// nor the put has reached the index.
    OldPositions,
}

/// An SDK interceptor that rewrites replies of Queries on the group index.
///
/// It remembers each inbox row's positions from what it sees: index replies, and inbox
/// rows put by successful transactions through the same client. Faults are queued and
/// each index read takes the next one; with the queue empty, replies pass unchanged.
#[derive(Debug, Clone, Default)]
pub struct LaggingIndex {
    state: Arc<Mutex<LagState>>,
}

#[derive(Debug, Default)]
struct LagState {
    faults: VecDeque<IndexFault>,
    /// Every version seen of each (conversation, owner) row, oldest first.
    versions: HashMap<(String, String), Vec<Item>>,
    reads: usize,
}

impl LaggingIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `reads` reads of the index suffer `fault` (after any faults queued before).
    pub fn then(self, fault: IndexFault, reads: usize) -> Self {
        self.lock().faults.extend(std::iter::repeat_n(fault, reads));
        self
    }

    /// Index reads so far.
    pub fn reads(&self) -> usize {
        self.lock().reads
    }

    /// Faults queued and not yet played.
    pub fn pending(&self) -> usize {
        self.lock().faults.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LagState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LagState {
    fn remember(&mut self, item: &Item) {
        let (Some(AttributeValue::S(group)), Some(AttributeValue::S(owner))) =
            (item.get(GROUP_INDEX_PARTITION_KEY), item.get(PARTITION_KEY))
        else {
            return;
        };
        if !owner.starts_with(INBOX_PREFIX) {
            return;
        }
        let versions = self
            .versions
            .entry((group.clone(), owner.clone()))
            .or_default();
        let sk = item.get(SORT_KEY);
        match versions.iter_mut().find(|seen| seen.get(SORT_KEY) == sk) {
            Some(seen) => *seen = item.clone(),
            None => versions.push(item.clone()),
        }
    }

    /// Earlier positions of the row `item` is the current version of.
    fn earlier(&self, item: &Item) -> Vec<Item> {
        let (Some(AttributeValue::S(group)), Some(AttributeValue::S(owner))) =
            (item.get(GROUP_INDEX_PARTITION_KEY), item.get(PARTITION_KEY))
        else {
            return Vec::new();
        };
        let sk = sort_key(item);
        let mut earlier: Vec<Item> = self
            .versions
            .get(&(group.clone(), owner.clone()))
            .into_iter()
            .flatten()
            .filter(|seen| sort_key(seen) < sk)
            .cloned()
            .collect();
        earlier.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
        earlier
    }

    fn rewrite(&self, fault: IndexFault, items: Vec<Item>) -> Vec<Item> {
        match fault {
            IndexFault::ShowNothing => Vec::new(),
            IndexFault::Hide(count) => items.into_iter().skip(count).collect(),
            IndexFault::Ghosts => {
                let mut shown = Vec::new();
                for item in items {
                    shown.extend(self.earlier(&item));
                    shown.push(item);
                }
                shown
            }
            IndexFault::OldPositions => items
                .into_iter()
                .map(|item| self.earlier(&item).pop().unwrap_or(item))
                .collect(),
        }
    }
}

fn sort_key(item: &Item) -> &str {
    match item.get(SORT_KEY) {
        Some(AttributeValue::S(sk)) => sk,
        _ => "",
    }
}

/// What the interceptor needs to remember about an operation between its hooks (the
/// input is gone once it is serialised).
#[derive(Debug, Clone)]
enum Seen {
    GroupIndexQuery,
    Transaction(Vec<Item>),
}

impl Storable for Seen {
    type Storer = StoreReplace<Self>;
}

impl Intercept for LaggingIndex {
    fn name(&self) -> &'static str {
        "LaggingIndex"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        if let Some(query) = input.downcast_ref::<QueryInput>() {
            if query.index_name() == Some(GROUP_INDEX) {
                cfg.interceptor_state().store_put(Seen::GroupIndexQuery);
            }
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            let puts = transaction
                .transact_items()
                .iter()
                .filter_map(|item| item.put().map(|put| put.item().clone()))
                .collect();
            cfg.interceptor_state().store_put(Seen::Transaction(puts));
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(seen) = cfg.load::<Seen>().cloned() else {
            return Ok(());
        };
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let mut state = self.lock();
        match seen {
            Seen::Transaction(puts) => {
                if output.downcast_ref::<TransactWriteItemsOutput>().is_some() {
                    puts.iter().for_each(|item| state.remember(item));
                }
            }
            Seen::GroupIndexQuery => {
                let Some(reply) = output.downcast_mut::<QueryOutput>() else {
                    return Ok(());
                };
                state.reads += 1;
                let items = reply.items.take().unwrap_or_default();
                items.iter().for_each(|item| state.remember(item));
                let items = match state.faults.pop_front() {
                    Some(fault) => {
                        tracing::debug!(?fault, "playing a lagging index");
                        state.rewrite(fault, items)
                    }
                    None => items,
                };
                let count = i32::try_from(items.len()).unwrap_or(i32::MAX);
                reply.count = count;
                reply.scanned_count = count;
                reply.items = Some(items);
            }
        }
        Ok(())
    }
}
