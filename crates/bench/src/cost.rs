//! `--suite cost`: what each operation consumes in DynamoDB request units (read and write,
//! table and index apart, by AWS's rules: `testkit::consumed_capacity`), its handler time,
//! and what it sends over the WebSocket API, through the real handlers on DynamoDB Local.
//! Printed as Markdown and written as JSON for `scripts/capacity.py`, which turns the
//! figures into dollars per million messages and the capacity plan (docs/CAPACITY.md).
//!
//! A message is three operations: `POST /api/messages` (create-message), the inbox-row
//! update (messaging-stream) and the frames (messaging-push), each measured with the
//! message alone in its batch, as at low traffic (the most each message can cost).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::{Event, EventRecord};
use functions::api::Api;
use functions::directory::{Directory, SystemClock};
use functions::inbox_rows::InboxRowMover;
use functions::presence::WsPresence;
use functions::push::{PushHandler, local_management_client};
use functions::routes::Route;
use functions::websocket::{CONTEXT_USER_UUID, ConnectionCap, WebSocketEvent, WsConnections};
use local::websocket::{OpenConnections, management_router};
use messaging::items::MessageItem;
use messaging::model::{Connection, Message};
use messaging::store::{Limits, RowPositions, Store};
use messaging::validate::{GroupName, MessageText};
use messaging::{Timestamp, User};
use serde_json::{Value, json};
use testkit::TestTable;
use testkit::consumed_capacity::{CapacityMeter, Units};
use uuid::Uuid;

use crate::groups::{event, ok, register, request, retarget};

/// A chat message's usual length; the items that copy it (message, inbox rows) are sized by it.
const TEXT: &str =
    "Are we still on for Thursday? I can bring the slides and the numbers from last week's run.";

/// One operation's figures, per call.
struct Measured {
    key: &'static str,
    label: String,
    function: &'static str,
    calls: usize,
    units: Units,
    requests: BTreeMap<String, f64>,
    p50_ms: f64,
    mean_ms: f64,
    /// WebSocket frames posted (`PostToConnection`), per call.
    frames: f64,
    unpriced: u64,
    /// Transaction items whose size the meter had not seen (taken as up to 1 KB).
    assumed: u64,
}

/// The metered world: a table, a store whose requests are metered, and an unmetered one
/// (`table.store`) for the setup between timed calls.
struct World {
    table: TestTable,
    store: Store,
    meter: CapacityMeter,
    api: Api,
    members: Vec<User>,
}

impl World {
    /// Times `calls` calls of `call`, metering only what it sends; `setup` runs, untimed and
    /// unmetered, before each.
    async fn measure<S, SF, C, CF>(
        &self,
        key: &'static str,
        function: &'static str,
        label: impl Into<String>,
        calls: usize,
        mut setup: S,
        mut call: C,
    ) -> anyhow::Result<Measured>
    where
        S: FnMut(usize) -> SF,
        SF: std::future::Future<Output = anyhow::Result<Value>>,
        C: FnMut(Value) -> CF,
        CF: std::future::Future<Output = anyhow::Result<usize>>,
    {
        self.meter.reset();
        let mut requests: BTreeMap<String, u64> = BTreeMap::new();
        let mut samples = Vec::with_capacity(calls);
        let mut frames = 0;
        for i in 0..calls {
            let input = setup(i).await?;
            self.table.requests.reset();
            let started = Instant::now();
            frames += call(input).await?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            for (operation, count) in self.table.requests.snapshot() {
                *requests.entry(operation).or_default() += count;
            }
        }
        samples.sort_by(f64::total_cmp);
        let n = calls as f64;
        Ok(Measured {
            key,
            label: label.into(),
            function,
            calls,
            units: self.meter.total().per(n),
            requests: requests
                .into_iter()
                .map(|(operation, count)| (operation, count as f64 / n))
                .collect(),
            p50_ms: crate::percentile(&samples, 50.0),
            mean_ms: samples.iter().sum::<f64>() / n,
            frames: frames as f64 / n,
            unpriced: self.meter.unpriced(),
            assumed: self.meter.assumed(),
        })
    }

