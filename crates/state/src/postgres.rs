//! The PostgreSQL state store, for several `syncline serve` replicas sharing one state.
//!
//! Same tables and semantics as the SQLite store (times are epoch milliseconds in BIGINT
//! columns). Migrations run in one transaction under an advisory lock, so replicas starting
//! together apply each migration once. One connection is kept and re-opened when it drops.

use std::collections::HashMap;

use async_trait::async_trait;
use syncline_core::{CurrentVersion, EventAction, Millis, WebhookEvent};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::{Client, Row, Statement};

use crate::postgres_url::{redact_url, split_postgres_url, PostgresUrl};
use crate::{inbox_retry_delay_ms, join_hashes, split_hashes, InboxEntry, InboxStats, IndexWrite, StateError, StateStore, StoredRecord};

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
    // 3: the webhook inbox. `state` is pending, done or dead; seqs come from an identity
    // column and are never reused, so a stale seq can never name a newer event.
    r#"CREATE TABLE "inbox" (
        "seq" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        "source" TEXT NOT NULL,
        "entity" TEXT NOT NULL,
        "id" TEXT NOT NULL,
        "action" TEXT NOT NULL,
        "event_time" BIGINT NOT NULL,
        "delivery_id" TEXT NOT NULL,
        "received_at" BIGINT NOT NULL,
        "state" TEXT NOT NULL DEFAULT 'pending' CHECK ("state" IN ('pending', 'done', 'dead')),
        "attempts" INTEGER NOT NULL DEFAULT 0,
        "next_attempt_at" BIGINT NOT NULL DEFAULT 0,
        "leased_until" BIGINT NOT NULL DEFAULT 0,
        "last_error" TEXT,
        "done_at" BIGINT
    );
    CREATE UNIQUE INDEX "inbox_delivery" ON "inbox" ("source", "delivery_id", "entity", "id");
    CREATE UNIQUE INDEX "inbox_change" ON "inbox" ("source", "entity", "id", "action", "event_time");
    CREATE INDEX "inbox_pending" ON "inbox" ("seq") WHERE "state" = 'pending';
    CREATE INDEX "inbox_dead" ON "inbox" ("seq") WHERE "state" = 'dead';
    CREATE INDEX "inbox_done" ON "inbox" ("done_at") WHERE "state" = 'done';"#,
    // 4: the parent of a sub-resource event (a Zoho Desk thread's ticket).
    r#"ALTER TABLE "inbox" ADD COLUMN "parent_id" TEXT;"#,
];

/// Append requests the writer task may take into one transaction.
const MAX_APPEND_REQUESTS_PER_COMMIT: usize = 256;

/// Append requests waiting for the writer task before `inbox_append` waits for room.
const APPEND_QUEUE: usize = 4_096;

/// The append statement of a whole batch of requests: the events in order, duplicates absorbed
/// by either unique index (`ON CONFLICT DO NOTHING` without a target), also within the batch.
/// It returns, for each stored event, the number of the request it came from: the first input
/// row equal to the stored row in every column (a later equal row was its duplicate).
const APPEND_SQL: &str = r#"WITH "input" AS (
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[], $9::text[])
            WITH ORDINALITY AS e("request", "source", "entity", "id", "action", "event_time", "delivery_id", "received_at", "parent_id", "ordinal")
    ), "inserted" AS (
        INSERT INTO "inbox" ("source", "entity", "id", "action", "event_time", "delivery_id", "received_at", "parent_id")
        SELECT "source", "entity", "id", "action", "event_time", "delivery_id", "received_at", "parent_id" FROM "input" ORDER BY "ordinal"
        ON CONFLICT DO NOTHING
        RETURNING "source", "entity", "id", "action", "event_time", "delivery_id"
    )
    SELECT min(i."request") FROM "inserted" AS n JOIN "input" AS i
        ON i."source" = n."source" AND i."entity" = n."entity" AND i."id" = n."id" AND i."action" = n."action"
           AND i."event_time" = n."event_time" AND i."delivery_id" = n."delivery_id"
    GROUP BY n."source", n."entity", n."id", n."action", n."event_time", n."delivery_id""#;

/// One `inbox_append` call waiting for the writer task.
struct AppendRequest {
    events: Vec<WebhookEvent>,
    received_at: Millis,
    reply: oneshot::Sender<Result<usize, StateError>>,
}

/// Opens the writer's own connection and starts the writer task.
async fn start_append_writer(url: &PostgresUrl) -> Result<mpsc::Sender<AppendRequest>, StateError> {
    let client = connect(url).await?;
    let statement = client.prepare(APPEND_SQL).await?;
    let (appends, requests) = mpsc::channel(APPEND_QUEUE);
    tokio::spawn(run_append_writer(url.clone(), (client, statement), requests));
    Ok(appends)
}

