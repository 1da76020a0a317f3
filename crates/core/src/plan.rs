//! The SCD2 planner: from the current versions of some ids and a batch of observations, the
//! operations that keep the history-table invariants.
//!
//! Rules, per id, taking its observations in time order (at equal times upserts before deletes,
//! so a delete wins a tie; otherwise ties keep batch order):
//! - an upsert older than the current version's modified time is stale and ignored; so is an
//!   upsert at exactly that time whose hash was already a version at that time (a replay);
//! - an upsert whose hash equals the current version's is unchanged and skipped (when it is
//!   later, it moves the version's modified time forward, so older observations stay stale);
//! - otherwise it opens a new version starting at its time, or at the previous start + 1 ms
//!   when that is not later (second-resolution timestamps), and the previous version ends 1 ms
//!   before the new start;
//! - a delete closes the active version at the delete time (never before its start) and adds
//!   no row; a delete older than the current version, or of an id that is not active, is ignored;
//! - an upsert after a delete re-creates the id when it is later than the delete; the new
//!   version starts at its time.
//!
//! With [`Starts::ObservedAt`] (`[history] start = "observed"`) the same decisions are taken on
//! the source times, but every new version starts at the write time instead (still after the
//! id's previous start), and a delete ends the version at the write time: the table's starts
//! then follow the order in which syncline wrote them.

use std::collections::{HashMap, HashSet};

use crate::flatten::FlatRecord;
use crate::time::Millis;

/// What the state store knows of an id's latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentVersion {
    /// Start of the latest version.
    pub start: Millis,
    /// `Some(time)` when the id was deleted at that time (the latest version is closed).
    pub end: Option<Millis>,
    /// Row hash of the latest version.
    pub row_hash: String,
    /// The observation time (source modified time) of the latest version.
    pub modified: Millis,
    /// Hashes of every version observed at `modified`, so replays of same-second versions are
    /// recognised.
    pub hashes_at_modified: Vec<String>,
}

/// What was observed of an id.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservationKind {
    /// The record as fetched.
    Upsert {
        /// The flattened record.
        record: FlatRecord,
        /// Its row hash.
        row_hash: String,
    },
    /// The id was deleted upstream.
    Delete,
}

/// One observation of an id at a known time.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The id, as a string.
    pub id: String,
    /// The source modified time, else the time the change was observed; for a delete, the
    /// delete time.
    pub time: Millis,
    /// Upsert or delete.
    pub kind: ObservationKind,
}

/// A new history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVersion {
    /// Index of the observation that holds the record.
    pub observation: usize,
    /// The id.
    pub id: String,
    /// Version start.
    pub start: Millis,
    /// `None` while current; set when a later observation in the same batch closes it.
    pub end: Option<Millis>,
}

/// The closing of a version that existed before the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedClose {
    /// The id.
    pub id: String,
    /// The start of the version to close.
    pub start: Millis,
    /// Its new end.
    pub end: Millis,
}

/// The new state-store entry of an id whose history changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The id.
    pub id: String,
    /// Its latest version after the batch.
    pub version: CurrentVersion,
    /// The observation holding the latest record (`None` when the id ended deleted).
    pub observation: Option<usize>,
    /// True when the batch wrote a new version of the id (its stored record must be replaced);
    /// false when an unchanged observation only moved the modified time forward.
    pub content_changed: bool,
}

/// Counts of what a plan does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanStats {
    /// New versions written.
    pub versions: usize,
    /// Versions closed because a newer one superseded them.
    pub closed: usize,
    /// Versions closed by a delete.
    pub deleted: usize,
    /// Observations whose content equals the current version.
    pub unchanged: usize,
    /// Stale observations, replays, and deletes of ids that are not active.
    pub ignored: usize,
}

impl std::ops::AddAssign for PlanStats {
    fn add_assign(&mut self, other: Self) {
        self.versions += other.versions;
        self.closed += other.closed;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.ignored += other.ignored;
    }
}

/// The operations of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Rows to insert.
    pub versions: Vec<PlannedVersion>,
    /// Existing rows to close.
    pub closes: Vec<PlannedClose>,
    /// State-store entries to write after the destination commit.
    pub index: Vec<IndexEntry>,
    /// Counts.
    pub stats: PlanStats,
}

/// Where the starts of new versions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starts {
    /// The observation times (the source's modified times).
    Source,
    /// The given write time, for every version of the batch (the writer passes a time after
    /// every start already in the table). A second version of an id in the same batch starts
    /// 1 ms after the first.
    ObservedAt(Millis),
}

