//! End to end through `cruddur dev` (a process): presence over the WebSocket API's two-way
//! `presence` route, as the local stand-in serves it like API Gateway (the function's answer
//! comes back on the asking connection). Two members of a direct conversation and an
//! outsider: A asks and is answered that B is offline; B connects, A is told `online: true`;
//! B disconnects, A is told `online: false`; the outsider's ask is refused with the shared
//! error frame. `cruddur listen --presence` prints the answer and the changes.
//!
//! Every wait is on a frame or a line arriving, with a timeout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use local::auth::DevSigner;
use serde_json::{Value, json};
use testkit::{TestTable, endpoint};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cruddur(table: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cruddur"));
    command
        .args(["--endpoint-url", &endpoint(), "--table", table])
        .env_remove(local::auth::DEV_KEY_FILE_ENV);
    command
}

/// Each line a process prints on stdout, as it comes.
fn lines_of(child: &mut Child) -> std_mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// `cruddur dev` on the test's table, and its WebSocket URL.
fn start_stack(table: &str, dir: &std::path::Path) -> (Killed, String) {
    let mut child = cruddur(table)
        .args(["dev", "--port", "0", "--key-file"])
        .arg(dir.join("key.pk8"))
        .arg("--dead-letter-file")
        .arg(dir.join("dead-letter.jsonl"))
        .arg("--push-dead-letter-file")
        .arg(dir.join("push-dead-letter.jsonl"))
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start cruddur dev");
    let ready = lines_of(&mut child)
        .recv_timeout(WAIT)
        .expect("the stack says it is ready");
    let base = ready
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {ready:?}"))
        .to_owned();
    (
        Killed(child),
        format!("{}/ws", base.replace("http://", "ws://")),
    )
}

async fn connect(ws_url: &str, token: &str) -> Socket {
    tokio_tungstenite::connect_async(format!("{ws_url}?token={token}"))
        .await
        .expect("the WebSocket API accepts a good token")
        .0
}

/// The next text frame, as JSON; fails after `WAIT`.
async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame within the wait")
            .expect("the connection is open")
            .expect("a readable frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("frames are JSON");
        }
    }
}

async fn ask_presence(socket: &mut Socket, group: uuid::Uuid) {
    let ask = json!({"action": "presence", "message_group_uuid": group});
    socket.send(Message::text(ask.to_string())).await.unwrap();
}

/// The next line `listen` prints that is a presence frame.
fn next_presence_line(lines: &std_mpsc::Receiver<String>) -> Value {
    loop {
        let line = lines
            .recv_timeout(WAIT)
            .expect("listen prints a presence frame within the wait");
        if let Ok(frame) = serde_json::from_str::<Value>(&line)
            && frame["type"] == "presence"
        {
            return frame;
        }
    }
}

#[tokio::test]
async fn presence_is_answered_on_the_route_and_follows_the_partners_connection() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let group = table
        .store
        .send_to_user(
            &andrew,
            &bayko,
            messaging::validate::MessageText::parse("hi").unwrap(),
            messaging::Timestamp::now(),
        )
        .await
        .unwrap()
        .group_uuid;
    let dir = std::env::temp_dir().join(format!("cruddur-presence-{}", uuid::Uuid::new_v4()));
    let signer = DevSigner::load_or_create(&dir.join("key.pk8")).unwrap();
    let token = |user: &messaging::User| {
        signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let (stack, ws_url) = start_stack(table.store.table(), &dir);

    // A asks: answered on the route itself (two-way) with B's presence, never connected.
    let mut andrew_socket = connect(&ws_url, &token(&andrew)).await;
    ask_presence(&mut andrew_socket, group).await;
    assert_eq!(
        next_frame(&mut andrew_socket).await,
        json!({
            "type": "presence",
            "message_group_uuid": group,
            "handle": "bayko",
            "online": false,
        })
    );

    // B connects: A is told; B disconnects: A is told again, with when.
    let mut bayko_socket = connect(&ws_url, &token(&bayko)).await;
    let online = next_frame(&mut andrew_socket).await;
    assert_eq!(
        (
            online["type"].as_str(),
            online["handle"].as_str(),
            online["online"].as_bool()
        ),
        (Some("presence"), Some("bayko"), Some(true)),
        "{online}"
    );
    bayko_socket.close(None).await.unwrap();
    let offline = next_frame(&mut andrew_socket).await;
    assert_eq!(
        (offline["handle"].as_str(), offline["online"].as_bool()),
        (Some("bayko"), Some(false)),
        "{offline}"
    );
    assert!(offline["last_seen_at"].as_str() >= online["last_seen_at"].as_str());

    // The outsider asks about their conversation: the shared error frame, on the route.
    let mut londo_socket = connect(&ws_url, &token(&londo)).await;
    ask_presence(&mut londo_socket, group).await;
    let refused = next_frame(&mut londo_socket).await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["action"].as_str(),
            refused["code"].as_str()
        ),
        (
            Some("error"),
            Some("presence"),
            Some("message_group_not_found")
        ),
        "{refused}"
    );
    assert!(refused["message"].is_string());

    // The command line: `listen --presence` prints the answer, then B's next connect.
    let mut listen = cruddur(table.store.table())
        .args(["listen", "andrewbrown", "--presence", &group.to_string()])
        .args(["--url", &ws_url, "--key-file"])
        .arg(dir.join("key.pk8"))
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start cruddur listen");
    let lines = lines_of(&mut listen);
    let listen = Killed(listen);
    let answer = next_presence_line(&lines);
    assert_eq!(
        (answer["handle"].as_str(), answer["online"].as_bool()),
        (Some("bayko"), Some(false)),
        "{answer}"
    );
    let _bayko_again = connect(&ws_url, &token(&bayko)).await;
    let printed = next_presence_line(&lines);
    assert_eq!(
        (printed["handle"].as_str(), printed["online"].as_bool()),
        (Some("bayko"), Some(true)),
        "{printed}"
    );
    drop(listen);
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
}
