//! An in-memory history table and index that apply plans exactly as a destination and the
//! state store do. Tests use it as the expected result for real backends.

use std::collections::{BTreeMap, HashMap};

use crate::plan::{plan_history, CurrentVersion, Observation, ObservationKind, Plan};
use crate::time::Millis;

/// One version as stored: the start, the end (`None` while current) and the row hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemoryVersion {
    /// Version start.
    pub start: Millis,
    /// Version end, `None` while current.
    pub end: Option<Millis>,
    /// Row hash.
    pub row_hash: String,
}

/// History rows by id and start, plus the current-record index.
#[derive(Debug, Clone, Default)]
pub struct MemoryHistory {
    table: BTreeMap<String, BTreeMap<Millis, MemoryVersion>>,
    /// The current-record index, as the state store would hold it.
    pub index: HashMap<String, CurrentVersion>,
}

impl MemoryHistory {
    /// Applies a plan to the table only (inserting an existing key is a no-op, as in a
    /// destination), as if the process died before the state-store update.
    pub fn apply_plan(&mut self, observations: &[Observation], plan: &Plan) {
        for version in &plan.versions {
            let ObservationKind::Upsert { row_hash, .. } = &observations[version.observation].kind else {
                continue;
            };
            self.table
                .entry(version.id.clone())
                .or_default()
                .entry(version.start)
                .or_insert(MemoryVersion {
                    start: version.start,
                    end: version.end,
                    row_hash: row_hash.clone(),
                });
        }
        for close in &plan.closes {
            if let Some(row) = self.table.get_mut(&close.id).and_then(|rows| rows.get_mut(&close.start)) {
                row.end = Some(close.end);
            }
        }
    }

    /// Plans a batch against the index, applies it, then updates the index.
    pub fn apply_batch(&mut self, observations: &[Observation]) -> Plan {
        let plan = plan_history(&self.index, observations);
        self.apply_plan(observations, &plan);
        for entry in &plan.index {
            self.index.insert(entry.id.clone(), entry.version.clone());
        }
        plan
    }

    /// Every version, by id, ordered by start.
    pub fn versions(&self) -> BTreeMap<String, Vec<MemoryVersion>> {
        self.table
            .iter()
            .map(|(id, rows)| (id.clone(), rows.values().cloned().collect()))
            .collect()
    }
}
