//! `make bench`: figures for docs/BENCHMARKS.md, measured against DynamoDB Local.
//!
//! - stream: messages/s through `messaging-stream`'s handler and DynamoDB requests per
//!   message, per conversation and per batch, over records read from the table's stream;
//!   and per edit (`--suite changes` alone): requests, request units and time per change;
//! - api: p50/p99 handler latency and requests per call, per route; what the per-user
//!   limits cost a write (requests, transaction items, write units); editing and deleting
//!   a message (requests, latency, request units);
//! - reactions: adding, taking back and repeating a reaction through their handlers, on a
//!   small message and on one carrying the largest reaction set (requests, write units);
//! - groups: creating a 50-member group, marking read, adding and leaving, and a 50-member
//!   group's fan-out with unread counts, through the real handlers;
//! - push: frame latency through the local stack after `POST /api/messages` answers,
//!   frames to non-members and duplicates, and requests per pushed message;
//! - typing: how soon a typing frame reaches the other member after the client sent it,
//!   through the local stack, that it reaches no one else and at most every 2 s, and the
//!   requests one typing event costs (the handler alone, counted);
//! - cost: DynamoDB read and write request units per operation (AWS's rules: testkit's
//!   `CapacityMeter`), handler time and frames, for a direct, a 10- and a 50-member group
//!   message (send, inbox rows, push), reads, group changes, connections; also written as
//!   JSON (`--costs-json`) for `scripts/capacity.py`;
//! - init: process start until the runtime asks for its first event, per function
//!   (needs the release binary: `make build`), plus binary and zip sizes.
//!
//! Absolute times are DynamoDB Local's on this machine, not DynamoDB's; request counts
//! are exact and are what carries over to AWS.

mod api;
mod cost;
mod edits;
mod events;
mod groups;
mod idempotency;
mod init;
mod limits;
mod push;
mod reactions;
mod stream;
mod typing;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    All,
    Stream,
    /// `messaging-stream`'s cost per edit or delete only (also part of `stream`).
    Changes,
    Api,
    Groups,
    Push,
    Init,
    /// Reactions only (also part of `api`).
    Reactions,
    /// Request units, handler time and frames per operation; its JSON feeds
    /// `scripts/capacity.py`.
    Cost,
    /// Typing frame latency through the local stack, and requests per typing event.
    Typing,
}

#[derive(Debug, Parser)]
#[command(about = "Cruddur Messaging benchmarks (DynamoDB Local from CRUDDUR_TEST_DDB_ENDPOINT)")]
struct Args {
    #[arg(long, value_enum, default_value_t = Suite::All)]
    suite: Suite,
    /// Where `make build` put the zip (`<dir>/cruddur-lambda/bootstrap.zip`).
    #[arg(long, default_value = "target/lambda")]
    lambda_dir: std::path::PathBuf,
    /// Where `make build` put the release binary (`<dir>/cruddur-lambda`; or, from a build
    /// before the one binary, `<dir>/<function>` for each function).
    #[arg(long, default_value = "target/x86_64-unknown-linux-gnu/release")]
    release_dir: std::path::PathBuf,
    /// Calls per API route.
    #[arg(long, default_value_t = 300)]
    calls: usize,
    /// Messages sent one at a time for the push latency.
    #[arg(long, default_value_t = 100)]
    sends: usize,
    /// Where `--suite cost` writes its figures for `scripts/capacity.py`.
    #[arg(long, default_value = "target/bench/costs.json")]
    costs_json: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Warnings on stderr (a conversation reported for retry says why); `RUST_LOG` for more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let endpoint = testkit::endpoint();
    println!("# Cruddur Messaging benchmarks\n");
    println!("DynamoDB Local at {endpoint}; requests counted by an SDK interceptor.\n");
    // The API first: DynamoDB Local slows down as the stream suite fills it.
    if matches!(args.suite, Suite::All | Suite::Api) {
        api::run(args.calls).await?;
        limits::run(args.calls).await?;
        idempotency::run(args.calls).await?;
        edits::run(args.calls).await?;
        reactions::run(args.calls).await?;
    }
    if args.suite == Suite::Reactions {
        reactions::run(args.calls).await?;
    }
    if matches!(args.suite, Suite::All | Suite::Groups) {
        groups::run(args.calls).await?;
    }
    if matches!(args.suite, Suite::All | Suite::Push) {
        push::run(args.sends).await?;
    }
    if matches!(args.suite, Suite::All | Suite::Typing) {
        typing::run(args.sends).await?;
    }
    if matches!(args.suite, Suite::All | Suite::Stream) {
        stream::run().await?;
    }
    if matches!(args.suite, Suite::Changes) {
        stream::changes().await?;
    }
    if matches!(args.suite, Suite::All | Suite::Cost) {
        cost::run(args.calls.min(100), &args.costs_json).await?;
    }
    if matches!(args.suite, Suite::All | Suite::Init) {
        init::run(&args.release_dir, &args.lambda_dir, &endpoint).await?;
    }
    Ok(())
}

/// `p`-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
