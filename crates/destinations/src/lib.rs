//! Destinations: the warehouses history tables are written to, behind one trait.
//!
//! A destination applies a [`HistoryBatch`] atomically and idempotently (a replayed batch,
//! after a crash between the destination commit and the state-store update, changes nothing),
//! and can read its history back for checks. [`writer::HistoryWriter`] ties the planner, a
//! destination and a state store together; [`conformance`] is the suite every backend passes.
//! Backends: [`DuckDbDestination`] (embedded default), [`PostgresDestination`] and
//! [`BigQueryDestination`].
//! [`compare`] checks parity between two history datasets (`syncline compare`).

pub mod adopt;
mod bigquery;
pub mod compare;
pub mod conformance;
mod duckdb;
mod postgres;
pub mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use syncline_core::{HistoryBatch, HistoryProfile, Millis, TableSchema};
use syncline_state::postgres_url::{is_postgres_url, redact_url, split_postgres_url};

pub use crate::bigquery::{
    bigquery_identifier, test_service_url as bigquery_test_service_url, BigQueryConfig, BigQueryDestination,
    ENDPOINT_VARIABLE as BIGQUERY_ENDPOINT_VARIABLE, TEST_URL_VARIABLE as BIGQUERY_TEST_URL_VARIABLE,
};
pub use crate::duckdb::{DuckDbDestination, LockRetry};
pub use crate::postgres::{physical_identifier, PostgresDestination, MAX_IDENTIFIER_BYTES};
pub use writer::{
    late_versions_marker, max_start_marker, resolve_start_setting, start_setting_marker, stored_start_setting, HistoryTarget,
    HistoryWriter, Observed, PreparedWrite, WriteError, WriteStats,
};

/// Errors of a destination.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// DuckDB failed.
    #[error("duckdb: {0}")]
    DuckDb(#[from] ::duckdb::Error),
    /// PostgreSQL failed or could not be reached; nothing of the batch was committed.
    #[error("postgres: {}; check that the server is reachable and the user may create tables in the schema", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The DuckDB file stayed locked by another process.
    #[error("duckdb file {path} is still locked by another process after {attempts} attempts; close the other connection (duckdb CLI, dbt) and run again")]
    Locked {
        /// The file.
        path: String,
        /// How many times syncline tried.
        attempts: u32,
    },
    /// An identifier cannot be used.
    #[error("identifier `{0}` contains a NUL character; rename the field or table")]
    BadIdentifier(String),
    /// A table lacks a column the caller named (such as the primary key).
    #[error("table `{table}` has no column `{column}`; pass the right --primary-key")]
    MissingColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A blocking task failed.
    #[error("destination task failed: {0}")]
    Task(String),
    /// The destination URL is not understood.
    #[error("destination url `{0}` is not understood; write duckdb://path/to/warehouse.duckdb, postgres://user@host:5432/database?schema=name or bigquery://project/dataset[?location=EU&credentials=/path/key.json]")]
    BadUrl(String),
    /// The TLS settings of a PostgreSQL URL (`sslmode`, `sslrootcert`) are not usable.
    #[error("postgres url `{url}`: {reason}")]
    PostgresTls {
        /// The URL, password redacted.
        url: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// BigQuery refused a request or a job failed; nothing of the batch was merged.
    #[error("bigquery {operation}: {message}; {hint}")]
    BigQuery {
        /// What syncline was doing.
        operation: String,
        /// BigQuery's message.
        message: String,
        /// What to do next.
        hint: &'static str,
    },
    /// BigQuery (or the endpoint override) could not be reached.
    #[error("bigquery is unreachable: {0}; check the network, or the endpoint override")]
    BigQueryUnreachable(String),
    /// No usable BigQuery credentials.
    #[error("bigquery credentials: {0}; pass ?credentials=/path/key.json or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run on GCE/GKE with a service account")]
    BigQueryCredentials(String),
}

/// An error's message followed by its causes (the driver hides a TLS handshake's reason, such
/// as an unknown certificate issuer, in the cause).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// One stored version, read back from a history table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredVersion {
    /// The id as text.
    pub id: String,
    /// Version start.
    pub start: Millis,
    /// Version end; `None` when it is the profile's open end.
    pub end: Option<Millis>,
    /// The active flag.
    pub active: bool,
    /// The row hash.
    pub row_hash: String,
}

