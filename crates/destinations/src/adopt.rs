//! `syncline adopt`: carries a table's history over from the old connector.
//!
//! The old connector's history table (Fivetran's layout, or another prefix such as `_cdc_`) is
//! read from any destination syncline reads ([`HistoryReader`]), checked, and written into
//! syncline's table with its versions' starts and ends, and the latest version of every id goes
//! into the current-record index. From then on syncline continues from the adopted active rows:
//! a record fetched with the same content has the same row hash and writes nothing.
//!
//! Checks are per id and nothing is repaired: two active rows, windows that overlap or end
//! before they start, an active row that is not the id's last version, a missing start, or two
//! versions with the same start. Any such id stops the adoption before anything is written, and
//! every one is reported. Re-running an adoption that finished is a no-op (a marker in the state
//! store records it).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use syncline_core::{
    assemble_batch, format_timestamp, row_hash, CurrentVersion, FlatRecord, FlatValue, HistoryProfile, Millis, Observation,
    ObservationKind, Plan, PlannedVersion, StartSetting,
};
use syncline_state::{IndexWrite, StateStore};

use crate::compare::{FieldValue, HistoryReader, RowSelection};
use crate::writer::{max_start_marker, resolve_start_setting, start_setting_marker, stored_start_setting, HistoryTarget, WriteError};
use crate::{Destination, DestinationError};

/// Rows per destination transaction.
const ROWS_PER_BATCH: usize = 10_000;

/// How TIMESTAMP values of record columns become text again for the row hash: the text the
/// API sends, so that a record fetched later with the same content hashes the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampText {
    /// `2024-01-15 10:20:30` (Pipedrive), with `.123` when the milliseconds are not zero.
    #[default]
    SpaceSeconds,
    /// `2024-01-15T10:20:30.000Z` (Zoho Desk and most RFC 3339 APIs).
    IsoMillis,
    /// `2024-01-15T10:20:30Z` (Pipedrive API v2), with `.123` when the milliseconds are not zero.
    IsoSeconds,
}

impl TimestampText {
    fn render(self, millis: Millis) -> String {
        let iso = format_timestamp(millis);
        match self {
            TimestampText::IsoMillis => iso,
            TimestampText::SpaceSeconds if millis.rem_euclid(1000) == 0 => format!("{} {}", &iso[..10], &iso[11..19]),
            TimestampText::SpaceSeconds => format!("{} {}", &iso[..10], &iso[11..23]),
            TimestampText::IsoSeconds if millis.rem_euclid(1000) == 0 => format!("{}Z", &iso[..19]),
            TimestampText::IsoSeconds => iso,
        }
    }
}

/// What to adopt.
#[derive(Debug, Clone)]
pub struct AdoptOptions {
    /// The old connector's history table.
    pub old_table: String,
    /// The old table's profile (its metadata columns).
    pub old_profile: HistoryProfile,
    /// How TIMESTAMP record values are rendered for the row hash.
    pub timestamp_text: TimestampText,
    /// The record's modified-time column, if the entity has one: the index keeps its value as
    /// the latest version's modified time (else the version's start), so older observations
    /// are recognised as stale.
    pub modified_column: Option<String>,
    /// When syncline writes (the synced column of the adopted rows and the markers).
    pub now: Millis,
}

/// Why an id of the old table cannot be adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptProblem {
    /// More than one row of the id is active.
    SeveralActive {
        /// How many.
        count: usize,
    },
    /// A window ends before it starts, or overlaps the next one.
    OverlappingWindows {
        /// The start of the first offending version.
        start: Millis,
    },
    /// An active row is not the id's last version.
    ActiveNotLast {
        /// Its start.
        start: Millis,
    },
    /// A closed row has no end.
    MissingEnd {
        /// Its start.
        start: Millis,
    },
    /// A row has no start.
    MissingStart,
    /// Two versions share a start (the primary key).
    DuplicateStart {
        /// The start.
        start: Millis,
    },
}

