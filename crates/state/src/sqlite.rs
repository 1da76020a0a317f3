//! The SQLite state store (WAL mode), the embedded default.
//!
//! # Durability and concurrency of the webhook inbox
//!
//! One connection, behind a mutex, serves every call. Webhook appends do not lock it one by one:
//! [`StateStore::inbox_append`] sends its events over a channel to a dedicated writer thread,
//! which takes every request waiting in the channel, writes them all in ONE transaction,
//! commits, and answers each requester through its own oneshot channel (group commit). While
//! one batch commits the next one queues, so 50 concurrent webhooks cost one commit instead of
//! 50, and the other calls (claims, index reads and writes) keep working between batches.
//!
//! SQLite's automatic checkpoint is off: a thread with its own connection checkpoints the WAL
//! (PASSIVE) twice a second, so copying pages back and their fsync never stall a commit that
//! webhook acknowledgements wait for.
//!
//! The file runs in WAL mode. By default (`[state] durability = "crash"`) every connection of
//! the store runs with `synchronous = NORMAL`: a commit has been written to the WAL (the
//! operating system holds it) before `inbox_append` returns, so an acknowledged webhook
//! survives a crash or SIGKILL of the process (a test kills a child process to prove it). Only
//! a power loss or kernel crash can lose the last commits before the next checkpoint; the
//! upstream's webhook retries and the reconciler heal that case. `durability = "power_loss"`
//! sets `synchronous = FULL` on every connection (an fsync of the WAL per commit, so per batch
//! of the group commit) and closes that gap; `bench/webhooks.sh` shows the cost. The setting
//! belongs to the connections, not to the file: each open applies it again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use syncline_core::{CurrentVersion, EventAction, Millis, WebhookEvent};
use tokio::sync::{mpsc, oneshot};

use crate::{
    inbox_retry_delay_ms, join_hashes, split_hashes, Durability, InboxEntry, InboxStats, IndexWrite, StateError, StateStore, StoredRecord,
};

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
    // 3: the webhook inbox. `state` is pending, done or dead; seqs are never reused
    // (AUTOINCREMENT), so a stale seq can never name a newer event.
    r#"CREATE TABLE "inbox" (
        "seq" INTEGER PRIMARY KEY AUTOINCREMENT,
        "source" TEXT NOT NULL,
        "entity" TEXT NOT NULL,
        "id" TEXT NOT NULL,
        "action" TEXT NOT NULL,
        "event_time" INTEGER NOT NULL,
        "delivery_id" TEXT NOT NULL,
        "received_at" INTEGER NOT NULL,
        "state" TEXT NOT NULL DEFAULT 'pending' CHECK ("state" IN ('pending', 'done', 'dead')),
        "attempts" INTEGER NOT NULL DEFAULT 0,
        "next_attempt_at" INTEGER NOT NULL DEFAULT 0,
        "leased_until" INTEGER NOT NULL DEFAULT 0,
        "last_error" TEXT,
        "done_at" INTEGER
    );
    CREATE UNIQUE INDEX "inbox_delivery" ON "inbox" ("source", "delivery_id", "entity", "id");
    CREATE UNIQUE INDEX "inbox_change" ON "inbox" ("source", "entity", "id", "action", "event_time");
    CREATE INDEX "inbox_pending" ON "inbox" ("seq") WHERE "state" = 'pending';
    CREATE INDEX "inbox_dead" ON "inbox" ("seq") WHERE "state" = 'dead';
    CREATE INDEX "inbox_done" ON "inbox" ("done_at") WHERE "state" = 'done';"#,
    // 4: the parent of a sub-resource event (a Zoho Desk thread's ticket).
    r#"ALTER TABLE "inbox" ADD COLUMN "parent_id" TEXT;"#,
];

/// Append requests the writer thread may take into one transaction.
const MAX_APPEND_REQUESTS_PER_COMMIT: usize = 512;

/// Append requests waiting for the writer thread before `inbox_append` waits for room.
const APPEND_QUEUE: usize = 4_096;

/// The columns [`entry_from_row`] reads, in order.
const ENTRY_COLUMNS: &str =
    r#""seq", "source", "entity", "id", "action", "event_time", "delivery_id", "received_at", "attempts", "last_error", "parent_id""#;

/// Ids per lookup statement (`id IN (...)`), below SQLite's parameter limit.
const LOOKUP_CHUNK: usize = 500;

