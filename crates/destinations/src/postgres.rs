//! The PostgreSQL destination.
//!
//! Each batch is one transaction: an advisory lock on the table (so two writers of one table
//! take turns), the table created or evolved (ADD COLUMN, widening with `ALTER COLUMN ... TYPE
//! ... USING`), the closes COPY'd into a temporary table and applied with one `UPDATE ... FROM`,
//! and the new rows COPY'd (text format, escaped) into a temporary table and inserted with
//! `ON CONFLICT DO NOTHING`, so a replayed batch changes nothing. Tables get the primary key
//! `(id, start)` and a partial index on the id of the active rows.
//!
//! PostgreSQL cuts identifiers at 63 bytes. Longer table and column names are mapped to a
//! deterministic physical name ([`physical_identifier`]: a prefix plus a hash of the full name),
//! and a column's full name is kept in its comment, so [`Destination::table_schema`] reports the
//! names the records use and every later batch maps them the same way.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::SinkExt;
use sha2::{Digest, Sha256};
use syncline_core::{format_timestamp, CellValue, Column, ColumnType, HistoryBatch, HistoryProfile, Millis, TableSchema};
use syncline_state::postgres_url::{redact_url, split_postgres_url, PostgresUrl};
use tokio::sync::Mutex;
use tokio_postgres::{Client, Transaction};

use crate::compare::{ActiveRows, FieldValue, HistoryReader, ReadKind, RowSelection};
use crate::{quote_identifier as quote, Destination, DestinationError, HistoryCheck, StoredVersion};

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// What a column comment starts with when it carries the column's full (long) name.
const NAME_COMMENT_PREFIX: &str = "syncline name: ";

/// The name PostgreSQL stores for a syncline identifier: the name itself when it fits in 63
/// bytes, else its first bytes (cut on a character boundary, at most 54) followed by `_` and
/// the first 8 hex digits of the SHA-256 of the full name. Deterministic, so every batch and
/// every reader maps a name the same way.
pub fn physical_identifier(name: &str) -> String {
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name.to_string();
    }
    let mut cut = MAX_IDENTIFIER_BYTES - 9;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(name.as_bytes());
    let suffix: String = digest[..4].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}_{suffix}", &name[..cut])
}

/// Quotes the physical name of an identifier.
fn quote_physical(name: &str) -> Result<String, DestinationError> {
    quote(&physical_identifier(name))
}

/// History tables in one schema of a PostgreSQL database.
pub struct PostgresDestination {
    url: PostgresUrl,
    schema: String,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PostgresDestination {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PostgresDestination")
            .field("url", &self.url)
            .field("schema", &self.schema)
            .finish()
    }
}

fn sql_type(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Boolean => "boolean",
        ColumnType::BigInt => "bigint",
        ColumnType::Double => "double precision",
        ColumnType::Timestamp => "timestamp without time zone",
        ColumnType::Json | ColumnType::Varchar => "text",
    }
}

fn column_type_of(sql: &str) -> ColumnType {
    match sql {
        "boolean" => ColumnType::Boolean,
        "bigint" | "integer" | "smallint" => ColumnType::BigInt,
        "double precision" | "real" => ColumnType::Double,
        "timestamp without time zone" | "timestamp with time zone" => ColumnType::Timestamp,
        _ => ColumnType::Varchar,
    }
}

/// One physical column of a table.
#[derive(Debug, Clone)]
struct PhysicalColumn {
    /// The name the records use (the comment's full name for mapped names).
    name: String,
    /// The SQL type as `format_type` writes it.
    sql: String,
}

/// Appends a value in COPY text format: `\N` for NULL, backslash escapes for the rest.
/// Returns true when a NUL character had to be replaced (see [`push_copy_text`]).
fn push_copy_value(out: &mut String, cell: &CellValue) -> bool {
    match cell {
        CellValue::Null => out.push_str("\\N"),
        CellValue::Bool(value) => out.push_str(if *value { "t" } else { "f" }),
        CellValue::Int(value) => out.push_str(&value.to_string()),
        CellValue::Float(value) => out.push_str(&float_text(*value)),
        CellValue::Timestamp(millis) => out.push_str(&format_timestamp(*millis)),
        CellValue::Text(text) => return push_copy_text(out, text),
    }
    false
}

