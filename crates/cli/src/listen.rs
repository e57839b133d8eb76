//! `cruddur listen <handle>`: connects to the local stack's WebSocket API as that user
//! (with a development token) and prints each pushed message as one JSON line, until Ctrl-C;
//! other frames (`presence`, with `--presence`) print as they come.
//!
//! It is the client loop the push expects of every client (docs/ARCHITECTURE.md, "Real-time
//! push"): after each open it re-fetches what it may have missed over the HTTP API; when the
//! connection closes (API Gateway closes idle ones after 10 minutes, every one after 2
//! hours, and the push closes one whose token expired) it reconnects with backoff and a
//! fresh token; and it orders what it prints by `created_at` and drops duplicates by `uuid`
//! ([`Timeline`]), since frames may arrive out of order and more than once. Edits, deletes
//! and reactions (`message_updated`, `message_deleted`, `reaction`) are applied to the
//! message they change and printed when they change something.
//!
//! Frames of other types (`typing`, `read`, `presence`, `error`, and whatever the server
//! adds) are printed as they come, one JSON line each, and never taken for messages: only
//! `"type": "message"` frames enter the timeline (a typing frame has no `uuid` and is news
//! only while it lasts).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use local::auth::DEV_KEY_FILE_ENV;
use messaging::{Store, Timestamp};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

use crate::dev::mint_for_handle;

#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// The user to listen as.
    #[arg(required_unless_present = "token")]
    handle: Option<String>,
    /// The WebSocket endpoint (`cruddur dev`'s).
    #[arg(long, default_value = "ws://127.0.0.1:4567/ws")]
    url: String,
    /// The HTTP API that re-fetches after each (re)connection [default: the WebSocket
    /// endpoint's host, i.e. `cruddur dev`'s].
    #[arg(long)]
    api_url: Option<String>,
    /// Re-fetch this conversation after each (re)connection (repeat for several). Without
    /// it: the conversations of the inbox's newest page with a message newer than their
    /// last re-fetch (pushed or not: a push after a missed frame hides nothing). Either way, reading a conversation's newest page marks it
    /// read, as opening it in the frontend does.
    #[arg(long = "conversation", value_name = "UUID")]
    conversations: Vec<Uuid>,
    /// After each (re)connection, ask for the presence of the other member of this direct
    /// conversation (`{"action":"presence",…}`): the answer and every later change of
    /// whether they are online print as `presence` frames.
    #[arg(long, value_name = "UUID")]
    presence: Option<Uuid>,
    /// Connect with this token instead of a development token for <handle> (e.g. a Cognito
    /// token, with `cruddur dev --jwks-url …`). It cannot be renewed: once it expires, the
    /// push closes the connection and listen stops.
    #[arg(long)]
    token: Option<String>,
    /// Development signing key: the one the stack uses; never created here [default:
    /// $XDG_CONFIG_HOME/cruddur/dev-signing-key.pk8, i.e. ~/.config/cruddur/…].
    #[arg(long, env = DEV_KEY_FILE_ENV)]
    key_file: Option<PathBuf>,
}

