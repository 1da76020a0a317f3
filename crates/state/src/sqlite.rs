//! The SQLite state store (WAL mode), the embedded default.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use syncline_core::{CurrentVersion, Millis};

use crate::{join_hashes, split_hashes, IndexWrite, StateError, StateStore, StoredRecord};

/// Schema migrations, applied in order; the store's version is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: current-record index and cursors.
    "CREATE TABLE current_records (
        source TEXT NOT NULL,
        entity TEXT NOT NULL,
        id TEXT NOT NULL,
        version_start INTEGER NOT NULL,
        deleted_at INTEGER,
        row_hash TEXT NOT NULL,
        modified INTEGER NOT NULL,
        hashes_at_modified TEXT NOT NULL,
        terminal INTEGER NOT NULL DEFAULT 0,
        record TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, entity, id)
    ) WITHOUT ROWID;
    CREATE TABLE cursors (
        source TEXT NOT NULL,
        entity TEXT NOT NULL,
        cursor TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, entity)
    ) WITHOUT ROWID;",
    // 2: durable secrets (rotated refresh tokens) and markers.
    "CREATE TABLE tokens (
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, name)
    ) WITHOUT ROWID;
    CREATE TABLE markers (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, key)
    ) WITHOUT ROWID;",
];

/// Ids per lookup statement (`id IN (...)`), below SQLite's parameter limit.
const LOOKUP_CHUNK: usize = 500;

/// State in one SQLite file.
#[derive(Clone)]
pub struct SqliteStateStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStateStore {
    /// Opens (creating if needed) the state file and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "cache_size", -16_000)?;
        Self::from_connection(connection)
    }

    /// An in-memory store (for tests and dry runs).
    pub fn in_memory() -> Result<Self, StateError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut connection: Connection) -> Result<Self, StateError> {
        migrate(&mut connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    async fn with<T, F>(&self, work: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StateError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| StateError::Task("state store lock poisoned".into()))?;
            work(&mut guard)
        })
        .await
        .map_err(|error| StateError::Task(error.to_string()))?
    }
}

impl SqliteStateStore {
    /// Reads a `(source, key) -> value` row of the tokens or markers table.
    async fn get_pair(&self, table: &'static str, key_column: &'static str, source: &str, key: &str) -> Result<Option<String>, StateError> {
        let (source, key) = (source.to_string(), key.to_string());
        self.with(move |connection| {
            let sql = format!("SELECT value FROM {table} WHERE source = ?1 AND {key_column} = ?2");
            Ok(connection.query_row(&sql, params![source, key], |row| row.get(0)).optional()?)
        })
        .await
    }

    /// Upserts a `(source, key) -> value` row of the tokens or markers table.
    async fn set_pair(
        &self,
        table: &'static str,
        key_column: &'static str,
        source: &str,
        key: &str,
        value: &str,
        written_at: Millis,
    ) -> Result<(), StateError> {
        let (source, key, value) = (source.to_string(), key.to_string(), value.to_string());
        self.with(move |connection| {
            let sql = format!(
                "INSERT INTO {table} (source, {key_column}, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, {key_column}) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
            );
            connection.execute(&sql, params![source, key, value, written_at])?;
            Ok(())
        })
        .await
    }
}

fn migrate(connection: &mut Connection) -> Result<(), StateError> {
    connection.execute_batch("CREATE TABLE IF NOT EXISTS syncline_schema_version (version INTEGER NOT NULL)")?;
    let version: i64 = connection
        .query_row("SELECT version FROM syncline_schema_version", [], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StateError::TooNew { found: version, supported });
    }
    let transaction = connection.transaction()?;
    for migration in &MIGRATIONS[version as usize..] {
        transaction.execute_batch(migration)?;
    }
    transaction.execute("DELETE FROM syncline_schema_version", [])?;
    transaction.execute("INSERT INTO syncline_schema_version (version) VALUES (?1)", [supported])?;
    transaction.commit()?;
    Ok(())
}

fn version_from_row(row: &rusqlite::Row<'_>, offset: usize) -> rusqlite::Result<CurrentVersion> {
    let hashes: String = row.get(offset + 4)?;
    Ok(CurrentVersion {
        start: row.get(offset)?,
        end: row.get(offset + 1)?,
        row_hash: row.get(offset + 2)?,
        modified: row.get(offset + 3)?,
        hashes_at_modified: split_hashes(&hashes),
    })
}

const VERSION_COLUMNS: &str = "version_start, deleted_at, row_hash, modified, hashes_at_modified";

