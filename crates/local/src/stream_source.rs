//! Reading DynamoDB Local's stream as Lambda would receive it.

use std::collections::{HashMap, HashSet};

use aws_config::BehaviorVersion;
use aws_lambda_events::dynamodb::{EventRecord, StreamRecord, StreamViewType};
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::config::Region;
use aws_sdk_dynamodbstreams::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use messaging::connect::{LOCAL_REGION, local_credentials};

#[derive(Debug, thiserror::Error)]
pub enum StreamSourceError {
    #[error("DynamoDB Streams {operation} failed: {message}")]
    Streams {
        operation: &'static str,
        message: String,
    },
}

fn sdk_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StreamSourceError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| StreamSourceError::Streams {
        operation,
        message: DisplayErrorContext(&err).to_string(),
    }
}

/// A DynamoDB Streams client for DynamoDB Local (same dummy credentials as the table client).
pub fn local_streams_client(endpoint_url: &str) -> Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(local_credentials())
        .build();
    Client::from_conf(config)
}

/// Where a shard is being read from.
#[derive(Debug)]
struct ShardCursor {
    iterator: Option<String>,
    parent: Option<String>,
    /// The last record read, to resume after it when the iterator expires.
    last_sequence_number: Option<String>,
}

/// Tails every shard of one stream from its oldest record: new shards are picked up as
/// they appear, a child shard is read only once its parent is drained (so records of one
/// item stay in order), and a closed shard is read to its end.
#[derive(Debug)]
pub struct StreamTail {
    client: Client,
    stream_arn: String,
    open: HashMap<String, ShardCursor>,
    drained: HashSet<String>,
    /// Where a newly found shard is read from.
    new_shards_from: ShardIteratorType,
}

impl StreamTail {
    pub fn new(client: Client, stream_arn: impl Into<String>) -> Self {
        Self {
            client,
            stream_arn: stream_arn.into(),
            open: HashMap::new(),
            drained: HashSet::new(),
            new_shards_from: ShardIteratorType::TrimHorizon,
        }
    }

