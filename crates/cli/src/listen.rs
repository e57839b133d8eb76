//! `cruddur listen <handle>`: connects to the local stack's WebSocket API as that user
//! (with a development token) and prints each pushed frame as one JSON line, until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use local::auth::DEV_KEY_FILE_ENV;
use messaging::Store;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::dev::mint_for_handle;

#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// The user to listen as.
    #[arg(required_unless_present = "token")]
    handle: Option<String>,
    /// The WebSocket endpoint (`cruddur dev`'s).
    #[arg(long, default_value = "ws://127.0.0.1:4567/ws")]
    url: String,
    /// Connect with this token instead of a development token for <handle> (e.g. a Cognito
    /// token, with `cruddur dev --jwks-url …`).
    #[arg(long)]
    token: Option<String>,
    /// Development signing key: the one the stack uses; never created here [default:
    /// $XDG_CONFIG_HOME/cruddur/dev-signing-key.pk8, i.e. ~/.config/cruddur/…].
    #[arg(long, env = DEV_KEY_FILE_ENV)]
    key_file: Option<PathBuf>,
}

pub async fn run(store: &Store, args: ListenArgs) -> anyhow::Result<()> {
    let token = match (args.token, &args.handle) {
        (Some(token), _) => token,
        (None, Some(handle)) => {
            mint_for_handle(
                store,
                handle,
                args.key_file.clone(),
                &api_url_of(&args.url),
                Duration::from_secs(12 * 60 * 60),
            )
            .await?
        }
        (None, None) => bail!("give a handle or --token"),
    };
    let url = with_token(&args.url, &token);
    let (mut socket, _) = match tokio_tungstenite::connect_async(url).await {
        Ok(connected) => connected,
        Err(tungstenite::Error::Http(response)) => bail!(
            "the WebSocket API refused the connection: HTTP {}{}",
            response.status(),
            response
                .body()
                .as_ref()
                .map(|body| format!(" {}", String::from_utf8_lossy(body)))
                .unwrap_or_default()
        ),
        Err(error) => {
            return Err(error).with_context(|| {
                format!("connecting to {} (is `cruddur dev` running?)", args.url)
            });
        }
    };
    eprintln!(
        "listening as {} on {} (Ctrl-C stops)",
        args.handle.as_deref().unwrap_or("the token's user"),
        args.url
    );
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                let _ = socket.close(None).await;
                return Ok(());
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    writeln!(stdout, "{}", one_line(text.as_str()))?;
                    stdout.flush()?;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    writeln!(stdout, "{}", one_line(&String::from_utf8_lossy(&bytes)))?;
                    stdout.flush()?;
                }
                Some(Ok(Message::Close(frame))) => {
                    bail!("the server closed the connection{}", frame.map(|f| format!(": {} {}", f.code, f.reason)).unwrap_or_default())
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("reading from the WebSocket"),
                None => bail!("the connection ended"),
            }
        }
    }
}

/// The endpoint with `token=<jwt>` added to its query.
fn with_token(url: &str, token: &str) -> String {
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
fn api_url_of(ws_url: &str) -> String {
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

    #[test]
    fn the_token_goes_in_the_query() {
        assert_eq!(with_token("ws://h/ws", "a.b+c"), "ws://h/ws?token=a.b%2Bc");
        assert_eq!(with_token("ws://h/ws?x=1", "t"), "ws://h/ws?x=1&token=t");
    }
}
