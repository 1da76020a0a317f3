//! syncline's own durable state: the current-record index (what the SCD2 planner reads as
//! "current versions", so the hot path never reads the warehouse), cursors, the webhook inbox,
//! and the schema version of the store itself.
//!
//! One trait, [`StateStore`], with one implementation per backend and one conformance suite
//! ([`conformance`]) that every backend runs: [`SqliteStateStore`] (embedded default) and
//! [`PostgresStateStore`] (for several replicas).

pub mod conformance;
mod postgres;
pub mod postgres_url;
pub mod private_files;
mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use syncline_core::{CurrentVersion, Millis, WebhookEvent};

pub use postgres::PostgresStateStore;
pub use sqlite::SqliteStateStore;

/// Errors of a state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The SQLite database failed.
    #[error("sqlite state store: {0}; check that the state file is writable and not corrupted")]
    Sqlite(#[from] rusqlite::Error),
    /// The store was written by a newer syncline.
    #[error("state store schema version {found} is newer than this syncline understands ({supported}); upgrade syncline")]
    TooNew {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The PostgreSQL server failed or could not be reached.
    #[error("postgres state store: {0}; check that the server is reachable and the user may create tables in the schema")]
    Postgres(#[from] tokio_postgres::Error),
    /// A blocking task failed.
    #[error("state store task failed: {0}")]
    Task(String),
    /// The store holds a value this build cannot read.
    #[error("state store holds {0}; it was written by another syncline build: upgrade syncline or drop the row")]
    Unreadable(String),
    /// The state-store URL is not understood.
    #[error("state store url `{0}` is not understood; write sqlite://path/to/state.db or postgres://user@host:5432/database?schema=name")]
    BadUrl(String),
}

/// One entry to write into the current-record index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexWrite {
    /// The record id.
    pub id: String,
    /// Its latest version.
    pub version: CurrentVersion,
    /// True when the record is in a terminal state (closed ticket, paid invoice).
    pub terminal: bool,
    /// The record's JSON; `None` keeps the stored one (a delete keeps the last record).
    pub record: Option<String>,
}

/// A record as the current-record index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record id.
    pub id: String,
    /// Its latest version (`version.end` is set when the id was deleted).
    pub version: CurrentVersion,
    /// True when the record is in a terminal state.
    pub terminal: bool,
    /// The record's JSON as last fetched.
    pub record: Option<String>,
    /// When the entry was last written.
    pub updated_at: Millis,
}

/// One event in the webhook inbox, as [`StateStore::inbox_claim`] and
/// [`StateStore::inbox_dead`] return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The inbox sequence number: unique, never reused, increasing in the order events were
    /// received. Pass it back to [`StateStore::inbox_done`] and [`StateStore::inbox_fail`].
    pub seq: i64,
    /// The event as appended.
    pub event: WebhookEvent,
    /// When the webhook carrying the event was received.
    pub received_at: Millis,
    /// Failed attempts so far (reset by [`StateStore::inbox_retry_dead`]).
    pub attempts: u32,
    /// The error of the last failed attempt, if any.
    pub last_error: Option<String>,
}

/// Depth and age of the webhook inbox, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxStats {
    /// Events not yet applied and not dead (due, leased or waiting for a retry).
    pub pending: u64,
    /// Pending events a worker could claim at `now` (not leased, retry time reached).
    pub due: u64,
    /// When the oldest pending event was received (`None` when nothing is pending).
    pub oldest_pending_received_at: Option<Millis>,
    /// Events in the dead-letter list.
    pub dead: u64,
    /// Applied events kept for de-duplication until [`StateStore::inbox_prune`] removes them.
    pub done: u64,
}

/// The delay before the first retry of a failed inbox event.
pub const INBOX_FIRST_RETRY_DELAY_MS: i64 = 1_000;

/// The longest delay between two retries of a failed inbox event.
pub const INBOX_MAX_RETRY_DELAY_MS: i64 = 300_000;

/// The delay before the next attempt of an inbox event that has failed `attempts` times:
/// 1 s after the first failure, doubling with each further failure, capped at 5 minutes.
/// Deterministic (no jitter), so tests and operators can predict it.
pub fn inbox_retry_delay_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(31);
    INBOX_FIRST_RETRY_DELAY_MS
        .saturating_mul(1_i64 << doublings)
        .min(INBOX_MAX_RETRY_DELAY_MS)
}

