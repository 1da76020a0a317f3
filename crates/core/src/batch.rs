//! Turning a plan into the rows and column changes a destination writes.

use std::collections::HashSet;

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

/// The closing of a row written by an earlier batch. Destinations close the id's active row
/// when it starts no later than `end` (the index may be a version behind after a crash; see
/// `Destination::apply`).
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
    let (schema, schema_changes) = evolve_schema(profile, schema_before, timestamp_columns, observations, plan)?;
    let columns = ColumnLookup::new(&schema);
    let mut rows = Vec::with_capacity(plan.versions.len());
    for version in &plan.versions {
        let ObservationKind::Upsert { record, row_hash } = &observations[version.observation].kind else {
            continue;
        };
        let mut values = vec![CellValue::Null; schema.columns.len()];
        for (name, value) in &record.fields {
            if let Some(position) = columns.position(name) {
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
    Ok(finish_batch(
        table,
        primary_key,
        profile,
        schema,
        schema_changes,
        rows,
        plan,
        synced_at,
    ))
}

/// As [`assemble_batch`], but takes the observations and moves their values into the rows
/// instead of copying them (for bulk loads, where the observations are not needed after).
#[allow(clippy::too_many_arguments)]
pub fn assemble_batch_owned(
    table: &str,
    primary_key: &str,
    profile: &HistoryProfile,
    schema_before: &TableSchema,
    timestamp_columns: &HashSet<String>,
    mut observations: Vec<Observation>,
    plan: &Plan,
    synced_at: Millis,
) -> Result<HistoryBatch, CoreError> {
    let (schema, schema_changes) = evolve_schema(profile, schema_before, timestamp_columns, &observations, plan)?;
    let columns = ColumnLookup::new(&schema);
    let mut rows = Vec::with_capacity(plan.versions.len());
    for version in &plan.versions {
        // Each observation holds at most one planned version, so taking its values is safe.
        let ObservationKind::Upsert { record, row_hash } = &mut observations[version.observation].kind else {
            continue;
        };
        let mut values = vec![CellValue::Null; schema.columns.len()];
        for (name, value) in std::mem::take(&mut record.fields) {
            if let Some(position) = columns.position(&name) {
                values[position] = value.into_cell(schema.columns[position].column_type);
            }
        }
        rows.push(HistoryRow {
            start: version.start,
            end: version.end,
            row_hash: std::mem::take(row_hash),
            values,
        });
    }
    drop(observations);
    Ok(finish_batch(
        table,
        primary_key,
        profile,
        schema,
        schema_changes,
        rows,
        plan,
        synced_at,
    ))
}

/// The schema after a plan's new versions, and the changes that lead to it.
fn evolve_schema(
    profile: &HistoryProfile,
    schema_before: &TableSchema,
    timestamp_columns: &HashSet<String>,
    observations: &[Observation],
    plan: &Plan,
) -> Result<(TableSchema, Vec<SchemaChange>), CoreError> {
    let records = plan
        .versions
        .iter()
        .filter_map(|version| match &observations[version.observation].kind {
            ObservationKind::Upsert { record, .. } => Some(record),
            ObservationKind::Delete => None,
        });
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
    Ok((schema, schema_changes))
}

/// Column positions by name: a sorted list searched by bisection, cheaper than hashing every
/// field name of every record.
struct ColumnLookup<'a> {
    sorted: Vec<(&'a str, usize)>,
}

impl<'a> ColumnLookup<'a> {
    fn new(schema: &'a TableSchema) -> Self {
        let mut sorted: Vec<(&str, usize)> = schema
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| (column.name.as_str(), index))
            .collect();
        sorted.sort_unstable();
        Self { sorted }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.sorted
            .binary_search_by(|(column, _)| (*column).cmp(name))
            .ok()
            .map(|index| self.sorted[index].1)
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_batch(
    table: &str,
    primary_key: &str,
    profile: &HistoryProfile,
    schema: TableSchema,
    schema_changes: Vec<SchemaChange>,
    rows: Vec<HistoryRow>,
    plan: &Plan,
    synced_at: Millis,
) -> HistoryBatch {
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
    HistoryBatch {
        table: table.to_string(),
        primary_key: primary_key.to_string(),
        profile: profile.clone(),
        schema,
        schema_changes,
        rows,
        closes,
        synced_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{flatten_record, NamingOptions};
    use crate::hash::row_hash;
    use crate::plan::{plan_history, CurrentVersion};
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn owned_and_borrowed_assembly_agree() {
        let observations: Vec<Observation> = [
            json!({"id": 1, "name": "a", "when": "2024-01-01 00:00:00", "org": {"id": 2}}),
            json!({"id": 2, "name": "b", "value": 1.5, "labels": [1]}),
            json!({"id": 3, "value": 2, "when": "not a time"}),
            json!({"id": 1, "name": "a2"}),
        ]
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let record = flatten_record(value, NamingOptions::default()).unwrap();
            Observation {
                id: record.primary_key("id").unwrap(),
                time: 1_000 + index as i64,
                kind: ObservationKind::Upsert {
                    row_hash: row_hash(&record),
                    record,
                },
            }
        })
        .chain([Observation {
            id: "9".into(),
            time: 5_000,
            kind: ObservationKind::Delete,
        }])
        .collect();
        let mut current = HashMap::new();
        current.insert(
            "9".to_string(),
            CurrentVersion {
                start: 1,
                end: None,
                row_hash: "h".into(),
                modified: 1,
                hashes_at_modified: vec!["h".into()],
            },
        );
        let plan = plan_history(&current, &observations);
        let timestamps: HashSet<String> = ["when".to_string()].into();
        let profile = HistoryProfile::default();
        let borrowed = assemble_batch("t", "id", &profile, &TableSchema::default(), &timestamps, &observations, &plan, 7).unwrap();
        let owned = assemble_batch_owned("t", "id", &profile, &TableSchema::default(), &timestamps, observations, &plan, 7).unwrap();
        assert_eq!(borrowed, owned);
        assert_eq!(owned.rows.len(), 4);
        assert_eq!(owned.closes.len(), 1);
    }
}