/// The result of checking a history table against the contract, rule by rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryCheck {
    /// Rows in the table.
    pub rows: u64,
    /// Active rows.
    pub active_rows: u64,
    /// Ids with more than one active row (invariant 1).
    pub ids_with_several_active: u64,
    /// Rows whose active flag disagrees with an open end.
    pub active_flag_mismatches: u64,
    /// Rows that end before they start, or overlap the next version (invariant 2).
    pub overlapping_windows: u64,
    /// Consecutive versions with the same hash and no gap between them (invariant 4).
    pub phantom_duplicates: u64,
}

impl HistoryCheck {
    /// True when no rule is broken.
    pub fn is_clean(&self) -> bool {
        self.ids_with_several_active == 0
            && self.active_flag_mismatches == 0
            && self.overlapping_windows == 0
            && self.phantom_duplicates == 0
    }
}

/// A warehouse that holds history tables.
#[async_trait]
pub trait Destination: Send + Sync {
    /// The record columns of a history table (metadata columns excluded), or `None` when the
    /// table does not exist yet.
    async fn table_schema(&self, table: &str, profile: &HistoryProfile) -> Result<Option<TableSchema>, DestinationError>;

    /// Applies one batch in one transaction: creates the table if needed, applies the schema
    /// changes, closes rows and inserts new versions. Rows that already exist are left as they
    /// are, so applying a batch twice changes nothing. A close ends the id's active row if it
    /// starts no later than the close's end, whichever version the close names: after a crash
    /// between a destination commit and the index write, the index can name an older version
    /// than the table's active one, and the replay must still leave one active row (and must
    /// not move the end of a row that is already closed).
    async fn apply(&self, batch: Arc<HistoryBatch>) -> Result<(), DestinationError>;

    /// Every version of a history table, ordered by id and start.
    async fn read_versions(&self, table: &str, primary_key: &str, profile: &HistoryProfile)
        -> Result<Vec<StoredVersion>, DestinationError>;

    /// Checks a history table against the contract with queries run in the warehouse.
    async fn check_history(&self, table: &str, primary_key: &str, profile: &HistoryProfile) -> Result<HistoryCheck, DestinationError>;

    /// Whether the table holds the version of `id` (the primary key as text) that starts at
    /// `start`: `None` when it does not (or the table does not exist), else whether that version
    /// is active. The history writer asks this after a crash, to tell whether a journaled batch
    /// was committed. The default reads the table's versions; it runs only on that recovery.
    async fn version_state(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
        id: &str,
        start: Millis,
    ) -> Result<Option<bool>, DestinationError> {
        if self.table_schema(table, profile).await?.is_none() {
            return Ok(None);
        }
        let versions = self.read_versions(table, primary_key, profile).await?;
        Ok(versions
            .iter()
            .find(|version| version.id == id && version.start == start)
            .map(|version| version.active))
    }

    /// Ends a busy period: a destination that keeps its connection between batches (DuckDB
    /// opened by [`open_destination_held`]) closes it, so other processes can read the file.
    /// The others have nothing to do.
    async fn release(&self) -> Result<(), DestinationError> {
        Ok(())
    }

    /// For `/readyz`: the state of what is already open, without pinning anything. The default
    /// asks the server for a table that does not exist (a connection the destination keeps
    /// anyway); DuckDB never opens its file for it (see [`DuckDbDestination`]).
    async fn readiness(&self) -> Result<(), DestinationError> {
        self.table_schema("_syncline_readiness_probe", &HistoryProfile::default())
            .await
            .map(|_| ())
    }
}

/// Which destination to write to, from configuration or a URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DestinationConfig {
    /// A DuckDB file: `duckdb://warehouse.duckdb`, `duckdb:///abs/path.duckdb`, or a plain path.
    DuckDb {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A PostgreSQL database: `postgres://user[:password]@host:5432/database?schema=name`
    /// (`postgresql://` too).
    Postgres {
        /// The server URL without the `schema` parameter; shown only with its password redacted.
        url: String,
        /// The schema of the history tables (`public` when the URL names none).
        schema: String,
    },
    /// A BigQuery dataset: `bigquery://project/dataset[?location=EU&credentials=/path/key.json]`
    /// (`&endpoint=http://127.0.0.1:9050` for an emulator).
    BigQuery(BigQueryConfig),
}

impl std::fmt::Debug for DestinationConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DestinationConfig::DuckDb { path } => formatter.debug_struct("DuckDb").field("path", path).finish(),
            DestinationConfig::Postgres { url, schema } => formatter
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .field("schema", schema)
                .finish(),
            DestinationConfig::BigQuery(config) => formatter.debug_tuple("BigQuery").field(config).finish(),
        }
    }
}