fn float_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        value.to_string()
    }
}

/// Appends text escaped for COPY. PostgreSQL text cannot hold U+0000, so a NUL character is
/// written as U+FFFD (the replacement character) and the function returns true; the batch
/// then logs which columns were affected instead of failing forever on every retry.
fn push_copy_text(out: &mut String, text: &str) -> bool {
    let mut replaced = false;
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => {
                out.push('\u{FFFD}');
                replaced = true;
            }
            other => out.push(other),
        }
    }
    replaced
}

/// Streams COPY text rows into `COPY {target} FROM STDIN`, in chunks of about 1 MiB.
async fn copy_rows(transaction: &Transaction<'_>, statement: &str, rows: impl Iterator<Item = String>) -> Result<u64, DestinationError> {
    let sink = transaction.copy_in::<_, Bytes>(statement).await?;
    let mut sink = std::pin::pin!(sink);
    let mut chunk = String::with_capacity(1 << 20);
    for row in rows {
        chunk.push_str(&row);
        if chunk.len() >= 1 << 20 {
            sink.send(Bytes::from(std::mem::take(&mut chunk))).await?;
            chunk.reserve(1 << 20);
        }
    }
    if !chunk.is_empty() {
        sink.send(Bytes::from(chunk)).await?;
    }
    Ok(sink.as_mut().finish().await?)
}

impl PostgresDestination {
    /// Connects to `postgres://user[:password]@host[:port]/database[?schema=name]`; tables go
    /// to the schema (default `public`, created on first write if missing).
    pub async fn connect(url: &str) -> Result<Self, DestinationError> {
        let parsed = split_postgres_url(url).ok_or_else(|| DestinationError::BadUrl(redact_url(url)))?;
        let schema = parsed.schema.clone().unwrap_or_else(|| "public".to_string());
        Self::open(&parsed.connection, &schema).await
    }

    /// Connects to a server URL (without syncline's `schema` parameter) and writes to `schema`.
    pub async fn open(connection_url: &str, schema: &str) -> Result<Self, DestinationError> {
        let destination = Self {
            url: PostgresUrl {
                connection: connection_url.to_string(),
                schema: Some(schema.to_string()),
            },
            schema: schema.to_string(),
            client: Mutex::new(None),
        };
        drop(destination.client().await?);
        Ok(destination)
    }

    /// The schema the history tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection, opened (again) when there is none or the previous one dropped.
    pub(crate) async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, DestinationError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let (config, tls) =
                syncline_state::postgres_url::connection_config(&self.url.connection).map_err(|error| DestinationError::PostgresTls {
                    url: redact_url(&self.url.connection),
                    reason: error.to_string(),
                })?;
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "postgres destination connection closed");
                }
            });
            syncline_state::postgres_url::log_plaintext_fallback(&client, &self.url.connection, "destination").await;
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// `"schema"."table"` with the table's physical name.
    pub(crate) fn qualified(&self, table: &str) -> Result<String, DestinationError> {
        Ok(format!("{}.{}", quote(&self.schema)?, quote_physical(table)?))
    }

    /// The columns of a table in physical order (empty when it does not exist).
    async fn table_columns(
        &self,
        client: &impl tokio_postgres::GenericClient,
        table: &str,
    ) -> Result<Vec<PhysicalColumn>, DestinationError> {
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
                 FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&self.qualified(table)?],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let physical: String = row.get(0);
                let comment: Option<String> = row.get(2);
                let name = comment
                    .as_deref()
                    .and_then(|comment| comment.strip_prefix(NAME_COMMENT_PREFIX))
                    .filter(|full| physical_identifier(full) == physical)
                    .map_or(physical, str::to_string);
                PhysicalColumn { name, sql: row.get(1) }
            })
            .collect())
    }
}

