//! Real-time push: how soon a frame reaches a member after `POST /api/messages` answers,
//! through the whole local stack run in process (HTTP API, stream pump, `messaging-push`,
//! the Management API stand-in, WebSockets), whether anyone else gets it, whether anyone
//! gets it twice; and what a push costs in requests (the handler alone, requests counted).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_lambda_events::dynamodb::{Event, EventRecord};
use functions::push::{PushHandler, local_management_client};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use local::auth::DevSigner;
use local::dev::{DevOptions, TokenKeys};
use local::pump::PumpConfig;
use local::websocket::{OpenConnections, management_router};
use messaging::items::{MembershipItem, MessageItem};
use messaging::model::{Connection, Message, UserSummary};
use messaging::{Timestamp, User};
use serde_json::{Value, json};
use testkit::{TestTable, endpoint};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

pub async fn run(sends: usize) -> anyhow::Result<()> {
    latency(sends).await?;
    cost().await
}

/// A frame as a socket saw it.
struct Arrival {
    socket: usize,
    uuid: String,
    at: Instant,
}

/// `cruddur dev` in this process, over a table of the bench's DynamoDB Local.
pub(crate) struct LocalStack {
    pub(crate) address: SocketAddr,
    signer: DevSigner,
    dir: std::path::PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl LocalStack {
    pub(crate) async fn start(table: &TestTable) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("cruddur-bench-push-{}", Uuid::new_v4()));
        let key_file = dir.join("key.pk8");
        let signer = DevSigner::load_or_create(&key_file)?;
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
            ws_timeouts: local::websocket::WsTimeouts::default(),
            like_aws: None,
            // The bench measures the push; its senders are not to be rate limited.
            limits: messaging::store::Limits::NONE,
            max_connections_per_user: functions::limits::DEFAULT_MAX_CONNECTIONS_PER_USER,
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
        let address = tokio::time::timeout(WAIT, ready_rx).await??;
        Ok(Self {
            address,
            signer,
            dir,
            stop,
            running,
        })
    }

    pub(crate) fn token(&self, user: &User) -> anyhow::Result<String> {
        self.signer
            .mint(&user.cognito_sub, user.handle.as_str(), WAIT * 60)
    }

    /// Opens one socket per user; every text frame any of them receives arrives on the
    /// returned channel, named by the user's position in `users`.
    async fn listen(&self, users: &[&User]) -> anyhow::Result<mpsc::UnboundedReceiver<Arrival>> {
        let (arrivals_tx, arrivals) = mpsc::unbounded_channel::<Arrival>();
        for (socket, user) in users.iter().enumerate() {
            let url = format!("ws://{}/ws?token={}", self.address, self.token(user)?);
            let (mut stream, _) = tokio_tungstenite::connect_async(url).await?;
            let arrivals_tx = arrivals_tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let at = Instant::now();
                    if let WsMessage::Text(text) = message {
                        let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                        let uuid = frame["uuid"].as_str().unwrap_or_default().to_owned();
                        if arrivals_tx.send(Arrival { socket, uuid, at }).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        Ok(arrivals)
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.running.await??;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// Milliseconds from each `POST` response to the frame on the other member's socket and on
/// the sender's own, and what reached a non-member or arrived twice.
struct Latencies {
    to_recipient: Vec<f64>,
    to_sender: Vec<f64>,
    to_non_members: usize,
    duplicates: usize,
}

async fn latency(sends: usize) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let stack = LocalStack::start(&table).await?;
    // Sockets: 0 = Andrew, 1 = Bayko (the two members), 2 = Londo (not a member).
    let mut arrivals = stack.listen(&[&andrew, &bayko, &londo]).await?;
    let tokens = [
        stack.token(&andrew)?,
        stack.token(&bayko)?,
        stack.token(&londo)?,
    ];
    let measured = measure_latency(
        &format!("http://{}", stack.address),
        &tokens,
        sends,
        &mut arrivals,
    )
    .await?;
    stack.stop().await?;
    print_latency(sends, measured)
}

async fn measure_latency(
    base: &str,
    tokens: &[String; 3],
    sends: usize,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
) -> anyhow::Result<Latencies> {
    let http: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut seen: Vec<(usize, String)> = Vec::new();
    // The conversation, and a warm-up.
    let first = post(
        &http,
        base,
        &tokens[0],
        json!({"message": "warm-up", "handle": "bayko"}),
    )
    .await?;
    let group = first.body["message_group_uuid"]
        .as_str()
        .context("a conversation")?
        .to_owned();
    wait_for(&first.uuid, &[0, 1], arrivals, &mut seen).await?;

    let mut to_recipient = Vec::with_capacity(sends);
    let mut to_sender = Vec::with_capacity(sends);
    for i in 0..sends {
        let sender = i % 2;
        let recipient = 1 - sender;
        let created = post(
            &http,
            base,
            &tokens[sender],
            json!({"message": format!("message {i}"), "message_group_uuid": group}),
        )
        .await?;
        let arrived = wait_for(&created.uuid, &[0, 1], arrivals, &mut seen).await?;
        let after = |socket: usize| {
            arrived[&socket]
                .saturating_duration_since(created.answered_at)
                .as_secs_f64()
                * 1000.0
        };
        to_recipient.push(after(recipient));
        to_sender.push(after(sender));
    }
    // Londo's first frame must be this one; whatever he saw before was not his.
    let to_londo = post(
        &http,
        base,
        &tokens[1],
        json!({"message": "yours", "handle": "londo"}),
    )
    .await?;
    wait_for(&to_londo.uuid, &[1, 2], arrivals, &mut seen).await?;
    let to_non_members = seen
        .iter()
        .filter(|(socket, uuid)| *socket == 2 && *uuid != to_londo.uuid)
        .count();
    let mut counts: HashMap<&(usize, String), usize> = HashMap::new();
    for arrival in &seen {
        *counts.entry(arrival).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    to_recipient.sort_by(f64::total_cmp);
    to_sender.sort_by(f64::total_cmp);
    Ok(Latencies {
        to_recipient,
        to_sender,
        to_non_members,
        duplicates,
    })
}

fn print_latency(sends: usize, measured: Latencies) -> anyhow::Result<()> {
    let Latencies {
        to_recipient,
        to_sender,
        to_non_members,
        duplicates,
    } = measured;
    println!("## Real-time push (local stack)\n");
    println!(
        "`cruddur dev` in process over DynamoDB Local; {sends} messages, one at a time, alternating senders in one conversation; time from the `POST /api/messages` response to the frame on the socket. Push pump idle poll: {} ms.\n",
        PumpConfig::push().idle_poll.as_millis()
    );
    println!("| socket | frames | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, samples) in [
        ("the other member", &to_recipient),
        ("the sender's own", &to_sender),
    ] {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} |",
            samples.len(),
            crate::percentile(samples, 50.0),
            crate::percentile(samples, 99.0),
            samples.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!("\nFrames to the non-member: {to_non_members}. Duplicate frames: {duplicates}.\n");
    if to_non_members > 0 || duplicates > 0 {
        bail!("push delivered {to_non_members} frames to a non-member and {duplicates} duplicates");
    }
    Ok(())
}

async fn wait_for(
    uuid: &str,
    sockets: &[usize],
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    seen: &mut Vec<(usize, String)>,
) -> anyhow::Result<HashMap<usize, Instant>> {
    let mut arrived = HashMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while sockets.iter().any(|socket| !arrived.contains_key(socket)) {
        let arrival = tokio::time::timeout_at(deadline, arrivals.recv())
            .await
            .context("a frame did not arrive in time")?
            .context("sockets closed")?;
        seen.push((arrival.socket, arrival.uuid.clone()));
        if arrival.uuid == uuid && sockets.contains(&arrival.socket) {
            arrived.entry(arrival.socket).or_insert(arrival.at);
        }
    }
    Ok(arrived)
}

struct Created {
    uuid: String,
    body: Value,
    answered_at: Instant,
}

async fn post(
    http: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Created> {
    let request = hyper::Request::post(format!("{base}/api/messages"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::from(body.to_string()))?;
    let response = http.request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let answered_at = Instant::now();
    anyhow::ensure!(status.is_success(), "POST /api/messages: {status}");
    let body: Value = serde_json::from_slice(&bytes)?;
    let uuid = body["uuid"]
        .as_str()
        .context("the message's uuid")?
        .to_owned();
    Ok(Created {
        uuid,
        body,
        answered_at,
    })
}

struct CostScenario {
    name: &'static str,
    conversations: usize,
    messages: usize,
    batch: usize,
    devices: usize,
}

/// Requests per pushed message, counted: one user talks with `conversations` others, each
/// member with `devices` open connections.
async fn cost() -> anyhow::Result<()> {
    println!("### What a push costs\n");
    println!(
        "The handler alone, over counted DynamoDB requests and the Management API stand-in; each member has the given number of open connections.\n"
    );
    println!(
        "| scenario | messages | batch | connections per member | Query/message | posts/message | Query/batch | ms/batch |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for scenario in [
        CostScenario {
            name: "one message per batch",
            conversations: 1,
            messages: 50,
            batch: 1,
            devices: 1,
        },
        CostScenario {
            name: "one message per batch, two devices each",
            conversations: 1,
            messages: 50,
            batch: 1,
            devices: 2,
        },
        CostScenario {
            name: "batches of 100 over 10 conversations",
            conversations: 10,
            messages: 1000,
            batch: 100,
            devices: 1,
        },
    ] {
        measure_cost(&scenario).await?;
    }
    println!();
    Ok(())
}

/// One scenario's table row: the hub talks with `conversations` peers, every member with
/// `devices` connections open on a Management API stand-in, and the handler pushes
/// `messages` in batches of `batch`.
async fn measure_cost(scenario: &CostScenario) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let open = OpenConnections::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn({
        let open = open.clone();
        async move {
            let management = management_router(open)
                .into_make_service_with_connect_info::<local::websocket::Peer>();
            axum::serve(listener, management).await
        }
    });
    let hub = table.user("hub").await;
    let mut sockets = Vec::new();
    let mut groups = Vec::new();
    let mut connect_devices = async |user: Uuid| -> anyhow::Result<()> {
        for device in 0..scenario.devices {
            let connection = Connection::opened(
                user,
                format!("{}-{device}", user.simple()),
                Timestamp::now(),
            );
            table.store.put_connection(&connection).await?;
            sockets.push(open.open(&connection.connection_id));
        }
        Ok(())
    };
    connect_devices(hub.uuid).await?;
    for n in 0..scenario.conversations {
        let other = table.user(&format!("peer{n}")).await;
        let group = Uuid::new_v4();
        for member in [hub.uuid, other.uuid] {
            let item = MembershipItem::new(group, member, "2026-11-22T00:00:00.000000+00:00");
            table
                .store
                .client()
                .put_item()
                .table_name(table.store.table())
                .set_item(Some(serde_dynamo::to_item(&item)?))
                .send()
                .await?;
        }
        connect_devices(other.uuid).await?;
        groups.push(group);
    }
    let records: Vec<EventRecord> = (0..scenario.messages)
        .map(|i| record(groups[i % groups.len()], &hub, i))
        .collect::<anyhow::Result<_>>()?;
    let handler = PushHandler::new(table.store.clone(), local_management_client(&endpoint));
    table.requests.reset();
    let started = Instant::now();
    let mut posts = 0;
    for batch in records.chunks(scenario.batch) {
        let mut event = Event::default();
        event.records = batch.to_vec();
        let (response, summary) = handler.handle(&event).await;
        anyhow::ensure!(
            response.batch_item_failures.is_empty() && summary.failed_posts == 0,
            "{summary:?}"
        );
        posts += summary.frames_sent;
    }
    let elapsed = started.elapsed();
    let batches = scenario.messages.div_ceil(scenario.batch);
    let queries = table.requests.of("Query") as f64;
    println!(
        "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} |",
        scenario.name,
        scenario.messages,
        scenario.batch,
        scenario.devices,
        queries / scenario.messages as f64,
        posts as f64 / scenario.messages as f64,
        queries / batches as f64,
        elapsed.as_secs_f64() * 1000.0 / batches as f64,
    );
    server.abort();
    drop(sockets);
    Ok(())
}

/// A stream record of a new message, as Lambda delivers it.
fn record(group: Uuid, sender: &User, i: usize) -> anyhow::Result<EventRecord> {
    let message = Message::new(
        group,
        UserSummary {
            uuid: sender.uuid,
            handle: sender.handle.to_string(),
            display_name: sender.display_name.to_string(),
        },
        format!("message {i}"),
        Timestamp::now().to_string(),
    );
    let item: serde_dynamo::Item = serde_dynamo::to_item(MessageItem::new(&message))?;
    let mut record = EventRecord::default();
    record.event_id = format!("{i}");
    record.event_name = "INSERT".into();
    record.change.keys = [("pk", item.get("pk")), ("sk", item.get("sk"))]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?.clone())))
        .collect::<HashMap<_, _>>()
        .into();
    record.change.new_image = item;
    record.change.sequence_number = Some(format!("{i:021}"));
    Ok(record)
}
