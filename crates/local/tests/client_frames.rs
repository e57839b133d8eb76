//! The stand-in routes a client's frames as API Gateway does with `RouteSelectionExpression:
//! $request.body.action`: to the route named by `action` with a MESSAGE event (its body, the
//! connection's authorizer context), else to `$default`, else API Gateway's own
//! `{"message": "Forbidden", …}` answer; a frame beyond API Gateway's 32 KB closes the socket
//! with 1009 and runs `$disconnect`. A two-way route's answer (its function's response body)
//! comes back to the client; a one-way route's is dropped. Against DynamoDB Local, with a real WebSocket client.

use std::sync::Arc;
use std::time::Duration;

use functions::directory::{Directory, SystemClock};
use functions::websocket::{WebSocketEvent, WsAuthorizer, WsConnections};
use futures_util::{SinkExt, StreamExt};
use local::auth::{Authorizer, DevSigner};
use local::websocket::{
    ActionAnswer, ActionHandler, ActionRoutes, OpenConnections, WebSocketApi, WsTimeouts, router,
};
use messaging::User;
use serde_json::Value;
use testkit::TestTable;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(20);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A route's function that hands each event to the test.
struct Recorder(mpsc::UnboundedSender<WebSocketEvent>);

impl ActionHandler for Recorder {
    fn handle<'a>(
        &'a self,
        event: &'a WebSocketEvent,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ActionAnswer> + Send + 'a>> {
        let _ = self.0.send(event.clone());
        Box::pin(async { Ok(None) })
    }
}

/// A route's function that hands each event to the test and answers with `answer`.
struct Answering {
    events: mpsc::UnboundedSender<WebSocketEvent>,
    answer: ActionAnswer,
}

impl ActionHandler for Answering {
    fn handle<'a>(
        &'a self,
        event: &'a WebSocketEvent,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ActionAnswer> + Send + 'a>> {
        let _ = self.events.send(event.clone());
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}

struct Stack {
    base: String,
    open: OpenConnections,
    signer: DevSigner,
    dir: std::path::PathBuf,
}

impl Stack {
    async fn start(table: &TestTable, actions: ActionRoutes) -> Self {
        let dir = std::env::temp_dir().join(format!("cruddur-frames-{}", uuid::Uuid::new_v4()));
        let signer = DevSigner::load_or_create(&dir.join("key.pk8")).unwrap();
        let authorizer = Authorizer::for_dev(&signer);
        let directory = Directory::new(table.store.clone(), Duration::ZERO, Arc::new(SystemClock));
        let open = OpenConnections::with_timeouts(WsTimeouts::default());
        let api = WebSocketApi::new(
            WsAuthorizer::new(authorizer.verifier().clone(), directory),
            WsConnections::new(table.store.clone()),
            open.clone(),
        )
        .with_actions(actions);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = router(api).into_make_service_with_connect_info::<local::websocket::Peer>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("127.0.0.1:{}", address.port()),
            open,
            signer,
            dir,
        }
    }

    async fn connect(&self, user: &User) -> Socket {
        let token = self
            .signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap();
        let url = format!("ws://{}/ws?token={token}", self.base);
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<WebSocketEvent>) -> WebSocketEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within the wait")
        .expect("the route is there")
}

async fn next_message(socket: &mut Socket) -> Message {
    tokio::time::timeout(WAIT, socket.next())
        .await
        .expect("a frame within the wait")
        .expect("open")
        .expect("readable")
}

#[tokio::test]
async fn frames_go_to_the_route_their_action_names_else_to_default() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (typing_tx, mut typing) = mpsc::unbounded_channel();
    let (default_tx, mut default) = mpsc::unbounded_channel();
    let stack = Stack::start(
        &table,
        ActionRoutes::default()
            .with("typing", Arc::new(Recorder(typing_tx)))
            .with("$default", Arc::new(Recorder(default_tx))),
    )
    .await;
    let mut socket = stack.connect(&andrew).await;

    let body = r#"{"action":"typing","message_group_uuid":"5ae290ed-55d1-47a0-bc6d-fe2bc2700399"}"#;
    socket.send(Message::text(body)).await.unwrap();
    let event = next_event(&mut typing).await;
    let context = &event.request_context;
    assert_eq!(
        (context.route_key.as_str(), context.event_type.as_str()),
        ("typing", "MESSAGE")
    );
    assert_eq!(event.body.as_deref(), Some(body));
    assert!(stack.open.is_open(&context.connection_id));
    // The authorizer's context, as `$connect` had it, display name included.
    assert_eq!(
        context.authorizer["user_uuid"],
        Value::from(andrew.uuid.to_string())
    );
    assert_eq!(context.authorizer["handle"], "andrewbrown");
    assert_eq!(
        context.authorizer["display_name"],
        Value::from(andrew.display_name.to_string())
    );

    for unrouted in [r#"{"action":"dance"}"#, "typing", r#"{"action":7}"#] {
        socket.send(Message::text(unrouted)).await.unwrap();
        let event = next_event(&mut default).await;
        assert_eq!(event.request_context.route_key, "$default", "{unrouted}");
        assert_eq!(event.body.as_deref(), Some(unrouted));
    }
    assert!(typing.try_recv().is_err(), "nothing else went to typing");
}