/// Keeps the full name of a mapped column in its comment.
async fn comment_long_name(transaction: &Transaction<'_>, table: &str, name: &str) -> Result<(), DestinationError> {
    if physical_identifier(name) == name {
        return Ok(());
    }
    let comment = format!("{NAME_COMMENT_PREFIX}{name}").replace('\'', "''");
    transaction
        .batch_execute(&format!("COMMENT ON COLUMN {table}.{} IS '{comment}'", quote_physical(name)?))
        .await?;
    Ok(())
}

async fn create_table(transaction: &Transaction<'_>, table: &str, batch: &HistoryBatch) -> Result<(), DestinationError> {
    let profile = &batch.profile;
    let mut definitions: Vec<String> = Vec::with_capacity(batch.schema.columns.len() + 6);
    for column in &batch.schema.columns {
        let not_null = if column.name == batch.primary_key { " NOT NULL" } else { "" };
        definitions.push(format!(
            "{} {}{not_null}",
            quote_physical(&column.name)?,
            sql_type(column.column_type)
        ));
    }
    definitions.push(format!("{} timestamp NOT NULL", quote_physical(&profile.start_column)?));
    definitions.push(format!("{} timestamp", quote_physical(&profile.end_column)?));
    definitions.push(format!("{} boolean NOT NULL", quote_physical(&profile.active_column)?));
    definitions.push(format!("{} timestamp NOT NULL", quote_physical(&profile.synced_column)?));
    definitions.push(format!("{} text NOT NULL", quote_physical(&profile.hash_column)?));
    let id = quote_physical(&batch.primary_key)?;
    definitions.push(format!("PRIMARY KEY ({id}, {})", quote_physical(&profile.start_column)?));
    transaction
        .batch_execute(&format!(
            "CREATE TABLE {table} ({}); CREATE INDEX ON {table} ({id}) WHERE {};",
            definitions.join(", "),
            quote_physical(&profile.active_column)?
        ))
        .await?;
    for column in &batch.schema.columns {
        comment_long_name(transaction, table, &column.name).await?;
    }
    for column in profile.metadata_columns() {
        comment_long_name(transaction, table, column).await?;
    }
    Ok(())
}

/// Adds missing columns and widens narrower ones; idempotent.
async fn evolve_table(
    transaction: &Transaction<'_>,
    table: &str,
    batch: &HistoryBatch,
    existing: &[PhysicalColumn],
) -> Result<(), DestinationError> {
    for column in &batch.schema.columns {
        match existing.iter().find(|physical| physical.name == column.name) {
            None => {
                tracing::info!(table = %batch.table, column = %column.name, column_type = column.column_type.name(), "adding column");
                transaction
                    .batch_execute(&format!(
                        "ALTER TABLE {table} ADD COLUMN {} {}",
                        quote_physical(&column.name)?,
                        sql_type(column.column_type)
                    ))
                    .await?;
                comment_long_name(transaction, table, &column.name).await?;
            }
            Some(physical) => {
                let current = column_type_of(&physical.sql);
                let wanted = current.widen(column.column_type);
                if sql_type(wanted) != sql_type(current) {
                    tracing::info!(table = %batch.table, column = %column.name, from = current.name(), to = wanted.name(), "widening column");
                    let name = quote_physical(&column.name)?;
                    let target = sql_type(wanted);
                    transaction
                        .batch_execute(&format!(
                            "ALTER TABLE {table} ALTER COLUMN {name} TYPE {target} USING {name}::{target}"
                        ))
                        .await?;
                }
            }
        }
    }
    Ok(())
}

