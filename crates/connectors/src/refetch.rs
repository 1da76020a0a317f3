//! The webhook path's apply step: events coalesced per `(entity, id)`, the current record
//! re-fetched from the API (a payload is never trusted as the state, and a delete is confirmed
//! by the API before it closes anything), and the batch written through the history engine
//! under the entity's write lock.
//!
//! [`coalesce`], [`clamp_event_time`], [`decide`] and [`reopen_observed_alive`] are pure;
//! [`apply_entity_events`] and [`write_under_lock`] are the thin I/O around them.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use syncline_core::{CurrentVersion, EventAction, Millis, Observation, ObservationKind, WebhookEvent};
use syncline_destinations::{Destination, HistoryWriter, Observed, WriteStats};
use syncline_state::StateStore;

use crate::config::SynclineConfig;
use crate::http::HttpEngine;
use crate::locks::WriteLocks;
use crate::pipedrive::{cached_field_names, refresh_field_names};
use crate::reconcile::{history_target, observe, parent_id_field, record_id, rename_custom_fields};
use crate::spec::{ConnectorKind, EntitySpec};
use crate::ConnectorError;

/// Detail requests in flight at once per entity batch.
const FETCH_CONCURRENCY: usize = 16;

/// The events of one record, reduced to what the worker does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalescedEvent {
    /// The entity.
    pub entity: String,
    /// The record id.
    pub id: String,
    /// What the latest event says: re-fetch (upsert) or close (delete).
    pub action: EventAction,
    /// The latest event time (a delete closes the record at this time).
    pub event_time: Millis,
    /// The parent of a sub-resource, from any of its events.
    pub parent_id: Option<String>,
}

/// Coalesces events per `(entity, id)`, in first-seen order: the event with the latest event
/// time decides, and of equal times the one listed last (the inbox lists in arrival order). A
/// re-fetch reads the record as it is now, so one fetch serves every upsert of an id.
pub fn coalesce<'a>(events: impl IntoIterator<Item = &'a WebhookEvent>) -> Vec<CoalescedEvent> {
    let mut position: HashMap<(&str, &str), usize> = HashMap::new();
    let mut out: Vec<CoalescedEvent> = Vec::new();
    for event in events {
        let key = (event.entity.as_str(), event.id.as_str());
        let mut candidate = CoalescedEvent {
            entity: event.entity.clone(),
            id: event.id.clone(),
            action: event.action,
            event_time: event.event_time,
            parent_id: event.parent_id.clone(),
        };
        match position.get(&key) {
            Some(&at) if event.event_time >= out[at].event_time => {
                candidate.parent_id = candidate.parent_id.or_else(|| out[at].parent_id.take());
                out[at] = candidate;
            }
            Some(&at) => {
                if out[at].parent_id.is_none() {
                    out[at].parent_id = candidate.parent_id;
                }
            }
            None => {
                position.insert(key, out.len());
                out.push(candidate);
            }
        }
    }
    out
}

/// Clamps an event time taken from a payload to the time the webhook was received plus the
/// allowed clock skew: a sender's clock (or a forger) cannot date an event in the future, so a
/// delete dated in the year 5000 cannot outlive every later observation.
pub fn clamp_event_time(event_time: Millis, received_at: Millis, max_skew_ms: i64) -> Millis {
    event_time.min(received_at.saturating_add(max_skew_ms.max(0)))
}

/// What the detail GET behind one event showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The record as the API returns it now.
    Alive(Value),
    /// 404/410, or the record carries its vendor's deleted flag.
    Gone,
}

/// What an event becomes once its record was fetched: a delete is closed only when the API
/// confirms it (404/410 or the deleted flag); a delete the API refutes becomes an upsert of
/// what it returns. An upsert whose record is gone closes it at `now` (its delete webhook may
/// have been lost).
pub fn decide(spec: &EntitySpec, event: &CoalescedEvent, fetched: Fetched, now: Millis) -> Decision {
    match fetched {
        Fetched::Alive(record) if !spec.is_deleted(&record) => Decision::Upsert(record),
        Fetched::Alive(_) | Fetched::Gone => Decision::Delete {
            time: match event.action {
                EventAction::Delete => event.event_time.min(now),
                EventAction::Upsert => now,
            },
        },
    }
}