/// First wait before reconnecting, doubled after each failed attempt up to [`MAX_BACKOFF`],
/// with jitter so that clients dropped together do not come back together.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run(store: &Store, args: ListenArgs) -> anyhow::Result<()> {
    let api_url = args
        .api_url
        .clone()
        .unwrap_or_else(|| api_url_of(&args.url));
    // Messages from before listen started are history, not news: never printed.
    let mut timeline = Timeline::since(Timestamp::now().to_string());
    let mut failures = 0u32;
    let mut opened_before = false;
    let mut stdout = std::io::stdout();
    loop {
        // A fresh token for every connection: the last one may be why it closed.
        let token = match (&args.token, &args.handle) {
            (Some(token), _) => token.clone(),
            (None, Some(handle)) => {
                let minted = mint_for_handle(
                    store,
                    handle,
                    args.key_file.clone(),
                    &api_url,
                    Duration::from_secs(12 * 60 * 60),
                )
                .await;
                match minted {
                    Ok(token) => token,
                    // Once connected, a failure here is the stack or its table restarting
                    // (what the loop waits out); before, it is a mistake to report.
                    Err(error) if opened_before => {
                        failures += 1;
                        eprintln!("could not mint a token: {error:#}");
                        if wait_or_stop(failures).await {
                            return Ok(());
                        }
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
            (None, None) => bail!("give a handle or --token"),
        };
        match connect(&args.url, &token).await {
            Ok(mut socket) => {
                failures = 0;
                eprintln!(
                    "{} as {} on {} (Ctrl-C stops)",
                    if opened_before {
                        "reconnected"
                    } else {
                        "listening"
                    },
                    args.handle.as_deref().unwrap_or("the token's user"),
                    args.url
                );
                opened_before = true;
                // What was pushed while no socket was open (or before this one was) is
                // read now; the timeline prints each message once.
                match catch_up(&api_url, &token, &args.conversations, &timeline).await {
                    Ok(missed) => {
                        let missed = timeline.merge_fetched(missed);
                        if !missed.is_empty() {
                            eprintln!("re-fetched {} message(s) missed", missed.len());
                        }
                        for frame in missed {
                            writeln!(stdout, "{frame}")?;
                        }
                        stdout.flush()?;
                    }
                    Err(error) => eprintln!("could not re-fetch what was missed: {error:#}"),
                }
                if let Some(group) = args.presence {
                    // A watch lasts as long as its connection: asked again on every open.
                    let ask =
                        serde_json::json!({"action": "presence", "message_group_uuid": group});
                    if let Err(error) =
                        futures_util::SinkExt::send(&mut socket, Message::text(ask.to_string()))
                            .await
                    {
                        eprintln!("could not ask for presence: {error}");
                    }
                }
                match relay(socket, &mut timeline, &mut stdout).await? {
                    Ended::Stopped => return Ok(()),
                    Ended::Closed(why) => eprintln!("{why}; reconnecting"),
                }
            }
            Err(Refused::Definitely(reason)) => bail!(reason),
            Err(Refused::Token(reason)) if args.token.is_some() => {
                bail!("{reason}: the token given with --token has expired or is not trusted")
            }
            Err(Refused::Token(reason) | Refused::Unreachable(reason)) => {
                failures += 1;
                eprintln!("{reason}");
            }
        }
        if wait_or_stop(failures).await {
            return Ok(());
        }
    }
}

/// Waits [`backoff`] before the next attempt; `true` when Ctrl-C came first.
async fn wait_or_stop(failures: u32) -> bool {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => true,
        () = tokio::time::sleep(backoff(failures)) => false,
    }
}

/// Why a connection attempt failed, and whether trying again may help.
enum Refused {
    /// 403 (not in the directory) or anything else a retry will not change.
    Definitely(String),
    /// 401: the token (a fresh one may do).
    Token(String),
    /// No answer (the stack restarting, the network).
    Unreachable(String),
}

async fn connect(url: &str, token: &str) -> Result<Socket, Refused> {
    match tokio_tungstenite::connect_async(with_token(url, token)).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let reason = format!(
                "the WebSocket API refused the connection: HTTP {}{}",
                response.status(),
                response
                    .body()
                    .as_ref()
                    .map(|body| format!(" {}", String::from_utf8_lossy(body)))
                    .unwrap_or_default()
            );
            match response.status().as_u16() {
                401 => Err(Refused::Token(reason)),
                500..=599 => Err(Refused::Unreachable(reason)),
                _ => Err(Refused::Definitely(reason)),
            }
        }
        Err(error) => Err(Refused::Unreachable(format!(
            "could not connect to {url} (is `cruddur dev` running?): {error}"
        ))),
    }
}

