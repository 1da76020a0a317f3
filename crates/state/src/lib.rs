//! syncline's own durable state: the current-record index (what the SCD2 planner reads as
//! "current versions", so the hot path never reads the warehouse), cursors, and the schema
//! version of the store itself.
//!
//! One trait, [`StateStore`], with one implementation per backend and one conformance suite
//! ([`conformance`]) that every backend runs: [`SqliteStateStore`] (embedded default) and
//! [`PostgresStateStore`] (for several replicas).

pub mod conformance;
mod postgres;
pub mod postgres_url;
mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use syncline_core::{CurrentVersion, Millis};

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

/// The durable state of syncline.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The index entries of the given ids (ids without an entry are absent from the map).
    async fn current_versions(&self, source: &str, entity: &str, ids: &[String]) -> Result<HashMap<String, CurrentVersion>, StateError>;

    /// Every index entry of an entity, deleted ids included (for full extracts and the full
    /// reconcile).
    async fn all_current_versions(&self, source: &str, entity: &str) -> Result<HashMap<String, CurrentVersion>, StateError>;

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

/// Opens the configured state store (applying migrations).
pub async fn open_state_store(config: &StateConfig) -> Result<Box<dyn StateStore>, StateError> {
    match config {
        StateConfig::Sqlite { path } => Ok(Box::new(SqliteStateStore::open(path)?)),
        StateConfig::Postgres { url } => Ok(Box::new(PostgresStateStore::open(url).await?)),
    }
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
