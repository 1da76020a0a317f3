//! The inbox worker: claims batches of stored events and hands each source's events to that
//! source's lane; a lane coalesces them per `(entity, id)`, re-fetches, applies them through the
//! history engine and marks them done.
//!
//! - Sources are independent lanes: a slow or failing source never delays another, and a
//!   reconcile never stalls webhooks (writers serialise per `(source, entity)` around one batch,
//!   see [`syncline_connectors::locks`]).
//! - One record that fails (a 4xx, a 5xx while its neighbours were fetched, a record that cannot
//!   be flattened) is retried on its own and finally dead-lettered; the rest of its batch is
//!   applied.
//! - Transient trouble (the upstream down or rate limiting, the warehouse locked or down) puts
//!   the events back with a growing delay without counting an attempt, so an outage of an hour
//!   does not fill the dead-letter list.
//! - Supervised: a panic while applying a batch counts one attempt for its events and restarts
//!   the lane; a panic of the claim loop restarts the worker. `/readyz` answers 503 while either
//!   is down.
//!
//! Claims are leases: if the process dies mid-batch, the events come back when the lease runs
//! out, and applying them again plans nothing new (the history writer is replay-safe).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use syncline_connectors::refetch::{apply_entity_events, clamp_event_time, coalesce, EventRun};
use syncline_state::InboxEntry;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::sources::{now_ms, unix_seconds, Sources};

/// How often applied events past `keep_done` are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Claimed events a lane holds, in batches of `batch_size`, besides the batch it applies; more
/// are put back in the inbox for a moment.
const LANE_PENDING_BATCHES: usize = 4;

/// How long events put back because their lane holds enough wait before they are claimed again.
const BUSY_LANE_DELAY_MS: i64 = 250;

/// Called by a lane before it applies a batch: `(source, events)`. Fault-injection tests panic
/// here to check the supervision; production leaves it unset.
#[derive(Clone)]
pub struct BatchHook(pub Arc<BatchHookFn>);

/// What a [`BatchHook`] calls: the source and the batch's inbox entries.
pub type BatchHookFn = dyn Fn(&str, &[InboxEntry]) + Send + Sync;

impl std::fmt::Debug for BatchHook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BatchHook")
    }
}

/// How the worker drains the inbox.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Most events claimed per batch.
    pub batch_size: usize,
    /// How long a claim is held before another worker may take the events (milliseconds).
    pub lease_ms: i64,
    /// Attempts before an event goes to the dead-letter list (transient trouble counts none).
    pub max_attempts: u32,
    /// How long to wait for new events before polling the inbox again (events stored by another
    /// replica do not wake this one).
    pub poll_interval: Duration,
    /// How long a claimed batch may gather more events before it is applied (0 = at once).
    pub linger: Duration,
    /// How long applied events are kept to absorb late duplicates before they are pruned.
    pub keep_done: Duration,
    /// How long the inbox must stay empty before the worker lets go of the warehouse file, so
    /// readers (the duckdb CLI, dbt) can open it. Releasing after every batch would make each
    /// next batch reopen (and the release checkpoint) the file: at a steady trickle of webhooks
    /// that costs more than the batch itself.
    pub release_after: Duration,
    /// Release every lease when the worker starts: right when this process is the only
    /// worker (an SQLite state store), so events claimed by a crashed run come back at once
    /// instead of when their lease runs out.
    pub release_leases_at_start: bool,
    /// How far past its receive time a payload may date an event (milliseconds); later event
    /// times are clamped to the receive time plus this, so a forged or skewed clock cannot
    /// date a delete in the future.
    pub max_event_skew_ms: i64,
    /// The first delay after transient trouble; it doubles while the trouble lasts.
    pub transient_backoff: Duration,
    /// The longest delay after transient trouble.
    pub max_transient_backoff: Duration,
    /// How long a panicked lane or worker stays down before it restarts (`/readyz` is 503
    /// meanwhile).
    pub restart_delay: Duration,
    /// See [`BatchHook`].
    pub before_batch: Option<BatchHook>,
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
            release_after: Duration::from_secs(1),
            release_leases_at_start: false,
            max_event_skew_ms: 60_000,
            transient_backoff: Duration::from_secs(1),
            max_transient_backoff: Duration::from_secs(60),
            restart_delay: Duration::from_secs(1),
            before_batch: None,
        }
    }
}

