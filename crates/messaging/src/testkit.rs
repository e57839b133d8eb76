//! Test support: each test gets its own table on one shared DynamoDB Local, so tests run in
//! parallel without seeing each other's data.

use uuid::Uuid;

use crate::connect::local_client;
use crate::metrics::RequestCounter;
use crate::model::User;
use crate::store::{NewUser, Store};
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
        let client = local_client(&endpoint(), Some(requests.clone()));
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