/// The durable state of syncline.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The index entries of the given ids (ids without an entry are absent from the map).
    async fn current_versions(&self, source: &str, entity: &str, ids: &[String]) -> Result<HashMap<String, CurrentVersion>, StateError>;

    /// Every index entry of an entity, deleted ids included (for full extracts and the full
    /// reconcile).
    async fn all_current_versions(&self, source: &str, entity: &str) -> Result<HashMap<String, CurrentVersion>, StateError>;

    /// Up to `limit` ids of the entity that are active in the index (not deleted), in
    /// ascending text order, after `after` (exclusive) when given: a full reconcile compares
    /// them with the listing chunk by chunk, so its memory does not grow with the tenant.
    async fn active_ids_page(&self, source: &str, entity: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError>;

    /// Writes index entries atomically. Call it only after the destination committed the batch
    /// these entries describe.
    async fn write_index(&self, source: &str, entity: &str, entries: Vec<IndexWrite>, written_at: Millis) -> Result<(), StateError>;

    /// One record from the index.
    async fn record(&self, source: &str, entity: &str, id: &str) -> Result<Option<StoredRecord>, StateError>;

    /// The reconciler cursor of an entity.
    async fn cursor(&self, source: &str, entity: &str) -> Result<Option<String>, StateError>;

    /// Stores the reconciler cursor of an entity.
    async fn set_cursor(&self, source: &str, entity: &str, cursor: &str, written_at: Millis) -> Result<(), StateError>;

    /// A secret of a source kept durably, such as a rotated OAuth2 refresh token. Persist a new
    /// refresh token here before using the access token that came with it.
    async fn token(&self, source: &str, name: &str) -> Result<Option<String>, StateError>;

    /// Stores a secret of a source (durable when this returns).
    async fn set_token(&self, source: &str, name: &str, value: &str, written_at: Millis) -> Result<(), StateError>;

    /// A marker of a source: small facts such as "initial sync done" or "last full reconcile".
    async fn marker(&self, source: &str, key: &str) -> Result<Option<String>, StateError>;

    /// Stores a marker of a source.
    async fn set_marker(&self, source: &str, key: &str, value: &str, written_at: Millis) -> Result<(), StateError>;

    /// The schema version of the store.
    async fn schema_version(&self) -> Result<i64, StateError>;

    /// Appends webhook events to the inbox, all in one transaction, and returns how many were
    /// newly stored. When this returns `Ok` the events are committed and survive a crash of
    /// the process, so the webhook may be acknowledged.
    ///
    /// Duplicates are absorbed (stored once, not counted): an event with the same
    /// `(source, delivery_id, entity, id)` or the same `(source, entity, id, action,
    /// event_time)` as one already in the inbox (pending, done or dead) or earlier in `events`.
    async fn inbox_append(&self, events: &[WebhookEvent], received_at: Millis) -> Result<usize, StateError>;

    /// Leases up to `limit` due events, oldest first (by `seq`), until `now + lease_ms`, and
    /// returns them. Due: pending, next attempt time reached and no unexpired lease. A leased
    /// event is not returned again until its lease expires, so the events of a worker that
    /// crashed come back after `lease_ms`; concurrent claimers (several replicas on
    /// PostgreSQL) never receive the same event under an unexpired lease.
    async fn inbox_claim(&self, limit: usize, now: Millis, lease_ms: i64) -> Result<Vec<InboxEntry>, StateError>;

    /// Marks pending events applied (done rows are kept for de-duplication until pruned) and
    /// returns how many were marked. Seqs that are not pending are ignored.
    async fn inbox_done(&self, seqs: &[i64], done_at: Millis) -> Result<usize, StateError>;

    /// Records a failed attempt of pending events: counts the attempt, keeps `error`, releases
    /// the lease and schedules the next attempt at `now +`[`inbox_retry_delay_ms`]. An event
    /// that reaches `max_attempts` (at least 1) moves to the dead-letter list instead. Returns
    /// how many events moved to the dead-letter list.
    async fn inbox_fail(&self, seqs: &[i64], error: &str, now: Millis, max_attempts: u32) -> Result<usize, StateError>;

    /// Puts pending events back for a later attempt without counting one: releases the lease,
    /// keeps `error` as the last error and makes the events due at `due_at`. For transient
    /// trouble (the upstream or the warehouse down, a rate limit) that says nothing about the
    /// events themselves, so an outage never moves them to the dead-letter list. Seqs that are
    /// not pending are ignored. Returns how many events were put back.
    async fn inbox_defer(&self, seqs: &[i64], error: &str, due_at: Millis) -> Result<usize, StateError>;

    /// Depth and age of the inbox at `now`.
    async fn inbox_stats(&self, now: Millis) -> Result<InboxStats, StateError>;

    /// Up to `limit` events of the dead-letter list, oldest first.
    async fn inbox_dead(&self, limit: usize) -> Result<Vec<InboxEntry>, StateError>;

    /// Moves dead events back to pending, due at once, with their attempts reset (the last
    /// error is kept); `None` moves every dead event. Returns how many moved.
    async fn inbox_retry_dead(&self, seqs: Option<&[i64]>) -> Result<usize, StateError>;

    /// Deletes dead events; `None` deletes every dead event. Returns how many were deleted.
    async fn inbox_drop_dead(&self, seqs: Option<&[i64]>) -> Result<usize, StateError>;

    /// Deletes done events applied before `done_before` (the end of the de-duplication
    /// window) and returns how many were deleted.
    async fn inbox_prune(&self, done_before: Millis) -> Result<usize, StateError>;

    /// Releases every lease, making leased events due again at once. Call it only at the
    /// start of a single server (no other worker running); with several replicas let leases
    /// expire instead. Returns how many leases were released.
    async fn inbox_release_leases(&self) -> Result<usize, StateError>;
}

