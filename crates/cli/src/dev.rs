//! `cruddur dev` and `cruddur token`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use local::auth::{DEFAULT_KEY_FILE, DevSigner};
use local::dev::{DevOptions, TokenKeys, shutdown_signal};
use local::pump::PumpConfig;
use messaging::Store;
use messaging::validate::Handle;

use crate::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Port of the HTTP API (4567 is the original backend's; 0 picks a free one).
    #[arg(long, default_value_t = 4567)]
    port: u16,
    /// Address to listen on. Loopback by default: the stack has development keys.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Origins allowed by CORS (repeat the flag for several).
    #[arg(long = "allow-origin", default_value = "http://localhost:3000")]
    allowed_origins: Vec<String>,
    /// Development signing key (created on first run).
    #[arg(long, default_value = DEFAULT_KEY_FILE)]
    key_file: PathBuf,
    /// Verify tokens of a real Cognito user pool instead: its JWKS URL
    /// (https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json).
    #[arg(long, requires_all = ["issuer", "audience"])]
    jwks_url: Option<String>,
    /// Expected `iss` with --jwks-url (https://cognito-idp.<region>.amazonaws.com/<pool id>).
    #[arg(long, requires = "jwks_url")]
    issuer: Option<String>,
    /// Expected app client id (`client_id` or `aud`) with --jwks-url.
    #[arg(long, requires = "jwks_url")]
    audience: Option<String>,
    /// Where batches that keep failing go (the local stand-in for the SQS destination).
    #[arg(long, default_value = ".dynamodb/dead-letter.jsonl")]
    dead_letter_file: PathBuf,
    /// Where push batches that keep failing go (messaging-push's dead-letter queue).
    #[arg(long, default_value = ".dynamodb/push-dead-letter.jsonl")]
    push_dead_letter_file: PathBuf,
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The user's handle.
    handle: String,
    /// Development signing key (the one `cruddur dev` uses).
    #[arg(long, default_value = DEFAULT_KEY_FILE)]
    key_file: PathBuf,
    /// How long the token is valid.
    #[arg(long, default_value_t = 12 * 60)]
    valid_minutes: u64,
}

pub async fn run(target: &Target, args: DevArgs) -> anyhow::Result<()> {
    if target.prod {
        bail!("the local stack runs against DynamoDB Local only; drop --prod");
    }
    let keys = match (args.jwks_url, args.issuer, args.audience) {
        (Some(url), Some(issuer), Some(audience)) => TokenKeys::Jwks {
            url,
            issuer,
            audience,
        },
        _ => TokenKeys::Dev(args.key_file),
    };
    let options = DevOptions {
        endpoint_url: target.endpoint_url.clone(),
        table: target.table.clone(),
        listen: SocketAddr::new(args.host, args.port),
        allowed_origins: args.allowed_origins,
        keys,
        pump: PumpConfig {
            dead_letter_file: args.dead_letter_file,
            ..PumpConfig::default()
        },
        push_pump: PumpConfig {
            dead_letter_file: args.push_dead_letter_file,
            ..PumpConfig::push()
        },
    };
    let table = options.table.clone();
    let endpoint = options.endpoint_url.clone();
    local::dev::run(
        options,
        move |address| {
            // Stdout, one line: scripts and tests wait for it.
            println!("Cruddur local stack ready on http://{address} (table {table} at {endpoint})");
        },
        shutdown_signal(),
    )
    .await
}

pub async fn token(store: &Store, args: TokenArgs) -> anyhow::Result<()> {
    let token = mint_for_handle(
        store,
        &args.handle,
        &args.key_file,
        Duration::from_secs(args.valid_minutes * 60),
    )
    .await?;
    println!("{token}");
    Ok(())
}

/// A development token for the user with this handle.
pub async fn mint_for_handle(
    store: &Store,
    handle: &str,
    key_file: &std::path::Path,
    valid_for: Duration,
) -> anyhow::Result<String> {
    let handle = Handle::parse(handle).with_context(|| format!("{handle:?}"))?;
    let Some(user) = store.user_by_handle(&handle).await? else {
        bail!(
            "no user with handle {handle} (seed with `cruddur ddb seed` or add one with `cruddur users add`)"
        );
    };
    let signer = DevSigner::load_or_create(key_file)?;
    signer.mint(&user.cognito_sub, user.handle.as_str(), valid_for)
}
