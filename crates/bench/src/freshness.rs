//! `syncline-bench freshness`: webhook-to-row latency with and without a full reconcile running
//! (issue 10). In one process: the Pipedrive simulator (N deals, every list page answered after
//! a delay) delivering its webhooks over loopback HTTP to the real server (SQLite state, DuckDB
//! warehouse). After an initial full load, two phases of updates at a fixed rate, each announced
//! by webhook: one with no reconcile running, one during a full reconcile. Each phase runs on a
//! fresh server over the same stores, so its latency samples are its own. Prints JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use syncline_connectors::reconcile::SyncMode;
use syncline_connectors::SynclineConfig;
use syncline_destinations::{Destination, DuckDbDestination};
use syncline_server::{ServerHandle, ServerOptions, WorkerOptions};
use syncline_simulator::{BasicAuth, ChangeRequest, Connector, Entity, Simulator, SimulatorConfig, SimulatorHandle};
use syncline_state::{open_state_store, StateStore};

/// Arguments of `syncline-bench freshness`.
#[derive(Debug, clap::Args)]
pub struct FreshnessArgs {
    /// Deals upstream.
    #[arg(long, default_value_t = 20_000)]
    deals: usize,
    /// Delay of every list page, in milliseconds.
    #[arg(long, default_value_t = 400)]
    page_delay_ms: u64,
    /// Updates (and webhooks) per second.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Length of the phase without a reconcile, in seconds.
    #[arg(long, default_value_t = 15.0)]
    idle_secs: f64,
    /// Folder for the state store and the warehouse.
    #[arg(long)]
    dir: std::path::PathBuf,
}

const USER: &str = "bench-hook";
const PASSWORD: &str = "bench-hook-s3cret";

async fn start_server(
    config: &SynclineConfig,
    state: Arc<dyn StateStore>,
    destination: Arc<dyn Destination>,
) -> anyhow::Result<ServerHandle> {
    let options = ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        sync_secret: None,
        worker: WorkerOptions {
            release_leases_at_start: true,
            ..WorkerOptions::default()
        },
        scheduler: false,
        limits: syncline_server::ListenerLimits::default(),
    };
    Ok(syncline_server::start(config.clone(), options, state, destination).await?)
}

/// Sends `count` updates at `rate` per second while `keep_going` holds; returns how many.
async fn send_updates(simulator: &SimulatorHandle, deals: usize, rate: f64, mut keep_going: impl FnMut(usize) -> bool) -> usize {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let started = Instant::now();
    let mut sent = 0usize;
    while keep_going(sent) {
        let id = (sent * 7919 % deals + 1) as u64;
        let _ = simulator.apply_change(&ChangeRequest::Update { entity: Entity::Deal, id });
        sent += 1;
        let next = started + interval * sent as u32;
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    sent
}

async fn drained(state: &dyn StateStore, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let now = syncline_connectors::reconcile::wall_clock_ms();
        if state.inbox_stats(now).await?.pending == 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the inbox did not drain within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn quantiles(server: &ServerHandle) -> serde_json::Value {
    match server.metrics().webhook_to_warehouse_quantiles(&[0.5, 0.99]) {
        Some(values) => json!({"p50_ms": values[0] * 1000.0, "p99_ms": values[1] * 1000.0}),
        None => json!({"p50_ms": null, "p99_ms": null}),
    }
}

/// Runs both phases and prints the JSON summary.
pub async fn run(args: FreshnessArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let mut simulator_config = SimulatorConfig::for_connector(Connector::Pipedrive);
    simulator_config.initial_records = [(Entity::Deal, args.deals), (Entity::Pipeline, 2), (Entity::Stage, 8)]
        .into_iter()
        .collect();
    simulator_config.faults.list_page_delay_ms = args.page_delay_ms;
    simulator_config.webhooks.pipedrive_basic_auth = Some(BasicAuth {
        username: USER.into(),
        password: PASSWORD.into(),
    });
    let simulator = Simulator::start(simulator_config).await.context("the simulator starts")?;
    let credentials = simulator.credentials();
    let text = format!(
        r#"
[destination]
url = "duckdb://{dir}/warehouse.duckdb"
[state]
url = "sqlite://{dir}/state.db"
[server]
scheduler = false
[sources.crm]
connector = "pipedrive"
base_url = "{base}"
entities = ["deal"]
auth = {{ type = "api_token", token = "{token}" }}
[sources.crm.webhook]
verify = {{ type = "basic", username = "{USER}", password = "{PASSWORD}" }}
"#,
        dir = args.dir.display(),
        base = credentials.api_base_url,
        token = credentials.api_token.clone().unwrap_or_default(),
    );
    let config = SynclineConfig::parse_with_env(&text, |_| None)?;
    // As `syncline serve` opens it: the file stays open while work keeps coming.
    let destination: Arc<dyn Destination> = Arc::new(DuckDbDestination::new(args.dir.join("warehouse.duckdb")).holding_file_open());
    let state: Arc<dyn StateStore> = Arc::from(open_state_store(&config.state.url.parse()?).await?);

    // The initial load (a full reconcile into empty stores).
    let server = start_server(&config, Arc::clone(&state), Arc::clone(&destination)).await?;
    let target = format!("http://{}/webhooks/crm", server.local_addr());
    simulator.set_webhook_target(Some(target))?;
    let started = Instant::now();
    server
        .sources()
        .reconcile("crm", SyncMode::Full)
        .await
        .map_err(|_| anyhow::anyhow!("busy"))?;
    let initial_load_s = started.elapsed().as_secs_f64();

    // Phase 1: webhooks with no reconcile running.
    let idle_until = Instant::now() + Duration::from_secs_f64(args.idle_secs);
    let idle_sent = send_updates(&simulator, args.deals, args.rate, |_| Instant::now() < idle_until).await;
    simulator.flush_webhooks().await;
    drained(state.as_ref(), Duration::from_secs(120)).await?;
    let idle = quantiles(&server);
    server.shutdown().await;

    // Phase 2: the same rate during a full reconcile.
    let server = start_server(&config, Arc::clone(&state), Arc::clone(&destination)).await?;
    simulator.set_webhook_target(Some(format!("http://{}/webhooks/crm", server.local_addr())))?;
    let sources = server.sources();
    let started = Instant::now();
    let reconcile = tokio::spawn(async move { sources.reconcile("crm", SyncMode::Full).await });
    let during_sent = send_updates(&simulator, args.deals, args.rate, |_| !reconcile.is_finished()).await;
    let reports = reconcile.await?.map_err(|_| anyhow::anyhow!("busy"))?;
    let reconcile_s = started.elapsed().as_secs_f64();
    simulator.flush_webhooks().await;
    drained(state.as_ref(), Duration::from_secs(120)).await?;
    let during = quantiles(&server);
    server.shutdown().await;
    let report = &reports[0];
    let summary = json!({
        "deals": args.deals,
        "page_delay_ms": args.page_delay_ms,
        "rate": args.rate,
        "initial_load_s": initial_load_s,
        "reconcile_s": reconcile_s,
        "reconcile_api_calls": report.calls.calls,
        "reconcile_healed": report.healed,
        "reconcile_error": report.error,
        "idle": {"webhooks": idle_sent, "latency": idle},
        "during": {"webhooks": during_sent, "latency": during},
    });
    println!("{summary}");
    simulator.shutdown().await;
    Ok(())
}