/// Plans one batch with source starts. `current` holds the state-store entries of (at least)
/// the ids in the batch.
pub fn plan_history(current: &HashMap<String, CurrentVersion>, observations: &[Observation]) -> Plan {
    plan_history_with(current, observations, Starts::Source)
}

/// Plans one batch, with starts taken as `starts` says.
pub fn plan_history_with(current: &HashMap<String, CurrentVersion>, observations: &[Observation], starts: Starts) -> Plan {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::with_capacity(observations.len());
    for (index, observation) in observations.iter().enumerate() {
        let group = *group_of.entry(observation.id.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(index);
    }
    let mut plan = Plan::default();
    for mut group in groups {
        group.sort_by_key(|&index| {
            (
                observations[index].time,
                matches!(observations[index].kind, ObservationKind::Delete),
            )
        });
        let id = &observations[group[0]].id;
        plan_id(id, current.get(id).cloned(), &group, observations, starts, &mut plan);
    }
    plan
}

fn plan_id(id: &str, mut state: Option<CurrentVersion>, group: &[usize], observations: &[Observation], starts: Starts, plan: &mut Plan) {
    // The time a change takes effect in the table: the source time, or the write time.
    let effective = |time: Millis| match starts {
        Starts::Source => time,
        Starts::ObservedAt(at) => at,
    };
    // The version of this id inserted by this batch that is latest, if any.
    let mut latest_in_batch: Option<usize> = None;
    let mut record_observation: Option<usize> = None;
    let mut touched = false;
    let mut content_changed = false;
    let close = |plan: &mut Plan, latest_in_batch: Option<usize>, start: Millis, end: Millis| match latest_in_batch {
        Some(version) => plan.versions[version].end = Some(end),
        None => plan.closes.push(PlannedClose {
            id: id.to_string(),
            start,
            end,
        }),
    };
    for &index in group {
        let observation = &observations[index];
        let time = observation.time;
        match (&observation.kind, state.as_mut()) {
            (ObservationKind::Upsert { row_hash, .. }, None) => {
                plan.versions.push(PlannedVersion {
                    observation: index,
                    id: id.to_string(),
                    start: effective(time),
                    end: None,
                });
                latest_in_batch = Some(plan.versions.len() - 1);
                state = Some(CurrentVersion {
                    start: effective(time),
                    end: None,
                    row_hash: row_hash.clone(),
                    modified: time,
                    hashes_at_modified: vec![row_hash.clone()],
                });
                plan.stats.versions += 1;
                record_observation = Some(index);
                touched = true;
                content_changed = true;
            }
            (ObservationKind::Upsert { row_hash, .. }, Some(current)) => {
                let replay = time == current.modified && current.hashes_at_modified.contains(row_hash);
                let deleted_at = current.end;
                // With observed starts the end of a deleted version is a write time; the
                // delete's source time is kept as the modified time.
                let deleted_in_source = match starts {
                    Starts::Source => deleted_at,
                    Starts::ObservedAt(_) => deleted_at.map(|_| current.modified),
                };
                if time < current.modified || deleted_in_source.is_some_and(|deleted| time <= deleted) {
                    plan.stats.ignored += 1;
                    continue;
                }
                if deleted_at.is_none() && *row_hash == current.row_hash {
                    // Confirmed at a later time: later observations must be compared with this.
                    if time > current.modified {
                        current.modified = time;
                        current.hashes_at_modified = vec![row_hash.clone()];
                        record_observation = Some(index);
                        touched = true;
                    }
                    plan.stats.unchanged += 1;
                    continue;
                }
                if replay {
                    plan.stats.ignored += 1;
                    continue;
                }
                let mut start = effective(time).max(current.start + 1);
                match deleted_at {
                    Some(deleted) => start = start.max(deleted + 1),
                    None => {
                        close(plan, latest_in_batch, current.start, start - 1);
                        plan.stats.closed += 1;
                    }
                }
                plan.versions.push(PlannedVersion {
                    observation: index,
                    id: id.to_string(),
                    start,
                    end: None,
                });
                latest_in_batch = Some(plan.versions.len() - 1);
                plan.stats.versions += 1;
                if time == current.modified {
                    current.hashes_at_modified.push(row_hash.clone());
                } else {
                    current.hashes_at_modified = vec![row_hash.clone()];
                }
                current.start = start;
                current.end = None;
                current.row_hash = row_hash.clone();
                current.modified = time;
                record_observation = Some(index);
                touched = true;
                content_changed = true;
            }
            (ObservationKind::Delete, Some(current)) if current.end.is_none() && time >= current.modified => {
                let end = effective(time).max(current.start);
                close(plan, latest_in_batch, current.start, end);
                current.end = Some(end);
                if let Starts::ObservedAt(_) = starts {
                    if time > current.modified {
                        current.modified = time;
                        current.hashes_at_modified.clear();
                    }
                }
                plan.stats.deleted += 1;
                record_observation = None;
                touched = true;
            }
            (ObservationKind::Delete, _) => plan.stats.ignored += 1,
        }
    }
    if let (true, Some(version)) = (touched, state) {
        plan.index.push(IndexEntry {
            id: id.to_string(),
            version,
            observation: record_observation,
            content_changed,
        });
    }
}

/// The deletes implied by a full extract: every id that is active in `current` but was not
/// seen in the extract is deleted at the extract time. Sorted by id.
pub fn full_extract_deletes(current: &HashMap<String, CurrentVersion>, seen: &HashSet<String>, extract_time: Millis) -> Vec<Observation> {
    let mut missing: Vec<&String> = current
        .iter()
        .filter(|(id, version)| version.end.is_none() && !seen.contains(*id))
        .map(|(id, _)| id)
        .collect();
    missing.sort();
    missing
        .into_iter()
        .map(|id| Observation {
            id: id.clone(),
            time: extract_time,
            kind: ObservationKind::Delete,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{flatten_record, NamingOptions};
    use crate::hash::row_hash;
    use serde_json::json;

    fn upsert(id: u64, name: &str, time: Millis) -> Observation {
        let record = flatten_record(json!({"id": id, "name": name}), NamingOptions::default()).unwrap();
        Observation {
            id: id.to_string(),
            time,
            kind: ObservationKind::Upsert {
                row_hash: row_hash(&record),
                record,
            },
        }
    }

    fn apply(index: &mut HashMap<String, CurrentVersion>, plan: &Plan) {
        for entry in &plan.index {
            index.insert(entry.id.clone(), entry.version.clone());
        }
    }

    #[test]
    fn observed_starts_take_the_write_time_and_source_times_decide() {
        let mut index = HashMap::new();
        let first = plan_history_with(&index, &[upsert(1, "a", 5_000)], Starts::ObservedAt(100_000));
        assert_eq!(first.versions[0].start, 100_000);
        apply(&mut index, &first);
        assert_eq!(index["1"].modified, 5_000, "the index keeps the source time");
        // an observation older than the current version is stale under either setting
        let stale = plan_history_with(&index, &[upsert(1, "old", 4_000)], Starts::ObservedAt(200_000));
        assert_eq!((stale.versions.len(), stale.stats.ignored), (0, 1));
        // a replay of the same observation writes nothing
        let replay = plan_history_with(&index, &[upsert(1, "a", 5_000)], Starts::ObservedAt(200_000));
        assert!(replay.versions.is_empty() && replay.closes.is_empty());
        // a change starts at the write time; the previous version ends 1 ms before
        let change = plan_history_with(&index, &[upsert(1, "b", 6_000)], Starts::ObservedAt(200_000));
        assert_eq!(change.versions[0].start, 200_000);
        assert_eq!(change.closes[0].end, 199_999);
        apply(&mut index, &change);
        // a delete ends at the write time; a re-create with a source time before that write
        // but after the delete's source time opens a new version
        let delete = plan_history_with(
            &index,
            &[Observation {
                id: "1".into(),
                time: 7_000,
                kind: ObservationKind::Delete,
            }],
            Starts::ObservedAt(300_000),
        );
        assert_eq!(delete.closes[0].end, 300_000);
        apply(&mut index, &delete);
        let recreate = plan_history_with(&index, &[upsert(1, "c", 8_000)], Starts::ObservedAt(400_000));
        assert_eq!(recreate.versions[0].start, 400_000);
        let before_delete = plan_history_with(&index, &[upsert(1, "c", 6_500)], Starts::ObservedAt(400_000));
        assert!(before_delete.versions.is_empty(), "older than the delete: stale");
    }

    #[test]
    fn source_starts_are_unchanged_by_the_setting_machinery() {
        let observations = [upsert(1, "a", 5_000), upsert(1, "b", 5_000), upsert(2, "a", 1_000)];
        let plan = plan_history_with(&HashMap::new(), &observations, Starts::Source);
        assert_eq!(plan, plan_history(&HashMap::new(), &observations));
        let starts: Vec<Millis> = plan.versions.iter().map(|version| version.start).collect();
        assert_eq!(starts, [5_000, 5_001, 1_000]);
    }
}
