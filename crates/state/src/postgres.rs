//! The PostgreSQL state store, for several `syncline serve` replicas sharing one state.
//!
//! Same tables and semantics as the SQLite store (times are epoch milliseconds in BIGINT
//! columns). Migrations run in one transaction under an advisory lock, so replicas starting
//! together apply each migration once. One connection is kept and re-opened when it drops.

use std::collections::HashMap;

use async_trait::async_trait;
use syncline_core::{CurrentVersion, Millis};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use crate::postgres_url::{redact_url, split_postgres_url, PostgresUrl};
use crate::{join_hashes, split_hashes, IndexWrite, StateError, StateStore, StoredRecord};

/// Schema migrations, applied in order; the store's version is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: current-record index and cursors.
    "CREATE TABLE current_records (
        source TEXT NOT NULL,
        entity TEXT NOT NULL,
        id TEXT NOT NULL,
        version_start BIGINT NOT NULL,
        deleted_at BIGINT,
        row_hash TEXT NOT NULL,
        modified BIGINT NOT NULL,
        hashes_at_modified TEXT NOT NULL,
        terminal BOOLEAN NOT NULL DEFAULT FALSE,
        record TEXT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (source, entity, id)
    );
    CREATE TABLE cursors (
        source TEXT NOT NULL,
        entity TEXT NOT NULL,
        cursor TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (source, entity)
    );",
    // 2: durable secrets (rotated refresh tokens) and markers.
    "CREATE TABLE tokens (
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (source, name)
    );
    CREATE TABLE markers (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (source, key)
    );",
];

/// The advisory-lock key that serialises migrations ("syncline" in ASCII).
const MIGRATION_LOCK: i64 = 0x7379_6e63_6c69_6e65;

const VERSION_COLUMNS: &str = "version_start, deleted_at, row_hash, modified, hashes_at_modified";

/// State in a PostgreSQL database (optionally in one schema: `?schema=name`).
pub struct PostgresStateStore {
    url: PostgresUrl,
    client: Mutex<Client>,
}

impl std::fmt::Debug for PostgresStateStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("PostgresStateStore").field("url", &self.url).finish()
    }
}

/// Connects and points the session at the schema (created if missing).
async fn connect(url: &PostgresUrl) -> Result<Client, StateError> {
    let config: tokio_postgres::Config = url
        .connection
        .parse()
        .map_err(|_| StateError::BadUrl(redact_url(&url.connection)))?;
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "postgres state store connection closed");
        }
    });
    if let Some(schema) = &url.schema {
        let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
        // Create the schema only when it is missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on
        // the database even when the schema exists.
        if client
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[schema])
            .await?
            .is_none()
        {
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}")).await?;
        }
        client.batch_execute(&format!("SET search_path TO {quoted}")).await?;
    }
    Ok(client)
}

async fn migrate(client: &mut Client) -> Result<(), StateError> {
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS syncline_schema_version (version BIGINT NOT NULL)")
        .await?;
    let version: i64 = transaction
        .query_opt("SELECT version FROM syncline_schema_version", &[])
        .await?
        .map_or(0, |row| row.get(0));
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StateError::TooNew { found: version, supported });
    }
    for migration in &MIGRATIONS[version as usize..] {
        transaction.batch_execute(migration).await?;
    }
    transaction.execute("DELETE FROM syncline_schema_version", &[]).await?;
    transaction
        .execute("INSERT INTO syncline_schema_version (version) VALUES ($1)", &[&supported])
        .await?;
    transaction.commit().await?;
    Ok(())
}

fn version_from_row(row: &Row, offset: usize) -> CurrentVersion {
    let hashes: String = row.get(offset + 4);
    CurrentVersion {
        start: row.get(offset),
        end: row.get(offset + 1),
        row_hash: row.get(offset + 2),
        modified: row.get(offset + 3),
        hashes_at_modified: split_hashes(&hashes),
    }
}

impl PostgresStateStore {
    /// Connects to `postgres://user[:password]@host[:port]/database[?schema=name]` and applies
    /// pending migrations.
    pub async fn open(url: &str) -> Result<Self, StateError> {
        let url = split_postgres_url(url).ok_or_else(|| StateError::BadUrl(redact_url(url)))?;
        let mut client = connect(&url).await?;
        migrate(&mut client).await?;
        Ok(Self {
            url,
            client: Mutex::new(client),
        })
    }

