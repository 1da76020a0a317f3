//! Turning a plan into the rows and column changes a destination writes.

use std::collections::{HashMap, HashSet};

use crate::error::CoreError;
use crate::plan::{Observation, ObservationKind, Plan};
use crate::profile::HistoryProfile;
use crate::schema::{ColumnType, SchemaChange, TableSchema};
use crate::time::Millis;
use crate::value::CellValue;

/// A new history row: one version of one id.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// Version start.
    pub start: Millis,
    /// Version end; `None` while current (stored as the profile's open end).
    pub end: Option<Millis>,
    /// Row hash.
    pub row_hash: String,
    /// Record values, one per column of the batch schema, in schema order.
    pub values: Vec<CellValue>,
}

/// The closing of a row written by an earlier batch.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionClose {
    /// The id, typed as the primary-key column.
    pub id: CellValue,
    /// The start of the row to close.
    pub start: Millis,
    /// Its new end.
    pub end: Millis,
}

/// Everything a destination applies in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryBatch {
    /// The history table.
    pub table: String,
    /// The primary-key column (part of `schema`).
    pub primary_key: String,
    /// Metadata column names and open end.
    pub profile: HistoryProfile,
    /// The record columns after this batch.
    pub schema: TableSchema,
    /// Changes from the table's schema before this batch.
    pub schema_changes: Vec<SchemaChange>,
    /// Rows to insert (a replayed row that already exists is left as it is).
    pub rows: Vec<HistoryRow>,
    /// Existing rows to close.
    pub closes: Vec<VersionClose>,
    /// When syncline writes the batch (the synced column).
    pub synced_at: Millis,
}

impl HistoryBatch {
    /// True when applying the batch would change nothing.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.closes.is_empty() && self.schema_changes.is_empty()
    }
}

/// The id string typed for the primary-key column.
pub fn typed_id(id: &str, column_type: Option<ColumnType>) -> CellValue {
    match column_type {
        Some(ColumnType::BigInt) => id.parse().map_or_else(|_| CellValue::Text(id.to_string()), CellValue::Int),
        _ => CellValue::Text(id.to_string()),
    }
}

/// Builds the batch for a plan: infers the schema over the records of the new versions, types
/// every value for its column, and checks that no record column shadows a metadata column.
#[allow(clippy::too_many_arguments)]
pub fn assemble_batch(
    table: &str,
    primary_key: &str,
    profile: &HistoryProfile,
    schema_before: &TableSchema,
    timestamp_columns: &HashSet<String>,
    observations: &[Observation],
    plan: &Plan,
    synced_at: Millis,
) -> Result<HistoryBatch, CoreError> {
    let record_of = |index: usize| match &observations[index].kind {
        ObservationKind::Upsert { record, row_hash } => Some((record, row_hash)),
        ObservationKind::Delete => None,
    };
    let records = plan
        .versions
        .iter()
        .filter_map(|version| record_of(version.observation).map(|(record, _)| record));
    let (schema, schema_changes) = schema_before.evolve(records, timestamp_columns);
    let reserved = profile.metadata_columns();
    for change in &schema_changes {
        if let SchemaChange::AddColumn(column) = change {
            if reserved.contains(&column.name.as_str()) {
                return Err(CoreError::ReservedColumn {
                    column: column.name.clone(),
                });
            }
        }
    }
    let positions: HashMap<&str, usize> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(index, column)| (column.name.as_str(), index))
        .collect();
    let mut rows = Vec::with_capacity(plan.versions.len());
    for version in &plan.versions {
        let Some((record, row_hash)) = record_of(version.observation) else {
            continue;
        };
        let mut values = vec![CellValue::Null; schema.columns.len()];
        for (name, value) in &record.fields {
            if let Some(&position) = positions.get(name.as_str()) {
                values[position] = value.to_cell(schema.columns[position].column_type);
            }
        }
        rows.push(HistoryRow {
            start: version.start,
            end: version.end,
            row_hash: row_hash.clone(),
            values,
        });
    }
    let id_type = schema.column_type(primary_key);
    let closes = plan
        .closes
        .iter()
        .map(|close| VersionClose {
            id: typed_id(&close.id, id_type),
            start: close.start,
            end: close.end,
        })
        .collect();
    Ok(HistoryBatch {
        table: table.to_string(),
        primary_key: primary_key.to_string(),
        profile: profile.clone(),
        schema,
        schema_changes,
        rows,
        closes,
        synced_at,
    })
}
