//! The WebSocket API's functions with the events in `events/`: `ws-authorizer` with good,
//! expired, foreign and missing tokens (and a rotated or unreachable key set), `ws-connect` and
//! `ws-disconnect` against DynamoDB Local.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::iam::IamPolicyEffect;
use functions::clock::SystemClock;
use functions::directory::Directory;
use functions::jwt::{JwtVerifier, KeySource, KeysFuture, KeysUnavailable, REQUIRED_SCOPE};
use functions::websocket::{AuthorizerError, WebSocketEvent, allows};
use jsonwebtoken::jwk::JwkSet;
use local::auth::{DEV_CLIENT_ID, DEV_ISSUER, DevSigner};
use messaging::{User, keys};
use serde_json::{Value, json};
use testkit::TestTable;

mod support;
use support::recorded::{WsAuthorizer, WsConnections};
use support::{ManualClock, event_json, management_api};

/// A development key pair in a scratch folder, and tokens signed with it.
struct Keys {
    dir: PathBuf,
    signer: DevSigner,
}

impl Keys {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("cruddur-ws-{}", uuid::Uuid::new_v4()));
        let signer = DevSigner::load_or_create(&dir.join("key.pk8")).unwrap();
        Self { dir, signer }
    }

    fn jwks(&self) -> JwkSet {
        self.signer.jwks()
    }

    fn token_for(&self, user: &User) -> String {
        self.signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    }

    /// A token with these claims, signed with this key (for claims `mint` never writes).
    fn sign(&self, claims: &Value) -> String {
        let pkcs8 = std::fs::read(self.dir.join("key.pk8")).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = self.jwks().keys[0].common.key_id.clone();
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
        )
        .unwrap()
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn directory(table: &TestTable) -> Directory {
    Directory::new(table.store.clone(), Duration::ZERO, Arc::new(SystemClock))
}

fn authorizer(table: &TestTable, keys: JwkSet) -> WsAuthorizer {
    let verifier = JwtVerifier::new(Arc::new(keys), DEV_ISSUER, DEV_CLIENT_ID);
    WsAuthorizer::new(Arc::new(verifier), directory(table))
}

/// `events/ws-authorizer.json` carrying `token`.
fn connect_attempt(token: &str) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut event = event_json("ws-authorizer.json");
    event["queryStringParameters"]["token"] = json!(token);
    event["multiValueQueryStringParameters"]["token"] = json!([token]);
    serde_json::from_value(event).unwrap()
}

#[tokio::test]
async fn a_good_token_is_allowed_and_names_the_user_for_every_route() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let keys = Keys::new();
    let event = connect_attempt(&keys.token_for(&andrew));
    let response = authorizer(&table, keys.jwks())
        .authorize(&event)
        .await
        .unwrap();
    assert!(allows(&response));
    assert_eq!(response.principal_id, Some(andrew.uuid.to_string()));
    let statement = &response.policy_document.statement[0];
    assert_eq!(statement.action, ["execute-api:Invoke"]);
    assert_eq!(statement.resource, [event.method_arn.clone().unwrap()]);
    assert_eq!(response.context["user_uuid"], andrew.uuid.to_string());
    assert_eq!(response.context["sub"], andrew.cognito_sub);
    assert_eq!(response.context["handle"], "andrewbrown");
    // For frames about the sender (typing) without a directory read.
    assert_eq!(
        response.context["display_name"],
        andrew.display_name.to_string()
    );
    // The token's expiry travels on, so the connection can end with it.
    let exp: u64 = response.context["exp"].parse().unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    assert!(
        (now + 590..=now + 600).contains(&exp),
        "the token's exp: {exp}"
    );
    // API Gateway reads the policy in this shape.
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(json["policyDocument"]["Version"], "2012-10-17");
}

