//! The history writer: plans a batch of observations against the current-record index,
//! applies it to the destination, then updates the index. The index update follows the
//! destination commit; if the process dies between the two, replaying the batch plans the same
//! operations again and the destination, which ignores rows it already has, changes nothing.
//!
//! That holds for source starts, which a replay plans again to the millisecond. Observed starts
//! are write times, which a replay would plan anew: so a table with observed starts journals
//! each batch's index entries in the state store before the destination applies it, and the
//! next writer of the table, finding the journal, asks the destination whether the batch was
//! committed and, if it was, writes those entries to the index before it plans anything.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use syncline_core::{
    assemble_batch_owned, full_extract_deletes, plan_history_with, CoreError, CurrentVersion, HistoryBatch, HistoryProfile, Millis,
    Observation, Plan, PlanStats, StartSetting, Starts, TableSchema,
};
use syncline_state::{IndexWrite, StateError, StateStore};

use crate::{Destination, DestinationError};

/// Errors of a history write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The records cannot become history (see the message).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The destination failed; nothing of the batch was committed there.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The configured start setting differs from the one the table was written with.
    #[error("history table `{table}` was written with [history] start = \"{stored}\" and cannot change to \"{configured}\": its starts would mix two timelines, so incremental models would skip or repeat versions; keep start = \"{stored}\" (or remove the setting, which keeps the table's), or write a new table (another table_pattern, schema or file) and carry the old history over with `syncline adopt`")]
    StartSettingChanged {
        /// The table.
        table: String,
        /// The setting stored with the table.
        stored: StartSetting,
        /// The setting asked for.
        configured: StartSetting,
    },
    /// The stored start setting is not one this build knows.
    #[error("history table `{table}` has an unknown stored start setting `{value}`; upgrade syncline")]
    UnknownStartSetting {
        /// The table.
        table: String,
        /// The stored text.
        value: String,
    },
}

/// The state-store marker holding a table's start setting.
pub fn start_setting_marker(table: &str) -> String {
    format!("history_start.{table}")
}

/// The state-store marker holding the newest start written to a table (observed starts).
pub fn max_start_marker(table: &str) -> String {
    format!("history_max_start.{table}")
}

/// The state-store marker counting the versions written with a start at or before the newest
/// start of an earlier write: the versions a `start > max(start)` incremental model skips.
pub fn late_versions_marker(table: &str) -> String {
    format!("history_late_versions.{table}")
}

/// The state-store marker journaling the batches of a table with observed starts that the
/// destination has applied, or is applying, and the index does not hold yet.
pub fn journal_marker(table: &str) -> String {
    format!("history_journal.{table}")
}

/// A batch in the journal: its index entries, and one row that tells whether it was committed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct JournaledBatch {
    /// An id the batch writes.
    probe_id: String,
    /// The start of the probe's row: a new version, or the version the batch closes.
    probe_start: Millis,
    /// True when the batch closes that row (then it is committed once the row is inactive);
    /// false when it inserts it (committed once the row exists).
    probe_closes: bool,
    /// The index entries' write time.
    written_at: Millis,
    /// `(id, version, terminal)` of every index entry.
    entries: Vec<(String, JournaledVersion, bool)>,
}

/// [`CurrentVersion`] as the journal stores it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct JournaledVersion {
    start: Millis,
    end: Option<Millis>,
    row_hash: String,
    modified: Millis,
    hashes_at_modified: Vec<String>,
}

impl JournaledBatch {
    /// The journal entry of a planned batch; `None` when it changes nothing in the destination.
    fn of(plan: &Plan, extras: &[(Option<String>, bool)], written_at: Millis) -> Option<Self> {
        let (probe_id, probe_start, probe_closes) = match (plan.versions.first(), plan.closes.first()) {
            (Some(version), _) => (version.id.clone(), version.start, false),
            (None, Some(close)) => (close.id.clone(), close.start, true),
            (None, None) => return None,
        };
        let entries = plan
            .index
            .iter()
            .map(|entry| {
                let version = &entry.version;
                let terminal = entry.observation.is_some_and(|index| extras[index].1);
                let journaled = JournaledVersion {
                    start: version.start,
                    end: version.end,
                    row_hash: version.row_hash.clone(),
                    modified: version.modified,
                    hashes_at_modified: version.hashes_at_modified.clone(),
                };
                (entry.id.clone(), journaled, terminal)
            })
            .collect();
        Some(Self {
            probe_id,
            probe_start,
            probe_closes,
            written_at,
            entries,
        })
    }
}

