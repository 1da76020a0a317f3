//! The DuckDB destination, the embedded default.
//!
//! The file is opened for each call and closed right after, so the `duckdb` CLI or dbt-duckdb
//! can read it between batches; when another process holds the file's lock, the call retries
//! with backoff and says so in the log. DuckDB work runs on the blocking thread pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use duckdb::arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::{ToSql, ToSqlOutput, ValueRef};
use duckdb::{params, Connection};
use syncline_core::{CellValue, ColumnType, HistoryBatch, HistoryProfile, Millis, TableSchema};

use crate::{quote_identifier as quote, Destination, DestinationError, HistoryCheck, StoredVersion};

/// How long to keep retrying while another process holds the DuckDB file.
#[derive(Debug, Clone, Copy)]
pub struct LockRetry {
    /// Attempts before giving up.
    pub attempts: u32,
    /// Wait after the first failed attempt; doubled each time, capped at 5 s.
    pub first_wait: Duration,
}

impl Default for LockRetry {
    fn default() -> Self {
        Self {
            attempts: 20,
            first_wait: Duration::from_millis(100),
        }
    }
}

/// History tables in one DuckDB file.
#[derive(Clone)]
pub struct DuckDbDestination {
    path: PathBuf,
    lock_retry: LockRetry,
    /// The open connection while the file is held (see [`DuckDbDestination::holding_file_open`]).
    held: Option<Arc<Mutex<Option<Connection>>>>,
}

impl std::fmt::Debug for DuckDbDestination {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DuckDbDestination")
            .field("path", &self.path)
            .field("held", &self.held.is_some())
            .finish()
    }
}

impl DuckDbDestination {
    /// A destination writing to the DuckDB file at `path` (created on first write).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            lock_retry: LockRetry::default(),
            held: None,
        }
    }

    /// Keeps the file open from the first call until [`DuckDbDestination::release`] (or drop),
    /// instead of opening it per call. For short-lived bulk commands such as `syncline load`;
    /// a long-running server keeps the default so other readers get the file between batches.
    pub fn holding_file_open(mut self) -> Self {
        self.held = Some(Arc::new(Mutex::new(None)));
        self
    }

    /// Closes a held file (DuckDB checkpoints it), so other processes can open it.
    pub async fn release(&self) -> Result<(), DestinationError> {
        let Some(held) = self.held.clone() else { return Ok(()) };
        tokio::task::spawn_blocking(move || {
            let connection = held
                .lock()
                .map_err(|_| DestinationError::Task("duckdb connection lock poisoned".into()))?
                .take();
            drop(connection);
            Ok(())
        })
        .await
        .map_err(|error| DestinationError::Task(error.to_string()))?
    }

    /// Changes how lock conflicts are retried.
    pub fn with_lock_retry(mut self, lock_retry: LockRetry) -> Self {
        self.lock_retry = lock_retry;
        self
    }

    /// The file this destination writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How lock conflicts are retried.
    pub(crate) fn lock_retry(&self) -> LockRetry {
        self.lock_retry
    }

    /// Runs blocking work on a fresh connection, retrying while the file is locked.
    async fn with_connection<T, F>(&self, work: F) -> Result<T, DestinationError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DestinationError> + Send + 'static,
    {
        let path = self.path.clone();
        let retry = self.lock_retry;
        let held = self.held.clone();
        tokio::task::spawn_blocking(move || {
            let Some(held) = held else {
                let connection = open_with_retry(&path, retry)?;
                return work(&connection);
            };
            let mut guard = held
                .lock()
                .map_err(|_| DestinationError::Task("duckdb connection lock poisoned".into()))?;
            if guard.is_none() {
                let connection = open_with_retry(&path, retry)?;
                // A held file is written in bulk and checkpointed when released: skip the
                // automatic checkpoints in between (each rewrites what the next one rewrites).
                connection.execute_batch("SET checkpoint_threshold = '1GB'")?;
                *guard = Some(connection);
            }
            work(guard.as_ref().expect("connection opened above"))
        })
        .await
        .map_err(|error| DestinationError::Task(error.to_string()))?
    }
}