fn scan(connection: &Connection, source: &str, entity: &str) -> Result<HashMap<String, CurrentVersion>, StateError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT id, {VERSION_COLUMNS} FROM current_records WHERE source = ?1 AND entity = ?2"
    ))?;
    let rows = statement.query_map(params![source, entity], |row| {
        Ok((row.get::<_, String>(0)?, version_from_row(row, 1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn current_versions(&self, source: &str, entity: &str, ids: &[String]) -> Result<HashMap<String, CurrentVersion>, StateError> {
        let (source, entity, ids) = (source.to_string(), entity.to_string(), ids.to_vec());
        self.with(move |connection| {
            let mut found = HashMap::with_capacity(ids.len());
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let placeholders = vec!["?"; chunk.len()].join(", ");
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT id, {VERSION_COLUMNS} FROM current_records WHERE source = ? AND entity = ? AND id IN ({placeholders})"
                ))?;
                let parameters = [&source as &dyn rusqlite::ToSql, &entity]
                    .into_iter()
                    .chain(chunk.iter().map(|id| id as &dyn rusqlite::ToSql));
                let rows = statement.query_map(rusqlite::params_from_iter(parameters), |row| {
                    Ok((row.get::<_, String>(0)?, version_from_row(row, 1)?))
                })?;
                for row in rows {
                    let (id, version) = row?;
                    found.insert(id, version);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn all_current_versions(&self, source: &str, entity: &str) -> Result<HashMap<String, CurrentVersion>, StateError> {
        let (source, entity) = (source.to_string(), entity.to_string());
        self.with(move |connection| scan(connection, &source, &entity)).await
    }

    async fn write_index(&self, source: &str, entity: &str, entries: Vec<IndexWrite>, written_at: Millis) -> Result<(), StateError> {
        let (source, entity) = (source.to_string(), entity.to_string());
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            {
                let mut statement = transaction.prepare_cached(
                    "INSERT INTO current_records (source, entity, id, version_start, deleted_at, row_hash, modified,
                         hashes_at_modified, terminal, record, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (source, entity, id) DO UPDATE SET
                         version_start = excluded.version_start, deleted_at = excluded.deleted_at,
                         row_hash = excluded.row_hash, modified = excluded.modified,
                         hashes_at_modified = excluded.hashes_at_modified, terminal = excluded.terminal,
                         record = COALESCE(excluded.record, current_records.record), updated_at = excluded.updated_at",
                )?;
                for entry in &entries {
                    statement.execute(params![
                        source,
                        entity,
                        entry.id,
                        entry.version.start,
                        entry.version.end,
                        entry.version.row_hash,
                        entry.version.modified,
                        join_hashes(&entry.version.hashes_at_modified),
                        entry.terminal,
                        entry.record,
                        written_at
                    ])?;
                }
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn record(&self, source: &str, entity: &str, id: &str) -> Result<Option<StoredRecord>, StateError> {
        let (source, entity, id) = (source.to_string(), entity.to_string(), id.to_string());
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS}, terminal, record, updated_at FROM current_records WHERE source = ?1 AND entity = ?2 AND id = ?3"
            ))?;
            Ok(statement
                .query_row(params![source, entity, id], |row| {
                    Ok(StoredRecord {
                        id: id.clone(),
                        version: version_from_row(row, 0)?,
                        terminal: row.get(5)?,
                        record: row.get(6)?,
                        updated_at: row.get(7)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn cursor(&self, source: &str, entity: &str) -> Result<Option<String>, StateError> {
        let (source, entity) = (source.to_string(), entity.to_string());
        self.with(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT cursor FROM cursors WHERE source = ?1 AND entity = ?2",
                    params![source, entity],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn set_cursor(&self, source: &str, entity: &str, cursor: &str, written_at: Millis) -> Result<(), StateError> {
        let (source, entity, cursor) = (source.to_string(), entity.to_string(), cursor.to_string());
        self.with(move |connection| {
            connection.execute(
                "INSERT INTO cursors (source, entity, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, entity) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                params![source, entity, cursor, written_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn token(&self, source: &str, name: &str) -> Result<Option<String>, StateError> {
        self.get_pair("tokens", "name", source, name).await
    }

    async fn set_token(&self, source: &str, name: &str, value: &str, written_at: Millis) -> Result<(), StateError> {
        self.set_pair("tokens", "name", source, name, value, written_at).await
    }

    async fn marker(&self, source: &str, key: &str) -> Result<Option<String>, StateError> {
        self.get_pair("markers", "key", source, key).await
    }

    async fn set_marker(&self, source: &str, key: &str, value: &str, written_at: Millis) -> Result<(), StateError> {
        self.set_pair("markers", "key", source, key, value, written_at).await
    }

    async fn schema_version(&self) -> Result<i64, StateError> {
        self.with(|connection| Ok(connection.query_row("SELECT version FROM syncline_schema_version", [], |row| row.get(0))?))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_passes_the_conformance_suite() {
        let store = SqliteStateStore::in_memory().unwrap();
        crate::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn state_survives_reopening_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        {
            let store = SqliteStateStore::open(&path).unwrap();
            store.set_cursor("s", "deal", "2024-01-01", 1).await.unwrap();
        }
        let store = SqliteStateStore::open(&path).unwrap();
        assert_eq!(store.cursor("s", "deal").await.unwrap().as_deref(), Some("2024-01-01"));
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        drop(SqliteStateStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE syncline_schema_version SET version = 99", [])
            .unwrap();
        let error = SqliteStateStore::open(&path).err().expect("newer schema must be refused");
        assert!(error.to_string().contains("upgrade syncline"), "{error}");
    }
}
