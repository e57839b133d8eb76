//! Building DynamoDB clients. Lambdas use the SDK's standard environment
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials); local tools point at DynamoDB Local.

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};

use crate::metrics::RequestCounter;

/// Where DynamoDB Local listens unless told otherwise (as in the original `bin/ddb` scripts).
pub const DEFAULT_LOCAL_ENDPOINT: &str = "http://localhost:8000";
/// DynamoDB Local ignores credentials and region when started with `-sharedDb`, but the
/// SDK still signs requests, so local clients use these fixed dummy values.
pub const LOCAL_REGION: &str = "us-east-1";

/// A client configured from the environment, exactly as the SDK resolves it in Lambda.
pub async fn client_from_env(counter: Option<RequestCounter>) -> Client {
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&config);
    if let Some(counter) = counter {
        builder = builder.interceptor(counter);
    }
    Client::from_conf(builder.build())
}

/// A client for DynamoDB Local at `endpoint_url`, with dummy credentials.
pub fn local_client(endpoint_url: &str, counter: Option<RequestCounter>) -> Client {
    let mut builder = local_config(endpoint_url);
    if let Some(counter) = counter {
        builder = builder.interceptor(counter);
    }
    Client::from_conf(builder.build())
}

/// The client configuration for DynamoDB Local, to extend (interceptors) before building.
pub fn local_config(endpoint_url: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(local_credentials())
}

/// The dummy credentials every local client signs with (DynamoDB Local does not check
/// them); shared with the DynamoDB Streams client of the local stack.
pub fn local_credentials() -> Credentials {
    Credentials::new("local", "local", None, None, "dynamodb-local")
}
