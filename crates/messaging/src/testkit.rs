//! Test support: each test gets its own table on one shared DynamoDB Local, so tests run in
//! parallel without seeing each other's data. Where DynamoDB Local is kinder than DynamoDB,
//! the testkit plays DynamoDB's documented behaviour: SDK interceptors [`LaggingIndex`] (an
//! eventually consistent group index) and [`RejectRepeatedKeys`] (transaction validation, on
//! every test table's client), and [`stand_in`]'s HTTP client (throttling, transaction
//! conflicts).

mod index_lag;
pub mod stand_in;
mod transaction_rules;

pub use index_lag::{IndexFault, LaggingIndex};
pub use transaction_rules::{RejectRepeatedKeys, RejectTransactions};

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use uuid::Uuid;

use crate::connect::local_config;
use crate::metrics::RequestCounter;
use crate::model::User;
use crate::store::{Item, NewUser, Store, StoreError};
use crate::timestamp::Timestamp;
use crate::validate::{DisplayName, Handle};

/// The DynamoDB Local the tests use; `make test` starts one and sets this.
pub const ENDPOINT_ENV: &str = "CRUDDUR_TEST_DDB_ENDPOINT";

pub fn endpoint() -> String {
    std::env::var(ENDPOINT_ENV).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_ENV} is not set. Run the tests with `make test` (it starts DynamoDB \
             Local), or start one with `scripts/ddb-local.sh start 8765` and set \
             {ENDPOINT_ENV}=http://127.0.0.1:8765"
        )
    })
}

/// A new, empty table with the real schema, and a counter of the requests made through it.
pub struct TestTable {
    pub store: Store,
    pub requests: RequestCounter,
}

impl TestTable {
    pub async fn new() -> Self {
        let requests = RequestCounter::new();
        let config = local_config(&endpoint())
            .interceptor(requests.clone())
            .interceptor(RejectRepeatedKeys::new())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let name = format!("test-{}", Uuid::new_v4().simple());
        let store = Store::new(client, name);
        store
            .create_table_if_missing()
            .await
            .expect("create test table on DynamoDB Local");
        requests.reset();
        Self { store, requests }
    }

    /// Registers a user whose display name is derived from the handle.
    pub async fn user(&self, handle: &str) -> User {
        let new = NewUser {
            handle: Handle::parse(handle).expect("valid test handle"),
            display_name: DisplayName::parse(&format!("User {handle}")).expect("valid name"),
            cognito_sub: format!("sub-{}", Uuid::new_v4()),
        };
        let registration = self
            .store
            .register_user(new, Timestamp::now())
            .await
            .expect("register test user");
        let user = registration.user().clone();
        self.requests.reset();
        user
    }
}

impl TestTable {
    /// Puts an item as it is, unconditionally: data shaped the way another writer (the
    /// original system, a corrupting bug) left it, which the store itself never writes.
    pub async fn put_raw(&self, item: Item) -> Result<(), StoreError> {
        self.store
            .client()
            .put_item()
            .table_name(self.store.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|err| StoreError::from_sdk("PutItem", err))?;
        Ok(())
    }

    /// Every item of the table as JSON text, sorted: equal tables give equal snapshots
    /// (serde_json's maps are ordered).
    pub async fn snapshot(&self) -> Vec<String> {
        let mut items: Vec<String> = self
            .store
            .scan_all()
            .await
            .expect("scan the test table")
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item::<_, serde_json::Value>(item)
                    .expect("items are JSON-representable")
                    .to_string()
            })
            .collect();
        items.sort();
        items
    }

    /// Another store on the same table whose client also runs `interceptor`.
    pub fn store_with(&self, interceptor: impl Intercept + 'static) -> Store {
        let config = local_config(&endpoint())
            .interceptor(self.requests.clone())
            .interceptor(RejectRepeatedKeys::new())
            .interceptor(interceptor)
            .build();
        Store::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            self.store.table(),
        )
    }
}

/// Fails every `TransactWriteItems` whose request body mentions a given text (say, a
/// conversation's uuid) before it is sent, as a network failure would.
#[derive(Debug, Clone, Default)]
pub struct FailTransactions {
    needle: Arc<Mutex<Option<String>>>,
}

impl FailTransactions {
    pub fn mentioning(text: impl Into<String>) -> Self {
        Self {
            needle: Arc::new(Mutex::new(Some(text.into()))),
        }
    }

    /// From now on, let everything through.
    pub fn heal(&self) {
        *self.needle.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Intercept for FailTransactions {
    fn name(&self) -> &'static str {
        "FailTransactions"
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_transaction = cfg
            .load::<Metadata>()
            .is_some_and(|metadata| metadata.name() == "TransactWriteItems");
        let needle = self
            .needle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (true, Some(needle)) = (is_transaction, needle) else {
            return Ok(());
        };
        let body = context.request().body().bytes().unwrap_or_default();
        if body
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
        {
            return Err(format!("injected failure: transaction mentions {needle}").into());
        }
        Ok(())
    }
}

/// A file of the workspace's `events/` folder (the Lambda events `cargo lambda invoke`
/// uses), parsed as JSON.
pub fn event_json(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}