/// Which state store to use, from configuration or a URL.
#[derive(Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// An SQLite file: `sqlite://state.db`, `sqlite:///var/lib/syncline/state.db`, or a plain path.
    Sqlite {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A PostgreSQL database: `postgres://user[:password]@host:5432/database[?schema=name]`
    /// (`postgresql://` too). The tables go to the schema (created if missing), else to the
    /// server's default search path.
    Postgres {
        /// The URL as given; shown only with its password redacted.
        url: String,
    },
}

impl std::fmt::Debug for StateConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateConfig::Sqlite { path } => formatter.debug_struct("Sqlite").field("path", path).finish(),
            StateConfig::Postgres { url } => formatter
                .debug_struct("Postgres")
                .field("url", &postgres_url::redact_url(url))
                .finish(),
        }
    }
}

impl std::str::FromStr for StateConfig {
    type Err = StateError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StateError::BadUrl(url.to_string()));
            }
            return Ok(StateConfig::Sqlite { path: path.into() });
        }
        if postgres_url::is_postgres_url(url) {
            if postgres_url::split_postgres_url(url).is_none() {
                return Err(StateError::BadUrl(postgres_url::redact_url(url)));
            }
            return Ok(StateConfig::Postgres { url: url.to_string() });
        }
        if url.contains("://") {
            return Err(StateError::BadUrl(postgres_url::redact_url(url)));
        }
        Ok(StateConfig::Sqlite { path: url.into() })
    }
}

/// What an acknowledged webhook survives (`[state] durability`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A crash or kill of the process (the default): SQLite in WAL mode with
    /// `synchronous = NORMAL`; a power cut or kernel crash can lose the last commits.
    #[default]
    Crash,
    /// A power cut too: SQLite `synchronous = FULL`, a disk flush per commit (see
    /// `bench/webhooks.sh` for the cost). PostgreSQL commits are flushed by the server's own
    /// settings (`synchronous_commit`), whatever this says.
    PowerLoss,
}

impl Durability {
    /// The name in the configuration and in metric help: `crash` or `power_loss`.
    pub fn name(self) -> &'static str {
        match self {
            Durability::Crash => "crash",
            Durability::PowerLoss => "power_loss",
        }
    }

    /// SQLite's `synchronous` setting for it.
    pub fn sqlite_synchronous(self) -> &'static str {
        match self {
            Durability::Crash => "NORMAL",
            Durability::PowerLoss => "FULL",
        }
    }
}

/// Opens the configured state store (applying migrations) with the default durability.
pub async fn open_state_store(config: &StateConfig) -> Result<Box<dyn StateStore>, StateError> {
    open_state_store_with(config, Durability::default()).await
}

/// Opens the configured state store (applying migrations) with a chosen durability.
pub async fn open_state_store_with(config: &StateConfig, durability: Durability) -> Result<Box<dyn StateStore>, StateError> {
    match config {
        StateConfig::Sqlite { path } => Ok(Box::new(SqliteStateStore::open_with_durability(path, durability)?)),
        StateConfig::Postgres { url } => Ok(Box::new(PostgresStateStore::open(url).await?)),
    }
}

/// Polls every future to completion concurrently on the current task (no spawn, so the futures
/// may borrow the store).
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut waiting = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_some() {
                continue;
            }
            match future.as_mut().poll(context) {
                std::task::Poll::Ready(value) => *output = Some(value),
                std::task::Poll::Pending => waiting = true,
            }
        }
        if waiting {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|output| output.expect("every future finished")).collect()
}

/// `hashes_at_modified` as stored: comma-separated (hashes are hex).
pub(crate) fn join_hashes(hashes: &[String]) -> String {
    hashes.join(",")
}

pub(crate) fn split_hashes(text: &str) -> Vec<String> {
    text.split(',').filter(|part| !part.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_from_one_second_up_to_five_minutes() {
        let delays: Vec<i64> = (0..=11).map(inbox_retry_delay_ms).collect();
        assert_eq!(
            delays,
            [1_000, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000]
        );
        assert_eq!(inbox_retry_delay_ms(u32::MAX), INBOX_MAX_RETRY_DELAY_MS);
    }

    #[test]
    fn urls_name_the_state_store() {
        let parse = |url: &str| url.parse::<StateConfig>();
        assert_eq!(parse("state.db").unwrap(), StateConfig::Sqlite { path: "state.db".into() });
        assert_eq!(
            parse("postgres://ann@db:5432/w?schema=syncline").unwrap(),
            StateConfig::Postgres {
                url: "postgres://ann@db:5432/w?schema=syncline".into()
            }
        );
        assert!(matches!(parse("postgresql://ann@db/w").unwrap(), StateConfig::Postgres { .. }));
        let error = parse("postgres://ann:s3cret@db/w?schema=").unwrap_err().to_string();
        assert!(error.contains("postgres://") && !error.contains("s3cret"), "{error}");
        assert!(parse("mysql://x").unwrap_err().to_string().contains("sqlite://"));
        let debug = format!("{:?}", parse("postgres://ann:s3cret@db/w").unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