    /// The connection, re-opened first when the previous one dropped.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, StateError> {
        let mut guard = self.client.lock().await;
        if guard.is_closed() {
            tracing::warn!("postgres state store connection lost; reconnecting");
            *guard = connect(&self.url).await?;
        }
        Ok(guard)
    }

    async fn get_pair(&self, table: &'static str, key_column: &'static str, source: &str, key: &str) -> Result<Option<String>, StateError> {
        let sql = format!("SELECT value FROM {table} WHERE source = $1 AND {key_column} = $2");
        let client = self.client().await?;
        Ok(client.query_opt(&sql, &[&source, &key]).await?.map(|row| row.get(0)))
    }

    async fn set_pair(
        &self,
        table: &'static str,
        key_column: &'static str,
        source: &str,
        key: &str,
        value: &str,
        written_at: Millis,
    ) -> Result<(), StateError> {
        let sql = format!(
            "INSERT INTO {table} (source, {key_column}, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source, {key_column}) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        );
        let client = self.client().await?;
        client.execute(&sql, &[&source, &key, &value, &written_at]).await?;
        Ok(())
    }
}

#[async_trait]
impl StateStore for PostgresStateStore {
    async fn current_versions(&self, source: &str, entity: &str, ids: &[String]) -> Result<HashMap<String, CurrentVersion>, StateError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!("SELECT id, {VERSION_COLUMNS} FROM current_records WHERE source = $1 AND entity = $2 AND id = ANY($3)");
        let client = self.client().await?;
        let rows = client.query(&sql, &[&source, &entity, &ids]).await?;
        Ok(rows.iter().map(|row| (row.get(0), version_from_row(row, 1))).collect())
    }

    async fn all_current_versions(&self, source: &str, entity: &str) -> Result<HashMap<String, CurrentVersion>, StateError> {
        let sql = format!("SELECT id, {VERSION_COLUMNS} FROM current_records WHERE source = $1 AND entity = $2");
        let client = self.client().await?;
        let rows = client.query(&sql, &[&source, &entity]).await?;
        Ok(rows.iter().map(|row| (row.get(0), version_from_row(row, 1))).collect())
    }

    async fn write_index(&self, source: &str, entity: &str, entries: Vec<IndexWrite>, written_at: Millis) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement over arrays. A later entry of the same id wins, as with one upsert per
        // entry; ON CONFLICT cannot touch a row twice, so earlier duplicates are dropped here.
        let mut last_of_id: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            last_of_id.insert(entry.id.as_str(), index);
        }
        let kept: Vec<&IndexWrite> = entries
            .iter()
            .enumerate()
            .filter(|(index, entry)| last_of_id[entry.id.as_str()] == *index)
            .map(|(_, entry)| entry)
            .collect();
        let ids: Vec<&str> = kept.iter().map(|entry| entry.id.as_str()).collect();
        let starts: Vec<i64> = kept.iter().map(|entry| entry.version.start).collect();
        let ends: Vec<Option<i64>> = kept.iter().map(|entry| entry.version.end).collect();
        let hashes: Vec<&str> = kept.iter().map(|entry| entry.version.row_hash.as_str()).collect();
        let modified: Vec<i64> = kept.iter().map(|entry| entry.version.modified).collect();
        let at_modified: Vec<String> = kept.iter().map(|entry| join_hashes(&entry.version.hashes_at_modified)).collect();
        let terminal: Vec<bool> = kept.iter().map(|entry| entry.terminal).collect();
        let records: Vec<Option<&str>> = kept.iter().map(|entry| entry.record.as_deref()).collect();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO current_records (source, entity, id, version_start, deleted_at, row_hash, modified,
                     hashes_at_modified, terminal, record, updated_at)
                 SELECT $1, $2, e.id, e.version_start, e.deleted_at, e.row_hash, e.modified, e.hashes_at_modified,
                        e.terminal, e.record, $11
                 FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::boolean[], $10::text[])
                      AS e(id, version_start, deleted_at, row_hash, modified, hashes_at_modified, terminal, record)
                 ON CONFLICT (source, entity, id) DO UPDATE SET
                     version_start = excluded.version_start, deleted_at = excluded.deleted_at,
                     row_hash = excluded.row_hash, modified = excluded.modified,
                     hashes_at_modified = excluded.hashes_at_modified, terminal = excluded.terminal,
                     record = COALESCE(excluded.record, current_records.record), updated_at = excluded.updated_at",
                &[
                    &source,
                    &entity,
                    &ids,
                    &starts,
                    &ends,
                    &hashes,
                    &modified,
                    &at_modified,
                    &terminal,
                    &records,
                    &written_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn record(&self, source: &str, entity: &str, id: &str) -> Result<Option<StoredRecord>, StateError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS}, terminal, record, updated_at FROM current_records WHERE source = $1 AND entity = $2 AND id = $3"
        );
        let client = self.client().await?;
        Ok(client.query_opt(&sql, &[&source, &entity, &id]).await?.map(|row| StoredRecord {
            id: id.to_string(),
            version: version_from_row(&row, 0),
            terminal: row.get(5),
            record: row.get(6),
            updated_at: row.get(7),
        }))
    }

    async fn cursor(&self, source: &str, entity: &str) -> Result<Option<String>, StateError> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT cursor FROM cursors WHERE source = $1 AND entity = $2", &[&source, &entity])
            .await?
            .map(|row| row.get(0)))
    }

    async fn set_cursor(&self, source: &str, entity: &str, cursor: &str, written_at: Millis) -> Result<(), StateError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO cursors (source, entity, cursor, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (source, entity) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                &[&source, &entity, &cursor, &written_at],
            )
            .await?;
        Ok(())
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
        let client = self.client().await?;
        Ok(client.query_one("SELECT version FROM syncline_schema_version", &[]).await?.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres_url::{test_service_url, unique_test_schema};

    /// A store in a fresh schema, and a client to drop that schema afterwards.
    async fn fresh_store(schema: &str) -> Option<(PostgresStateStore, String)> {
        let base = test_service_url()?;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}schema={schema}");
        let store = PostgresStateStore::open(&url)
            .await
            .unwrap_or_else(|error| panic!("postgres at {} is unreachable: {error}", redact_url(&base)));
        Some((store, base))
    }

    async fn drop_schema(base: &str, schema: &str) {
        let client = connect(&split_postgres_url(base).unwrap()).await.unwrap();
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn postgres_passes_the_state_conformance_suite() {
        let schema = unique_test_schema("syncline_state_conf");
        let Some((store, base)) = fresh_store(&schema).await else { return };
        crate::conformance::run(&store).await;
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
        drop_schema(&base, &schema).await;
    }

    #[tokio::test]
    async fn postgres_state_survives_reopening_and_refuses_a_newer_schema() {
        let schema = unique_test_schema("syncline_state_reopen");
        let Some((store, base)) = fresh_store(&schema).await else { return };
        store.set_cursor("s", "deal", "2024-01-01", 1).await.unwrap();
        drop(store);
        let (reopened, _) = fresh_store(&schema).await.unwrap();
        assert_eq!(reopened.cursor("s", "deal").await.unwrap().as_deref(), Some("2024-01-01"));
        reopened
            .client()
            .await
            .unwrap()
            .execute("UPDATE syncline_schema_version SET version = 99", &[])
            .await
            .unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let error = PostgresStateStore::open(&format!("{base}{separator}schema={schema}"))
            .await
            .expect_err("newer schema must be refused");
        assert!(error.to_string().contains("upgrade syncline"), "{error}");
        drop_schema(&base, &schema).await;
    }

    #[tokio::test]
    async fn a_later_duplicate_entry_wins() {
        let schema = unique_test_schema("syncline_state_dup");
        let Some((store, base)) = fresh_store(&schema).await else { return };
        let entry = |hash: &str| IndexWrite {
            id: "1".into(),
            version: CurrentVersion {
                start: 1,
                end: None,
                row_hash: hash.into(),
                modified: 1,
                hashes_at_modified: vec![hash.into()],
            },
            terminal: false,
            record: None,
        };
        store.write_index("s", "deal", vec![entry("a"), entry("b")], 5).await.unwrap();
        let found = store.current_versions("s", "deal", &["1".into()]).await.unwrap();
        assert_eq!(found["1"].row_hash, "b");
        drop_schema(&base, &schema).await;
    }
}