/// Creates an empty DuckDB database at `path` that is never readable by others, not even for a
/// moment: DuckDB creates files with the process umask, so the database is made in a folder of
/// mode 0700 beside the target, closed, set to 0600 and renamed into place.
fn create_private_database(path: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use syncline_state::private_files::{create_private_folder, make_private};
    let folder = folder_of(path);
    create_private_folder(folder)?;
    let name = path.file_name().ok_or("the destination path names no file")?;
    let staging = folder.join(format!(".{}.creating-{}", name.to_string_lossy(), std::process::id()));
    create_private_folder(&staging)?;
    let staged = staging.join(name);
    let created = (|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        drop(Connection::open(&staged)?);
        make_private(&staged)?;
        if !path.exists() {
            std::fs::rename(&staged, path)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    created
}

/// DuckDB's write-ahead log beside the file.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

fn is_lock_conflict(error: &duckdb::Error) -> bool {
    let text = error.to_string();
    text.contains("Could not set lock") || text.contains("Conflicting lock")
}

/// The folder a file lives in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Opens the file, retrying with backoff while another process holds its lock. A file syncline
/// creates gets mode 0600 (its folder 0700 when syncline creates that too): the warehouse holds
/// every record.
pub(crate) fn open_with_retry(path: &Path, retry: LockRetry) -> Result<Connection, DestinationError> {
    if !path.exists() {
        create_private_database(path)
            .map_err(|error| DestinationError::Task(format!("cannot create {} with mode 0600: {error}", path.display())))?;
    }
    let mut wait = retry.first_wait;
    for attempt in 1..=retry.attempts.max(1) {
        match Connection::open(path) {
            Ok(connection) => return Ok(connection),
            Err(error) if is_lock_conflict(&error) && attempt < retry.attempts => {
                tracing::warn!(path = %path.display(), attempt, wait_ms = wait.as_millis() as u64, "duckdb file is locked by another process; retrying");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(error) if is_lock_conflict(&error) => {
                return Err(DestinationError::Locked {
                    path: path.display().to_string(),
                    attempts: retry.attempts,
                })
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(DestinationError::Locked {
        path: path.display().to_string(),
        attempts: retry.attempts,
    })
}

fn sql_type(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::BigInt => "BIGINT",
        ColumnType::Double => "DOUBLE",
        ColumnType::Timestamp => "TIMESTAMP",
        ColumnType::Json | ColumnType::Varchar => "VARCHAR",
    }
}

fn column_type_of(sql: &str) -> ColumnType {
    match sql {
        "BOOLEAN" => ColumnType::Boolean,
        "BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" => ColumnType::BigInt,
        "DOUBLE" | "FLOAT" | "REAL" => ColumnType::Double,
        "TIMESTAMP" | "TIMESTAMP WITH TIME ZONE" => ColumnType::Timestamp,
        _ => ColumnType::Varchar,
    }
}

/// The table's columns in physical order, with their SQL types (empty when it does not exist).
fn table_columns(connection: &Connection, table: &str) -> Result<Vec<(String, String)>, DestinationError> {
    let mut statement = connection.prepare(
        "SELECT column_name, data_type FROM information_schema.columns
         WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
    )?;
    let rows = statement.query_map(params![table], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A borrowed cell, appended without copying.
struct Cell<'a>(&'a CellValue);

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            CellValue::Null => ValueRef::Null,
            CellValue::Bool(value) => ValueRef::Boolean(*value),
            CellValue::Int(value) => ValueRef::BigInt(*value),
            CellValue::Float(value) => ValueRef::Double(*value),
            CellValue::Text(text) => ValueRef::Text(text.as_bytes()),
            CellValue::Timestamp(millis) => ValueRef::Timestamp(duckdb::types::TimeUnit::Millisecond, *millis),
        }))
    }
}

/// Where each physical column's value comes from.
enum Slot {
    Record(usize),
    Start,
    End,
    Active,
    Synced,
    Hash,
    Missing,
}

fn create_table(connection: &Connection, batch: &HistoryBatch) -> Result<(), DestinationError> {
    let profile = &batch.profile;
    let mut definitions: Vec<String> = Vec::with_capacity(batch.schema.columns.len() + 6);
    for column in &batch.schema.columns {
        let not_null = if column.name == batch.primary_key { " NOT NULL" } else { "" };
        definitions.push(format!("{} {}{not_null}", quote(&column.name)?, sql_type(column.column_type)));
    }
    definitions.push(format!("{} TIMESTAMP NOT NULL", quote(&profile.start_column)?));
    definitions.push(format!("{} TIMESTAMP", quote(&profile.end_column)?));
    definitions.push(format!("{} BOOLEAN NOT NULL", quote(&profile.active_column)?));
    definitions.push(format!("{} TIMESTAMP NOT NULL", quote(&profile.synced_column)?));
    definitions.push(format!("{} VARCHAR NOT NULL", quote(&profile.hash_column)?));
    definitions.push(format!(
        "PRIMARY KEY ({}, {})",
        quote(&batch.primary_key)?,
        quote(&profile.start_column)?
    ));
    connection.execute_batch(&format!("CREATE TABLE {} ({})", quote(&batch.table)?, definitions.join(", ")))?;
    Ok(())
}

/// Brings the table's columns up to the batch schema: adds what is missing and widens what
/// is narrower. Idempotent, so a replayed batch finds nothing to do.
fn evolve_table(connection: &Connection, batch: &HistoryBatch, existing: &[(String, String)]) -> Result<(), DestinationError> {
    let table = quote(&batch.table)?;
    for column in &batch.schema.columns {
        match existing.iter().find(|(name, _)| *name == column.name) {
            None => {
                tracing::info!(table = %batch.table, column = %column.name, column_type = column.column_type.name(), "adding column");
                connection.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {} {}",
                    quote(&column.name)?,
                    sql_type(column.column_type)
                ))?;
            }
            Some((_, sql)) => {
                let current = column_type_of(sql);
                let wanted = current.widen(column.column_type);
                if sql_type(wanted) != sql.as_str() && wanted != current {
                    tracing::info!(table = %batch.table, column = %column.name, from = current.name(), to = wanted.name(), "widening column");
                    connection.execute_batch(&format!(
                        "ALTER TABLE {table} ALTER COLUMN {} SET DATA TYPE {}",
                        quote(&column.name)?,
                        sql_type(wanted)
                    ))?;
                }
            }
        }
    }
    Ok(())
}

