//! The Lambda functions of Cruddur Messaging. Each trigger has one module that turns its
//! events into domain values (`TryFrom`) and a handler that calls the store; the binaries
//! in `src/bin/` only build clients and run the handler.

pub mod stream;