impl std::str::FromStr for DestinationConfig {
    type Err = DestinationError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if let Some(path) = url.strip_prefix("duckdb://") {
            if path.is_empty() {
                return Err(DestinationError::BadUrl(url.to_string()));
            }
            return Ok(DestinationConfig::DuckDb { path: path.into() });
        }
        if BigQueryConfig::is_bigquery_url(url) {
            return Ok(DestinationConfig::BigQuery(BigQueryConfig::parse(url)?));
        }
        if is_postgres_url(url) {
            let parsed = split_postgres_url(url).ok_or_else(|| DestinationError::BadUrl(redact_url(url)))?;
            return Ok(DestinationConfig::Postgres {
                url: parsed.connection,
                schema: parsed.schema.unwrap_or_else(|| "public".to_string()),
            });
        }
        if url.contains("://") {
            return Err(DestinationError::BadUrl(redact_url(url)));
        }
        Ok(DestinationConfig::DuckDb { path: url.into() })
    }
}

/// Opens the configured destination.
pub async fn open_destination(config: &DestinationConfig) -> Result<Box<dyn Destination>, DestinationError> {
    match config {
        DestinationConfig::DuckDb { path } => Ok(Box::new(DuckDbDestination::new(path))),
        DestinationConfig::Postgres { url, schema } => Ok(Box::new(PostgresDestination::open(url, schema).await?)),
        DestinationConfig::BigQuery(config) => Ok(Box::new(BigQueryDestination::open(config).await?)),
    }
}

/// Opens the configured destination for a long-running writer (`syncline serve`): a DuckDB
/// file stays open from one batch to the next while work keeps coming, and is closed by
/// [`Destination::release`] when the writer goes idle; other destinations open as usual.
pub async fn open_destination_held(config: &DestinationConfig) -> Result<Box<dyn Destination>, DestinationError> {
    match config {
        DestinationConfig::DuckDb { path } => Ok(Box::new(DuckDbDestination::new(path).holding_file_open())),
        other => open_destination(other).await,
    }
}

/// Quotes an SQL identifier (double quotes, inner quotes doubled); NUL is refused.
pub fn quote_identifier(name: &str) -> Result<String, DestinationError> {
    if name.contains('\0') {
        return Err(DestinationError::BadIdentifier(name.replace('\0', "\\0")));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_destination() {
        let parse = |url: &str| url.parse::<DestinationConfig>();
        assert_eq!(
            parse("duckdb://w.duckdb").unwrap(),
            DestinationConfig::DuckDb { path: "w.duckdb".into() }
        );
        assert_eq!(
            parse("duckdb:///tmp/w.duckdb").unwrap(),
            DestinationConfig::DuckDb {
                path: "/tmp/w.duckdb".into()
            }
        );
        assert_eq!(parse("w.duckdb").unwrap(), DestinationConfig::DuckDb { path: "w.duckdb".into() });
        assert!(parse("mysql://x").unwrap_err().to_string().contains("duckdb://"));
        assert_eq!(
            parse("postgres://ann@db:5433/w?schema=history&sslmode=disable").unwrap(),
            DestinationConfig::Postgres {
                url: "postgres://ann@db:5433/w?sslmode=disable".into(),
                schema: "history".into()
            }
        );
        assert_eq!(
            parse("postgresql://ann@db/w").unwrap(),
            DestinationConfig::Postgres {
                url: "postgresql://ann@db/w".into(),
                schema: "public".into()
            }
        );
        let error = parse("postgres://ann:s3cret@db/w?schema=").unwrap_err().to_string();
        assert!(error.contains("postgres://ann:***@") && !error.contains("s3cret"), "{error}");
        let debug = format!("{:?}", parse("postgres://ann:s3cret@db/w").unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
        match parse("bigquery://proj/history?location=EU").unwrap() {
            DestinationConfig::BigQuery(config) => {
                assert_eq!(
                    (config.project.as_str(), config.dataset.as_str(), config.location()),
                    ("proj", "history", "EU")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("bigquery://proj").is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("a").unwrap(), "\"a\"");
        assert_eq!(quote_identifier("a\"; drop table x; --").unwrap(), "\"a\"\"; drop table x; --\"");
        assert!(quote_identifier("a\0b").is_err());
    }
}
