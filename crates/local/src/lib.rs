//! Local stand-ins for the AWS services around the functions, so the whole system runs on
//! one machine against DynamoDB Local.
//!
//! - [`stream_source`]: reads a table's DynamoDB stream (all shards) and converts each
//!   record to the Lambda event shape, exactly as the event source mapping delivers it.

pub mod stream_source;
