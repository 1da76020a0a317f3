//! Migration parity: compares the current (active) rows of history tables on two destinations,
//! possibly written with different profiles (an old connector's `_fivetran_` tables against
//! syncline's `_cdc_` tables).
//!
//! Reading is behind [`HistoryReader`]; the comparison itself ([`compare_tables`]) is pure.
//! Values are normalized so that DuckDB, PostgreSQL and BigQuery agree: integers in decimal, floats with
//! an integral value as integers and otherwise in Rust's shortest round-trip form, booleans as
//! `true`/`false`, timestamps as RFC 3339 UTC with milliseconds, text as is. The content hash of
//! a row is the first 16 bytes of the SHA-256 of the compact JSON object of its non-null shared
//! record columns (sorted by name, values as normalized text), in hex; a table's content hash is
//! the SHA-256 of its sorted `(id, row content hash)` lines. Both are computed here, in Rust,
//! from the rows read from each side, so they mean the same thing on every destination.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::json;
use sha2::{Digest, Sha256};
use syncline_core::{format_timestamp, ColumnType, HistoryProfile, Millis};

use crate::{quote_identifier as quote, BigQueryDestination, DestinationConfig, DestinationError, DuckDbDestination, PostgresDestination};

/// One normalized cell of an active row.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A timestamp in UTC milliseconds.
    Timestamp(Millis),
    /// Text (and JSON text of lists).
    Text(String),
}

impl FieldValue {
    /// The normalized text of the value, the same on every destination; `None` for NULL.
    pub fn normalized(&self) -> Option<String> {
        match self {
            FieldValue::Null => None,
            FieldValue::Bool(value) => Some(value.to_string()),
            FieldValue::Int(value) => Some(value.to_string()),
            FieldValue::Float(value) if value.is_finite() && value.fract() == 0.0 && value.abs() < 9.0e15 => {
                Some((*value as i64).to_string())
            }
            FieldValue::Float(value) => Some(value.to_string()),
            FieldValue::Timestamp(millis) => Some(format_timestamp(*millis)),
            FieldValue::Text(text) => Some(text.clone()),
        }
    }
}

/// How a column is read: the kind of value its SQL type holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// BOOLEAN.
    Bool,
    /// Integers.
    Int,
    /// Floats.
    Float,
    /// Timestamps, read as epoch milliseconds.
    Timestamp,
    /// Everything else, read as text.
    Text,
}

impl From<ColumnType> for ReadKind {
    fn from(column_type: ColumnType) -> Self {
        match column_type {
            ColumnType::Boolean => ReadKind::Bool,
            ColumnType::BigInt => ReadKind::Int,
            ColumnType::Double => ReadKind::Float,
            ColumnType::Timestamp => ReadKind::Timestamp,
            ColumnType::Json | ColumnType::Varchar => ReadKind::Text,
        }
    }
}

/// The active rows of one history table: record columns only (the profile's metadata columns
/// are left out), in the table's column order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveRows {
    /// The record columns.
    pub columns: Vec<String>,
    /// `(id as normalized text, one value per column)`, one entry per active row.
    pub rows: Vec<(String, Vec<FieldValue>)>,
}

/// Which rows and columns [`HistoryReader::rows`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSelection {
    /// The active rows, record columns only.
    Active,
    /// Every row, every column: the profile's metadata columns are read as ordinary columns
    /// (for `syncline adopt` and checks of the metadata).
    Every,
}

/// Reads history tables for a comparison or an adoption.
#[async_trait]
pub trait HistoryReader: Send + Sync {
    /// The tables that have the profile's start and active columns.
    async fn history_tables(&self, profile: &HistoryProfile) -> Result<Vec<String>, DestinationError>;

    /// The rows of a table as `selection` says, or `None` when the table does not exist.
    async fn rows(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
        selection: RowSelection,
    ) -> Result<Option<ActiveRows>, DestinationError>;

    /// The active rows of a table, or `None` when the table does not exist.
    async fn active_rows(&self, table: &str, primary_key: &str, profile: &HistoryProfile) -> Result<Option<ActiveRows>, DestinationError> {
        self.rows(table, primary_key, profile, RowSelection::Active).await
    }
}

