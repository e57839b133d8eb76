//! `cruddur`: the developer CLI. Replaces the original `bin/ddb` scripts.

mod ddb;
mod dev;
mod listen;
mod messages;
mod migrate;
mod output;
mod react;
mod seed;
mod typing;
mod users;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use messaging::Store;
use messaging::connect::{DEFAULT_LOCAL_ENDPOINT, client_from_env, local_client};
use messaging::schema::{DEFAULT_TABLE_NAME, TABLE_NAME_ENV};
use messaging::store::FailureKind;

#[derive(Debug, Parser)]
#[command(name = "cruddur", version, about = "Cruddur Messaging developer tools")]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

/// Which DynamoDB to talk to.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// DynamoDB endpoint (DynamoDB Local by default).
    #[arg(long, global = true, env = "CRUDDUR_ENDPOINT_URL", default_value = DEFAULT_LOCAL_ENDPOINT, conflicts_with = "prod")]
    pub endpoint_url: String,
    /// Use real AWS: the SDK's normal resolution of region, credentials and endpoint.
    #[arg(long, global = true)]
    pub prod: bool,
    /// Table name.
    #[arg(long, global = true, env = TABLE_NAME_ENV, default_value = DEFAULT_TABLE_NAME)]
    pub table: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Table administration and inspection.
    #[command(subcommand)]
    Ddb(ddb::DdbCommand),
    /// The user directory.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Send, edit and delete messages on someone's behalf.
    #[command(subcommand)]
    Messages(messages::MessagesCommand),
    /// Run the local stack: the HTTP API with JWT checks, and the stream pump.
    Dev(dev::DevArgs),
    /// Print a development bearer token for a user of the local stack.
    Token(dev::TokenArgs),
    /// Connect to the local stack's WebSocket API as a user and print each pushed frame as
    /// a JSON line (Ctrl-C stops).
    Listen(listen::ListenArgs),
    /// Say on the local stack's WebSocket API that a user is typing in a conversation
    /// (`cruddur listen` as another member shows it).
    Typing(typing::TypingArgs),
    /// React to a message on a member's behalf, or take the reaction back (`--remove`).
    React(react::ReactArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (default_level, json) = match &cli.command {
        Command::Dev(args) => ("info", args.log_format == dev::LogFormat::Json),
        _ => ("warn", false),
    };
    init_logging(default_level, json);
    let store = connect(&cli.target).await;
    let result = match cli.command {
        Command::Ddb(command) => ddb::run(&store, command, cli.target.prod).await,
        Command::Users(command) => users::run(&store, command).await,
        Command::Messages(command) => messages::run(&store, command).await,
        Command::Dev(args) => dev::run(&cli.target, args).await,
        Command::Token(args) => dev::token(&store, args).await,
        Command::Listen(args) => listen::run(&store, args).await,
        Command::Typing(args) => typing::run(&store, args).await,
        Command::React(args) => react::run(&store, args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", explain(&err, &cli.target));
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: pretty for people, JSON for machines. `CRUDDUR_LOG` takes an
/// `EnvFilter` directive (e.g. `debug`, `messaging=trace`).
fn init_logging(default_level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRUDDUR_LOG")
        .unwrap_or_else(|_| default_level.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn connect(target: &Target) -> Store {
    let client = if target.prod {
        client_from_env(None).await
    } else {
        local_client(&target.endpoint_url, None)
    };
    Store::new(client, target.table.clone())
}

/// Turns the common failures into advice.
fn explain(err: &anyhow::Error, target: &Target) -> String {
    let kind = err
        .downcast_ref::<messaging::StoreError>()
        .and_then(messaging::StoreError::failure_kind);
    match (kind, target.prod) {
        (Some(FailureKind::Unreachable), false) => format!(
            "cannot reach DynamoDB Local at {}. Start it with `make ddb-start` (or run \
             `make dev`), or point elsewhere with --endpoint-url.\n  cause: {err:#}",
            target.endpoint_url
        ),
        (Some(FailureKind::TableMissing), _) => format!(
            "table {:?} does not exist. Create it with `cruddur ddb schema-load`.\n  cause: {err:#}",
            target.table
        ),
        _ => format!("{err:#}"),
    }
}
