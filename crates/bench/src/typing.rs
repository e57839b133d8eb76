//! Typing: how soon a typing frame reaches the other member after the sender's client sent
//! it, through the whole local stack in process (the WebSocket routes, `ws-typing`, the
//! Management API stand-in); that no one else gets it and a second one inside 2 s is
//! dropped; and what one typing event costs in requests (the handler alone, counted).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use functions::push::local_management_client;
use functions::websocket::WebSocketEvent;
use functions::ws_actions::{Outcome, WsTyping};
use futures_util::{SinkExt, StreamExt};
use local::websocket::{OpenConnections, management_router};
use messaging::model::Connection;
use messaging::validate::{GroupName, MessageText};
use messaging::{Timestamp, User};
use serde_json::{Value, json};
use testkit::TestTable;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::push::LocalStack;

const WAIT: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run(events: usize) -> anyhow::Result<()> {
    latency(events).await?;
    cost().await
}

async fn connect(stack: &LocalStack, user: &User) -> anyhow::Result<Socket> {
    let url = format!("ws://{}/ws?token={}", stack.address, stack.token(user)?);
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

async fn next_frame(socket: &mut Socket) -> anyhow::Result<(Value, Instant)> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .context("a frame did not arrive in time")?
            .context("the socket closed")??;
        if let WsMessage::Text(text) = message {
            return Ok((serde_json::from_str(text.as_str())?, Instant::now()));
        }
    }
}

/// `events` typing events, each in a conversation of its own (the 2 s rule is per
/// conversation, so no event waits on the one before), Andrew typing, Bayko receiving, Londo
/// in none of them.
async fn latency(events: usize) -> anyhow::Result<()> {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let mut groups = Vec::with_capacity(events + 1);
    for i in 0..=events {
        let name = GroupName::parse(&format!("typing {i}"))?;
        let text = MessageText::parse("hi")?;
        let message = table
            .store
            .create_group(
                &andrew,
                &name,
                std::slice::from_ref(&bayko),
                text,
                Timestamp::now(),
            )
            .await?;
        groups.push(message.group_uuid);
    }
    let stack = LocalStack::start(&table).await?;
    let mut sender = connect(&stack, &andrew).await?;
    let mut member = connect(&stack, &bayko).await?;
    let mut outsider = connect(&stack, &londo).await?;
    let typing = |group: Uuid| json!({"action": "typing", "message_group_uuid": group}).to_string();

    // Warm-up: the first event of the environment.
    sender.send(WsMessage::text(typing(groups[events]))).await?;
    next_frame(&mut member).await?;

    let mut samples = Vec::with_capacity(events);
    let mut dropped_reached = 0;
    for group in &groups[..events] {
        let sent = Instant::now();
        sender.send(WsMessage::text(typing(*group))).await?;
        let (frame, at) = next_frame(&mut member).await?;
        if frame["type"] != "typing" || frame["message_group_uuid"] != json!(group) {
            bail!("unexpected frame {frame}");
        }
        samples.push(at.saturating_duration_since(sent).as_secs_f64() * 1000.0);
        // The next keystroke, at once: dropped.
        sender.send(WsMessage::text(typing(*group))).await?;
    }
    // Probes: each socket's first frame now must be its own refusal, so nothing else
    // reached it (a dropped keystroke's frame, the outsider anything).
    for socket in [&mut member, &mut outsider, &mut sender] {
        socket
            .send(WsMessage::text(json!({"action": "probe"}).to_string()))
            .await?;
        let (frame, _) = next_frame(socket).await?;
        if frame["code"] != "action_unknown" {
            dropped_reached += 1;
        }
    }
    stack.stop().await?;
    samples.sort_by(f64::total_cmp);
    println!("## Typing (local stack)\n");
    println!(
        "`cruddur dev` in process over DynamoDB Local; {events} typing events, one at a time, each in its own conversation (Andrew and Bayko), each followed at once by a second keystroke (dropped); time from the sender's `send` on its socket to the typing frame on the other member's.\n"
    );
    println!("| frames | p50 ms | p99 ms | max ms |");
    println!("|---:|---:|---:|---:|");
    println!(
        "| {} | {:.1} | {:.1} | {:.1} |",
        samples.len(),
        crate::percentile(&samples, 50.0),
        crate::percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "\nFrames that reached the sender, the outsider, or came from a dropped keystroke: {dropped_reached}.\n"
    );
    if dropped_reached > 0 {
        bail!("{dropped_reached} sockets got a frame they should not have");
    }
    Ok(())
}