/// Opens a reader for the configured destination.
pub async fn open_reader(config: &DestinationConfig) -> Result<Box<dyn HistoryReader>, DestinationError> {
    match config {
        DestinationConfig::DuckDb { path } => Ok(Box::new(DuckDbDestination::new(path))),
        DestinationConfig::Postgres { url, schema } => Ok(Box::new(PostgresDestination::open(url, schema).await?)),
        DestinationConfig::BigQuery(config) => Ok(Box::new(BigQueryDestination::open(config).await?)),
    }
}

/// Parses a profile name for comparisons: `fivetran`, `cdc`, or `prefix:{prefix}` (the active
/// flag decides what is current, so the open end does not matter here).
pub fn parse_profile(name: &str) -> Option<HistoryProfile> {
    match name {
        "fivetran" => Some(HistoryProfile::of(syncline_core::ProfileKind::Fivetran)),
        "cdc" => Some(HistoryProfile::of(syncline_core::ProfileKind::Cdc)),
        other => other
            .strip_prefix("prefix:")
            .filter(|prefix| !prefix.is_empty())
            .map(|prefix| HistoryProfile::with_prefix(prefix, None)),
    }
}

fn duckdb_kind(sql: &str) -> ReadKind {
    match sql {
        "BOOLEAN" => ReadKind::Bool,
        "BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" | "UBIGINT" | "UINTEGER" | "USMALLINT" | "UTINYINT" => ReadKind::Int,
        "DOUBLE" | "FLOAT" | "REAL" => ReadKind::Float,
        sql if sql.starts_with("DECIMAL") => ReadKind::Float,
        sql if sql.starts_with("TIMESTAMP") => ReadKind::Timestamp,
        _ => ReadKind::Text,
    }
}

/// The SELECT expression that reads a column as its kind, given the quoted column.
fn duckdb_expression(column: &str, kind: ReadKind) -> String {
    match kind {
        ReadKind::Bool => column.to_string(),
        ReadKind::Int => format!("CAST({column} AS BIGINT)"),
        ReadKind::Float => format!("CAST({column} AS DOUBLE)"),
        ReadKind::Timestamp => format!("epoch_ms(CAST({column} AS TIMESTAMP))"),
        ReadKind::Text => format!("CAST({column} AS VARCHAR)"),
    }
}

fn duckdb_value(row: &::duckdb::Row<'_>, index: usize, kind: ReadKind) -> ::duckdb::Result<FieldValue> {
    Ok(match kind {
        ReadKind::Bool => row.get::<_, Option<bool>>(index)?.map_or(FieldValue::Null, FieldValue::Bool),
        ReadKind::Int => row.get::<_, Option<i64>>(index)?.map_or(FieldValue::Null, FieldValue::Int),
        ReadKind::Float => row.get::<_, Option<f64>>(index)?.map_or(FieldValue::Null, FieldValue::Float),
        ReadKind::Timestamp => row.get::<_, Option<i64>>(index)?.map_or(FieldValue::Null, FieldValue::Timestamp),
        ReadKind::Text => row.get::<_, Option<String>>(index)?.map_or(FieldValue::Null, FieldValue::Text),
    })
}

#[async_trait]
impl HistoryReader for DuckDbDestination {
    async fn history_tables(&self, profile: &HistoryProfile) -> Result<Vec<String>, DestinationError> {
        let (path, retry) = (self.path().to_path_buf(), self.lock_retry());
        let (start, active) = (profile.start_column.clone(), profile.active_column.clone());
        tokio::task::spawn_blocking(move || {
            if !path.exists() {
                return Ok(Vec::new());
            }
            let connection = crate::duckdb::open_with_retry(&path, retry)?;
            let mut statement = connection.prepare(
                "SELECT table_name FROM information_schema.columns
                 WHERE table_schema = 'main' AND column_name IN (?, ?)
                 GROUP BY table_name HAVING count(*) = 2 ORDER BY table_name",
            )?;
            let tables = statement.query_map(::duckdb::params![start, active], |row| row.get::<_, String>(0))?;
            Ok(tables.collect::<Result<_, _>>()?)
        })
        .await
        .map_err(|error| DestinationError::Task(error.to_string()))?
    }