/// The writer task of inbox appends, on its own connection (group commit): takes every waiting
/// request, stores all their events with ONE statement (one transaction) and answers each
/// requester. Concurrent webhooks thus share one commit (one WAL flush) instead of one each,
/// and appends never queue behind claims or index writes on the shared connection. A request
/// is answered only after the commit, so a requester that goes away cannot cut a batch short.
/// The task ends when the store is dropped.
async fn run_append_writer(url: PostgresUrl, connection: (Client, Statement), mut requests: mpsc::Receiver<AppendRequest>) {
    let mut connection = Some(connection);
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_APPEND_REQUESTS_PER_COMMIT {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if connection.as_ref().is_none_or(|(client, _)| client.is_closed()) {
            tracing::warn!("postgres inbox writer connection lost; reconnecting");
            connection = match reconnect_append_writer(&url).await {
                Ok(reopened) => Some(reopened),
                Err(error) => {
                    let message = error.to_string();
                    for request in batch {
                        let _ = request.reply.send(Err(StateError::Task(message.clone())));
                    }
                    continue;
                }
            };
        }
        let Some((client, statement)) = connection.as_mut() else { continue };
        match append_batch(client, statement, &batch).await {
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
                    let result = append_batch(client, statement, std::slice::from_ref(&request))
                        .await
                        .map(|counts| counts[0]);
                    let _ = request.reply.send(result);
                }
            }
        }
    }
}

async fn reconnect_append_writer(url: &PostgresUrl) -> Result<(Client, Statement), StateError> {
    let client = connect(url).await?;
    let statement = client.prepare(APPEND_SQL).await?;
    Ok((client, statement))
}

/// Stores the events of every request with one statement (one transaction, one commit);
/// returns the newly stored count of each request.
async fn append_batch(client: &mut Client, statement: &Statement, batch: &[AppendRequest]) -> Result<Vec<usize>, StateError> {
    let events = || {
        batch
            .iter()
            .enumerate()
            .flat_map(|(number, request)| request.events.iter().map(move |event| (number, request, event)))
    };
    let requests: Vec<i64> = events().map(|(number, _, _)| number as i64).collect();
    let sources: Vec<&str> = events().map(|(_, _, event)| event.source.as_str()).collect();
    let entities: Vec<&str> = events().map(|(_, _, event)| event.entity.as_str()).collect();
    let ids: Vec<&str> = events().map(|(_, _, event)| event.id.as_str()).collect();
    let actions: Vec<&str> = events().map(|(_, _, event)| event.action.name()).collect();
    let event_times: Vec<i64> = events().map(|(_, _, event)| event.event_time).collect();
    let delivery_ids: Vec<&str> = events().map(|(_, _, event)| event.delivery_id.as_str()).collect();
    let received_at: Vec<i64> = events().map(|(_, request, _)| request.received_at).collect();
    let parent_ids: Vec<Option<&str>> = events().map(|(_, _, event)| event.parent_id.as_deref()).collect();
    let rows = client
        .query(
            statement,
            &[
                &requests,
                &sources,
                &entities,
                &ids,
                &actions,
                &event_times,
                &delivery_ids,
                &received_at,
                &parent_ids,
            ],
        )
        .await?;
    let mut counts = vec![0; batch.len()];
    for row in rows {
        let number: i64 = row.get(0);
        if let Some(count) = usize::try_from(number).ok().and_then(|number| counts.get_mut(number)) {
            *count += 1;
        }
    }
    Ok(counts)
}

/// The columns [`entry_from_row`] reads, in order.
const ENTRY_COLUMNS: &str =
    r#""seq", "source", "entity", "id", "action", "event_time", "delivery_id", "received_at", "attempts", "last_error", "parent_id""#;

/// Done rows deleted per statement by `inbox_prune`, so no transaction grows without bound.
const PRUNE_CHUNK: i64 = 10_000;

/// An inbox entry from a row of [`ENTRY_COLUMNS`].
fn entry_from_row(row: &Row) -> Result<InboxEntry, StateError> {
    let action: String = row.get(4);
    let action = EventAction::from_name(&action).ok_or_else(|| StateError::Unreadable(format!("the unknown inbox action `{action}`")))?;
    let attempts: i32 = row.get(8);
    Ok(InboxEntry {
        seq: row.get(0),
        event: WebhookEvent {
            source: row.get(1),
            entity: row.get(2),
            id: row.get(3),
            action,
            event_time: row.get(5),
            delivery_id: row.get(6),
            parent_id: row.get(10),
        },
        received_at: row.get(7),
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: row.get(9),
    })
}

/// The advisory-lock key that serialises migrations ("syncline" in ASCII).
const MIGRATION_LOCK: i64 = 0x7379_6e63_6c69_6e65;