impl std::fmt::Display for AdoptProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdoptProblem::SeveralActive { count } => write!(formatter, "{count} active rows"),
            AdoptProblem::OverlappingWindows { start } => write!(
                formatter,
                "the version starting {} ends before it starts or overlaps the next one",
                format_timestamp(*start)
            ),
            AdoptProblem::ActiveNotLast { start } => {
                write!(
                    formatter,
                    "the active version starting {} is not the last one",
                    format_timestamp(*start)
                )
            }
            AdoptProblem::MissingEnd { start } => write!(formatter, "the closed version starting {} has no end", format_timestamp(*start)),
            AdoptProblem::MissingStart => write!(formatter, "a row has no start"),
            AdoptProblem::DuplicateStart { start } => write!(formatter, "two versions start at {}", format_timestamp(*start)),
        }
    }
}

/// Errors of an adoption.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// Reading or writing a destination failed.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] syncline_state::StateError),
    /// Planning the rows failed, or the start setting conflicts.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The old table is missing.
    #[error("the old table `{0}` does not exist; check --from and --from-table")]
    MissingTable(String),
    /// The old table lacks a metadata column of its profile.
    #[error("the old table `{table}` has no column `{column}`; pass the old connector's profile with --from-profile (fivetran, cdc or prefix:_your_prefix_)")]
    MissingMetadata {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// syncline already wrote this table.
    #[error("syncline already holds {ids} ids of `{table}` in its state store; adopt into a table before syncline's first sync of it (another table, schema or file), or remove them first")]
    AlreadyWritten {
        /// The table.
        table: String,
        /// How many ids the index holds.
        ids: usize,
    },
    /// Some ids of the old table break the history contract; nothing was written.
    #[error("{} ids of the old table break the history contract and were not repaired; nothing was written: {}; fix them in the old table (or exclude them) and run again", .problems.len(), summary(.problems))]
    BadInput {
        /// Every bad id with its problem.
        problems: Vec<(String, AdoptProblem)>,
    },
}

fn summary(problems: &[(String, AdoptProblem)]) -> String {
    let mut text: Vec<String> = problems
        .iter()
        .take(20)
        .map(|(id, problem)| format!("id {id}: {problem}"))
        .collect();
    if problems.len() > 20 {
        text.push(format!("and {} more", problems.len() - 20));
    }
    text.join("; ")
}

/// What an adoption did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptReport {
    /// True when the table had been adopted already and nothing was written.
    pub already_adopted: bool,
    /// Versions written.
    pub versions: usize,
    /// Ids adopted.
    pub ids: usize,
    /// Of those, ids whose last version is closed (deleted in the old table).
    pub deleted_ids: usize,
    /// The table's start setting after the adoption.
    pub start: Option<StartSetting>,
}

/// The state-store marker recording a finished adoption.
pub fn adopted_marker(table: &str) -> String {
    format!("adopted.{table}")
}

/// One version read from the old table.
struct OldVersion {
    start: Millis,
    end: Option<Millis>,
    active: bool,
    record: FlatRecord,
    row_hash: String,
}