enum Ended {
    /// Ctrl-C.
    Stopped,
    /// The server closed the connection, or it was lost: why.
    Closed(String),
}

/// Prints every new message pushed on `socket` until it closes or Ctrl-C.
async fn relay(
    mut socket: Socket,
    timeline: &mut Timeline,
    stdout: &mut std::io::Stdout,
) -> anyhow::Result<Ended> {
    loop {
        let text = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                let _ = socket.close(None).await;
                return Ok(Ended::Stopped);
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Ended::Closed(format!(
                        "the server closed the connection{}",
                        frame.map(|f| format!(": {} {}", u16::from(f.code), f.reason)).unwrap_or_default()
                    )));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Ok(Ended::Closed(format!("the connection failed: {error}"))),
                None => return Ok(Ended::Closed("the connection ended".into())),
            }
        };
        match serde_json::from_str::<Value>(&text) {
            // A message: printed as sent (keeping its field order) unless seen already.
            Ok(frame) if Timeline::is_message(&frame) => {
                if !timeline.merge(vec![frame]).is_empty() {
                    writeln!(stdout, "{}", one_line(&text))?;
                }
            }
            // An edit, delete or reaction: printed unless it changes nothing (a replay, or
            // older than what is shown).
            Ok(frame) if Timeline::is_change(&frame) => {
                if timeline.apply_change(frame) {
                    writeln!(stdout, "{}", one_line(&text))?;
                }
            }
            // Every other frame (typing, a `read` receipt, presence, …): shown as it comes,
            // never taken for a message nor deduplicated.
            _ => writeln!(stdout, "{}", one_line(&text))?,
        }
        stdout.flush()?;
    }
}

/// What may have been missed: the newest page of each conversation to re-fetch (the
/// `--conversation`s, else the inbox's conversations with news since what was printed), as
/// frames.
async fn catch_up(
    api_url: &str,
    token: &str,
    conversations: &[Uuid],
    timeline: &Timeline,
) -> anyhow::Result<Vec<Value>> {
    let conversations: Vec<String> = if conversations.is_empty() {
        let inbox = get_json(&format!("{api_url}/api/message_groups"), token).await?;
        inbox
            .as_array()
            .context("the inbox is not a list")?
            .iter()
            .filter_map(|row| {
                let group = row["uuid"].as_str()?;
                let newest = row["created_at"].as_str()?;
                timeline.has_news(group, newest).then(|| group.to_owned())
            })
            .collect()
    } else {
        conversations.iter().map(Uuid::to_string).collect()
    };
    let mut frames = Vec::new();
    for group in conversations {
        let page = get_json(&format!("{api_url}/api/messages/{group}"), token).await?;
        for message in page.as_array().context("a conversation is a list")? {
            frames.push(frame_of(&group, message));
        }
    }
    Ok(frames)
}

/// A message of `GET /api/messages/{group}` in the shape of a pushed frame.
fn frame_of(group: &str, message: &Value) -> Value {
    let mut frame = serde_json::Map::new();
    frame.insert("type".into(), Value::from("message"));
    frame.insert("message_group_uuid".into(), Value::from(group));
    if let Some(fields) = message.as_object() {
        for (name, value) in fields {
            frame.insert(name.clone(), value.clone());
        }
    }
    Value::Object(frame)
}

/// The client rule for pushed messages: frames may arrive out of order (DynamoDB Streams
/// orders records per item, not across items) and more than once (a retried batch posts
/// again), and a re-fetch after reconnecting overlaps with frames. So every message is
/// taken once, by `uuid`, and what arrives together is ordered by `created_at` (the one
/// sortable UTC format, so text order is time order). Messages older than the start are
/// history and not taken.
#[derive(Debug, Default)]
pub struct Timeline {
    since: String,
    seen: HashSet<String>,
    /// Per conversation, the newest `created_at` of its last re-fetched page: every message
    /// up to it has been taken. Pushed frames do not move it, since a frame that arrives
    /// after a missed one would hide the gap from the next re-fetch.
    covered: HashMap<String, String>,
    /// Every message taken, by `uuid`, as it now is: edits, deletes and reactions applied.
    messages: HashMap<String, Value>,
    /// Changes of messages not taken yet (a change frame may overtake its message after a
    /// reconnect), applied when the message arrives.
    pending: HashMap<String, Vec<Value>>,
}