const VERSION_COLUMNS: &str = "version_start, deleted_at, row_hash, modified, hashes_at_modified";

/// State in a PostgreSQL database (optionally in one schema: `?schema=name`).
pub struct PostgresStateStore {
    url: PostgresUrl,
    client: Mutex<Client>,
    /// The group-commit writer of inbox appends (see [`run_append_writer`]).
    appends: mpsc::Sender<AppendRequest>,
}

impl std::fmt::Debug for PostgresStateStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("PostgresStateStore").field("url", &self.url).finish()
    }
}

/// Connects and points the session at the schema (created if missing).
async fn connect(url: &PostgresUrl) -> Result<Client, StateError> {
    let (config, tls) = crate::postgres_url::connection_config(&url.connection)
        .map_err(|error| StateError::BadUrl(format!("{} ({error})", redact_url(&url.connection))))?;
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "postgres state store connection closed");
        }
    });
    crate::postgres_url::log_plaintext_fallback(&client, &url.connection, "state store").await;
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
        let appends = start_append_writer(&url).await?;
        Ok(Self {
            url,
            client: Mutex::new(client),
            appends,
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

    async fn active_ids_page(&self, source: &str, entity: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // COLLATE "C": byte order, the order SQLite and the reconciler's comparison use.
        let rows = client
            .query(
                r#"SELECT id FROM current_records
                   WHERE source = $1 AND entity = $2 AND deleted_at IS NULL AND ($3::text IS NULL OR id COLLATE "C" > $3::text)
                   ORDER BY id COLLATE "C" LIMIT $4"#,
                &[&source, &entity, &after, &limit],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
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
        let stopped = || StateError::Task("the postgres inbox writer stopped; restart syncline".into());
        self.appends.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn inbox_claim(&self, limit: usize, now: Millis, lease_ms: i64) -> Result<Vec<InboxEntry>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let leased_until = now.saturating_add(lease_ms.max(0));
        let sql = format!(
            r#"UPDATE "inbox" SET "leased_until" = $2
               WHERE "seq" IN (
                   SELECT "seq" FROM "inbox"
                   WHERE "state" = 'pending' AND "next_attempt_at" <= $1 AND "leased_until" <= $1
                   ORDER BY "seq" LIMIT $3
                   FOR UPDATE SKIP LOCKED)
               RETURNING {ENTRY_COLUMNS}"#
        );
        let client = self.client().await?;
        let rows = client.query(&sql, &[&now, &leased_until, &limit]).await?;
        let mut entries = rows.iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|entry| entry.seq);
        Ok(entries)
    }

    async fn inbox_done(&self, seqs: &[i64], done_at: Millis) -> Result<usize, StateError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        let marked = client
            .execute(
                r#"UPDATE "inbox" SET "state" = 'done', "done_at" = $2, "leased_until" = 0
                   WHERE "state" = 'pending' AND "seq" = ANY($1)"#,
                &[&seqs, &done_at],
            )
            .await?;
        Ok(marked as usize)
    }

    async fn inbox_fail(&self, seqs: &[i64], error: &str, now: Millis, max_attempts: u32) -> Result<usize, StateError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let max_attempts = max_attempts.max(1);
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let rows = transaction
            .query(
                r#"SELECT "seq", "attempts" FROM "inbox" WHERE "state" = 'pending' AND "seq" = ANY($1) FOR UPDATE"#,
                &[&seqs],
            )
            .await?;
        let mut failed_seqs = Vec::with_capacity(rows.len());
        let mut attempts = Vec::with_capacity(rows.len());
        let mut next_attempts = Vec::with_capacity(rows.len());
        let mut states = Vec::with_capacity(rows.len());
        let mut dead = 0;
        for row in &rows {
            let count = u32::try_from(row.get::<_, i32>(1)).unwrap_or(0).saturating_add(1);
            failed_seqs.push(row.get::<_, i64>(0));
            attempts.push(i32::try_from(count).unwrap_or(i32::MAX));
            next_attempts.push(now.saturating_add(inbox_retry_delay_ms(count)));
            states.push(if count >= max_attempts {
                dead += 1;
                "dead"
            } else {
                "pending"
            });
        }
        transaction
            .execute(
                r#"UPDATE "inbox" AS i SET "attempts" = f."attempts", "next_attempt_at" = f."next_attempt_at",
                       "state" = f."state", "last_error" = $5, "leased_until" = 0
                   FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::text[])
                        AS f("seq", "attempts", "next_attempt_at", "state")
                   WHERE i."seq" = f."seq""#,
                &[&failed_seqs, &attempts, &next_attempts, &states, &error],
            )
            .await?;
        transaction.commit().await?;
        Ok(dead)
    }

    async fn inbox_defer(&self, seqs: &[i64], error: &str, due_at: Millis) -> Result<usize, StateError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        let deferred = client
            .execute(
                r#"UPDATE "inbox" SET "last_error" = $2, "leased_until" = 0, "next_attempt_at" = $3
                   WHERE "state" = 'pending' AND "seq" = ANY($1)"#,
                &[&seqs, &error, &due_at],
            )
            .await?;
        Ok(deferred as usize)
    }

    async fn inbox_stats(&self, now: Millis) -> Result<InboxStats, StateError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                r#"SELECT
                       (SELECT count(*) FROM "inbox" WHERE "state" = 'pending'),
                       (SELECT count(*) FROM "inbox"
                        WHERE "state" = 'pending' AND "next_attempt_at" <= $1 AND "leased_until" <= $1),
                       (SELECT min("received_at") FROM "inbox" WHERE "state" = 'pending'),
                       (SELECT count(*) FROM "inbox" WHERE "state" = 'dead'),
                       (SELECT count(*) FROM "inbox" WHERE "state" = 'done')"#,
                &[&now],
            )
            .await?;
        let count = |index: usize| u64::try_from(row.get::<_, i64>(index)).unwrap_or(0);
        Ok(InboxStats {
            pending: count(0),
            due: count(1),
            oldest_pending_received_at: row.get(2),
            dead: count(3),
            done: count(4),
        })
    }

    async fn inbox_dead(&self, limit: usize) -> Result<Vec<InboxEntry>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(r#"SELECT {ENTRY_COLUMNS} FROM "inbox" WHERE "state" = 'dead' ORDER BY "seq" LIMIT $1"#);
        let client = self.client().await?;
        let rows = client.query(&sql, &[&limit]).await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn inbox_retry_dead(&self, seqs: Option<&[i64]>) -> Result<usize, StateError> {
        let client = self.client().await?;
        let moved = client
            .execute(
                r#"UPDATE "inbox" SET "state" = 'pending', "attempts" = 0, "next_attempt_at" = 0, "leased_until" = 0
                   WHERE "state" = 'dead' AND ($1::bigint[] IS NULL OR "seq" = ANY($1))"#,
                &[&seqs],
            )
            .await?;
        Ok(moved as usize)
    }

    async fn inbox_drop_dead(&self, seqs: Option<&[i64]>) -> Result<usize, StateError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                r#"DELETE FROM "inbox" WHERE "state" = 'dead' AND ($1::bigint[] IS NULL OR "seq" = ANY($1))"#,
                &[&seqs],
            )
            .await?;
        Ok(deleted as usize)
    }

    async fn inbox_prune(&self, done_before: Millis) -> Result<usize, StateError> {
        let mut deleted = 0;
        loop {
            let chunk = self
                .client()
                .await?
                .execute(
                    r#"DELETE FROM "inbox" WHERE "seq" IN (
                           SELECT "seq" FROM "inbox" WHERE "state" = 'done' AND "done_at" < $1 LIMIT $2)"#,
                    &[&done_before, &PRUNE_CHUNK],
                )
                .await?;
            deleted += chunk as usize;
            if (chunk as i64) < PRUNE_CHUNK {
                return Ok(deleted);
            }
        }
    }

    async fn inbox_release_leases(&self) -> Result<usize, StateError> {
        let client = self.client().await?;
        let released = client
            .execute(
                r#"UPDATE "inbox" SET "leased_until" = 0 WHERE "state" = 'pending' AND "leased_until" > 0"#,
                &[],
            )
            .await?;
        Ok(released as usize)
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
    async fn postgres_claimers_on_two_connections_never_share_an_event() {
        let schema = unique_test_schema("syncline_state_claim");
        let Some((first, base)) = fresh_store(&schema).await else { return };
        let (second, _) = fresh_store(&schema).await.unwrap();
        crate::conformance::claimers_never_share_an_event(&first, &second).await;
        drop_schema(&base, &schema).await;
    }

    /// Prints (does not assert) the append throughput of one store: 64 concurrent tasks, 50
    /// single-event appends each. Run with `--nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_inbox_append_throughput() {
        let schema = unique_test_schema("syncline_state_rate");
        let Some((store, base)) = fresh_store(&schema).await else { return };
        let store = std::sync::Arc::new(store);
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|task| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(50);
                    for n in 0..50_i64 {
                        let event =
                            crate::conformance::event("deal", &format!("{task}-{n}"), EventAction::Upsert, n, &format!("{task}-{n}"));
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
        latencies.sort();
        println!(
            "postgres inbox_append, 64 tasks x 50: {:.0} appends/s, p50 {:?}, p99 {:?}",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            latencies[latencies.len() / 2],
            latencies[latencies.len() * 99 / 100]
        );
        assert_eq!(store.inbox_stats(0).await.unwrap().pending, 64 * 50);
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