    async fn rows(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
        selection: RowSelection,
    ) -> Result<Option<ActiveRows>, DestinationError> {
        let (path, retry) = (self.path().to_path_buf(), self.lock_retry());
        let (table, primary_key, profile) = (table.to_string(), primary_key.to_string(), profile.clone());
        tokio::task::spawn_blocking(move || {
            if !path.exists() {
                return Ok(None);
            }
            let connection = crate::duckdb::open_with_retry(&path, retry)?;
            let mut statement = connection.prepare(
                "SELECT column_name, data_type FROM information_schema.columns
                 WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            )?;
            let columns: Vec<(String, String)> = statement
                .query_map(::duckdb::params![table], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if columns.is_empty() {
                return Ok(None);
            }
            let Some((_, id_sql)) = columns.iter().find(|(name, _)| *name == primary_key) else {
                return Err(DestinationError::MissingColumn {
                    table: table.clone(),
                    column: primary_key.clone(),
                });
            };
            let metadata = profile.metadata_columns();
            let record: Vec<(String, ReadKind)> = columns
                .iter()
                .filter(|(name, _)| selection == RowSelection::Every || !metadata.contains(&name.as_str()))
                .map(|(name, sql)| (name.clone(), duckdb_kind(sql)))
                .collect();
            let mut select = vec![duckdb_expression(&quote(&primary_key)?, duckdb_kind(id_sql))];
            for (name, kind) in &record {
                select.push(duckdb_expression(&quote(name)?, *kind));
            }
            let filter = match selection {
                RowSelection::Active => format!(" WHERE {}", quote(&profile.active_column)?),
                RowSelection::Every => String::new(),
            };
            let sql = format!("SELECT {} FROM {}{filter}", select.join(", "), quote(&table)?);
            let id_kind = duckdb_kind(id_sql);
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map([], |row| {
                let id = duckdb_value(row, 0, id_kind)?.normalized().unwrap_or_default();
                let values = record
                    .iter()
                    .enumerate()
                    .map(|(index, (_, kind))| duckdb_value(row, index + 1, *kind))
                    .collect::<::duckdb::Result<Vec<_>>>()?;
                Ok((id, values))
            })?;
            let rows = rows.collect::<Result<_, _>>()?;
            Ok(Some(ActiveRows {
                columns: record.iter().map(|(name, _)| name.clone()).collect(),
                rows,
            }))
        })
        .await
        .map_err(|error| DestinationError::Task(error.to_string()))?
    }
}

/// One column that differs for one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDifference {
    /// The column.
    pub column: String,
    /// The left value (normalized text; `None` for NULL).
    pub left: Option<String>,
    /// The right value.
    pub right: Option<String>,
}

/// An id whose active rows differ in content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMismatch {
    /// The id.
    pub id: String,
    /// The columns that differ.
    pub columns: Vec<ColumnDifference>,
}

/// Ids on one side only, counted, with a sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSample {
    /// How many.
    pub count: u64,
    /// Up to the sample size of them, in order.
    pub sample: Vec<String>,
}

impl IdSample {
    fn push(&mut self, id: &str, limit: usize) {
        self.count += 1;
        if self.sample.len() < limit {
            self.sample.push(id.to_string());
        }
    }
}

/// The comparison of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableComparison {
    /// The table.
    pub table: String,
    /// False when the table is missing on the left.
    pub left_exists: bool,
    /// False when the table is missing on the right.
    pub right_exists: bool,
    /// Active rows on the left.
    pub left_active: u64,
    /// Active rows on the right.
    pub right_active: u64,
    /// Record columns only the left has.
    pub left_only_columns: Vec<String>,
    /// Record columns only the right has.
    pub right_only_columns: Vec<String>,
    /// Active ids only the left has.
    pub left_only_ids: IdSample,
    /// Active ids only the right has.
    pub right_only_ids: IdSample,
    /// Ids with more than one active row on the left.
    pub left_several_active: IdSample,
    /// Ids with more than one active row on the right.
    pub right_several_active: IdSample,
    /// How many ids on both sides differ in a shared column.
    pub mismatched_ids: u64,
    /// A sample of those, naming the columns.
    pub mismatches: Vec<FieldMismatch>,
    /// The left table's content hash over the shared columns.
    pub left_content_hash: String,
    /// The right table's content hash over the shared columns.
    pub right_content_hash: String,
}

