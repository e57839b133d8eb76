//! The typing signal's one write: the sender's membership item (`MBR#<group>` /
//! `USER#<sender>`) remembers when its owner's typing was last forwarded (`typing_at`,
//! epoch milliseconds), so at most one typing event per member and conversation passes
//! every interval, whichever execution environment handles it.
//!
//! One conditional `UpdateItem` is at once the membership check and the rate check: it
//! succeeds only on an existing membership with no `blockers` (the condition a send puts on
//! the same item, [`super::blocks::MEMBER_NOT_BLOCKED`]) whose `typing_at` is absent or at
//! least one interval old. On failure, `ReturnValuesOnConditionCheckFailure=ALL_OLD` tells
//! the three refusals apart with no second request: no item is not a member; an item with
//! `blockers` is a blocked direct conversation; any other item was too soon
//! (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html,
//! `ReturnValuesOnConditionCheckFailure`).
//!
//! Nothing else about typing is stored. The attribute rides on an item that exists anyway
//! (no item, no TTL to clean up), and no other write conditions on it: appending and
//! blocking ask `attribute_exists(pk)` / `blockers` only, leaving asks `attribute_exists`.
//! Its MODIFY records reach the table's stream, where both consumers' filter (`MSG#` keys
//! only) drops them.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use uuid::Uuid;

use super::{Store, StoreError, key_item};
use crate::items::BLOCKERS_ATTRIBUTE;
use crate::keys;

/// The membership attribute holding when its member's typing was last forwarded (epoch
/// milliseconds, a number, so the condition compares it numerically).
pub const TYPING_AT_ATTRIBUTE: &str = "typing_at";

/// At most one typing event per member and conversation is forwarded this often (issue 21).
pub const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// What the typing write decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingClaim {
    /// Recorded: forward it to the other members.
    Forward,
    /// A member whose last forwarded typing is younger than the interval: drop it (never
    /// queued).
    TooSoon,
    /// A direct conversation in which one member blocked the other: nothing goes either way.
    Blocked,
    /// No membership: refuse it.
    NotMember,
}

impl Store {
    /// Claims the right to forward `member`'s typing in `group` at `now_ms` (epoch
    /// milliseconds): one conditional `UpdateItem` of the membership (1 write unit: a
    /// membership item is well under 1 KB). A write that meets a transaction holding the
    /// item (a send's `ConditionCheck` of the same membership) fails with
    /// `TransactionConflict`; typing is a hint, so that is `TooSoon` (dropped), not an error
    /// and not retried, and the send is never held up by it.
    #[tracing::instrument(skip(self), fields(table = %self.table), err(level = "debug"))]
    pub async fn claim_typing(
        &self,
        group: Uuid,
        member: Uuid,
        now_ms: i64,
        interval: Duration,
    ) -> Result<TypingClaim, StoreError> {
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(interval_ms);
        let result = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::membership(group, member))))
            .update_expression("SET #typing_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(#blockers) \
                 AND (attribute_not_exists(#typing_at) OR #typing_at <= :cutoff)",
            )
            .expression_attribute_names("#typing_at", TYPING_AT_ATTRIBUTE)
            .expression_attribute_names("#blockers", BLOCKERS_ATTRIBUTE)
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(":cutoff", AttributeValue::N(cutoff.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(TypingClaim::Forward),
            Err(error) => error,
        };
        let refused = match &error {
            SdkError::ServiceError(service) => match service.err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Some(match failed.item() {
                        None => TypingClaim::NotMember,
                        Some(item) if item.contains_key(BLOCKERS_ATTRIBUTE) => TypingClaim::Blocked,
                        Some(_) => TypingClaim::TooSoon,
                    })
                }
                UpdateItemError::TransactionConflictException(_) => {
                    tracing::debug!(%group, %member, "typing met a transaction on the membership; dropped");
                    Some(TypingClaim::TooSoon)
                }
                _ => None,
            },
            _ => None,
        };
        refused.ok_or_else(|| StoreError::from_sdk("UpdateItem", error))
    }
}
