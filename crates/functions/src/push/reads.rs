//! Read frames: a member's read of a conversation, pushed to the other members. A read
//! raises the reader's receipt (`MBR#<group>` / `READ#<reader>`, written in the read's
//! own transaction, see `messaging::store` `reads.rs`); the trigger's second filter
//! ([`READ_FILTER_PATTERN`]) brings exactly those writes, and each becomes
//! `{"type":"read","message_group_uuid","handle","read_through"}` to every live connection of
//! the conversation's other members (the reader's own connections get none; members who
//! blocked the other member of a direct conversation get none, as for messages, and their
//! own reads are not pushed to the member they blocked).
//!
//! The read itself never waits for any of this. Recipients are found as for messages (one
//! Query of `MBR#<group>` per conversation, connections shared with the batch's messages);
//! a conversation whose recipients cannot be read is reported for retry like a message's.

use std::collections::HashMap;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;
use messaging::items::ReadReceiptItem;
use messaging::keys::{MEMBERSHIP_PREFIX, READ_RECEIPT_PREFIX};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BatchState, DEFAULT_CONCURRENCY, PushHandler};
use crate::batch::Deadline;

/// The trigger's second filter: receipts written or raised, and nothing else of the
/// `MBR#` partition (memberships, blocks and typing marks never reach the push this way).
/// `template.yaml` carries it beside [`super::FILTER_PATTERN`] (a test checks it); the
/// local stream pump applies both.
pub const READ_FILTER_PATTERN: &str = r#"{"eventName":["INSERT","MODIFY"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"MBR#"}]},"sk":{"S":[{"prefix":"READ#"}]}}}}"#;

/// `{"type":"read", ...}`: who read which conversation up to which message
/// (`read_through` is that message's `created_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadFrame {
    #[serde(rename = "type")]
    pub kind: String,
    pub message_group_uuid: String,
    pub handle: String,
    pub read_through: String,
}

impl ReadFrame {
    pub const READ: &'static str = "read";
}

impl From<&ReadReceiptItem> for ReadFrame {
    fn from(receipt: &ReadReceiptItem) -> Self {
        Self {
            kind: Self::READ.to_owned(),
            message_group_uuid: receipt.group_uuid.to_string(),
            handle: receipt.user_handle.clone(),
            read_through: receipt.read_through.clone(),
        }
    }
}

/// The receipt a stream record carries, if it is one.
fn receipt_of(record: &EventRecord) -> Option<ReadReceiptItem> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let key = |name: &str| match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => Some(value.as_str()),
        _ => None,
    };
    if !key("pk")?.starts_with(MEMBERSHIP_PREFIX) || !key("sk")?.starts_with(READ_RECEIPT_PREFIX) {
        return None;
    }
    // Without it a failure could not be reported for retry.
    record.change.sequence_number.as_ref()?;
    match serde_dynamo::from_item::<_, ReadReceiptItem>(record.change.new_image.clone()) {
        Ok(receipt) => Some(receipt),
        Err(error) => {
            tracing::warn!(event_id = %record.event_id, %error, "skipping malformed read receipt");
            None
        }
    }
}

/// One conversation's receipts of a batch: the furthest of each reader (receipts are never
/// lowered, so the last in stream order), and the position of its first record.
struct GroupReceipts {
    group: Uuid,
    first_position: usize,
    latest: Vec<ReadReceiptItem>,
    /// Receipt records of the conversation in the batch.
    records: usize,
}

/// The batch's receipts by conversation, in the order of their first record.
fn receipts_by_group(event: &Event) -> Vec<GroupReceipts> {
    let mut groups: Vec<GroupReceipts> = Vec::new();
    let mut slots: HashMap<Uuid, usize> = HashMap::new();
    for (position, record) in event.records.iter().enumerate() {
        let Some(receipt) = receipt_of(record) else {
            continue;
        };
        let slot = *slots.entry(receipt.group_uuid).or_insert_with(|| {
            groups.push(GroupReceipts {
                group: receipt.group_uuid,
                first_position: position,
                latest: Vec::new(),
                records: 0,
            });
            groups.len() - 1
        });
        groups[slot].records += 1;
        let latest = &mut groups[slot].latest;
        match latest.iter_mut().find(|r| r.user_uuid == receipt.user_uuid) {
            Some(earlier) if earlier.read_through <= receipt.read_through => *earlier = receipt,
            Some(_) => {}
            None => latest.push(receipt),
        }
    }
    groups
}