/// Whether the worker runs: the number of supervised parts that are down, and the restarts.
#[derive(Debug, Default)]
pub struct WorkerHealth {
    down: AtomicUsize,
    restarts: AtomicU64,
    started: std::sync::atomic::AtomicBool,
}

impl WorkerHealth {
    /// True once the worker started and while nothing of it is down.
    pub fn is_up(&self) -> bool {
        self.started.load(Ordering::SeqCst) && self.down.load(Ordering::SeqCst) == 0
    }

    /// Restarts after a panic so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    fn went_down(&self) {
        self.down.fetch_add(1, Ordering::SeqCst);
        self.restarts.fetch_add(1, Ordering::SeqCst);
    }

    fn came_back(&self) {
        self.down.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The message of a panic, for logs and the dead-letter list.
fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string()),
        Err(error) => error.to_string(),
    }
}

/// Drains the inbox until `shutdown` turns true; the batches in flight are finished first. The
/// claim loop runs supervised: a panic restarts it after `restart_delay`.
pub async fn run_worker(sources: Arc<Sources>, options: WorkerOptions, wake: Arc<Notify>, shutdown: watch::Receiver<bool>) {
    if options.release_leases_at_start {
        release_leases(&sources).await;
    }
    let health = Arc::clone(&sources.worker_health);
    health.started.store(true, Ordering::SeqCst);
    loop {
        let run = tokio::spawn(claim_loop(
            Arc::clone(&sources),
            options.clone(),
            Arc::clone(&wake),
            shutdown.clone(),
        ));
        match run.await {
            Ok(()) => break,
            Err(error) => {
                health.went_down();
                sources.metrics.increment("syncline_worker_restarts_total", &[("part", "worker")]);
                tracing::error!(panic = %panic_message(error), "the inbox worker panicked; restarting it");
                tokio::time::sleep(options.restart_delay).await;
                if options.release_leases_at_start {
                    // The lanes died with it: their claims come back at once.
                    release_leases(&sources).await;
                }
                health.came_back();
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    if let Err(error) = sources.destination.release().await {
        tracing::warn!(%error, "cannot release the destination");
    }
    tracing::info!("inbox worker stopped");
}

async fn release_leases(sources: &Sources) {
    match sources.state.inbox_release_leases().await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "events claimed by an earlier run are back in the inbox"),
        Err(error) => tracing::warn!(%error, "cannot release earlier leases; they run out on their own"),
    }
}

/// One source's lane: the events claimed for it and not yet applied, and the task applying
/// them. While the lane applies a batch, newly claimed events gather here (they stay leased), so
/// the next batch takes all of them at once the moment the current one is done: no event waits
/// for a poll because its lane was busy.
#[derive(Default)]
struct Lane {
    pending: std::sync::Mutex<Vec<InboxEntry>>,
    ready: Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl Lane {
    /// Adds claimed events; returns those beyond what the lane holds (`limit`).
    fn offer(&self, mut entries: Vec<InboxEntry>, limit: usize) -> Vec<InboxEntry> {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = limit.saturating_sub(pending.len());
        let overflow = if entries.len() > room {
            entries.split_off(room)
        } else {
            Vec::new()
        };
        pending.extend(entries);
        drop(pending);
        self.ready.notify_one();
        overflow
    }

    /// Takes up to `most` events, oldest first.
    fn take(&self, most: usize) -> Vec<InboxEntry> {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cut = most.min(pending.len());
        let rest = pending.split_off(cut);
        std::mem::replace(&mut *pending, rest)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.ready.notify_one();
    }
}

async fn claim_loop(sources: Arc<Sources>, options: WorkerOptions, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let mut next_prune = tokio::time::Instant::now();
    let mut lanes: HashMap<String, Arc<Lane>> = HashMap::new();
    // Aborted with the claim loop if it panics; drained on shutdown.
    let mut lane_tasks: JoinSet<()> = JoinSet::new();
    let idle = Arc::new(Notify::new());
    let busy_lanes = Arc::new(AtomicUsize::new(0));
    let mut wrote = false;
    // When the inbox was last found with work in it.
    let mut last_claim = tokio::time::Instant::now();
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
            let mut nap = options.poll_interval;
            if wrote && busy_lanes.load(Ordering::SeqCst) == 0 {
                let quiet = last_claim.elapsed();
                if quiet >= options.release_after {
                    // Idle: let readers (the duckdb CLI, dbt) have the warehouse file.
                    if let Err(error) = sources.destination.release().await {
                        tracing::warn!(%error, "cannot release the destination");
                    }
                    wrote = false;
                } else {
                    nap = nap.min(options.release_after - quiet);
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = idle.notified() => {}
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(nap) => {}
            }
            continue;
        }
        wrote = true;
        last_claim = tokio::time::Instant::now();
        let full = claimed.len() >= options.batch_size;
        let mut by_source: BTreeMap<String, Vec<InboxEntry>> = BTreeMap::new();
        for entry in claimed {
            by_source.entry(entry.event.source.clone()).or_default().push(entry);
        }
        for (source, entries) in by_source {
            if sources.engine(&source).is_none() {
                // Stored while the source was configured, and it is not any more.
                let seqs: Vec<i64> = entries.iter().map(|entry| entry.seq).collect();
                fail(
                    &sources,
                    &seqs,
                    "the source is no longer configured; add it back or drop these events",
                    &options,
                )
                .await;
                continue;
            }
            let lane = lanes.entry(source.clone()).or_insert_with(|| {
                let lane = Arc::new(Lane::default());
                lane_tasks.spawn(run_lane(
                    Arc::clone(&sources),
                    options.clone(),
                    source.clone(),
                    Arc::clone(&lane),
                    Arc::clone(&idle),
                    Arc::clone(&busy_lanes),
                ));
                lane
            });
            let overflow = lane.offer(entries, options.batch_size.max(1) * LANE_PENDING_BATCHES);
            if !overflow.is_empty() {
                // The lane holds enough: these come back in a moment, no attempt counted.
                let seqs: Vec<i64> = overflow.iter().map(|entry| entry.seq).collect();
                defer(&sources, &seqs, "the source's lane was busy", now_ms() + BUSY_LANE_DELAY_MS).await;
            }
        }
        if !full && !options.linger.is_zero() {
            // Let a burst gather: one history batch of many events beats many of one.
            tokio::time::sleep(options.linger).await;
        }
    }
    // Shutdown: the lanes finish the batch in flight and stop; what they still hold goes back
    // to the inbox, claimable at once.
    for lane in lanes.values() {
        lane.close();
    }
    while lane_tasks.join_next().await.is_some() {}
    for lane in lanes.values() {
        let seqs: Vec<i64> = lane.take(usize::MAX).iter().map(|entry| entry.seq).collect();
        defer(&sources, &seqs, "the worker stopped before applying this event", now_ms()).await;
    }
}

async fn wait(wake: &Notify, shutdown: &mut watch::Receiver<bool>, interval: Duration) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = shutdown.changed() => {}
        _ = tokio::time::sleep(interval) => {}
    }
}

