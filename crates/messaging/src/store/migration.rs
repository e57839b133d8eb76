//! The migration's reads and writes: a parallel scan, then the plan written with conditions
//! so that nothing this system owns is ever overwritten and a second run writes nothing.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::{StreamExt, TryStreamExt};

use super::requests::retry_conflicts;
use super::users::{NewUser, Registration};
use super::{Store, StoreError, key_item, to_item};
use crate::keys;
use crate::migration::{Found, Plan, RowUpdate};
use crate::schema::{GROUP_INDEX_PARTITION_KEY, PARTITION_KEY};
use crate::timestamp::Timestamp;

/// Writes in flight at once: enough to go fast, few enough not to burst a table's
/// on-demand capacity.
const CONCURRENT_WRITES: usize = 16;

/// What writing a plan did, per kind of item.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub users: Outcomes,
    pub memberships: Outcomes,
    pub restored_rows: Outcomes,
    pub row_updates: Outcomes,
    pub pairs: Outcomes,
    /// Users whose handle or Cognito id someone registered in this system already: with why.
    pub user_conflicts: Vec<(String, String)>,
}

impl Applied {
    pub fn written(&self) -> usize {
        [
            &self.users,
            &self.memberships,
            &self.restored_rows,
            &self.row_updates,
            &self.pairs,
        ]
        .iter()
        .map(|outcomes| outcomes.written)
        .sum()
    }
}

/// How the conditional writes of one kind ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    pub written: usize,
    /// The condition failed: the item is there already (a rerun, or written since the scan),
    /// or the row changed since the scan. Nothing was overwritten.
    pub skipped: usize,
}

/// One finished write, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    Written,
    Skipped,
}