    async fn serve(&self, route: Route, event: &Value) -> anyhow::Result<usize> {
        ok(self.api.serve(route, request(event)).await)?;
        Ok(0)
    }

    /// A conversation of the first `size` members: direct for 2, else a named group.
    async fn conversation(&self, size: usize) -> anyhow::Result<Uuid> {
        let (first, others) = (&self.members[0], &self.members[1..size]);
        if size == 2 {
            let sent = self
                .table
                .store
                .send_to_user(first, &others[0], text()?, Timestamp::now())
                .await?;
            return Ok(sent.group_uuid);
        }
        let created = self
            .table
            .store
            .create_group(
                first,
                &GroupName::parse(&format!("Group of {size}"))?,
                others,
                text()?,
                Timestamp::now(),
            )
            .await?;
        Ok(created.group_uuid)
    }

    /// A message from `sender` in `group`, written unmetered, as the stream delivers it.
    async fn posted(&self, sender: &User, group: Uuid, i: usize) -> anyhow::Result<Value> {
        let message = self
            .table
            .store
            .append_message(sender, group, text()?, Timestamp::now())
            .await?;
        Ok(serde_json::to_value(record_of(&message, i)?)?)
    }
}

fn text() -> anyhow::Result<MessageText> {
    Ok(MessageText::parse(TEXT)?)
}

/// The stream record Lambda delivers for a new message item.
fn record_of(message: &Message, i: usize) -> anyhow::Result<EventRecord> {
    let item: serde_dynamo::Item = serde_dynamo::to_item(MessageItem::new(message))?;
    let mut record = EventRecord::default();
    record.event_id = format!("{i}");
    record.event_name = "INSERT".into();
    record.change.keys = [("pk", item.get("pk")), ("sk", item.get("sk"))]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?.clone())))
        .collect::<std::collections::HashMap<_, _>>()
        .into();
    record.change.new_image = item;
    record.change.sequence_number = Some(format!("{i:021}"));
    Ok(record)
}

fn batch_of(record: Value) -> anyhow::Result<Event> {
    let mut event = Event::default();
    event.records = vec![serde_json::from_value(record)?];
    Ok(event)
}

pub async fn run(calls: usize, json_out: &Path) -> anyhow::Result<()> {
    const MEMBERS: usize = 50;
    let table = TestTable::new().await;
    let meter = CapacityMeter::new();
    // Limits as deployed, set so high that nothing is refused: every limited write carries
    // its window item, as it does in production, and the figures include it.
    let store = table
        .store_with(meter.clone())
        .with_limits(Limits::new(1_000_000, 1_000_000, 1_000_000));
    let mut members = Vec::with_capacity(MEMBERS + 1);
    for i in 0..=MEMBERS {
        members.push(register(&table, i).await?);
    }
    let api = Api::new(Directory::new(
        store.clone(),
        Duration::from_secs(60),
        Arc::new(SystemClock),
    ));
    let world = World {
        table,
        store,
        meter,
        api,
        members,
    };
    // The Management API stand-in, with one open connection per member.
    let open = OpenConnections::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let management = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn({
        let open = open.clone();
        // With each connection's peer: the stand-in answers this machine only.
        async move {
            let service = management_router(open)
                .into_make_service_with_connect_info::<local::websocket::Peer>();
            axum::serve(listener, service).await
        }
    });
    let mut sockets = Vec::new();
    for member in &world.members {
        let connection = Connection::opened(
            member.uuid,
            format!("{}-0", member.uuid.simple()),
            Timestamp::now(),
        );
        world.table.store.put_connection(&connection).await?;
        sockets.push(open.open(&connection.connection_id));
    }

    let mut rows = Vec::new();
    for size in [2, 10, 50] {
        rows.extend(message_costs(&world, &management, size, calls).await?);
    }
    rows.extend(reads(&world, calls).await?);
    rows.extend(groups(&world, calls.min(30)).await?);
    rows.extend(connections(&world, &management, &open, calls).await?);
    server.abort();
    drop(sockets);

    print(&rows);
    write_json(&rows, json_out)?;
    world.table.store.drop_table().await?;
    Ok(())
}

