//! `cruddur dev` and `cruddur token`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use local::auth::{DEV_KEY_FILE_ENV, DevSigner, StackKeys, default_key_file, stack_keys};
use local::dev::{DevOptions, TokenKeys, shutdown_signal};
use local::like_aws::{LIKE_AWS_WS_TIMEOUTS, LikeAws, LikeAwsRates};
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
    /// API Gateway does after 10 minutes; shorten it to see clients reconnect [default: 600;
    /// 60 with --like-aws].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    ws_idle_timeout: Option<u64>,
    /// Close every WebSocket this many seconds after it opened, with close code 1001, as API
    /// Gateway does after 2 hours [default: 7200; 300 with --like-aws].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    ws_max_duration: Option<u64>,
    /// Behave like AWS where DynamoDB Local and the stand-ins are kinder: transaction
    /// conflicts and throttling on a few requests, a group index that lags behind recent
    /// writes, WebSocket timeouts shortened so they show. Counts of what was played: at
    /// `GET /_dev/like-aws`, and on exit.
    #[arg(long)]
    like_aws: bool,
    /// With --like-aws: the share (0 to 1) of writes refused because a transaction holds
    /// their item.
    #[arg(long, value_name = "RATE", requires = "like_aws", default_value_t = LikeAwsRates::DEFAULT_CONFLICTS, value_parser = rate)]
    like_aws_conflict_rate: f64,
    /// With --like-aws: the share (0 to 1) of DynamoDB requests throttled (the SDK retries
    /// them with backoff).
    #[arg(long, value_name = "RATE", requires = "like_aws", default_value_t = LikeAwsRates::DEFAULT_THROTTLING, value_parser = rate)]
    like_aws_throttle_rate: f64,
    /// With --like-aws: the share (0 to 1) of group index reads that lag, on the rows
    /// written in the last second.
    #[arg(long, value_name = "RATE", requires = "like_aws", default_value_t = LikeAwsRates::DEFAULT_INDEX_LAG, value_parser = rate)]
    like_aws_index_lag_rate: f64,
    /// With --like-aws: where the pseudo-random draws start [default: a random seed, printed
    /// at start].
    #[arg(long, value_name = "SEED", requires = "like_aws")]
    like_aws_seed: Option<u64>,
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
    let ws_timeouts = args.ws_timeouts();
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
    let like_aws = args.like_aws.then(|| {
        LikeAws::new(LikeAwsRates {
            conflicts: args.like_aws_conflict_rate,
            throttling: args.like_aws_throttle_rate,
            index_lag: args.like_aws_index_lag_rate,
            seed: args
                .like_aws_seed
                .unwrap_or_else(|| LikeAwsRates::default().seed),
        })
    });
    if let Some(like_aws) = &like_aws {
        eprintln!(
            "--like-aws: {like_aws}; WebSockets close after {} s idle and {} s open; \
             counts at GET /_dev/like-aws",
            ws_timeouts.idle.as_secs(),
            ws_timeouts.max_duration.as_secs()
        );
    }
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
        ws_timeouts,
        like_aws: like_aws.clone(),
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
    .await?;
    if let Some(like_aws) = like_aws {
        eprintln!("--like-aws played: {}", like_aws.injected());
    }
    Ok(())
}

impl DevArgs {
    /// The WebSocket timeouts asked for; else API Gateway's, shortened with --like-aws.
    fn ws_timeouts(&self) -> WsTimeouts {
        let defaults = if self.like_aws {
            LIKE_AWS_WS_TIMEOUTS
        } else {
            WsTimeouts::API_GATEWAY
        };
        WsTimeouts {
            idle: self
                .ws_idle_timeout
                .map_or(defaults.idle, Duration::from_secs),
            max_duration: self
                .ws_max_duration
                .map_or(defaults.max_duration, Duration::from_secs),
        }
    }
}

/// A share, from 0 (never) to 1 (always).
fn rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Dev {
        #[command(flatten)]
        args: DevArgs,
    }

    fn parse(args: &[&str]) -> Result<DevArgs, clap::Error> {
        Dev::try_parse_from(std::iter::once("dev").chain(args.iter().copied())).map(|d| d.args)
    }

    #[test]
    fn like_aws_shortens_the_websocket_timeouts_unless_they_are_given() {
        let secs = |t: WsTimeouts| (t.idle.as_secs(), t.max_duration.as_secs());
        assert_eq!(secs(parse(&[]).unwrap().ws_timeouts()), (600, 7200));
        assert_eq!(
            secs(parse(&["--like-aws"]).unwrap().ws_timeouts()),
            (60, 300)
        );
        let given = parse(&["--like-aws", "--ws-max-duration", "3"]).unwrap();
        assert_eq!(secs(given.ws_timeouts()), (60, 3));
        let given = parse(&["--ws-idle-timeout", "5"]).unwrap();
        assert_eq!(secs(given.ws_timeouts()), (5, 7200));
    }

    #[test]
    fn like_aws_rates_are_shares_and_need_like_aws() {
        let args = parse(&["--like-aws", "--like-aws-conflict-rate", "0.5"]).unwrap();
        assert_eq!(args.like_aws_conflict_rate, 0.5);
        assert_eq!(
            args.like_aws_throttle_rate,
            LikeAwsRates::DEFAULT_THROTTLING
        );
        for wrong in ["1.5", "-0.1", "NaN", "often"] {
            let flag = format!("--like-aws-throttle-rate={wrong}");
            let error = parse(&["--like-aws", &flag]).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{wrong}"
            );
        }
        let error = parse(&["--like-aws-index-lag-rate", "0.5"]).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }
}
