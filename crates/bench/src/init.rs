//! Lambda init time (process start → first `GET /runtime/invocation/next`) and sizes.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use functions::FUNCTION_NAMES;
use tokio::sync::mpsc;

const RUNS: usize = 7;

pub async fn run(release_dir: &Path, lambda_dir: &Path, endpoint: &str) -> anyhow::Result<()> {
    println!("## Functions: size and init time (x86_64 release builds)\n");
    if !release_dir.join(FUNCTION_NAMES[0]).exists() {
        println!(
            "No release builds in {}: run `make build` first.\n",
            release_dir.display()
        );
        return Ok(());
    }
    println!(
        "Init: process start until the runtime asks for its first event, median of {RUNS} runs, against a stand-in Runtime API on loopback.\n"
    );
    println!("| function | binary | zip | init p50 ms | init max ms |");
    println!("|---|---:|---:|---:|---:|");
    for name in FUNCTION_NAMES {
        let binary = release_dir.join(name);
        let zip = lambda_dir.join(name).join("bootstrap.zip");
        let size = |path: &Path| {
            std::fs::metadata(path).map_or("–".to_owned(), |m| {
                format!("{:.2} MB", m.len() as f64 / 1_000_000.0)
            })
        };
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            samples.push(init_time(&binary, name, endpoint).await?.as_secs_f64() * 1000.0);
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "| `{name}` | {} | {} | {:.1} | {:.1} |",
            size(&binary),
            size(&zip),
            crate::percentile(&samples, 50.0),
            samples.last().copied().unwrap_or(f64::NAN),
        );
    }
    println!();
    Ok(())
}

async fn init_time(binary: &Path, name: &str, endpoint: &str) -> anyhow::Result<Duration> {
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
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("TABLE_NAME", "cruddur-messages")
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