impl Timeline {
    pub fn since(start: String) -> Self {
        Self {
            since: start,
            ..Self::default()
        }
    }

    pub fn is_message(frame: &Value) -> bool {
        frame["type"] == "message" && frame["uuid"].is_string()
    }

    /// Whether a frame is a change of a message: `message_updated`, `message_deleted` or
    /// `reaction`.
    pub fn is_change(frame: &Value) -> bool {
        matches!(
            frame["type"].as_str(),
            Some("message_updated" | "message_deleted" | "reaction")
        ) && frame["uuid"].is_string()
    }

    /// A message taken, as it now is (what the tests look at; listen prints frames).
    #[cfg(test)]
    pub fn message(&self, uuid: &str) -> Option<&Value> {
        self.messages.get(uuid)
    }

    /// Applies a change frame to its message (kept for later if the message is not taken
    /// yet); `false` when it changes nothing: a replay, an edit older than the text shown,
    /// anything after a delete (final).
    pub fn apply_change(&mut self, change: Value) -> bool {
        let uuid = change["uuid"].as_str().unwrap_or_default().to_owned();
        match self.messages.get_mut(&uuid) {
            Some(message) => apply_change_to(message, &change),
            None => {
                let pending = self.pending.entry(uuid).or_default();
                if pending.contains(&change) {
                    return false;
                }
                pending.push(change);
                true
            }
        }
    }

    /// The messages of `frames` not taken before, oldest first; takes them.
    pub fn merge(&mut self, frames: Vec<Value>) -> Vec<Value> {
        let mut new: Vec<Value> = frames
            .into_iter()
            .filter(|frame| {
                Self::is_message(frame)
                    && frame["created_at"].as_str().unwrap_or_default() >= self.since.as_str()
            })
            .collect();
        new.sort_by(|a, b| {
            (a["created_at"].as_str(), a["uuid"].as_str())
                .cmp(&(b["created_at"].as_str(), b["uuid"].as_str()))
        });
        new.retain(|frame| {
            let uuid = frame["uuid"].as_str().unwrap_or_default();
            self.seen.insert(uuid.to_owned())
        });
        for frame in &new {
            let uuid = frame["uuid"].as_str().unwrap_or_default().to_owned();
            let mut message = frame.clone();
            for change in self.pending.remove(&uuid).unwrap_or_default() {
                apply_change_to(&mut message, &change);
            }
            self.messages.insert(uuid, message);
        }
        new
    }

    /// [`merge`](Self::merge) for the newest pages of conversations read after a
    /// (re)connection: each page covers its conversation up to its newest message. A message
    /// taken before that was edited or deleted since (frames missed while disconnected)
    /// comes back too, as it now is.
    pub fn merge_fetched(&mut self, frames: Vec<Value>) -> Vec<Value> {
        let mut changed = Vec::new();
        for fetched in &frames {
            let Some(shown) = fetched["uuid"]
                .as_str()
                .and_then(|u| self.messages.get_mut(u))
            else {
                continue;
            };
            let newer = if fetched["deleted"] == true {
                shown["deleted"] != true
            } else {
                shown["deleted"] != true
                    && fetched["edited_at"].as_str().unwrap_or_default()
                        > shown["edited_at"].as_str().unwrap_or_default()
            };
            if newer {
                *shown = fetched.clone();
                changed.push(fetched.clone());
            }
        }
        for frame in &frames {
            if let (Some(group), Some(at)) = (
                frame["message_group_uuid"].as_str(),
                frame["created_at"].as_str(),
            ) {
                let covered = self.covered.entry(group.to_owned()).or_default();
                if at > covered.as_str() {
                    *covered = at.to_owned();
                }
            }
        }
        let mut taken = self.merge(frames);
        taken.extend(changed);
        taken
    }

