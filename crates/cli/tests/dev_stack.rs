//! End to end: `cruddur dev` as a process, over HTTP, with tokens, CORS and the stream pump.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use local::auth::DevSigner;
use serde_json::{Value, json};
use testkit::{TestTable, endpoint};

const WAIT: Duration = Duration::from_secs(20);

/// The stack as a child process; stopped (and reaped) on drop if the test did not.
struct Stack {
    child: Child,
    base: String,
}

/// `cruddur` on the test's table, with no development key configured from the environment
/// of whoever runs the tests.
fn cruddur(table: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cruddur"));
    command
        .args(["--endpoint-url", &endpoint(), "--table", table])
        .env_remove(local::auth::DEV_KEY_FILE_ENV);
    command
}

impl Stack {
    fn start(table: &str, key_file: &std::path::Path, dead_letters: &std::path::Path) -> Self {
        Self::start_with(table, key_file, dead_letters, &[])
    }

    /// [`Stack::start`] with more arguments for `cruddur dev`.
    fn start_with(
        table: &str,
        key_file: &std::path::Path,
        dead_letters: &std::path::Path,
        extra: &[&str],
    ) -> Self {
        let mut command = cruddur(table);
        command
            .args(["dev", "--port", "0"])
            .args(extra)
            .arg("--key-file")
            .arg(key_file)
            .arg("--dead-letter-file")
            .arg(dead_letters)
            .arg("--push-dead-letter-file")
            .arg(dead_letters.with_extension("push.jsonl"))
            .stderr(Stdio::null());
        Self::spawn(command)
    }

    /// Runs `command` (a `cruddur … dev --port 0`) and waits until it listens.
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("start cruddur dev");
        // The stack prints one line when it listens; reading it blocks until then (or
        // until the process dies, which closes stdout).
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

    /// Ctrl-C, as a developer would, and the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the stack did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Value,
}