/// Adopts the old table into `target`'s table on `destination`, and its latest versions into
/// the index of `state`.
pub async fn adopt(
    old: &dyn HistoryReader,
    destination: &dyn Destination,
    state: &dyn StateStore,
    target: &HistoryTarget,
    options: &AdoptOptions,
) -> Result<AdoptReport, AdoptError> {
    let table = &target.table;
    if state.marker(&target.source, &adopted_marker(table)).await?.is_some() {
        return Ok(AdoptReport {
            already_adopted: true,
            ..AdoptReport::default()
        });
    }
    let existing = state.all_current_versions(&target.source, &target.entity).await?;
    if !existing.is_empty() {
        return Err(AdoptError::AlreadyWritten {
            table: table.clone(),
            ids: existing.len(),
        });
    }
    let schema_before = destination.table_schema(table, &target.profile).await?;
    let stored = stored_start_setting(state, &target.source, table, schema_before.is_some()).await?;
    let start_setting = resolve_start_setting(table, stored, target.profile.start)?;
    let (by_id, old_timestamp_columns) = read_old(old, &target.primary_key, options).await?;

    let mut problems = Vec::new();
    for (id, versions) in &by_id {
        if let Some(problem) = check_versions(versions) {
            problems.push((id.clone(), problem));
        }
    }
    if !problems.is_empty() {
        return Err(AdoptError::BadInput { problems });
    }

    // The rows, as a plan of versions with known starts and ends.
    let mut observations = Vec::new();
    let mut planned = Vec::new();
    let mut index = Vec::with_capacity(by_id.len());
    let mut timestamp_columns: HashSet<String> = target.timestamp_columns.clone();
    timestamp_columns.extend(old_timestamp_columns);
    let mut report = AdoptReport {
        start: Some(start_setting),
        ..AdoptReport::default()
    };
    let mut max_start = Millis::MIN;
    for (id, versions) in by_id {
        let last = versions.last().expect("every id has a version");
        let modified = options
            .modified_column
            .as_deref()
            .and_then(|column| last.record.get(column))
            .and_then(|value| match value {
                FlatValue::Text(text) => syncline_core::parse_timestamp(text),
                _ => None,
            })
            .unwrap_or(last.start)
            .max(last.start);
        let deleted = !last.active;
        let end = if deleted { last.end } else { None };
        index.push(IndexWrite {
            id: id.clone(),
            version: CurrentVersion {
                start: last.start,
                end,
                row_hash: last.row_hash.clone(),
                modified: if deleted { end.unwrap_or(modified).max(modified) } else { modified },
                hashes_at_modified: if deleted { Vec::new() } else { vec![last.row_hash.clone()] },
            },
            terminal: false,
            record: Some(record_json(&last.record)),
        });
        report.ids += 1;
        report.deleted_ids += usize::from(deleted);
        for version in versions {
            max_start = max_start.max(version.start);
            planned.push(PlannedVersion {
                observation: observations.len(),
                id: id.clone(),
                start: version.start,
                end: if version.active { None } else { version.end },
            });
            observations.push(Observation {
                id: id.clone(),
                time: version.start,
                kind: ObservationKind::Upsert {
                    record: version.record,
                    row_hash: version.row_hash,
                },
            });
        }
    }

    let mut schema = schema_before.unwrap_or_default();
    for chunk in planned.chunks(ROWS_PER_BATCH) {
        let plan = Plan {
            versions: chunk.to_vec(),
            ..Plan::default()
        };
        let batch = assemble_batch(
            table,
            &target.primary_key,
            &target.profile,
            &schema,
            &timestamp_columns,
            &observations,
            &plan,
            options.now,
        )
        .map_err(WriteError::from)?;
        schema = batch.schema.clone();
        report.versions += batch.rows.len();
        destination.apply(Arc::new(batch)).await?;
    }
    for chunk in index.chunks(ROWS_PER_BATCH) {
        state
            .write_index(&target.source, &target.entity, chunk.to_vec(), options.now)
            .await?;
    }
    let source = &target.source;
    state
        .set_marker(source, &start_setting_marker(table), start_setting.as_str(), options.now)
        .await?;
    if max_start > Millis::MIN {
        state
            .set_marker(source, &max_start_marker(table), &max_start.to_string(), options.now)
            .await?;
    }
    let summary = serde_json::json!({
        "from_table": options.old_table,
        "versions": report.versions,
        "ids": report.ids,
        "at": format_timestamp(options.now),
    });
    state
        .set_marker(source, &adopted_marker(table), &summary.to_string(), options.now)
        .await?;
    Ok(report)
}

/// Versions of the old table by id.
type OldHistory = BTreeMap<String, Vec<OldVersion>>;