/// Requests per typing event by case, the handler alone over counted DynamoDB requests and
/// the Management API stand-in; a group of `members`, each with one connection.
async fn cost() -> anyhow::Result<()> {
    println!("### What a typing event costs\n");
    println!(
        "`ws-typing` alone: DynamoDB requests counted, posts counted at the Management API stand-in; every member has one open connection.\n"
    );
    println!("| case | members | UpdateItem | Query | posts | ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for members in [2, 10, 50] {
        measure_cost(members).await?;
    }
    println!();
    Ok(())
}

async fn measure_cost(members: usize) -> anyhow::Result<()> {
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
    let mut users = Vec::with_capacity(members + 1);
    for i in 0..members {
        users.push(table.user(&format!("member{i}")).await);
    }
    let outsider = table.user("outsider").await;
    let group = table
        .store
        .create_group(
            &users[0],
            &GroupName::parse("typing cost")?,
            &users[1..],
            MessageText::parse("hi")?,
            Timestamp::now(),
        )
        .await?
        .group_uuid;
    let mut sockets = Vec::new();
    for user in users.iter().chain([&outsider]) {
        let connection = Connection::opened(
            user.uuid,
            format!("{}=", user.uuid.simple()),
            Timestamp::now(),
        );
        table.store.put_connection(&connection).await?;
        sockets.push(open.open(&connection.connection_id));
    }
    let event = |user: &User, group: Uuid| -> anyhow::Result<WebSocketEvent> {
        Ok(serde_json::from_value(json!({
            "requestContext": {
                "routeKey": "typing",
                "eventType": "MESSAGE",
                "connectionId": format!("{}=", user.uuid.simple()),
                "connectedAt": 1_795_342_500_000_i64,
                "authorizer": {
                    "user_uuid": user.uuid.to_string(),
                    "handle": user.handle.to_string(),
                    "display_name": user.display_name.to_string(),
                },
            },
            "body": json!({"action": "typing", "message_group_uuid": group}).to_string(),
        }))?)
    };
    let handler = WsTyping::new(table.store.clone(), local_management_client(&endpoint));
    let elsewhere = WsTyping::new(table.store.clone(), local_management_client(&endpoint));
    let mut row = async |case: &str, handler: &WsTyping, user: &User| -> anyhow::Result<Outcome> {
        table.requests.reset();
        let started = Instant::now();
        let outcome = handler.handle_frame(&event(user, group)?).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut posts = 0;
        for socket in &mut sockets {
            while socket.try_recv().is_ok() {
                posts += 1;
            }
        }
        println!(
            "| {case} | {members} | {} | {} | {posts} | {ms:.1} |",
            table.requests.of("UpdateItem"),
            table.requests.of("Query"),
        );
        Ok(outcome)
    };
    let first = row("forwarded, recipients read", &handler, &users[0]).await?;
    let second = row(
        "forwarded, recipients remembered (< 5 s)",
        &handler,
        &users[1],
    )
    .await?;
    let dropped = row(
        "keystroke within 2 s, same environment",
        &handler,
        &users[0],
    )
    .await?;
    let elsewhere_dropped = row(
        "keystroke within 2 s, another environment",
        &elsewhere,
        &users[0],
    )
    .await?;
    let refused = row("not a member (error frame)", &handler, &outsider).await?;
    server.abort();
    let forwarded = |outcome: &Outcome| matches!(outcome, Outcome::Forwarded { .. });
    if !forwarded(&first)
        || !forwarded(&second)
        || dropped != Outcome::Dropped
        || elsewhere_dropped != Outcome::Dropped
        || !matches!(refused, Outcome::Refused(_))
    {
        bail!(
            "unexpected outcomes: {first:?} {second:?} {dropped:?} {elsewhere_dropped:?} {refused:?}"
        );
    }
    Ok(())
}