/// A message in a conversation of `size` members: its send, its inbox-row update (by the
/// index, and with the environment's hint) and its frames.
async fn message_costs(
    world: &World,
    management: &str,
    size: usize,
    calls: usize,
) -> anyhow::Result<Vec<Measured>> {
    let group = world.conversation(size).await?;
    let (send_key, fanout_key, hinted_key, push_key, what) = match size {
        2 => (
            "send_direct",
            "fanout_direct",
            "fanout_direct_hinted",
            "push_direct",
            "direct message".to_owned(),
        ),
        10 => (
            "send_group10",
            "fanout_group10",
            "fanout_group10_hinted",
            "push_group10",
            "10-member group message".to_owned(),
        ),
        50 => (
            "send_group50",
            "fanout_group50",
            "fanout_group50_hinted",
            "push_group50",
            "50-member group message".to_owned(),
        ),
        other => anyhow::bail!("no figures for conversations of {other}"),
    };
    let members = &world.members[..size];
    let mut send = event("api-create-message-to-group.json", &members[1]);
    send["body"] = json!(json!({"message": TEXT, "message_group_uuid": group}).to_string());
    // Warm the directory's cache, as a warm environment has it.
    world.serve(Route::CreateMessage, &send).await?;
    let mut measured = vec![
        world
            .measure(
                send_key,
                "create-message",
                format!("{what}: POST /api/messages"),
                calls,
                |_| async { Ok(Value::Null) },
                |_| world.serve(Route::CreateMessage, &send),
            )
            .await?,
    ];
    for (key, hinted) in [(fanout_key, false), (hinted_key, true)] {
        let mut mover = InboxRowMover::new(world.store.clone());
        if !hinted {
            mover = mover.with_positions(RowPositions::disabled());
        }
        // The hint is this environment's: one message first puts the rows where it knows.
        let warm = world.posted(&members[0], group, 0).await?;
        mover.handle(&batch_of(warm)?).await;
        let mover = &mover;
        measured.push(
            world
                .measure(
                    key,
                    "messaging-stream",
                    format!(
                        "{what}: inbox rows follow it, {}",
                        if hinted {
                            "where this environment put them"
                        } else {
                            "found by the index"
                        }
                    ),
                    calls,
                    |i| world.posted(&members[i % size], group, i + 1),
                    |record| async move {
                        let (response, _) = mover.handle(&batch_of(record)?).await;
                        anyhow::ensure!(response.batch_item_failures.is_empty(), "fan-out failed");
                        Ok(0)
                    },
                )
                .await?,
        );
    }
    let pusher = PushHandler::new(world.store.clone(), local_management_client(management));
    let pusher = &pusher;
    measured.push(
        world
            .measure(
                push_key,
                "messaging-push",
                format!("{what}: frames to every member's one connection"),
                calls,
                |i| world.posted(&members[i % size], group, i),
                |record| async move {
                    let (response, summary) = pusher.handle(&batch_of(record)?).await;
                    anyhow::ensure!(
                        response.batch_item_failures.is_empty() && summary.failed_posts == 0,
                        "{summary:?}"
                    );
                    Ok(summary.frames_sent)
                },
            )
            .await?,
    );
    Ok(measured)
}

