//! `syncline serve` and `syncline inbox list|retry|drop`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use syncline_connectors::SynclineConfig;
use syncline_destinations::{open_destination_held, Destination, DestinationConfig};
use syncline_server::{ListenerLimits, ServerOptions, WorkerOptions};
use syncline_state::{open_state_store, open_state_store_with, InboxEntry, StateConfig, StateStore};

/// Arguments of `syncline serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file.
    #[arg(long, default_value = "syncline.toml")]
    config: PathBuf,
    /// Listen address; overrides `server.listen` (and `PORT`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Do not run the built-in scheduler (when an external scheduler calls `POST /sync`).
    #[arg(long)]
    no_scheduler: bool,
}

/// Opens the configured destination (a DuckDB file is held open while work keeps coming and
/// released when the server goes idle) and state store.
pub async fn open_stores(config: &SynclineConfig) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn Destination>)> {
    let destination_config: DestinationConfig = config.destination.url.parse()?;
    let destination = open_destination_held(&destination_config)
        .await
        .context("cannot open the destination")?;
    let state_config: StateConfig = config.state.url.parse()?;
    let durability = config.state.durability();
    let state = open_state_store_with(&state_config, durability)
        .await
        .context("cannot open the state store")?;
    tracing::info!(durability = durability.name(), "state store open");
    Ok((Arc::from(state), Arc::from(destination)))
}

