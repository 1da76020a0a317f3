//! The inbox worker: claims batches of stored events, coalesces them per `(entity, id)`,
//! re-fetches and applies them through the history engine, then marks them done. A batch that
//! fails is released with a backoff; an event that keeps failing lands in the dead-letter list.
//!
//! Claims are leases: if the process dies mid-batch, the events come back when the lease runs
//! out, and applying them again plans nothing new (the history writer is replay-safe).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use syncline_connectors::refetch::{apply_entity_events, coalesce, EventRun};
use syncline_state::InboxEntry;
use tokio::sync::{watch, Notify};

use crate::sources::{now_ms, unix_seconds, Sources};

/// How often applied events past `keep_done` are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// How the worker drains the inbox.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Most events claimed per batch.
    pub batch_size: usize,
    /// How long a claim is held before another worker may take the events (milliseconds).
    pub lease_ms: i64,
    /// Attempts before an event goes to the dead-letter list.
    pub max_attempts: u32,
    /// How long to wait for new events before polling the inbox again (events stored by another
    /// replica do not wake this one).
    pub poll_interval: Duration,
    /// How long a claimed batch may gather more events before it is applied (0 = at once).
    pub linger: Duration,
    /// How long applied events are kept to absorb late duplicates before they are pruned.
    pub keep_done: Duration,
    /// Release every lease when the worker starts: right when this process is the only
    /// worker (an SQLite state store), so events claimed by a crashed run come back at once
    /// instead of when their lease runs out.
    pub release_leases_at_start: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            lease_ms: 5 * 60_000,
            max_attempts: 8,
            poll_interval: Duration::from_secs(1),
            linger: Duration::from_millis(20),
            keep_done: Duration::from_secs(7 * 24 * 3600),
            release_leases_at_start: false,
        }
    }
}

/// Drains the inbox until `shutdown` turns true; the batch in flight is finished first.
pub async fn run_worker(sources: Arc<Sources>, options: WorkerOptions, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    if options.release_leases_at_start {
        match sources.state.inbox_release_leases().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "events claimed by an earlier run are back in the inbox"),
            Err(error) => tracing::warn!(%error, "cannot release earlier leases; they run out on their own"),
        }
    }
    let mut next_prune = tokio::time::Instant::now();
    let mut wrote = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if tokio::time::Instant::now() >= next_prune {
            next_prune += PRUNE_INTERVAL;
            let done_before = now_ms() - options.keep_done.as_millis() as i64;
            match sources.state.inbox_prune(done_before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "applied inbox events past the dedupe window pruned"),
                Err(error) => tracing::warn!(%error, "cannot prune the inbox; trying again later"),
            }
        }
        let claimed = match sources.state.inbox_claim(options.batch_size, now_ms(), options.lease_ms).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(%error, "cannot read the inbox; retrying");
                wait(&wake, &mut shutdown, options.poll_interval).await;
                continue;
            }
        };
        if claimed.is_empty() {
            if wrote {
                // Idle: let readers (the duckdb CLI, dbt) have the warehouse file.
                if let Err(error) = sources.destination.release().await {
                    tracing::warn!(%error, "cannot release the destination");
                }
                wrote = false;
            }
            wait(&wake, &mut shutdown, options.poll_interval).await;
            continue;
        }
        let full = claimed.len() >= options.batch_size;
        apply_batch(&sources, &options, claimed).await;
        wrote = true;
        if !full && !options.linger.is_zero() {
            // Let a burst gather: one history batch of many events beats many of one.
            tokio::time::sleep(options.linger).await;
        }
    }
    if let Err(error) = sources.destination.release().await {
        tracing::warn!(%error, "cannot release the destination");
    }
    tracing::info!("inbox worker stopped");
}

async fn wait(wake: &Notify, shutdown: &mut watch::Receiver<bool>, interval: Duration) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = shutdown.changed() => {}
        _ = tokio::time::sleep(interval) => {}
    }
}

/// Applies one claimed batch: per source (under its lock) and entity.
pub async fn apply_batch(sources: &Sources, options: &WorkerOptions, claimed: Vec<InboxEntry>) {
    let mut by_source: BTreeMap<String, BTreeMap<String, Vec<InboxEntry>>> = BTreeMap::new();
    for entry in claimed {
        by_source
            .entry(entry.event.source.clone())
            .or_default()
            .entry(entry.event.entity.clone())
            .or_default()
            .push(entry);
    }
    for (source, entities) in by_source {
        let (Some(engine), Some(_guard)) = (sources.engine(&source).cloned(), sources.lock(&source).await) else {
            // Stored while the source was configured, and it is not any more.
            let seqs: Vec<i64> = entities.values().flatten().map(|entry| entry.seq).collect();
            fail(
                sources,
                &seqs,
                "the source is no longer configured; add it back or drop these events",
                options,
            )
            .await;
            continue;
        };
        // A webhook batch is a run of its own for the request budget.
        engine.start_run();
        let run = EventRun {
            config: &sources.config,
            source: &source,
            destination: sources.destination.as_ref(),
            state: sources.state.as_ref(),
            engine: &engine,
        };
        for (entity, entries) in entities {
            let seqs: Vec<i64> = entries.iter().map(|entry| entry.seq).collect();
            let coalesced = coalesce(entries.iter().map(|entry| &entry.event));
            let applied = apply_entity_events(&run, &entity, &coalesced, now_ms()).await;
            match applied {
                Ok(report) => {
                    if let Err(error) = sources.state.inbox_done(&seqs, now_ms()).await {
                        // Applied but not marked: the lease runs out and a replay changes nothing.
                        tracing::error!(%error, source, entity, "cannot mark events done; they will be replayed");
                        continue;
                    }
                    let committed = now_ms();
                    let latencies: Vec<f64> = entries
                        .iter()
                        .map(|entry| (committed - entry.received_at).max(0) as f64 / 1000.0)
                        .collect();
                    sources.metrics.observe_webhook_to_warehouse(&latencies);
                    let pairs = [("source", source.as_str()), ("entity", entity.as_str())];
                    sources
                        .metrics
                        .add("syncline_versions_written_total", &pairs, report.written.plan.versions as f64);
                    sources
                        .metrics
                        .set_gauge("syncline_last_success_timestamp_seconds", &pairs, unix_seconds());
                    sources.metrics.increment("syncline_worker_batches_total", &[("outcome", "ok")]);
                    tracing::info!(
                        source,
                        entity,
                        events = entries.len(),
                        records = coalesced.len(),
                        fetched = report.fetched,
                        vanished = report.vanished,
                        deferred = report.deferred,
                        versions = report.written.plan.versions,
                        deleted = report.written.plan.deleted,
                        "webhook events applied"
                    );
                }
                Err(error) => {
                    sources.metrics.increment("syncline_worker_batches_total", &[("outcome", "failed")]);
                    tracing::warn!(source, entity, %error, events = entries.len(), "webhook events failed; they will be retried");
                    fail(sources, &seqs, &error.to_string(), options).await;
                }
            }
        }
        sources.publish_api_stats();
    }
}

async fn fail(sources: &Sources, seqs: &[i64], error: &str, options: &WorkerOptions) {
    match sources.state.inbox_fail(seqs, error, now_ms(), options.max_attempts).await {
        Ok(dead) if dead > 0 => tracing::error!(dead, "events moved to the dead-letter list; see `syncline inbox list`"),
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot record the failure; the lease will release the events"),
    }
}