/// How new rows go in: straight into the table (fast; fails on a row that already exists), or
/// through a staging table that skips existing rows (for replays after a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InsertMode {
    Append,
    SkipExisting,
}

fn is_duplicate_key(error: &DestinationError) -> bool {
    matches!(error, DestinationError::DuckDb(inner) if inner.to_string().contains("Duplicate key"))
}

/// Applies a batch in one transaction; a batch that meets rows it already wrote (a replay) is
/// rolled back and applied again through the staging table.
fn apply_batch(connection: &Connection, batch: &HistoryBatch) -> Result<(), DestinationError> {
    let mut mode = InsertMode::Append;
    loop {
        connection.execute_batch("BEGIN TRANSACTION")?;
        let result = apply_in_transaction(connection, batch, mode).and_then(|()| Ok(connection.execute_batch("COMMIT")?));
        match result {
            Ok(()) => return Ok(()),
            Err(error) => {
                let _ = connection.execute_batch("ROLLBACK");
                if mode == InsertMode::Append && is_duplicate_key(&error) {
                    tracing::info!(table = %batch.table, "batch holds rows that already exist (a replay); skipping them");
                    mode = InsertMode::SkipExisting;
                    continue;
                }
                return Err(error);
            }
        }
    }
}

fn apply_in_transaction(connection: &Connection, batch: &HistoryBatch, mode: InsertMode) -> Result<(), DestinationError> {
    let table = quote(&batch.table)?;
    let profile = &batch.profile;
    let existing = table_columns(connection, &batch.table)?;
    if existing.is_empty() {
        create_table(connection, batch)?;
    } else {
        evolve_table(connection, batch, &existing)?;
    }
    let id_column = quote(&batch.primary_key)?;
    let start_column = quote(&profile.start_column)?;
    let end_column = quote(&profile.end_column)?;
    let active_column = quote(&profile.active_column)?;
    let synced_column = quote(&profile.synced_column)?;
    if !batch.closes.is_empty() {
        let id_type = sql_type(batch.schema.column_type(&batch.primary_key).unwrap_or(ColumnType::Varchar));
        connection.execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE syncline_closes (id {id_type}, version_start TIMESTAMP, version_end TIMESTAMP, version_synced TIMESTAMP)"
        ))?;
        {
            let mut appender = connection.appender_to_catalog_and_db("syncline_closes", "temp", "main")?;
            let synced = CellValue::Timestamp(batch.synced_at);
            for close in &batch.closes {
                let (start, end) = (CellValue::Timestamp(close.start), CellValue::Timestamp(close.end));
                appender.append_row(duckdb::appender_params_from_iter([
                    Cell(&close.id),
                    Cell(&start),
                    Cell(&end),
                    Cell(&synced),
                ]))?;
            }
            appender.flush()?;
        }
        connection.execute_batch(&format!(
            "UPDATE {table} SET {end_column} = c.version_end, {active_column} = false, {synced_column} = c.version_synced
             FROM temp.main.syncline_closes AS c
             WHERE {table}.{id_column} = c.id AND {table}.{active_column} AND {table}.{start_column} <= c.version_end;
             DROP TABLE temp.main.syncline_closes;"
        ))?;
    }
    if !batch.rows.is_empty() {
        let columns = table_columns(connection, &batch.table)?;
        let slots: Vec<Slot> = columns
            .iter()
            .map(|(name, _)| match name.as_str() {
                name if name == profile.start_column => Slot::Start,
                name if name == profile.end_column => Slot::End,
                name if name == profile.active_column => Slot::Active,
                name if name == profile.synced_column => Slot::Synced,
                name if name == profile.hash_column => Slot::Hash,
                name => batch.schema.position(name).map_or(Slot::Missing, Slot::Record),
            })
            .collect();
        let record_batch = rows_to_arrow(batch, &columns, &slots)?;
        match mode {
            InsertMode::Append => {
                let mut appender = connection.appender(&batch.table)?;
                appender.append_record_batch(record_batch)?;
                appender.flush()?;
            }
            InsertMode::SkipExisting => {
                connection.execute_batch(&format!(
                    "CREATE OR REPLACE TEMP TABLE syncline_rows AS SELECT * FROM {table} LIMIT 0"
                ))?;
                let mut appender = connection.appender_to_catalog_and_db("syncline_rows", "temp", "main")?;
                appender.append_record_batch(record_batch)?;
                appender.flush()?;
                drop(appender);
                connection.execute_batch(&format!(
                    "INSERT INTO {table} SELECT * FROM temp.main.syncline_rows ON CONFLICT DO NOTHING; DROP TABLE temp.main.syncline_rows;"
                ))?;
            }
        }
    }
    Ok(())
}