/// See [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write the record.
    Upsert(Value),
    /// Close the record at this time.
    Delete {
        /// The delete time.
        time: Millis,
    },
}

/// Upserts of ids the index holds as deleted, observed alive after the delete, reopen the id:
/// their time moves past the delete to `observed_at` (the planner ignores an upsert not later
/// than the delete, and an upstream undelete may keep the old modified time). An observation
/// made before the delete stays as it is, so a stale listing never resurrects a deleted record.
pub fn reopen_observed_alive(observed: &mut [Observed], current: &HashMap<String, CurrentVersion>, observed_at: Millis) -> usize {
    let mut reopened = 0;
    for item in observed {
        if !matches!(item.observation.kind, ObservationKind::Upsert { .. }) {
            continue;
        }
        let Some(deleted_at) = current.get(&item.observation.id).and_then(|version| version.end) else {
            continue;
        };
        if item.observation.time <= deleted_at && observed_at > deleted_at {
            item.observation.time = observed_at;
            reopened += 1;
        }
    }
    reopened
}

/// What applying one entity's events did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventApplyReport {
    /// Records re-fetched from the API.
    pub fetched: usize,
    /// Upserts whose record the API no longer has: closed as deleted at the fetch time.
    pub vanished: usize,
    /// Sub-resource records whose parent is unknown (the reconciler picks them up through the
    /// parent's since-filter).
    pub deferred: usize,
    /// Delete events the API confirmed (404/410 or the deleted flag).
    pub confirmed_deletes: usize,
    /// Delete events the API refuted (the record is alive): applied as upserts.
    pub refuted_deletes: usize,
    /// Records closed by a delete and seen alive again: reopened as a new version.
    pub reopened: usize,
    /// Records that failed on their own (a 4xx, a 5xx while the rest of the batch was
    /// fetched, a record that cannot be flattened): `(id, error)`. Retried, in the end
    /// dead-lettered; the rest of the batch is applied.
    pub failed: Vec<(String, String)>,
    /// Records whose fetch hit transient trouble (the upstream down or rate limiting):
    /// `(id, error)`. Retried later without counting an attempt.
    pub transient: Vec<(String, String)>,
    /// What the history writer did.
    pub written: WriteStats,
    /// Time spent re-fetching the records (milliseconds).
    pub fetch_ms: u64,
    /// Time spent waiting for the entity's write lock (a reconcile page or another batch
    /// writing the same table), in milliseconds.
    pub lock_wait_ms: u64,
    /// Time spent planning and writing the batch, lock held (milliseconds).
    pub write_ms: u64,
}

/// Everything the worker needs to apply one source's events.
pub struct EventRun<'a> {
    /// The whole configuration.
    pub config: &'a SynclineConfig,
    /// Source name.
    pub source: &'a str,
    /// The destination.
    pub destination: &'a dyn Destination,
    /// The state store.
    pub state: &'a dyn StateStore,
    /// The source's HTTP engine.
    pub engine: &'a HttpEngine,
    /// The write locks shared with the reconciler.
    pub locks: &'a WriteLocks,
}

/// Where one history batch goes, and the lock that serialises its writers.
pub struct BatchTarget<'a> {
    /// The whole configuration.
    pub config: &'a SynclineConfig,
    /// Source name.
    pub source: &'a str,
    /// The destination.
    pub destination: &'a dyn Destination,
    /// The state store.
    pub state: &'a dyn StateStore,
    /// The write locks.
    pub locks: &'a WriteLocks,
}

/// How many ids of a batch are corrections the webhooks had not delivered: upserts of ids the
/// index does not hold, holds as deleted, or holds with another content, whose time is before
/// `changed_before`; and deletes of active ids. Each id counts once.
pub fn count_corrections(observed: &[Observed], current: &HashMap<String, CurrentVersion>, changed_before: Millis) -> usize {
    let mut corrected: HashSet<&str> = HashSet::new();
    for item in observed {
        let observation = &item.observation;
        let version = current.get(&observation.id);
        let correction = match &observation.kind {
            ObservationKind::Upsert { row_hash, .. } => {
                observation.time < changed_before
                    && match version {
                        None => true,
                        Some(version) if version.end.is_some() => true,
                        Some(version) => *row_hash != version.row_hash && observation.time >= version.modified,
                    }
            }
            ObservationKind::Delete => version.is_some_and(|version| version.end.is_none() && observation.time >= version.modified),
        };
        if correction {
            corrected.insert(observation.id.as_str());
        }
    }
    corrected.len()
}

