//! The WebSocket API stand-in keeps connections as API Gateway does: `PostToConnection`
//! answers 410 until `$connect` has returned (nothing is queued for later), sockets close
//! after the idle timeout and the maximum duration with close code 1001, and
//! `DeleteConnection` closes one; each close runs `$disconnect`. Against DynamoDB Local, with
//! `ws-authorizer`'s and `ws-connect`'s own code and a real WebSocket client.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use functions::directory::{Directory, SystemClock};
use functions::push::local_management_client;
use functions::websocket::{WsAuthorizer, WsConnections};
use futures_util::{SinkExt, StreamExt};
use local::auth::{Authorizer, DevSigner};
use local::websocket::{OpenConnections, WebSocketApi, WsTimeouts, router};
use messaging::{Store, User};
use testkit::TestTable;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(20);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The stand-in on a free port, its open connections, and a development key's tokens.
struct Stack {
    base: String,
    open: OpenConnections,
    signer: DevSigner,
    dir: std::path::PathBuf,
}

impl Stack {
    async fn start(table: &TestTable, connect_store: Store, timeouts: WsTimeouts) -> Self {
        let dir = std::env::temp_dir().join(format!("cruddur-ws-{}", uuid::Uuid::new_v4()));
        let signer = DevSigner::load_or_create(&dir.join("key.pk8")).unwrap();
        let authorizer = Authorizer::for_dev(&signer);
        let directory = Directory::new(table.store.clone(), Duration::ZERO, Arc::new(SystemClock));
        let open = OpenConnections::with_timeouts(timeouts);
        let api = WebSocketApi::new(
            WsAuthorizer::new(authorizer.verifier().clone(), directory),
            WsConnections::new(connect_store),
            open.clone(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // With each request's peer, as `cruddur dev` serves it (the Management API checks it).
        let app = router(api).into_make_service_with_connect_info::<local::websocket::Peer>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("127.0.0.1:{}", address.port()),
            open,
            signer,
            dir,
        }
    }

    fn token(&self, user: &User) -> String {
        self.signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    }

    async fn connect(&self, user: &User) -> Socket {
        let url = format!("ws://{}/ws?token={}", self.base, self.token(user));
        tokio_tungstenite::connect_async(url)
            .await
            .expect("the WebSocket API accepts a good token")
            .0
    }

    fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        local_management_client(&format!("http://{}", self.base))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Holds `ws-connect`'s `PutItem` of a connection item until released, telling the test the
/// connection's id: `$connect` is then running, and has not returned.
#[derive(Debug, Clone)]
struct HoldConnect {
    started: Arc<Mutex<mpsc::Sender<String>>>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl Intercept for HoldConnect {
    fn name(&self) -> &'static str {
        "HoldConnect"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let bytes = context.request().body().bytes().unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        if let Some(id) = body["Item"]["connection_id"]["S"].as_str() {
            self.started.lock().unwrap().send(id.to_owned()).unwrap();
            // Blocks this task only: the test runs on a multi-threaded runtime, and the
            // worker's other tasks move elsewhere meanwhile.
            tokio::task::block_in_place(|| {
                self.release
                    .lock()
                    .unwrap()
                    .recv_timeout(WAIT)
                    .expect("released")
            });
        }
        Ok(())
    }
}

async fn connection_item_count(table: &TestTable, user: &User) -> usize {
    table.store.connections_of(user.uuid).await.unwrap().len()
}

/// The close frame the server sends next, skipping data frames; fails after `WAIT`.
async fn close_frame(socket: &mut Socket) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("closed within the wait")
        {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
            Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_before_connect_returns_is_gone_and_never_delivered() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (started, started_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let hold = HoldConnect {
        started: Arc::new(Mutex::new(started)),
        release: Arc::new(Mutex::new(release_rx)),
    };
    let stack = Stack::start(&table, table.store_with(hold), WsTimeouts::default()).await;
    let url = format!("ws://{}/ws?token={}", stack.base, stack.token(&andrew));
    let connecting = tokio::spawn(tokio_tungstenite::connect_async(url));

    let id = tokio::task::spawn_blocking(move || started_rx.recv_timeout(WAIT).unwrap())
        .await
        .unwrap();
    let management = stack.management();
    let post = |text: &'static str| {
        management
            .post_to_connection()
            .connection_id(&id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(text))
            .send()
    };
    let early = post(r#"{"n":1}"#).await.unwrap_err().into_service_error();
    assert!(early.is_gone_exception(), "{early:?}");

    release.send(()).unwrap();
    let (mut socket, _) = connecting.await.unwrap().expect("connected");
    post(r#"{"n":2}"#)
        .await
        .expect("open once $connect returned");
    let first = tokio::time::timeout(WAIT, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        Message::text(r#"{"n":2}"#),
        "the post answered 410 was not queued"
    );
}

#[tokio::test]
async fn an_idle_socket_closes_with_1001_and_runs_disconnect() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let timeouts = WsTimeouts {
        idle: Duration::from_millis(500),
        max_duration: Duration::from_secs(60),
    };
    let stack = Stack::start(&table, table.store.clone(), timeouts).await;
    let started = Instant::now();
    let mut socket = stack.connect(&andrew).await;
    assert_eq!(connection_item_count(&table, &andrew).await, 1);

    let (code, reason) = close_frame(&mut socket).await;
    assert_eq!((code, reason.as_str()), (CloseCode::Away, "Going away"));
    assert!(started.elapsed() >= timeouts.idle);
    stack.open.wait_closed(WAIT).await;
    assert_eq!(
        connection_item_count(&table, &andrew).await,
        0,
        "$disconnect ran"
    );
}

#[tokio::test]
async fn traffic_keeps_a_socket_open_until_its_maximum_duration() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let timeouts = WsTimeouts {
        idle: Duration::from_millis(800),
        max_duration: Duration::from_millis(2500),
    };
    let stack = Stack::start(&table, table.store.clone(), timeouts).await;
    let started = Instant::now();
    let socket = stack.connect(&andrew).await;
    let (mut write, mut read) = socket.split();
    // The client talks every 200 ms: never idle, so only the maximum duration closes it.
    let talking = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(200));
        loop {
            every.tick().await;
            if write.send(Message::text("ping")).await.is_err() {
                return;
            }
        }
    });
    let (code, reason) = loop {
        match tokio::time::timeout(WAIT, read.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => break (frame.code, frame.reason.to_string()),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    talking.abort();
    assert_eq!((code, reason.as_str()), (CloseCode::Away, "Going away"));
    assert!(
        started.elapsed() >= timeouts.max_duration,
        "closed after {:?}, before its maximum duration: idle while talking?",
        started.elapsed()
    );
    stack.open.wait_closed(WAIT).await;
    assert_eq!(connection_item_count(&table, &andrew).await, 0);
}

#[tokio::test]
async fn delete_connection_closes_the_socket_and_runs_disconnect() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let stack = Stack::start(&table, table.store.clone(), WsTimeouts::default()).await;
    let mut socket = stack.connect(&andrew).await;
    let connections = table.store.connections_of(andrew.uuid).await.unwrap();
    assert_eq!(connections.len(), 1);

    stack
        .management()
        .delete_connection()
        .connection_id(&connections[0].connection_id)
        .send()
        .await
        .expect("DeleteConnection of an open connection");
    let (code, _) = close_frame(&mut socket).await;
    assert_eq!(code, CloseCode::Normal);
    stack.open.wait_closed(WAIT).await;
    assert_eq!(connection_item_count(&table, &andrew).await, 0);
}