/// Applies the batches of one source in order. Each batch runs in a task of its own: a panic
/// fails that batch's events once (so a record that always panics ends in the dead-letter list)
/// and the lane goes on after `restart_delay`.
async fn run_lane(
    sources: Arc<Sources>,
    options: WorkerOptions,
    source: String,
    lane: Arc<Lane>,
    idle: Arc<Notify>,
    busy: Arc<AtomicUsize>,
) {
    let mut backoff = Backoff::new(options.transient_backoff, options.max_transient_backoff);
    loop {
        if lane.closed.load(Ordering::SeqCst) {
            break;
        }
        // Counted busy before taking, so the claim loop never sees the lane idle with events taken.
        busy.fetch_add(1, Ordering::SeqCst);
        let entries = lane.take(options.batch_size.max(1));
        if entries.is_empty() {
            busy.fetch_sub(1, Ordering::SeqCst);
            lane.ready.notified().await;
            continue;
        }
        let seqs: Vec<i64> = entries.iter().map(|entry| entry.seq).collect();
        let task = tokio::spawn({
            let sources = Arc::clone(&sources);
            let options = options.clone();
            let source = source.clone();
            let delay = backoff.current();
            async move {
                if let Some(hook) = &options.before_batch {
                    (hook.0)(&source, &entries);
                }
                apply_batch(&sources, &options, &source, entries, delay).await
            }
        });
        match task.await {
            Ok(BatchOutcome::Applied) => backoff.reset(),
            Ok(BatchOutcome::Transient) => {
                let delay = backoff.current();
                backoff.grow();
                // Nothing of this source would get through now; its events wait in the inbox.
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                let message = panic_message(error);
                sources.worker_health.went_down();
                sources.metrics.increment("syncline_worker_restarts_total", &[("part", "lane")]);
                tracing::error!(source, panic = %message, events = seqs.len(), "the worker panicked applying a batch; restarting the lane");
                fail(
                    &sources,
                    &seqs,
                    &format!("the worker panicked applying this event: {message}"),
                    &options,
                )
                .await;
                tokio::time::sleep(options.restart_delay).await;
                sources.worker_health.came_back();
            }
        }
        busy.fetch_sub(1, Ordering::SeqCst);
        idle.notify_one();
    }
}