/// The inbox, a conversation's newest page (one unread message, which it marks read) and
/// the explicit mark read, in a 10-member group; and the explicit mark read of a direct
/// conversation, whose transaction also tells the other member's row (`seen`).
async fn reads(world: &World, calls: usize) -> anyhow::Result<Vec<Measured>> {
    let group = world.conversation(10).await?;
    let reader = &world.members[2];
    // The reader's inbox: 20 conversations, a full page.
    for _ in 0..20 {
        world.conversation(3).await?;
    }
    let unread = |_: usize| async move {
        let message = world
            .table
            .store
            .append_message(&world.members[1], group, text()?, Timestamp::now())
            .await?;
        world
            .table
            .store
            .advance_conversation(
                &messaging::coalesce::Newest::alone(message),
                &RowPositions::disabled(),
            )
            .await?;
        Ok(Value::Null)
    };
    let inbox = event("api-list-message-groups.json", reader);
    let mut page = event("api-list-messages.json", reader);
    page["pathParameters"]["message_group_uuid"] = json!(group.to_string());
    let mut read = event("api-mark-message-group-read.json", reader);
    retarget(&mut read, group);
    world.serve(Route::ListMessageGroups, &inbox).await?;
    Ok(vec![
        world
            .measure(
                "inbox_page",
                "list-message-groups",
                "GET /api/message_groups: a page of 20 inbox rows",
                calls,
                |_| async { Ok(Value::Null) },
                |_| world.serve(Route::ListMessageGroups, &inbox),
            )
            .await?,
        world
            .measure(
                "messages_page",
                "list-messages",
                "GET /api/messages/{id}: newest 20, marks one unread message read",
                calls,
                unread,
                |_| world.serve(Route::ListMessages, &page),
            )
            .await?,
        world
            .measure(
                "mark_read",
                "mark-message-group-read",
                "POST /api/message_groups/{id}/read: one unread message, 10 members",
                calls,
                unread,
                |_| world.serve(Route::MarkMessageGroupRead, &read),
            )
            .await?,
        {
            // Members 0 and 1; member 1 reads what member 0 sends.
            let direct = world.conversation(2).await?;
            let mut read_direct = event("api-mark-message-group-read.json", &world.members[1]);
            retarget(&mut read_direct, direct);
            world
                .measure(
                    "mark_read_direct",
                    "mark-message-group-read",
                    "POST /api/message_groups/{id}/read: one unread message, a direct conversation (also tells the other row)",
                    calls,
                    |_| async move {
                        let message = world
                            .table
                            .store
                            .append_message(&world.members[0], direct, text()?, Timestamp::now())
                            .await?;
                        world
                            .table
                            .store
                            .advance_conversation(
                                &messaging::coalesce::Newest::alone(message),
                                &RowPositions::disabled(),
                            )
                            .await?;
                        Ok(Value::Null)
                    },
                    |_| world.serve(Route::MarkMessageGroupRead, &read_direct),
                )
                .await?
        },
    ])
}

/// Creating groups of 10 and 50, adding a 50th member and leaving again.
async fn groups(world: &World, calls: usize) -> anyhow::Result<Vec<Measured>> {
    let creator = &world.members[0];
    let mut measured = Vec::new();
    for (key, size) in [("create_group10", 10), ("create_group50", 50)] {
        let handles: Vec<String> = world.members[1..size]
            .iter()
            .map(|m| m.handle.to_string())
            .collect();
        let mut create = event("api-create-message-group.json", creator);
        create["body"] =
            json!(json!({"name": "Benchmark", "handles": handles, "message": TEXT}).to_string());
        world.serve(Route::CreateMessageGroup, &create).await?;
        measured.push(
            world
                .measure(
                    key,
                    "create-message-group",
                    format!("POST /api/message_groups: {size} members and the first message"),
                    calls,
                    |_| async { Ok(Value::Null) },
                    |_| world.serve(Route::CreateMessageGroup, &create),
                )
                .await?,
        );
    }
    let group = world.conversation(49).await?;
    let newcomer = &world.members[50];
    let mut add = event("api-add-message-group-members.json", creator);
    retarget(&mut add, group);
    add["body"] = json!(json!({"handles": [newcomer.handle.to_string()]}).to_string());
    let mut leave = event("api-leave-message-group.json", newcomer);
    retarget(&mut leave, group);
    // Alternating, untimed, so each add finds 49 members and each leave 50.
    let add_row = world
        .measure(
            "add_member",
            "add-message-group-members",
            "POST /api/message_groups/{id}/members: a 50th member",
            calls,
            |i| {
                let leave = &leave;
                async move {
                    if i > 0 {
                        ok(world
                            .api
                            .serve(Route::LeaveMessageGroup, request(leave))
                            .await)?;
                    }
                    Ok(Value::Null)
                }
            },
            |_| world.serve(Route::AddMessageGroupMembers, &add),
        )
        .await?;
    let leave_row = world
        .measure(
            "leave_group",
            "leave-message-group",
            "POST /api/message_groups/{id}/leave: 50 → 49 members",
            calls,
            |i| {
                let add = &add;
                async move {
                    if i > 0 {
                        ok(world
                            .api
                            .serve(Route::AddMessageGroupMembers, request(add))
                            .await)?;
                    }
                    Ok(Value::Null)
                }
            },
            |_| world.serve(Route::LeaveMessageGroup, &leave),
        )
        .await?;
    measured.push(add_row);
    measured.push(leave_row);
    Ok(measured)
}