/// State in one SQLite file.
#[derive(Clone)]
pub struct SqliteStateStore {
    connection: Arc<Mutex<Connection>>,
    /// The connection of the checkpoint thread (none for an in-memory store).
    checkpoints: Option<Arc<Mutex<Connection>>>,
    /// The group-commit writer of inbox appends (see the module documentation).
    appends: mpsc::Sender<AppendRequest>,
}

/// One `inbox_append` call waiting for the writer thread.
struct AppendRequest {
    events: Vec<WebhookEvent>,
    received_at: Millis,
    reply: oneshot::Sender<Result<usize, StateError>>,
}

impl SqliteStateStore {
    /// Opens (creating if needed) the state file and applies pending migrations, with the
    /// default durability ([`Durability::Crash`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        Self::open_with_durability(path, Durability::Crash)
    }

    /// [`Self::open`] with a chosen durability (`[state] durability`).
    pub fn open_with_durability(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StateError> {
        Self::open_with_synchronous(path, durability.sqlite_synchronous())
    }

    /// [`Self::open`] with another `synchronous` setting (the tests compare `FULL`). A file
    /// syncline creates gets mode 0600 (SQLite gives its `-wal` and `-shm` files the same), its
    /// folder 0700 when syncline creates that too: the file holds refresh tokens and records.
    fn open_with_synchronous(path: impl AsRef<Path>, synchronous: &str) -> Result<Self, StateError> {
        let path = path.as_ref();
        if let Some(folder) = path.parent() {
            crate::private_files::create_private_folder(folder)
                .map_err(|error| StateError::Task(format!("cannot create the folder of {}: {error}", path.display())))?;
        }
        crate::private_files::create_private_file(path)
            .map_err(|error| StateError::Task(format!("cannot create {}: {error}", path.display())))?;
        let connection = open_file_connection(path, synchronous)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "cache_size", -16_000)?;
        // Checkpoints run on a thread of their own (below), never inside a commit that an
        // acknowledgement waits for.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        let mut store = Self::from_connection(connection)?;
        let checkpoints = Arc::new(Mutex::new(open_file_connection(path, synchronous)?));
        let alive = Arc::downgrade(&store.connection);
        let thread_checkpoints = Arc::clone(&checkpoints);
        std::thread::Builder::new()
            .name("syncline-state-checkpoint".into())
            .spawn(move || run_checkpoints(&thread_checkpoints, &alive))
            .map_err(|error| StateError::Task(format!("cannot start the checkpoint thread: {error}")))?;
        store.checkpoints = Some(checkpoints);
        Ok(store)
    }

    /// SQLite's `PRAGMA synchronous` of each connection of the store, as SQLite reports it
    /// (`1` = NORMAL, `2` = FULL): the store's own connection first, then the checkpoint
    /// thread's (absent for an in-memory store).
    pub fn synchronous_levels(&self) -> Result<Vec<i64>, StateError> {
        let mut connections = vec![&self.connection];
        connections.extend(self.checkpoints.as_ref());
        connections
            .into_iter()
            .map(|connection| {
                let guard = connection
                    .lock()
                    .map_err(|_| StateError::Task("state store lock poisoned".into()))?;
                Ok(guard.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0))?)
            })
            .collect()
    }

    /// An in-memory store (for tests and dry runs).
    pub fn in_memory() -> Result<Self, StateError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut connection: Connection) -> Result<Self, StateError> {
        migrate(&mut connection)?;
        let connection = Arc::new(Mutex::new(connection));
        let (appends, requests) = mpsc::channel(APPEND_QUEUE);
        let writer_connection = Arc::clone(&connection);
        std::thread::Builder::new()
            .name("syncline-inbox-writer".into())
            .spawn(move || run_append_writer(&writer_connection, requests))
            .map_err(|error| StateError::Task(format!("cannot start the inbox writer thread: {error}")))?;
        Ok(Self {
            connection,
            checkpoints: None,
            appends,
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

/// How often the checkpoint thread moves the WAL into the database file.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Copies committed WAL pages into the database file every [`CHECKPOINT_INTERVAL`] (PASSIVE:
/// writers and readers go on meanwhile) until the store is dropped. Doing this here instead of
/// SQLite's automatic checkpoint keeps the page copying and its fsync out of the commits that
/// webhook acknowledgements wait for.
fn run_checkpoints(connection: &Mutex<Connection>, alive: &std::sync::Weak<Mutex<Connection>>) {
    let checkpoint = |mode: &str| -> Result<(), StateError> {
        let guard = connection
            .lock()
            .map_err(|_| StateError::Task("state store checkpoint lock poisoned".into()))?;
        guard.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))?;
        Ok(())
    };
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        if let Err(error) = checkpoint("PASSIVE") {
            tracing::warn!(%error, "state store checkpoint failed; retrying");
        }
    }
    // The last handle is gone: fold the WAL in for good.
    let _ = checkpoint("TRUNCATE");
}