    /// Reads the shards that exist now from their end (an event source mapping's
    /// `StartingPosition: LATEST`), shards that appear later from their start. Done before
    /// anything is written that must be seen, so nothing falls between "latest" and the
    /// first read.
    pub async fn start_at_latest(&mut self) -> Result<(), StreamSourceError> {
        self.new_shards_from = ShardIteratorType::Latest;
        let discovered = self.discover_shards().await;
        self.new_shards_from = ShardIteratorType::TrimHorizon;
        discovered
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Every record written since the last call (one pass over the readable shards), in
    /// the Lambda event shape.
    pub async fn poll(&mut self) -> Result<Vec<EventRecord>, StreamSourceError> {
        self.discover_shards().await?;
        let mut records = Vec::new();
        let ready: Vec<String> = self
            .open
            .iter()
            .filter(|(_, cursor)| {
                cursor.parent.as_ref().is_none_or(|parent| {
                    self.drained.contains(parent) || !self.open.contains_key(parent)
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in ready {
            if let Err(error) = self.read_shard(&shard_id, &mut records).await {
                // What was read is kept (the shard resumes after it next time); the error
                // surfaces only when nothing came through.
                if records.is_empty() {
                    return Err(error);
                }
                tracing::warn!(%error, shard = %shard_id, "reading a shard failed; retrying later");
            }
        }
        Ok(records)
    }

    async fn discover_shards(&mut self) -> Result<(), StreamSourceError> {
        let mut start_after: Option<String> = None;
        loop {
            let output = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start_after.clone())
                .send()
                .await
                .map_err(sdk_error("DescribeStream"))?;
            let Some(description) = output.stream_description else {
                return Ok(());
            };
            for shard in description.shards.unwrap_or_default() {
                let Some(shard_id) = shard.shard_id else {
                    continue;
                };
                if self.open.contains_key(&shard_id) || self.drained.contains(&shard_id) {
                    continue;
                }
                let iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard_id)
                    .shard_iterator_type(self.new_shards_from.clone())
                    .send()
                    .await
                    .map_err(sdk_error("GetShardIterator"))?
                    .shard_iterator;
                self.open.insert(
                    shard_id,
                    ShardCursor {
                        iterator,
                        parent: shard.parent_shard_id,
                        last_sequence_number: None,
                    },
                );
            }
            match description.last_evaluated_shard_id {
                Some(last) => start_after = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// Reads a shard until it has nothing more right now; a closed shard whose iterator
    /// runs out is marked drained.
    async fn read_shard(
        &mut self,
        shard_id: &str,
        out: &mut Vec<EventRecord>,
    ) -> Result<(), StreamSourceError> {
        loop {
            let Some(iterator) = self.open.get(shard_id).and_then(|c| c.iterator.clone()) else {
                self.open.remove(shard_id);
                self.drained.insert(shard_id.to_owned());
                return Ok(());
            };
            let output = match self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
            {
                Ok(output) => output,
                // Iterators expire after 15 minutes (a laptop asleep): resume after the
                // last record read.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_expired_iterator_exception()) =>
                {
                    self.reopen(shard_id).await?;
                    continue;
                }
                Err(error) => return Err(sdk_error("GetRecords")(error)),
            };
            let got = output.records.as_ref().map_or(0, Vec::len);
            let mut last = None;
            for record in output.records.unwrap_or_default() {
                last = record
                    .dynamodb
                    .as_ref()
                    .and_then(|r| r.sequence_number.clone())
                    .or(last);
                out.push(to_lambda_record(record, &self.stream_arn));
            }
            if let Some(cursor) = self.open.get_mut(shard_id) {
                cursor.iterator = output.next_shard_iterator;
                cursor.last_sequence_number = last.or(cursor.last_sequence_number.take());
            }
            if got == 0 {
                // Open shard with nothing new (or a closed one: next loop drains it).
                if self
                    .open
                    .get(shard_id)
                    .is_some_and(|c| c.iterator.is_some())
                {
                    return Ok(());
                }
            }
        }
    }
}

impl StreamTail {
    async fn reopen(&mut self, shard_id: &str) -> Result<(), StreamSourceError> {
        let last = self
            .open
            .get(shard_id)
            .and_then(|c| c.last_sequence_number.clone());
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id);
        let request = match last {
            Some(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence_number),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let iterator = request
            .send()
            .await
            .map_err(sdk_error("GetShardIterator"))?
            .shard_iterator;
        if let Some(cursor) = self.open.get_mut(shard_id) {
            cursor.iterator = iterator;
        }
        Ok(())
    }
}

/// One DynamoDB Streams record in the shape Lambda's event source mapping delivers.
pub fn to_lambda_record(record: Record, stream_arn: &str) -> EventRecord {
    let mut event = EventRecord::default();
    event.aws_region = record.aws_region.unwrap_or_default();
    event.event_id = record.event_id.unwrap_or_default();
    event.event_name = record
        .event_name
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    event.event_source = record.event_source.or_else(|| Some("aws:dynamodb".into()));
    event.event_version = record.event_version;
    event.event_source_arn = Some(stream_arn.to_owned());
    if let Some(change) = record.dynamodb {
        let mut stream = StreamRecord::default();
        if let Some(at) = change
            .approximate_creation_date_time
            .and_then(|at| chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()))
        {
            stream.approximate_creation_date_time = at;
        }
        stream.keys = serde_dynamo::Item::from(change.keys.unwrap_or_default());
        stream.new_image = serde_dynamo::Item::from(change.new_image.unwrap_or_default());
        stream.old_image = serde_dynamo::Item::from(change.old_image.unwrap_or_default());
        stream.sequence_number = change.sequence_number;
        stream.size_bytes = change.size_bytes.unwrap_or_default();
        stream.stream_view_type = change.stream_view_type.and_then(|view| {
            serde_json::from_value::<StreamViewType>(serde_json::Value::String(
                view.as_str().to_owned(),
            ))
            .ok()
        });
        event.change = stream;
    }
    event
}