/// `$connect` and `$disconnect` (ws-connect, ws-disconnect) as deployed (the cap, presence
/// frames), the authorizer's one read, and `presence` (ws-presence). The user has one
/// watcher (the other member of a direct conversation, whose connection asked for presence),
/// so a first `$connect` and a last `$disconnect` each post one frame.
async fn connections(
    world: &World,
    management: &str,
    open: &OpenConnections,
    calls: usize,
) -> anyhow::Result<Vec<Measured>> {
    let deployed = |store: &Store| {
        WsConnections::new(store.clone())
            .with_cap(ConnectionCap::new(10, local_management_client(management)))
            .with_presence_frames(local_management_client(management))
    };
    let handlers = &deployed(&world.store);
    // Setup (unmetered): the connections each measured call needs before it.
    let setup = &deployed(&world.table.store);
    let presence = &WsPresence::new(world.store.clone());
    let (user, watcher) = (&world.members[3], &world.members[4]);
    let group = world
        .table
        .store
        .send_to_user(watcher, user, MessageText::parse(TEXT)?, Timestamp::now())
        .await?
        .group_uuid;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    };
    let ws_event = move |name: &str, who: &User, id: String| -> Value {
        let mut event = crate::events::event_json(name);
        let context = &mut event["requestContext"];
        context["connectionId"] = json!(id);
        context["connectedAt"] = json!(now() * 1000);
        context["authorizer"][CONTEXT_USER_UUID] = json!(who.uuid.to_string());
        context["authorizer"]["handle"] = json!(who.handle.as_str());
        context["authorizer"]["exp"] = json!((now() + 3600).to_string());
        event
    };
    let watching = format!("bench-watcher-{}", watcher.uuid.simple());
    let mut watcher_socket = open.open(&watching);
    let connect_watcher: WebSocketEvent =
        serde_json::from_value(ws_event("ws-connect.json", watcher, watching.clone()))?;
    setup.connect(&connect_watcher).await?;
    let mut ask = ws_event("ws-presence.json", watcher, watching.clone());
    ask["body"] = json!(json!({"action": "presence", "message_group_uuid": group}).to_string());
    let ask: &WebSocketEvent = &serde_json::from_value(ask)?;
    presence.handle(ask).await?;
    let frames = std::cell::RefCell::new(&mut watcher_socket);
    let frames = &frames;
    let posted = move || {
        let mut socket = frames.borrow_mut();
        let mut n = 0;
        while socket.try_recv().is_ok() {
            n += 1;
        }
        n
    };
    let directory = Directory::new(world.store.clone(), Duration::ZERO, Arc::new(SystemClock));
    let directory = &directory;
    Ok(vec![
        world
            .measure(
                "authorize",
                "ws-authorizer",
                "WebSocket authorizer: the caller by token sub (token checks not timed)",
                calls,
                |_| async { Ok(Value::Null) },
                |_| async move {
                    anyhow::ensure!(directory.by_sub(&user.cognito_sub).await?.is_some());
                    Ok(0)
                },
            )
            .await?,
        world
            .measure(
                "connect",
                "ws-connect",
                "WebSocket $connect: first device (online, one watcher told), cap checked",
                calls,
                |i| async move {
                    // The previous call's connection closes first: each call comes online.
                    if i > 0 {
                        let previous: WebSocketEvent = serde_json::from_value(ws_event(
                            "ws-disconnect.json",
                            user,
                            format!("bench-{}", i - 1),
                        ))?;
                        setup.disconnect(&previous).await?;
                    }
                    posted();
                    open.open(&format!("bench-{i}"));
                    Ok(ws_event("ws-connect.json", user, format!("bench-{i}")))
                },
                |event| async move {
                    let event: WebSocketEvent = serde_json::from_value(event)?;
                    anyhow::ensure!(handlers.connect(&event).await?.status_code == 200);
                    Ok(posted())
                },
            )
            .await?,
        world
            .measure(
                "disconnect",
                "ws-disconnect",
                "WebSocket $disconnect: last device (offline, one watcher told)",
                calls,
                |i| async move {
                    // The connect row's last connection closes first: each call goes offline.
                    if i == 0 {
                        let left: WebSocketEvent = serde_json::from_value(ws_event(
                            "ws-disconnect.json",
                            user,
                            format!("bench-{}", calls - 1),
                        ))?;
                        setup.disconnect(&left).await?;
                    }
                    let id = format!("bench-last-{i}");
                    let connect: WebSocketEvent =
                        serde_json::from_value(ws_event("ws-connect.json", user, id.clone()))?;
                    setup.connect(&connect).await?;
                    posted();
                    Ok(ws_event("ws-disconnect.json", user, id))
                },
                |event| async move {
                    let event: WebSocketEvent = serde_json::from_value(event)?;
                    anyhow::ensure!(handlers.disconnect(&event).await?.status_code == 200);
                    Ok(posted())
                },
            )
            .await?,
        world
            .measure(
                "presence",
                "ws-presence",
                "WebSocket presence: a direct conversation's partner, answered and watched",
                calls,
                |_| async { Ok(Value::Null) },
                |_| async move {
                    let answer = presence.handle(ask).await?;
                    anyhow::ensure!(answer.status_code == 200);
                    Ok(0)
                },
            )
            .await?,
    ])
}

