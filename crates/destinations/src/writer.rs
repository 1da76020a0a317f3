//! The history writer: plans a batch of observations against the current-record index,
//! applies it to the destination, then updates the index. The index update follows the
//! destination commit; if the process dies between the two, replaying the batch plans the same
//! operations again and the destination, which ignores rows it already has, changes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use syncline_core::{
    assemble_batch, full_extract_deletes, plan_history, CoreError, HistoryBatch, HistoryProfile, Millis, Observation, Plan, PlanStats,
    TableSchema,
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

/// Maintains one history table.
pub struct HistoryWriter<'a> {
    destination: &'a dyn Destination,
    state: &'a dyn StateStore,
    target: HistoryTarget,
    schema: Option<TableSchema>,
}

impl<'a> HistoryWriter<'a> {
    /// A writer for one table.
    pub fn new(destination: &'a dyn Destination, state: &'a dyn StateStore, target: HistoryTarget) -> Self {
        Self {
            destination,
            state,
            target,
            schema: None,
        }
    }

    /// The target.
    pub fn target(&self) -> &HistoryTarget {
        &self.target
    }

    /// Plans a batch: reads the index entries of its ids and the table schema (once per
    /// writer), and assembles the rows.
    pub async fn prepare(&mut self, observed: Vec<Observed>, synced_at: Millis) -> Result<PreparedWrite, WriteError> {
        let started = std::time::Instant::now();
        let mut observations = Vec::with_capacity(observed.len());
        let mut extras = Vec::with_capacity(observed.len());
        for item in observed {
            observations.push(item.observation);
            extras.push((item.raw, item.terminal));
        }
        let mut ids: Vec<String> = observations.iter().map(|observation| observation.id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let current = self.state.current_versions(&self.target.source, &self.target.entity, &ids).await?;
        let read_ms = started.elapsed().as_millis() as u64;
        let plan = plan_history(&current, &observations);
        if self.schema.is_none() {
            self.schema = Some(
                self.destination
                    .table_schema(&self.target.table, &self.target.profile)
                    .await?
                    .unwrap_or_default(),
            );
        }
        let schema_before = self.schema.as_ref().expect("schema loaded above");
        let batch = assemble_batch(
            &self.target.table,
            &self.target.primary_key,
            &self.target.profile,
            schema_before,
            &self.target.timestamp_columns,
            &observations,
            &plan,
            synced_at,
        )?;
        tracing::debug!(
            table = %self.target.table,
            observations = observations.len(),
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

    /// Applies a prepared batch to the destination, then writes the index.
    pub async fn commit(&mut self, prepared: PreparedWrite) -> Result<WriteStats, WriteError> {
        let PreparedWrite { batch, plan, mut extras } = prepared;
        let stats = WriteStats {
            plan: plan.stats,
            schema_changes: batch.schema_changes.len(),
        };
        let started = std::time::Instant::now();
        self.destination.apply(Arc::clone(&batch)).await?;
        let apply_ms = started.elapsed().as_millis() as u64;
        self.schema = Some(batch.schema.clone());
        if !plan.index.is_empty() {
            let entries = plan
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
            self.state
                .write_index(&self.target.source, &self.target.entity, entries, batch.synced_at)
                .await?;
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