/// A connection to the state file with the settings every connection of the store shares: the
/// busy timeout and the `synchronous` level of the durability in force (a per-connection
/// setting in SQLite, not stored in the file).
fn open_file_connection(path: &Path, synchronous: &str) -> Result<Connection, StateError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.pragma_update(None, "synchronous", synchronous)?;
    Ok(connection)
}

/// The writer thread of inbox appends: takes every waiting request, commits them in one
/// transaction and answers each. It ends when the last handle of the store is dropped.
fn run_append_writer(connection: &Mutex<Connection>, mut requests: mpsc::Receiver<AppendRequest>) {
    while let Some(first) = requests.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_APPEND_REQUESTS_PER_COMMIT {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let Ok(mut guard) = connection.lock() else {
            for request in batch {
                let _ = request
                    .reply
                    .send(Err(StateError::Task("state store lock poisoned; restart syncline".into())));
            }
            continue;
        };
        match append_batch(&mut guard, &batch) {
            Ok(counts) => {
                for (request, stored) in batch.into_iter().zip(counts) {
                    // A requester that gave up (client disconnected) no longer listens.
                    let _ = request.reply.send(Ok(stored));
                }
            }
            Err(error) => {
                // Commit the requests one by one, so one failing request fails alone.
                tracing::warn!(%error, requests = batch.len(), "inbox group commit failed; committing the appends one by one");
                for request in batch {
                    let result = append_batch(&mut guard, std::slice::from_ref(&request)).map(|counts| counts[0]);
                    let _ = request.reply.send(result);
                }
            }
        }
    }
}

/// Inserts the events of every request in one transaction; returns the newly stored count of
/// each request.
fn append_batch(connection: &mut Connection, batch: &[AppendRequest]) -> Result<Vec<usize>, StateError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut counts = Vec::with_capacity(batch.len());
    {
        let mut statement = transaction.prepare_cached(
            r#"INSERT INTO "inbox" ("source", "entity", "id", "action", "event_time", "delivery_id", "received_at", "parent_id")
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
               ON CONFLICT DO NOTHING"#,
        )?;
        for request in batch {
            let mut stored = 0;
            for event in &request.events {
                stored += statement.execute(params![
                    event.source,
                    event.entity,
                    event.id,
                    event.action.name(),
                    event.event_time,
                    event.delivery_id,
                    request.received_at,
                    event.parent_id
                ])?;
            }
            counts.push(stored);
        }
    }
    transaction.commit()?;
    Ok(counts)
}

/// An inbox entry from a row of [`ENTRY_COLUMNS`].
fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InboxEntry> {
    let action: String = row.get(4)?;
    let action = EventAction::from_name(&action).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            Box::new(StateError::Unreadable(format!("the unknown inbox action `{action}`"))),
        )
    })?;
    Ok(InboxEntry {
        seq: row.get(0)?,
        event: WebhookEvent {
            source: row.get(1)?,
            entity: row.get(2)?,
            id: row.get(3)?,
            action,
            event_time: row.get(5)?,
            delivery_id: row.get(6)?,
            parent_id: row.get(10)?,
        },
        received_at: row.get(7)?,
        attempts: row.get(8)?,
        last_error: row.get(9)?,
    })
}

/// Seqs as one bound JSON array, read in SQL with `json_each` (no statement per list length).
fn seqs_json(seqs: &[i64]) -> String {
    serde_json::Value::from(seqs.to_vec()).to_string()
}