    /// Whether a conversation whose newest message is at `newest` may hold one not taken
    /// yet: anything newer than its last re-fetch (pushed or not) is read again.
    pub fn has_news(&self, group: &str, newest: &str) -> bool {
        let covered = self
            .covered
            .get(group)
            .map_or(self.since.as_str(), String::as_str);
        newest > covered || (newest == covered && !self.covered.contains_key(group))
    }
}

/// Applies one change frame to a message as shown; whether it changed anything. A delete is
/// final; an edit lands only over an older `edited_at` (frames may come twice or out of
/// order); a reaction sets its emoji's count (`reactions`, emoji → count).
fn apply_change_to(message: &mut Value, change: &Value) -> bool {
    if message["deleted"] == true {
        return false;
    }
    match change["type"].as_str() {
        Some("message_updated") => {
            let at = change["edited_at"].as_str().unwrap_or_default();
            if at <= message["edited_at"].as_str().unwrap_or_default() {
                return false;
            }
            message["message"] = change["message"].clone();
            message["edited_at"] = Value::from(at);
            true
        }
        Some("message_deleted") => {
            message["message"] = Value::from("");
            message["deleted"] = Value::Bool(true);
            message["deleted_at"] = change["deleted_at"].clone();
            if let Some(fields) = message.as_object_mut() {
                fields.remove("reactions");
            }
            true
        }
        Some("reaction") => {
            let (Some(emoji), Some(count)) = (change["emoji"].as_str(), change["count"].as_u64())
            else {
                return false;
            };
            if message["reactions"][emoji].as_u64().unwrap_or(0) == count {
                return false;
            }
            if !message["reactions"].is_object() {
                message["reactions"] = Value::Object(serde_json::Map::new());
            }
            if let Some(reactions) = message["reactions"].as_object_mut() {
                if count == 0 {
                    reactions.remove(emoji);
                } else {
                    reactions.insert(emoji.to_owned(), Value::from(count));
                }
                if reactions.is_empty() {
                    message
                        .as_object_mut()
                        .map(|fields| fields.remove("reactions"));
                }
            }
            true
        }
        _ => false,
    }
}

/// The wait before the next attempt after `failures` failed ones in a row: none after a
/// connection that opened (it closed normally: reconnect at once, with jitter), then
/// doubling from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`], each with up to half again of jitter.
fn backoff(failures: u32) -> Duration {
    let base = if failures == 0 {
        FIRST_BACKOFF / 5
    } else {
        FIRST_BACKOFF
            .saturating_mul(1 << (failures - 1).min(16))
            .min(MAX_BACKOFF)
    };
    let jitter_percent = u32::from(Uuid::new_v4().as_bytes()[0]) % 50;
    base + base * jitter_percent / 100
}

/// A page of 100 messages of 1024 characters, each escaped at worst to 6 bytes, is under
/// 1 MiB; a longer answer is not one of the API's pages.
const MAX_PAGE_BYTES: usize = 4 << 20;