/// The start setting a table was written with: the stored marker, or `source` for a table
/// written before the setting was stored, or `None` for a table not written yet.
pub async fn stored_start_setting(
    state: &dyn StateStore,
    source: &str,
    table: &str,
    table_exists: bool,
) -> Result<Option<StartSetting>, WriteError> {
    match state.marker(source, &start_setting_marker(table)).await? {
        Some(value) => StartSetting::parse(&value)
            .map(Some)
            .ok_or_else(|| WriteError::UnknownStartSetting {
                table: table.to_string(),
                value,
            }),
        // Tables written before the setting existed have source starts.
        None if table_exists => Ok(Some(StartSetting::Source)),
        None => Ok(None),
    }
}

/// Decides the start setting of a table from the stored one and the configured one (`None`:
/// not configured), or refuses a change.
pub fn resolve_start_setting(
    table: &str,
    stored: Option<StartSetting>,
    configured: Option<StartSetting>,
) -> Result<StartSetting, WriteError> {
    match (stored, configured) {
        (Some(stored), Some(configured)) if stored != configured => Err(WriteError::StartSettingChanged {
            table: table.to_string(),
            stored,
            configured,
        }),
        (Some(stored), _) => Ok(stored),
        (None, configured) => Ok(configured.unwrap_or_default()),
    }
}

/// Which history table a writer maintains, and how.
#[derive(Debug, Clone)]
pub struct HistoryTarget {
    /// The source name (state-store scope).
    pub source: String,
    /// The entity name (state-store scope).
    pub entity: String,
    /// The history table.
    pub table: String,
    /// The primary-key column.
    pub primary_key: String,
    /// The history profile.
    pub profile: HistoryProfile,
    /// Columns typed as TIMESTAMP when their values parse as timestamps.
    pub timestamp_columns: HashSet<String>,
}

/// An observation with what the index keeps beside it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The observation.
    pub observation: Observation,
    /// The record's JSON, kept in the current-record index.
    pub raw: Option<String>,
    /// True when the record is in a terminal state.
    pub terminal: bool,
}

/// What one write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Planner counts.
    pub plan: PlanStats,
    /// Schema changes applied.
    pub schema_changes: usize,
}

impl std::ops::AddAssign for WriteStats {
    fn add_assign(&mut self, other: Self) {
        self.plan += other.plan;
        self.schema_changes += other.schema_changes;
    }
}

/// A planned batch, ready to commit.
pub struct PreparedWrite {
    /// What the destination applies.
    pub batch: Arc<HistoryBatch>,
    plan: Plan,
    extras: Vec<(Option<String>, bool)>,
}

/// Index entries of a committed batch whose write is deferred.
struct PendingIndex {
    entries: Vec<IndexWrite>,
    written_at: Millis,
    /// True when the batch is in the journal.
    journaled: bool,
}

/// Maintains one history table.
pub struct HistoryWriter<'a> {
    destination: &'a dyn Destination,
    state: &'a dyn StateStore,
    target: HistoryTarget,
    schema: Option<TableSchema>,
    defer_index_writes: bool,
    /// The entries of the last committed batch, not yet in the state store.
    pending: Option<PendingIndex>,
    /// The table's start setting, once resolved.
    start: Option<StartSetting>,
    /// The newest start written to the table (with observed starts, every later version
    /// starts after it), as stored or planned since.
    max_start: Millis,
    /// Versions planned with a start at or before `max_start`, not yet counted in the store.
    late_versions: u64,
    /// True when `max_start` or `late_versions` moved since they were last stored.
    watermark_dirty: bool,
    /// Observed starts: the batches applied (or being applied) whose index entries are not
    /// written yet, as the journal marker holds them.
    journal: Vec<JournaledBatch>,
    /// True once this writer has looked for a journal a crashed writer left.
    journal_checked: bool,
}