impl PostgresDestination {
    async fn apply_in_transaction(&self, transaction: &Transaction<'_>, batch: &HistoryBatch) -> Result<(), DestinationError> {
        let table = self.qualified(&batch.table)?;
        let profile = &batch.profile;
        // Create the schema only when it is missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on
        // the database even when the schema exists.
        if transaction
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&self.schema])
            .await?
            .is_none()
        {
            transaction
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(&self.schema)?))
                .await?;
        }
        // Writers of one table take turns; the lock ends with the transaction.
        transaction
            .execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&table])
            .await?;
        let existing = self.table_columns(transaction, &batch.table).await?;
        if existing.is_empty() {
            create_table(transaction, &table, batch).await?;
        } else {
            evolve_table(transaction, &table, batch, &existing).await?;
        }
        let id = quote_physical(&batch.primary_key)?;
        let start = quote_physical(&profile.start_column)?;
        let end = quote_physical(&profile.end_column)?;
        let active = quote_physical(&profile.active_column)?;
        let synced = quote_physical(&profile.synced_column)?;
        if !batch.closes.is_empty() {
            let id_type = sql_type(batch.schema.column_type(&batch.primary_key).unwrap_or(ColumnType::Varchar));
            transaction
                .batch_execute(&format!(
                    "CREATE TEMP TABLE syncline_closes (id {id_type}, version_start timestamp, version_end timestamp, version_synced timestamp) ON COMMIT DROP"
                ))
                .await?;
            let closes_synced = format_timestamp(batch.synced_at);
            let rows = batch.closes.iter().map(|close| {
                let mut line = String::with_capacity(64);
                push_copy_value(&mut line, &close.id);
                line.push('\t');
                line.push_str(&format_timestamp(close.start));
                line.push('\t');
                line.push_str(&format_timestamp(close.end));
                line.push('\t');
                line.push_str(&closes_synced);
                line.push('\n');
                line
            });
            copy_rows(transaction, "COPY syncline_closes FROM STDIN", rows).await?;
            transaction
                .batch_execute(&format!(
                    "UPDATE {table} AS t SET {end} = c.version_end, {active} = false, {synced} = c.version_synced FROM syncline_closes AS c
                     WHERE t.{id} = c.id AND t.{active} AND t.{start} <= c.version_end"
                ))
                .await?;
        }
        if !batch.rows.is_empty() {
            let mut names: Vec<String> = Vec::with_capacity(batch.schema.columns.len() + 5);
            for column in &batch.schema.columns {
                names.push(quote_physical(&column.name)?);
            }
            for column in profile.metadata_columns() {
                names.push(quote_physical(column)?);
            }
            let list = names.join(", ");
            transaction
                .batch_execute(&format!(
                    "CREATE TEMP TABLE syncline_rows ON COMMIT DROP AS SELECT {list} FROM {table} WITH NO DATA"
                ))
                .await?;
            let open_end = profile.open_end;
            let synced = format_timestamp(batch.synced_at);
            let replaced_nul: std::sync::Mutex<std::collections::BTreeSet<usize>> = Default::default();
            let rows = batch.rows.iter().map(|row| {
                let mut line = String::with_capacity(row.values.len() * 16 + 96);
                for (position, value) in row.values.iter().enumerate() {
                    if push_copy_value(&mut line, value) {
                        replaced_nul.lock().expect("not poisoned").insert(position);
                    }
                    line.push('\t');
                }
                line.push_str(&format_timestamp(row.start));
                line.push('\t');
                match row.end.or(open_end) {
                    Some(end) => line.push_str(&format_timestamp(end)),
                    None => line.push_str("\\N"),
                }
                line.push('\t');
                line.push_str(if row.end.is_none() { "t" } else { "f" });
                line.push('\t');
                line.push_str(&synced);
                line.push('\t');
                push_copy_text(&mut line, &row.row_hash);
                line.push('\n');
                line
            });
            copy_rows(transaction, &format!("COPY syncline_rows ({list}) FROM STDIN"), rows).await?;
            for position in replaced_nul.into_inner().unwrap_or_default() {
                tracing::warn!(
                    table = %batch.table,
                    column = %batch.schema.columns[position].name,
                    "text with NUL characters, which PostgreSQL cannot store; written with U+FFFD in their place"
                );
            }
            transaction
                .batch_execute(&format!(
                    "INSERT INTO {table} ({list}) SELECT {list} FROM syncline_rows ON CONFLICT DO NOTHING"
                ))
                .await?;
        }
        Ok(())
    }
}

