//! A fresh table per test on one shared DynamoDB Local, so tests run in parallel without
//! seeing each other's data.

use aws_sdk_dynamodb::config::Intercept;
use messaging::connect::local_config;
use messaging::metrics::RequestCounter;
use messaging::model::User;
use messaging::store::{Item, NewUser, Store};
use messaging::timestamp::Timestamp;
use messaging::validate::{DisplayName, Handle};
use uuid::Uuid;

use crate::iam_calls::RecordFunctionCalls;
use crate::transaction_rules::RejectRepeatedKeys;

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
            .interceptor(RecordFunctionCalls::new())
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
    pub async fn put_raw(&self, item: Item) -> Result<(), aws_sdk_dynamodb::Error> {
        self.store
            .client()
            .put_item()
            .table_name(self.store.table())
            .set_item(Some(item))
            .send()
            .await?;
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
        self.store_on_client(self.client_config().interceptor(interceptor))
    }

    /// Another store on the same table with a client of its own, as another Lambda
    /// execution environment has.
    pub fn store_with_own_client(&self) -> Store {
        self.store_on_client(self.client_config())
    }

    fn client_config(&self) -> aws_sdk_dynamodb::config::Builder {
        local_config(&endpoint())
            .interceptor(self.requests.clone())
            .interceptor(RejectRepeatedKeys::new())
            .interceptor(RecordFunctionCalls::new())
    }

    fn store_on_client(&self, config: aws_sdk_dynamodb::config::Builder) -> Store {
        Store::new(
            aws_sdk_dynamodb::Client::from_conf(config.build()),
            self.store.table(),
        )
    }
}
