//! HaloPSA webhooks.

use serde_json::Value;
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
    let map = body.as_object().ok_or_else(|| out.missing("entity"))?;
    let label = map.get("event").and_then(Value::as_str);
    let vendor_entity = map
        .get("entity")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| label.and_then(|label| label.split_whitespace().next()).map(str::to_string))
        .ok_or_else(|| out.missing("entity"))?;
    let delivery_id = map.get("id").and_then(Value::as_str).map(str::to_string);
    let Some(entity) = halopsa_entity(&vendor_entity).and_then(|name| out.entity(name)) else {
        out.unknown_entities.push(vendor_entity);
        return Ok(delivery_id);
    };
    let record = map.get(vendor_entity.as_str()).or_else(|| map.get(entity)).unwrap_or(&Value::Null);
    let id = map
        .get("entity_id")
        .and_then(id_text)
        .or_else(|| object_field(record, "id").and_then(id_text))
        .ok_or_else(|| out.missing("entity_id"))?;
    let action_text = map
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .or_else(|| label.and_then(|label| label.split_whitespace().last()).map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let action = if action_text.starts_with("delete") {
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