fn print(rows: &[Measured]) {
    println!("## DynamoDB request units per operation\n");
    println!(
        "Per call, through the handlers on DynamoDB Local with `ReturnConsumedCapacity: INDEXES` \
         (testkit's `CapacityMeter`): DynamoDB Local's units, which already double transactional \
         puts, updates and deletes, plus what it does not charge and DynamoDB does: 2 write units \
         per transactional `ConditionCheck`, and the one-read minimum of a Query that finds \
         nothing. RRU/WRU: on-demand read/write request units (the same figures are RCU/WCU per \
         second in provisioned mode). A message is alone in its stream batch; every member has \
         one open connection. Message text: {} bytes.\n",
        TEXT.len()
    );
    println!(
        "| operation | function | RRU | of it index | WRU | of it index | frames | p50 ms | mean ms | requests/call |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let requests: Vec<String> = row
            .requests
            .iter()
            .map(|(operation, count)| format!("{operation} {count:.2}"))
            .collect();
        println!(
            "| {} | `{}` | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {} |",
            row.label,
            row.function,
            row.units.read(),
            row.units.index_read,
            row.units.write(),
            row.units.index_write,
            row.frames,
            row.p50_ms,
            row.mean_ms,
            requests.join(", ")
        );
    }
    let unpriced: u64 = rows.iter().map(|row| row.unpriced).sum();
    let assumed: u64 = rows.iter().map(|row| row.assumed).sum();
    println!(
        "\nAttempts answered with an error (their units unknown to DynamoDB Local, not counted): {unpriced}. Transaction items of unseen size (taken as up to 1 KB): {assumed}.\n"
    );
}

fn write_json(rows: &[Measured], path: &Path) -> anyhow::Result<()> {
    let operations: serde_json::Map<String, Value> = rows
        .iter()
        .map(|row| {
            (
                row.key.to_owned(),
                json!({
                    "label": row.label,
                    "function": row.function,
                    "calls": row.calls,
                    "rru": row.units.read(),
                    "wru": row.units.write(),
                    "table_rru": row.units.table_read,
                    "index_rru": row.units.index_read,
                    "table_wru": row.units.table_write,
                    "index_wru": row.units.index_write,
                    "frames": row.frames,
                    "p50_ms": row.p50_ms,
                    "mean_ms": row.mean_ms,
                    "requests": row.requests,
                    "unpriced_attempts": row.unpriced,
                    "assumed_sizes": row.assumed,
                }),
            )
        })
        .collect();
    let document = json!({
        "measured_with": "cruddur-bench --suite cost (DynamoDB Local, testkit::consumed_capacity)",
        "measured_at": Timestamp::now().to_string(),
        "message_text_bytes": TEXT.len(),
        "operations": operations,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&document)? + "\n")?;
    println!("Written to {}.\n", path.display());
    Ok(())
}
