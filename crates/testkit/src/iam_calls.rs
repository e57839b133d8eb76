//! What each Lambda function asks of AWS in its tests, as IAM sees it, so that
//! `scripts/check-iam.sh` can evaluate every call against that function's role in the
//! translated template (docs/ARCHITECTURE.md, "Least privilege, checked").
//!
//! A test runs a function's handler inside [`as_function`]; [`RecordFunctionCalls`], on
//! every client the tests build, turns each request attempt made meanwhile into the IAM
//! authorizations it needs (action, resource, `dynamodb:LeadingKeys`) and, when
//! [`CALLS_DIR_ENV`] names a folder, appends them to `<folder>/<function>.jsonl`, one line
//! per distinct shape. Requests made outside [`as_function`] (a test's own setup and
//! assertions) are not the function's and are not recorded.
//!
//! How DynamoDB authorizes each operation:
//! - `TransactWriteItems` / `TransactGetItems` are authorized per item, with the item's
//!   action (`PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem`, `GetItem`):
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>;
//! - `dynamodb:LeadingKeys` holds the partition key values a request touches (every key of
//!   a batch; a Query's, from its key condition):
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html>.
//!   For a Query on an index the index's partition value is recorded, the only one the
//!   request names; AWS's pages do not say more, and no statement of the template puts a
//!   `LeadingKeys` condition on the index;
//! - a Scan names no partition: the key is absent from the request.
//!
//! The Management API's `PostToConnection` / `DeleteConnection` need
//! `execute-api:ManageConnections` on `<api>/<stage>/<METHOD>/@connections/<id>`
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html>);
//! the method and path are recorded, the check puts the function's API and stage in front.

use std::cell::Cell;
use std::collections::{BTreeSet, HashSet};
use std::future::{Future, IntoFuture};
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::KeyType;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde_json::{Value, json};

/// The folder the recordings go to; unset, nothing is written. `scripts/test.sh` sets it to
/// `target/iam-calls` (emptied first) and runs the check on it after the tests.
pub const CALLS_DIR_ENV: &str = "CRUDDUR_IAM_CALLS_DIR";

thread_local! {
    /// The function whose handler is being polled on this thread, if any.
    static CURRENT_FUNCTION: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// `future`, whose requests are `function`'s: the name is set while the future is polled
/// (so it follows the future across threads and does not leak into futures polled beside
/// it), and an inner `as_function` wins over an outer one.
pub fn as_function<F: IntoFuture>(function: &'static str, future: F) -> AsFunction<F::IntoFuture> {
    AsFunction {
        function,
        inner: Box::pin(future.into_future()),
    }
}

/// The future of [`as_function`].
pub struct AsFunction<F> {
    function: &'static str,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for AsFunction<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Restore(Option<&'static str>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT_FUNCTION.with(|current| current.set(self.0));
            }
        }
        let _restore =
            Restore(CURRENT_FUNCTION.with(|current| current.replace(Some(self.function))));
        self.inner.as_mut().poll(cx)
    }
}

/// The function whose handler runs on this thread now, if any.
pub fn current_function() -> Option<&'static str> {
    CURRENT_FUNCTION.with(Cell::get)
}

/// One authorization a request needs: what IAM evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The API operation that needs it (`TransactWriteItems` for each of its items).
    pub operation: String,
    /// The IAM action, `dynamodb:PutItem`, `execute-api:ManageConnections`.
    pub action: String,
    /// Relative to the function's table or API: `table`, `index/<name>`, or for the
    /// Management API `<METHOD>/@connections/<id>`.
    pub resource: String,
    /// `dynamodb:LeadingKeys`; `None` where the request names no partition (the key is then
    /// absent, as for a Scan).
    pub leading_keys: Option<Vec<String>>,
}

impl Authorization {
    /// What makes two authorizations alike for a policy on key prefixes: one line per shape.
    fn shape(&self) -> String {
        let prefixes = self.leading_keys.as_ref().map(|keys| {
            keys.iter()
                .map(|key| key_prefix(key))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(",")
        });
        format!(
            "{} {} {} {}",
            self.operation,
            self.action,
            resource_family(&self.resource),
            prefixes.as_deref().unwrap_or("-")
        )
    }
}

/// A resource without its connection id: one post stands for every post.
pub fn resource_family(resource: &str) -> &str {
    resource
        .find("/@connections/")
        .map_or(resource, |at| &resource[..at + "/@connections/".len()])
}

/// The family of a partition key: up to and including its first `#` (`MSG#`), or `*` for a
/// key without one (an index's bare uuid).
pub fn key_prefix(key: &str) -> &str {
    key.find('#').map_or("*", |at| &key[..=at])
}

