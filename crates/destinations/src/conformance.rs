//! The conformance suite every [`Destination`] passes: the seven invariants of the
//! history-table contract on random batches (checked with queries in the warehouse and against
//! the in-memory reference), replays after a crash, schema drift, hostile identifiers, every
//! profile and a large batch. Backends call [`run`] from their tests with an empty warehouse.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;
use syncline_core::memory::MemoryHistory;
use syncline_core::{
    flatten_record, row_hash, ColumnType, HistoryProfile, Millis, NamingOptions, Observation, ObservationKind, ProfileKind, StartSetting,
    FAR_FUTURE,
};
use syncline_state::SqliteStateStore;

use crate::compare::{FieldValue, HistoryReader, RowSelection};
use crate::writer::{HistoryTarget, HistoryWriter, Observed, WriteError};
use crate::{Destination, StoredVersion};

/// A small deterministic random generator (SplitMix64), so every backend sees the same batches.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// A target with source starts (the reference model's timeline), unless the profile says
/// otherwise.
fn target(table: &str, profile: HistoryProfile) -> HistoryTarget {
    let start = profile.start.unwrap_or(StartSetting::Source);
    HistoryTarget {
        source: "conformance".into(),
        entity: table.into(),
        table: table.into(),
        primary_key: "id".into(),
        profile: profile.with_start(start),
        timestamp_columns: ["update_time".to_string()].into(),
    }
}

fn upsert(record: serde_json::Value, primary_key: &str, time: i64, naming: NamingOptions) -> Observed {
    let raw = record.to_string();
    let flat = flatten_record(record, naming).expect("test records flatten");
    let id = flat.primary_key(primary_key).expect("test records have ids");
    let hash = row_hash(&flat);
    Observed {
        observation: Observation {
            id,
            time,
            kind: ObservationKind::Upsert {
                record: flat,
                row_hash: hash,
            },
        },
        raw: Some(raw),
        terminal: false,
    }
}

fn delete(id: u64, time: i64) -> Observed {
    Observed {
        observation: Observation {
            id: id.to_string(),
            time,
            kind: ObservationKind::Delete,
        },
        raw: None,
        terminal: false,
    }
}

/// Writes a few versions to a table (for backend-specific tests).
pub async fn write_sample(destination: &dyn Destination, table: &str) {
    let state = SqliteStateStore::in_memory().expect("in-memory state");
    let mut writer = HistoryWriter::new(destination, &state, target(table, HistoryProfile::default()));
    let batch = (0..10)
        .map(|id| upsert(json!({"id": id, "name": format!("n{id}")}), "id", 1_000, NamingOptions::default()))
        .collect();
    writer.write(batch, 5_000).await.expect("sample write");
}

/// A planned batch of ten new rows (for backend-specific tests).
pub fn sample_batch(table: &str) -> syncline_core::HistoryBatch {
    let observed: Vec<Observed> = (0..10)
        .map(|id| upsert(json!({"id": id, "name": format!("n{id}")}), "id", 1_000, NamingOptions::default()))
        .collect();
    let observations: Vec<Observation> = observed.into_iter().map(|item| item.observation).collect();
    let plan = syncline_core::plan_history(&Default::default(), &observations);
    let target = target(table, HistoryProfile::default());
    syncline_core::assemble_batch(
        table,
        "id",
        &target.profile,
        &Default::default(),
        &target.timestamp_columns,
        &observations,
        &plan,
        5_000,
    )
    .expect("sample batch assembles")
}

/// Runs the whole suite. Panics with a description on the first failure.
pub async fn run<D: Destination + HistoryReader>(backend: &D) {
    let destination: &dyn Destination = backend;
    for (table, kind) in [
        ("random_fivetran_history", ProfileKind::Fivetran),
        ("random_cdc_history", ProfileKind::Cdc),
    ] {
        random_batches_keep_the_invariants(destination, table, HistoryProfile::of(kind), 11).await;
    }
    random_batches_keep_the_invariants(
        destination,
        "random_custom_history",
        HistoryProfile::with_prefix("_sl_", Some(FAR_FUTURE)),
        12,
    )
    .await;
    schema_drift_adds_and_widens_columns(destination).await;
    hostile_identifiers_are_quoted(destination).await;
    large_batches_apply_in_one_go(destination).await;
    a_stale_index_still_leaves_one_active_row(destination).await;
    every_write_sets_the_synced_column(destination, backend).await;
    observed_starts_increase_per_table(destination).await;
}