#[tokio::test]
async fn missing_expired_foreign_and_forged_tokens_are_unauthorized() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let keys = Keys::new();
    let stranger = Keys::new();
    let claims = |exp: u64, overrides: Value| {
        let mut claims = json!({
            "sub": andrew.cognito_sub, "iss": DEV_ISSUER, "client_id": DEV_CLIENT_ID,
            "token_use": "access", "scope": REQUIRED_SCOPE, "exp": exp,
        });
        for (name, value) in overrides.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let now = jsonwebtoken::get_current_timestamp();
    // Beyond the 60 s of clock skew the verification allows.
    let expired = keys.sign(&claims(now - 3600, json!({})));
    let other_client = keys.sign(&claims(now + 600, json!({"client_id": "someone-else"})));
    let refresh = keys.sign(&claims(now + 600, json!({"token_use": "refresh"})));
    // An ID token of the same pool and client: the HTTP API's routes require a scope that
    // only access tokens carry, and the WebSocket API refuses what the HTTP API refuses.
    let id_token = keys.sign(&claims(
        now + 600,
        json!({"token_use": "id", "aud": DEV_CLIENT_ID, "client_id": null, "scope": null}),
    ));
    let unscoped = keys.sign(&claims(now + 600, json!({"scope": "openid"})));
    let foreign = stranger.token_for(&andrew);
    let mut tampered = keys.token_for(&andrew);
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let authorizer = authorizer(&table, keys.jwks());
    for (case, token) in [
        ("expired", expired),
        ("another app client", other_client),
        ("a refresh token", refresh),
        ("an ID token", id_token),
        ("an access token without the routes' scope", unscoped),
        ("signed by another key", foreign),
        ("tampered", tampered),
        ("not a JWT", "not.a.jwt".to_owned()),
    ] {
        let outcome = authorizer.authorize(&connect_attempt(&token)).await;
        assert!(
            matches!(outcome, Err(AuthorizerError::Unauthorized)),
            "{case}: {outcome:?}"
        );
    }
    // API Gateway answers 401 for exactly this message.
    assert_eq!(AuthorizerError::Unauthorized.to_string(), "Unauthorized");

    let no_token: ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(event_json("ws-authorizer-no-token.json")).unwrap();
    assert!(matches!(
        authorizer.authorize(&no_token).await,
        Err(AuthorizerError::Unauthorized)
    ));
    // The sample token in the event file is a user pool's, not ours.
    let sample: ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(event_json("ws-authorizer.json")).unwrap();
    assert!(matches!(
        authorizer.authorize(&sample).await,
        Err(AuthorizerError::Unauthorized)
    ));
}

#[tokio::test]
async fn a_good_token_of_someone_not_in_the_directory_is_denied() {
    let table = TestTable::new().await;
    let keys = Keys::new();
    let now = jsonwebtoken::get_current_timestamp();
    let token = keys.sign(&json!({
        "sub": "not-registered", "iss": DEV_ISSUER, "client_id": DEV_CLIENT_ID,
        "token_use": "access", "scope": REQUIRED_SCOPE, "exp": now + 600,
    }));
    let response = authorizer(&table, keys.jwks())
        .authorize(&connect_attempt(&token))
        .await
        .unwrap();
    assert!(!allows(&response));
    assert_eq!(
        response.policy_document.statement[0].effect,
        IamPolicyEffect::Deny
    );
    assert!(response.context.is_empty());
}

/// A user pool's key set that gains a key after the first fetch, counting fetches.
struct RotatingKeys {
    before: JwkSet,
    after: JwkSet,
    fetches: AtomicUsize,
}

impl KeySource for RotatingKeys {
    fn fetch(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<JwkSet, KeysUnavailable>> + Send + '_>> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst);
        let keys = if n == 0 {
            self.before.clone()
        } else {
            self.after.clone()
        };
        Box::pin(async move { Ok(keys) })
    }
}

#[tokio::test]
async fn the_key_set_is_fetched_once_and_again_on_an_unknown_key() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (old, new) = (Keys::new(), Keys::new());
    let mut both = old.jwks();
    both.keys.extend(new.jwks().keys);
    let source = Arc::new(RotatingKeys {
        before: old.jwks(),
        after: both,
        fetches: AtomicUsize::new(0),
    });
    let verifier = JwtVerifier::new(source.clone(), DEV_ISSUER, DEV_CLIENT_ID)
        .with_min_refetch(Duration::ZERO);
    let authorizer = WsAuthorizer::new(Arc::new(verifier), directory(&table));

    for _ in 0..3 {
        let response = authorizer
            .authorize(&connect_attempt(&old.token_for(&andrew)))
            .await
            .unwrap();
        assert!(allows(&response));
    }
    assert_eq!(
        source.fetches.load(Ordering::SeqCst),
        1,
        "once per environment"
    );
    // The pool rotated: a token signed with the new key makes the verifier fetch again.
    let response = authorizer
        .authorize(&connect_attempt(&new.token_for(&andrew)))
        .await
        .unwrap();
    assert!(allows(&response));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unknown_keys_do_not_refetch_more_than_once_per_interval() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (ours, forged) = (Keys::new(), Keys::new());
    let source = Arc::new(RotatingKeys {
        before: ours.jwks(),
        after: ours.jwks(),
        fetches: AtomicUsize::new(0),
    });
    let verifier = JwtVerifier::new(source.clone(), DEV_ISSUER, DEV_CLIENT_ID);
    let authorizer = WsAuthorizer::new(Arc::new(verifier), directory(&table));
    for _ in 0..5 {
        assert!(matches!(
            authorizer
                .authorize(&connect_attempt(&forged.token_for(&andrew)))
                .await,
            Err(AuthorizerError::Unauthorized)
        ));
    }
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
}

