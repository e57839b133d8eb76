//! `cruddur dev`: the whole system on one machine. The API's routes on a local port with
//! the JWT authorizer's checks, the WebSocket API and its Management API on the same port,
//! and two stream pumps feeding `messaging-stream` and `messaging-push`, all over one
//! DynamoDB (Local) table; with [`LikeAws`], over a client that meets DynamoDB's
//! throttling, transaction conflicts and lagging index.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use functions::api::Api;
use functions::directory::{Directory, SystemClock};
use functions::inbox_rows::InboxRowMover;
use functions::presence::WsPresence;
use functions::push::{PushHandler, local_management_client};
use functions::websocket::{ConnectionCap, WsAuthorizer, WsConnections};
use functions::ws_actions::{DEFAULT_ROUTE, PRESENCE_ACTION, TYPING_ACTION, WsTyping};
use jsonwebtoken::jwk::JwkSet;
use messaging::Store;
use messaging::connect::local_client;
use messaging::store::Limits;
use tokio::sync::watch;

use crate::auth::{Authorizer, DevSigner};
use crate::like_aws::LikeAws;
use crate::pump::{PumpConfig, StreamPump};
use crate::server::router;
use crate::stream_source::{StreamTail, local_streams_client};
use crate::websocket::{ActionRoutes, OpenConnections, WebSocketApi, WsTimeouts};

/// Where bearer tokens' keys come from.
#[derive(Debug, Clone)]
pub enum TokenKeys {
    /// The development key pair at this path (created on first run).
    Dev(PathBuf),
    /// A real user pool's JWKS.
    Jwks {
        url: String,
        issuer: String,
        audience: String,
    },
}

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub endpoint_url: String,
    pub table: String,
    pub listen: SocketAddr,
    pub allowed_origins: Vec<String>,
    pub keys: TokenKeys,
    pub pump: PumpConfig,
    /// The push consumer's event source mapping (its own retries and dead letters).
    pub push_pump: PumpConfig,
    /// When the WebSocket API closes a connection (API Gateway's 10 minutes idle and 2
    /// hours by default; shorter makes clients' reconnect code run).
    pub ws_timeouts: WsTimeouts,
    /// DynamoDB's behaviours that DynamoDB Local lacks, played on every request of the
    /// functions (`--like-aws`); its counts are served at `GET /_dev/like-aws`.
    pub like_aws: Option<LikeAws>,
    /// The per-user limits the API enforces (the template's `MessageRateBurst`,
    /// `MessageRatePerSecond`, `GroupChangesPerMinute`).
    pub limits: Limits,
    /// Live WebSocket connections per user; a newer one closes the oldest
    /// (`MaxConnectionsPerUser`).
    pub max_connections_per_user: usize,
}

/// Runs the local stack until `shutdown` completes, then stops the server (letting
/// requests in flight finish) and the pump. `on_ready` gets the address actually bound
/// (useful with port 0).
pub async fn run(
    options: DevOptions,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (store, stream_arn) = prepare_table(&options).await?;
    // The table is made ready without refusals; the functions then meet them all.
    let store = match &options.like_aws {
        Some(like_aws) => Store::new(
            like_aws.client(&options.endpoint_url),
            options.table.clone(),
        ),
        None => store,
    };
    let (authorizer, published_jwks) = authorizer_for(&options.keys).await?;
    // Bound first: `ws-connect` closes connections beyond the cap through this stack's own
    // Management API, as the deployed one does through its stage's.
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    let address = listener.local_addr()?;
    let directory = Directory::new(
        store.clone().with_limits(options.limits),
        Directory::ttl_from_env(),
        std::sync::Arc::new(SystemClock),
    );
    let open_connections = OpenConnections::with_timeouts(options.ws_timeouts);
    let websocket_api = WebSocketApi::new(
        // The WebSocket API's authorizer runs `ws-authorizer`'s code over the HTTP API's
        // verifier: one key set, fetched and refreshed once for both.
        WsAuthorizer::new(authorizer.verifier().clone(), directory.clone()),
        WsConnections::new(store.clone())
            .with_cap(ConnectionCap::new(
                options.max_connections_per_user,
                local_management_client(&management_url(address)),
            ))
            // Presence frames to watchers, through the same stand-in.
            .with_presence_frames(local_management_client(&management_url(address))),
        open_connections.clone(),
    )
    .with_actions(action_routes(&store, address));
    let app = router(
        Api::new(directory),
        authorizer,
        published_jwks,
        &options.allowed_origins,
    )?
    .merge(crate::websocket::router(websocket_api));
    let app = match &options.like_aws {
        Some(like_aws) => app.merge(like_aws.router()),
        None => app,
    };

    let (stop_pump, pump_stopped) = watch::channel(false);
    let tail = StreamTail::new(
        local_streams_client(&options.endpoint_url),
        stream_arn.clone(),
    );
    let pump = StreamPump::new(
        tail,
        InboxRowMover::new(store.clone()),
        options.pump.clone(),
    );
    let pump_task = tokio::spawn(pump.run(pump_stopped.clone()));

    let push_task = spawn_push_pump(store, stream_arn, address, &options, pump_stopped).await?;

    on_ready(address);
    // Open WebSockets are not requests a graceful shutdown waits for: close them when the
    // shutdown starts, so each runs its `$disconnect` and clients see a close frame.
    let sessions = open_connections.clone();
    let shutdown = async move {
        shutdown.await;
        sessions.close_all();
    };
    // With each request's peer: the Management API answers loopback peers only.
    let app = app.into_make_service_with_connect_info::<crate::websocket::Peer>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    open_connections
        .wait_closed(std::time::Duration::from_secs(5))
        .await;

    let _ = stop_pump.send(true);
    pump_task.await.context("stream pump panicked")?;
    push_task.await.context("push pump panicked")?;
    served.context("HTTP server failed")
}

