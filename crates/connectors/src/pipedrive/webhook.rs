//! Pipedrive webhooks, v1 and v2.

use serde_json::{Map, Value};
use syncline_core::EventAction;

use crate::webhook::{id_text, object_field, time_of, Collector, ParseError};

pub(crate) fn parse(body: &Value, out: &mut Collector) -> Result<Option<String>, ParseError> {
    let meta = body.get("meta").and_then(Value::as_object).ok_or_else(|| out.missing("meta"))?;
    let action = meta
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| out.missing("meta.action"))?;
    let is_v2 = meta.contains_key("entity")
        || meta
            .get("version")
            .and_then(Value::as_str)
            .is_some_and(|version| version.starts_with('2'));
    if is_v2 {
        parse_pipedrive_v2(body, meta, action, out)
    } else {
        parse_pipedrive_v1(body, meta, action, out)
    }
}

fn parse_pipedrive_v2(body: &Value, meta: &Map<String, Value>, action: &str, out: &mut Collector) -> Result<Option<String>, ParseError> {
    let vendor_entity = meta
        .get("entity")
        .and_then(Value::as_str)
        .ok_or_else(|| out.missing("meta.entity"))?;
    let data = body.get("data").unwrap_or(&Value::Null);
    let previous = body.get("previous").unwrap_or(&Value::Null);
    let id = meta
        .get("entity_id")
        .and_then(id_text)
        .or_else(|| object_field(data, "id").and_then(id_text))
        .or_else(|| object_field(previous, "id").and_then(id_text))
        .ok_or_else(|| out.missing("meta.entity_id"))?;
    let event_action = match action {
        "delete" => EventAction::Delete,
        // create, change (a user deactivation included) and anything newer: the re-fetch decides.
        _ => EventAction::Upsert,
    };
    let stamp = meta
        .get("timestamp")
        .filter(|value| !value.is_null())
        .or_else(|| object_field(data, "update_time"))
        .or_else(|| object_field(previous, "update_time"));
    let time = stamp.and_then(time_of);
    let entity = out.entity(vendor_entity);
    // A merge names the other record in `meta`: the merged-away one is closed (a delete the
    // detail GET confirms), the survivor re-fetched.
    let merged_to = meta.get("merged_to_id").and_then(id_text).filter(|other| *other != id);
    let merged_from = merged_ids(meta.get("merged_from_id"), &id);
    if let Some(survivor) = &merged_to {
        out.push(entity, vendor_entity, id.clone(), EventAction::Delete, time);
        out.push(entity, vendor_entity, survivor.clone(), EventAction::Upsert, time);
    } else if !merged_from.is_empty() {
        for merged_away in merged_from {
            out.push(entity, vendor_entity, merged_away, EventAction::Delete, time);
        }
        out.push(entity, vendor_entity, id.clone(), event_action, time);
    } else {
        out.push(entity, vendor_entity, id.clone(), event_action, time);
    }
    Ok(Some(v2_delivery_id(meta, vendor_entity, &id, action, stamp)))
}

/// The ids in `meta.merged_from_id` (one id or a list), without the survivor's own.
fn merged_ids(value: Option<&Value>, survivor: &str) -> Vec<String> {
    let ids: Vec<String> = match value {
        Some(Value::Array(items)) => items.iter().filter_map(id_text).collect(),
        Some(other) => id_text(other).into_iter().collect(),
        None => Vec::new(),
    };
    ids.into_iter().filter(|id| id != survivor).collect()
}

/// The dedupe key of a v2 delivery: entity, entity id, action, the event's time and `meta.id`.
/// `meta.id` alone is not unique: Pipedrive's own user-deactivation example carries the user's
/// id there, so a later change of that user would be swallowed as a retry. A retry repeats all
/// of these fields (only `meta.attempt` changes), so it still dedupes.
fn v2_delivery_id(meta: &Map<String, Value>, entity: &str, id: &str, action: &str, stamp: Option<&Value>) -> String {
    let text = |value: Option<&Value>| match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    format!("pipedrive-v2:{entity}:{id}:{action}:{}:{}", text(stamp), text(meta.get("id")))
}

fn parse_pipedrive_v1(body: &Value, meta: &Map<String, Value>, action: &str, out: &mut Collector) -> Result<Option<String>, ParseError> {
    let vendor_entity = meta
        .get("object")
        .and_then(Value::as_str)
        .ok_or_else(|| out.missing("meta.object"))?;
    let current = body.get("current").unwrap_or(&Value::Null);
    let previous = body.get("previous").unwrap_or(&Value::Null);
    let id = meta
        .get("id")
        .and_then(id_text)
        .or_else(|| object_field(current, "id").and_then(id_text))
        .or_else(|| object_field(previous, "id").and_then(id_text))
        .ok_or_else(|| out.missing("meta.id"))?;
    let time = meta
        .get("timestamp_micro")
        .and_then(time_of)
        .or_else(|| meta.get("prepublish_timestamp").and_then(time_of))
        .or_else(|| meta.get("timestamp").and_then(time_of))
        .or_else(|| object_field(current, "update_time").and_then(time_of))
        .or_else(|| object_field(previous, "update_time").and_then(time_of));
    let entity = out.entity(vendor_entity);
    match action {
        "deleted" => out.push(entity, vendor_entity, id.clone(), EventAction::Delete, time),
        "merged" => {
            let survivor = object_field(current, "id").and_then(id_text).unwrap_or_else(|| id.clone());
            let merged_away = object_field(current, "merge_what_id")
                .or_else(|| meta.get("merge_what_id"))
                .and_then(id_text)
                .or_else(|| object_field(previous, "id").and_then(id_text))
                .filter(|other| *other != survivor);
            if let Some(merged_away) = merged_away {
                out.push(entity, vendor_entity, merged_away, EventAction::Delete, time);
            }
            out.push(entity, vendor_entity, survivor, EventAction::Upsert, time);
        }
        _ => out.push(entity, vendor_entity, id.clone(), EventAction::Upsert, time),
    }
    // v1 has no delivery id; these meta fields stay the same across retries (only `retry`
    // changes), so they identify the delivery.
    let webhook_id = meta.get("webhook_id").and_then(id_text);
    let stamp = meta
        .get("timestamp_micro")
        .and_then(id_text)
        .or_else(|| meta.get("timestamp").and_then(id_text));
    Ok(match (webhook_id, stamp) {
        (Some(webhook_id), Some(stamp)) => Some(format!("pipedrive-v1:{webhook_id}:{action}.{vendor_entity}:{id}:{stamp}")),
        _ => None,
    })
}