#[tokio::test]
async fn without_a_route_or_default_the_client_gets_api_gateways_forbidden() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (typing_tx, mut typing) = mpsc::unbounded_channel();
    let stack = Stack::start(
        &table,
        ActionRoutes::default().with("typing", Arc::new(Recorder(typing_tx))),
    )
    .await;
    let mut socket = stack.connect(&andrew).await;
    socket
        .send(Message::text(r#"{"action":"dance"}"#))
        .await
        .unwrap();
    let Message::Text(text) = next_message(&mut socket).await else {
        panic!("a text frame");
    };
    let answer: Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(answer["message"], "Forbidden");
    let connection = answer["connectionId"].as_str().unwrap();
    assert!(
        stack.open.is_open(connection),
        "the sender's own connection id"
    );
    assert!(answer["requestId"].is_string());
    assert!(typing.try_recv().is_err());
}

#[tokio::test]
async fn a_frame_beyond_32_kb_closes_the_socket_with_1009_and_runs_disconnect() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (default_tx, mut default) = mpsc::unbounded_channel();
    let stack = Stack::start(
        &table,
        ActionRoutes::default().with("$default", Arc::new(Recorder(default_tx))),
    )
    .await;
    let mut socket = stack.connect(&andrew).await;
    // Exactly 32 KB goes through.
    let fits = "x".repeat(32 * 1024);
    socket.send(Message::text(fits.clone())).await.unwrap();
    assert_eq!(
        next_event(&mut default).await.body.as_deref(),
        Some(fits.as_str())
    );

    socket
        .send(Message::text("x".repeat(32 * 1024 + 1)))
        .await
        .unwrap();
    let closed = loop {
        match next_message(&mut socket).await {
            Message::Close(Some(frame)) => break frame,
            Message::Close(None) => panic!("a close frame without a code"),
            _ => {}
        }
    };
    assert_eq!(closed.code, CloseCode::Size);
    assert_eq!(closed.reason.as_str(), "Message too big");
    stack.open.wait_closed(WAIT).await;
    assert!(
        table
            .store
            .connections_of(andrew.uuid)
            .await
            .unwrap()
            .is_empty(),
        "$disconnect ran"
    );
    assert!(
        default.try_recv().is_err(),
        "the large frame reached no route"
    );
}

#[tokio::test]
async fn a_two_way_routes_answer_comes_back_and_a_one_way_routes_does_not() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let (one_way_tx, mut one_way) = mpsc::unbounded_channel();
    let (two_way_tx, mut two_way) = mpsc::unbounded_channel();
    let (failing_tx, mut failing) = mpsc::unbounded_channel();
    let stack = Stack::start(
        &table,
        ActionRoutes::default()
            .with(
                "typing",
                Arc::new(Answering {
                    events: one_way_tx,
                    answer: Ok(Some(r#"{"type":"dropped"}"#.to_owned())),
                }),
            )
            .with_route_response(
                "presence",
                Arc::new(Answering {
                    events: two_way_tx,
                    answer: Ok(Some(r#"{"type":"presence","online":false}"#.to_owned())),
                }),
            )
            .with_route_response(
                "fails",
                Arc::new(Answering {
                    events: failing_tx,
                    answer: Err(()),
                }),
            ),
    )
    .await;
    let mut socket = stack.connect(&andrew).await;

    // The one-way route ran (its answer would be queued before anything sent later)…
    socket
        .send(Message::text(r#"{"action":"typing"}"#))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut one_way).await.request_context.route_key,
        "typing"
    );
    // …and the first frame the client gets is the two-way route's answer, as it was returned.
    socket
        .send(Message::text(r#"{"action":"presence"}"#))
        .await
        .unwrap();
    let Message::Text(text) = next_message(&mut socket).await else {
        panic!("a text frame");
    };
    assert_eq!(text.as_str(), r#"{"type":"presence","online":false}"#);
    assert_eq!(
        next_event(&mut two_way).await.request_context.route_key,
        "presence"
    );

    // A two-way route whose function fails: API Gateway's own answer.
    socket
        .send(Message::text(r#"{"action":"fails"}"#))
        .await
        .unwrap();
    let Message::Text(text) = next_message(&mut socket).await else {
        panic!("a text frame");
    };
    let answer: Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(answer["message"], "Internal server error");
    assert!(stack.open.is_open(answer["connectionId"].as_str().unwrap()));
    assert!(answer["requestId"].is_string());
    assert_eq!(
        next_event(&mut failing).await.request_context.route_key,
        "fails"
    );
    assert!(one_way.try_recv().is_err() && two_way.try_recv().is_err());
}