/// `(start, synced)` of every row of id 1, by start, read through the table's columns (after
/// the destination released its connection, as another reader of the warehouse would).
async fn starts_and_synced(
    destination: &dyn Destination,
    reader: &dyn HistoryReader,
    table: &str,
    profile: &HistoryProfile,
) -> Vec<(Millis, Millis)> {
    destination.release().await.expect("release");
    let rows = reader
        .rows(table, "id", profile, RowSelection::Every)
        .await
        .expect("read rows")
        .expect("the table exists");
    let position = |name: &str| rows.columns.iter().position(|column| column == name).expect("metadata column");
    let (start, synced) = (position(&profile.start_column), position(&profile.synced_column));
    let mut found: Vec<(Millis, Millis)> = rows
        .rows
        .iter()
        .filter(|(id, _)| id == "1")
        .map(|(_, values)| match (&values[start], &values[synced]) {
            (FieldValue::Timestamp(start), FieldValue::Timestamp(synced)) => (*start, *synced),
            other => panic!("start and synced are timestamps: {other:?}"),
        })
        .collect();
    found.sort();
    found
}

/// A close is a write of the row too: it sets the synced column, so a model incremental on
/// the synced column sees that the row was closed.
async fn every_write_sets_the_synced_column(destination: &dyn Destination, reader: &dyn HistoryReader) {
    let profile = HistoryProfile::default();
    let table = "synced_history";
    let state = SqliteStateStore::in_memory().expect("in-memory state");
    let mut writer = HistoryWriter::new(destination, &state, target(table, profile.clone()));
    let record = |name: &str, time: i64| upsert(json!({"id": 1, "name": name}), "id", time, NamingOptions::default());
    writer.write(vec![record("v0", 1_000)], 10_000).await.expect("v0");
    assert_eq!(starts_and_synced(destination, reader, table, &profile).await, vec![(1_000, 10_000)]);
    writer.write(vec![record("v1", 2_000)], 20_000).await.expect("v1");
    assert_eq!(
        starts_and_synced(destination, reader, table, &profile).await,
        vec![(1_000, 20_000), (2_000, 20_000)],
        "closing v0 sets its synced column"
    );
    writer.write(vec![delete(1, 3_000)], 30_000).await.expect("delete");
    assert_eq!(
        starts_and_synced(destination, reader, table, &profile).await,
        vec![(1_000, 20_000), (2_000, 30_000)],
        "the delete's close sets the synced column of the row it closes"
    );
}

/// With `start = "observed"` every batch's versions start after every start already in the
/// table, late observations (older source times) and a clock that went back included; the
/// setting is stored with the table and a writer asking for another one is refused.
async fn observed_starts_increase_per_table(destination: &dyn Destination) {
    let profile = HistoryProfile::default().with_start(StartSetting::Observed);
    let table = "observed_history";
    let state = SqliteStateStore::in_memory().expect("in-memory state");
    let mut writer = HistoryWriter::new(destination, &state, target(table, profile.clone()));
    let record = |id: u64, name: &str, time: i64| upsert(json!({"id": id, "name": name}), "id", time, NamingOptions::default());
    let batches: Vec<(Vec<Observed>, Millis)> = vec![
        (vec![record(1, "a", 5_000), record(2, "a", 5_000)], 100_000),
        // a late webhook: id 3 changed long before id 1's version; then id 1 changes twice
        (vec![record(3, "a", 1_000), record(1, "b", 6_000), record(1, "c", 6_000)], 200_000),
        // the wall clock went back; a replay of a batch already written; a delete
        (vec![record(2, "b", 7_000), record(3, "a", 1_000), delete(1, 8_000)], 150_000),
        // a re-create after the delete, with a source time before the delete was written
        (vec![record(1, "d", 9_000)], 300_000),
    ];
    let mut newest_before = Millis::MIN;
    let mut known = 0;
    for (batch, synced_at) in batches {
        writer.write(batch, synced_at).await.expect("write");
        let versions = destination.read_versions(table, "id", &profile).await.expect("versions");
        let mut new_starts: Vec<Millis> = versions.iter().map(|version| version.start).collect();
        new_starts.sort();
        let added = &new_starts[known..];
        assert!(
            added.iter().all(|start| *start > newest_before),
            "{table}: a version starts at or before a start of an earlier write: {versions:?}"
        );
        newest_before = *new_starts.last().expect("rows");
        known = new_starts.len();
    }
    let versions = destination.read_versions(table, "id", &profile).await.expect("versions");
    let windows: Vec<(&str, Millis, Option<Millis>)> = versions
        .iter()
        .map(|version| (version.id.as_str(), version.start, version.end))
        .collect();
    assert_eq!(
        windows,
        vec![
            ("1", 100_000, Some(199_999)),
            ("1", 200_000, Some(200_000)),
            ("1", 200_001, Some(200_002)),
            ("1", 300_000, None),
            ("2", 100_000, Some(200_001)),
            ("2", 200_002, None),
            ("3", 200_000, None),
        ],
        "{versions:?}"
    );
    let check = destination.check_history(table, "id", &profile).await.expect("check");
    assert!(check.is_clean(), "{check:?}");
    let mut other = HistoryWriter::new(destination, &state, target(table, profile.clone().with_start(StartSetting::Source)));
    match other.write(vec![record(4, "a", 1_000)], 400_000).await {
        Err(WriteError::StartSettingChanged { stored, configured, .. }) => {
            assert_eq!((stored, configured), (StartSetting::Observed, StartSetting::Source));
        }
        other => panic!("changing the start setting of an existing table must be refused: {other:?}"),
    }
}

