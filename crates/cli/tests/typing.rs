//! End to end through `cruddur dev` (a process): typing over the WebSocket API reaches
//! exactly the other member of the conversation; an outsider gets nothing, and the
//! outsider's own typing gets an error frame. `cruddur typing` does the same from the
//! command line.
//!
//! "Gets nothing" is shown without waiting for a silence: each socket then sends a frame
//! the stack refuses, and the first frame it gets must be that refusal (frames to one
//! connection arrive in the order they were posted).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use local::auth::DevSigner;
use serde_json::{Value, json};
use testkit::{TestTable, endpoint};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `cruddur dev` on the test's table; killed (and reaped) on drop.
struct Stack {
    child: Child,
    base: String,
}

fn cruddur(table: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cruddur"));
    command
        .args(["--endpoint-url", &endpoint(), "--table", table])
        .env_remove(local::auth::DEV_KEY_FILE_ENV);
    command
}

impl Stack {
    fn start(table: &str, dir: &std::path::Path) -> Self {
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
        // One line when it listens; reading it blocks until then (or until it dies).
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(WAIT)
            .expect("the stack says it is ready");
        let base = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self { child, base }
    }

    fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replace("http://", "ws://"))
    }

    async fn connect(&self, token: &str) -> Socket {
        tokio_tungstenite::connect_async(format!("{}?token={token}", self.ws_url()))
            .await
            .expect("the WebSocket API accepts a good token")
            .0
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}

/// Sends a frame the stack refuses and returns the first frame that comes back: the refusal,
/// if nothing else had been posted to this connection before it.
async fn first_frame_after_a_probe(socket: &mut Socket) -> Value {
    send(socket, json!({"action": "probe-nothing-else-came"})).await;
    next_frame(socket).await
}

fn action_unknown(frame: &Value) -> bool {
    frame["type"] == "error" && frame["code"] == "action_unknown"
}

#[tokio::test]
async fn typing_reaches_exactly_the_other_member_and_an_outsiders_typing_is_refused() {
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
    let dir = std::env::temp_dir().join(format!("cruddur-typing-{}", uuid::Uuid::new_v4()));
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
    let stack = Stack::start(table.store.table(), &dir);
    let mut andrew_socket = stack.connect(&token(&andrew)).await;
    let mut bayko_socket = stack.connect(&token(&bayko)).await;
    let mut londo_socket = stack.connect(&token(&londo)).await;

    send(
        &mut andrew_socket,
        json!({"action": "typing", "message_group_uuid": group}),
    )
    .await;
    assert_eq!(
        next_frame(&mut bayko_socket).await,
        json!({
            "type": "typing",
            "message_group_uuid": group,
            "handle": "andrewbrown",
            "display_name": andrew.display_name.to_string(),
        })
    );

    // The outsider types in the conversation: refused, and told so.
    send(
        &mut londo_socket,
        json!({"action": "typing", "message_group_uuid": group}),
    )
    .await;
    let refused = next_frame(&mut londo_socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "message_group_not_found", "{refused}");
    // …which was the first frame the outsider got: Andrew's typing never reached them.
    // Neither the sender nor Bayko got anything more (Londo's typing included).
    for socket in [&mut londo_socket, &mut andrew_socket, &mut bayko_socket] {
        let first = first_frame_after_a_probe(socket).await;
        assert!(action_unknown(&first), "{first}");
    }
    // Not JSON at all: `$default`'s error frame.
    andrew_socket.send(Message::text("typing…")).await.unwrap();
    assert_eq!(next_frame(&mut andrew_socket).await["code"], "json_invalid");

    // The command line: Bayko types; Andrew sees it. Londo's command is refused.
    let key_file = dir.join("key.pk8");
    let typed = cruddur(table.store.table())
        .args([
            "typing",
            "--as",
            "bayko",
            &group.to_string(),
            "--url",
            &stack.ws_url(),
        ])
        .arg("--key-file")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        typed.status.success(),
        "{}",
        String::from_utf8_lossy(&typed.stderr)
    );
    let seen = next_frame(&mut andrew_socket).await;
    assert_eq!(
        (seen["type"].as_str(), seen["handle"].as_str()),
        (Some("typing"), Some("bayko"))
    );
    let outsider = cruddur(table.store.table())
        .args([
            "typing",
            "--as",
            "londo",
            &group.to_string(),
            "--url",
            &stack.ws_url(),
        ])
        .arg("--key-file")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(!outsider.status.success());
    assert!(
        String::from_utf8_lossy(&outsider.stderr).contains("message_group_not_found"),
        "{}",
        String::from_utf8_lossy(&outsider.stderr)
    );
    let first = first_frame_after_a_probe(&mut bayko_socket).await;
    assert!(
        action_unknown(&first),
        "Londo's typing reached Bayko: {first}"
    );
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
}