struct Unreachable;

impl KeySource for Unreachable {
    fn fetch(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<JwkSet, KeysUnavailable>> + Send + '_>> {
        Box::pin(async { Err(KeysUnavailable("connection refused".into())) })
    }
}

#[tokio::test]
async fn unreachable_keys_are_a_failure_not_a_verdict() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let keys = Keys::new();
    let verifier = JwtVerifier::new(Arc::new(Unreachable), DEV_ISSUER, DEV_CLIENT_ID);
    let authorizer = WsAuthorizer::new(Arc::new(verifier), directory(&table));
    let outcome = authorizer
        .authorize(&connect_attempt(&keys.token_for(&andrew)))
        .await;
    // Not "Unauthorized": API Gateway answers 500 and the client may retry.
    assert!(
        matches!(outcome, Err(AuthorizerError::Failed(_))),
        "{outcome:?}"
    );
}

/// A key set served once; every later fetch finds the server unreachable.
struct ServedOnce {
    keys: JwkSet,
    fetches: AtomicUsize,
}

impl KeySource for ServedOnce {
    fn fetch(&self) -> KeysFuture<'_> {
        let first = self.fetches.fetch_add(1, Ordering::SeqCst) == 0;
        let keys = self.keys.clone();
        Box::pin(async move {
            first
                .then_some(keys)
                .ok_or_else(|| KeysUnavailable("connection refused".into()))
        })
    }
}

#[tokio::test]
async fn a_failed_refetch_is_a_failure_and_waits_its_interval_like_any_fetch() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (ours, rotated) = (Keys::new(), Keys::new());
    let source = Arc::new(ServedOnce {
        keys: ours.jwks(),
        fetches: AtomicUsize::new(0),
    });
    let clock = ManualClock::new();
    let verifier =
        JwtVerifier::new(source.clone(), DEV_ISSUER, DEV_CLIENT_ID).with_clock(clock.clone());
    let authorizer = WsAuthorizer::new(Arc::new(verifier), directory(&table));
    let connect = |keys: &Keys| connect_attempt(&keys.token_for(&andrew));

    assert!(allows(
        &authorizer.authorize(&connect(&ours)).await.unwrap()
    ));
    clock.advance(JwtVerifier::MIN_REFETCH);
    let outcome = authorizer.authorize(&connect(&rotated)).await;
    assert!(
        matches!(outcome, Err(AuthorizerError::Failed(_))),
        "{outcome:?}"
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    // The key set fetched before still serves; the unreachable server is not asked again
    // within the interval, whatever `kid`s arrive.
    assert!(allows(
        &authorizer.authorize(&connect(&ours)).await.unwrap()
    ));
    clock.advance(JwtVerifier::MIN_REFETCH - Duration::from_secs(1));
    assert!(matches!(
        authorizer.authorize(&connect(&rotated)).await,
        Err(AuthorizerError::Unauthorized)
    ));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        authorizer.authorize(&connect(&rotated)).await,
        Err(AuthorizerError::Failed(_))
    ));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 3);
}

fn route_event(name: &str, user: Option<&User>) -> WebSocketEvent {
    let mut event = event_json(name);
    match user {
        Some(user) => {
            event["requestContext"]["authorizer"]["user_uuid"] = json!(user.uuid.to_string());
            event["requestContext"]["authorizer"]["principalId"] = json!(user.uuid.to_string());
        }
        None => {
            event["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authorizer");
        }
    }
    serde_json::from_value(event).unwrap()
}

