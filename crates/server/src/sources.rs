//! The configured sources as the server runs them: one HTTP engine per source (one OAuth2 token,
//! shared by the webhook worker and the reconciler) and two locks per source: a write lock, so a
//! reconcile and a webhook batch of the same source never write at the same time, and a
//! reconcile lock, so only one reconcile of a source runs at once. The locks are in-process: run
//! one writing replica per state store (see docs/scaling-out.md).

use std::collections::HashMap;
use std::sync::Arc;

use syncline_connectors::reconcile::{sync_source, EntityReport, NoProgress, SourceRun, SyncMode};
use syncline_connectors::{HttpEngine, SynclineConfig};
use syncline_destinations::Destination;
use syncline_state::StateStore;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::metrics::Metrics;
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
    engines: HashMap<String, Arc<HttpEngine>>,
    write_locks: HashMap<String, Arc<Mutex<()>>>,
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
        let mut write_locks = HashMap::new();
        let mut reconcile_locks = HashMap::new();
        for (name, source) in &config.sources {
            let engine = HttpEngine::new(name, source, Arc::clone(&state)).map_err(ServerError::Connector)?;
            engines.insert(name.clone(), Arc::new(engine));
            write_locks.insert(name.clone(), Arc::new(Mutex::new(())));
            reconcile_locks.insert(name.clone(), Arc::new(Mutex::new(())));
        }
        Ok(Self {
            config,
            state,
            destination,
            metrics,
            engines,
            write_locks,
            reconcile_locks,
        })
    }

    /// The engine of a configured source.
    pub fn engine(&self, source: &str) -> Option<&Arc<HttpEngine>> {
        self.engines.get(source)
    }

    /// Waits for the source's write lock (the webhook worker does; its events wait safely in
    /// the inbox while a reconcile writes).
    pub async fn lock(&self, source: &str) -> Option<OwnedMutexGuard<()>> {
        Some(Arc::clone(self.write_locks.get(source)?).lock_owned().await)
    }

    /// Runs one reconcile of a source unless one is running already (a webhook batch in flight
    /// is waited for). Every entity is reported, failed ones with their error; metrics follow
    /// the reports.
    pub async fn reconcile(&self, source: &str, mode: SyncMode) -> Result<Vec<EntityReport>, Busy> {
        let lock = self.reconcile_locks.get(source).ok_or(Busy)?;
        let Ok(_running) = Arc::clone(lock).try_lock_owned() else {
            tracing::info!(source, mode = mode.name(), "a reconcile of this source is running; skipped");
            return Err(Busy);
        };
        let _writing = self.lock(source).await;
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
        })
        .await;
        if let Err(error) = self.destination.release().await {
            tracing::warn!(%error, "cannot release the destination");
        }
        let now = unix_seconds();
        let failed = reports.iter().any(|report| report.error.is_some());
        for report in &reports {
            let pairs = [("source", source), ("entity", report.entity.as_str())];
            let healed = report.new_versions + report.deleted;
            self.metrics.add("syncline_reconciler_healed_records_total", &pairs, healed as f64);
            self.metrics
                .add("syncline_versions_written_total", &pairs, report.new_versions as f64);
            if report.error.is_none() {
                self.metrics.set_gauge("syncline_last_success_timestamp_seconds", &pairs, now);
            }
        }
        let outcome = if failed { "failed" } else { "ok" };
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
