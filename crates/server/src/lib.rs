//! `syncline serve`: the webhook server, the inbox worker and the scheduler.
//!
//! - [`app`]: the axum routes (`/webhooks/{source}`, `/sync`, `/healthz`, `/readyz`, `/metrics`);
//! - [`worker`]: drains the durable inbox through the history engine;
//! - [`scheduler`]: cron-driven incremental and full reconciles;
//! - [`sources`]: one HTTP engine and one lock per source;
//! - [`metrics`]: the Prometheus registry (`prometheus-client`), with the durability in force.
//!
//! A webhook is acknowledged only after its events are committed to the inbox, and every stored
//! event is applied: the worker's claims are leases, and the history writer is replay-safe.

pub mod app;
pub mod listener;
pub mod metrics;
pub mod scheduler;
pub mod sources;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use syncline_connectors::{ConnectorError, SynclineConfig};
use syncline_destinations::Destination;
use syncline_state::StateStore;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use listener::ListenerLimits;
pub use syncline_connectors::Secret;
pub use worker::WorkerOptions;

use crate::app::{router, AppState};
use crate::metrics::Metrics;
use crate::sources::Sources;

/// How long shutdown waits for the worker's batch in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(8);

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {error}; choose another server.listen address or stop what uses it")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        error: std::io::Error,
    },
    /// A source cannot be set up.
    #[error(transparent)]
    Connector(ConnectorError),
    /// The scheduler's settings are wrong.
    #[error("{0}")]
    Schedule(String),
    /// The `/sync` secret is empty or trivially short.
    #[error("server.sync_secret {0}")]
    WeakSyncSecret(String),
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The secret `/sync` requires in `X-Sync-Secret`; `None` disables `/sync`.
    pub sync_secret: Option<Secret>,
    /// The inbox worker.
    pub worker: WorkerOptions,
    /// Run the built-in scheduler (off when an external scheduler calls `/sync`).
    pub scheduler: bool,
    /// Timeouts and caps of the listener.
    pub limits: ListenerLimits,
}

/// A running server.
pub struct ServerHandle {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<()>,
    worker: JoinHandle<()>,
    scheduler: Option<JoinHandle<()>>,
    sources: Arc<Sources>,
}

impl ServerHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.sources.metrics)
    }

    /// The sources (engines, locks, stores) the server runs.
    pub fn sources(&self) -> Arc<Sources> {
        Arc::clone(&self.sources)
    }

    /// Graceful shutdown: stop accepting, let requests in flight finish, let the worker finish
    /// its batch, stop the scheduler (a reconcile in progress stops at once; it is replay-safe).
    /// Events not yet applied stay in the inbox for the next start.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.http.await;
        let mut worker = self.worker;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut worker).await.is_err() {
            // An upstream that does not answer must not hold the process past the platform's
            // kill (Cloud Run: 10 s); the batch's events stay in the inbox, leased, and the next
            // start applies them (a replay changes nothing).
            tracing::warn!("the batch in flight did not finish within the grace period; it stays in the inbox");
            worker.abort();
        }
        if let Some(scheduler) = self.scheduler {
            scheduler.abort();
            let _ = scheduler.await;
        }
        tracing::info!("server stopped");
    }
}

/// Starts the server: binds, then runs the routes, the worker and (if enabled) the scheduler.
pub async fn start(
    config: SynclineConfig,
    options: ServerOptions,
    state: Arc<dyn StateStore>,
    destination: Arc<dyn Destination>,
) -> Result<ServerHandle, ServerError> {
    if let Some(secret) = &options.sync_secret {
        syncline_connectors::check_secret_strength(secret).map_err(ServerError::WeakSyncSecret)?;
    }
    let max_body_bytes = config
        .sources
        .values()
        .filter_map(|source| source.webhook.as_ref().map(|webhook| webhook.max_body_bytes))
        .max()
        .unwrap_or(syncline_connectors::webhook::DEFAULT_MAX_BODY_BYTES)
        // A safety net for every route: the webhook handler enforces each source's own limit
        // while it reads (and counts the refusal), so the net sits well above it.
        .saturating_mul(4);
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::with_durability(config.state.durability()));
    let sources = Arc::new(Sources::new(Arc::clone(&config), state, destination, metrics)?);
    let schedules = if options.scheduler {
        Some(scheduler::Schedules::from_config(&config).map_err(ServerError::Schedule)?)
    } else {
        None
    };
    let listener = listener::bind(options.listen, options.limits.max_connections).map_err(|error| ServerError::Bind {
        address: options.listen,
        error,
    })?;
    let address = listener.local_addr().map_err(|error| ServerError::Bind {
        address: options.listen,
        error,
    })?;
    let (shutdown, shutdown_receiver) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let app = router(
        Arc::new(AppState {
            sources: Arc::clone(&sources),
            wake: Arc::clone(&wake),
            sync_secret: options.sync_secret.clone(),
            zoho_keys: app::zoho_key_caches(&sources.config),
        }),
        &options.limits,
    );
    let http = tokio::spawn(listener::serve(
        listener,
        app,
        options.limits,
        max_body_bytes,
        shutdown_receiver.clone(),
    ));
    let worker = tokio::spawn(worker::run_worker(
        Arc::clone(&sources),
        options.worker.clone(),
        wake,
        shutdown_receiver.clone(),
    ));
    let scheduler = schedules.map(|schedules| tokio::spawn(scheduler::run_scheduler(Arc::clone(&sources), schedules, shutdown_receiver)));
    tracing::info!(%address, sources = config.sources.len(), scheduler = options.scheduler, "syncline serve is ready");
    Ok(ServerHandle {
        address,
        shutdown,
        http,
        worker,
        scheduler,
        sources,
    })
}
