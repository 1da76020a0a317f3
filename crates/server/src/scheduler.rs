//! The built-in scheduler: per source, incremental and full reconciles at the times of their
//! cron expressions, in the configured time zone. When both fall on the same minute the full
//! one runs (it covers the incremental). A run that finds the source busy (a reconcile started
//! by `/sync`, say) is skipped, not queued.

use std::sync::Arc;
use std::time::Duration;

use syncline_connectors::config::SourceSchedule;
use syncline_connectors::reconcile::SyncMode;
use syncline_connectors::SynclineConfig;
use syncline_core::Millis;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::sources::{now_ms, Sources};

/// The schedules of every source that has them enabled.
#[derive(Debug, Clone)]
pub struct Schedules {
    /// `(source, schedule)` pairs.
    pub sources: Vec<(String, SourceSchedule)>,
}

impl Schedules {
    /// The effective schedule of every configured source.
    pub fn from_config(config: &SynclineConfig) -> Result<Self, String> {
        let mut sources = Vec::new();
        for name in config.sources.keys() {
            let schedule = config.schedule_for(name).map_err(|error| error.to_string())?;
            if schedule.enabled {
                sources.push((name.clone(), schedule));
            }
        }
        Ok(Self { sources })
    }
}

/// The next run of a schedule strictly after `after`: its time and mode (full wins a tie).
pub fn next_run(schedule: &SourceSchedule, after: Millis) -> (Millis, SyncMode) {
    let incremental = schedule.incremental.next_after(after, &schedule.time_zone);
    let full = schedule.full.next_after(after, &schedule.time_zone);
    if full <= incremental {
        (full, SyncMode::Full)
    } else {
        (incremental, SyncMode::Incremental)
    }
}

/// Runs every source's schedule until `shutdown` turns true.
pub async fn run_scheduler(sources: Arc<Sources>, schedules: Schedules, mut shutdown: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    for (source, schedule) in schedules.sources {
        let sources = Arc::clone(&sources);
        tasks.spawn(async move {
            let mut after = now_ms();
            loop {
                let (at, mode) = next_run(&schedule, after);
                tracing::info!(source, mode = mode.name(), at = %syncline_core::format_timestamp(at), "next scheduled reconcile");
                let wait = (at - now_ms()).max(0) as u64;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let _ = sources.reconcile(&source, mode).await;
                after = at.max(now_ms());
            }
        });
    }
    let _ = shutdown.wait_for(|stop| *stop).await;
    tasks.shutdown().await;
    tracing::info!("scheduler stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncline_core::{parse_timestamp, CronSchedule, CronTimeZone};

    fn schedule(incremental: &str, full: &str, zone: &str) -> SourceSchedule {
        SourceSchedule {
            incremental: CronSchedule::parse(incremental).unwrap(),
            full: CronSchedule::parse(full).unwrap(),
            time_zone: CronTimeZone::named(zone).unwrap(),
            enabled: true,
        }
    }

    #[test]
    fn full_wins_when_both_are_due() {
        let defaults = schedule("*/15 * * * *", "0 4 * * 0", "UTC");
        // 2026-11-29 is a Sunday.
        let before = parse_timestamp("2026-11-29T03:50:00Z").unwrap();
        assert_eq!(
            next_run(&defaults, before),
            (parse_timestamp("2026-11-29T04:00:00Z").unwrap(), SyncMode::Full)
        );
        let after = parse_timestamp("2026-11-29T04:00:00Z").unwrap();
        assert_eq!(
            next_run(&defaults, after),
            (parse_timestamp("2026-11-29T04:15:00Z").unwrap(), SyncMode::Incremental)
        );
    }

    #[test]
    fn time_zone_moves_the_full_run() {
        let berlin = schedule("0 0 1 1 *", "0 4 * * 0", "Europe/Berlin");
        let before = parse_timestamp("2026-11-25T12:00:00Z").unwrap();
        // 04:00 in Berlin in winter is 03:00 UTC.
        assert_eq!(
            next_run(&berlin, before),
            (parse_timestamp("2026-11-29T03:00:00Z").unwrap(), SyncMode::Full)
        );
    }
}