async fn connection_items(table: &TestTable, user: &User) -> Vec<Value> {
    table
        .store
        .scan_all()
        .await
        .unwrap()
        .into_iter()
        .map(|item| serde_dynamo::from_item::<_, Value>(item).unwrap())
        .filter(|item| item["pk"] == keys::connections_pk(user.uuid))
        .collect()
}

#[tokio::test]
async fn connect_records_the_connection_and_disconnect_forgets_it() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let connections = WsConnections::new(table.store.clone());

    let connect = route_event("ws-connect.json", Some(&andrew));
    let response = connections.connect(&connect).await.unwrap();
    assert_eq!(response.status_code, 200);
    // The item, and presence on the profile.
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [("PutItem".to_owned(), 1), ("UpdateItem".to_owned(), 1)]
    );
    let items = connection_items(&table, &andrew).await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["sk"], "CXuKzeB9oAMCJdw=", "the event's connectionId");
    assert_eq!(item["connected_at"], "2026-11-22T10:15:00.000000+00:00");
    // The token's exp (an hour after connectedAt) comes before API Gateway's 2 h maximum:
    // the connection ends with its token (the TTL attribute, and what the push checks).
    assert_eq!(item["expires_at"], json!(1_795_346_100));

    table.requests.reset();
    let disconnect = route_event("ws-disconnect.json", Some(&andrew));
    let response = connections.disconnect(&disconnect).await.unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(
        table.requests.snapshot().into_iter().collect::<Vec<_>>(),
        [("DeleteItem".to_owned(), 1), ("UpdateItem".to_owned(), 1)]
    );
    assert!(connection_items(&table, &andrew).await.is_empty());
    // A second $disconnect (or one after a 410 cleaned up) is harmless.
    assert_eq!(
        connections
            .disconnect(&disconnect)
            .await
            .unwrap()
            .status_code,
        200
    );
}

#[tokio::test]
async fn a_route_without_the_authorizers_context_records_nothing() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let connections = WsConnections::new(table.store.clone());
    let response = connections
        .connect(&route_event("ws-connect.json", None))
        .await
        .unwrap();
    assert_eq!(response.status_code, 403, "refused: nobody vouches for it");
    let response = connections
        .disconnect(&route_event("ws-disconnect.json", None))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(table.requests.total(), 0, "nothing read or written");
    assert!(connection_items(&table, &andrew).await.is_empty());
}

#[test]
fn the_event_files_parse_as_api_gateway_sends_them() {
    let connect: WebSocketEvent = serde_json::from_value(event_json("ws-connect.json")).unwrap();
    assert_eq!(connect.request_context.route_key, "$connect");
    assert_eq!(
        connect.request_context.authorizer["handle"],
        json!("andrewbrown")
    );
    let disconnect: WebSocketEvent =
        serde_json::from_value(event_json("ws-disconnect.json")).unwrap();
    assert_eq!(disconnect.request_context.route_key, "$disconnect");
    assert_eq!(
        disconnect.request_context.disconnect_status_code,
        Some(1001)
    );
}

/// `events/ws-connect.json` for `user`, with the authorizer's `exp` set to `exp` (absent:
/// removed, as from an authorizer deployed before it passed one on).
fn connect_with_exp(user: &User, exp: Option<Value>) -> WebSocketEvent {
    let mut event = event_json("ws-connect.json");
    let authorizer = &mut event["requestContext"]["authorizer"];
    authorizer["user_uuid"] = json!(user.uuid.to_string());
    match exp {
        Some(exp) => authorizer["exp"] = exp,
        None => {
            authorizer.as_object_mut().unwrap().remove("exp");
        }
    }
    serde_json::from_value(event).unwrap()
}

#[tokio::test]
async fn a_connection_expires_with_its_token_or_after_two_hours_whichever_comes_first() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let connections = WsConnections::new(table.store.clone());
    let connected_at = 1_795_342_500; // the event's connectedAt, in seconds
    for (case, exp, expected) in [
        (
            "a token expiring a minute after connecting",
            Some(json!("1795342560")),
            connected_at + 60,
        ),
        (
            "the same, as a number",
            Some(json!(1_795_342_560)),
            connected_at + 60,
        ),
        (
            "a token valid for a day",
            Some(json!("1795428900")),
            connected_at + 7200,
        ),
        ("no exp in the context", None, connected_at + 7200),
    ] {
        let response = connections
            .connect(&connect_with_exp(&andrew, exp))
            .await
            .unwrap();
        assert_eq!(response.status_code, 200, "{case}");
        let items = connection_items(&table, &andrew).await;
        assert_eq!(items.len(), 1, "{case}");
        assert_eq!(items[0]["expires_at"], json!(expected), "{case}");
    }
}