impl<'a> HistoryWriter<'a> {
    /// A writer for one table.
    pub fn new(destination: &'a dyn Destination, state: &'a dyn StateStore, target: HistoryTarget) -> Self {
        Self {
            destination,
            state,
            target,
            schema: None,
            defer_index_writes: false,
            pending: None,
            start: None,
            max_start: Millis::MIN,
            late_versions: 0,
            watermark_dirty: false,
            journal: Vec::new(),
            journal_checked: false,
        }
    }

    /// The table's start setting: resolved (and stored with a new table, at `now`) on first use.
    pub async fn start_setting(&mut self, now: Millis) -> Result<StartSetting, WriteError> {
        if let Some(start) = self.start {
            return Ok(start);
        }
        if self.schema.is_none() {
            self.schema = self.destination.table_schema(&self.target.table, &self.target.profile).await?;
        }
        let exists = self.schema.is_some();
        let (source, table) = (&self.target.source, &self.target.table);
        let marked = self.state.marker(source, &start_setting_marker(table)).await?.is_some();
        let stored = stored_start_setting(self.state, source, table, exists).await?;
        let start = resolve_start_setting(table, stored, self.target.profile.start)?;
        if !marked {
            // a new table, or one written before the setting was stored: record it now
            self.state
                .set_marker(source, &start_setting_marker(table), start.as_str(), now)
                .await?;
        }
        self.start = Some(start);
        Ok(start)
    }

    /// Reads the newest start written to the table (another writer of the same table, such as
    /// the webhook worker beside the reconciler, may have moved it).
    async fn refresh_max_start(&mut self) -> Result<(), WriteError> {
        if self.watermark_dirty {
            return Ok(());
        }
        if let Some(value) = self
            .state
            .marker(&self.target.source, &max_start_marker(&self.target.table))
            .await?
        {
            if let Ok(stored) = value.parse::<Millis>() {
                self.max_start = self.max_start.max(stored);
            }
        }
        Ok(())
    }

    async fn store_watermark(&mut self, written_at: Millis) -> Result<(), WriteError> {
        let (source, table) = (&self.target.source, &self.target.table);
        if self.late_versions > 0 {
            let marker = late_versions_marker(table);
            let stored: u64 = self
                .state
                .marker(source, &marker)
                .await?
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            self.state
                .set_marker(source, &marker, &(stored + self.late_versions).to_string(), written_at)
                .await?;
            self.late_versions = 0;
        }
        self.state
            .set_marker(source, &max_start_marker(table), &self.max_start.to_string(), written_at)
            .await?;
        self.watermark_dirty = false;
        Ok(())
    }

    /// Defers each batch's index write until the next batch is applied, and runs the two at
    /// the same time (see the module documentation). Call [`HistoryWriter::flush`] after the
    /// last batch; a writer dropped before that leaves the index behind the destination, as a
    /// crash would, and the next run replays those batches as no-ops.
    pub fn deferring_index_writes(mut self) -> Self {
        self.defer_index_writes = true;
        self
    }