/// A column builder for one physical column type.
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    BigInt(Int64Builder),
    Double(Float64Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Text(StringBuilder),
}

impl ColumnBuilder {
    fn for_type(column_type: ColumnType, capacity: usize) -> Self {
        match column_type {
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(capacity)),
            ColumnType::BigInt => ColumnBuilder::BigInt(Int64Builder::with_capacity(capacity)),
            ColumnType::Double => ColumnBuilder::Double(Float64Builder::with_capacity(capacity)),
            ColumnType::Timestamp => ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity)),
            ColumnType::Json | ColumnType::Varchar => ColumnBuilder::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
        }
    }

    /// Appends a cell, converting it to the column's type the way the column was widened.
    fn push(&mut self, cell: &CellValue) {
        match (self, cell) {
            (ColumnBuilder::Boolean(builder), CellValue::Bool(value)) => builder.append_value(*value),
            (ColumnBuilder::BigInt(builder), CellValue::Int(value)) => builder.append_value(*value),
            (ColumnBuilder::Double(builder), CellValue::Float(value)) => builder.append_value(*value),
            (ColumnBuilder::Double(builder), CellValue::Int(value)) => builder.append_value(*value as f64),
            (ColumnBuilder::Timestamp(builder), CellValue::Timestamp(millis)) => builder.append_value(millis * 1000),
            (ColumnBuilder::Text(builder), CellValue::Text(text)) => builder.append_value(text),
            (ColumnBuilder::Text(builder), CellValue::Null) => builder.append_null(),
            (ColumnBuilder::Text(builder), other) => builder.append_value(cell_text(other)),
            (ColumnBuilder::Boolean(builder), _) => builder.append_null(),
            (ColumnBuilder::BigInt(builder), _) => builder.append_null(),
            (ColumnBuilder::Double(builder), _) => builder.append_null(),
            (ColumnBuilder::Timestamp(builder), _) => builder.append_null(),
        }
    }

    fn finish(self) -> (DataType, ArrayRef) {
        match self {
            ColumnBuilder::Boolean(mut builder) => (DataType::Boolean, Arc::new(builder.finish())),
            ColumnBuilder::BigInt(mut builder) => (DataType::Int64, Arc::new(builder.finish())),
            ColumnBuilder::Double(mut builder) => (DataType::Float64, Arc::new(builder.finish())),
            ColumnBuilder::Timestamp(mut builder) => (DataType::Timestamp(TimeUnit::Microsecond, None), Arc::new(builder.finish())),
            ColumnBuilder::Text(mut builder) => (DataType::Utf8, Arc::new(builder.finish())),
        }
    }
}