/// The authorizations a DynamoDB request of `operation` with JSON `body` needs.
pub fn dynamodb_authorizations(operation: &str, body: &Value) -> Vec<Authorization> {
    let one = |action: &str, request: &Value, keys: Option<Vec<String>>| Authorization {
        operation: operation.to_owned(),
        action: format!("dynamodb:{action}"),
        resource: resource_of(request),
        leading_keys: keys,
    };
    match operation {
        "GetItem" | "UpdateItem" | "DeleteItem" => {
            vec![one(operation, body, Some(vec![partition_of(&body["Key"])]))]
        }
        "PutItem" => vec![one(
            operation,
            body,
            Some(vec![partition_of(&body["Item"])]),
        )],
        "Query" => vec![one(operation, body, Some(query_partition(body)))],
        "TransactWriteItems" | "TransactGetItems" => items(&body["TransactItems"])
            .iter()
            .filter_map(|item| item.as_object()?.iter().next())
            .map(|(kind, request)| {
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => other,
                };
                let key = request.get("Key").unwrap_or(&request["Item"]);
                one(action, request, Some(vec![partition_of(key)]))
            })
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(table, requests)| {
                let keys = if operation == "BatchGetItem" {
                    items(&requests["Keys"]).iter().map(partition_of).collect()
                } else {
                    items(requests)
                        .iter()
                        .map(|request| {
                            let put = &request["PutRequest"]["Item"];
                            partition_of(if put.is_null() {
                                &request["DeleteRequest"]["Key"]
                            } else {
                                put
                            })
                        })
                        .collect()
                };
                one(operation, &json!({ "TableName": table }), Some(keys))
            })
            .collect(),
        _ => vec![one(operation, body, None)],
    }
}

/// The authorization a Management API request (`PostToConnection`, `DeleteConnection`,
/// `GetConnection`) needs: the method and the path after the stage.
pub fn management_authorization(operation: &str, method: &str, uri: &str) -> Authorization {
    let path = uri.split('?').next().unwrap_or_default();
    let connections = path.find("/@connections/").map_or(path, |at| &path[at..]);
    Authorization {
        operation: operation.to_owned(),
        action: "execute-api:ManageConnections".to_owned(),
        resource: format!("{method}{connections}"),
        leading_keys: None,
    }
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn resource_of(request: &Value) -> String {
    match request["IndexName"].as_str() {
        Some(index) => format!("index/{index}"),
        None => "table".to_owned(),
    }
}

/// An attribute value as text (`S` or `N`; anything else as its JSON).
fn scalar(value: &Value) -> String {
    value["S"]
        .as_str()
        .or_else(|| value["N"].as_str())
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn partition_of(key: &Value) -> String {
    scalar(&key[messaging::schema::PARTITION_KEY])
}

/// The partition key attribute of the table, or of the index `index` names.
fn partition_attribute(index: Option<&str>) -> Option<String> {
    let Some(index) = index else {
        return Some(messaging::schema::PARTITION_KEY.to_owned());
    };
    messaging::schema::global_secondary_indexes()
        .ok()?
        .into_iter()
        .find(|gsi| gsi.index_name() == index)?
        .key_schema()
        .iter()
        .find(|element| element.key_type() == &KeyType::Hash)
        .map(|element| element.attribute_name().to_owned())
}

/// The partition value of a Query's key condition (`#pk = :pk`, in any clause of an `AND`),
/// or of its legacy `KeyConditions`.
fn query_partition(body: &Value) -> Vec<String> {
    let Some(attribute) = partition_attribute(body["IndexName"].as_str()) else {
        return Vec::new();
    };
    if let Some(condition) = body["KeyConditions"].get(&attribute) {
        return items(&condition["AttributeValueList"])
            .iter()
            .map(scalar)
            .collect();
    }
    let expression = body["KeyConditionExpression"].as_str().unwrap_or_default();
    let name = |token: &str| -> String {
        let token = token.trim().trim_matches(|c| c == '(' || c == ')').trim();
        body["ExpressionAttributeNames"][token]
            .as_str()
            .unwrap_or(token)
            .to_owned()
    };
    expression
        .split(" AND ")
        .flat_map(|clause| clause.split(" and "))
        .filter_map(|clause| clause.split_once('='))
        .filter(|(left, _)| name(left) == attribute)
        .map(|(_, right)| {
            let placeholder = right.trim().trim_matches(|c| c == '(' || c == ')').trim();
            scalar(&body["ExpressionAttributeValues"][placeholder])
        })
        .collect()
}

/// Records, per function, the IAM authorizations of the requests made inside
/// [`as_function`]. Cheap outside it (a thread-local read), so every test client has it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordFunctionCalls;

impl RecordFunctionCalls {
    pub fn new() -> Self {
        Self
    }
}

impl Intercept for RecordFunctionCalls {
    fn name(&self) -> &'static str {
        "RecordFunctionCalls"
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(function) = current_function() else {
            return Ok(());
        };
        let Some(dir) = calls_dir() else {
            return Ok(());
        };
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let request = context.request();
        let authorizations = if metadata.service().contains("ApiGatewayManagement") {
            vec![management_authorization(
                metadata.name(),
                request.method(),
                request.uri(),
            )]
        } else {
            let bytes = request.body().bytes().unwrap_or_default();
            let body = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            dynamodb_authorizations(metadata.name(), &body)
        };
        for authorization in authorizations {
            write_once(dir, function, &authorization);
        }
        Ok(())
    }
}

fn calls_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::var_os(CALLS_DIR_ENV)
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
    })
    .as_ref()
}

