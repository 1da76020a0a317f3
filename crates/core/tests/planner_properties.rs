//! Property tests of the SCD2 planner against a simple reference model, checking the seven
//! invariants of the history-table contract on random interleavings of upserts and deletes,
//! with replays, stale and same-second observations, and deletes followed by re-creates.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use syncline_core::memory::MemoryHistory;
use syncline_core::{plan_history, FlatRecord, FlatValue, Observation, ObservationKind, TableSchema};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    start: i64,
    end: Option<i64>,
    hash: String,
}

/// The obvious implementation: one observation at a time, straight onto a list of rows.
#[derive(Default)]
struct Model {
    rows: BTreeMap<String, Vec<(Row, bool)>>,
    modified: HashMap<String, (i64, Vec<String>)>,
}

impl Model {
    fn apply(&mut self, observation: &Observation) {
        let rows = self.rows.entry(observation.id.clone()).or_default();
        let time = observation.time;
        let (modified, hashes) = self.modified.entry(observation.id.clone()).or_insert((i64::MIN, Vec::new()));
        match &observation.kind {
            ObservationKind::Upsert { row_hash, .. } => {
                let Some((last, deleted)) = rows.last_mut() else {
                    rows.push((
                        Row {
                            start: time,
                            end: None,
                            hash: row_hash.clone(),
                        },
                        false,
                    ));
                    *modified = time;
                    *hashes = vec![row_hash.clone()];
                    return;
                };
                let stale = time < *modified || (*deleted && time <= last.end.unwrap());
                let unchanged = !*deleted && *row_hash == last.hash;
                let replay = time == *modified && hashes.contains(row_hash);
                if unchanged && !stale && time > *modified {
                    *modified = time;
                    *hashes = vec![row_hash.clone()];
                }
                if stale || unchanged || replay {
                    return;
                }
                let mut start = time.max(last.start + 1);
                if *deleted {
                    start = start.max(last.end.unwrap() + 1);
                } else {
                    last.end = Some(start - 1);
                }
                rows.push((
                    Row {
                        start,
                        end: None,
                        hash: row_hash.clone(),
                    },
                    false,
                ));
                if time == *modified {
                    hashes.push(row_hash.clone());
                } else {
                    *hashes = vec![row_hash.clone()];
                }
                *modified = time;
            }
            ObservationKind::Delete => {
                if let Some((last, deleted)) = rows.last_mut() {
                    if !*deleted && time >= *modified {
                        last.end = Some(time.max(last.start));
                        *deleted = true;
                    }
                }
            }
        }
    }

    fn apply_batch(&mut self, batch: &[Observation]) {
        let mut ordered: Vec<&Observation> = batch.iter().collect();
        ordered.sort_by_key(|observation| (observation.time, matches!(observation.kind, ObservationKind::Delete)));
        for observation in ordered {
            self.apply(observation);
        }
    }
}

/// The planner's side, applied the way a destination and the state store apply it.
type Engine = MemoryHistory;

fn rows_of(engine: &Engine) -> BTreeMap<String, Vec<Row>> {
    engine
        .versions()
        .into_iter()
        .map(|(id, versions)| {
            (
                id,
                versions
                    .into_iter()
                    .map(|v| Row {
                        start: v.start,
                        end: v.end,
                        hash: v.row_hash,
                    })
                    .collect(),
            )
        })
        .collect()
}

fn observation(id: u8, time: i64, hash: Option<u8>) -> Observation {
    let kind = match hash {
        Some(hash) => ObservationKind::Upsert {
            record: FlatRecord {
                fields: vec![("id".into(), FlatValue::Int(i64::from(id)))],
            },
            row_hash: format!("h{hash}"),
        },
        None => ObservationKind::Delete,
    };
    Observation {
        id: id.to_string(),
        time,
        kind,
    }
}

fn observations() -> impl Strategy<Value = Observation> {
    // Few ids, few distinct times and hashes: collisions, same-second updates and stale
    // observations are the common case, not the rare one.
    (0u8..4, 0i64..12, prop::option::weighted(0.8, 0u8..3)).prop_map(|(id, time, hash)| observation(id, time, hash))
}