/// The server options of a configuration: `[server]`, then `PORT` (Cloud Run), then defaults.
pub fn server_options(config: &SynclineConfig, listen: Option<SocketAddr>, no_scheduler: bool) -> anyhow::Result<ServerOptions> {
    let section = &config.server;
    let listen = match (listen, &section.listen, std::env::var("PORT").ok()) {
        (Some(listen), _, _) => listen,
        (None, Some(configured), _) => configured
            .parse()
            .with_context(|| format!("server.listen `{configured}` is not an address; write e.g. \"0.0.0.0:8080\""))?,
        (None, None, Some(port)) => {
            let port: u16 = port.parse().with_context(|| format!("PORT `{port}` is not a port number"))?;
            SocketAddr::from(([0, 0, 0, 0], port))
        }
        (None, None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    Ok(ServerOptions {
        listen,
        sync_secret: section.sync_secret.clone(),
        worker: WorkerOptions {
            batch_size: section.worker_batch_size,
            max_attempts: section.max_attempts,
            max_event_skew_ms: i64::try_from(section.max_event_skew_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
            // Only one process can use an SQLite state store, so no other worker holds a lease.
            release_leases_at_start: matches!(config.state.url.parse::<StateConfig>(), Ok(StateConfig::Sqlite { .. })),
            ..WorkerOptions::default()
        },
        scheduler: section.scheduler && !no_scheduler,
        limits: ListenerLimits {
            header_read_timeout: Duration::from_millis(section.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(section.body_read_timeout_ms),
            request_timeout: Duration::from_millis(section.request_timeout_ms),
            max_connections: section.max_connections,
            max_requests_in_flight: section.max_requests_in_flight,
        },
    })
}

/// Runs `syncline serve` until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let config = SynclineConfig::load(&args.config)?;
    let options = server_options(&config, args.listen, args.no_scheduler)?;
    let (state, destination) = open_stores(&config).await?;
    // The server reports `[state] durability` itself (`syncline_inbox_durability`).
    let handle = syncline_server::start(config, options, state, destination).await?;
    tracing::info!(
        address = %handle.local_addr(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening; stop with SIGTERM or Ctrl-C"
    );
    wait_for_signal().await;
    tracing::info!("shutting down: no new requests; finishing the batch in flight");
    handle.shutdown().await;
    Ok(())
}

/// Waits for SIGTERM (Cloud Run, systemd) or Ctrl-C.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Arguments of `syncline inbox`.
#[derive(Debug, clap::Args)]
pub struct InboxArgs {
    #[command(subcommand)]
    command: InboxCommand,
    /// The configuration file (its state store holds the inbox).
    #[arg(long, global = true, default_value = "syncline.toml")]
    config: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum InboxCommand {
    /// Show the inbox's counts and its dead-letter list.
    List {
        /// Most dead letters shown.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back in the inbox (attempts reset); the worker applies them again.
    Retry(Selection),
    /// Delete dead letters for good.
    Drop(Selection),
}

#[derive(Debug, clap::Args)]
struct Selection {
    /// The sequence numbers shown by `syncline inbox list`.
    seqs: Vec<i64>,
    /// Every dead letter.
    #[arg(long, conflicts_with = "seqs")]
    all: bool,
}

impl Selection {
    fn chosen(&self) -> anyhow::Result<Option<&[i64]>> {
        match (self.all, self.seqs.is_empty()) {
            (true, _) => Ok(None),
            (false, false) => Ok(Some(&self.seqs)),
            (false, true) => anyhow::bail!("name the dead letters by their seq numbers (see `syncline inbox list`), or pass --all"),
        }
    }
}

/// Runs `syncline inbox ...`.
pub async fn run_inbox(args: InboxArgs) -> anyhow::Result<()> {
    let config = SynclineConfig::load(&args.config)?;
    let state_config: StateConfig = config.state.url.parse()?;
    let state = open_state_store(&state_config).await.context("cannot open the state store")?;
    let now = syncline_server::sources::now_ms();
    match args.command {
        InboxCommand::List { limit, json } => {
            let stats = state.inbox_stats(now).await?;
            let dead = state.inbox_dead(limit).await?;
            if json {
                let letters: Vec<serde_json::Value> = dead.iter().map(entry_json).collect();
                let body = serde_json::json!({
                    "pending": stats.pending,
                    "oldest_pending_age_ms": stats.oldest_pending_received_at.map(|at| now - at),
                    "done": stats.done,
                    "dead": stats.dead,
                    "dead_letters": letters,
                });
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let age = stats
                .oldest_pending_received_at
                .map_or_else(|| "-".to_string(), |at| format!("{:.1}s", (now - at) as f64 / 1000.0));
            println!(
                "inbox: {} pending (oldest {age}), {} done, {} dead",
                stats.pending, stats.done, stats.dead
            );
            if dead.is_empty() {
                return Ok(());
            }
            println!(
                "{:>8}  {:<12} {:<14} {:<14} {:<7} {:>8}  last error",
                "seq", "source", "entity", "id", "action", "attempts"
            );
            for entry in &dead {
                println!(
                    "{:>8}  {:<12} {:<14} {:<14} {:<7} {:>8}  {}",
                    entry.seq,
                    entry.event.source,
                    entry.event.entity,
                    entry.event.id,
                    entry.event.action.name(),
                    entry.attempts,
                    entry.last_error.as_deref().unwrap_or("")
                );
            }
        }
        InboxCommand::Retry(selection) => {
            let count = state.inbox_retry_dead(selection.chosen()?).await?;
            println!("{count} dead letters back in the inbox; a running `syncline serve` applies them");
        }
        InboxCommand::Drop(selection) => {
            let count = state.inbox_drop_dead(selection.chosen()?).await?;
            println!("{count} dead letters dropped");
        }
    }
    Ok(())
}

fn entry_json(entry: &InboxEntry) -> serde_json::Value {
    serde_json::json!({
        "seq": entry.seq,
        "source": entry.event.source,
        "entity": entry.event.entity,
        "id": entry.event.id,
        "action": entry.event.action.name(),
        "event_time": syncline_core::format_timestamp(entry.event.event_time),
        "delivery_id": entry.event.delivery_id,
        "received_at": syncline_core::format_timestamp(entry.received_at),
        "attempts": entry.attempts,
        "last_error": entry.last_error,
    })
}