/// Appends `authorization` to `function`'s file unless this process wrote its shape before.
/// A line is one `write` to a file opened for appending, so the test binaries' lines do not
/// interleave.
fn write_once(dir: &PathBuf, function: &str, authorization: &Authorization) {
    static WRITTEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let shape = format!("{function} {}", authorization.shape());
    let mut written = WRITTEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !written.insert(shape) {
        return;
    }
    let line = json!({
        "function": function,
        "operation": authorization.operation,
        "action": authorization.action,
        "resource": authorization.resource,
        "leading_keys": authorization.leading_keys,
        // libtest names each test's thread after the test: where to look when it fails.
        "test": std::thread::current().name().unwrap_or("?"),
    });
    let path = dir.join(format!("{function}.jsonl"));
    let appended = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?
            .write_all(format!("{line}\n").as_bytes())
    });
    if let Err(err) = appended {
        panic!("recording IAM calls in {}: {err}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(authorizations: &[Authorization]) -> Vec<(&str, &str, Option<Vec<String>>)> {
        authorizations
            .iter()
            .map(|a| {
                (
                    a.action.as_str(),
                    a.resource.as_str(),
                    a.leading_keys.clone(),
                )
            })
            .collect()
    }

    fn some(keys: &[&str]) -> Option<Vec<String>> {
        Some(keys.iter().map(|k| k.to_string()).collect())
    }

    #[test]
    fn a_transaction_needs_each_items_action_on_its_key() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "MSG#g"}, "sk": {"S": "1"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "MBR#g"}, "sk": {"S": "USER#u"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "GRP#u"}, "sk": {"S": "2"}}}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "GRP#v"}, "sk": {"S": "3"}}}},
        ]});
        assert_eq!(
            keys(&dynamodb_authorizations("TransactWriteItems", &body)),
            vec![
                ("dynamodb:PutItem", "table", some(&["MSG#g"])),
                ("dynamodb:ConditionCheckItem", "table", some(&["MBR#g"])),
                ("dynamodb:UpdateItem", "table", some(&["GRP#u"])),
                ("dynamodb:DeleteItem", "table", some(&["GRP#v"])),
            ]
        );
    }

    #[test]
    fn a_batch_get_needs_every_key_at_once() {
        let body = json!({"RequestItems": {"t": {"Keys": [
            {"pk": {"S": "USER#a"}, "sk": {"S": "PROFILE"}},
            {"pk": {"S": "USER#b"}, "sk": {"S": "PROFILE"}},
        ]}}});
        assert_eq!(
            keys(&dynamodb_authorizations("BatchGetItem", &body)),
            vec![(
                "dynamodb:BatchGetItem",
                "table",
                some(&["USER#a", "USER#b"])
            )]
        );
    }

    #[test]
    fn a_query_touches_the_partition_of_its_key_condition_on_its_index() {
        let on_table = json!({
            "TableName": "t",
            "KeyConditionExpression": "#sk > :after AND #pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":pk": {"S": "CONN#u"}, ":after": {"S": "0"}},
        });
        let on_index = json!({
            "TableName": "t",
            "IndexName": messaging::schema::GROUP_INDEX,
            "KeyConditionExpression": "message_group_uuid = :g AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":g": {"S": "g-uuid"}, ":p": {"S": "2"}},
        });
        assert_eq!(
            keys(&dynamodb_authorizations("Query", &on_table)),
            vec![("dynamodb:Query", "table", some(&["CONN#u"]))]
        );
        assert_eq!(
            keys(&dynamodb_authorizations("Query", &on_index)),
            vec![(
                "dynamodb:Query",
                "index/message-group-sk-index",
                some(&["g-uuid"])
            )]
        );
    }

    #[test]
    fn a_scan_names_no_partition() {
        let body = json!({"TableName": "t"});
        assert_eq!(
            keys(&dynamodb_authorizations("Scan", &body)),
            vec![("dynamodb:Scan", "table", None)]
        );
    }

    #[test]
    fn a_post_to_a_connection_is_managed_on_its_method_and_path() {
        let post = management_authorization(
            "PostToConnection",
            "POST",
            "http://127.0.0.1:9/live/@connections/abc%3D",
        );
        assert_eq!(post.action, "execute-api:ManageConnections");
        assert_eq!(post.resource, "POST/@connections/abc%3D");
    }

    #[test]
    fn the_function_is_set_while_its_future_is_polled_only() {
        let inner = as_function("inner", async { current_function() });
        let outer = as_function("outer", async move {
            let before = current_function();
            let nested = inner.await;
            (before, nested, current_function())
        });
        let mut outer = std::pin::pin!(outer);
        let waker = std::task::Waker::noop();
        let Poll::Ready(seen) = outer.as_mut().poll(&mut Context::from_waker(waker)) else {
            panic!("the futures are ready at once");
        };
        assert_eq!(seen, (Some("outer"), Some("inner"), Some("outer")));
        assert_eq!(current_function(), None);
    }
}
