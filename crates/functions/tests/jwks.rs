//! Where the Lambdas' verifier gets its keys, read as an attacker would: a key server that
//! is down cannot be made to serve one fetch per token, a JWKS URL in the clear is refused
//! at configuration, and whoever answers the fetch cannot make it buffer more than a key
//! set needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use functions::jwt::{
    JwksFetchError, JwtVerifier, KeySource, KeysFuture, KeysUnavailable, MAX_JWKS_BYTES,
    VerifyError, fetch_jwks,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
use support::ManualClock;

/// A key server that never answers, counting the fetches it is asked for.
#[derive(Default)]
struct Down {
    fetches: AtomicUsize,
}

impl KeySource for Down {
    fn fetch(&self) -> KeysFuture<'_> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(KeysUnavailable("connection refused".into())) })
    }
}

/// Any token: with no key set, the verifier cannot look at it anyway.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZvcmdlZCJ9.e30.c2ln";

#[tokio::test]
async fn a_key_server_that_is_down_is_asked_once_per_interval_however_many_tokens_arrive() {
    let source = Arc::new(Down::default());
    let clock = ManualClock::new();
    let verifier = Arc::new(
        JwtVerifier::new(source.clone(), "https://issuer", "client").with_clock(clock.clone()),
    );

    // A flood at a cold start: one fetch; every token gets the failure (a 500, not a 401).
    let flood: Vec<_> = (0..20)
        .map(|_| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(TOKEN).await })
        })
        .collect();
    for outcome in flood {
        let outcome = outcome.await.unwrap();
        assert!(
            matches!(&outcome, Err(VerifyError::KeysUnavailable(reason)) if reason.0 == "connection refused"),
            "{outcome:?}"
        );
    }
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);

    clock.advance(JwtVerifier::MIN_REFETCH - Duration::from_secs(1));
    assert!(verifier.verify(TOKEN).await.is_err());
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1, "still too soon");

    clock.advance(Duration::from_secs(1));
    assert!(verifier.verify(TOKEN).await.is_err());
    assert!(verifier.verify(TOKEN).await.is_err());
    assert_eq!(
        source.fetches.load(Ordering::SeqCst),
        2,
        "once per interval"
    );
}

#[test]
fn a_jwks_url_in_the_clear_is_refused_at_configuration() {
    let config = |issuer: &'static str, jwks: Option<&'static str>| {
        JwtVerifier::from_vars(move |name| match name {
            "JWT_ISSUER" => Some(issuer.to_owned()),
            "JWT_AUDIENCE" => Some("client".to_owned()),
            "JWKS_URL" => jwks.map(str::to_owned),
            _ => None,
        })
    };
    let pool = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC";
    assert!(config(pool, None).is_ok(), "the pool's own URL");
    for loopback in [
        "http://127.0.0.1:4567/.well-known/jwks.json",
        "http://localhost:8080/jwks.json",
        "http://[::1]:8080/jwks.json",
    ] {
        assert!(config(pool, Some(loopback)).is_ok(), "{loopback}");
    }
    for (issuer, jwks) in [
        (
            pool,
            Some("http://cognito-idp.us-east-1.amazonaws.com/x/.well-known/jwks.json"),
        ),
        (pool, Some("http://10.0.0.5/jwks.json")),
        (pool, Some("http://localhost.example.com/jwks.json")),
        (pool, Some("ftp://127.0.0.1/jwks.json")),
        (pool, Some("/.well-known/jwks.json")),
        // Without JWKS_URL the keys come from the issuer: an http issuer is refused too.
        (
            "http://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC",
            None,
        ),
    ] {
        let error = config(issuer, jwks).expect_err(&format!("{issuer} {jwks:?}"));
        assert!(
            error.contains("refusing JWKS URL") && error.contains("https"),
            "{error}"
        );
    }
}

/// Serves `response` (raw HTTP) once to whoever connects, and hands back how many bytes of
/// it the client took before closing.
async fn serve_once(response: Vec<u8>) -> (String, tokio::task::JoinHandle<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let served = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let mut written = 0;
        for chunk in response.chunks(1024) {
            if socket.write_all(chunk).await.is_err() {
                break;
            }
            written += chunk.len();
        }
        written
    });
    (url, served)
}

/// A valid key set padded past `size` bytes with a member JWKS readers ignore.
fn padded_jwks(size: usize) -> String {
    format!(r#"{{"keys":[],"padding":"{}"}}"#, "x".repeat(size))
}

#[tokio::test]
async fn a_jwks_body_past_the_cap_is_an_error_not_an_allocation() {
    // Well under the cap: read.
    let small = padded_jwks(1024);
    let (url, _) = serve_once(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{small}",
            small.len()
        )
        .into_bytes(),
    )
    .await;
    assert!(fetch_jwks(&url).await.unwrap().keys.is_empty());

    // Declared larger than the cap: refused from its Content-Length, before the body.
    let large = padded_jwks(MAX_JWKS_BYTES);
    let (url, _) = serve_once(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{large}",
            large.len()
        )
        .into_bytes(),
    )
    .await;
    let error = fetch_jwks(&url).await.unwrap_err();
    assert!(
        matches!(&error, JwksFetchError::TooLarge { limit, .. } if *limit == MAX_JWKS_BYTES),
        "{error}"
    );

    // Not declared (chunked, 32 MiB, more than the sockets' buffers hold): refused once the
    // cap is passed; the rest is not read.
    let chunk = "x".repeat(16 * 1024);
    let head = r#"{"keys":[],"padding":""#;
    let mut body = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    body.push_str(&format!("{:x}\r\n{head}\r\n", head.len()));
    for _ in 0..2048 {
        body.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    body.push_str("2\r\n\"}\r\n0\r\n\r\n");
    let total = body.len();
    let (url, served) = serve_once(body.into_bytes()).await;
    let error = fetch_jwks(&url).await.unwrap_err();
    assert!(matches!(&error, JwksFetchError::TooLarge { .. }), "{error}");
    let written = served.await.unwrap();
    assert!(
        written < total,
        "the client stopped reading: {written} of {total} bytes sent"
    );
}
