//! The local stack caps each user's live connections as the deployed `ws-connect` does: the
//! 11th `$connect` succeeds and closes the oldest through the stack's own Management API
//! (`DeleteConnection`, close code 1000), leaving ten connection items. `cruddur dev`'s
//! stack in this process, against DynamoDB Local, with a real WebSocket client.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use local::auth::DevSigner;
use local::dev::{DevOptions, TokenKeys};
use local::pump::PumpConfig;
use local::websocket::WsTimeouts;
use messaging::store::Limits;
use testkit::{TestTable, endpoint};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_connection_closes_the_first_and_leaves_ten() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let dir = std::env::temp_dir().join(format!("cruddur-cap-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = DevOptions {
        endpoint_url: endpoint(),
        table: table.store.table().to_owned(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        allowed_origins: Vec::new(),
        keys: TokenKeys::Dev(key_file),
        pump: PumpConfig {
            dead_letter_file: dir.join("dead-letter.jsonl"),
            ..PumpConfig::default()
        },
        push_pump: PumpConfig {
            dead_letter_file: dir.join("push-dead-letter.jsonl"),
            ..PumpConfig::push()
        },
        ws_timeouts: WsTimeouts::default(),
        like_aws: None,
        limits: Limits::defaults(),
        max_connections_per_user: 10,
    };
    let running = tokio::spawn(local::dev::run(
        options,
        move |address| {
            let _ = ready_tx.send(address);
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let address = tokio::time::timeout(WAIT, ready_rx).await.unwrap().unwrap();
    let url = |user: &messaging::User| {
        let token = signer
            .mint(&user.cognito_sub, user.handle.as_str(), WAIT * 30)
            .unwrap();
        format!("ws://{address}/ws?token={token}")
    };

    // Another user's connection is theirs: it neither counts nor closes.
    let (_bayko_socket, _) = tokio_tungstenite::connect_async(url(&bayko)).await.unwrap();
    let mut sockets = Vec::new();
    for _ in 0..11 {
        let (socket, _) = tokio_tungstenite::connect_async(url(&andrew))
            .await
            .expect("every $connect succeeds, the 11th too");
        sockets.push(socket);
    }

    let closed = loop {
        match tokio::time::timeout(WAIT, sockets[0].next())
            .await
            .expect("the first socket closes")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|frame| frame.code),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(closed, Some(CloseCode::Normal), "DeleteConnection's close");

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let items = table.store.connections_of(andrew.uuid).await.unwrap().len();
        if items == 10 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{items} connection items, not 10"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        table.store.connections_of(bayko.uuid).await.unwrap().len(),
        1
    );
    // The ten newest stay open: a frame-less moment on the second socket is not a close.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sockets[1].next())
            .await
            .is_err(),
        "the second socket stays open"
    );

    let _ = stop.send(());
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