impl Http {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let response = self
            .client
            .request(request.body(Full::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(
            Method::GET,
            path,
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await
    }

    async fn post(&self, token: &str, body: Value) -> Answer {
        self.call(
            Method::POST,
            "/api/messages",
            &[("authorization", &format!("Bearer {token}"))],
            Some(body),
        )
        .await
    }
}

#[tokio::test]
async fn the_local_stack_serves_the_api_and_moves_inboxes_through_the_stream() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let dir = std::env::temp_dir().join(format!("cruddur-dev-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let token = |user: &messaging::User| {
        signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let (andrew_token, bayko_token, londo_token) = (token(&andrew), token(&bayko), token(&londo));

    let mut stack = Stack::start(
        table.store.table(),
        &key_file,
        &dir.join("dead-letter.jsonl"),
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };

    // Andrew starts a conversation with Bayko, they write back and forth.
    let started = http
        .post(
            &andrew_token,
            json!({"message": "Bayko, is the local stack up?", "handle": "bayko"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let group = started.body["message_group_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = http
        .post(
            &bayko_token,
            json!({"message": "It is, stream and all.", "message_group_uuid": group}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let last = http
        .post(
            &andrew_token,
            json!({"message": "Then my inbox should say so.", "handle": "bayko"}),
        )
        .await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    assert_eq!(
        last.body["message_group_uuid"],
        json!(group),
        "the conversation is reused"
    );

    // The stream pump moves both inbox rows to the newest message.
    for token in [&bayko_token, &andrew_token] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let inbox = http.get("/api/message_groups", token).await;
            assert_eq!(inbox.status, StatusCode::OK);
            if inbox.body[0]["message"] == "Then my inbox should say so." {
                assert_eq!(inbox.body.as_array().unwrap().len(), 1);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "inbox never updated: {}",
                inbox.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let conversation = http
        .get(&format!("/api/messages/{group}"), &bayko_token)
        .await;
    assert_eq!(conversation.status, StatusCode::OK);
    assert_eq!(conversation.body.as_array().unwrap().len(), 3);

    // Londo cannot read or post into it.
    let read = http
        .get(&format!("/api/messages/{group}"), &londo_token)
        .await;
    assert_eq!(read.status, StatusCode::NOT_FOUND);
    assert_eq!(read.body, json!(["message_group_not_found"]));
    let post = http
        .post(
            &londo_token,
            json!({"message": "Let me in", "message_group_uuid": group}),
        )
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);

    // A group of the three: Londo answers the welcome; the pump moves every row, Bayko's
    // inbox counts both messages until Bayko opens the conversation.
    let bearer = |token: &str| format!("Bearer {token}");
    let created = http
        .call(
            Method::POST,
            "/api/message_groups",
            &[("authorization", &bearer(&andrew_token))],
            Some(json!({"name": "Bootcamp", "handles": ["bayko", "londo"], "message": "Welcome"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let bootcamp = created.body["message_group_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = http
        .post(
            &londo_token,
            json!({"message": "Glad to be here", "message_group_uuid": bootcamp}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let inbox = http.get("/api/message_groups", &bayko_token).await;
        if inbox.body[0]["message"] == "Glad to be here" {
            let item = &inbox.body[0];
            assert_eq!(item["uuid"], json!(bootcamp));
            assert_eq!(
                (&item["kind"], &item["display_name"], &item["handle"]),
                (&json!("group"), &json!("Bootcamp"), &json!("londo"))
            );
            assert_eq!(
                (&item["member_count"], &item["unread"]),
                (&json!(3), &json!(2))
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the group never reached the inbox: {}",
            inbox.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened = http
        .get(&format!("/api/messages/{bootcamp}"), &bayko_token)
        .await;
    assert_eq!(opened.body.as_array().unwrap().len(), 2);
    let inbox = http.get("/api/message_groups", &bayko_token).await;
    assert_eq!(inbox.body[0]["unread"], json!(0), "read by opening it");
    let members = http
        .get(
            &format!("/api/message_groups/{bootcamp}/members"),
            &londo_token,
        )
        .await;
    assert_eq!(
        members.body.as_array().unwrap().len(),
        3,
        "{}",
        members.body
    );
    let read = http
        .call(
            Method::POST,
            &format!("/api/message_groups/{bootcamp}/read"),
            &[("authorization", &bearer(&andrew_token))],
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::NO_CONTENT);
    let left = http
        .call(
            Method::POST,
            &format!("/api/message_groups/{bootcamp}/leave"),
            &[("authorization", &bearer(&londo_token))],
            None,
        )
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT);

    // Tokens: missing, forged, expired-looking garbage.
    for authorization in [None, Some("Bearer not.a.token"), Some("Basic YTpi")] {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("authorization", *a))
            .collect();
        let answer = http
            .call(Method::GET, "/api/message_groups", &headers, None)
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
    }
    let public = http
        .call(Method::GET, "/api/users/@Bayko/short", &[], None)
        .await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(public.body["uuid"], json!(bayko.uuid.to_string()));

    // CORS preflight for the React frontend; another origin gets no grant.
    let preflight = http
        .call(
            Method::OPTIONS,
            "/api/messages",
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
            None,
        )
        .await;
    assert!(preflight.status.is_success());
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let allowed_headers = preflight.headers["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    assert!(
        preflight.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let page = http
        .call(
            Method::GET,
            "/api/message_groups",
            &[
                ("origin", "http://localhost:3000"),
                ("authorization", &format!("Bearer {andrew_token}")),
            ],
            None,
        )
        .await;
    assert!(
        page.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-next-cursor")
    );
    let stranger = http
        .call(
            Method::OPTIONS,
            "/api/messages",
            &[
                ("origin", "http://evil.example"),
                ("access-control-request-method", "POST"),
            ],
            None,
        )
        .await;
    assert!(
        stranger
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );

    // Ctrl-C stops it cleanly.
    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until `path` holds a line with every one of `needles`, and returns it.
fn wait_for_line(path: &std::path::Path, needles: &[&str]) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|line| needles.iter().all(|needle| line.contains(needle)))
        {
            return line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line with {needles:?} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn tokens_work_from_any_directory_and_a_foreign_key_is_refused_with_the_reason() {
    let table = TestTable::new().await;
    table.user("andrewbrown").await;
    let dir = std::env::temp_dir().join(format!("cruddur-token-{}", uuid::Uuid::new_v4()));
    let (home, config, elsewhere) = (dir.join("home"), dir.join("config"), dir.join("elsewhere"));
    for folder in [&home, &elsewhere] {
        std::fs::create_dir_all(folder).unwrap();
    }
    let stack_log = dir.join("stack.log");
    let per_user = |command: &mut Command, config: &std::path::Path| {
        command.env("HOME", &home).env("XDG_CONFIG_HOME", config);
    };

    // The stack, with no --key-file: the per-user key, created on first run.
    let mut command = cruddur(table.store.table());
    command
        .current_dir(&dir)
        .args(["dev", "--port", "0", "--log-format", "json"])
        .arg("--dead-letter-file")
        .arg(dir.join("dead-letter.jsonl"))
        .stderr(std::fs::File::create(&stack_log).unwrap());
    per_user(&mut command, &config);
    let mut stack = Stack::spawn(command);
    let key_file = config.join("cruddur/dev-signing-key.pk8");
    assert!(
        key_file.exists(),
        "the key is per user, not in the stack's cwd"
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };

    // `cruddur token` from an unrelated directory: the stack's key, nothing created there.
    let token = |config: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        let mut command = cruddur(table.store.table());
        command
            .current_dir(&elsewhere)
            .args(["token", "andrewbrown", "--api-url", &stack.base])
            .args(extra);
        per_user(&mut command, config);
        command.output().expect("run cruddur token")
    };
    let minted = token(&config, &[]);
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let minted = String::from_utf8(minted.stdout).unwrap();
    let inbox = http.get("/api/message_groups", minted.trim()).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing was created in the working directory"
    );

    // No key where the user's configuration says: an error, and still no new key.
    let other_config = dir.join("other-config");
    let refused = token(&other_config, &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no development key at") && stderr.contains("cruddur dev"),
        "{stderr}"
    );
    assert!(!other_config.exists(), "no key was created");

    // Another key than the running stack's: refused before a useless token is printed.
    let foreign_file = dir.join("foreign.pk8");
    let foreign = DevSigner::load_or_create(&foreign_file).unwrap();
    let refused = token(&config, &["--key-file".as_ref(), foreign_file.as_os_str()]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("trusts development keys"), "{stderr}");

    // A token of that key anyway: API Gateway's bare 401, and the stack's log says why.
    let sub = table
        .store
        .user_by_handle(&messaging::validate::Handle::parse("andrewbrown").unwrap())
        .await
        .unwrap()
        .unwrap()
        .cognito_sub;
    let forged = foreign
        .mint(&sub, "andrewbrown", Duration::from_secs(600))
        .unwrap();
    let answer = http.get("/api/message_groups", &forged).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body, json!({"message": "Unauthorized"}));
    let line = wait_for_line(&stack_log, &["bearer token refused", foreign.key_id()]);
    assert!(line.contains("does not trust"), "{line}");
    assert!(line.contains(&key_file.display().to_string()), "{line}");

    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A WebSocket client of the stack.
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_ws(base: &str, token: &str) -> Socket {
    let url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket API accepts a good token")
        .0
}

/// The next text frame, as JSON; fails after `WAIT`.
async fn next_frame(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
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

/// `created` (a `POST /api/messages` answer) as a pushed frame.
fn frame_of(created: &Value) -> Value {
    let mut frame = created.clone();
    frame["type"] = json!("message");
    frame
}

#[tokio::test]
async fn members_connections_receive_each_new_message_and_nobody_else_does() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let dir = std::env::temp_dir().join(format!("cruddur-push-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let token = |user: &messaging::User| {
        signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let (andrew_token, bayko_token, londo_token) = (token(&andrew), token(&bayko), token(&londo));
    let mut stack = Stack::start(
        table.store.table(),
        &key_file,
        &dir.join("dead-letter.jsonl"),
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };

    // Refused with 401 before any upgrade: no token, an expired one, another issuer's key.
    let expired = {
        let pkcs8 = std::fs::read(&key_file).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = signer.jwks().keys[0].common.key_id.clone();
        let claims = json!({
            "sub": andrew.cognito_sub, "iss": local::auth::DEV_ISSUER,
            "client_id": local::auth::DEV_CLIENT_ID, "token_use": "access",
            "exp": jsonwebtoken::get_current_timestamp() - 3600,
        });
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
        )
        .unwrap()
    };
    let foreign = DevSigner::load_or_create(&dir.join("other.pk8"))
        .unwrap()
        .mint(&andrew.cognito_sub, "andrewbrown", Duration::from_secs(600))
        .unwrap();
    let ws = format!("{}/ws", stack.base.replace("http://", "ws://"));
    for (case, url) in [
        ("missing", ws.clone()),
        ("expired", format!("{ws}?token={expired}")),
        ("foreign", format!("{ws}?token={foreign}")),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{case}");
            }
            other => panic!("{case}: {:?}", other.map(|_| "connected")),
        }
    }

    // Andrew on two devices, Bayko on one, and Londo, who is in no conversation with them.
    let mut andrew_phone = connect_ws(&stack.base, &andrew_token).await;
    let mut andrew_laptop = connect_ws(&stack.base, &andrew_token).await;
    let mut bayko_socket = connect_ws(&stack.base, &bayko_token).await;
    let mut londo_socket = connect_ws(&stack.base, &londo_token).await;
    assert_eq!(
        table.store.connections_of(andrew.uuid).await.unwrap().len(),
        2
    );

    let hello = http
        .post(
            &andrew_token,
            json!({"message": "Bayko, can you hear me?", "handle": "bayko"}),
        )
        .await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.body);
    let reply = http
        .post(
            &bayko_token,
            json!({"message": "Loud and clear.", "message_group_uuid": hello.body["message_group_uuid"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Every member's every connection, the sender's own included, in order.
    for socket in [&mut andrew_phone, &mut andrew_laptop, &mut bayko_socket] {
        assert_eq!(next_frame(socket).await, frame_of(&hello.body));
        assert_eq!(next_frame(socket).await, frame_of(&reply.body));
    }
    // Londo got nothing: the first frame he sees is the one sent to him afterwards (frames
    // reach a connection in the order they were posted to it).
    let to_londo = http
        .post(
            &bayko_token,
            json!({"message": "Londo, this one is yours.", "handle": "londo"}),
        )
        .await;
    assert_eq!(to_londo.status, StatusCode::OK, "{}", to_londo.body);
    assert_eq!(
        next_frame(&mut londo_socket).await,
        frame_of(&to_londo.body)
    );
    assert_eq!(
        next_frame(&mut bayko_socket).await,
        frame_of(&to_londo.body)
    );

    // Closing a socket runs $disconnect: its connection item goes.
    bayko_socket.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !table
        .store
        .connections_of(bayko.uuid)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bayko's connection item stayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Ctrl-C closes the open sockets (each runs $disconnect) and stops.
    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    assert!(
        table
            .store
            .connections_of(andrew.uuid)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        table
            .store
            .connections_of(londo.uuid)
            .await
            .unwrap()
            .is_empty()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The close frame the server sends next, skipping data frames (returned too); fails after
/// `WAIT`.
async fn close_frame(socket: &mut Socket) -> (u16, Vec<Value>) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("closed within the wait")
        {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frames),
            Some(Ok(Message::Text(text))) => {
                frames.push(serde_json::from_str(text.as_str()).unwrap())
            }
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn sockets_close_as_api_gateways_do_and_listen_reconnects_without_missing_or_repeating_a_message()
 {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    table.user("bayko").await;
    let dir = std::env::temp_dir().join(format!("cruddur-reconnect-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let andrew_token = signer
        .mint(&andrew.cognito_sub, "andrewbrown", Duration::from_secs(600))
        .unwrap();
    // Every socket closes a second after it opened, as API Gateway's do after two hours.
    let mut stack = Stack::start_with(
        table.store.table(),
        &key_file,
        &dir.join("dead-letter.jsonl"),
        &["--ws-max-duration", "1"],
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };

    let opened = std::time::Instant::now();
    let mut socket = connect_ws(&stack.base, &andrew_token).await;
    let (code, _) = close_frame(&mut socket).await;
    assert_eq!(code, 1001, "API Gateway's \"Going away\"");
    assert!(opened.elapsed() >= Duration::from_secs(1));

    // `cruddur listen bayko`, reconnecting every second, while Andrew writes to Bayko.
    let listen_log = dir.join("listen.log");
    let mut listen = cruddur(table.store.table())
        .args(["listen", "bayko", "--url"])
        .arg(format!("{}/ws", stack.base.replace("http://", "ws://")))
        .arg("--key-file")
        .arg(&key_file)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&listen_log).unwrap())
        .spawn()
        .expect("start cruddur listen");
    let stdout = listen.stdout.take().unwrap();
    let (lines, printed) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    wait_for_line(&listen_log, &["listening as bayko"]);

    let mut sent = Vec::new();
    for n in 0..12 {
        let answer = http
            .post(
                &andrew_token,
                json!({"message": format!("message {n}"), "handle": "bayko"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        sent.push(answer.body["uuid"].as_str().unwrap().to_owned());
        // Spread over three seconds: several reconnections happen in between.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while !sent.iter().all(|uuid| seen.contains(uuid)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = printed
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("not every message printed: {seen:?} of {sent:?}"));
        let frame: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(frame["type"], "message", "{line}");
        seen.push(frame["uuid"].as_str().unwrap().to_owned());
    }
    // One more reconnection, with its re-fetch, prints nothing again.
    let reconnections = |log: &str| log.matches("reconnected as bayko").count();
    let before = reconnections(&std::fs::read_to_string(&listen_log).unwrap());
    let deadline = std::time::Instant::now() + WAIT;
    while reconnections(&std::fs::read_to_string(&listen_log).unwrap()) <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "listen did not reconnect"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    while let Ok(line) = printed.recv_timeout(Duration::from_millis(300)) {
        let frame: Value = serde_json::from_str(&line).unwrap();
        seen.push(frame["uuid"].as_str().unwrap().to_owned());
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a message printed twice: {seen:?}"
    );
    assert_eq!(seen.len(), sent.len());
    let log = std::fs::read_to_string(&listen_log).unwrap();
    let refetched: usize = log
        .lines()
        .filter_map(|line| line.strip_prefix("re-fetched "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    eprintln!(
        "listen: {} reconnections, {refetched} of {} messages re-fetched rather than pushed",
        reconnections(&log),
        sent.len()
    );
    assert!(reconnections(&log) >= 2, "{log}");

    let _ = Command::new("kill")
        .args(["-INT", &listen.id().to_string()])
        .status();
    let _ = listen.wait();
    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_connection_ends_with_its_token() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let dir = std::env::temp_dir().join(format!("cruddur-token-end-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let token = |user: &messaging::User, valid: Duration| {
        signer
            .mint(&user.cognito_sub, user.handle.as_str(), valid)
            .unwrap()
    };
    let mut stack = Stack::start(
        table.store.table(),
        &key_file,
        &dir.join("dead-letter.jsonl"),
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };
    // Bayko's phone connects with a token valid for two more seconds, his laptop with one
    // valid for ten minutes.
    let short = token(&bayko, Duration::from_secs(2));
    let mut phone = connect_ws(&stack.base, &short).await;
    let mut laptop = connect_ws(&stack.base, &token(&bayko, Duration::from_secs(600))).await;
    let items = table.store.connections_of(bayko.uuid).await.unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let phone_item = items
        .iter()
        .min_by_key(|c| c.expires_at)
        .expect("two items")
        .clone();
    assert!(
        phone_item.expires_at <= now + 2,
        "the phone's item expires with its token: {phone_item:?}"
    );
    // Wait for the token's expiry (the clock is the condition), then a message to Bayko.
    let deadline = std::time::Instant::now() + WAIT;
    while time::OffsetDateTime::now_utc().unix_timestamp() <= phone_item.expires_at {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hello = http
        .post(
            &token(&andrew, Duration::from_secs(600)),
            json!({"message": "Bayko, still there?", "handle": "bayko"}),
        )
        .await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.body);

    assert_eq!(next_frame(&mut laptop).await, frame_of(&hello.body));
    // The phone gets no frame: the push closes it (DeleteConnection), and forgets it.
    let (code, frames) = close_frame(&mut phone).await;
    assert_eq!(code, 1000);
    assert!(frames.is_empty(), "{frames:?}");
    let deadline = std::time::Instant::now() + WAIT;
    while table
        .store
        .connections_of(bayko.uuid)
        .await
        .unwrap()
        .iter()
        .any(|c| c.connection_id == phone_item.connection_id)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired item stayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A fresh token connects again.
    let mut again = connect_ws(&stack.base, &token(&bayko, Duration::from_secs(600))).await;
    let reply = http
        .post(
            &token(&andrew, Duration::from_secs(600)),
            json!({"message": "Welcome back", "handle": "bayko"}),
        )
        .await;
    assert_eq!(next_frame(&mut again).await, frame_of(&reply.body));

    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A burst of sends by one user through `cruddur dev` meets `429 ["rate_limited"]` with
/// `Retry-After`, and what a client reads (the conversation, the inbox) holds every
/// accepted message and none of the refused one. A burst of 20, then 1 per second (windows
/// of 20 s holding 20, set by `cruddur dev`'s flags): a loaded machine sending slower than
/// the default 5 per second would never meet the default limit.
#[tokio::test]
async fn a_burst_of_sends_meets_the_rate_limit_and_the_refused_message_is_nowhere() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let dir = std::env::temp_dir().join(format!("cruddur-dev-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let token = |user: &messaging::User| {
        signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let (andrew_token, bayko_token) = (token(&andrew), token(&bayko));
    let mut stack = Stack::start_with(
        table.store.table(),
        &key_file,
        &dir.join("dead-letter.jsonl"),
        &[
            "--message-rate-burst",
            "20",
            "--message-rate-per-second",
            "1",
        ],
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };

    let started = std::time::Instant::now();
    let first = http
        .post(
            &andrew_token,
            json!({"message": "burst 0", "handle": "bayko"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let group = first.body["message_group_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut accepted = vec!["burst 0".to_owned()];
    let mut refused = None;
    for n in 1..200 {
        let text = format!("burst {n}");
        let answer = http
            .post(
                &andrew_token,
                json!({"message": text, "message_group_uuid": group}),
            )
            .await;
        match answer.status {
            StatusCode::OK => accepted.push(text),
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(answer.body, json!(["rate_limited"]));
                let retry_after: u64 = answer.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=20).contains(&retry_after), "{retry_after}");
                refused = Some(text);
                break;
            }
            other => panic!("{other}: {}", answer.body),
        }
    }
    let refused = refused.expect("a burst of 200 sends meets the limit");
    // The frontend's scripts may read the wait: Retry-After is exposed through CORS.
    let from_frontend = http
        .call(
            Method::GET,
            "/api/message_groups",
            &[
                ("authorization", &format!("Bearer {andrew_token}")),
                ("origin", "http://localhost:3000"),
            ],
            None,
        )
        .await;
    let exposed = from_frontend.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("retry-after"), "{exposed}");
    // The window that refused holds 20; the burst may have begun in the window before.
    let windows_touched = (started.elapsed().as_secs_f64() / 20.0).ceil() as usize + 1;
    assert!(
        (20..=20 * windows_touched).contains(&accepted.len()),
        "{} accepted over {windows_touched} windows",
        accepted.len()
    );

    // Both members read exactly the accepted messages, in order (every page, newest first).
    for reader in [&bayko_token, &andrew_token] {
        let mut texts: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/messages/{group}?limit=100&cursor={cursor}"),
                None => format!("/api/messages/{group}?limit=100"),
            };
            let page = http.get(&path, reader).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let mut older: Vec<String> = page
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|message| message["message"].as_str().unwrap().to_owned())
                .collect();
            older.append(&mut texts);
            texts = older;
            cursor = page
                .headers
                .get("x-next-cursor")
                .map(|value| value.to_str().unwrap().to_owned());
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(texts, accepted, "refused: {refused}");
    }
    // The inbox follows the last accepted message, never the refused one.
    let last = accepted.last().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let inbox = http.get("/api/message_groups", &bayko_token).await;
        assert_eq!(inbox.status, StatusCode::OK);
        assert_ne!(inbox.body[0]["message"], json!(refused));
        if inbox.body[0]["message"] == json!(last) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inbox never showed {last}: {}",
            inbox.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_block_refuses_sending_through_the_stack_until_it_is_lifted() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let dir = std::env::temp_dir().join(format!("cruddur-dev-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let token = |user: &messaging::User| {
        signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let (andrew_token, bayko_token) = (token(&andrew), token(&bayko));
    let mut stack = Stack::start(
        table.store.table(),
        &key_file,
        &dir.join("dead-letter.jsonl"),
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };
    let as_bayko = [("authorization", format!("Bearer {bayko_token}"))];
    let as_bayko: Vec<(&str, &str)> = as_bayko.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let hello = http
        .post(
            &andrew_token,
            json!({"message": "Hello", "handle": "bayko"}),
        )
        .await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.body);
    let group = hello.body["message_group_uuid"].clone();

    // Bayko blocks Andrew: Andrew's next message is refused, and the CLI lists the block.
    let blocked = http
        .call(
            Method::POST,
            "/api/users/@andrewbrown/block",
            &as_bayko,
            None,
        )
        .await;
    assert_eq!(blocked.status, StatusCode::NO_CONTENT, "{}", blocked.body);
    let refused = http
        .post(
            &andrew_token,
            json!({"message": "Still there?", "message_group_uuid": group}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.body, json!(["messaging_blocked"]));
    let listed = cruddur(table.store.table())
        .args(["users", "blocks", "--as", "bayko"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("andrewbrown"),
        "{listed:?}"
    );
    let list = http.get("/api/blocks", &bayko_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body[0]["handle"], "andrewbrown");

    // A browser may unblock: DELETE passes the CORS preflight.
    let preflight = http
        .call(
            Method::OPTIONS,
            "/api/users/@andrewbrown/block",
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "DELETE"),
                ("access-control-request-headers", "authorization"),
            ],
            None,
        )
        .await;
    assert!(preflight.status.is_success());
    assert!(
        preflight.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("DELETE")
    );
    let unblocked = http
        .call(
            Method::DELETE,
            "/api/users/@andrewbrown/block",
            &as_bayko,
            None,
        )
        .await;
    assert_eq!(
        unblocked.status,
        StatusCode::NO_CONTENT,
        "{}",
        unblocked.body
    );
    let sent = http
        .post(
            &andrew_token,
            json!({"message": "Still there?", "message_group_uuid": group}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);

    // The stream moves Bayko's row to it, as for any message.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let inbox = http.get("/api/message_groups", &bayko_token).await;
        assert_eq!(inbox.status, StatusCode::OK);
        if inbox.body[0]["message"] == "Still there?" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inbox never updated: {}",
            inbox.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 21, "seen by": a member's read reaches the other member's connections as a `read`
/// frame, through the stack's stream pump and push (their second filter), and nobody
/// else's; the sender's inbox then says `seen`, the members list `read_through`.
#[tokio::test]
async fn a_read_reaches_exactly_the_other_member_and_the_sender_sees_it() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let dir = std::env::temp_dir().join(format!("cruddur-reads-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("key.pk8");
    let signer = DevSigner::load_or_create(&key_file).unwrap();
    let token = |user: &messaging::User| {
        signer
            .mint(
                &user.cognito_sub,
                user.handle.as_str(),
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let (andrew_token, bayko_token, londo_token) = (token(&andrew), token(&bayko), token(&londo));
    let mut stack = Stack::start(
        table.store.table(),
        &key_file,
        &dir.join("dead-letter.jsonl"),
    );
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: stack.base.clone(),
    };
    let mut andrew_socket = connect_ws(&stack.base, &andrew_token).await;
    let mut bayko_socket = connect_ws(&stack.base, &bayko_token).await;
    let mut londo_socket = connect_ws(&stack.base, &londo_token).await;

    let hello = http
        .post(
            &andrew_token,
            json!({"message": "Read me", "handle": "bayko"}),
        )
        .await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.body);
    let group = hello.body["message_group_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    for socket in [&mut andrew_socket, &mut bayko_socket] {
        assert_eq!(next_frame(socket).await, frame_of(&hello.body));
    }

    // Bayko opens the conversation: its newest page marks it read.
    let page = http
        .get(&format!("/api/messages/{group}"), &bayko_token)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let read = json!({
        "type": "read",
        "message_group_uuid": group,
        "handle": "bayko",
        "read_through": hello.body["created_at"],
    });
    assert_eq!(next_frame(&mut andrew_socket).await, read);
    let inbox = http.get("/api/message_groups", &andrew_token).await;
    assert_eq!(inbox.body[0]["seen"], true, "{}", inbox.body);
    let members = http
        .get(
            &format!("/api/message_groups/{group}/members"),
            &andrew_token,
        )
        .await;
    let bayko_member = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["handle"] == "bayko")
        .unwrap();
    assert_eq!(bayko_member["read_through"], hello.body["created_at"]);

    // Andrew answers and Bayko marks it read explicitly: one more read frame, to Andrew.
    let again = http
        .post(
            &andrew_token,
            json!({"message": "And this?", "message_group_uuid": group}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    for socket in [&mut andrew_socket, &mut bayko_socket] {
        assert_eq!(next_frame(socket).await, frame_of(&again.body));
    }
    // `POST …/read` reads as far as the inbox shows: wait for the stream to move Bayko's
    // row (the push may well be faster).
    let deadline = tokio::time::Instant::now() + WAIT;
    while http.get("/api/message_groups", &bayko_token).await.body[0]["created_at"]
        != again.body["created_at"]
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bayko's row never showed the answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let marked = http
        .call(
            Method::POST,
            &format!("/api/message_groups/{group}/read"),
            &[("authorization", &format!("Bearer {bayko_token}"))],
            None,
        )
        .await;
    assert_eq!(marked.status, StatusCode::NO_CONTENT, "{}", marked.body);
    let mut read_again = read.clone();
    read_again["read_through"] = again.body["created_at"].clone();
    assert_eq!(next_frame(&mut andrew_socket).await, read_again);

    // Neither Bayko (the reader) nor Londo (no member) got a read frame: the first frame
    // each sees next is the message sent to them now (frames reach a connection in the
    // order they were posted to it).
    let to_londo = http
        .post(
            &bayko_token,
            json!({"message": "Londo?", "handle": "londo"}),
        )
        .await;
    assert_eq!(to_londo.status, StatusCode::OK, "{}", to_londo.body);
    assert_eq!(
        next_frame(&mut bayko_socket).await,
        frame_of(&to_londo.body)
    );
    assert_eq!(
        next_frame(&mut londo_socket).await,
        frame_of(&to_londo.body)
    );

    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
