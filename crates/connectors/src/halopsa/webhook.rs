//! HaloPSA webhooks.
//!
//! A delivery is one object or, with batching (HaloPSA v2.164+), a JSON array of them. Each
//! object carries its own `id` (a GUID), `event` (a human-readable name such as
//! `"ticket status changed"`), `object_id` (the record's id) and, unless the webhook sends event
//! information only, the record nested under its type (`"ticket": {...}`). The entity is read
//! from the event name; the record is re-fetched by id anyway.

use serde_json::{Map, Value};
use syncline_core::EventAction;

use crate::webhook::{id_text, object_field, time_of, Collector, ParseError};

fn halopsa_entity(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().replace([' ', '_'], "").as_str() {
        "ticket" | "tickets" | "fault" | "faults" => Some("ticket"),
        "client" | "clients" | "area" => Some("client"),
        "invoice" | "invoices" | "invoiceheader" => Some("invoice"),
        "quotation" | "quotations" | "quote" | "quotes" | "quotationheader" => Some("quotation"),
        _ => None,
    }
}

pub(crate) fn parse(body: &Value, out: &mut Collector) -> Result<Option<String>, ParseError> {
    match body {
        Value::Array(items) => {
            let mut ids = Vec::new();
            for item in items {
                let map = item.as_object().ok_or_else(|| out.missing("[].event"))?;
                match parse_one(map, out)? {
                    Some(id) => ids.push(id),
                    None => return Ok(None),
                }
            }
            // A batch is one delivery: its id names every element, so two batches sharing an
            // element are still told apart and a retried batch is still a duplicate.
            Ok(if ids.is_empty() { None } else { Some(ids.join(",")) })
        }
        Value::Object(map) => parse_one(map, out),
        _ => Err(out.missing("event")),
    }
}

fn parse_one(map: &Map<String, Value>, out: &mut Collector) -> Result<Option<String>, ParseError> {
    let label = map.get("event").and_then(Value::as_str).map(str::to_ascii_lowercase);
    let vendor_entity = map
        .get("entity")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            label
                .as_deref()
                .and_then(|label| label.split_whitespace().next())
                .map(str::to_string)
        })
        .ok_or_else(|| out.missing("event"))?;
    let delivery_id = map.get("id").and_then(Value::as_str).map(str::to_string);
    let Some(entity) = halopsa_entity(&vendor_entity).and_then(|name| out.entity(name)) else {
        out.unknown_entities.push(vendor_entity);
        return Ok(delivery_id);
    };
    let record = map.get(vendor_entity.as_str()).or_else(|| map.get(entity)).unwrap_or(&Value::Null);
    let id = map
        .get("object_id")
        .and_then(id_text)
        .or_else(|| map.get("entity_id").and_then(id_text))
        .or_else(|| object_field(record, "id").and_then(id_text))
        .ok_or_else(|| out.missing("object_id"))?;
    let action_text = map
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .or_else(|| label.clone())
        .unwrap_or_default();
    let action = if action_text.split_whitespace().any(|word| word.starts_with("delete")) {
        EventAction::Delete
    } else {
        EventAction::Upsert
    };
    let modified = out
        .connector
        .entity(entity)
        .and_then(|spec| spec.modified_field)
        .and_then(|field| object_field(record, field))
        .and_then(time_of);
    let time = map.get("timestamp").and_then(time_of).or(modified);
    out.push(Some(entity), &vendor_entity, id, action, time);
    Ok(delivery_id)
}

#[cfg(test)]
mod tests {
    use crate::spec::ConnectorKind;
    use crate::webhook::parse_webhook;
    use syncline_core::EventAction;

    fn parse(body: &str) -> crate::webhook::ParsedWebhook {
        parse_webhook(ConnectorKind::Halopsa, "halo", body.as_bytes(), None, 1).expect("parses")
    }

    #[test]
    fn live_fixture_parses_as_a_ticket_upsert() {
        let dir = std::env::var("SYNCLINE_FIXTURES").unwrap_or_else(|_| format!("{}/../../../shared/fixtures", env!("CARGO_MANIFEST_DIR")));
        let body = std::fs::read_to_string(format!("{dir}/halopsa/webhook_ticket_status_changed_live.json")).expect("fixture readable");
        let parsed = parse(&body);
        assert_eq!(parsed.delivery_id, "8e25bc7b-e07e-4102-9398-5d6647e1e79d");
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].entity, "ticket");
        assert_eq!(parsed.events[0].id, "4242");
        assert_eq!(parsed.events[0].action, EventAction::Upsert);
    }

    #[test]
    fn event_only_batch_keeps_every_element() {
        let body = r#"[
            {"id":"a1","event":"client updated","object_id":7,"webhook_id":"w"},
            {"id":"a2","event":"ticket deleted","object_id":8,"webhook_id":"w"},
            {"id":"a3","event":"asset updated","object_id":9,"webhook_id":"w"}
        ]"#;
        let parsed = parse(body);
        assert_eq!(parsed.events.len(), 2);
        assert_eq!((parsed.events[0].entity.as_str(), parsed.events[0].id.as_str()), ("client", "7"));
        assert_eq!(parsed.events[1].action, EventAction::Delete);
        assert_eq!(parsed.unknown_entities, vec!["asset".to_string()]);
        assert_eq!(parsed.delivery_id, "a1,a2,a3");
    }
}