/// Reads every row of the old table, grouped by id and ordered by start, and the record
/// columns that hold timestamps.
async fn read_old(old: &dyn HistoryReader, primary_key: &str, options: &AdoptOptions) -> Result<(OldHistory, Vec<String>), AdoptError> {
    let profile = &options.old_profile;
    let rows = old
        .rows(&options.old_table, primary_key, profile, RowSelection::Every)
        .await?
        .ok_or_else(|| AdoptError::MissingTable(options.old_table.clone()))?;
    let position = |name: &str| rows.columns.iter().position(|column| column == name);
    let required = |name: &str| {
        position(name).ok_or_else(|| AdoptError::MissingMetadata {
            table: options.old_table.clone(),
            column: name.to_string(),
        })
    };
    let start_at = required(&profile.start_column)?;
    let end_at = required(&profile.end_column)?;
    let active_at = required(&profile.active_column)?;
    let hash_at = position(&profile.hash_column);
    let metadata = profile.metadata_columns();
    let record_columns: Vec<(usize, &String)> = rows
        .columns
        .iter()
        .enumerate()
        .filter(|(_, name)| !metadata.contains(&name.as_str()))
        .collect();
    let timestamp_columns: Vec<String> = record_columns
        .iter()
        .filter(|(position, _)| {
            rows.rows
                .iter()
                .any(|(_, values)| matches!(values[*position], FieldValue::Timestamp(_)))
        })
        .map(|(_, name)| (*name).clone())
        .collect();
    let mut by_id: OldHistory = BTreeMap::new();
    let mut missing_start: Vec<String> = Vec::new();
    for (id, values) in &rows.rows {
        let start = match &values[start_at] {
            FieldValue::Timestamp(millis) => *millis,
            _ => {
                missing_start.push(id.clone());
                continue;
            }
        };
        let end = match &values[end_at] {
            FieldValue::Timestamp(millis) => Some(*millis),
            _ => None,
        };
        let active = matches!(values[active_at], FieldValue::Bool(true));
        let mut fields: Vec<(String, FlatValue)> = record_columns
            .iter()
            .map(|(position, name)| ((*name).clone(), flat_value(&values[*position], options.timestamp_text)))
            .collect();
        fields.sort_by(|left, right| left.0.cmp(&right.0));
        let record = FlatRecord { fields };
        let stored_hash = hash_at.and_then(|position| match &values[position] {
            FieldValue::Text(text) if !text.is_empty() => Some(text.clone()),
            _ => None,
        });
        let row_hash = stored_hash.unwrap_or_else(|| row_hash(&record));
        by_id.entry(id.clone()).or_default().push(OldVersion {
            start,
            end,
            active,
            record,
            row_hash,
        });
    }
    for versions in by_id.values_mut() {
        versions.sort_by_key(|version| version.start);
    }
    if !missing_start.is_empty() {
        return Err(AdoptError::BadInput {
            problems: missing_start.into_iter().map(|id| (id, AdoptProblem::MissingStart)).collect(),
        });
    }
    Ok((by_id, timestamp_columns))
}

/// The first problem of an id's versions (ordered by start), if any.
fn check_versions(versions: &[OldVersion]) -> Option<AdoptProblem> {
    let active = versions.iter().filter(|version| version.active).count();
    if active > 1 {
        return Some(AdoptProblem::SeveralActive { count: active });
    }
    for (index, version) in versions.iter().enumerate() {
        let next = versions.get(index + 1);
        if let Some(next) = next {
            if next.start == version.start {
                return Some(AdoptProblem::DuplicateStart { start: version.start });
            }
            if version.active {
                return Some(AdoptProblem::ActiveNotLast { start: version.start });
            }
        }
        if version.active {
            continue;
        }
        let Some(end) = version.end else {
            return Some(AdoptProblem::MissingEnd { start: version.start });
        };
        if end < version.start || next.is_some_and(|next| end >= next.start) {
            return Some(AdoptProblem::OverlappingWindows { start: version.start });
        }
    }
    None
}