impl TableComparison {
    /// True when anything differs.
    pub fn differs(&self) -> bool {
        !self.left_exists
            || !self.right_exists
            || self.left_active != self.right_active
            || !self.left_only_columns.is_empty()
            || !self.right_only_columns.is_empty()
            || self.left_only_ids.count > 0
            || self.right_only_ids.count > 0
            || self.left_several_active.count > 0
            || self.right_several_active.count > 0
            || self.mismatched_ids > 0
            || self.left_content_hash != self.right_content_hash
    }

    /// The comparison as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let ids = |sample: &IdSample| json!({"count": sample.count, "sample": sample.sample});
        json!({
            "table": self.table,
            "differs": self.differs(),
            "left_exists": self.left_exists,
            "right_exists": self.right_exists,
            "left_active": self.left_active,
            "right_active": self.right_active,
            "left_only_columns": self.left_only_columns,
            "right_only_columns": self.right_only_columns,
            "left_only_ids": ids(&self.left_only_ids),
            "right_only_ids": ids(&self.right_only_ids),
            "left_several_active": ids(&self.left_several_active),
            "right_several_active": ids(&self.right_several_active),
            "mismatched_ids": self.mismatched_ids,
            "mismatches": self.mismatches.iter().map(|mismatch| json!({
                "id": mismatch.id,
                "columns": mismatch.columns.iter().map(|difference| json!({
                    "column": difference.column,
                    "left": difference.left,
                    "right": difference.right,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "left_content_hash": self.left_content_hash,
            "right_content_hash": self.right_content_hash,
            "content_hashes_agree": self.left_content_hash == self.right_content_hash,
        })
    }
}

/// Rows of one side keyed by id, projected on the shared columns (normalized text).
type Projected = BTreeMap<String, Vec<Vec<Option<String>>>>;

fn project(rows: &ActiveRows, shared: &[String]) -> Projected {
    let positions: Vec<usize> = shared
        .iter()
        .map(|name| {
            rows.columns
                .iter()
                .position(|column| column == name)
                .expect("shared columns exist on both sides")
        })
        .collect();
    let mut projected: Projected = BTreeMap::new();
    for (id, values) in &rows.rows {
        let row = positions.iter().map(|&position| values[position].normalized()).collect();
        projected.entry(id.clone()).or_default().push(row);
    }
    for versions in projected.values_mut() {
        versions.sort();
    }
    projected
}

/// The content hash of one projected row (see the module documentation).
pub fn row_content_hash(shared: &[String], row: &[Option<String>]) -> String {
    let mut object = serde_json::Map::new();
    for (name, value) in shared.iter().zip(row) {
        if let Some(value) = value {
            object.insert(name.clone(), serde_json::Value::String(value.clone()));
        }
    }
    // serde_json's map is ordered by key, so the text is canonical.
    let digest = Sha256::digest(serde_json::Value::Object(object).to_string().as_bytes());
    digest[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn table_content_hash(shared: &[String], projected: &Projected) -> String {
    let mut hasher = Sha256::new();
    for (id, versions) in projected {
        for row in versions {
            hasher.update(id.as_bytes());
            hasher.update([0]);
            hasher.update(row_content_hash(shared, row).as_bytes());
            hasher.update(b"\n");
        }
    }
    hasher.finalize()[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares the active rows of one table on two sides; `sample` bounds every list of ids.
pub fn compare_tables(table: &str, left: Option<&ActiveRows>, right: Option<&ActiveRows>, sample: usize) -> TableComparison {
    let empty = ActiveRows::default();
    let (left_rows, right_rows) = (left.unwrap_or(&empty), right.unwrap_or(&empty));
    let left_columns: BTreeSet<&String> = left_rows.columns.iter().collect();
    let right_columns: BTreeSet<&String> = right_rows.columns.iter().collect();
    let shared: Vec<String> = left_columns.intersection(&right_columns).map(|name| (*name).clone()).collect();
    let mut comparison = TableComparison {
        table: table.to_string(),
        left_exists: left.is_some(),
        right_exists: right.is_some(),
        left_active: left_rows.rows.len() as u64,
        right_active: right_rows.rows.len() as u64,
        ..TableComparison::default()
    };
    if left.is_some() && right.is_some() {
        comparison.left_only_columns = left_columns.difference(&right_columns).map(|name| (*name).clone()).collect();
        comparison.right_only_columns = right_columns.difference(&left_columns).map(|name| (*name).clone()).collect();
    }
    let left_projected = project(left_rows, &shared);
    let right_projected = project(right_rows, &shared);
    for (id, versions) in &left_projected {
        if versions.len() > 1 {
            comparison.left_several_active.push(id, sample);
        }
        let Some(other) = right_projected.get(id) else {
            comparison.left_only_ids.push(id, sample);
            continue;
        };
        // An id matches when one of its active rows is the same on both sides; extra active rows
        // are reported as such, not as field mismatches.
        if versions.iter().any(|row| other.contains(row)) {
            continue;
        }
        comparison.mismatched_ids += 1;
        if comparison.mismatches.len() < sample {
            let (mine, theirs) = (&versions[0], &other[0]);
            let columns = shared
                .iter()
                .enumerate()
                .filter(|(index, _)| mine[*index] != theirs[*index])
                .map(|(index, column)| ColumnDifference {
                    column: column.clone(),
                    left: mine[index].clone(),
                    right: theirs[index].clone(),
                })
                .collect();
            comparison.mismatches.push(FieldMismatch { id: id.clone(), columns });
        }
    }
    for (id, versions) in &right_projected {
        if versions.len() > 1 {
            comparison.right_several_active.push(id, sample);
        }
        if !left_projected.contains_key(id) {
            comparison.right_only_ids.push(id, sample);
        }
    }
    comparison.left_content_hash = table_content_hash(&shared, &left_projected);
    comparison.right_content_hash = table_content_hash(&shared, &right_projected);
    comparison
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The tables; empty compares every history table found on either side.
    pub tables: Vec<String>,
    /// The profile of the left side.
    pub left_profile: HistoryProfile,
    /// The profile of the right side.
    pub right_profile: HistoryProfile,
    /// The id column (the same name on both sides).
    pub primary_key: String,
    /// How many ids to list per kind of difference.
    pub sample: usize,
}

/// Compares tables on two readers.
pub async fn compare(
    left: &dyn HistoryReader,
    right: &dyn HistoryReader,
    options: &CompareOptions,
) -> Result<Vec<TableComparison>, DestinationError> {
    let tables: Vec<String> = if options.tables.is_empty() {
        let mut found: BTreeSet<String> = left.history_tables(&options.left_profile).await?.into_iter().collect();
        found.extend(right.history_tables(&options.right_profile).await?);
        found.into_iter().collect()
    } else {
        options.tables.clone()
    };
    let mut comparisons = Vec::with_capacity(tables.len());
    for table in &tables {
        let left_rows = left.active_rows(table, &options.primary_key, &options.left_profile).await?;
        let right_rows = right.active_rows(table, &options.primary_key, &options.right_profile).await?;
        comparisons.push(compare_tables(table, left_rows.as_ref(), right_rows.as_ref(), options.sample));
    }
    Ok(comparisons)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The differences both planted-difference tests plant: id 3 only on the left, id 6 only
    /// on the right, a second active row of id 1 on the right, and id 2 renamed.
    fn assert_finds_the_planted_differences(table: &TableComparison) {
        assert!(table.differs());
        assert_eq!(table.left_only_ids.sample, ["3"]);
        assert_eq!(table.right_only_ids.sample, ["6"]);
        assert_eq!(table.right_several_active.sample, ["1"]);
        assert!(table.left_several_active.sample.is_empty());
        let two = table.mismatches.iter().find(|mismatch| mismatch.id == "2").expect("id 2 differs");
        let columns: Vec<&str> = two.columns.iter().map(|difference| difference.column.as_str()).collect();
        assert_eq!(columns, ["name", "update_time"]);
        assert_eq!(two.columns[0].right.as_deref(), Some("renamed"));
        assert_eq!(table.mismatched_ids, 1, "only id 2 differs in content");
        assert_ne!(table.left_content_hash, table.right_content_hash);
    }

    fn rows(columns: &[&str], rows: Vec<(&str, Vec<FieldValue>)>) -> ActiveRows {
        ActiveRows {
            columns: columns.iter().map(|name| name.to_string()).collect(),
            rows: rows.into_iter().map(|(id, values)| (id.to_string(), values)).collect(),
        }
    }

    #[test]
    fn values_normalize_across_types() {
        assert_eq!(FieldValue::Float(5.0).normalized(), FieldValue::Int(5).normalized());
        assert_eq!(FieldValue::Float(5.5).normalized().as_deref(), Some("5.5"));
        assert_eq!(
            FieldValue::Timestamp(1_000).normalized().as_deref(),
            Some("1970-01-01T00:00:01.000Z")
        );
        assert_eq!(FieldValue::Null.normalized(), None);
    }

    #[test]
    fn equal_tables_report_nothing() {
        let left = rows(&["id", "name"], vec![("1", vec![FieldValue::Int(1), FieldValue::Text("a".into())])]);
        let right = rows(
            &["name", "id"],
            vec![("1", vec![FieldValue::Text("a".into()), FieldValue::Float(1.0)])],
        );
        let comparison = compare_tables("t", Some(&left), Some(&right), 5);
        assert!(!comparison.differs(), "{comparison:?}");
        assert_eq!(comparison.left_content_hash, comparison.right_content_hash);
    }

    #[test]
    fn planted_differences_are_found() {
        let value = |id: i64, name: &str| vec![FieldValue::Int(id), FieldValue::Text(name.into())];
        let left = rows(
            &["id", "name", "old"],
            vec![("1", value(1, "a")), ("2", value(2, "b")), ("3", value(3, "c"))],
        );
        let left = ActiveRows {
            rows: left
                .rows
                .into_iter()
                .map(|(id, mut values)| {
                    values.push(FieldValue::Null);
                    (id, values)
                })
                .collect(),
            ..left
        };
        let right = rows(
            &["id", "name"],
            vec![
                ("1", value(1, "a")),
                ("2", value(2, "B")),
                ("4", value(4, "d")),
                ("1", value(1, "a2")),
            ],
        );
        let comparison = compare_tables("t", Some(&left), Some(&right), 5);
        assert!(comparison.differs());
        assert_eq!(comparison.left_only_columns, ["old"]);
        assert_eq!(comparison.left_only_ids.sample, ["3"]);
        assert_eq!(comparison.right_only_ids.sample, ["4"]);
        assert_eq!(comparison.right_several_active.sample, ["1"]);
        assert_eq!(comparison.mismatched_ids, 1, "id 2 changed; id 1's extra row is reported apart");
        let two = &comparison.mismatches[0];
        assert_eq!(two.id, "2");
        assert_eq!(
            two.columns,
            [ColumnDifference {
                column: "name".into(),
                left: Some("b".into()),
                right: Some("B".into())
            }]
        );
        assert_ne!(comparison.left_content_hash, comparison.right_content_hash);
        let json = comparison.to_json();
        assert_eq!(json["differs"], true);
        assert_eq!(json["mismatches"][0]["columns"][0]["column"], "name");
    }

    #[test]
    fn a_missing_table_differs() {
        let left = rows(&["id"], vec![]);
        assert!(compare_tables("t", Some(&left), None, 5).differs());
    }

    #[test]
    fn profiles_parse() {
        assert_eq!(parse_profile("cdc").unwrap().active_column, "_cdc_active");
        assert_eq!(parse_profile("prefix:_sl_").unwrap().start_column, "_sl_start");
        assert!(parse_profile("prefix:").is_none());
        assert!(parse_profile("nope").is_none());
    }

    /// Writes deals through the history writer, as syncline would.
    async fn write_deals(
        destination: &dyn crate::Destination,
        state: &dyn syncline_state::StateStore,
        profile: HistoryProfile,
        deals: Vec<serde_json::Value>,
        time: i64,
    ) {
        use syncline_core::{flatten_record, row_hash, NamingOptions, Observation, ObservationKind};
        let target = crate::HistoryTarget {
            source: "s".into(),
            entity: "deal".into(),
            table: "deal_history".into(),
            primary_key: "id".into(),
            profile,
            timestamp_columns: ["update_time".to_string()].into(),
        };
        let mut writer = crate::HistoryWriter::new(destination, state, target);
        let batch = deals
            .into_iter()
            .map(|deal| {
                let flat = flatten_record(deal, NamingOptions::default()).unwrap();
                let id = flat.primary_key("id").unwrap();
                let hash = row_hash(&flat);
                crate::Observed {
                    observation: Observation {
                        id,
                        time,
                        kind: ObservationKind::Upsert {
                            record: flat,
                            row_hash: hash,
                        },
                    },
                    raw: None,
                    terminal: false,
                }
            })
            .collect();
        writer.write(batch, time + 1).await.unwrap();
    }

    fn deal(id: i64, name: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id, "name": name, "value": id as f64 * 1.5, "won": id % 2 == 0,
            "update_time": "2024-01-15T10:20:30.123Z", "owner": {"name": "Ann"}, "tags": ["a", "b"],
            "note": "tab\there, quote ' and \\ backslash"
        })
    }

    #[tokio::test]
    async fn postgres_and_duckdb_compare_equal_then_find_planted_differences() {
        let Some(test) = crate::postgres::testing::TestSchema::new("syncline_compare").await else {
            return;
        };
        let directory = tempfile::tempdir().unwrap();
        let duckdb = DuckDbDestination::new(directory.path().join("old.duckdb"));
        let fivetran = parse_profile("fivetran").unwrap();
        let cdc = parse_profile("cdc").unwrap();
        let deals: Vec<_> = (1..=5).map(|id| deal(id, &format!("deal {id}"))).collect();
        let (left_state, right_state) = (
            syncline_state::SqliteStateStore::in_memory().unwrap(),
            syncline_state::SqliteStateStore::in_memory().unwrap(),
        );
        write_deals(&duckdb, &left_state, fivetran.clone(), deals.clone(), 1_000).await;
        write_deals(&test.destination, &right_state, cdc.clone(), deals, 2_000).await;
        let options = CompareOptions {
            tables: Vec::new(),
            left_profile: fivetran,
            right_profile: cdc.clone(),
            primary_key: "id".into(),
            sample: 10,
        };
        let equal = compare(&duckdb, &test.destination, &options).await.unwrap();
        assert_eq!(equal.len(), 1, "the one history table is found on both sides");
        assert!(!equal[0].differs(), "equal data must compare equal: {:?}", equal[0]);
        assert_eq!(equal[0].left_active, 5);

        // plant: id 3 missing on the right, id 6 extra, id 2 changed, id 1 with a second active row
        let mut changed = deal(2, "renamed");
        changed["update_time"] = serde_json::json!("2024-01-16T00:00:00Z");
        write_deals(&test.destination, &right_state, cdc.clone(), vec![changed, deal(6, "new")], 3_000).await;
        {
            let guard = test.destination.client().await.unwrap();
            let client = guard.as_ref().unwrap();
            let table = test.destination.qualified("deal_history").unwrap();
            client
                .batch_execute(&format!(
                    "UPDATE {table} SET _cdc_active = false, _cdc_end = _cdc_start WHERE id = 3;
                     INSERT INTO {table} (id, name, _cdc_start, _cdc_active, _cdc_synced, _row_hash)
                     SELECT id, 'duplicate', _cdc_start + interval '1 second', true, _cdc_synced, 'x' FROM {table} WHERE id = 1;"
                ))
                .await
                .unwrap();
        }
        let report = compare(&duckdb, &test.destination, &options).await.unwrap();
        assert_finds_the_planted_differences(&report[0]);
        test.drop_schema().await;
    }

    /// Runs a statement on the BigQuery test dataset (for planting differences).
    async fn bigquery_sql(test: &crate::bigquery::testing::TestDataset, sql: &str) {
        test.destination.execute_for_tests(sql).await.unwrap();
    }

    #[tokio::test]
    async fn postgres_and_bigquery_compare_equal_then_find_planted_differences() {
        let Some(postgres) = crate::postgres::testing::TestSchema::new("syncline_compare_bq").await else {
            return;
        };
        let Some(bigquery) = crate::bigquery::testing::TestDataset::new("compare").await else {
            return;
        };
        let fivetran = parse_profile("fivetran").unwrap();
        let cdc = parse_profile("cdc").unwrap();
        let deals: Vec<_> = (1..=5).map(|id| deal(id, &format!("deal {id}"))).collect();
        let (left_state, right_state) = (
            syncline_state::SqliteStateStore::in_memory().unwrap(),
            syncline_state::SqliteStateStore::in_memory().unwrap(),
        );
        write_deals(&postgres.destination, &left_state, fivetran.clone(), deals.clone(), 1_000).await;
        write_deals(&bigquery.destination, &right_state, cdc.clone(), deals, 2_000).await;
        let options = CompareOptions {
            tables: Vec::new(),
            left_profile: fivetran,
            right_profile: cdc.clone(),
            primary_key: "id".into(),
            sample: 10,
        };
        let equal = compare(&postgres.destination, &bigquery.destination, &options).await.unwrap();
        assert_eq!(equal.len(), 1, "the one history table is found on both sides: {equal:?}");
        assert!(!equal[0].differs(), "equal data must compare equal: {:?}", equal[0]);
        assert_eq!(equal[0].left_active, 5);

        // plant on BigQuery: id 3 missing, id 6 extra, id 2 changed, id 1 with a second active row
        let mut changed = deal(2, "renamed");
        changed["update_time"] = serde_json::json!("2024-01-16T00:00:00Z");
        write_deals(
            &bigquery.destination,
            &right_state,
            cdc.clone(),
            vec![changed, deal(6, "new")],
            3_000,
        )
        .await;
        let table = format!(
            "`{}`.`{}`.`deal_history`",
            bigquery.destination.project_for_tests(),
            bigquery.destination.dataset()
        );
        bigquery_sql(
            &bigquery,
            &format!("UPDATE {table} SET _cdc_active = FALSE, _cdc_end = _cdc_start WHERE id = 3"),
        )
        .await;
        bigquery_sql(
            &bigquery,
            &format!(
                "INSERT INTO {table} (id, name, _cdc_start, _cdc_active, _cdc_synced, _row_hash)
                 SELECT id, 'duplicate', TIMESTAMP_ADD(_cdc_start, INTERVAL 1 SECOND), TRUE, _cdc_synced, 'x' FROM {table} WHERE id = 1"
            ),
        )
        .await;
        let report = compare(&postgres.destination, &bigquery.destination, &options).await.unwrap();
        assert_finds_the_planted_differences(&report[0]);
        bigquery.drop_dataset().await;
        postgres.drop_schema().await;
    }

    #[tokio::test]
    async fn postgres_stores_nul_characters_as_replacement_characters() {
        let Some(test) = crate::postgres::testing::TestSchema::new("syncline_nul").await else {
            return;
        };
        let state = syncline_state::SqliteStateStore::in_memory().unwrap();
        let cdc = parse_profile("cdc").unwrap();
        let record = serde_json::json!({"id": 1, "note": "a\u{0}b"});
        write_deals(&test.destination, &state, cdc.clone(), vec![record], 1_000).await;
        let rows = test.destination.active_rows("deal_history", "id", &cdc).await.unwrap().unwrap();
        let note = rows.columns.iter().position(|column| column == "note").unwrap();
        assert_eq!(rows.rows[0].1[note], FieldValue::Text("a\u{FFFD}b".into()));
        test.drop_schema().await;
    }
}