/// Done rows deleted per transaction by `inbox_prune`, so appends are not held up for long.
const PRUNE_CHUNK: i64 = 10_000;

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

    async fn active_ids_page(&self, source: &str, entity: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
        let (source, entity, after) = (source.to_string(), entity.to_string(), after.map(str::to_string));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id FROM current_records
                 WHERE source = ?1 AND entity = ?2 AND deleted_at IS NULL AND (?3 IS NULL OR id > ?3)
                 ORDER BY id LIMIT ?4",
            )?;
            let rows = statement.query_map(params![source, entity, after, limit], |row| row.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
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

    async fn inbox_append(&self, events: &[WebhookEvent], received_at: Millis) -> Result<usize, StateError> {
        if events.is_empty() {
            return Ok(0);
        }
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            events: events.to_vec(),
            received_at,
            reply,
        };
        let stopped = || StateError::Task("the inbox writer thread stopped; restart syncline".into());
        self.appends.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn inbox_claim(&self, limit: usize, now: Millis, lease_ms: i64) -> Result<Vec<InboxEntry>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let leased_until = now.saturating_add(lease_ms.max(0));
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                r#"UPDATE "inbox" SET "leased_until" = ?2
                   WHERE "seq" IN (
                       SELECT "seq" FROM "inbox"
                       WHERE "state" = 'pending' AND "next_attempt_at" <= ?1 AND "leased_until" <= ?1
                       ORDER BY "seq" LIMIT ?3)
                   RETURNING {ENTRY_COLUMNS}"#
            ))?;
            let mut entries = statement
                .query_map(params![now, leased_until, limit], entry_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            entries.sort_by_key(|entry| entry.seq);
            Ok(entries)
        })
        .await
    }

    async fn inbox_done(&self, seqs: &[i64], done_at: Millis) -> Result<usize, StateError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let seqs = seqs_json(seqs);
        self.with(move |connection| {
            Ok(connection
                .prepare_cached(
                    r#"UPDATE "inbox" SET "state" = 'done', "done_at" = ?2, "leased_until" = 0
                   WHERE "state" = 'pending' AND "seq" IN (SELECT "value" FROM json_each(?1))"#,
                )?
                .execute(params![seqs, done_at])?)
        })
        .await
    }

    async fn inbox_fail(&self, seqs: &[i64], error: &str, now: Millis, max_attempts: u32) -> Result<usize, StateError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let (seqs, error) = (seqs_json(seqs), error.to_string());
        let max_attempts = max_attempts.max(1);
        self.with(move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut dead = 0;
            {
                let failed: Vec<(i64, u32)> = transaction
                    .prepare_cached(
                        r#"SELECT "seq", "attempts" FROM "inbox"
                           WHERE "state" = 'pending' AND "seq" IN (SELECT "value" FROM json_each(?1))"#,
                    )?
                    .query_map([&seqs], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let mut update = transaction.prepare_cached(
                    r#"UPDATE "inbox" SET "attempts" = ?2, "last_error" = ?3, "leased_until" = 0,
                           "next_attempt_at" = ?4, "state" = ?5
                       WHERE "seq" = ?1"#,
                )?;
                for (seq, attempts) in failed {
                    let attempts = attempts.saturating_add(1);
                    let state = if attempts >= max_attempts {
                        dead += 1;
                        "dead"
                    } else {
                        "pending"
                    };
                    let next_attempt_at = now.saturating_add(inbox_retry_delay_ms(attempts));
                    update.execute(params![seq, attempts, error, next_attempt_at, state])?;
                }
            }
            transaction.commit()?;
            Ok(dead)
        })
        .await
    }

    async fn inbox_defer(&self, seqs: &[i64], error: &str, due_at: Millis) -> Result<usize, StateError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let (seqs, error) = (seqs_json(seqs), error.to_string());
        self.with(move |connection| {
            Ok(connection.execute(
                r#"UPDATE "inbox" SET "last_error" = ?2, "leased_until" = 0, "next_attempt_at" = ?3
                   WHERE "state" = 'pending' AND "seq" IN (SELECT "value" FROM json_each(?1))"#,
                params![seqs, error, due_at],
            )?)
        })
        .await
    }

    async fn inbox_stats(&self, now: Millis) -> Result<InboxStats, StateError> {
        self.with(move |connection| {
            Ok(connection
                .prepare_cached(
                    r#"SELECT
                       (SELECT count(*) FROM "inbox" WHERE "state" = 'pending'),
                       (SELECT count(*) FROM "inbox"
                        WHERE "state" = 'pending' AND "next_attempt_at" <= ?1 AND "leased_until" <= ?1),
                       (SELECT min("received_at") FROM "inbox" WHERE "state" = 'pending'),
                       (SELECT count(*) FROM "inbox" WHERE "state" = 'dead'),
                       (SELECT count(*) FROM "inbox" WHERE "state" = 'done')"#,
                )?
                .query_row([now], |row| {
                    Ok(InboxStats {
                        pending: row.get(0)?,
                        due: row.get(1)?,
                        oldest_pending_received_at: row.get(2)?,
                        dead: row.get(3)?,
                        done: row.get(4)?,
                    })
                })?)
        })
        .await
    }

    async fn inbox_dead(&self, limit: usize) -> Result<Vec<InboxEntry>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |connection| {
            Ok(connection
                .prepare_cached(&format!(
                    r#"SELECT {ENTRY_COLUMNS} FROM "inbox" WHERE "state" = 'dead' ORDER BY "seq" LIMIT ?1"#
                ))?
                .query_map([limit], entry_from_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn inbox_retry_dead(&self, seqs: Option<&[i64]>) -> Result<usize, StateError> {
        let seqs = seqs.map(seqs_json);
        self.with(move |connection| {
            Ok(connection
                .prepare_cached(
                    r#"UPDATE "inbox" SET "state" = 'pending', "attempts" = 0, "next_attempt_at" = 0, "leased_until" = 0
                   WHERE "state" = 'dead' AND (?1 IS NULL OR "seq" IN (SELECT "value" FROM json_each(?1)))"#,
                )?
                .execute([seqs])?)
        })
        .await
    }

    async fn inbox_drop_dead(&self, seqs: Option<&[i64]>) -> Result<usize, StateError> {
        let seqs = seqs.map(seqs_json);
        self.with(move |connection| {
            Ok(connection
                .prepare_cached(
                    r#"DELETE FROM "inbox"
                   WHERE "state" = 'dead' AND (?1 IS NULL OR "seq" IN (SELECT "value" FROM json_each(?1)))"#,
                )?
                .execute([seqs])?)
        })
        .await
    }

    async fn inbox_prune(&self, done_before: Millis) -> Result<usize, StateError> {
        let mut deleted = 0;
        loop {
            let chunk = self
                .with(move |connection| {
                    Ok(connection
                        .prepare_cached(
                            r#"DELETE FROM "inbox" WHERE "seq" IN (
                               SELECT "seq" FROM "inbox" WHERE "state" = 'done' AND "done_at" < ?1 LIMIT ?2)"#,
                        )?
                        .execute(params![done_before, PRUNE_CHUNK])?)
                })
                .await?;
            deleted += chunk;
            if (chunk as i64) < PRUNE_CHUNK {
                return Ok(deleted);
            }
        }
    }

    async fn inbox_release_leases(&self) -> Result<usize, StateError> {
        self.with(|connection| {
            Ok(connection.execute(
                r#"UPDATE "inbox" SET "leased_until" = 0 WHERE "state" = 'pending' AND "leased_until" > 0"#,
                [],
            )?)
        })
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

    /// `[state] durability` reaches SQLite: read back with `PRAGMA synchronous` on every
    /// connection of a store on a real file (1 = NORMAL, 2 = FULL).
    #[tokio::test]
    async fn durability_sets_synchronous_on_every_connection() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        let power_loss = SqliteStateStore::open_with_durability(&path, Durability::PowerLoss).unwrap();
        assert_eq!(power_loss.synchronous_levels().unwrap(), vec![2, 2], "power_loss is FULL");
        power_loss.set_cursor("s", "deal", "c", 1).await.unwrap();
        drop(power_loss);
        // The level is a connection setting: the next open with the default is NORMAL again.
        let default = SqliteStateStore::open(&path).unwrap();
        assert_eq!(default.synchronous_levels().unwrap(), vec![1, 1], "the default (crash) is NORMAL");
        assert_eq!(default.cursor("s", "deal").await.unwrap().as_deref(), Some("c"));
        let crash = SqliteStateStore::open_with_durability(&path, Durability::Crash).unwrap();
        assert_eq!(crash.synchronous_levels().unwrap(), vec![1, 1]);
        let journal: String = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(Durability::default(), Durability::Crash);
    }

    #[tokio::test]
    async fn two_connections_on_one_file_never_share_an_event() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        let first = SqliteStateStore::open(&path).unwrap();
        let second = SqliteStateStore::open(&path).unwrap();
        crate::conformance::claimers_never_share_an_event(&first, &second).await;
    }

    #[tokio::test]
    async fn the_inbox_migrations_upgrade_a_version_2_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        {
            let mut connection = Connection::open(&path).unwrap();
            connection
                .execute_batch("CREATE TABLE syncline_schema_version (version INTEGER NOT NULL)")
                .unwrap();
            let transaction = connection.transaction().unwrap();
            for migration in &MIGRATIONS[..2] {
                transaction.execute_batch(migration).unwrap();
            }
            transaction
                .execute("INSERT INTO syncline_schema_version (version) VALUES (2)", [])
                .unwrap();
            transaction.execute("INSERT INTO cursors VALUES ('s', 'deal', 'c', 1)", []).unwrap();
            transaction.commit().unwrap();
        }
        let store = SqliteStateStore::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(store.cursor("s", "deal").await.unwrap().as_deref(), Some("c"));
        let event = crate::conformance::event("deal", "1", EventAction::Upsert, 1, "d");
        assert_eq!(store.inbox_append(&[event], 1).await.unwrap(), 1);
    }

    /// Makes [`inbox_child_appends_until_killed`] the child of the SIGKILL test.
    const CHILD_DATABASE_VARIABLE: &str = "SYNCLINE_TEST_INBOX_CHILD_DATABASE";

    /// Not a test on its own: the child process of [`an_acknowledged_append_survives_sigkill`]
    /// (the test binary re-run with [`CHILD_DATABASE_VARIABLE`] set). It appends from four
    /// tasks and prints `acked {task} {n}` after each append returns, until it is killed.
    #[test]
    fn inbox_child_appends_until_killed() {
        let Ok(path) = std::env::var(CHILD_DATABASE_VARIABLE) else { return };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let store = SqliteStateStore::open(&path).unwrap();
            let tasks: Vec<_> = (0..4)
                .map(|task| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        for n in 0_i64.. {
                            let event =
                                crate::conformance::event("deal", &format!("{task}-{n}"), EventAction::Upsert, n, &format!("{task}-{n}"));
                            store.inbox_append(&[event], n).await.unwrap();
                            println!("acked {task} {n}");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
    }

    #[tokio::test]
    async fn an_acknowledged_append_survives_sigkill() {
        use std::io::BufRead;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sqlite::tests::inbox_child_appends_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DATABASE_VARIABLE, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, acks) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut acknowledged = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while acknowledged.len() < 2_000 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = acks.recv_timeout(left) else { break };
            if let Some(ack) = line.strip_prefix("acked ") {
                let (task, n) = ack.split_once(' ').unwrap();
                acknowledged.push(format!("{task}-{n}"));
            }
        }
        // std's Child::kill sends SIGKILL: no destructor, no flush, no clean close.
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            acknowledged.len() >= 2_000,
            "the child acknowledged only {} appends in time",
            acknowledged.len()
        );

        let store = SqliteStateStore::open(&path).unwrap();
        let stored: std::collections::HashSet<String> = store
            .inbox_claim(1_000_000, 0, 1)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.event.id)
            .collect();
        let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(lost.is_empty(), "acknowledged appends lost after SIGKILL: {lost:?}");
        assert!(stored.len() >= acknowledged.len());
    }

    /// Prints (does not assert) the append throughput and latency: 64 concurrent tasks, 200
    /// single-event appends each, as webhook handlers would do. Run with `--nocapture`.
    #[test]
    fn inbox_append_throughput() {
        for synchronous in ["NORMAL", "FULL"] {
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("state.db");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (elapsed, mut latencies) = runtime.block_on(async move {
                let store = SqliteStateStore::open_with_synchronous(&path, synchronous).unwrap();
                let started = std::time::Instant::now();
                let tasks: Vec<_> = (0..64)
                    .map(|task| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let mut latencies = Vec::with_capacity(200);
                            for n in 0..200_i64 {
                                let event = crate::conformance::event(
                                    "deal",
                                    &format!("{task}-{n}"),
                                    EventAction::Upsert,
                                    n,
                                    &format!("{task}-{n}"),
                                );
                                let appended = std::time::Instant::now();
                                store.inbox_append(&[event], n).await.unwrap();
                                latencies.push(appended.elapsed());
                            }
                            latencies
                        })
                    })
                    .collect();
                let mut latencies = Vec::new();
                for task in tasks {
                    latencies.extend(task.await.unwrap());
                }
                let elapsed = started.elapsed();
                assert_eq!(store.inbox_stats(0).await.unwrap().pending, 64 * 200);
                (elapsed, latencies)
            });
            latencies.sort();
            let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
            println!(
                "sqlite inbox_append, synchronous={synchronous}, 64 tasks x 200: {:.0} appends/s, p50 {:?}, p99 {:?}, max {:?}",
                latencies.len() as f64 / elapsed.as_secs_f64(),
                percentile(0.50),
                percentile(0.99),
                latencies.last().unwrap()
            );
        }
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