fn flat_value(value: &FieldValue, timestamps: TimestampText) -> FlatValue {
    match value {
        FieldValue::Null => FlatValue::Null,
        FieldValue::Bool(flag) => FlatValue::Bool(*flag),
        FieldValue::Int(number) => FlatValue::Int(*number),
        // An API sends an integral number as an integer (a DOUBLE column holds both).
        FieldValue::Float(number) if number.fract() == 0.0 && number.abs() < 9.0e15 => FlatValue::Int(*number as i64),
        FieldValue::Float(number) => FlatValue::Float(*number),
        FieldValue::Timestamp(millis) => FlatValue::Text(timestamps.render(*millis)),
        FieldValue::Text(text) => FlatValue::Text(text.clone()),
    }
}

/// The record's JSON for the index: its non-null fields.
fn record_json(record: &FlatRecord) -> String {
    let mut object = serde_json::Map::new();
    for (name, value) in &record.fields {
        let json = match value {
            FlatValue::Null => continue,
            FlatValue::Bool(flag) => serde_json::Value::Bool(*flag),
            FlatValue::Int(number) => serde_json::Value::from(*number),
            FlatValue::Float(number) => serde_json::Number::from_f64(*number).map_or(serde_json::Value::Null, serde_json::Value::Number),
            FlatValue::Text(text) | FlatValue::Json(text) => serde_json::Value::String(text.clone()),
        };
        object.insert(name.clone(), json);
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{compare, CompareOptions};
    use crate::writer::{HistoryWriter, Observed};
    use crate::{DuckDbDestination, StoredVersion};
    use serde_json::json;
    use syncline_core::{flatten_record, parse_timestamp, NamingOptions};
    use syncline_state::SqliteStateStore;

    /// The old connector's table, in Fivetran's layout: id 1 has three versions, two of them
    /// in the same second; id 2 was deleted; id 3 was deleted and re-created; id 4 has one
    /// version.
    const OLD_TABLE: &str = "
        CREATE TABLE {schema}.deal_history (
            id BIGINT, title VARCHAR, status VARCHAR, value DOUBLE PRECISION, update_time TIMESTAMP,
            _fivetran_start TIMESTAMP, _fivetran_end TIMESTAMP, _fivetran_active BOOLEAN, _fivetran_synced TIMESTAMP);
        INSERT INTO {schema}.deal_history VALUES
            (1, 'one', 'open', 10, '2026-01-01 10:00:00', '2026-01-01 10:00:00', '2026-01-01 10:00:00', false, '2026-01-01 10:05:00'),
            (1, 'one', 'open', 12.5, '2026-01-01 10:00:00', '2026-01-01 10:00:00.001', '2026-01-01 10:59:59.999', false, '2026-01-01 11:05:00'),
            (1, 'one', 'lost', 12.5, '2026-01-01 11:00:00', '2026-01-01 11:00:00', '9999-12-31 23:59:59', true, '2026-01-01 11:05:00'),
            (2, 'two', 'open', 20, '2026-01-01 09:00:00', '2026-01-01 09:00:00', '2026-01-01 12:00:00', false, '2026-01-01 12:05:00'),
            (3, 'three', 'open', 30, '2026-01-01 08:00:00', '2026-01-01 08:00:00', '2026-01-01 09:00:00', false, '2026-01-01 09:05:00'),
            (3, 'three', 'won', 30, '2026-01-01 13:00:00', '2026-01-01 13:00:00', '9999-12-31 23:59:59', true, '2026-01-01 13:05:00'),
            (4, 'four', 'open', 40, '2026-01-01 07:00:00', '2026-01-01 07:00:00', '9999-12-31 23:59:59', true, '2026-01-01 07:05:00');";

    /// What the old connector writes for the changes the test then sends syncline: id 1 won,
    /// id 5 created.
    const OLD_CHANGES: &str = "
        UPDATE {schema}.deal_history SET _fivetran_end = '2026-01-01 13:59:59.999', _fivetran_active = false
            WHERE id = 1 AND _fivetran_active;
        INSERT INTO {schema}.deal_history VALUES
            (1, 'one', 'won', 12.5, '2026-01-01 14:00:00', '2026-01-01 14:00:00', '9999-12-31 23:59:59', true, '2026-01-01 14:05:00'),
            (5, 'five', 'open', 50, '2026-01-01 14:00:00', '2026-01-01 14:00:00', '9999-12-31 23:59:59', true, '2026-01-01 14:05:00');";

    /// Two ids that break the contract: two active rows, and overlapping windows.
    const BAD_TABLE: &str = "
        CREATE TABLE {schema}.bad_history (
            id BIGINT, title VARCHAR, _fivetran_start TIMESTAMP, _fivetran_end TIMESTAMP, _fivetran_active BOOLEAN, _fivetran_synced TIMESTAMP);
        INSERT INTO {schema}.bad_history VALUES
            (7, 'a', '2026-01-01 10:00:00', '9999-12-31 23:59:59', true, '2026-01-01 10:00:00'),
            (7, 'b', '2026-01-01 11:00:00', '9999-12-31 23:59:59', true, '2026-01-01 11:00:00'),
            (8, 'a', '2026-01-01 10:00:00', '2026-01-01 12:00:00', false, '2026-01-01 10:00:00'),
            (8, 'b', '2026-01-01 11:00:00', '9999-12-31 23:59:59', true, '2026-01-01 11:00:00'),
            (9, 'fine', '2026-01-01 10:00:00', '9999-12-31 23:59:59', true, '2026-01-01 10:00:00');";

    fn target(table: &str) -> HistoryTarget {
        HistoryTarget {
            source: "pipedrive".into(),
            entity: "deal".into(),
            table: table.into(),
            primary_key: "id".into(),
            profile: HistoryProfile::default().with_start(StartSetting::Observed),
            timestamp_columns: ["update_time".to_string()].into(),
        }
    }

    fn options(old_table: &str) -> AdoptOptions {
        AdoptOptions {
            old_table: old_table.into(),
            old_profile: HistoryProfile::default(),
            timestamp_text: TimestampText::SpaceSeconds,
            modified_column: Some("update_time".into()),
            now: parse_timestamp("2026-01-02 00:00:00").unwrap(),
        }
    }

    fn fetched(record: serde_json::Value) -> Observed {
        let time = parse_timestamp(record["update_time"].as_str().unwrap()).unwrap();
        let raw = record.to_string();
        let flat = flatten_record(record, NamingOptions::default()).unwrap();
        Observed {
            observation: Observation {
                id: flat.primary_key("id").unwrap(),
                time,
                kind: ObservationKind::Upsert {
                    row_hash: row_hash(&flat),
                    record: flat,
                },
            },
            raw: Some(raw),
            terminal: false,
        }
    }

    fn windows(versions: &[StoredVersion]) -> Vec<(String, Millis, Option<Millis>, bool)> {
        versions
            .iter()
            .map(|version| (version.id.clone(), version.start, version.end, version.active))
            .collect()
    }

    /// The whole cutover on one pair of backends: adopt, re-run (a no-op), continue with
    /// fetched records (one unchanged, one changed, one new), and compare with the old table
    /// after the old connector saw the same changes.
    async fn adopt_then_continue(
        old: &dyn HistoryReader,
        new: &(dyn Destination + Sync),
        new_reader: &dyn HistoryReader,
        change_old: impl std::future::Future<Output = ()>,
    ) {
        let state = SqliteStateStore::in_memory().unwrap();
        let target = target("deal_history");
        let report = adopt(old, new, &state, &target, &options("deal_history")).await.expect("adopt");
        assert_eq!((report.versions, report.ids, report.deleted_ids), (7, 4, 1), "{report:?}");
        assert_eq!(report.start, Some(StartSetting::Observed), "the target asks for observed starts");
        let profile = HistoryProfile::default();
        let adopted = new.read_versions("deal_history", "id", &profile).await.unwrap();
        let t = |text: &str| parse_timestamp(text).unwrap();
        assert_eq!(
            windows(&adopted),
            vec![
                ("1".into(), t("2026-01-01 10:00:00"), Some(t("2026-01-01 10:00:00")), false),
                ("1".into(), t("2026-01-01 10:00:00.001"), Some(t("2026-01-01 10:59:59.999")), false),
                ("1".into(), t("2026-01-01 11:00:00"), None, true),
                ("2".into(), t("2026-01-01 09:00:00"), Some(t("2026-01-01 12:00:00")), false),
                ("3".into(), t("2026-01-01 08:00:00"), Some(t("2026-01-01 09:00:00")), false),
                ("3".into(), t("2026-01-01 13:00:00"), None, true),
                ("4".into(), t("2026-01-01 07:00:00"), None, true),
            ]
        );
        assert!(new.check_history("deal_history", "id", &profile).await.unwrap().is_clean());
        let index = state.all_current_versions("pipedrive", "deal").await.unwrap();
        assert_eq!(index.len(), 4);
        assert_eq!(index["2"].end, Some(t("2026-01-01 12:00:00")), "the deleted id stays deleted");
        assert_eq!(index["1"].start, t("2026-01-01 11:00:00"));

        let again = adopt(old, new, &state, &target, &options("deal_history")).await.expect("re-run");
        assert!(again.already_adopted, "{again:?}");
        assert_eq!(new.read_versions("deal_history", "id", &profile).await.unwrap(), adopted);

        // syncline continues: the same content writes nothing, a change and a new id do.
        let mut writer = HistoryWriter::new(new, &state, target.clone());
        let stats = writer
            .write(
                vec![
                    fetched(json!({"id": 4, "title": "four", "status": "open", "value": 40, "update_time": "2026-01-01 07:00:00"})),
                    fetched(json!({"id": 3, "title": "three", "status": "won", "value": 30, "update_time": "2026-01-01 13:00:00"})),
                    fetched(json!({"id": 1, "title": "one", "status": "won", "value": 12.5, "update_time": "2026-01-01 14:00:00"})),
                    fetched(json!({"id": 5, "title": "five", "status": "open", "value": 50, "update_time": "2026-01-01 14:00:00"})),
                ],
                t("2026-01-02 01:00:00"),
            )
            .await
            .expect("continue");
        assert_eq!(
            (stats.plan.versions, stats.plan.unchanged, stats.plan.closed),
            (2, 2, 1),
            "{stats:?}"
        );
        let after = new.read_versions("deal_history", "id", &profile).await.unwrap();
        assert_eq!(after.len(), 9);
        assert!(
            after
                .iter()
                .filter(|version| version.start > t("2026-01-01 13:00:00"))
                .all(|version| version.start == t("2026-01-02 01:00:00")),
            "new versions start after every adopted one: {after:?}"
        );
        assert!(new.check_history("deal_history", "id", &profile).await.unwrap().is_clean());

        change_old.await;
        let comparison = compare(
            old,
            new_reader,
            &CompareOptions {
                tables: vec!["deal_history".into()],
                left_profile: profile.clone(),
                right_profile: profile.clone(),
                primary_key: "id".into(),
                sample: 5,
            },
        )
        .await
        .unwrap();
        assert!(!comparison[0].differs(), "{comparison:?}");
        assert_eq!(comparison[0].left_active, 4);
    }

    async fn bad_input_is_reported_per_id(old: &dyn HistoryReader, new: &dyn Destination) {
        let state = SqliteStateStore::in_memory().unwrap();
        let mut target = target("bad_history");
        target.timestamp_columns.clear();
        let mut options = options("bad_history");
        options.modified_column = None;
        let error = adopt(old, new, &state, &target, &options).await.expect_err("bad input");
        let AdoptError::BadInput { problems } = &error else {
            panic!("{error}");
        };
        assert_eq!(
            problems,
            &vec![
                ("7".to_string(), AdoptProblem::SeveralActive { count: 2 }),
                (
                    "8".to_string(),
                    AdoptProblem::OverlappingWindows {
                        start: parse_timestamp("2026-01-01 10:00:00").unwrap()
                    }
                ),
            ]
        );
        assert!(error.to_string().contains("id 7: 2 active rows"), "{error}");
        assert!(
            new.table_schema("bad_history", &HistoryProfile::default()).await.unwrap().is_none(),
            "nothing written"
        );
        assert!(state.all_current_versions("pipedrive", "deal").await.unwrap().is_empty());
    }

    fn duckdb_execute(path: &std::path::Path, sql: &str) {
        let connection = ::duckdb::Connection::open(path).unwrap();
        connection.execute_batch(&sql.replace("{schema}.", "")).unwrap();
    }

    #[tokio::test]
    async fn adopts_a_fivetran_table_from_duckdb_and_continues_with_parity() {
        let directory = tempfile::tempdir().unwrap();
        let old_path = directory.path().join("fivetran.duckdb");
        duckdb_execute(&old_path, OLD_TABLE);
        duckdb_execute(&old_path, BAD_TABLE);
        let old = DuckDbDestination::new(&old_path);
        let new = DuckDbDestination::new(directory.path().join("syncline.duckdb"));
        adopt_then_continue(&old, &new, &new, async { duckdb_execute(&old_path, OLD_CHANGES) }).await;
        bad_input_is_reported_per_id(&old, &new).await;
    }

    /// The test SQL in BigQuery's dialect, one statement at a time.
    async fn bigquery_execute(test: &crate::bigquery::testing::TestDataset, sql: &str) {
        let dataset = format!("`{}`.`{}`", test.destination.project_for_tests(), test.destination.dataset());
        let sql = sql
            .replace("{schema}X", &dataset)
            .replace("{schema}.", &format!("{dataset}."))
            .replace("DOUBLE PRECISION", "FLOAT64")
            .replace("BIGINT", "INT64")
            .replace("VARCHAR", "STRING")
            .replace("BOOLEAN", "BOOL");
        for statement in sql.split(';').map(str::trim).filter(|statement| !statement.is_empty()) {
            test.destination
                .execute_for_tests(statement)
                .await
                .unwrap_or_else(|error| panic!("{statement}: {error}"));
        }
    }

    #[tokio::test]
    async fn adopts_a_fivetran_table_from_bigquery_into_duckdb() {
        let Some(old) = crate::bigquery::testing::TestDataset::new("adopt").await else {
            return;
        };
        bigquery_execute(&old, "CREATE SCHEMA IF NOT EXISTS {schema}X").await;
        bigquery_execute(&old, OLD_TABLE).await;
        let directory = tempfile::tempdir().unwrap();
        let new = DuckDbDestination::new(directory.path().join("syncline.duckdb"));
        adopt_then_continue(&old.destination, &new, &new, bigquery_execute(&old, OLD_CHANGES)).await;
        old.drop_dataset().await;
    }

    #[tokio::test]
    async fn adopts_a_fivetran_table_from_postgres_and_continues_with_parity() {
        let Some(old) = crate::postgres::testing::TestSchema::new("adopt_old").await else {
            return;
        };
        let Some(new) = crate::postgres::testing::TestSchema::new("adopt_new").await else {
            return;
        };
        old.execute(OLD_TABLE).await;
        old.execute(BAD_TABLE).await;
        adopt_then_continue(&old.destination, &new.destination, &new.destination, old.execute(OLD_CHANGES)).await;
        bad_input_is_reported_per_id(&old.destination, &new.destination).await;
        old.drop_schema().await;
        new.drop_schema().await;
    }
}
