//! HaloPSA webhooks.
//!
//! A delivery is one object or, with batching (HaloPSA v2.164+), a JSON array of them. Each
//! object (see `shared/fixtures/halopsa/webhook_ticket_status_changed_live.json`) carries its
//! own `id` (a GUID), `event` (a human-readable name such as `"ticket status changed"`),
//! `object_id` (the record's id), `timestamp` and, unless the webhook sends event information
//! only (`{"id", "event", "object_id", "webhook_id"}`), the object nested under its type
//! (`"ticket": {...}`). The record is re-fetched by `object_id` whatever the payload type.
//!
//! The entity is the type the object is nested under when that object is the one `object_id`
//! names, else the first word of the event name (`ticket status changed`, `New Ticket ...`),
//! else an older `entity` field. Events naming nothing syncline syncs (assets, actions, ...) are
//! reported as unknown: the server acknowledges, logs and counts them. An event whose name has a
//! word starting with `delet` is a delete (still confirmed by the detail GET).

use serde_json::{Map, Value};
use syncline_core::EventAction;

use crate::webhook::{body_digest, id_text, object_field, time_of, Collector, ParseError};

/// The longest event name kept for an unknown event (the server's log shortens it further).
pub const MAX_EVENT_NAME_CHARS: usize = 80;

/// The entity a HaloPSA type name or event word stands for.
fn entity_of(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().replace([' ', '_'], "").as_str() {
        "ticket" | "tickets" | "fault" | "faults" => Some("ticket"),
        "client" | "clients" | "area" => Some("client"),
        "invoice" | "invoices" | "invoiceheader" => Some("invoice"),
        "quotation" | "quotations" | "quote" | "quotes" | "quotationheader" => Some("quotation"),
        _ => None,
    }
}

/// Keys an object may be nested under, per entity.
const NESTED_KEYS: &[&str] = &["ticket", "client", "invoice", "quotation", "quote", "area", "faults"];

pub(crate) fn parse(body: &Value, out: &mut Collector) -> Result<Option<String>, ParseError> {
    match body {
        Value::Array(items) => {
            for (position, item) in items.iter().enumerate() {
                let map = item.as_object().ok_or_else(|| out.missing(format!("[{position}].event")))?;
                // Each element dedupes on its own key: a retried batch is a duplicate, and two
                // batches sharing an element store it once.
                parse_one(map, out, &format!("[{position}]."))?;
            }
            Ok(None)
        }
        Value::Object(map) => parse_one(map, out, "").map(Some),
        _ => Err(out.missing("event")),
    }
}

/// The dedupe key of one element: its GUID with its timestamp (so a reused GUID with a later
/// change is a new event), else a digest of the element.
fn element_key(map: &Map<String, Value>) -> String {
    let guid = map.get("id").and_then(Value::as_str).map(str::trim).filter(|id| !id.is_empty());
    let timestamp = map.get("timestamp").and_then(Value::as_str).map(str::trim);
    match (guid, timestamp) {
        (Some(guid), Some(timestamp)) => format!("{guid}@{timestamp}"),
        (Some(guid), None) => guid.to_string(),
        (None, _) => body_digest(Value::Object(map.clone()).to_string().as_bytes()),
    }
}

/// The event name, shortened for logs and counters.
fn shortened(name: &str) -> String {
    name.chars().take(MAX_EVENT_NAME_CHARS).collect()
}