/// A delay that doubles while transient trouble lasts.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            current: first,
        }
    }

    fn current(&self) -> Duration {
        self.current
    }

    fn grow(&mut self) {
        self.current = (self.current * 2).min(self.max).max(self.first);
    }

    fn reset(&mut self) {
        self.current = self.first;
    }
}

/// How a batch went, for the lane's backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Applied (records that failed on their own included).
    Applied,
    /// Transient trouble: the events were put back without counting an attempt.
    Transient,
}

/// Applies one claimed batch of one source, entity by entity. Transient trouble puts the
/// affected events back due after `transient_delay`.
pub async fn apply_batch(
    sources: &Sources,
    options: &WorkerOptions,
    source: &str,
    claimed: Vec<InboxEntry>,
    transient_delay: Duration,
) -> BatchOutcome {
    let mut by_entity: BTreeMap<String, Vec<InboxEntry>> = BTreeMap::new();
    for entry in claimed {
        by_entity.entry(entry.event.entity.clone()).or_default().push(entry);
    }
    let Some(engine) = sources.engine(source).cloned() else {
        let seqs: Vec<i64> = by_entity.values().flatten().map(|entry| entry.seq).collect();
        fail(
            sources,
            &seqs,
            "the source is no longer configured; add it back or drop these events",
            options,
        )
        .await;
        return BatchOutcome::Applied;
    };
    // A webhook batch is a run of its own for the request budget, unless a reconcile of the
    // source is running (its budget then covers the webhook re-fetches too).
    if !sources.reconciling(source) {
        engine.start_run();
    }
    let run = EventRun {
        config: &sources.config,
        source,
        destination: sources.destination.as_ref(),
        state: sources.state.as_ref(),
        engine: &engine,
        locks: &sources.write_locks,
    };
    let due_later = || now_ms() + transient_delay.as_millis() as i64;
    let mut outcome = BatchOutcome::Applied;
    for (entity, entries) in by_entity {
        let seqs: Vec<i64> = entries.iter().map(|entry| entry.seq).collect();
        let clamped: Vec<syncline_core::WebhookEvent> = entries
            .iter()
            .map(|entry| {
                let mut event = entry.event.clone();
                event.event_time = clamp_event_time(event.event_time, entry.received_at, options.max_event_skew_ms);
                event
            })
            .collect();
        let coalesced = coalesce(&clamped);
        let queued_ms = entries.iter().map(|entry| now_ms() - entry.received_at).max().unwrap_or(0).max(0);
        let applied = apply_entity_events(&run, &entity, &coalesced, now_ms()).await;
        let report = match applied {
            Ok(report) => report,
            Err(error) if error.is_transient() => {
                sources
                    .metrics
                    .increment("syncline_worker_batches_total", &[("outcome", "deferred")]);
                tracing::warn!(source, entity, %error, events = entries.len(), "transient trouble; the events wait without counting an attempt");
                defer(sources, &seqs, &error.to_string(), due_later()).await;
                outcome = BatchOutcome::Transient;
                continue;
            }
            Err(error) => {
                sources.metrics.increment("syncline_worker_batches_total", &[("outcome", "failed")]);
                tracing::warn!(source, entity, %error, events = entries.len(), "webhook events failed; they will be retried");
                fail(sources, &seqs, &error.to_string(), options).await;
                continue;
            }
        };
        // Records that failed on their own, and records hit by transient trouble.
        let seqs_of = |ids: &[(String, String)]| -> Vec<(Vec<i64>, String)> {
            ids.iter()
                .map(|(id, error)| {
                    let seqs = entries
                        .iter()
                        .filter(|entry| entry.event.id == *id)
                        .map(|entry| entry.seq)
                        .collect();
                    (seqs, error.clone())
                })
                .collect()
        };
        let mut held: HashSet<i64> = HashSet::new();
        for (record_seqs, error) in seqs_of(&report.failed) {
            held.extend(&record_seqs);
            fail(sources, &record_seqs, &error, options).await;
        }
        if !report.transient.is_empty() {
            outcome = BatchOutcome::Transient;
        }
        for (record_seqs, error) in seqs_of(&report.transient) {
            held.extend(&record_seqs);
            defer(sources, &record_seqs, &error, due_later()).await;
        }
        let done: Vec<&InboxEntry> = entries.iter().filter(|entry| !held.contains(&entry.seq)).collect();
        let done_seqs: Vec<i64> = done.iter().map(|entry| entry.seq).collect();
        if let Err(error) = sources.state.inbox_done(&done_seqs, now_ms()).await {
            // Applied but not marked: the lease runs out and a replay changes nothing.
            tracing::error!(%error, source, entity, "cannot mark events done; they will be replayed");
            continue;
        }
        let committed = now_ms();
        let latencies: Vec<f64> = done
            .iter()
            .map(|entry| (committed - entry.received_at).max(0) as f64 / 1000.0)
            .collect();
        sources.metrics.observe_webhook_to_warehouse(&latencies);
        let pairs = [("source", source), ("entity", entity.as_str())];
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
            confirmed_deletes = report.confirmed_deletes,
            refuted_deletes = report.refuted_deletes,
            reopened = report.reopened,
            failed = report.failed.len(),
            transient = report.transient.len(),
            versions = report.written.plan.versions,
            deleted = report.written.plan.deleted,
            queued_ms,
            fetch_ms = report.fetch_ms,
            lock_wait_ms = report.lock_wait_ms,
            write_ms = report.write_ms,
            "webhook events applied"
        );
    }
    sources.publish_api_stats();
    outcome
}

