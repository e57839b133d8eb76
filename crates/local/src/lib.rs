//! Local stand-ins for the AWS services around the functions, so the whole system runs on
//! one machine against DynamoDB Local.
//!
//! - [`stream_source`] reads a table's DynamoDB stream as Lambda event records;
//! - [`filter`] applies the event source mapping's filter pattern;
//! - [`pump`] feeds `messaging-stream` like the event source mapping does;
//! - [`auth`] verifies bearer tokens like the HTTP API's JWT authorizer, and mints
//!   development tokens;
//! - [`api_docs`] holds the API's OpenAPI and AsyncAPI documents, served as JSON;
//! - [`server`] serves the HTTP API's routes through the same handlers as the Lambdas;
//! - [`websocket`] serves the WebSocket API (`/ws`) through the same authorizer and route
//!   handlers, and plays its Management API (`POST /@connections/{id}`) for the push;
//! - [`like_aws`] plays DynamoDB's documented behaviours in the running stack
//!   (`cruddur dev --like-aws`);
//! - [`dev`] runs all of it: `cruddur dev`.

pub mod api_docs;
pub mod auth;
pub mod dev;
pub mod filter;
pub mod like_aws;
pub mod pump;
pub mod server;
pub mod stream_source;
pub mod websocket;