/// A timestamp column as epoch milliseconds, in SQL.
fn millis(column: &str) -> String {
    format!("(extract(epoch FROM {column}) * 1000)::bigint")
}

#[async_trait]
impl Destination for PostgresDestination {
    async fn table_schema(&self, table: &str, profile: &HistoryProfile) -> Result<Option<TableSchema>, DestinationError> {
        let guard = self.client().await?;
        let client = guard.as_ref().expect("connected above");
        let columns = self.table_columns(client, table).await?;
        if columns.is_empty() {
            return Ok(None);
        }
        let metadata = profile.metadata_columns();
        let columns = columns
            .into_iter()
            .filter(|column| !metadata.contains(&column.name.as_str()))
            .map(|column| Column {
                column_type: column_type_of(&column.sql),
                name: column.name,
            })
            .collect();
        Ok(Some(TableSchema { columns }))
    }

    async fn apply(&self, batch: Arc<HistoryBatch>) -> Result<(), DestinationError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut guard = self.client().await?;
        let client = guard.as_mut().expect("connected above");
        let timer = std::time::Instant::now();
        let transaction = client.transaction().await?;
        self.apply_in_transaction(&transaction, &batch).await?;
        let work_ms = timer.elapsed().as_millis() as u64;
        transaction.commit().await?;
        tracing::debug!(
            table = %batch.table,
            rows = batch.rows.len(),
            closes = batch.closes.len(),
            work_ms,
            commit_ms = timer.elapsed().as_millis() as u64 - work_ms,
            "postgres batch"
        );
        Ok(())
    }

    async fn read_versions(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
    ) -> Result<Vec<StoredVersion>, DestinationError> {
        let sql = format!(
            "SELECT {id}::text, {start}, {end}, {active}, {hash} FROM {table}",
            id = quote_physical(primary_key)?,
            start = millis(&quote_physical(&profile.start_column)?),
            end = millis(&quote_physical(&profile.end_column)?),
            active = quote_physical(&profile.active_column)?,
            hash = quote_physical(&profile.hash_column)?,
            table = self.qualified(table)?,
        );
        let guard = self.client().await?;
        let client = guard.as_ref().expect("connected above");
        let open_end = profile.open_end;
        let mut versions: Vec<StoredVersion> = client
            .query(&sql, &[])
            .await?
            .iter()
            .map(|row| {
                let end: Option<Millis> = row.get(2);
                StoredVersion {
                    id: row.get(0),
                    start: row.get(1),
                    end: end.filter(|end| Some(*end) != open_end),
                    active: row.get(3),
                    row_hash: row.get(4),
                }
            })
            .collect();
        versions.sort();
        Ok(versions)
    }

    async fn check_history(&self, table: &str, primary_key: &str, profile: &HistoryProfile) -> Result<HistoryCheck, DestinationError> {
        let id = quote_physical(primary_key)?;
        let start = quote_physical(&profile.start_column)?;
        let end = quote_physical(&profile.end_column)?;
        let active = quote_physical(&profile.active_column)?;
        let hash = quote_physical(&profile.hash_column)?;
        let table = self.qualified(table)?;
        let open = match profile.open_end {
            Some(open_end) => format!("{end} = timestamp 'epoch' + ({open_end}::bigint * interval '1 millisecond')"),
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
                (SELECT count(*) FROM (SELECT id FROM versions WHERE a GROUP BY id HAVING count(*) > 1) AS several),
                count(*) FILTER (WHERE a IS DISTINCT FROM is_open),
                count(*) FILTER (WHERE (NOT is_open AND e < s) OR (next_start IS NOT NULL AND (is_open OR e >= next_start))),
                count(*) FILTER (WHERE next_hash = h AND e = next_start - interval '1 millisecond')
             FROM versions"
        );
        let guard = self.client().await?;
        let client = guard.as_ref().expect("connected above");
        let row = client.query_one(&sql, &[]).await?;
        let count = |index: usize| row.get::<_, i64>(index).max(0) as u64;
        Ok(HistoryCheck {
            rows: count(0),
            active_rows: count(1),
            ids_with_several_active: count(2),
            active_flag_mismatches: count(3),
            overlapping_windows: count(4),
            phantom_duplicates: count(5),
        })
    }
}

