//! `cruddur typing --as <handle> <group uuid>`: says on the local stack's WebSocket API that
//! a user is typing in a conversation, as a client does while its user types
//! (`{"action":"typing","message_group_uuid":…}`), so that `cruddur listen` as another member
//! shows the typing frame. With `--for`, keeps typing: one frame every two seconds (the
//! rate the server forwards at most; faster ones are dropped there anyway).
//!
//! A frame the server accepts gets no answer (the route is one-way); one it refuses gets an
//! `error` frame, which is printed, and the command fails.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use functions::ws_actions::{TYPING_ACTION, TYPING_INTERVAL};
use futures_util::{SinkExt, StreamExt};
use local::auth::DEV_KEY_FILE_ENV;
use messaging::Store;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::dev::mint_for_handle;
use crate::listen::{api_url_of, with_token};

#[derive(Debug, clap::Args)]
pub struct TypingArgs {
    /// The user who types.
    #[arg(long = "as", value_name = "HANDLE")]
    handle: String,
    /// The conversation typed in.
    group: Uuid,
    /// Keep typing this long (a frame every two seconds); 0 sends one.
    #[arg(long = "for", value_name = "SECONDS", default_value_t = 0)]
    seconds: u64,
    /// How long to wait for an error frame after the last one sent, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    answer_ms: u64,
    /// The WebSocket endpoint (`cruddur dev`'s).
    #[arg(long, default_value = "ws://127.0.0.1:4567/ws")]
    url: String,
    /// Development signing key: the one the stack uses; never created here.
    #[arg(long, env = DEV_KEY_FILE_ENV)]
    key_file: Option<PathBuf>,
}

pub async fn run(store: &Store, args: TypingArgs) -> anyhow::Result<()> {
    let api_url = api_url_of(&args.url);
    let token = mint_for_handle(
        store,
        &args.handle,
        args.key_file.clone(),
        &api_url,
        Duration::from_secs(10 * 60),
    )
    .await?;
    let (mut socket, _) = tokio_tungstenite::connect_async(with_token(&args.url, &token))
        .await
        .with_context(|| format!("connecting to {} (is `cruddur dev` running?)", args.url))?;
    let frame = json!({ "action": TYPING_ACTION, "message_group_uuid": args.group }).to_string();
    let until = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    let mut sent = 0u32;
    loop {
        socket
            .send(Message::text(frame.clone()))
            .await
            .context("sending the typing frame")?;
        sent += 1;
        eprintln!("{} is typing in {} ({sent})", args.handle, args.group);
        let next = tokio::time::Instant::now() + TYPING_INTERVAL;
        let last = next > until;
        let wait_until = if last {
            tokio::time::Instant::now() + Duration::from_millis(args.answer_ms)
        } else {
            next
        };
        // An error frame, if the server refuses; nothing otherwise.
        loop {
            let incoming = tokio::select! {
                _ = tokio::signal::ctrl_c() => return close(socket).await,
                () = tokio::time::sleep_until(wait_until) => break,
                incoming = socket.next() => incoming,
            };
            match incoming {
                Some(Ok(Message::Text(text))) => {
                    println!("{text}");
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    if frame["type"] == "error" || frame["message"] == "Forbidden" {
                        let _ = socket.close(None).await;
                        bail!(
                            "the server refused the typing frame: {}",
                            frame["code"].as_str().unwrap_or("Forbidden")
                        );
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    bail!("the server closed the connection: {frame:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => bail!("the connection failed: {error}"),
                None => bail!("the connection ended"),
            }
        }
        if last {
            return close(socket).await;
        }
    }
}

async fn close(
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> anyhow::Result<()> {
    let _ = socket.close(None).await;
    Ok(())
}