    /// Writes the deferred index entries, if any.
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        if let Some(pending) = self.pending.take() {
            self.write_pending(pending).await?;
        }
        if !self.journal.is_empty() {
            self.journal.clear();
            self.store_journal().await?;
        }
        Ok(())
    }

    /// Stores the journal (an empty text when it is empty).
    async fn store_journal(&self) -> Result<(), WriteError> {
        let text = if self.journal.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&self.journal).expect("the journal serializes")
        };
        let written_at = self.journal.last().map_or(0, |batch| batch.written_at);
        self.state
            .set_marker(&self.target.source, &journal_marker(&self.target.table), &text, written_at)
            .await?;
        Ok(())
    }

    /// Looks for the journal of a writer that died after its destination commit: writes the
    /// index entries of each journaled batch the destination holds (they are in order, so the
    /// first one it does not hold ends the search), then clears the journal.
    async fn recover_journal(&mut self) -> Result<(), WriteError> {
        self.journal_checked = true;
        let (source, table) = (self.target.source.clone(), self.target.table.clone());
        let (source, table) = (source.as_str(), table.as_str());
        let Some(text) = self.state.marker(source, &journal_marker(table)).await? else {
            return Ok(());
        };
        if text.is_empty() {
            return Ok(());
        }
        let batches: Vec<JournaledBatch> = match serde_json::from_str(&text) {
            Ok(batches) => batches,
            Err(error) => {
                tracing::error!(%table, %error, "the history journal is unreadable; ignoring it (a replay may write a duplicate version)");
                Vec::new()
            }
        };
        let mut restored = 0usize;
        for batch in batches {
            let found = self
                .destination
                .version_state(
                    table,
                    &self.target.primary_key,
                    &self.target.profile,
                    &batch.probe_id,
                    batch.probe_start,
                )
                .await?;
            let committed = match found {
                Some(active) => !(batch.probe_closes && active),
                None => false,
            };
            if !committed {
                break;
            }
            let newest = batch.entries.iter().map(|(_, version, _)| version.start).max();
            let entries: Vec<IndexWrite> = batch
                .entries
                .into_iter()
                .map(|(id, version, terminal)| IndexWrite {
                    id,
                    version: CurrentVersion {
                        start: version.start,
                        end: version.end,
                        row_hash: version.row_hash,
                        modified: version.modified,
                        hashes_at_modified: version.hashes_at_modified,
                    },
                    terminal,
                    record: None,
                })
                .collect();
            restored += entries.len();
            self.state
                .write_index(source, &self.target.entity, entries, batch.written_at)
                .await?;
            if let Some(newest) = newest {
                self.refresh_max_start().await?;
                self.max_start = self.max_start.max(newest);
                self.watermark_dirty = true;
            }
        }
        if restored > 0 {
            tracing::warn!(%table, entries = restored, "a batch was committed to the destination but not to the current-record index before the last stop; its index entries were restored from the journal");
        }
        self.journal.clear();
        self.store_journal().await
    }

    async fn write_pending(&self, pending: PendingIndex) -> Result<(), StateError> {
        self.state
            .write_index(&self.target.source, &self.target.entity, pending.entries, pending.written_at)
            .await
    }

    /// The target.
    pub fn target(&self) -> &HistoryTarget {
        &self.target
    }

    /// Plans a batch: reads the index entries of its ids (and takes the deferred entries of
    /// the previous batch from memory) and the table schema (once per writer), and assembles
    /// the rows.
    pub async fn prepare(&mut self, mut observed: Vec<Observed>, synced_at: Millis) -> Result<PreparedWrite, WriteError> {
        let started = std::time::Instant::now();
        if self.schema.is_none() {
            // `None` while the table does not exist yet: the start setting tells new tables apart.
            self.schema = self.destination.table_schema(&self.target.table, &self.target.profile).await?;
        }
        // A record that would take the table past the column cap is refused alone.
        let no_columns = TableSchema::default();
        let refused = syncline_core::over_column_cap(
            self.schema.as_ref().unwrap_or(&no_columns),
            observed.iter().map(|item| match &item.observation.kind {
                syncline_core::ObservationKind::Upsert { record, .. } => Some(record),
                syncline_core::ObservationKind::Delete => None,
            }),
            syncline_core::DEFAULT_MAX_COLUMNS,
        );
        for over in refused.iter().rev() {
            let item = observed.remove(over.index);
            tracing::error!(
                table = %self.target.table,
                id = %item.observation.id,
                columns = over.columns,
                max_columns = syncline_core::DEFAULT_MAX_COLUMNS,
                "record refused: it would give its history table more columns than the cap; the other records are written. Remove fields upstream or leave the entity out of `entities`"
            );
        }
        let mut observations = Vec::with_capacity(observed.len());
        let mut extras = Vec::with_capacity(observed.len());
        for item in observed {
            observations.push(item.observation);
            extras.push((item.raw, item.terminal));
        }
        let setting = self.start_setting(synced_at).await?;
        if setting == StartSetting::Observed && !self.journal_checked {
            self.recover_journal().await?;
        }
        let mut ids: Vec<String> = observations.iter().map(|observation| observation.id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut current = self.state.current_versions(&self.target.source, &self.target.entity, &ids).await?;
        if let Some(pending) = &self.pending {
            overlay_pending(&mut current, &ids, &pending.entries);
        }
        drop(ids);
        let read_ms = started.elapsed().as_millis() as u64;
        self.refresh_max_start().await?;
        let starts = match setting {
            StartSetting::Source => Starts::Source,
            StartSetting::Observed => Starts::ObservedAt(synced_at.max(self.max_start.saturating_add(1))),
        };
        let plan = plan_history_with(&current, &observations, starts);
        drop(current);
        let late = plan.versions.iter().filter(|version| version.start <= self.max_start).count() as u64;
        if let Some(newest) = plan.versions.iter().map(|version| version.start).max() {
            self.late_versions += late;
            self.max_start = self.max_start.max(newest);
            self.watermark_dirty = true;
        }
        let empty = TableSchema::default();
        let schema_before = self.schema.as_ref().unwrap_or(&empty);
        let count = observations.len();
        let batch = assemble_batch_owned(
            &self.target.table,
            &self.target.primary_key,
            &self.target.profile,
            schema_before,
            &self.target.timestamp_columns,
            observations,
            &plan,
            synced_at,
        )?;
        tracing::debug!(
            table = %self.target.table,
            observations = count,
            read_ms,
            plan_ms = started.elapsed().as_millis() as u64 - read_ms,
            "batch planned"
        );
        Ok(PreparedWrite {
            batch: Arc::new(batch),
            plan,
            extras,
        })
    }

    /// Applies a prepared batch to the destination, then writes the index (or, when deferring,
    /// writes the previous batch's index while applying this one, and keeps this one's).
    pub async fn commit(&mut self, prepared: PreparedWrite) -> Result<WriteStats, WriteError> {
        let PreparedWrite { batch, plan, mut extras } = prepared;
        let stats = WriteStats {
            plan: plan.stats,
            schema_changes: batch.schema_changes.len(),
        };
        let started = std::time::Instant::now();
        // Observed starts: journal the entries before the destination has them (see the module
        // documentation).
        let journaled_entry = match self.start {
            Some(StartSetting::Observed) => JournaledBatch::of(&plan, &extras, batch.synced_at),
            _ => None,
        };
        let journaled = journaled_entry.is_some();
        if let Some(entry) = journaled_entry {
            self.journal.push(entry);
            self.store_journal().await?;
        }
        let previous = self.pending.take();
        let previous_journaled = previous.as_ref().is_some_and(|previous| previous.journaled);
        let apply = self.destination.apply(Arc::clone(&batch));
        let (applied, previous_written) = match previous {
            // The previous batch is committed in the destination: its index write may run
            // while this batch is applied.
            Some(previous) => {
                let (applied, written) = tokio::join!(apply, self.write_pending(previous));
                (applied, written.map_err(WriteError::from))
            }
            None => (apply.await, Ok(())),
        };
        applied?;
        previous_written?;
        if previous_journaled {
            // in the index now; the stored journal keeps it until the next store, harmlessly
            self.journal.remove(0);
        }
        if self.watermark_dirty {
            // After the commit: the marker never names a start the table does not hold.
            self.store_watermark(batch.synced_at).await?;
        }
        let apply_ms = started.elapsed().as_millis() as u64;
        self.schema = Some(batch.schema.clone());
        let entries: Vec<IndexWrite> = plan
            .index
            .into_iter()
            .map(|entry| {
                let (record, terminal) = match entry.observation {
                    Some(index) if entry.content_changed => (extras[index].0.take(), extras[index].1),
                    Some(index) => (None, extras[index].1),
                    None => (None, false),
                };
                IndexWrite {
                    id: entry.id,
                    version: entry.version,
                    terminal,
                    record,
                }
            })
            .collect();
        drop(extras);
        if !entries.is_empty() {
            let pending = PendingIndex {
                entries,
                written_at: batch.synced_at,
                journaled,
            };
            if self.defer_index_writes {
                self.pending = Some(pending);
            } else {
                self.write_pending(pending).await?;
            }
        }
        if journaled && self.pending.is_none() {
            // the index holds the batch now
            self.journal.pop();
            self.store_journal().await?;
        }
        tracing::debug!(
            table = %self.target.table,
            rows = batch.rows.len(),
            closes = batch.closes.len(),
            apply_ms,
            index_ms = started.elapsed().as_millis() as u64 - apply_ms,
            "batch committed"
        );
        Ok(stats)
    }

    /// Plans and commits one batch.
    pub async fn write(&mut self, observed: Vec<Observed>, synced_at: Millis) -> Result<WriteStats, WriteError> {
        let prepared = self.prepare(observed, synced_at).await?;
        self.commit(prepared).await
    }

    /// Ends a full extract: closes, as deleted at `extract_time`, every active id that the
    /// extract did not contain.
    pub async fn close_absent(
        &mut self,
        seen: &HashSet<String>,
        extract_time: Millis,
        synced_at: Millis,
    ) -> Result<WriteStats, WriteError> {
        self.flush().await?;
        let current = self.state.all_current_versions(&self.target.source, &self.target.entity).await?;
        let deletes = full_extract_deletes(&current, seen, extract_time);
        if deletes.is_empty() {
            return Ok(WriteStats::default());
        }
        let observed = deletes
            .into_iter()
            .map(|observation| Observed {
                observation,
                raw: None,
                terminal: false,
            })
            .collect();
        self.write(observed, synced_at).await
    }
}