/// The SELECT expression that reads a column as its kind, given the quoted column.
fn read_expression(column: &str, kind: ReadKind) -> String {
    match kind {
        ReadKind::Bool => format!("{column}::boolean"),
        ReadKind::Int => format!("{column}::bigint"),
        ReadKind::Float => format!("{column}::double precision"),
        ReadKind::Timestamp => millis(column),
        ReadKind::Text => format!("{column}::text"),
    }
}

fn read_kind(sql: &str) -> ReadKind {
    if sql.starts_with("numeric") {
        return ReadKind::Float;
    }
    ReadKind::from(column_type_of(sql))
}

fn read_value(row: &tokio_postgres::Row, index: usize, kind: ReadKind) -> Result<FieldValue, DestinationError> {
    Ok(match kind {
        ReadKind::Bool => row.try_get::<_, Option<bool>>(index)?.map_or(FieldValue::Null, FieldValue::Bool),
        ReadKind::Int => row.try_get::<_, Option<i64>>(index)?.map_or(FieldValue::Null, FieldValue::Int),
        ReadKind::Float => row.try_get::<_, Option<f64>>(index)?.map_or(FieldValue::Null, FieldValue::Float),
        ReadKind::Timestamp => row
            .try_get::<_, Option<i64>>(index)?
            .map_or(FieldValue::Null, FieldValue::Timestamp),
        ReadKind::Text => row.try_get::<_, Option<String>>(index)?.map_or(FieldValue::Null, FieldValue::Text),
    })
}