/// A non-text cell as text, for a column widened to VARCHAR after the batch was planned.
fn cell_text(cell: &CellValue) -> String {
    match cell {
        CellValue::Null => String::new(),
        CellValue::Bool(value) => value.to_string(),
        CellValue::Int(value) => value.to_string(),
        CellValue::Float(value) => value.to_string(),
        CellValue::Text(text) => text.clone(),
        CellValue::Timestamp(millis) => syncline_core::format_timestamp(*millis),
    }
}

/// The new rows of a batch as one Arrow record batch in the table's physical column order.
fn rows_to_arrow(batch: &HistoryBatch, columns: &[(String, String)], slots: &[Slot]) -> Result<RecordBatch, DestinationError> {
    let count = batch.rows.len();
    let mut builders: Vec<ColumnBuilder> = columns
        .iter()
        .zip(slots)
        .map(|((_, sql), slot)| {
            let column_type = match slot {
                Slot::Start | Slot::End | Slot::Synced => ColumnType::Timestamp,
                Slot::Active => ColumnType::Boolean,
                Slot::Hash => ColumnType::Varchar,
                Slot::Record(_) | Slot::Missing => column_type_of(sql),
            };
            ColumnBuilder::for_type(column_type, count)
        })
        .collect();
    let profile = &batch.profile;
    let null = CellValue::Null;
    for row in &batch.rows {
        for (builder, slot) in builders.iter_mut().zip(slots) {
            match slot {
                Slot::Record(position) => builder.push(&row.values[*position]),
                Slot::Missing => builder.push(&null),
                Slot::Start => builder.push(&CellValue::Timestamp(row.start)),
                Slot::End => builder.push(&profile.stored_end(row.end).map_or(CellValue::Null, CellValue::Timestamp)),
                Slot::Active => builder.push(&CellValue::Bool(row.end.is_none())),
                Slot::Synced => builder.push(&CellValue::Timestamp(batch.synced_at)),
                Slot::Hash => match builder {
                    ColumnBuilder::Text(text) => text.append_value(&row.row_hash),
                    _ => unreachable!("the hash column is built as text"),
                },
            }
        }
    }
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for ((name, _), builder) in columns.iter().zip(builders) {
        let (data_type, array) = builder.finish();
        fields.push(Field::new(name, data_type, true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|error| DestinationError::Task(format!("arrow batch: {error}")))
}

/// Converts a stored timestamp column to milliseconds in SQL.
fn millis(column: &str) -> String {
    format!("epoch_ms({column})")
}

#[async_trait]
impl Destination for DuckDbDestination {
    async fn release(&self) -> Result<(), DestinationError> {
        DuckDbDestination::release(self).await
    }

    /// Never opens or pins the file (an unauthenticated `/readyz` must not lock readers out):
    /// a held connection answers `SELECT 1` unless a batch is using it; without one, the folder
    /// the file lives in must exist.
    async fn readiness(&self) -> Result<(), DestinationError> {
        let held = self.held.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(held) = held {
                match held.try_lock() {
                    Ok(guard) => {
                        if let Some(connection) = guard.as_ref() {
                            connection.execute_batch("SELECT 1")?;
                            return Ok(());
                        }
                    }
                    // A batch is writing through the open connection: it works.
                    Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
                    Err(std::sync::TryLockError::Poisoned(_)) => {
                        return Err(DestinationError::Task("duckdb connection lock poisoned".into()))
                    }
                }
            }
            let folder = folder_of(&path);
            if folder.is_dir() {
                Ok(())
            } else {
                Err(DestinationError::Task(format!(
                    "the folder {} of the duckdb file does not exist; create it or fix destination.url",
                    folder.display()
                )))
            }
        })
        .await
        .map_err(|error| DestinationError::Task(error.to_string()))?
    }

    async fn table_schema(&self, table: &str, profile: &HistoryProfile) -> Result<Option<TableSchema>, DestinationError> {
        let table = table.to_string();
        let metadata: Vec<String> = profile.metadata_columns().iter().map(|name| name.to_string()).collect();
        self.with_connection(move |connection| {
            let columns = table_columns(connection, &table)?;
            if columns.is_empty() {
                return Ok(None);
            }
            let columns = columns
                .into_iter()
                .filter(|(name, _)| !metadata.contains(name))
                .map(|(name, sql)| syncline_core::Column {
                    name,
                    column_type: column_type_of(&sql),
                })
                .collect();
            Ok(Some(TableSchema { columns }))
        })
        .await
    }

    async fn apply(&self, batch: Arc<HistoryBatch>) -> Result<(), DestinationError> {
        if batch.is_empty() {
            return Ok(());
        }
        let wal = wal_path(&self.path);
        self.with_connection(move |connection| {
            apply_batch(connection, &batch)?;
            // DuckDB creates its write-ahead log with the process umask; it holds records too.
            if wal.exists() {
                syncline_state::private_files::make_private(&wal)
                    .map_err(|error| DestinationError::Task(format!("cannot make {} private: {error}", wal.display())))?;
            }
            Ok(())
        })
        .await
    }

    async fn read_versions(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
    ) -> Result<Vec<StoredVersion>, DestinationError> {
        let sql = format!(
            "SELECT CAST({id} AS VARCHAR), {start}, {end}, {active}, {hash} FROM {table} ORDER BY 1, 2",
            id = quote(primary_key)?,
            start = millis(&quote(&profile.start_column)?),
            end = millis(&quote(&profile.end_column)?),
            active = quote(&profile.active_column)?,
            hash = quote(&profile.hash_column)?,
            table = quote(table)?,
        );
        let open_end = profile.open_end;
        self.with_connection(move |connection| {
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map([], |row| {
                let end: Option<Millis> = row.get(2)?;
                Ok(StoredVersion {
                    id: row.get(0)?,
                    start: row.get(1)?,
                    end: end.filter(|end| Some(*end) != open_end),
                    active: row.get(3)?,
                    row_hash: row.get(4)?,
                })
            })?;
            let mut versions: Vec<StoredVersion> = rows.collect::<Result<_, _>>()?;
            versions.sort();
            Ok(versions)
        })
        .await
    }

    async fn check_history(&self, table: &str, primary_key: &str, profile: &HistoryProfile) -> Result<HistoryCheck, DestinationError> {
        let id = quote(primary_key)?;
        let start = quote(&profile.start_column)?;
        let end = quote(&profile.end_column)?;
        let active = quote(&profile.active_column)?;
        let hash = quote(&profile.hash_column)?;
        let table = quote(table)?;
        let open = match profile.open_end {
            Some(open_end) => format!("{end} = make_timestamp({})", open_end * 1000),
            None => format!("{end} IS NULL"),
        };
        let sql = format!(
            "WITH versions AS (
                SELECT {id} AS id, {start} AS s, {end} AS e, {active} AS a, {hash} AS h,
                       LEAD({start}) OVER (PARTITION BY {id} ORDER BY {start}) AS next_start,
                       LEAD({hash}) OVER (PARTITION BY {id} ORDER BY {start}) AS next_hash,
                       ({open}) AS is_open
                FROM {table})
             SELECT
                count(*),
                count(*) FILTER (WHERE a),
                (SELECT count(*) FROM (SELECT id FROM versions WHERE a GROUP BY id HAVING count(*) > 1)),
                count(*) FILTER (WHERE a IS DISTINCT FROM is_open),
                count(*) FILTER (WHERE (NOT is_open AND e < s) OR (next_start IS NOT NULL AND (is_open OR e >= next_start))),
                count(*) FILTER (WHERE next_hash = h AND e = next_start - INTERVAL 1 MILLISECOND)
             FROM versions"
        );
        self.with_connection(move |connection| {
            Ok(connection.query_row(&sql, [], |row| {
                Ok(HistoryCheck {
                    rows: row.get(0)?,
                    active_rows: row.get(1)?,
                    ids_with_several_active: row.get(2)?,
                    active_flag_mismatches: row.get(3)?,
                    overlapping_windows: row.get(4)?,
                    phantom_duplicates: row.get(5)?,
                })
            })?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duckdb_passes_the_conformance_suite() {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("warehouse.duckdb"));
        crate::conformance::run(&destination).await;
    }

    #[tokio::test]
    async fn duckdb_holding_the_file_passes_the_conformance_suite() {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("warehouse.duckdb")).holding_file_open();
        crate::conformance::run(&destination).await;
        destination.release().await.unwrap();
        // released: another connection can open the file
        Connection::open(directory.path().join("warehouse.duckdb")).unwrap();
    }

    #[tokio::test]
    async fn a_replayed_batch_falls_back_to_skipping_existing_rows() {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("warehouse.duckdb"));
        let batch = Arc::new(crate::conformance::sample_batch("replay_history"));
        destination.apply(Arc::clone(&batch)).await.unwrap();
        let profile = &batch.profile;
        let before = destination.read_versions("replay_history", "id", profile).await.unwrap();
        // the same rows again, as after a crash before the state-store update
        destination.apply(Arc::clone(&batch)).await.unwrap();
        let after = destination.read_versions("replay_history", "id", profile).await.unwrap();
        assert_eq!(before, after);
        assert_eq!(after.len(), batch.rows.len());
    }

    #[tokio::test]
    async fn the_file_is_not_held_open_between_batches() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("warehouse.duckdb");
        let destination = DuckDbDestination::new(&path);
        crate::conformance::write_sample(&destination, "deal_history").await;
        // Another process (here: another connection in this process) can open the file now.
        let reader = Connection::open(&path).unwrap();
        let count: i64 = reader.query_row("SELECT count(*) FROM deal_history", [], |row| row.get(0)).unwrap();
        assert!(count > 0);
    }
}