/// `ws-connect`'s cap on a user's live connections, against the local Management API
/// stand-in: the connection beyond the cap is accepted and the oldest closed.
mod connection_cap {
    use functions::push::local_management_client;
    use local::websocket::OpenConnections;

    use super::*;

    /// `$connect` of `user`'s connection `id`, opened `seconds_ago`, its token valid for an
    /// hour more.
    fn connect_event(user: &User, id: &str, seconds_ago: i64) -> WebSocketEvent {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut event = event_json("ws-connect.json");
        let context = &mut event["requestContext"];
        context["connectionId"] = json!(id);
        context["connectedAt"] = json!((now - seconds_ago) * 1000);
        context["authorizer"]["user_uuid"] = json!(user.uuid.to_string());
        context["authorizer"]["exp"] = json!((now + 3600).to_string());
        serde_json::from_value(event).unwrap()
    }

    #[tokio::test]
    async fn the_connection_past_the_cap_is_accepted_and_the_oldest_closed() {
        let table = TestTable::new().await;
        let andrew = table.user("andrewbrown").await;
        let bayko = table.user("bayko").await;
        let open = OpenConnections::default();
        let management = local_management_client(&management_api(open.clone()).await);
        let connections = WsConnections::new(table.store.clone()).with_cap(3, management);

        // An expired item (its $disconnect lost) is not a live connection: it neither
        // counts nor is closed here (the push closes it).
        let mut expired = connect_event(&andrew, "expired", 3 * 3600);
        expired.request_context.authorizer.remove("exp");
        WsConnections::new(table.store.clone())
            .connect(&expired)
            .await
            .unwrap();
        let mut sockets = Vec::new();
        for (id, seconds_ago) in [("oldest", 30), ("older", 20), ("old", 10)] {
            sockets.push(open.open(id));
            let answer = connections
                .connect(&connect_event(&andrew, id, seconds_ago))
                .await
                .unwrap();
            assert_eq!(answer.status_code, 200);
        }
        open.open("bayko's");
        connections
            .connect(&connect_event(&bayko, "bayko's", 40))
            .await
            .unwrap();
        assert!(open.is_open("oldest"), "three is the cap, not over it");

        table.requests.reset();
        open.open("newest");
        let answer = connections
            .connect(&connect_event(&andrew, "newest", 0))
            .await
            .unwrap();
        assert_eq!(answer.status_code, 200, "the connection past the cap opens");
        assert_eq!(
            table.requests.snapshot().into_iter().collect::<Vec<_>>(),
            [
                ("DeleteItem".to_owned(), 1),
                ("PutItem".to_owned(), 1),
                ("Query".to_owned(), 1),
                ("UpdateItem".to_owned(), 1)
            ]
        );
        assert!(!open.is_open("oldest"), "closed by DeleteConnection");
        assert!(
            sockets[0].recv().await.is_none(),
            "its frames end: the socket closed"
        );
        for id in ["older", "old", "newest", "bayko's"] {
            assert!(open.is_open(id), "{id}");
        }
        let mut left: Vec<String> = connection_items(&table, &andrew)
            .await
            .iter()
            .map(|item| item["sk"].as_str().unwrap().to_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["expired", "newest", "old", "older"]);

        // One already gone (410) is forgotten all the same.
        WsConnections::new(table.store.clone())
            .connect(&connect_event(&andrew, "ghost", 60))
            .await
            .unwrap();
        open.open("latest");
        connections
            .connect(&connect_event(&andrew, "latest", 0))
            .await
            .unwrap();
        let mut left: Vec<String> = connection_items(&table, &andrew)
            .await
            .iter()
            .map(|item| item["sk"].as_str().unwrap().to_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["expired", "latest", "newest", "old"]);
        assert!(open.is_open("old") && !open.is_open("older"));
    }
}
