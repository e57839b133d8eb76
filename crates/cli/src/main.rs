//! `cruddur`: the developer CLI. Replaces the original `bin/ddb` scripts.

mod ddb;
mod output;
mod seed;
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
struct Target {
    /// DynamoDB endpoint (DynamoDB Local by default).
    #[arg(long, global = true, env = "CRUDDUR_ENDPOINT_URL", default_value = DEFAULT_LOCAL_ENDPOINT, conflicts_with = "prod")]
    endpoint_url: String,
    /// Use real AWS: the SDK's normal resolution of region, credentials and endpoint.
    #[arg(long, global = true)]
    prod: bool,
    /// Table name.
    #[arg(long, global = true, env = TABLE_NAME_ENV, default_value = DEFAULT_TABLE_NAME)]
    table: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Table administration and inspection.
    #[command(subcommand)]
    Ddb(ddb::DdbCommand),
    /// The user directory.
    #[command(subcommand)]
    Users(users::UsersCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CRUDDUR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let store = connect(&cli.target).await;
    let result = match cli.command {
        Command::Ddb(command) => ddb::run(&store, command, cli.target.prod).await,
        Command::Users(command) => users::run(&store, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", explain(&err, &cli.target));
            ExitCode::FAILURE
        }
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