/// The table the stack serves, created when missing, and its stream.
async fn prepare_table(options: &DevOptions) -> anyhow::Result<(Store, String)> {
    let store = Store::new(
        local_client(&options.endpoint_url, None),
        options.table.clone(),
    );
    store.create_table_if_missing().await.with_context(|| {
        format!(
            "preparing table {} at {}",
            options.table, options.endpoint_url
        )
    })?;
    let stream_arn = store
        .stream_arn()
        .await?
        .with_context(|| format!("table {} has no stream", options.table))?;
    Ok((store, stream_arn))
}

/// The HTTP API's authorizer, and the key set the stack publishes when it signs its own
/// development tokens.
async fn authorizer_for(keys: &TokenKeys) -> anyhow::Result<(Authorizer, Option<JwkSet>)> {
    Ok(match keys {
        TokenKeys::Dev(path) => {
            let signer = DevSigner::load_or_create(path)?;
            (Authorizer::for_dev(&signer), Some(signer.jwks()))
        }
        TokenKeys::Jwks {
            url,
            issuer,
            audience,
        } => (
            Authorizer::from_jwks_url(url, issuer, audience).await?,
            None,
        ),
    })
}

/// The push consumer: a second reader of the stream, posting through this stack's own
/// Management API stand-in (served at `address`), as the deployed function posts through
/// API Gateway's.
async fn spawn_push_pump(
    store: Store,
    stream_arn: String,
    address: SocketAddr,
    options: &DevOptions,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let push = PushHandler::new(store, local_management_client(&management_url(address)));
    // Like the template's trigger (`StartingPosition: LATEST`): a frame is news or nothing,
    // so a restarted stack does not replay the stream's day of messages to its clients.
    let mut push_tail = StreamTail::new(local_streams_client(&options.endpoint_url), stream_arn);
    push_tail.start_at_latest().await?;
    let push_pump = StreamPump::new(push_tail, push, options.push_pump.clone());
    Ok(tokio::spawn(push_pump.run(stopped)))
}

/// The routes clients send to, as `template.yaml` wires them: `typing` and `$default` to
/// `ws-typing`, one-way (it posts through this stack's own Management API); `presence` to
/// `ws-presence`, two-way (its answer is the route's response).
fn action_routes(store: &Store, address: SocketAddr) -> ActionRoutes {
    let typing: std::sync::Arc<dyn crate::websocket::ActionHandler> =
        std::sync::Arc::new(WsTyping::new(
            store.clone(),
            local_management_client(&management_url(address)),
        ));
    ActionRoutes::default()
        .with(TYPING_ACTION, typing.clone())
        .with(DEFAULT_ROUTE, typing)
        .with_route_response(
            PRESENCE_ACTION,
            std::sync::Arc::new(WsPresence::new(store.clone())),
        )
}

/// This stack's Management API, served at `address` (on loopback when it listens on every
/// address).
fn management_url(address: SocketAddr) -> String {
    let reachable = if address.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port())
    } else {
        address
    };
    format!("http://{reachable}")
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