/// Reads one event, keyed by its own dedupe key; returns that key. Unknown events are
/// collected, not refused.
fn parse_one(map: &Map<String, Value>, out: &mut Collector, at: &str) -> Result<String, ParseError> {
    let key = element_key(map);
    let event_name = map.get("event").and_then(Value::as_str).map(str::trim).unwrap_or("");
    let legacy_entity = map.get("entity").and_then(Value::as_str);
    if event_name.is_empty() && legacy_entity.is_none() {
        return Err(out.missing(format!("{at}event")));
    }
    let object_id = map
        .get("object_id")
        .and_then(id_text)
        .or_else(|| map.get("entity_id").and_then(id_text));
    // The type the object is nested under, when that object is the record `object_id` names.
    let nested = NESTED_KEYS.iter().find_map(|nested_key| {
        let record = map.get(*nested_key).filter(|value| value.is_object())?;
        let record_id = object_field(record, "id").and_then(id_text);
        let names_it = match (&object_id, &record_id) {
            (Some(object_id), Some(record_id)) => object_id == record_id,
            (None, Some(_)) => true,
            _ => false,
        };
        names_it.then(|| (entity_of(nested_key), record))
    });
    let words: Vec<String> = event_name
        .split(|character: char| !character.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let subject = words.iter().find(|word| word.as_str() != "new").map(String::as_str);
    let vendor_entity = nested
        .as_ref()
        .and_then(|(entity, _)| *entity)
        .or_else(|| subject.and_then(entity_of))
        .or_else(|| legacy_entity.and_then(entity_of));
    let Some(entity) = vendor_entity.and_then(|name| out.entity(name)) else {
        let name = if event_name.is_empty() {
            legacy_entity.unwrap_or_default()
        } else {
            event_name
        };
        out.unknown_entities.push(shortened(name));
        return Ok(key);
    };
    let record = nested.map(|(_, record)| record).unwrap_or(&Value::Null);
    let id = object_id
        .or_else(|| object_field(record, "id").and_then(id_text))
        .ok_or_else(|| out.missing(format!("{at}object_id")))?;
    let legacy_action = map.get("action").and_then(Value::as_str).map(str::to_ascii_lowercase);
    let deleted =
        words.iter().any(|word| word.starts_with("delet")) || legacy_action.as_deref().is_some_and(|action| action.starts_with("delet"));
    let action = if deleted { EventAction::Delete } else { EventAction::Upsert };
    let modified = out
        .connector
        .entity(entity)
        .and_then(|spec| spec.modified_field)
        .and_then(|field| object_field(record, field))
        .and_then(time_of);
    let time = map.get("timestamp").and_then(time_of).or(modified);
    out.push(Some(entity), entity, id, action, time);
    // Each event dedupes on its own key: a retried batch is a duplicate, and two batches
    // sharing an element store it once.
    out.set_key_of_last(key.clone());
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::MAX_EVENT_NAME_CHARS;
    use crate::spec::ConnectorKind;
    use crate::webhook::parse_webhook;
    use serde_json::json;
    use syncline_core::EventAction;

    fn parse(body: &str) -> crate::webhook::ParsedWebhook {
        parse_webhook(ConnectorKind::Halopsa, "halo", body.as_bytes(), None, 1).expect("parses")
    }

    fn live() -> serde_json::Value {
        let dir = std::env::var("SYNCLINE_FIXTURES").unwrap_or_else(|_| format!("{}/../../../shared/fixtures", env!("CARGO_MANIFEST_DIR")));
        let body = std::fs::read_to_string(format!("{dir}/halopsa/webhook_ticket_status_changed_live.json")).expect("fixture readable");
        serde_json::from_str(&body).expect("json")
    }

    #[test]
    fn live_fixture_parses_as_a_ticket_upsert() {
        let parsed = parse(&live().to_string());
        assert_eq!(
            parsed.delivery_id,
            "8e25bc7b-e07e-4102-9398-5d6647e1e79d@2026-09-25T06:41:08.7895915Z"
        );
        assert_eq!(parsed.events.len(), 1);
        let event = &parsed.events[0];
        assert_eq!((event.entity.as_str(), event.id.as_str()), ("ticket", "4242"));
        assert_eq!(event.action, EventAction::Upsert);
        assert_eq!(
            event.event_time,
            syncline_core::parse_timestamp("2026-09-25T06:41:08.789Z").unwrap()
        );
        assert_eq!(event.delivery_id, parsed.delivery_id);
    }

    #[test]
    fn event_only_and_batched_payloads_are_read_element_by_element() {
        let mut full = live();
        full["id"] = json!("b1");
        let event_only = json!({"id": "b2", "event": "client updated", "object_id": 7, "webhook_id": "w"});
        let deleted = json!({"id": "b3", "event": "ticket deleted", "object_id": 8, "webhook_id": "w"});
        let asset = json!({"id": "b4", "event": "asset updated", "object_id": 9, "webhook_id": "w", "asset": {"id": 9}});
        let new_quote = json!({"id": "b5", "event": "New Quote raised", "object_id": 10});
        let body = json!([full, event_only, deleted, asset, new_quote]).to_string();
        let parsed = parse(&body);
        let seen: Vec<(&str, &str, EventAction)> = parsed
            .events
            .iter()
            .map(|event| (event.entity.as_str(), event.id.as_str(), event.action))
            .collect();
        assert_eq!(
            seen,
            [
                ("ticket", "4242", EventAction::Upsert),
                ("client", "7", EventAction::Upsert),
                ("ticket", "8", EventAction::Delete),
                ("quotation", "10", EventAction::Upsert),
            ]
        );
        assert_eq!(parsed.unknown_entities, ["asset updated"]);
        // Each element keeps its own dedupe key.
        let keys: Vec<&str> = parsed.events.iter().map(|event| event.delivery_id.as_str()).collect();
        assert_eq!(keys, ["b1@2026-09-25T06:41:08.7895915Z", "b2", "b3", "b5"]);
    }

    #[test]
    fn the_nested_object_names_the_entity_only_when_it_is_the_object() {
        // An asset event that also carries its client: the client is not the object.
        let body = json!({"id": "c1", "event": "asset updated", "object_id": 9, "client": {"id": 3}}).to_string();
        let parsed = parse(&body);
        assert!(parsed.events.is_empty(), "{:?}", parsed.events);
        assert_eq!(parsed.unknown_entities, ["asset updated"]);
        // A custom event name over a nested invoice that is the object.
        let body = json!({"id": "c2", "event": "payment received", "object_id": 5, "invoice": {"id": 5}}).to_string();
        let parsed = parse(&body);
        assert_eq!((parsed.events[0].entity.as_str(), parsed.events[0].id.as_str()), ("invoice", "5"));
    }

    #[test]
    fn a_reused_guid_with_a_later_timestamp_is_a_new_event() {
        let mut first = live();
        let retry = parse(&first.to_string());
        first["timestamp"] = json!("2026-09-25T06:45:00.0000000Z");
        let later = parse(&first.to_string());
        assert_ne!(retry.events[0].delivery_id, later.events[0].delivery_id);
        let without_guid = json!({"event": "ticket updated", "object_id": 1, "timestamp": "2026-09-25T06:45:00Z"});
        let a = parse(&without_guid.to_string());
        let b = parse(&without_guid.to_string());
        assert_eq!(a.events[0].delivery_id, b.events[0].delivery_id, "identical bodies dedupe");
    }

    #[test]
    fn unknown_event_names_are_shortened_and_bad_bodies_refused() {
        let long = "x".repeat(10_000);
        let parsed = parse(&json!({"id": "d1", "event": long, "object_id": 1}).to_string());
        assert_eq!(parsed.unknown_entities[0].len(), MAX_EVENT_NAME_CHARS);
        for bad in [
            r#"{"object_id": 1}"#,
            r#"[{"event": "ticket updated", "object_id": 1}, 7]"#,
            r#""ticket""#,
        ] {
            assert!(
                parse_webhook(ConnectorKind::Halopsa, "halo", bad.as_bytes(), None, 1).is_err(),
                "{bad}"
            );
        }
        assert!(
            parse_webhook(
                ConnectorKind::Halopsa,
                "halo",
                br#"{"id": "e", "event": "ticket updated"}"#,
                None,
                1
            )
            .is_err(),
            "a known event without an object id cannot be re-fetched"
        );
    }

    #[test]
    fn the_older_entity_shape_is_still_read() {
        let body = json!({"id": "f1", "entity": "Faults", "entity_id": 12, "action": "delete"}).to_string();
        let parsed = parse(&body);
        assert_eq!((parsed.events[0].entity.as_str(), parsed.events[0].id.as_str()), ("ticket", "12"));
        assert_eq!(parsed.events[0].action, EventAction::Delete);
    }
}
