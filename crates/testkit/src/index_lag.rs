//! A global secondary index that lags behind its table, as DynamoDB's do and DynamoDB
//! Local's never do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

use crate::chance::Chance;

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
/// each index read takes the next one; with the queue empty, replies pass unchanged, or,
/// made [`LaggingIndex::at_rate`], suffer a fault now and then on recently written rows.
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
    /// Reads whose reply a fault changed.
    lagged: usize,
    /// When each row was last put through this client.
    written: HashMap<(String, String), Instant>,
    rate: Option<LagRate>,
}

/// Faults at a rate, on rows written within a window, as a running system meets them.
#[derive(Debug)]
struct LagRate {
    rate: f64,
    window: Duration,
    chance: Chance,
}

/// What a fault at a rate is picked from: each way a lagging index can answer.
const FAULTS_AT_RATE: [IndexFault; 4] = [
    IndexFault::ShowNothing,
    IndexFault::Hide(1),
    IndexFault::Ghosts,
    IndexFault::OldPositions,
];
/// Earlier positions kept per row at a rate: a ghost or an old position is the row before
/// its last move, and a long-running stack must not keep every move it ever saw.
const VERSIONS_KEPT_AT_RATE: usize = 2;

impl LaggingIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index that lags now and then, as DynamoDB's does under normal conditions: each
    /// read (with no queued fault) suffers, at `rate`, one of the [`IndexFault`]s picked
    /// from `seed`'s sequence, and only on the rows put through this client within the last
    /// `window`; older rows have reached the index ("within a fraction of a second, under
    /// normal conditions", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads).
    pub fn at_rate(rate: f64, window: Duration, seed: u64) -> Self {
        let index = Self::default();
        index.lock().rate = Some(LagRate {
            rate,
            window,
            chance: Chance::seeded(seed),
        });
        index
    }

    /// Index reads whose reply a fault changed (a fault on rows that are all settled, or
    /// with nothing to show differently, changes nothing and is not counted).
    pub fn lagged(&self) -> usize {
        self.lock().lagged
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

/// The (conversation, owner) an inbox row is the row of; `None` for anything else.
fn row_of(item: &Item) -> Option<(String, String)> {
    let (Some(AttributeValue::S(group)), Some(AttributeValue::S(owner))) =
        (item.get(GROUP_INDEX_PARTITION_KEY), item.get(PARTITION_KEY))
    else {
        return None;
    };
    owner
        .starts_with(INBOX_PREFIX)
        .then(|| (group.clone(), owner.clone()))
}

impl LagState {
    fn remember(&mut self, item: &Item) {
        let Some(row) = row_of(item) else {
            return;
        };
        let at_rate = self.rate.is_some();
        let versions = self.versions.entry(row).or_default();
        let sk = item.get(SORT_KEY);
        match versions.iter_mut().find(|seen| seen.get(SORT_KEY) == sk) {
            Some(seen) => *seen = item.clone(),
            None => versions.push(item.clone()),
        }
        if at_rate && versions.len() > VERSIONS_KEPT_AT_RATE {
            versions.sort_by(|a, b| sort_key(b).cmp(sort_key(a)));
            versions.truncate(VERSIONS_KEPT_AT_RATE);
        }
    }

    /// A row put by a transaction that went through.
    fn written(&mut self, item: &Item) {
        if let Some(row) = row_of(item) {
            self.written.insert(row, Instant::now());
        }
        self.remember(item);
    }

    /// The fault this read suffers, and whether it is one played at a rate (on recently
    /// written rows only).
    fn next_fault(&mut self) -> Option<(IndexFault, bool)> {
        if let Some(fault) = self.faults.pop_front() {
            return Some((fault, false));
        }
        let rate = self.rate.as_ref()?;
        rate.chance
            .hits(rate.rate)
            .then(|| (FAULTS_AT_RATE[rate.chance.pick(FAULTS_AT_RATE.len())], true))
    }

    /// Whether `item`'s row was put through this client within the rate's window.
    fn unsettled(&self, item: &Item) -> bool {
        let Some(rate) = &self.rate else {
            return false;
        };
        row_of(item)
            .and_then(|row| self.written.get(&row))
            .is_some_and(|at| at.elapsed() < rate.window)
    }

    /// What an index read that DynamoDB Local answered with `items` shows.
    fn answer(&mut self, items: Vec<Item>) -> Vec<Item> {
        self.reads += 1;
        items.iter().for_each(|item| self.remember(item));
        let Some((fault, at_rate)) = self.next_fault() else {
            return items;
        };
        tracing::debug!(?fault, at_rate, "playing a lagging index");
        let shown = if at_rate {
            self.rewrite(fault, items.clone(), &|item| self.unsettled(item))
        } else {
            self.rewrite(fault, items.clone(), &|_| true)
        };
        if shown != items {
            self.lagged += 1;
        }
        shown
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

    /// `items` as `fault` shows them, for the rows `lagging` picks (every row, for queued
    /// faults).
    fn rewrite(
        &self,
        fault: IndexFault,
        items: Vec<Item>,
        lagging: &dyn Fn(&Item) -> bool,
    ) -> Vec<Item> {
        match fault {
            IndexFault::ShowNothing => items.into_iter().filter(|item| !lagging(item)).collect(),
            IndexFault::Hide(count) => {
                let mut hidden = 0;
                items
                    .into_iter()
                    .filter(|item| {
                        let hide = hidden < count && lagging(item);
                        hidden += usize::from(hide);
                        !hide
                    })
                    .collect()
            }
            IndexFault::Ghosts => {
                let mut shown = Vec::new();
                for item in items {
                    if lagging(&item) {
                        shown.extend(self.earlier(&item));
                    }
                    shown.push(item);
                }
                shown
            }
            IndexFault::OldPositions => items
                .into_iter()
                .map(|item| {
                    if lagging(&item) {
                        self.earlier(&item).pop().unwrap_or(item)
                    } else {
                        item
                    }
                })
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
                    puts.iter().for_each(|item| state.written(item));
                }
            }
            Seen::GroupIndexQuery => {
                let Some(reply) = output.downcast_mut::<QueryOutput>() else {
                    return Ok(());
                };
                let items = state.answer(reply.items.take().unwrap_or_default());
                let count = i32::try_from(items.len()).unwrap_or(i32::MAX);
                reply.count = count;
                reply.scanned_count = count;
                reply.items = Some(items);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(owner: &str, at: &str) -> Item {
        HashMap::from([
            (
                PARTITION_KEY.to_owned(),
                AttributeValue::S(format!("{INBOX_PREFIX}{owner}")),
            ),
            (SORT_KEY.to_owned(), AttributeValue::S(at.to_owned())),
            (
                GROUP_INDEX_PARTITION_KEY.to_owned(),
                AttributeValue::S("g".to_owned()),
            ),
        ])
    }

    fn state_at_rate(rate: f64, window: Duration) -> LagState {
        let index = LaggingIndex::at_rate(rate, window, 3);
        std::mem::take(&mut *index.lock())
    }

    #[test]
    fn at_rate_only_rows_written_within_the_window_lag() {
        // Bayko's row moved (two positions) just now; Londo's was read from the index
        // only, i.e. it settled before this client saw it.
        let mut state = state_at_rate(1.0, Duration::from_secs(3600));
        state.written(&row("bayko", "1"));
        state.written(&row("bayko", "2"));
        let reply = vec![row("bayko", "2"), row("londo", "1")];
        for _ in 0..40 {
            let shown = state.answer(reply.clone());
            assert_ne!(
                shown, reply,
                "every read lags, and each fault changes Bayko's row"
            );
            assert!(
                shown.contains(&row("londo", "1")),
                "a settled row is always shown"
            );
        }
        assert_eq!((state.reads, state.lagged), (40, 40));

        // Past the window, nothing is left to lag.
        let mut settled = state_at_rate(1.0, Duration::ZERO);
        settled.written(&row("bayko", "1"));
        settled.written(&row("bayko", "2"));
        assert_eq!(settled.answer(reply.clone()), reply);
        assert_eq!(settled.lagged, 0);
    }

    #[test]
    fn at_rate_some_reads_lag_and_few_positions_are_kept() {
        let mut state = state_at_rate(0.25, Duration::from_secs(3600));
        for at in ["1", "2", "3", "4"] {
            state.written(&row("bayko", at));
        }
        let versions = &state.versions[&("g".to_owned(), format!("{INBOX_PREFIX}bayko"))];
        let kept: Vec<&str> = versions.iter().map(sort_key).collect();
        assert_eq!(kept, ["4", "3"], "the row and its last position");
        let reply = vec![row("bayko", "4")];
        for _ in 0..400 {
            state.answer(reply.clone());
        }
        // A quarter of the reads draw a fault; every fault changes this reply.
        assert!((70..130).contains(&state.lagged), "{}", state.lagged);
    }

    #[test]
    fn queued_faults_come_first_and_apply_to_every_row() {
        let index = LaggingIndex::at_rate(0.0, Duration::ZERO, 4).then(IndexFault::Hide(1), 1);
        let mut state = std::mem::take(&mut *index.lock());
        let reply = vec![row("bayko", "2"), row("londo", "1")];
        assert_eq!(state.answer(reply.clone()), vec![row("londo", "1")]);
        assert_eq!(
            state.answer(reply.clone()),
            reply,
            "rate 0: no fault after the queue"
        );
    }
}