/// `GET url` with the bearer token, as JSON.
async fn get_json(url: &str, token: &str) -> anyhow::Result<Value> {
    let (status, body) = functions::https::get(url, Some(token), HTTP_TIMEOUT, MAX_PAGE_BYTES)
        .await
        .map_err(|reason| anyhow::anyhow!("GET {url}: {reason}"))?;
    if !status.is_success() {
        bail!(
            "GET {url}: HTTP {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("GET {url}: not JSON"))
}

/// The endpoint with `token=<jwt>` added to its query.
pub(crate) fn with_token(url: &str, token: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let token: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    format!("{url}{separator}token={token}")
}

/// A frame as one JSON line: as sent when it is one line already (keeping its field order),
/// else compacted (frames are JSON; anything else is printed with its newlines as spaces).
fn one_line(text: &str) -> String {
    if !text.contains('\n') {
        return text.to_owned();
    }
    serde_json::from_str::<serde_json::Value>(text)
        .map_or_else(|_| text.replace('\n', " "), |value| value.to_string())
}

/// The stack's HTTP base URL for its WebSocket URL (`ws://host:port/ws` →
/// `http://host:port`), where it publishes the development key it trusts.
pub(crate) fn api_url_of(ws_url: &str) -> String {
    let http = ws_url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    match http
        .find("://")
        .and_then(|scheme| http[scheme + 3..].find('/').map(|p| scheme + 3 + p))
    {
        Some(path) => http[..path].to_owned(),
        None => http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_and_error_frames_are_not_messages() {
        let typing = serde_json::json!({
            "type": "typing",
            "message_group_uuid": "5ae290ed-55d1-47a0-bc6d-fe2bc2700399",
            "handle": "bayko",
            "display_name": "Andrew Bayko",
        });
        let error = serde_json::json!({"type": "error", "code": "message_group_not_found", "message": "no such conversation"});
        let mut timeline = Timeline::since(String::new());
        for frame in [typing, error] {
            assert!(!Timeline::is_message(&frame));
            assert!(timeline.merge(vec![frame]).is_empty());
        }
    }

    #[test]
    fn the_stack_is_found_from_its_websocket_url() {
        assert_eq!(
            api_url_of("ws://127.0.0.1:4567/ws"),
            "http://127.0.0.1:4567"
        );
        assert_eq!(api_url_of("wss://example.com/live"), "https://example.com");
        assert_eq!(api_url_of("ws://localhost:9"), "http://localhost:9");
    }

    #[test]
    fn frames_print_as_one_json_line() {
        assert_eq!(
            one_line("{\n  \"type\": \"message\",\n  \"message\": \"a\\nb\"\n}"),
            r#"{"message":"a\nb","type":"message"}"#
        );
        assert_eq!(one_line("not\njson"), "not json");
        let frame = r#"{"type":"message","uuid":"u"}"#;
        assert_eq!(one_line(frame), frame, "field order kept");
    }

    fn message(uuid: &str, at: &str) -> Value {
        serde_json::json!({
            "type": "message", "message_group_uuid": "g", "uuid": uuid,
            "message": uuid, "created_at": format!("2026-11-23T18:14:{at}.000000+00:00"),
        })
    }

    fn uuids(frames: &[Value]) -> Vec<&str> {
        frames.iter().map(|f| f["uuid"].as_str().unwrap()).collect()
    }

    #[test]
    fn messages_are_taken_once_by_uuid_and_ordered_by_created_at() {
        let mut timeline = Timeline::since("2026-11-23T18:14:00.000000+00:00".into());
        // Frames of two conversations' items arrive out of order (the stream orders records
        // per item only): each is taken as it comes.
        assert_eq!(uuids(&timeline.merge(vec![message("b", "20")])), ["b"]);
        assert_eq!(uuids(&timeline.merge(vec![message("a", "10")])), ["a"]);
        // A retried batch posts "b" again: dropped.
        assert!(timeline.merge(vec![message("b", "20")]).is_empty());
        // A re-fetch after reconnecting overlaps with what arrived: only the missed ones,
        // oldest first.
        let missed = timeline.merge(vec![
            message("d", "40"),
            message("b", "20"),
            message("c", "30"),
            message("a", "10"),
            message("c", "30"),
        ]);
        assert_eq!(uuids(&missed), ["c", "d"]);
        // History from before the start is not news.
        let mut fresh = Timeline::since("2026-11-23T18:14:30.000000+00:00".into());
        assert_eq!(
            uuids(&fresh.merge(vec![message("x", "10"), message("y", "31")])),
            ["y"]
        );
        // Anything else (not a message) is no concern of the rule.
        assert!(
            timeline
                .merge(vec![serde_json::json!({"type": "other"})])
                .is_empty()
        );
    }

    #[test]
    fn a_conversation_has_news_when_its_newest_message_is_newer_than_what_was_taken() {
        let mut timeline = Timeline::since("2026-11-23T18:14:00.000000+00:00".into());
        let at = |s: &str| format!("2026-11-23T18:14:{s}.000000+00:00");
        assert!(timeline.has_news("g", &at("05")), "newer than the start");
        timeline.merge_fetched(vec![message("a", "10")]);
        assert!(
            !timeline.has_news("g", &at("10")),
            "re-fetched up to it already"
        );
        assert!(timeline.has_news("g", &at("11")));
        assert!(timeline.has_news("other", &at("01")));
        assert!(!timeline.has_news("other", "2026-11-23T18:13:59.000000+00:00"));
    }

    #[test]
    fn a_pushed_frame_after_a_missed_one_does_not_hide_the_gap() {
        let mut timeline = Timeline::since("2026-11-23T18:14:00.000000+00:00".into());
        let at = |s: &str| format!("2026-11-23T18:14:{s}.000000+00:00");
        timeline.merge_fetched(vec![message("a", "10")]);
        // "b" (at 20) was posted to a connection that was closing; "c" was pushed.
        assert_eq!(uuids(&timeline.merge(vec![message("c", "30")])), ["c"]);
        assert!(timeline.has_news("g", &at("30")), "b is still to be read");
        let missed = timeline.merge_fetched(vec![
            message("a", "10"),
            message("b", "20"),
            message("c", "30"),
        ]);
        assert_eq!(uuids(&missed), ["b"]);
        assert!(!timeline.has_news("g", &at("30")));
    }

    #[test]
    fn a_re_fetched_message_reads_as_its_frame() {
        let listed = serde_json::json!({
            "uuid": "m", "display_name": "A", "handle": "a", "message": "hi",
            "created_at": "2026-11-23T18:14:53.598005+00:00",
        });
        let frame = frame_of("g", &listed);
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["message_group_uuid"], "g");
        assert_eq!(frame["uuid"], "m");
        assert!(Timeline::is_message(&frame));
    }

    fn change(kind: &str, uuid: &str, fields: Value) -> Value {
        let mut frame = serde_json::json!({
            "type": kind, "message_group_uuid": "g", "uuid": uuid,
            "created_at": "2026-11-23T18:14:10.000000+00:00",
        });
        for (name, value) in fields.as_object().unwrap() {
            frame[name] = value.clone();
        }
        frame
    }

    fn edit(uuid: &str, text: &str, at: &str) -> Value {
        change(
            "message_updated",
            uuid,
            serde_json::json!({"message": text, "edited_at": format!("2026-11-23T18:15:{at}.000000+00:00")}),
        )
    }

    fn deleted(uuid: &str) -> Value {
        change(
            "message_deleted",
            uuid,
            serde_json::json!({"deleted_at": "2026-11-23T18:16:00.000000+00:00"}),
        )
    }

    #[test]
    fn an_edited_message_shows_its_newest_text_and_a_deleted_one_stays_deleted() {
        let mut timeline = Timeline::since("2026-11-23T18:14:00.000000+00:00".into());
        timeline.merge(vec![message("a", "10")]);
        assert!(timeline.apply_change(edit("a", "second", "20")));
        assert_eq!(timeline.message("a").unwrap()["message"], "second");
        // A replay, and an older edit arriving late: nothing changes.
        assert!(!timeline.apply_change(edit("a", "second", "20")));
        assert!(!timeline.apply_change(edit("a", "first", "10")));
        assert_eq!(timeline.message("a").unwrap()["message"], "second");
        assert!(timeline.apply_change(deleted("a")));
        let shown = timeline.message("a").unwrap();
        assert_eq!(
            (shown["message"].as_str(), shown["deleted"].as_bool()),
            (Some(""), Some(true))
        );
        // A delete is final: an edit that raced it does not bring the text back.
        assert!(!timeline.apply_change(edit("a", "third", "30")));
        assert!(!timeline.apply_change(deleted("a")));
        assert_eq!(timeline.message("a").unwrap()["message"], "");
    }

    #[test]
    fn reactions_set_their_emojis_count_and_a_change_may_come_before_its_message() {
        let mut timeline = Timeline::since("2026-11-23T18:14:00.000000+00:00".into());
        let reaction = |count: u64| {
            change(
                "reaction",
                "b",
                serde_json::json!({"emoji": "👍", "handle": "h", "display_name": "H", "added": true, "count": count}),
            )
        };
        // Pushed before the message was taken (it is re-fetched after a reconnect).
        assert!(timeline.apply_change(edit("b", "edited early", "20")));
        assert!(
            !timeline.apply_change(edit("b", "edited early", "20")),
            "pending once"
        );
        assert!(timeline.apply_change(reaction(2)));
        timeline.merge(vec![message("b", "15")]);
        let shown = timeline.message("b").unwrap();
        assert_eq!(shown["message"], "edited early");
        assert_eq!(shown["reactions"], serde_json::json!({"👍": 2}));
        assert!(!timeline.apply_change(reaction(2)), "a replay");
        assert!(timeline.apply_change(reaction(0)));
        assert!(timeline.message("b").unwrap().get("reactions").is_none());
        assert!(!Timeline::is_change(&message("b", "15")));
        assert!(Timeline::is_change(&reaction(1)));
    }

    #[test]
    fn a_re_fetch_brings_back_a_message_changed_while_disconnected() {
        let mut timeline = Timeline::since("2026-11-23T18:14:00.000000+00:00".into());
        timeline.merge_fetched(vec![message("a", "10"), message("b", "20")]);
        let mut edited = message("a", "10");
        edited["message"] = Value::from("fixed");
        edited["edited_at"] = Value::from("2026-11-23T18:15:00.000000+00:00");
        let mut gone = message("b", "20");
        gone["message"] = Value::from("");
        gone["deleted"] = Value::Bool(true);
        let back = timeline.merge_fetched(vec![edited.clone(), gone, message("c", "30")]);
        assert_eq!(uuids(&back), ["c", "a", "b"]);
        assert_eq!(timeline.message("a").unwrap()["message"], "fixed");
        assert!(timeline.merge_fetched(vec![edited]).is_empty(), "once");
    }

    #[test]
    fn reconnecting_backs_off_with_jitter_up_to_a_bound() {
        assert!(backoff(0) < FIRST_BACKOFF, "a normal close: again at once");
        for failures in 1..=12 {
            let floor = FIRST_BACKOFF
                .saturating_mul(1 << (failures - 1))
                .min(MAX_BACKOFF);
            let wait = backoff(failures);
            assert!(
                wait >= floor && wait < floor * 3 / 2,
                "{failures}: {wait:?}"
            );
        }
    }

    #[test]
    fn a_read_frame_prints_as_sent_and_is_never_taken_for_a_message() {
        let read = r#"{"type":"read","message_group_uuid":"g","handle":"bayko","read_through":"2026-11-23T18:14:01.000000+00:00"}"#;
        let frame: Value = serde_json::from_str(read).unwrap();
        assert!(!Timeline::is_message(&frame));
        assert!(Timeline::since(String::new()).merge(vec![frame]).is_empty());
        assert_eq!(one_line(read), read);
    }

    #[test]
    fn the_token_goes_in_the_query() {
        assert_eq!(with_token("ws://h/ws", "a.b+c"), "ws://h/ws?token=a.b%2Bc");
        assert_eq!(with_token("ws://h/ws?x=1", "t"), "ws://h/ws?x=1&token=t");
    }
}