/// What [`write_under_lock`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchWritten {
    /// The history writer's counts.
    pub stats: WriteStats,
    /// Ids closed by a delete and seen alive again, reopened.
    pub reopened: usize,
    /// Corrections (see [`count_corrections`]); 0 unless asked for.
    pub healed: usize,
    /// Time spent waiting for the write lock (milliseconds).
    pub lock_wait_ms: u64,
}

/// Plans and writes one batch under the `(source, entity)` write lock: the index is read
/// under the lock (by the writer, and here for [`reopen_observed_alive`] and
/// [`count_corrections`]), so a concurrent webhook batch and reconcile page never plan against
/// a stale current version. `heal_before`: count corrections of changes older than this.
pub async fn write_under_lock(
    target: &BatchTarget<'_>,
    spec: &EntitySpec,
    mut observed: Vec<Observed>,
    observed_at: Millis,
    synced_at: Millis,
    heal_before: Option<Millis>,
) -> Result<BatchWritten, ConnectorError> {
    if observed.is_empty() {
        return Ok(BatchWritten::default());
    }
    let waiting = std::time::Instant::now();
    let _writing = target.locks.lock(target.source, spec.name).await;
    let lock_wait_ms = waiting.elapsed().as_millis() as u64;
    let mut ids: Vec<String> = observed.iter().map(|item| item.observation.id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let current = target.state.current_versions(target.source, spec.name, &ids).await?;
    drop(ids);
    let reopened = reopen_observed_alive(&mut observed, &current, observed_at);
    let healed = heal_before.map_or(0, |before| count_corrections(&observed, &current, before));
    drop(current);
    let history = history_target(target.config, target.source, spec);
    let mut writer = HistoryWriter::new(target.destination, target.state, history);
    let stats = writer.write(observed, synced_at).await?;
    Ok(BatchWritten {
        stats,
        reopened,
        healed,
        lock_wait_ms,
    })
}

/// Re-fetches the records of one entity's coalesced events (deletes included: a delete is
/// confirmed by the API before it closes a record) and writes them as one history batch under
/// the entity's write lock. A record that fails on its own is reported in
/// [`EventApplyReport::failed`] and the rest is written; `Err` means nothing was written (the
/// warehouse or the state store failed, or the source is not configured). A retry of the same
/// events plans nothing new.
pub async fn apply_entity_events(
    run: &EventRun<'_>,
    entity: &str,
    events: &[CoalescedEvent],
    now: Millis,
) -> Result<EventApplyReport, ConnectorError> {
    let source_config = run.config.sources.get(run.source).ok_or_else(|| {
        ConnectorError::Http(format!(
            "source `{}` is not configured; add [sources.{}] or stop sending its webhooks",
            run.source, run.source
        ))
    })?;
    let connector = source_config.connector;
    let spec = connector.entity(entity).ok_or_else(|| {
        ConnectorError::Http(format!(
            "{} has no entity `{entity}`; the entities are {}",
            connector.name(),
            connector.entity_names()
        ))
    })?;
    let mut report = EventApplyReport::default();
    let mut to_fetch: Vec<(usize, String)> = Vec::new();
    for (position, event) in events.iter().enumerate() {
        match detail_path(run, spec, connector, event).await? {
            Some(path) => to_fetch.push((position, path)),
            // A delete of a sub-resource whose parent nobody knows: the index does not hold it
            // either, so there is nothing to close.
            None => report.deferred += 1,
        }
    }

    let engine = run.engine;
    let fetching = std::time::Instant::now();
    let fetched: Vec<(usize, Result<Option<Value>, ConnectorError>)> = stream::iter(to_fetch)
        .map(move |(position, path): (usize, String)| async move {
            let body = engine.get(&path, &[], true).await;
            (position, body)
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .collect()
        .await;
    report.fetch_ms = fetching.elapsed().as_millis() as u64;
    let fetched: Vec<(&CoalescedEvent, Result<Option<Value>, ConnectorError>)> =
        fetched.into_iter().map(|(position, body)| (&events[position], body)).collect();
    // A 5xx after every retry is the record's own trouble when the API answered for others in
    // the same batch, and an outage (transient) when it answered for none.
    let upstream_answered = fetched.iter().any(|(_, body)| body.is_ok());
    let mut decisions: Vec<(&CoalescedEvent, Decision)> = Vec::with_capacity(fetched.len());
    for (event, body) in fetched {
        report.fetched += 1;
        let fetched = match body {
            Ok(Some(body)) => Fetched::Alive(unwrap_detail(body)),
            Ok(None) => Fetched::Gone,
            Err(error) => {
                let outage = matches!(error, ConnectorError::Unavailable(_)) && !upstream_answered;
                let entry = (event.id.clone(), error.to_string());
                if outage
                    || matches!(
                        error,
                        ConnectorError::RateLimited { .. } | ConnectorError::BudgetExhausted { .. } | ConnectorError::CreditReserve { .. }
                    )
                {
                    report.transient.push(entry);
                } else {
                    tracing::warn!(source = run.source, entity, id = %event.id, %error, "record fetch failed; retried on its own");
                    report.failed.push(entry);
                }
                continue;
            }
        };
        let decision = decide(spec, event, fetched, now);
        match (event.action, &decision) {
            (EventAction::Delete, Decision::Delete { .. }) => report.confirmed_deletes += 1,
            (EventAction::Delete, Decision::Upsert(_)) => {
                report.refuted_deletes += 1;
                tracing::info!(source = run.source, entity, id = %event.id, "delete webhook refuted by the api (the record is alive); applied as an update");
            }
            (EventAction::Upsert, Decision::Delete { .. }) => report.vanished += 1,
            (EventAction::Upsert, Decision::Upsert(_)) => {}
        }
        decisions.push((event, decision));
    }
    let has_records = decisions.iter().any(|(_, decision)| matches!(decision, Decision::Upsert(_)));
    let names = if spec.fields_path.is_some() && has_records {
        let mut names = cached_field_names(run.engine, run.state, run.source, spec).await?;
        let unknown = decisions.iter().any(|(_, decision)| match decision {
            Decision::Upsert(record) => !names.unknown_keys(record).is_empty(),
            Decision::Delete { .. } => false,
        });
        if unknown {
            names = refresh_field_names(run.engine, run.state, run.source, spec).await?;
        }
        Some(names)
    } else {
        None
    };
    let mut observed: Vec<Observed> = Vec::with_capacity(decisions.len());
    for (event, decision) in decisions {
        match decision {
            Decision::Delete { time } => observed.push(Observed {
                observation: Observation {
                    id: event.id.clone(),
                    time,
                    kind: ObservationKind::Delete,
                },
                raw: None,
                terminal: false,
            }),
            Decision::Upsert(mut record) => {
                if let Some(names) = &names {
                    rename_custom_fields(names, &mut record);
                }
                match observe(spec, record, now) {
                    Ok(item) => observed.push(item),
                    Err(error) => {
                        tracing::warn!(source = run.source, entity, id = %event.id, %error, "record cannot become history; retried on its own");
                        report.failed.push((event.id.clone(), error.to_string()));
                    }
                }
            }
        }
    }
    let target = BatchTarget {
        config: run.config,
        source: run.source,
        destination: run.destination,
        state: run.state,
        locks: run.locks,
    };
    let writing = std::time::Instant::now();
    let outcome = write_under_lock(&target, spec, observed.clone(), now, now, None).await;
    let elapsed = writing.elapsed().as_millis() as u64;
    match outcome {
        Ok(written) => {
            report.written = written.stats;
            report.reopened = written.reopened;
            report.lock_wait_ms = written.lock_wait_ms;
            report.write_ms = elapsed.saturating_sub(written.lock_wait_ms);
        }
        Err(error) if error.is_transient() || observed.len() < 2 => {
            if observed.len() == 1 && !error.is_transient() {
                report.failed.push((observed[0].observation.id.clone(), error.to_string()));
                return Ok(report);
            }
            return Err(error);
        }
        Err(error) => {
            // Something in the batch cannot be written: write record by record, so only the
            // culprit fails.
            tracing::warn!(source = run.source, entity, %error, "batch cannot be written; writing its records one by one");
            for item in observed {
                let id = item.observation.id.clone();
                match write_under_lock(&target, spec, vec![item], now, now, None).await {
                    Ok(written) => {
                        report.written += written.stats;
                        report.reopened += written.reopened;
                    }
                    Err(error) if error.is_transient() => return Err(error),
                    Err(error) => report.failed.push((id, error.to_string())),
                }
            }
        }
    }
    Ok(report)
}

/// The detail path of a record; for a sub-resource, its parent comes from the event, else from
/// the record as the index last stored it (`None` when neither knows it).
async fn detail_path(
    run: &EventRun<'_>,
    spec: &EntitySpec,
    connector: ConnectorKind,
    event: &CoalescedEvent,
) -> Result<Option<String>, ConnectorError> {
    let Some(parent) = spec.parent.and_then(|parent| connector.entity(parent)) else {
        return Ok(Some(spec.detail_path_for(&event.id, None)?));
    };
    if let Some(parent_id) = &event.parent_id {
        return Ok(Some(spec.detail_path_for(&event.id, Some(parent_id))?));
    }
    let stored = run.state.record(run.source, spec.name, &event.id).await?;
    let parent_id = stored
        .and_then(|stored| stored.record)
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|record| record_id(&record, &parent_id_field(parent)));
    match parent_id {
        Some(parent_id) => Ok(Some(spec.detail_path_for(&event.id, Some(&parent_id))?)),
        None => Ok(None),
    }
}

/// Pipedrive wraps a detail in `{"data": ..}`; Zoho Desk and HaloPSA answer the record itself.
fn unwrap_detail(body: Value) -> Value {
    match body {
        Value::Object(mut map) if map.get("data").is_some_and(Value::is_object) => map.remove("data").unwrap_or_default(),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(entity: &str, id: &str, action: EventAction, time: Millis) -> WebhookEvent {
        WebhookEvent {
            source: "crm".into(),
            entity: entity.into(),
            id: id.into(),
            action,
            event_time: time,
            delivery_id: format!("{entity}-{id}-{time}"),
            parent_id: None,
        }
    }

    #[test]
    fn latest_event_per_record_decides() {
        let events = vec![
            event("deal", "1", EventAction::Upsert, 10),
            event("deal", "2", EventAction::Upsert, 10),
            event("deal", "1", EventAction::Delete, 20),
            event("person", "1", EventAction::Upsert, 5),
            // Late and stale: an older update arrives after the delete.
            event("deal", "1", EventAction::Upsert, 15),
        ];
        let coalesced = coalesce(&events);
        assert_eq!(coalesced.len(), 3);
        assert_eq!(
            coalesced[0],
            CoalescedEvent {
                entity: "deal".into(),
                id: "1".into(),
                action: EventAction::Delete,
                event_time: 20,
                parent_id: None
            }
        );
        assert_eq!((coalesced[1].id.as_str(), coalesced[1].action), ("2", EventAction::Upsert));
        assert_eq!((coalesced[2].entity.as_str(), coalesced[2].event_time), ("person", 5));
    }

    #[test]
    fn a_recreate_after_a_delete_is_an_upsert() {
        let events = vec![
            event("deal", "1", EventAction::Delete, 20),
            event("deal", "1", EventAction::Upsert, 20),
        ];
        assert_eq!(coalesce(&events)[0].action, EventAction::Upsert);
    }

    #[test]
    fn details_are_unwrapped() {
        let wrapped = serde_json::json!({"success": true, "data": {"id": 1}});
        assert_eq!(unwrap_detail(wrapped), serde_json::json!({"id": 1}));
        let bare = serde_json::json!({"id": 1, "data": "text"});
        assert_eq!(unwrap_detail(bare.clone()), bare);
    }
}