fn expected_versions(memory: &MemoryHistory) -> Vec<StoredVersion> {
    let mut expected: Vec<StoredVersion> = memory
        .versions()
        .into_iter()
        .flat_map(|(id, versions)| {
            versions.into_iter().map(move |version| StoredVersion {
                id: id.clone(),
                start: version.start,
                end: version.end,
                active: version.end.is_none(),
                row_hash: version.row_hash,
            })
        })
        .collect();
    expected.sort();
    expected
}

async fn random_batches_keep_the_invariants(destination: &dyn Destination, table: &str, profile: HistoryProfile, seed: u64) {
    let state = SqliteStateStore::in_memory().expect("in-memory state");
    let mut writer = HistoryWriter::new(destination, &state, target(table, profile.clone()));
    let mut memory = MemoryHistory::default();
    let mut random = Random(seed);
    let mut previous_batches: Vec<Vec<Observed>> = Vec::new();
    for number in 0..40 {
        // Whole seconds, few ids and few distinct contents: same-second updates, unchanged
        // records, stale observations and delete/re-create sequences all happen often.
        let mut batch: Vec<Observed> = (0..random.below(25))
            .map(|_| {
                let id = random.below(30);
                let time = (random.below(60) as i64 + number * 20) * 1000;
                if random.below(6) == 0 {
                    delete(id, time)
                } else {
                    let status = ["open", "won", "lost"][random.below(3) as usize];
                    upsert(
                        json!({"id": id, "status": status, "value": random.below(3), "owner": {"id": 7, "name": "Ann"}}),
                        "id",
                        time,
                        NamingOptions::default(),
                    )
                }
            })
            .collect();
        if number % 7 == 3 {
            // a late replay of an earlier batch, interleaved with new observations
            batch.extend(
                previous_batches[random.below(previous_batches.len() as u64) as usize]
                    .iter()
                    .cloned(),
            );
        }
        let observations: Vec<Observation> = batch.iter().map(|observed| observed.observation.clone()).collect();
        memory.apply_batch(&observations);
        if number % 5 == 4 {
            // crash between the destination commit and the index update: the batch reaches the
            // destination, then is written again from the old index
            let prepared = writer.prepare(batch.clone(), 1_000_000).await.expect("prepare");
            destination.apply(prepared.batch.clone()).await.expect("apply before the crash");
        }
        writer.write(batch.clone(), 1_000_000 + number).await.expect("write");
        // applying the same batch again changes nothing
        let replay = writer.write(batch.clone(), 2_000_000).await.expect("replay");
        assert_eq!(
            replay.plan.versions + replay.plan.closed + replay.plan.deleted,
            0,
            "{table}: a replay changed the history"
        );
        previous_batches.push(batch);
    }
    let stored = destination.read_versions(table, "id", &profile).await.expect("read versions");
    let expected = expected_versions(&memory);
    assert_eq!(stored.len(), expected.len(), "{table}: row count differs from the reference");
    assert_eq!(stored, expected, "{table}: history differs from the reference model");
    let check = destination.check_history(table, "id", &profile).await.expect("check history");
    assert!(check.is_clean(), "{table}: contract broken: {check:?}");
    assert_eq!(check.rows as usize, expected.len());
    assert!(
        check.active_rows > 0 && check.active_rows < check.rows,
        "{table}: the random run should leave both active and closed rows"
    );
}

