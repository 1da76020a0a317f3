//! The webhook path's apply step: events coalesced per `(entity, id)`, the current record
//! re-fetched from the API (a payload is never trusted as the state; a delete needs no fetch),
//! and the batch written through the history engine.
//!
//! [`coalesce`] is pure; [`apply_entity_events`] is the thin I/O around it.

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use syncline_core::{EventAction, Millis, Observation, ObservationKind, WebhookEvent};
use syncline_destinations::{Destination, HistoryWriter, Observed, WriteStats};
use syncline_state::StateStore;

use crate::config::SynclineConfig;
use crate::http::HttpEngine;
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

/// What applying one entity's events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventApplyReport {
    /// Records re-fetched from the API.
    pub fetched: usize,
    /// Upserts whose record the API no longer has: closed as deleted at the fetch time.
    pub vanished: usize,
    /// Sub-resource records whose parent is unknown (the reconciler picks them up through the
    /// parent's since-filter).
    pub deferred: usize,
    /// What the history writer did.
    pub written: WriteStats,
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
}

/// Re-fetches the records of one entity's coalesced events and writes them as one history
/// batch. Errors leave nothing half-applied: the writer commits the destination batch, then the
/// index, and a retry of the same events plans nothing new.
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
    let mut observed: Vec<Observed> = Vec::with_capacity(events.len());
    let mut to_fetch: Vec<(String, String)> = Vec::new();
    for event in events {
        match event.action {
            EventAction::Delete => observed.push(Observed {
                observation: Observation {
                    id: event.id.clone(),
                    time: event.event_time,
                    kind: ObservationKind::Delete,
                },
                raw: None,
                terminal: false,
            }),
            EventAction::Upsert => match detail_path(run, spec, connector, event).await {
                Ok(Some(path)) => to_fetch.push((event.id.clone(), path)),
                Ok(None) => report.deferred += 1,
                // Never requested; the others of the batch go on.
                Err(ConnectorError::InvalidId(error)) => tracing::warn!(source = run.source, %error, "event skipped"),
                Err(error) => return Err(error),
            },
        }
    }

    let fetched: Vec<(String, Result<Option<Value>, ConnectorError>)> = stream::iter(to_fetch)
        .map(|(id, path)| async move {
            let body = run.engine.get(&path, &[], true).await;
            (id, body)
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .collect()
        .await;
    let mut records: Vec<Value> = Vec::with_capacity(fetched.len());
    for (id, body) in fetched {
        report.fetched += 1;
        match body? {
            Some(body) => {
                let record = unwrap_detail(body);
                if spec.is_record(&record, &id) {
                    records.push(record);
                } else {
                    tracing::error!(
                        source = run.source,
                        entity = spec.name,
                        id,
                        "the detail request answered another record; it is not written (the reconciler heals the record)"
                    );
                }
            }
            None => {
                // Gone upstream (its delete webhook may have been lost): close it now.
                report.vanished += 1;
                observed.push(Observed {
                    observation: Observation {
                        id,
                        time: now,
                        kind: ObservationKind::Delete,
                    },
                    raw: None,
                    terminal: false,
                });
            }
        }
    }
    if connector == ConnectorKind::Pipedrive && spec.fields_path.is_some() && !records.is_empty() {
        let mut names = cached_field_names(run.engine, run.state, run.source, spec).await?;
        if records.iter().any(|record| !names.unknown_keys(record).is_empty()) {
            names = refresh_field_names(run.engine, run.state, run.source, spec).await?;
        }
        for record in &mut records {
            rename_custom_fields(&names, record);
        }
    }
    for record in records {
        observed.push(observe(spec, record, now)?);
    }
    if observed.is_empty() {
        return Ok(report);
    }
    let target = history_target(run.config, run.source, spec);
    let mut writer = HistoryWriter::new(run.destination, run.state, target);
    report.written = writer.write(observed, now).await?;
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