impl PushHandler {
    /// Pushes the batch's read frames; returns the position of the earliest record of a
    /// conversation whose recipients could not be read, or that the deadline left unstarted.
    pub(super) async fn push_reads(
        &self,
        event: &Event,
        now: i64,
        state: &BatchState,
        deadline: Option<&Deadline>,
    ) -> Option<usize> {
        let groups = receipts_by_group(event);
        if groups.is_empty() {
            return None;
        }
        let records = groups.iter().map(|g| g.records).sum::<usize>();
        // Counted as skipped by the messages' reading; they are not.
        state.count(|s| s.skipped = s.skipped.saturating_sub(records));
        let stop_starting = deadline.map(|d| (d, self.pace.margins.margins_for(d).stop_starting));
        let failed: Vec<Option<usize>> = futures_util::stream::iter(groups)
            .map(|group| async move {
                if stop_starting.is_some_and(|(d, stop)| d.remaining() < stop) {
                    return Some(group.first_position);
                }
                match self.push_group_reads(&group, now, state).await {
                    Ok(()) => None,
                    Err(error) => {
                        tracing::warn!(group = %group.group, %error, "could not read who to tell of a read; reporting for retry");
                        Some(group.first_position)
                    }
                }
            })
            .buffer_unordered(DEFAULT_CONCURRENCY)
            .collect()
            .await;
        failed.into_iter().flatten().min()
    }

    async fn push_group_reads(
        &self,
        group: &GroupReceipts,
        now: i64,
        state: &BatchState,
    ) -> Result<(), messaging::StoreError> {
        // The recipients' query, as for messages; kept by member, so that a reader who is not
        // among them (who blocked the other member of a direct conversation, or has left)
        // tells no one.
        state.count(|s| s.member_queries += 1);
        let members = self.store.recipients(group.group).await?;
        let mut connections = Vec::new();
        for member in &members {
            connections.extend(self.connections_of(*member, now, state).await?);
        }
        for receipt in &group.latest {
            if !members.contains(&receipt.user_uuid) {
                tracing::debug!(group = %group.group, "a read by a blocker or a leaver; not pushed");
                continue;
            }
            let frame = match serde_json::to_vec(&ReadFrame::from(receipt)) {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::error!(%error, "could not encode a read frame");
                    continue;
                }
            };
            let others: Vec<_> = connections
                .iter()
                .filter(|c| c.user_uuid != receipt.user_uuid)
                .cloned()
                .collect();
            self.post_to_all(&others, &frame, state).await;
        }
        Ok(())
    }
}

/// Adds the earliest failed receipt record to the batch's response: Lambda retries from
/// the lowest sequence number reported.
pub(super) fn report_failed_read(
    response: &mut DynamoDbEventResponse,
    event: &Event,
    position: Option<usize>,
) {
    let Some(record) = position.and_then(|p| event.records.get(p)) else {
        return;
    };
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = record.change.sequence_number.clone();
    response.batch_item_failures.push(failure);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event_name: &str, sk: &str, through: &str) -> EventRecord {
        let group = "5ae290ed-55d1-47a0-bc6d-fe2bc2700399";
        let user = "7d4b2a9c-3f1e-4c8a-9b6d-2e5f8a1c4d7b";
        let image = serde_json::json!({
            "pk": { "S": format!("MBR#{group}") },
            "sk": { "S": sk },
            "group_uuid": { "S": group },
            "user_uuid": { "S": user },
            "user_handle": { "S": "bayko" },
            "read_through": { "S": through },
        });
        serde_json::from_value(serde_json::json!({
            "eventID": through,
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": { "pk": image["pk"], "sk": { "S": sk } },
                "NewImage": image,
                "SequenceNumber": "1",
                "SizeBytes": 1
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_readers_receipts_of_one_batch_come_to_one_frame_of_the_furthest_read() {
        let reader = "READ#7d4b2a9c-3f1e-4c8a-9b6d-2e5f8a1c4d7b";
        let mut event = Event::default();
        event.records = vec![
            record("INSERT", reader, "2026-12-01T06:00:01.000000+00:00"),
            record("MODIFY", reader, "2026-12-01T06:00:03.000000+00:00"),
            record("MODIFY", reader, "2026-12-01T06:00:02.000000+00:00"),
            // A membership's change is no receipt, whatever it carries.
            record("MODIFY", "USER#7d4b2a9c-3f1e-4c8a-9b6d-2e5f8a1c4d7b", "x"),
            record("REMOVE", reader, "2026-12-01T06:00:09.000000+00:00"),
        ];
        let groups = receipts_by_group(&event);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].latest.len(), 1);
        let frame = serde_json::to_value(ReadFrame::from(&groups[0].latest[0])).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({
                "type": "read",
                "message_group_uuid": "5ae290ed-55d1-47a0-bc6d-fe2bc2700399",
                "handle": "bayko",
                "read_through": "2026-12-01T06:00:03.000000+00:00",
            })
        );
    }
}
