//! The configured sources as the server runs them: one HTTP engine per source (one OAuth2 token,
//! shared by the webhook worker and the reconciler), one write lock per `(source, entity)` held
//! around the plan and write of one batch (so a reconcile and a webhook batch never plan against
//! each other's stale index, and webhooks keep flowing while a reconcile runs), and one
//! reconcile lock per source, so only one reconcile of a source runs at once. The locks are
//! in-process: run one writing replica per state store (see docs/scaling-out.md).

use std::collections::HashMap;
use std::sync::Arc;

use syncline_connectors::reconcile::{sync_source, EntityReport, NoProgress, SourceRun, SyncMode};
use syncline_connectors::{HttpEngine, SynclineConfig, WriteLocks};
use syncline_destinations::Destination;
use syncline_state::StateStore;
use tokio::sync::Mutex;

use crate::metrics::Metrics;
use crate::worker::WorkerHealth;
use crate::ServerError;

/// The sources of one server.
pub struct Sources {
    /// The configuration.
    pub config: Arc<SynclineConfig>,
    /// The state store.
    pub state: Arc<dyn StateStore>,
    /// The destination.
    pub destination: Arc<dyn Destination>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// One writer per `(source, entity)`, shared by the webhook worker and the reconciler.
    pub write_locks: WriteLocks,
    /// Whether the inbox worker runs (for `/readyz`).
    pub worker_health: Arc<WorkerHealth>,
    engines: HashMap<String, Arc<HttpEngine>>,
    reconcile_locks: HashMap<String, Arc<Mutex<()>>>,
}

/// A reconcile of the source is already running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy;

impl Sources {
    /// Builds one engine and one lock per configured source.
    pub fn new(
        config: Arc<SynclineConfig>,
        state: Arc<dyn StateStore>,
        destination: Arc<dyn Destination>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        let mut engines = HashMap::new();
        let mut reconcile_locks = HashMap::new();
        for (name, source) in &config.sources {
            let engine = HttpEngine::new(name, source, Arc::clone(&state)).map_err(ServerError::Connector)?;
            engines.insert(name.clone(), Arc::new(engine));
            reconcile_locks.insert(name.clone(), Arc::new(Mutex::new(())));
        }
        Ok(Self {
            config,
            state,
            destination,
            metrics,
            write_locks: WriteLocks::new(),
            worker_health: Arc::new(WorkerHealth::default()),
            engines,
            reconcile_locks,
        })
    }

    /// The engine of a configured source.
    pub fn engine(&self, source: &str) -> Option<&Arc<HttpEngine>> {
        self.engines.get(source)
    }

    /// True while a reconcile of the source runs.
    pub fn reconciling(&self, source: &str) -> bool {
        self.reconcile_locks.get(source).is_some_and(|lock| lock.try_lock().is_err())
    }

    /// Runs one reconcile of a source unless one is running already. Webhook batches keep being
    /// applied meanwhile: the reconciler takes an entity's write lock for one batch at a time.
    /// Every entity is reported, failed ones with their error; metrics follow the reports.
    pub async fn reconcile(&self, source: &str, mode: SyncMode) -> Result<Vec<EntityReport>, Busy> {
        let lock = self.reconcile_locks.get(source).ok_or(Busy)?;
        let Ok(_running) = Arc::clone(lock).try_lock_owned() else {
            tracing::info!(source, mode = mode.name(), "a reconcile of this source is running; skipped");
            return Err(Busy);
        };
        tracing::info!(source, mode = mode.name(), "reconcile started");
        let reports = sync_source(SourceRun {
            config: &self.config,
            source,
            destination: self.destination.as_ref(),
            state: Arc::clone(&self.state),
            mode,
            only_entity: None,
            progress: &NoProgress,
            engine: self.engines.get(source).cloned(),
            locks: &self.write_locks,
        })
        .await;
        if let Err(error) = self.destination.release().await {
            tracing::warn!(%error, "cannot release the destination");
        }
        let now = unix_seconds();
        let failed = reports.iter().any(|report| report.error.is_some());
        for report in &reports {
            let pairs = [("source", source), ("entity", report.entity.as_str())];
            // What no webhook had delivered, apart from the versions a routine run writes.
            self.metrics
                .add("syncline_reconciler_healed_records_total", &pairs, report.healed as f64);
            self.metrics
                .add("syncline_versions_written_total", &pairs, report.new_versions as f64);
            if report.error.is_none() {
                self.metrics.set_gauge("syncline_last_success_timestamp_seconds", &pairs, now);
            }
        }
        let deferred = reports.iter().any(|report| report.deferred);
        // `deferred`: the vendor's daily pool fell under the source's credit reserve.
        let outcome = if failed {
            "failed"
        } else if deferred {
            "deferred"
        } else {
            "ok"
        };
        self.metrics.increment(
            "syncline_reconcile_runs_total",
            &[("source", source), ("mode", mode.name()), ("outcome", outcome)],
        );
        self.publish_api_stats();
        tracing::info!(source, mode = mode.name(), outcome, "reconcile finished");
        Ok(reports)
    }

    /// Copies the engines' call counters into the metrics.
    pub fn publish_api_stats(&self) {
        for (source, engine) in &self.engines {
            let stats = engine.stats();
            let pairs = [("source", source.as_str())];
            self.metrics.set_counter("syncline_api_calls_total", &pairs, stats.calls as f64);
            self.metrics
                .set_counter("syncline_api_rate_limited_total", &pairs, stats.rate_limited as f64);
            self.metrics
                .set_counter("syncline_token_refreshes_total", &pairs, stats.token_refreshes as f64);
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|duration| duration.as_secs_f64())
        .unwrap_or(0.0)
}

pub use syncline_connectors::reconcile::wall_clock_ms as now_ms;
