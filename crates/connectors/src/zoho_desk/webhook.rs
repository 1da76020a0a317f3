//! Zoho Desk webhooks: an array of events, each deduped by entity, id, event type and time.

use serde_json::Value;
use syncline_core::EventAction;

use crate::webhook::{id_text, object_field, time_of, Collector, ParseError};

fn zoho_entity(subject: &str) -> Option<&'static str> {
    match subject.to_ascii_lowercase().as_str() {
        "ticket" => Some("ticket"),
        "contact" => Some("contact"),
        "ticket_thread" | "thread" => Some("thread"),
        "ticket_comment" | "comment" => Some("comment"),
        "agent" => Some("agent"),
        "department" => Some("department"),
        _ => None,
    }
}

pub(crate) fn parse(body: &Value, out: &mut Collector) -> Result<Option<String>, ParseError> {
    let events: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![body],
        _ => return Err(out.missing("[0].eventType")),
    };
    for (index, event) in events.into_iter().enumerate() {
        let event_type = event
            .get("eventType")
            .and_then(Value::as_str)
            .ok_or_else(|| out.missing(format!("[{index}].eventType")))?;
        let (subject, verb) = event_type.rsplit_once('_').unwrap_or((event_type, ""));
        let Some(entity) = zoho_entity(subject).and_then(|name| out.entity(name)) else {
            out.unknown_entities.push(subject.to_string());
            continue;
        };
        let payload = event.get("payload").unwrap_or(&Value::Null);
        let previous = event.get("prevState").unwrap_or(&Value::Null);
        let id = object_field(payload, "id")
            .and_then(id_text)
            .or_else(|| object_field(previous, "id").and_then(id_text))
            .ok_or_else(|| out.missing(format!("[{index}].payload.id")))?;
        // A `*_Delete` event, or a payload carrying Zoho's deleted flags (`isDeleted`,
        // `isTrashed`: a ticket moved to the trash arrives as an update), is a delete; the
        // worker still confirms it with a detail GET before it closes anything.
        let flagged_deleted = out
            .connector
            .entity(entity)
            .is_some_and(|spec| payload.is_object() && spec.is_deleted(payload));
        let action = if verb.eq_ignore_ascii_case("delete") || flagged_deleted {
            EventAction::Delete
        } else {
            EventAction::Upsert
        };
        let time = event
            .get("eventTime")
            .and_then(time_of)
            .or_else(|| object_field(payload, "modifiedTime").and_then(time_of));
        out.push(Some(entity), subject, id.clone(), action, time);
        // Zoho sends no delivery id and delivers at least once: an event is identified by what
        // it is about and when it happened, so a redelivery (however batched) dedupes and a
        // later change of the same record does not.
        let event_time = match event.get("eventTime") {
            Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_string()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        if let Some(event_time) = event_time {
            out.set_key_of_last(format!("zoho:{entity}:{id}:{event_type}:{event_time}"));
        }
        if matches!(entity, "thread" | "comment") {
            // Threads and comments are re-fetched under their ticket.
            let parent = object_field(payload, "ticketId")
                .and_then(id_text)
                .or_else(|| object_field(previous, "ticketId").and_then(id_text));
            out.set_parent_of_last(parent);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use syncline_core::EventAction;

    use crate::spec::ConnectorKind;
    use crate::webhook::parse_webhook;

    #[test]
    fn zoho_payloads_flagged_deleted_or_trashed_are_deletes() {
        let body = json!([
            {"eventType": "Ticket_Update", "eventTime": "1700000000001", "orgId": "1",
             "payload": {"id": "11", "isTrashed": true, "isDeleted": false}},
            {"eventType": "Contact_Update", "eventTime": "1700000000002", "orgId": "1",
             "payload": {"id": "12", "isDeleted": "true"}},
            {"eventType": "Ticket_Update", "eventTime": "1700000000003", "orgId": "1",
             "payload": {"id": "13", "isTrashed": false, "isDeleted": false}},
            {"eventType": "Ticket_Delete", "eventTime": "1700000000004", "orgId": "1",
             "payload": {"id": "14"}},
            {"eventType": "Ticket_Comment_Update", "eventTime": "1700000000005", "orgId": "1",
             "payload": {"id": "15", "ticketId": "13", "isDeleted": true}},
        ]);
        let bytes = serde_json::to_vec(&body).unwrap();
        let parsed = parse_webhook(ConnectorKind::ZohoDesk, "desk", &bytes, None, 0).unwrap();
        let actions: Vec<(&str, &str, EventAction)> = parsed
            .events
            .iter()
            .map(|event| (event.entity.as_str(), event.id.as_str(), event.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("ticket", "11", EventAction::Delete),
                ("contact", "12", EventAction::Delete),
                ("ticket", "13", EventAction::Upsert),
                ("ticket", "14", EventAction::Delete),
                ("comment", "15", EventAction::Delete),
            ]
        );
        assert_eq!(parsed.events[4].parent_id.as_deref(), Some("13"));
    }
}
