//! End to end: `cruddur dev --like-aws` as a process, with DynamoDB's throttling,
//! transaction conflicts and lagging index played at high rates. A run of sends (direct
//! and group), reads, marks read, group changes and pushes to clients that follow the
//! push's client rule (re-fetch after each open, reconnect when closed, every message once
//! by `uuid`) still converges: every inbox row follows its conversation's newest message,
//! no client misses a message, and no request is answered 500.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use local::auth::DevSigner;
use messaging::store::Item;
use serde_json::{Value, json};
use testkit::{TestTable, endpoint};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// How long anything may take to converge.
const WAIT: Duration = Duration::from_secs(30);
/// A request answered 503 this many times in a row fails the test: busy is a moment, not a
/// state.
const MAX_BUSY_RETRIES: u32 = 10;
/// Every socket closes this long after it opened, so the clients reconnect (and re-fetch)
/// several times during the run.
const WS_MAX_DURATION_SECONDS: &str = "3";

/// `cruddur dev --like-aws` on the test's table; killed on drop if the test did not stop it.
struct Stack {
    child: Child,
    base: String,
}

impl Stack {
    fn start(table: &str, dir: &std::path::Path, log: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cruddur"))
            .args(["--endpoint-url", &endpoint(), "--table", table])
            .env_remove(local::auth::DEV_KEY_FILE_ENV)
            .env("CRUDDUR_LOG", "warn")
            .args(["dev", "--port", "0", "--like-aws"])
            // High enough that every behaviour shows within a short run.
            .args(["--like-aws-conflict-rate", "0.1"])
            .args(["--like-aws-throttle-rate", "0.03"])
            .args(["--like-aws-index-lag-rate", "0.5"])
            .args(["--like-aws-seed", "18"])
            .args(["--ws-max-duration", WS_MAX_DURATION_SECONDS])
            .arg("--key-file")
            .arg(dir.join("key.pk8"))
            .arg("--dead-letter-file")
            .arg(dir.join("dead-letter.jsonl"))
            .arg("--push-dead-letter-file")
            .arg(dir.join("push-dead-letter.jsonl"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start cruddur dev");
        // One line on stdout once it listens.
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(WAIT).expect("the stack is ready");
        let base = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self { child, base }
    }

    /// Ctrl-C, and the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the stack did not stop");
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

/// An HTTP client that behaves as a real one facing a busy service: a `503` is tried again
/// after its `Retry-After`; anything else 5xx fails the test.
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    requests: AtomicU64,
    busy: AtomicU64,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Http {
    fn new(base: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_owned(),
            requests: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        for _ in 0..=MAX_BUSY_RETRIES {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(format!("{}{path}", self.base))
                .header("authorization", format!("Bearer {token}"));
            if body.is_some() {
                request = request.header("content-type", "application/json");
            }
            let payload = body.as_ref().map(Value::to_string).unwrap_or_default();
            let response = self
                .client
                .request(request.body(Full::from(payload)).unwrap())
                .await
                .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
            self.requests.fetch_add(1, Ordering::SeqCst);
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(answer, json!(["service_busy"]), "{method} {path}");
                let wait = retry_after
                    .unwrap_or_else(|| panic!("{method} {path}: a 503 without Retry-After"));
                self.busy.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {answer}"
            );
            return Answer {
                status,
                body: answer,
            };
        }
        panic!("{method} {path}: still busy after {MAX_BUSY_RETRIES} retries");
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Answer {
        self.call(Method::POST, path, token, body).await
    }

    /// Sends `text` (to `to`: a handle or a conversation) and returns the created message.
    async fn send(&self, token: &str, to: To<'_>, text: &str) -> Value {
        let body = match to {
            To::Handle(handle) => json!({"message": text, "handle": handle}),
            To::Conversation(group) => json!({"message": text, "message_group_uuid": group}),
        };
        let answer = self.post("/api/messages", token, Some(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }
}

#[derive(Clone, Copy)]
enum To<'a> {
    Handle(&'a str),
    Conversation(&'a str),
}

/// A client following the push's client rule (docs/ARCHITECTURE.md, "Real-time push"), as
/// `cruddur listen` does: after each open it re-fetches its inbox's conversations; when
/// the socket closes it reconnects; it takes every message once, by `uuid`.
struct Listener {
    handle: String,
    token: String,
    /// Every message taken, by uuid.
    taken: Mutex<HashSet<String>>,
    pushed: AtomicU64,
    refetched: AtomicU64,
    duplicates: AtomicU64,
    opens: AtomicU64,
}

impl Listener {
    fn new(handle: &str, token: String) -> Arc<Self> {
        Arc::new(Self {
            handle: handle.to_owned(),
            token,
            taken: Mutex::default(),
            pushed: AtomicU64::new(0),
            refetched: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            opens: AtomicU64::new(0),
        })
    }

    /// Takes `message` unless taken already; whether it was new.
    fn take(&self, message: &Value) -> bool {
        let uuid = message["uuid"].as_str().expect("a message has a uuid");
        let new = self.taken.lock().unwrap().insert(uuid.to_owned());
        if !new {
            self.duplicates.fetch_add(1, Ordering::SeqCst);
        }
        new
    }

    fn missing(&self, expected: &HashSet<String>) -> Vec<String> {
        let taken = self.taken.lock().unwrap();
        expected.difference(&taken).cloned().collect()
    }

    async fn run(self: Arc<Self>, http: Arc<Http>, mut stop: watch::Receiver<bool>) {
        let url = format!(
            "{}/ws?token={}",
            http.base.replace("http://", "ws://"),
            self.token
        );
        let mut failures = 0u32;
        while !*stop.borrow() {
            let mut socket = match tokio_tungstenite::connect_async(&url).await {
                Ok((socket, _)) => socket,
                Err(error) => {
                    // A throttled authorizer or $connect: the stack answers 500 on the
                    // upgrade, as API Gateway does when a route's function fails.
                    failures += 1;
                    assert!(failures < 20, "{}: cannot connect: {error}", self.handle);
                    tokio::time::sleep(Duration::from_millis(50 << failures.min(4))).await;
                    continue;
                }
            };
            failures = 0;
            self.opens.fetch_add(1, Ordering::SeqCst);
            // As a browser does: frames are taken while the re-fetch is under way.
            let catch_up = self.catch_up(&http);
            tokio::pin!(catch_up);
            let mut caught_up = false;
            loop {
                tokio::select! {
                    () = &mut catch_up, if !caught_up => caught_up = true,
                    _ = stop.changed() => {
                        let _ = socket.close(None).await;
                        return;
                    }
                    incoming = socket.next() => match incoming {
                        Some(Ok(Message::Text(text))) => {
                            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                            if frame["type"] == "message" && self.take(&frame) {
                                self.pushed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
        }
    }

    /// What was posted while no socket was open, read instead of pushed.
    async fn catch_up(&self, http: &Http) {
        let inbox = http.get("/api/message_groups", &self.token).await;
        assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
        for row in inbox.body.as_array().expect("the inbox is a list") {
            let group = row["uuid"].as_str().expect("a conversation uuid");
            let page = http
                .get(&format!("/api/messages/{group}"), &self.token)
                .await;
            if page.status == StatusCode::NOT_FOUND {
                // Left since the inbox was read.
                continue;
            }
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            for message in page.body.as_array().expect("a conversation is a list") {
                if self.take(message) {
                    self.refetched.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Who should have which message: per handle, the uuids of the messages sent while they
/// were a member of the conversation.
#[derive(Default)]
struct Expected(Mutex<HashMap<String, HashSet<String>>>);

impl Expected {
    fn sent(&self, message: &Value, members: &[&str]) {
        let uuid = message["uuid"].as_str().unwrap().to_owned();
        let mut expected = self.0.lock().unwrap();
        for member in members {
            expected
                .entry((*member).to_owned())
                .or_default()
                .insert(uuid.clone());
        }
    }

    fn of(&self, handle: &str) -> HashSet<String> {
        self.0
            .lock()
            .unwrap()
            .get(handle)
            .cloned()
            .unwrap_or_default()
    }

    fn total(&self) -> usize {
        let expected = self.0.lock().unwrap();
        expected.values().flatten().collect::<HashSet<_>>().len()
    }
}

/// Why the table's inbox rows do not follow their conversations' newest messages yet, if
/// they do not: every member has one row per conversation, at its newest message, and
/// nobody else has one.
fn inbox_disagreement(items: &[Item]) -> Option<String> {
    let text = |item: &Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let mut newest: HashMap<String, String> = HashMap::new();
    let mut members: HashMap<String, HashSet<String>> = HashMap::new();
    let mut rows: HashMap<(String, String), Vec<String>> = HashMap::new();
    for item in items {
        let (Some(pk), Some(sk)) = (text(item, "pk"), text(item, "sk")) else {
            continue;
        };
        if let Some(group) = pk.strip_prefix("MSG#") {
            let at = newest.entry(group.to_owned()).or_default();
            if sk > *at {
                *at = sk;
            }
        } else if let (Some(group), Some(user)) =
            (pk.strip_prefix("MBR#"), sk.strip_prefix("USER#"))
        {
            members
                .entry(group.to_owned())
                .or_default()
                .insert(user.to_owned());
        } else if let Some(owner) = pk.strip_prefix("GRP#") {
            let group = text(item, "message_group_uuid").unwrap_or_default();
            let at = text(item, "last_message_at").unwrap_or(sk);
            rows.entry((group, owner.to_owned())).or_default().push(at);
        }
    }
    for (group, at) in &newest {
        for member in members.get(group).into_iter().flatten() {
            match rows
                .get(&(group.clone(), member.clone()))
                .map(Vec::as_slice)
            {
                Some([sk]) if sk == at => {}
                other => {
                    return Some(format!(
                        "{member}'s row of {group}: {other:?}, newest message {at}"
                    ));
                }
            }
        }
    }
    rows.keys()
        .find(|(group, owner)| !members.get(group).is_some_and(|m| m.contains(owner)))
        .map(|(group, owner)| format!("{owner} has a row of {group} without being a member"))
}

#[tokio::test]
async fn with_like_aws_sends_reads_group_changes_and_pushes_still_converge_without_a_500() {
    let table = TestTable::new().await;
    let handles = ["andrewbrown", "bayko", "londo", "mira", "zed"];
    let mut users = Vec::new();
    for handle in handles {
        users.push(table.user(handle).await);
    }
    let dir = std::env::temp_dir().join(format!("cruddur-like-aws-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let signer = DevSigner::load_or_create(&dir.join("key.pk8")).unwrap();
    let tokens: HashMap<&str, String> = users
        .iter()
        .map(|user| {
            let token = signer
                .mint(
                    &user.cognito_sub,
                    user.handle.as_str(),
                    Duration::from_secs(600),
                )
                .unwrap();
            (user.handle.as_str(), token)
        })
        .collect();
    let token = |handle: &str| tokens[handle].clone();
    let log = dir.join("stack.log");
    let mut stack = Stack::start(table.store.table(), &dir, &log);
    let startup = std::fs::read_to_string(&log).unwrap();
    assert!(
        startup.contains("--like-aws: transaction conflicts on 10% of writes")
            && startup.contains("close after 60 s idle and 3 s open"),
        "the behaviours that are on, with the idle timeout shortened and the maximum as set: {startup}"
    );
    let http = Arc::new(Http::new(&stack.base));
    let started = Instant::now();

    // Everyone listens from the start.
    let (stop, stopped) = watch::channel(false);
    let listeners: Vec<Arc<Listener>> = handles
        .iter()
        .map(|handle| Listener::new(handle, token(handle)))
        .collect();
    let listening: Vec<_> = listeners
        .iter()
        .map(|listener| tokio::spawn(listener.clone().run(http.clone(), stopped.clone())))
        .collect();
    let expected = Arc::new(Expected::default());

    // Phase 1: five direct conversations in a ring, each member writing in turn, the
    // reader listing the inbox after each message and marking the conversation read every
    // third; meanwhile a group of three is created and all three write to it.
    let direct = |phase: usize, messages: usize| {
        (0..handles.len())
            .map(|i| {
                let (a, b) = (handles[i], handles[(i + 1) % handles.len()]);
                let (http, expected) = (http.clone(), expected.clone());
                let (token_a, token_b) = (token(a), token(b));
                tokio::spawn(async move {
                    let mut group: Option<String> = None;
                    for n in 0..messages {
                        let (from, to, reader) = if n % 2 == 0 {
                            (&token_a, b, &token_b)
                        } else {
                            (&token_b, a, &token_a)
                        };
                        let target = match &group {
                            Some(group) => To::Conversation(group),
                            None => To::Handle(to),
                        };
                        let sent = http
                            .send(from, target, &format!("{a}/{b} phase {phase} #{n}"))
                            .await;
                        group = Some(sent["message_group_uuid"].as_str().unwrap().to_owned());
                        expected.sent(&sent, &[a, b]);
                        let inbox = http.get("/api/message_groups", reader).await;
                        assert_eq!(inbox.status, StatusCode::OK);
                        if n % 3 == 2 {
                            let group = group.as_deref().unwrap();
                            let read = http
                                .post(&format!("/api/message_groups/{group}/read"), reader, None)
                                .await;
                            assert_eq!(read.status, StatusCode::NO_CONTENT, "{}", read.body);
                        }
                    }
                })
            })
            .collect::<Vec<_>>()
    };
    let ring = direct(1, 6);
    let created = http
        .post(
            "/api/message_groups",
            &token("andrewbrown"),
            Some(json!({"name": "Like AWS", "handles": ["bayko", "londo"], "message": "Welcome"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let group = created.body["message_group_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_members = ["andrewbrown", "bayko", "londo"];
    expected.sent(&created.body, &first_members);
    let group_round = |members: &'static [&'static str], phase: usize| {
        members
            .iter()
            .map(|member| {
                let (http, expected, group) = (http.clone(), expected.clone(), group.clone());
                let token = token(member);
                tokio::spawn(async move {
                    for n in 0..2 {
                        let sent = http
                            .send(
                                &token,
                                To::Conversation(&group),
                                &format!("{member} phase {phase} #{n}"),
                            )
                            .await;
                        expected.sent(&sent, members);
                    }
                })
            })
            .collect::<Vec<_>>()
    };
    static PHASE_1_MEMBERS: [&str; 3] = ["andrewbrown", "bayko", "londo"];
    let writing = group_round(&PHASE_1_MEMBERS, 1);
    for task in ring.into_iter().chain(writing) {
        task.await.expect("phase 1");
    }

    // Phase 2: the group changes: Mira and Zed are added, Londo leaves.
    let added = http
        .post(
            &format!("/api/message_groups/{group}/members"),
            &token("andrewbrown"),
            Some(json!({"handles": ["mira", "zed"]})),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(
        added.body.as_array().map(Vec::len),
        Some(5),
        "{}",
        added.body
    );
    let left = http
        .post(
            &format!("/api/message_groups/{group}/leave"),
            &token("londo"),
            None,
        )
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.body);

    // Phase 3: the new members write with the rest, and the ring goes on.
    static PHASE_3_MEMBERS: [&str; 4] = ["andrewbrown", "bayko", "mira", "zed"];
    let ring = direct(3, 2);
    let writing = group_round(&PHASE_3_MEMBERS, 3);
    for task in ring.into_iter().chain(writing) {
        task.await.expect("phase 3");
    }
    let written = started.elapsed();

    // Every inbox row follows its conversation's newest message.
    let deadline = Instant::now() + WAIT;
    loop {
        let items = table.store.scan_all().await.unwrap();
        match inbox_disagreement(&items) {
            None => break,
            Some(why) => assert!(Instant::now() < deadline, "inboxes did not converge: {why}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No client misses a message: what was not pushed is re-fetched after a reconnection.
    let deadline = Instant::now() + WAIT;
    for listener in &listeners {
        let want = expected.of(&listener.handle);
        assert!(!want.is_empty());
        loop {
            let missing = listener.missing(&want);
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never got {missing:?}",
                listener.handle
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let converged = started.elapsed();

    // The behaviours were played, often enough to matter.
    let injected = http.get("/_dev/like-aws", "").await;
    assert_eq!(injected.status, StatusCode::OK);
    let count = |name: &str| {
        injected.body[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {}", injected.body))
    };
    assert!(count("transaction_conflicts") > 0, "{}", injected.body);
    assert!(count("item_in_transaction") > 0, "{}", injected.body);
    assert!(count("throttles") > 0, "{}", injected.body);
    assert!(count("lagged_index_reads") > 0, "{}", injected.body);
    // Nothing given up on: no batch of either consumer went to a dead-letter file.
    for file in ["dead-letter.jsonl", "push-dead-letter.jsonl"] {
        let letters = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(letters.is_empty(), "{file}: {letters}");
    }

    let _ = stop.send(true);
    for task in listening {
        task.await.expect("a listener");
    }
    let sum = |field: fn(&Listener) -> &AtomicU64| -> u64 {
        listeners
            .iter()
            .map(|l| field(l).load(Ordering::SeqCst))
            .sum()
    };
    eprintln!(
        "like-aws run: {} messages to {} clients written in {:.1} s, converged in {:.1} s; \
         {} HTTP requests, {} answered 503 and retried; {} frames taken as pushed, {} re-fetched \
         instead, {} duplicates dropped, {} (re)connections; played: {}",
        expected.total(),
        listeners.len(),
        written.as_secs_f64(),
        converged.as_secs_f64(),
        http.requests.load(Ordering::SeqCst),
        http.busy.load(Ordering::SeqCst),
        sum(|l| &l.pushed),
        sum(|l| &l.refetched),
        sum(|l| &l.duplicates),
        sum(|l| &l.opens),
        injected.body,
    );

    // Ctrl-C prints what was played.
    let status = stack.interrupt();
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("--like-aws played: "), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