fn batches() -> impl Strategy<Value = Vec<Vec<Observation>>> {
    prop::collection::vec(prop::collection::vec(observations(), 0..8), 1..8)
}

fn check_invariants(model: &Model, rows: &BTreeMap<String, Vec<Row>>) -> Result<(), TestCaseError> {
    for (id, versions) in rows {
        // 1. at most one active row per id; none after a delete.
        let active = versions.iter().filter(|row| row.end.is_none()).count();
        prop_assert!(active <= 1, "id {id} has {active} active rows");
        let deleted_last = model.rows[id].last().is_some_and(|(_, deleted)| *deleted);
        if deleted_last {
            prop_assert_eq!(active, 0, "id {} is deleted but has an active row", id);
        }
        // 2. validity windows are ordered and never overlap; only the last may be open.
        for (index, row) in versions.iter().enumerate() {
            if let Some(end) = row.end {
                prop_assert!(end >= row.start, "id {id}: window ends before it starts");
            } else {
                prop_assert_eq!(index, versions.len() - 1, "id {}: an open version is not the last", id);
            }
            if let Some(next) = versions.get(index + 1) {
                prop_assert!(next.start > row.end.unwrap(), "id {id}: windows overlap");
            }
        }
        // 4. no two consecutive versions with the same hash unless a delete lies between.
        let flags = &model.rows[id];
        for index in 1..versions.len() {
            let closed_by_delete = flags[index - 1].1;
            if !closed_by_delete {
                prop_assert_ne!(&versions[index - 1].hash, &versions[index].hash, "id {}: phantom duplicate", id);
                // superseded: end = next start - 1 ms
                prop_assert_eq!(versions[index - 1].end, Some(versions[index].start - 1));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn planner_matches_model_and_keeps_invariants(batches in batches(), replay_at in 0usize..8) {
        let mut model = Model::default();
        let mut engine = Engine::default();
        for (number, batch) in batches.iter().enumerate() {
            let before = engine.clone();
            model.apply_batch(batch);
            engine.apply_batch(batch);
            let model_rows: BTreeMap<String, Vec<Row>> = model
                .rows
                .iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(id, rows)| (id.clone(), rows.iter().map(|(row, _)| row.clone()).collect()))
                .collect();
            prop_assert_eq!(&rows_of(&engine), &model_rows);
            check_invariants(&model, &rows_of(&engine))?;

            // 3. applying the same batch twice changes nothing ...
            let replay = engine.apply_batch(batch);
            prop_assert!(replay.versions.is_empty() && replay.closes.is_empty() && replay.index.is_empty(), "replay changed something: {:?}", replay);
            prop_assert_eq!(&rows_of(&engine), &model_rows);

            // ... and neither does replaying it after a crash between the destination commit and
            // the state-store update (the plan is made again from the old index).
            if number == replay_at {
                let mut crashed = before.clone();
                let plan = plan_history(&before.index, batch);
                crashed.apply_plan(batch, &plan);
                let replanned = plan_history(&before.index, batch);
                crashed.apply_plan(batch, &replanned);
                prop_assert_eq!(rows_of(&crashed), rows_of(&engine));
            }
        }
    }

    /// 5. an observation older than the current version never overwrites it.
    #[test]
    fn stale_observations_never_overwrite(time in 1i64..1000, older_by in 1i64..1000, hash in 0u8..5) {
        let older = time - older_by;
        let mut engine = Engine::default();
        engine.apply_batch(&[observation(1, time, Some(9))]);
        let plan = engine.apply_batch(&[observation(1, older, Some(hash)), observation(1, older, None)]);
        prop_assert_eq!(plan.stats.ignored, 2);
        prop_assert_eq!(rows_of(&engine)["1"].clone(), vec![Row { start: time, end: None, hash: "h9".into() }]);
    }

    /// 7. schema drift: the evolved schema holds every value of every record without loss.
    #[test]
    fn schema_holds_every_value(values in prop::collection::vec(prop::collection::vec((0usize..4, 0u8..5), 0..6), 1..20)) {
        let records: Vec<FlatRecord> = values
            .iter()
            .map(|fields| {
                let mut map: BTreeMap<String, FlatValue> = BTreeMap::new();
                for (column, kind) in fields {
                    let value = match kind {
                        0 => FlatValue::Null,
                        1 => FlatValue::Bool(true),
                        2 => FlatValue::Int(7),
                        3 => FlatValue::Float(0.5),
                        _ => FlatValue::Text("x".into()),
                    };
                    map.insert(format!("c{column}"), value);
                }
                FlatRecord { fields: map.into_iter().collect() }
            })
            .collect();
        let (first, _) = TableSchema::default().evolve(&records[..records.len() / 2], &HashSet::new());
        let (schema, changes) = first.evolve(&records, &HashSet::new());
        for column in &first.columns {
            prop_assert!(schema.position(&column.name).is_some(), "a column was dropped");
        }
        prop_assert!(changes.len() <= schema.columns.len());
        for record in &records {
            for (name, value) in &record.fields {
                if let Some(value_type) = value.column_type(false) {
                    let column_type = schema.column_type(name).expect("column for a non-null value");
                    prop_assert_eq!(value_type.widen(column_type), column_type);
                }
            }
        }
    }
}

#[test]
fn same_second_updates_get_one_millisecond_apart() {
    let mut engine = Engine::default();
    engine.apply_batch(&[observation(1, 1000, Some(1)), observation(1, 1000, Some(2))]);
    engine.apply_batch(&[observation(1, 1000, Some(3))]);
    assert_eq!(
        rows_of(&engine)["1"],
        vec![
            Row {
                start: 1000,
                end: Some(1000),
                hash: "h1".into()
            },
            Row {
                start: 1001,
                end: Some(1001),
                hash: "h2".into()
            },
            Row {
                start: 1002,
                end: None,
                hash: "h3".into()
            },
        ]
    );
}

#[test]
fn delete_then_recreate() {
    let mut engine = Engine::default();
    engine.apply_batch(&[observation(1, 1000, Some(1))]);
    // at equal times upserts go first and the delete wins; the re-create comes a second later
    let plan = engine.apply_batch(&[
        observation(1, 5000, None),
        observation(1, 5000, Some(2)),
        observation(1, 6000, Some(1)),
    ]);
    assert_eq!(plan.stats.deleted, 1);
    assert_eq!(plan.closes.len(), 1);
    assert_eq!(
        rows_of(&engine)["1"],
        vec![
            Row {
                start: 1000,
                end: Some(4999),
                hash: "h1".into()
            },
            Row {
                start: 5000,
                end: Some(5000),
                hash: "h2".into()
            },
            Row {
                start: 6000,
                end: None,
                hash: "h1".into()
            },
        ]
    );
    // a second delete of a deleted id adds nothing
    engine.apply_batch(&[observation(1, 9000, None)]);
    let again = engine.apply_batch(&[observation(1, 9500, None)]);
    assert_eq!(again.stats.ignored, 1);
    assert!(rows_of(&engine)["1"].iter().all(|row| row.end.is_some()));
}

#[test]
fn full_extract_closes_absent_ids() {
    let mut engine = Engine::default();
    engine.apply_batch(&[
        observation(1, 10, Some(1)),
        observation(2, 10, Some(1)),
        observation(3, 10, Some(1)),
    ]);
    engine.apply_batch(&[observation(3, 15, None)]);
    let seen: HashSet<String> = ["1".to_string()].into();
    let deletes = syncline_core::full_extract_deletes(&engine.index, &seen, 20);
    assert_eq!(deletes.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["2"]);
    engine.apply_batch(&deletes);
    assert_eq!(rows_of(&engine)["2"][0].end, Some(20));
    assert_eq!(rows_of(&engine)["1"][0].end, None);
}