#[async_trait]
impl HistoryReader for PostgresDestination {
    async fn history_tables(&self, profile: &HistoryProfile) -> Result<Vec<String>, DestinationError> {
        let guard = self.client().await?;
        let client = guard.as_ref().expect("connected above");
        let rows = client
            .query(
                "SELECT c.relname::text FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND a.attname IN ($2, $3)
                 GROUP BY c.relname HAVING count(*) = 2 ORDER BY 1",
                &[
                    &self.schema,
                    &physical_identifier(&profile.start_column),
                    &physical_identifier(&profile.active_column),
                ],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    async fn rows(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
        selection: RowSelection,
    ) -> Result<Option<ActiveRows>, DestinationError> {
        let guard = self.client().await?;
        let client = guard.as_ref().expect("connected above");
        let columns = self.table_columns(client, table).await?;
        if columns.is_empty() {
            return Ok(None);
        }
        let Some(id_column) = columns.iter().find(|column| column.name == primary_key) else {
            return Err(DestinationError::MissingColumn {
                table: table.to_string(),
                column: primary_key.to_string(),
            });
        };
        let metadata = profile.metadata_columns();
        let record: Vec<(String, ReadKind)> = columns
            .iter()
            .filter(|column| selection == RowSelection::Every || !metadata.contains(&column.name.as_str()))
            .map(|column| (column.name.clone(), read_kind(&column.sql)))
            .collect();
        let id_kind = read_kind(&id_column.sql);
        let mut select = vec![read_expression(&quote_physical(primary_key)?, id_kind)];
        for (name, kind) in &record {
            select.push(read_expression(&quote_physical(name)?, *kind));
        }
        let filter = match selection {
            RowSelection::Active => format!(" WHERE {}", quote_physical(&profile.active_column)?),
            RowSelection::Every => String::new(),
        };
        let sql = format!("SELECT {} FROM {}{filter}", select.join(", "), self.qualified(table)?);
        let mut rows = Vec::new();
        for row in client.query(&sql, &[]).await? {
            let id = read_value(&row, 0, id_kind)?.normalized().unwrap_or_default();
            let values = record
                .iter()
                .enumerate()
                .map(|(index, (_, kind))| read_value(&row, index + 1, *kind))
                .collect::<Result<Vec<_>, _>>()?;
            rows.push((id, values));
        }
        Ok(Some(ActiveRows {
            columns: record.into_iter().map(|(name, _)| name).collect(),
            rows,
        }))
    }
}

/// Test support: a destination in a fresh schema of the test server, dropped by
/// [`TestSchema::drop_schema`] or, when a test panics first, when the value is dropped.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use syncline_state::postgres_url::{test_service_url, unique_test_schema};

    /// A fresh schema on the test server.
    pub(crate) struct TestSchema {
        pub(crate) destination: PostgresDestination,
        dropped: bool,
    }

    impl TestSchema {
        /// `None` when no test server is configured (skipped locally; CI fails instead).
        pub(crate) async fn new(prefix: &str) -> Option<Self> {
            let base = test_service_url()?;
            let schema = unique_test_schema(prefix);
            let separator = if base.contains('?') { '&' } else { '?' };
            let destination = PostgresDestination::connect(&format!("{base}{separator}schema={schema}"))
                .await
                .unwrap_or_else(|error| panic!("postgres at {} is unreachable: {error}", redact_url(&base)));
            Some(Self {
                destination,
                dropped: false,
            })
        }

        /// Runs SQL in the schema (created if missing); `{schema}.` in the text becomes the
        /// quoted schema and a dot.
        pub(crate) async fn execute(&self, sql: &str) {
            let guard = self.destination.client().await.unwrap();
            let client = guard.as_ref().unwrap();
            let schema = quote(&self.destination.schema).unwrap();
            let sql = sql.replace("{schema}.", &format!("{schema}."));
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}; {sql}"))
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
        }

        /// Drops the schema and everything in it.
        pub(crate) async fn drop_schema(mut self) {
            let guard = self.destination.client().await.unwrap();
            let client = guard.as_ref().unwrap();
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    quote(&self.destination.schema).unwrap()
                ))
                .await
                .unwrap();
            drop(guard);
            self.dropped = true;
        }
    }

    impl Drop for TestSchema {
        /// A test that panicked before [`TestSchema::drop_schema`] still leaves no schema behind:
        /// drop it on a thread of its own (this may run inside the test's runtime).
        fn drop(&mut self) {
            if self.dropped {
                return;
            }
            let url = self.destination.url.connection.clone();
            let Ok(schema) = quote(&self.destination.schema) else { return };
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async move {
                    let (config, tls) = syncline_state::postgres_url::connection_config(&url).ok()?;
                    let (client, connection) = config.connect(tls).await.ok()?;
                    tokio::spawn(connection);
                    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.ok()
                })
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestSchema;
    use super::*;

    #[test]
    fn long_identifiers_map_deterministically() {
        assert_eq!(physical_identifier("short"), "short");
        let exact = "x".repeat(63);
        assert_eq!(physical_identifier(&exact), exact);
        let long = "l".repeat(300);
        let mapped = physical_identifier(&long);
        assert_eq!(mapped.len(), 63);
        assert_eq!(
            mapped,
            format!("{}_ab5229cf", "l".repeat(54)),
            "the example in docs/destinations.md"
        );
        assert_eq!(mapped, physical_identifier(&long), "same name, same mapping");
        assert_ne!(mapped, physical_identifier(&format!("{long}x")), "different names differ");
        let unicode = "ü".repeat(40);
        let mapped = physical_identifier(&unicode);
        assert!(mapped.len() <= 63 && mapped.starts_with("üü"), "{mapped}");
    }

    #[test]
    fn copy_text_is_escaped() {
        let mut line = String::new();
        push_copy_value(&mut line, &CellValue::Text("a\tb\nc\\d\re".into()));
        assert_eq!(line, "a\\tb\\nc\\\\d\\re");
        let mut line = String::new();
        push_copy_value(&mut line, &CellValue::Null);
        push_copy_value(&mut line, &CellValue::Text("\\N".into()));
        assert_eq!(line, "\\N\\\\N", "a literal \\N is not NULL");
        let mut line = String::new();
        assert!(push_copy_value(&mut line, &CellValue::Text("a\0b".into())));
        assert_eq!(line, "a\u{FFFD}b");
    }

    #[tokio::test]
    async fn postgres_passes_the_destination_conformance_suite() {
        let Some(test) = TestSchema::new("syncline_dest_conf").await else {
            return;
        };
        crate::conformance::run(&test.destination).await;
        test.drop_schema().await;
    }

    #[tokio::test]
    async fn a_role_that_owns_only_its_schema_can_write() {
        let Some(admin) = TestSchema::new("syncline_dest_role").await else {
            return;
        };
        let role = admin.destination.schema.replace("syncline_dest_role", "syncline_role");
        {
            let guard = admin.destination.client().await.unwrap();
            let client = guard.as_ref().unwrap();
            client
                .batch_execute(&format!(
                    "CREATE ROLE {role} LOGIN; DROP SCHEMA IF EXISTS {schema}; CREATE SCHEMA {schema} AUTHORIZATION {role};",
                    role = quote(&role).unwrap(),
                    schema = quote(&admin.destination.schema).unwrap()
                ))
                .await
                .unwrap();
        }
        let base = syncline_state::postgres_url::test_service_url().unwrap();
        let (scheme, rest) = base.split_once("://").unwrap();
        let host_and_database = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let limited = PostgresDestination::open(&format!("{scheme}://{role}@{host_and_database}"), &admin.destination.schema)
            .await
            .unwrap();
        crate::conformance::write_sample(&limited, "deal_history").await;
        let versions = limited
            .read_versions("deal_history", "id", &HistoryProfile::default())
            .await
            .unwrap();
        assert_eq!(versions.len(), 10);
        drop(limited);
        let guard = admin.destination.client().await.unwrap();
        guard
            .as_ref()
            .unwrap()
            .batch_execute(&format!(
                "DROP SCHEMA {} CASCADE; DROP ROLE {};",
                quote(&admin.destination.schema).unwrap(),
                quote(&role).unwrap()
            ))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_test_schema_is_dropped_even_without_drop_schema() {
        let Some(test) = TestSchema::new("syncline_dest_guard").await else {
            return;
        };
        crate::conformance::write_sample(&test.destination, "deal_history").await;
        let schema = test.destination.schema.clone();
        let checker = PostgresDestination::open(&test.destination.url.connection, "public").await.unwrap();
        drop(test);
        let guard = checker.client().await.unwrap();
        let left = guard
            .as_ref()
            .unwrap()
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await
            .unwrap();
        assert!(left.is_none(), "schema {schema} was left behind");
    }

    #[tokio::test]
    async fn postgres_tables_have_the_key_and_a_partial_active_index() {
        let Some(test) = TestSchema::new("syncline_dest_index").await else {
            return;
        };
        crate::conformance::write_sample(&test.destination, "deal_history").await;
        let guard = test.destination.client().await.unwrap();
        let client = guard.as_ref().unwrap();
        let indexes: Vec<String> = client
            .query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'deal_history' ORDER BY indexname",
                &[&test.destination.schema],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            indexes
                .iter()
                .any(|index| index.contains("UNIQUE") && index.contains("(id, _fivetran_start)")),
            "{indexes:?}"
        );
        assert!(
            indexes.iter().any(|index| index.contains("(id) WHERE _fivetran_active")),
            "{indexes:?}"
        );
        drop(guard);
        test.drop_schema().await;
    }
}
