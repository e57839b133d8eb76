//! Lambda init time (process start → first `GET /runtime/invocation/next`) and sizes.
//!
//! Measures what `make build` left: the one binary `cruddur-lambda`, started once per
//! function with `_HANDLER` set as Lambda sets it from the template's `Handler`; or, in a
//! release directory from before the one build (one binary per function), each function's
//! own binary, so the two layouts can be compared with the same code.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use functions::Function;
use tokio::sync::mpsc;

const RUNS: usize = 11;
/// The binary `make build` builds and every function deploys.
const BINARY: &str = "cruddur-lambda";

pub async fn run(release_dir: &Path, lambda_dir: &Path, endpoint: &str) -> anyhow::Result<()> {
    println!("## Functions: size and init time (x86_64 release builds)\n");
    let one_binary = release_dir.join(BINARY);
    let layout = if one_binary.exists() {
        Layout::OneBinary(one_binary)
    } else if release_dir.join(Function::ALL[0].name()).exists() {
        Layout::PerFunction
    } else {
        println!(
            "No release build in {}: run `make build` first.\n",
            release_dir.display()
        );
        return Ok(());
    };
    let size = |path: &Path| {
        std::fs::metadata(path).map_or("–".to_owned(), |m| {
            format!("{:.2} MB", m.len() as f64 / 1_000_000.0)
        })
    };
    if let Layout::OneBinary(binary) = &layout {
        println!(
            "One binary for every function: `{BINARY}` {}, zip {} (`{}`).\n",
            size(binary),
            size(&lambda_dir.join(BINARY).join("bootstrap.zip")),
            lambda_dir.join(BINARY).join("bootstrap.zip").display(),
        );
    }
    println!(
        "Init: process start until the runtime asks for its first event, median of {RUNS} runs, against a stand-in Runtime API on loopback.\n"
    );
    println!("| function | binary | zip | init p50 ms | init max ms |");
    println!("|---|---:|---:|---:|---:|");
    for function in Function::ALL {
        let name = function.name();
        let (binary, zip) = match &layout {
            Layout::OneBinary(binary) => (binary.clone(), lambda_dir.join(BINARY)),
            Layout::PerFunction => (release_dir.join(name), lambda_dir.join(name)),
        };
        let zip = zip.join("bootstrap.zip");
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = init_time(&binary, function, endpoint).await?;
            samples.push(started.as_secs_f64() * 1000.0);
        }
        samples.sort_by(f64::total_cmp);
        let (binary, zip) = match layout {
            Layout::OneBinary(_) => ("(same)".to_owned(), "(same)".to_owned()),
            Layout::PerFunction => (size(&binary), size(&zip)),
        };
        println!(
            "| `{name}` | {binary} | {zip} | {:.1} | {:.1} |",
            crate::percentile(&samples, 50.0),
            samples.last().copied().unwrap_or(f64::NAN),
        );
    }
    println!();
    Ok(())
}

enum Layout {
    /// `cruddur-lambda`, told its function by `_HANDLER`.
    OneBinary(PathBuf),
    /// `<release dir>/<function>`, one per function (builds from before the one binary).
    PerFunction,
}

async fn init_time(binary: &Path, function: Function, endpoint: &str) -> anyhow::Result<Duration> {
    let name = function.name();
    let (asked, mut first_ask) = mpsc::channel::<Instant>(1);
    // The Runtime API's "next event" never answers: the function is ready once it asks.
    let app = Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        get(move || {
            let asked = asked.clone();
            async move {
                let _ = asked.try_send(Instant::now());
                std::future::pending::<()>().await;
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    // As Lambda starts the template's function: its Handler, its deployed name.
    let deployed = format!("cruddur-messaging-{name}");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env(functions::function::HANDLER_ENV, name)
        .env(functions::function::FUNCTION_NAME_ENV, &deployed)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{deployed}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("TABLE_NAME", "cruddur-messages")
        // What the template gives ws-authorizer and messaging-push; neither is contacted
        // before the first event (the key set is fetched on first use).
        .env(
            functions::jwt::ISSUER_ENV,
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench",
        )
        .env(functions::jwt::AUDIENCE_ENV, "bench-client")
        .env(
            functions::push::ENDPOINT_ENV,
            "https://bench.execute-api.us-east-1.amazonaws.com/live",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let asked_at = tokio::time::timeout(Duration::from_secs(10), first_ask.recv())
        .await
        .map_err(|_| anyhow::anyhow!("{name} never asked for an event"))?
        .ok_or_else(|| anyhow::anyhow!("runtime API stopped"))?;
    child.kill().await?;
    server.abort();
    Ok(asked_at - started)
}