async fn fail(sources: &Sources, seqs: &[i64], error: &str, options: &WorkerOptions) {
    if seqs.is_empty() {
        return;
    }
    match sources.state.inbox_fail(seqs, error, now_ms(), options.max_attempts).await {
        Ok(dead) if dead > 0 => tracing::error!(dead, error, "events moved to the dead-letter list; see `syncline inbox list`"),
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot record the failure; the lease will release the events"),
    }
}

async fn defer(sources: &Sources, seqs: &[i64], error: &str, due_at: i64) {
    if seqs.is_empty() {
        return;
    }
    if let Err(error) = sources.state.inbox_defer(seqs, error, due_at).await {
        tracing::error!(%error, "cannot put the events back; the lease will release them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> InboxEntry {
        InboxEntry {
            seq,
            event: syncline_core::WebhookEvent {
                source: "s".into(),
                entity: "deal".into(),
                id: seq.to_string(),
                action: syncline_core::EventAction::Upsert,
                event_time: 0,
                delivery_id: format!("d{seq}"),
                parent_id: None,
            },
            received_at: 0,
            attempts: 0,
            last_error: None,
        }
    }

    fn seqs(entries: &[InboxEntry]) -> Vec<i64> {
        entries.iter().map(|entry| entry.seq).collect()
    }

    #[test]
    fn a_busy_lane_gathers_claims_up_to_its_limit_and_hands_them_over_oldest_first() {
        let lane = Lane::default();
        assert!(lane.offer((1..=3).map(entry).collect(), 5).is_empty());
        let overflow = lane.offer((4..=7).map(entry).collect(), 5);
        assert_eq!(seqs(&overflow), [6, 7], "beyond the limit goes back to the inbox");
        assert_eq!(seqs(&lane.take(2)), [1, 2]);
        assert_eq!(seqs(&lane.take(10)), [3, 4, 5]);
        assert!(lane.take(10).is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(backoff.current().as_secs());
            backoff.grow();
        }
        assert_eq!(seen, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.current(), Duration::from_secs(1));
    }

    #[test]
    fn health_is_down_between_a_panic_and_the_restart() {
        let health = WorkerHealth::default();
        assert!(!health.is_up(), "not up before it starts");
        health.started.store(true, Ordering::SeqCst);
        assert!(health.is_up());
        health.went_down();
        assert!(!health.is_up());
        health.came_back();
        assert!(health.is_up());
        assert_eq!(health.restarts(), 1);
    }
}