async fn schema_drift_adds_and_widens_columns(destination: &dyn Destination) {
    let profile = HistoryProfile::default();
    let state = SqliteStateStore::in_memory().expect("in-memory state");
    let mut writer = HistoryWriter::new(destination, &state, target("drift_history", profile.clone()));
    let naming = NamingOptions::default();
    let batches = [
        vec![upsert(
            json!({"id": 1, "amount": 5, "flag": true, "update_time": "2024-01-01 10:00:00"}),
            "id",
            1_000,
            naming,
        )],
        vec![upsert(
            json!({"id": 1, "amount": 5.5, "flag": true, "note": "new field", "update_time": "2024-01-01 10:00:01"}),
            "id",
            2_000,
            naming,
        )],
        vec![upsert(
            json!({"id": 2, "amount": "n/a", "flag": "maybe", "tags": ["a"], "address": {"city": "Oslo"}, "update_time": "soon"}),
            "id",
            3_000,
            naming,
        )],
    ];
    for batch in batches {
        writer.write(batch, 10_000).await.expect("drifting write");
    }
    let schema = destination
        .table_schema("drift_history", &profile)
        .await
        .expect("schema")
        .expect("table exists");
    let type_of = |name: &str| {
        schema
            .column_type(name)
            .unwrap_or_else(|| panic!("column {name} missing after drift"))
    };
    assert_eq!(type_of("id"), ColumnType::BigInt);
    assert_eq!(type_of("amount"), ColumnType::Varchar, "bigint -> double -> varchar");
    assert_eq!(type_of("flag"), ColumnType::Varchar);
    assert_eq!(type_of("note"), ColumnType::Varchar);
    assert_eq!(type_of("address_city"), ColumnType::Varchar);
    assert_eq!(
        type_of("update_time"),
        ColumnType::Varchar,
        "an unparseable timestamp widens the column"
    );
    let versions = destination.read_versions("drift_history", "id", &profile).await.expect("versions");
    assert_eq!(versions.len(), 3, "every version survives the widening");
    assert!(destination
        .check_history("drift_history", "id", &profile)
        .await
        .expect("check")
        .is_clean());
}

async fn hostile_identifiers_are_quoted(destination: &dyn Destination) {
    let profile = HistoryProfile::default();
    let table = "weird \"table\"; DROP TABLE x; --";
    let state = SqliteStateStore::in_memory().expect("in-memory state");
    let mut target = target(table, profile.clone());
    target.primary_key = "the \"id\"".into();
    let mut writer = HistoryWriter::new(destination, &state, target);
    let long_name = "l".repeat(300);
    let naming = NamingOptions { snake_case: false };
    let record = json!({
        "the \"id\"": "a'1",
        "semi; DROP TABLE weird; --": "x",
        "quote\"d": 1,
        "ünïcødé ✓": true,
        long_name.clone(): "long",
    });
    writer
        .write(vec![upsert(record, "the \"id\"", 1_000, naming)], 2_000)
        .await
        .expect("hostile write");
    let schema = destination
        .table_schema(table, &profile)
        .await
        .expect("schema")
        .expect("table exists");
    let names: BTreeMap<&str, ColumnType> = schema
        .columns
        .iter()
        .map(|column| (column.name.as_str(), column.column_type))
        .collect();
    for name in [
        "the \"id\"",
        "semi; DROP TABLE weird; --",
        "quote\"d",
        "ünïcødé ✓",
        long_name.as_str(),
    ] {
        assert!(names.contains_key(name), "column {name:?} must exist exactly as named");
    }
    let versions = destination.read_versions(table, "the \"id\"", &profile).await.expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].id, "a'1");
    // A later batch finds the long column again (a backend that shortens long names maps them
    // the same way every time), and a second long name with the same first 300 bytes gets a
    // column of its own.
    let longer_name = format!("{long_name}m");
    let record = json!({
        "the \"id\"": "a'1",
        "semi; DROP TABLE weird; --": "x",
        "quote\"d": 1,
        "ünïcødé ✓": true,
        long_name.clone(): "changed",
        longer_name.clone(): "second long",
    });
    writer
        .write(vec![upsert(record, "the \"id\"", 2_000, naming)], 3_000)
        .await
        .expect("second hostile write");
    let schema = destination
        .table_schema(table, &profile)
        .await
        .expect("schema")
        .expect("table exists");
    let long_columns = schema
        .columns
        .iter()
        .filter(|column| column.name.starts_with(long_name.as_str()))
        .count();
    assert_eq!(long_columns, 2, "two long names, two columns: {:?}", schema.columns);
    assert_eq!(schema.column_type(&longer_name), Some(ColumnType::Varchar));
    let versions = destination.read_versions(table, "the \"id\"", &profile).await.expect("versions");
    assert_eq!(versions.len(), 2, "the change of a long-named field is a new version");
    assert!(destination
        .check_history(table, "the \"id\"", &profile)
        .await
        .expect("check")
        .is_clean());
}

