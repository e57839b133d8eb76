//! `cruddur dev` and `cruddur token`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use local::auth::{DEV_KEY_FILE_ENV, DevSigner, StackKeys, default_key_file, stack_keys};
use local::dev::{DevOptions, TokenKeys, shutdown_signal};
use local::pump::PumpConfig;
use local::websocket::WsTimeouts;
use messaging::Store;
use messaging::store::Limits;
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
    /// Development signing key, created on first run [default:
    /// $XDG_CONFIG_HOME/cruddur/dev-signing-key.pk8, i.e. ~/.config/cruddur/…].
    #[arg(long, env = DEV_KEY_FILE_ENV)]
    key_file: Option<PathBuf>,
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
    /// Close a WebSocket after this many seconds without traffic, with close code 1001, as
    /// API Gateway does after 10 minutes; shorten it to see clients reconnect.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    ws_idle_timeout: u64,
    /// Close every WebSocket this many seconds after it opened, with close code 1001, as API
    /// Gateway does after 2 hours.
    #[arg(long, value_name = "SECONDS", default_value_t = 7200, value_parser = clap::value_parser!(u64).range(1..))]
    ws_max_duration: u64,
    /// Messages a user may send at once before the rate applies (0: no limit on sending).
    #[arg(long, env = functions::limits::MESSAGE_RATE_BURST_ENV, default_value_t = Limits::DEFAULT_SEND_BURST)]
    message_rate_burst: u32,
    /// Messages per second a user may send after the burst (0: no limit on sending).
    #[arg(long, env = functions::limits::MESSAGE_RATE_PER_SECOND_ENV, default_value_t = Limits::DEFAULT_SEND_PER_SECOND)]
    message_rate_per_second: u32,
    /// Groups a user may create plus member additions, per minute (0: no limit).
    #[arg(long, env = functions::limits::GROUP_CHANGES_PER_MINUTE_ENV, default_value_t = Limits::DEFAULT_GROUP_CHANGES_PER_MINUTE)]
    group_changes_per_minute: u32,
    /// Live WebSocket connections per user; a newer one closes the oldest.
    #[arg(long, env = functions::limits::MAX_CONNECTIONS_PER_USER_ENV, default_value_t = functions::limits::DEFAULT_MAX_CONNECTIONS_PER_USER as u64, value_parser = clap::value_parser!(u64).range(1..=1000))]
    max_connections_per_user: u64,
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The user's handle.
    handle: String,
    /// Development signing key: the one the stack uses; never created here [default:
    /// $XDG_CONFIG_HOME/cruddur/dev-signing-key.pk8, i.e. ~/.config/cruddur/…].
    #[arg(long, env = DEV_KEY_FILE_ENV)]
    key_file: Option<PathBuf>,
    /// How long the token is valid.
    #[arg(long, default_value_t = 12 * 60)]
    valid_minutes: u64,
    /// The local stack the token is for: if it runs, its published key must be this key.
    #[arg(long, default_value = "http://127.0.0.1:4567")]
    api_url: String,
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
        _ => TokenKeys::Dev(match args.key_file {
            Some(path) => path,
            None => default_key_file()?,
        }),
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
        ws_timeouts: WsTimeouts {
            idle: Duration::from_secs(args.ws_idle_timeout),
            max_duration: Duration::from_secs(args.ws_max_duration),
        },
        limits: Limits::new(
            args.message_rate_burst,
            args.message_rate_per_second,
            args.group_changes_per_minute,
        ),
        max_connections_per_user: usize::try_from(args.max_connections_per_user)
            .unwrap_or(usize::MAX),
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
        args.key_file,
        &args.api_url,
        Duration::from_secs(args.valid_minutes * 60),
    )
    .await?;
    println!("{token}");
    Ok(())
}

/// A development token for the user with this handle, signed with the development key
/// (`key_file`, else the per-user default) that the stack at `api_url` trusts.
pub async fn mint_for_handle(
    store: &Store,
    handle: &str,
    key_file: Option<PathBuf>,
    api_url: &str,
    valid_for: Duration,
) -> anyhow::Result<String> {
    let handle = Handle::parse(handle).with_context(|| format!("{handle:?}"))?;
    let key_file = match key_file {
        Some(path) => path,
        None => default_key_file()?,
    };
    // Never a new key here: a token nobody trusts only fails later, as a bare 401.
    let signer = DevSigner::load(&key_file)?;
    match stack_keys(api_url, &signer).await? {
        StackKeys::Trusted | StackKeys::NoStack => {}
        StackKeys::OtherKeys(trusted) => bail!(
            "the stack at {} trusts development keys {trusted:?}, not this one ({}, key {}): \
             pass the --key-file it was started with",
            api_url,
            key_file.display(),
            signer.key_id()
        ),
        StackKeys::UserPool => bail!(
            "the stack at {} verifies a user pool's tokens (it publishes no development key): \
             sign in through the user pool instead",
            api_url
        ),
    }
    let Some(user) = store.user_by_handle(&handle).await? else {
        bail!(
            "no user with handle {handle} (seed with `cruddur ddb seed` or add one with `cruddur users add`)"
        );
    };
    signer.mint(&user.cognito_sub, user.handle.as_str(), valid_for)
}