/// Puts the deferred entries of ids in `ids` (sorted) over what the state store returned.
fn overlay_pending(current: &mut HashMap<String, CurrentVersion>, ids: &[String], pending: &[IndexWrite]) {
    for entry in pending {
        if ids.binary_search(&entry.id).is_ok() {
            current.insert(entry.id.clone(), entry.version.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DuckDbDestination;
    use serde_json::json;
    use syncline_core::{flatten_record, row_hash, NamingOptions, ObservationKind};
    use syncline_state::SqliteStateStore;

    fn target() -> HistoryTarget {
        HistoryTarget {
            source: "test".into(),
            entity: "deal".into(),
            table: "deal_history".into(),
            primary_key: "id".into(),
            // source starts: the crash tests below replay batches from a stale index
            profile: HistoryProfile::default().with_start(StartSetting::Source),
            timestamp_columns: HashSet::new(),
        }
    }

    fn upsert(id: u64, value: u64, time: i64) -> Observed {
        let record = json!({"id": id, "value": value, "nested": {"v": value % 3}});
        let raw = record.to_string();
        let flat = flatten_record(record, NamingOptions::default()).unwrap();
        let row_hash = row_hash(&flat);
        Observed {
            observation: Observation {
                id: id.to_string(),
                time,
                kind: ObservationKind::Upsert { record: flat, row_hash },
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

    /// Batches that touch the same ids again and again, so each batch's plan depends on the
    /// entries of the one before.
    fn batches() -> Vec<Vec<Observed>> {
        (0..12u64)
            .map(|number| {
                let time = 1_000 * (number as i64 + 1);
                (0..40u64)
                    .filter_map(|id| match (id + number) % 7 {
                        0 if number > 0 => Some(delete(id, time)),
                        1 | 2 => None,
                        3 => Some(upsert(id, 1, time)),
                        _ => Some(upsert(id, id * number, time - (id % 2) as i64 * 500)),
                    })
                    .collect()
            })
            .collect()
    }

    async fn run(deferred: bool) -> (Vec<crate::StoredVersion>, HashMap<String, CurrentVersion>, WriteStats) {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("w.duckdb"));
        let state = SqliteStateStore::in_memory().unwrap();
        let mut writer = HistoryWriter::new(&destination, &state, target());
        if deferred {
            writer = writer.deferring_index_writes();
        }
        let mut stats = WriteStats::default();
        for batch in batches() {
            stats += writer.write(batch, 5).await.unwrap();
        }
        let seen: HashSet<String> = (0..30u64).map(|id| id.to_string()).collect();
        stats += writer.close_absent(&seen, 50_000, 6).await.unwrap();
        writer.flush().await.unwrap();
        let versions = destination
            .read_versions("deal_history", "id", &HistoryProfile::default())
            .await
            .unwrap();
        let index = state.all_current_versions("test", "deal").await.unwrap();
        (versions, index, stats)
    }

    #[tokio::test]
    async fn a_table_keeps_its_start_setting() {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("w.duckdb"));
        let state = SqliteStateStore::in_memory().unwrap();
        // A table written before the setting existed: no marker, rows in the table.
        let mut legacy = target();
        legacy.profile.start = None;
        let mut writer = HistoryWriter::new(&destination, &state, legacy.clone());
        writer.write(vec![upsert(1, 1, 1_000)], 5).await.unwrap();
        state
            .set_marker("test", &start_setting_marker("deal_history"), "", 5)
            .await
            .unwrap();
        let error = HistoryWriter::new(&destination, &state, legacy.clone())
            .write(vec![upsert(1, 2, 2_000)], 6)
            .await
            .unwrap_err();
        assert!(matches!(error, WriteError::UnknownStartSetting { .. }), "{error}");
        // the marker is gone (an older syncline wrote the table): the table counts as source
        let fresh = SqliteStateStore::in_memory().unwrap();
        let mut observed = legacy.clone();
        observed.profile.start = Some(StartSetting::Observed);
        let error = HistoryWriter::new(&destination, &fresh, observed)
            .write(vec![upsert(1, 2, 2_000)], 6)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("written with [history] start = \"source\" and cannot change to \"observed\""),
            "{error}"
        );
        let versions = destination
            .read_versions("deal_history", "id", &HistoryProfile::default())
            .await
            .unwrap();
        assert_eq!(versions.len(), 1, "a refused write writes nothing");
        // unset keeps the table's setting
        HistoryWriter::new(&destination, &fresh, legacy)
            .write(vec![upsert(1, 2, 2_000)], 6)
            .await
            .unwrap();
        assert_eq!(
            fresh
                .marker("test", &start_setting_marker("deal_history"))
                .await
                .unwrap()
                .as_deref(),
            Some("source")
        );
    }

    #[tokio::test]
    async fn deferred_index_writes_give_the_same_history_and_index() {
        let immediate = run(false).await;
        let deferred = run(true).await;
        assert!(immediate.2.plan.closed > 0 && immediate.2.plan.deleted > 0, "{:?}", immediate.2);
        assert_eq!(deferred.2, immediate.2);
        assert_eq!(deferred.0, immediate.0);
        assert_eq!(deferred.1, immediate.1);
    }

    fn observed_target() -> HistoryTarget {
        let mut target = target();
        target.profile = HistoryProfile::default().with_start(StartSetting::Observed);
        target
    }

    #[tokio::test]
    async fn observed_starts_restore_a_batch_committed_before_a_crash_from_the_journal() {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("w.duckdb"));
        let state = SqliteStateStore::in_memory().unwrap();
        let all = batches();
        {
            let mut writer = HistoryWriter::new(&destination, &state, observed_target()).deferring_index_writes();
            for (number, batch) in all[..5].iter().enumerate() {
                writer.write(batch.clone(), 100_000 + number as i64).await.unwrap();
            }
            // the process dies: batch 4 is in the destination, its index entries are not
        }
        let profile = HistoryProfile::default();
        let before = destination.read_versions("deal_history", "id", &profile).await.unwrap();
        // replayed at a later write time, which would be every new version's start
        let mut writer = HistoryWriter::new(&destination, &state, observed_target());
        for batch in &all[3..5] {
            writer.write(batch.clone(), 200_000).await.unwrap();
        }
        let after = destination.read_versions("deal_history", "id", &profile).await.unwrap();
        assert_eq!(after, before, "the replay writes no second version of what the crashed batch wrote");
        let check = destination.check_history("deal_history", "id", &profile).await.unwrap();
        assert!(check.is_clean(), "{check:?}");
        let journal = state.marker("test", &journal_marker("deal_history")).await.unwrap();
        assert_eq!(journal.as_deref(), Some(""), "the journal is cleared once restored");
        // later batches go on from the restored index with increasing starts
        for batch in &all[5..] {
            writer.write(batch.clone(), 300_000).await.unwrap();
        }
        let check = destination.check_history("deal_history", "id", &profile).await.unwrap();
        assert!(check.is_clean(), "{check:?}");
    }

    #[tokio::test]
    async fn a_journaled_batch_the_destination_never_committed_is_dropped() {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("w.duckdb"));
        let state = SqliteStateStore::in_memory().unwrap();
        let all = batches();
        HistoryWriter::new(&destination, &state, observed_target())
            .write(all[0].clone(), 100_000)
            .await
            .unwrap();
        // id 1 is in neither batch 0 nor batch 1; the journal says a batch wrote it
        let never_applied = JournaledBatch {
            probe_id: "1".into(),
            probe_start: 150_000,
            probe_closes: false,
            written_at: 150_000,
            entries: vec![(
                "1".into(),
                JournaledVersion {
                    start: 150_000,
                    end: None,
                    row_hash: "never written".into(),
                    modified: 1,
                    hashes_at_modified: Vec::new(),
                },
                false,
            )],
        };
        let text = serde_json::to_string(&vec![never_applied]).unwrap();
        state
            .set_marker("test", &journal_marker("deal_history"), &text, 150_000)
            .await
            .unwrap();
        HistoryWriter::new(&destination, &state, observed_target())
            .write(all[1].clone(), 200_000)
            .await
            .unwrap();
        let index = state.all_current_versions("test", "deal").await.unwrap();
        assert!(
            !index.contains_key("1"),
            "an entry of a batch the destination does not hold is not restored"
        );
        let journal = state.marker("test", &journal_marker("deal_history")).await.unwrap();
        assert_eq!(journal.as_deref(), Some(""));
    }

    #[tokio::test]
    async fn a_crash_before_deferred_index_writes_replays_as_a_no_op() {
        let directory = tempfile::tempdir().unwrap();
        let destination = DuckDbDestination::new(directory.path().join("w.duckdb"));
        let state = SqliteStateStore::in_memory().unwrap();
        let all = batches();
        {
            let mut writer = HistoryWriter::new(&destination, &state, target()).deferring_index_writes();
            for batch in &all[..5] {
                writer.write(batch.clone(), 5).await.unwrap();
            }
            // the process dies: batch 4 is in the destination, its index entries are not
        }
        let profile = HistoryProfile::default();
        let before = destination.read_versions("deal_history", "id", &profile).await.unwrap();
        let mut writer = HistoryWriter::new(&destination, &state, target()).deferring_index_writes();
        for batch in &all[3..5] {
            writer.write(batch.clone(), 7).await.unwrap();
        }
        writer.flush().await.unwrap();
        let after = destination.read_versions("deal_history", "id", &profile).await.unwrap();
        assert_eq!(after, before, "replaying the batches the index missed changes nothing");
        for batch in &all[5..] {
            writer.write(batch.clone(), 8).await.unwrap();
        }
        writer.flush().await.unwrap();
        let (expected, expected_index, _) = {
            let directory = tempfile::tempdir().unwrap();
            let reference = DuckDbDestination::new(directory.path().join("r.duckdb"));
            let reference_state = SqliteStateStore::in_memory().unwrap();
            let mut reference_writer = HistoryWriter::new(&reference, &reference_state, target());
            for batch in &all {
                reference_writer.write(batch.clone(), 5).await.unwrap();
            }
            (
                reference.read_versions("deal_history", "id", &profile).await.unwrap(),
                reference_state.all_current_versions("test", "deal").await.unwrap(),
                (),
            )
        };
        assert_eq!(destination.read_versions("deal_history", "id", &profile).await.unwrap(), expected);
        assert_eq!(state.all_current_versions("test", "deal").await.unwrap(), expected_index);
    }
}