impl Store {
    /// Scans the whole table in `segments` parallel segments, keeping what the migration
    /// needs. Messages are counted, not kept (`ScannedCount` minus `Count` of a scan that
    /// filters them out), so memory stays proportional to inbox rows and users.
    /// `on_page` gets the number of items each page scanned.
    #[tracing::instrument(skip(self, on_page), fields(table = %self.table), err(level = "debug"))]
    pub async fn scan_for_migration(
        &self,
        segments: u32,
        on_page: &(dyn Fn(usize) + Sync),
    ) -> Result<Found, StoreError> {
        let segments = segments.clamp(1, 1_000_000);
        let total = i32::try_from(segments).unwrap_or(i32::MAX);
        let parts = futures_util::future::try_join_all((0..total).map(|segment| async move {
            let mut found = Found::default();
            let mut pages = self
                .client
                .scan()
                .table_name(self.table())
                .segment(segment)
                .total_segments(total)
                .filter_expression("NOT begins_with(#pk, :messages)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(
                    ":messages",
                    AttributeValue::S(keys::MESSAGE_PREFIX.to_owned()),
                )
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|err| StoreError::from_sdk("Scan", err))?;
                let scanned = usize::try_from(page.scanned_count()).unwrap_or(0);
                let kept = usize::try_from(page.count()).unwrap_or(0);
                found.messages += scanned.saturating_sub(kept);
                found.items += scanned.saturating_sub(kept);
                for item in page.items.unwrap_or_default() {
                    found.add(item);
                }
                on_page(scanned);
            }
            Ok::<_, StoreError>(found)
        }))
        .await?;
        Ok(parts.into_iter().fold(Found::default(), Found::merge))
    }

    /// Writes `plan`: users first (so the API knows them), then memberships and restored
    /// rows, then the rows' counts (which make the fan-out expect every member's row), then
    /// pairs (which let people start writing to old conversations). Every write is
    /// conditional; `on_write` sees each one finish.
    #[tracing::instrument(skip_all, fields(table = %self.table), err(level = "debug"))]
    pub async fn apply_migration(
        &self,
        plan: &Plan,
        now: Timestamp,
        on_write: &(dyn Fn(Wrote) + Sync),
    ) -> Result<Applied, StoreError> {
        let mut applied = Applied::default();
        let registrations: Vec<_> = futures_util::stream::iter(&plan.users)
            .map(|user| async move {
                let new = NewUser {
                    handle: user.handle.clone(),
                    display_name: user.display_name.clone(),
                    cognito_sub: user.cognito_sub.clone(),
                };
                let result = self.register_user_as(user.uuid, new, now).await;
                (user, result)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        for (user, result) in registrations {
            match result {
                Ok(Registration::Created(_)) => {
                    applied.users.written += 1;
                    on_write(Wrote::Written);
                }
                Ok(Registration::AlreadyRegistered(existing)) if existing.uuid == user.uuid => {
                    applied.users.skipped += 1;
                    on_write(Wrote::Skipped);
                }
                Ok(Registration::AlreadyRegistered(existing)) => {
                    applied.users.skipped += 1;
                    applied.user_conflicts.push((
                        user.handle.to_string(),
                        format!("its Cognito id is registered to user {}", existing.uuid),
                    ));
                    on_write(Wrote::Skipped);
                }
                Err(err @ (StoreError::HandleTaken(_) | StoreError::SubRegistered { .. })) => {
                    applied.users.skipped += 1;
                    applied
                        .user_conflicts
                        .push((user.handle.to_string(), err.to_string()));
                    on_write(Wrote::Skipped);
                }
                Err(err) => return Err(err),
            }
        }

        applied.memberships = self.put_all_new(&plan.memberships, on_write).await?;
        applied.restored_rows = self.put_all_new(&plan.restored_rows, on_write).await?;
        applied.row_updates = self.complete_rows(&plan.row_updates, on_write).await?;
        applied.pairs = self.put_all_new(&plan.pairs, on_write).await?;
        Ok(applied)
    }

    /// Puts each item unless its key exists.
    async fn put_all_new<T: serde::Serialize + Sync>(
        &self,
        items: &[T],
        on_write: &(dyn Fn(Wrote) + Sync),
    ) -> Result<Outcomes, StoreError> {
        conditionally(items, on_write, |item| async move {
            let item = to_item(item)?;
            // The condition is evaluated when the write lands, so after a conflict the same
            // write decides again on the item as the transaction left it.
            retry_conflicts("PutItem", || async {
                let result = self
                    .client
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(item.clone()))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await;
                conditional_outcome("PutItem", result)
            })
            .await
        })
        .await
    }

    /// Gives original rows the `last_message_at` and `member_count` the fan-out relies on,
    /// in place: only if the row is still this conversation's and still lacks them (the
    /// fan-out may have moved it since the scan; it then carries both).
    async fn complete_rows(
        &self,
        updates: &[RowUpdate],
        on_write: &(dyn Fn(Wrote) + Sync),
    ) -> Result<Outcomes, StoreError> {
        conditionally(updates, on_write, |update| async move {
            retry_conflicts("UpdateItem", || async {
                let result = self
                    .client
                    .update_item()
                    .table_name(self.table())
                    .set_key(Some(key_item(&update.key)))
                    .update_expression(
                        "SET #at = if_not_exists(#at, :at), #count = if_not_exists(#count, :count)",
                    )
                    .condition_expression(
                        "#group = :group AND (attribute_not_exists(#at) OR attribute_not_exists(#count))",
                    )
                    .expression_attribute_names("#at", "last_message_at")
                    .expression_attribute_names("#count", "member_count")
                    .expression_attribute_names("#group", GROUP_INDEX_PARTITION_KEY)
                    .expression_attribute_values(":at", AttributeValue::S(update.last_message_at.clone()))
                    .expression_attribute_values(":count", AttributeValue::N(update.member_count.to_string()))
                    .expression_attribute_values(":group", AttributeValue::S(update.group.to_string()))
                    .send()
                    .await;
                conditional_outcome("UpdateItem", result)
            })
            .await
        })
        .await
    }
}

/// A conditional write that failed its condition wrote nothing: skipped, not an error.
fn conditional_outcome<O, E, R>(
    operation: &'static str,
    result: Result<O, SdkError<E, R>>,
) -> Result<Wrote, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(Wrote::Written),
        Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(Wrote::Skipped),
        Err(err) => Err(StoreError::from_sdk(operation, err)),
    }
}

/// Runs `write` on every input, [`CONCURRENT_WRITES`] at a time; the first failure stops
/// the run.
async fn conditionally<T, F, Fut>(
    inputs: impl IntoIterator<Item = T>,
    on_write: &(dyn Fn(Wrote) + Sync),
    write: F,
) -> Result<Outcomes, StoreError>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<Wrote, StoreError>>,
{
    let results: Vec<Wrote> = futures_util::stream::iter(inputs)
        .map(|input| {
            let written = write(input);
            async move {
                let wrote = written.await?;
                on_write(wrote);
                Ok::<_, StoreError>(wrote)
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect()
        .await?;
    Ok(tally(&results))
}

fn tally(results: &[Wrote]) -> Outcomes {
    let written = results.iter().filter(|w| **w == Wrote::Written).count();
    Outcomes {
        written,
        skipped: results.len() - written,
    }
}