async fn large_batches_apply_in_one_go(destination: &dyn Destination) {
    let profile = HistoryProfile::default();
    let state = SqliteStateStore::in_memory().expect("in-memory state");
    let mut writer = HistoryWriter::new(destination, &state, target("large_history", profile.clone()));
    let count = 50_000u64;
    let batch: Vec<Observed> = (0..count)
        .map(|id| {
            upsert(
                json!({"id": id, "name": format!("name {id}"), "value": id * 3, "nested": {"a": id % 7}}),
                "id",
                1_000,
                NamingOptions::default(),
            )
        })
        .collect();
    let stats = writer.write(batch, 2_000).await.expect("large write");
    assert_eq!(stats.plan.versions as u64, count);
    // change every tenth record and delete every hundredth through a full extract
    let seen: HashSet<String> = (0..count).filter(|id| id % 100 != 99).map(|id| id.to_string()).collect();
    let changes: Vec<Observed> = (0..count)
        .filter(|id| id % 10 == 0)
        .map(|id| {
            upsert(
                json!({"id": id, "name": "changed", "value": id * 3, "nested": {"a": id % 7}}),
                "id",
                5_000,
                NamingOptions::default(),
            )
        })
        .collect();
    writer.write(changes, 6_000).await.expect("changes");
    let closed = writer.close_absent(&seen, 7_000, 7_000).await.expect("full extract deletes");
    assert_eq!(closed.plan.deleted as u64, count / 100);
    let check = destination.check_history("large_history", "id", &profile).await.expect("check");
    assert!(check.is_clean(), "{check:?}");
    assert_eq!(check.rows, count + count / 10);
    assert_eq!(check.active_rows, count - count / 100);
}

/// A crash between a destination commit and the index write leaves the index one version
/// behind the table; if the record changes before the replay, the replay's close (planned
/// against the older version) must still end the table's active row.
async fn a_stale_index_still_leaves_one_active_row(destination: &dyn Destination) {
    let profile = HistoryProfile::default();
    let table = "stale_index_history";
    let record = |name: &str, time: i64| upsert(json!({"id": 1, "name": name}), "id", time, NamingOptions::default());
    let current = SqliteStateStore::in_memory().expect("in-memory state");
    let stale = SqliteStateStore::in_memory().expect("in-memory state");
    let mut writer = HistoryWriter::new(destination, &current, target(table, profile.clone()));
    let mut behind = HistoryWriter::new(destination, &stale, target(table, profile.clone()));
    writer.write(vec![record("v0", 1_000)], 1_500).await.expect("v0");
    behind.write(vec![record("v0", 1_000)], 1_500).await.expect("v0 replayed");
    // v1 reaches the table, but the crashed run's index (`stale`) never hears of it.
    writer.write(vec![record("v1", 2_000)], 2_500).await.expect("v1");
    behind.write(vec![record("v2", 3_000)], 3_500).await.expect("v2 after the crash");
    let check = destination.check_history(table, "id", &profile).await.expect("check");
    assert!(check.is_clean(), "{check:?}");
    let versions = destination.read_versions(table, "id", &profile).await.expect("versions");
    let windows: Vec<(Millis, Option<Millis>, bool)> = versions
        .iter()
        .map(|version| (version.start, version.end, version.active))
        .collect();
    assert_eq!(
        windows,
        vec![(1_000, Some(1_999), false), (2_000, Some(2_999), false), (3_000, None, true)],
        "{versions:?}"
    );
}
