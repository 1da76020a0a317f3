//! HaloPSA: clients (`/Client`), tickets (`/Tickets`), invoices (`/Invoice`) and quotations
//! (`/Quotation`), their changes and webhook bodies.
//!
//! Field names come from the Halo API v2 schemas (Faults, InvoiceHeader, QuotationHeader, Area)
//! plus the few a real ticket response carries beyond the schema (`team_id`, `user`,
//! `priority`). Modified-time fields: tickets `last_update`, invoices `last_modified`,
//! quotations `last_update_time`, clients `alastupdate`. Terminal states: closed tickets
//! (`status_id` 9), paid invoices, rejected quotations (`status` 3); the change generator leaves
//! terminal records alone.
//!
//! Detail GETs answer the whole record; list rows are partial ([`list_row`]): a ticket row has
//! only the fields of the swagger's list-row schema `Faults_List`, invoice and quotation rows no
//! `lines` (unless `includelines=true`), client rows no `notes` (unless `includenotes=true`).
//! Webhooks follow the delivery seen on a live tenant ([`webhook_body`]).

pub mod api;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::clock::format_halo;
use crate::config::{HaloPayload, WebhookConfig};
use crate::entity::Entity;
use crate::names;
use crate::store::{ChangeAction, RecordId};
use crate::world::{pick, pick_kind, pick_weighted, ChangeError, ChangeEvent, ChangeKind, ChangeRequest, Ctx};

const DAY_MS: i64 = 86_400_000;

/// Closed ticket status.
pub const TICKET_CLOSED: i64 = 9;
/// Rejected quotation status.
pub const QUOTE_REJECTED: i64 = 3;

/// The modified-time field of an entity, if it has one.
pub fn modified_field(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::Ticket => Some("last_update"),
        Entity::Invoice => Some("last_modified"),
        Entity::Quotation => Some("last_update_time"),
        Entity::Client => Some("alastupdate"),
        _ => None,
    }
}

/// Ticket fields a `/Tickets` list row carries: the simulated ticket's fields that the
/// swagger's list-row schema `Faults_List` has. Left out of list rows (detail only):
/// `datecreated`, `user`, `team_id`, `priority`, `tags`, `attachments`.
pub const TICKET_LIST_FIELDS: &[&str] = &[
    "id",
    "dateoccurred",
    "summary",
    "details",
    "status_id",
    "status_name",
    "tickettype_id",
    "tickettype_name",
    "client_id",
    "client_name",
    "site_id",
    "site_name",
    "user_id",
    "user_name",
    "user_email",
    "agent_id",
    "agent_name",
    "team",
    "priority_id",
    "priority_name",
    "deadlinedate",
    "fixbydate",
    "respondbydate",
    "lastactiondate",
    "last_update",
    "dateclosed",
    "hasbeenclosed",
    "inactive",
    "customfields",
];

/// What a list request asked to include beyond the default row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    /// `includelines=true` (invoices, quotations).
    pub lines: bool,
    /// `includenotes=true` (clients).
    pub notes: bool,
}

/// A record as a list endpoint returns it: a strict subset of the detail record.
pub fn list_row(entity: Entity, record: &Value, include: Include) -> Value {
    let Value::Object(fields) = record else {
        return record.clone();
    };
    let keep = |key: &str| match entity {
        Entity::Ticket => TICKET_LIST_FIELDS.contains(&key),
        Entity::Invoice | Entity::Quotation => key != "lines" || include.lines,
        _ => key != "notes" || include.notes,
    };
    Value::Object(
        fields
            .iter()
            .filter(|(key, _)| keep(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

/// The list envelope key of an entity (`{"record_count": N, "<key>": [...]}`).
pub fn envelope_key(entity: Entity) -> &'static str {
    match entity {
        Entity::Ticket => "tickets",
        Entity::Invoice => "invoices",
        Entity::Quotation => "quotes",
        _ => "clients",
    }
}

/// Whether a record is in its terminal state.
pub fn is_terminal(entity: Entity, record: &Value) -> bool {
    match entity {
        Entity::Ticket => record["status_id"] == json!(TICKET_CLOSED),
        Entity::Invoice => record["paymentstatus"] == json!(2),
        Entity::Quotation => record["status"] == json!(QUOTE_REJECTED),
        _ => false,
    }
}

fn time(ms: i64) -> Value {
    json!(format_halo(ms))
}

fn seed_write(ctx: &mut Ctx, entity: Entity, id: RecordId, record: Value, at: i64) {
    ctx.store.put(entity, id, record, at, at, ChangeAction::Create);
}

/// Fills the store with the configured initial records.
pub fn seed_records(ctx: &mut Ctx, rng: &mut StdRng) {
    let now = ctx.now_ms();
    for entity in [Entity::Client, Entity::Ticket, Entity::Invoice, Entity::Quotation] {
        for _ in 0..ctx.config.initial_count(entity) {
            let at = now - rng.random_range(1..365) * DAY_MS - rng.random_range(0..DAY_MS);
            let id = ctx.store.allocate_id(entity, 1);
            let record = new_record(ctx, rng, entity, id, at);
            seed_write(ctx, entity, id, record, at);
        }
    }
}

fn client_ref(ctx: &Ctx, rng: &mut StdRng) -> (Value, Value) {
    match ctx.pick_live(rng, Entity::Client, |_| true) {
        Some(id) => {
            let name = ctx
                .store
                .current(Entity::Client, id)
                .map(|client| client["name"].clone())
                .unwrap_or(Value::Null);
            (json!(id), name)
        }
        None => (json!(0), json!("")),
    }
}

fn new_record(ctx: &Ctx, rng: &mut StdRng, entity: Entity, id: RecordId, at: i64) -> Value {
    match entity {
        Entity::Client => {
            let name = names::company_name(rng);
            json!({
                "id": id,
                "name": name,
                "toplevel_id": 1,
                "toplevel_name": "Customers",
                "inactive": false,
                "colour": "#2bd3c6",
                "website": format!("https://{}.test", name.split(' ').next().unwrap_or("client").to_lowercase()),
                "main_site_id": id * 10,
                "main_site_name": "Head Office",
                "main_phonenumber": names::phone(rng),
                "main_contact_name": format!("{} {}", names::person_name(rng).0, names::person_name(rng).1),
                "customertype": 1,
                "total_ticket_count": 0,
                "accountmanagertech_name": "Alex Agent",
                "datecreated": time(at),
                "alastupdate": time(at),
                "notes": "",
                "customfields": [],
            })
        }
        Entity::Ticket => {
            let (client_id, client_name) = client_ref(ctx, rng);
            let (first, last) = names::person_name(rng);
            let agent_id = rng.random_range(1..6);
            let priority = rng.random_range(1..5);
            let priority_label = ["", "Critical", "High", "Medium", "Low"][priority as usize];
            let attachment_id = id * 7;
            json!({
                "id": id,
                "dateoccurred": time(at),
                "datecreated": time(at),
                "summary": *pick(rng, names::SUBJECTS),
                "details": "Reported by the customer through the portal.",
                "status_id": 1,
                "status_name": "New",
                "tickettype_id": 1,
                "tickettype_name": "Incident",
                "client_id": client_id,
                "client_name": client_name,
                "site_id": client_id.as_u64().map(|client| client * 10).unwrap_or(0),
                "site_name": "Head Office",
                "user_id": id % 50 + 1,
                "user_name": format!("{first} {last}"),
                "user_email": names::email(&first, &last, "customer.test"),
                "user": {"id": id % 50 + 1, "name": format!("{first} {last}"), "emailaddress": names::email(&first, &last, "customer.test")},
                "agent_id": agent_id,
                "agent_name": format!("Agent {agent_id}"),
                "team_id": 1,
                "team": "1st Line",
                "priority_id": priority,
                "priority_name": priority_label,
                "priority": {"name": priority_label},
                "deadlinedate": "1900-01-01T00:00:00",
                "fixbydate": time(at + rng.random_range(1..14) * DAY_MS),
                "respondbydate": time(at + DAY_MS),
                "lastactiondate": time(at),
                "last_update": time(at),
                "dateclosed": null,
                "hasbeenclosed": false,
                "inactive": false,
                "tags": [{"id": 0, "text": *pick(rng, &["vpn", "billing", "access-request", "hardware"])}],
                "attachments": [{"id": attachment_id, "filename": format!("screenshot-{id}.png"), "isimage": true}],
                "customfields": [{
                    "id": 206, "name": "CFService", "label": "Service", "summary": "", "type": 2,
                    "value": rng.random_range(1..20), "display": "Datahub", "inputtype": 0, "copytochild": false,
                    "searchable": false, "ordervalues": true, "ordervaluesby": 0, "database_lookup_auto": false,
                    "extratype": 1, "characterlimit": 0, "characterlimittype": 0, "copytochildonupdate": false,
                    "usage": 1, "showondetailsscreen": false, "custom_extra_table_id": 0, "copytorelated": false,
                    "calculation": "", "regex": "", "is_horizontal": false, "isencrypted": false, "selection_field_id": 0
                }],
            })
        }
        Entity::Invoice => {
            let (client_id, client_name) = client_ref(ctx, rng);
            let total = f64::from(rng.random_range(100..20_000)) / 2.0;
            json!({
                "id": id,
                "invoicenumber": format!("INV-{id:06}"),
                "client_id": client_id,
                "client_name": client_name,
                "site_name": "Head Office",
                "invoice_date": time(at),
                "duedate": time(at + 30 * DAY_MS),
                "date_created": time(at),
                "total": total,
                "tax_total": (total * 0.2 * 100.0).round() / 100.0,
                "amountpaid": 0.0,
                "amountdue": total,
                "paymentstatus": 0,
                "datepaid": null,
                "posted": false,
                "dateposted": null,
                "reference": format!("PO-{}", rng.random_range(1000..9999)),
                "currency_code_name": "EUR",
                "last_modified": time(at),
                "lines": [{"id": id * 10, "item_code": "SUPPORT", "qty_order": 1, "unit_price": total}],
                "customfields": [],
            })
        }
        _ => {
            let (client_id, client_name) = client_ref(ctx, rng);
            json!({
                "id": id,
                "title": format!("Quote for {}", client_name.as_str().unwrap_or("client")),
                "client_id": client_id,
                "client_name": client_name,
                "site_name": "Head Office",
                "date": time(at),
                "expiry_date": time(at + 30 * DAY_MS),
                "status": 0,
                "total": f64::from(rng.random_range(100..50_000)),
                "tax_total": 0.0,
                "agent_id": rng.random_range(1..6),
                "assigned_agent_name": "Alex Agent",
                "ticket_id": 0,
                "ticket_summary": "",
                "approvaldatetime": null,
                "approvalname": "",
                "last_update_time": time(at),
                "lines": [],
                "customfields": [],
            })
        }
    }
}

/// Chooses a random change; terminal records are never picked for updates.
pub fn random_request(ctx: &Ctx, rng: &mut StdRng) -> Option<ChangeRequest> {
    Some(match pick_kind(ctx, rng) {
        ChangeKind::Create => ChangeRequest::Create {
            entity: pick_weighted(
                rng,
                &[
                    (Entity::Ticket, 50),
                    (Entity::Invoice, 20),
                    (Entity::Quotation, 20),
                    (Entity::Client, 10),
                ],
            ),
        },
        ChangeKind::Update => {
            let entity = pick_weighted(
                rng,
                &[
                    (Entity::Ticket, 55),
                    (Entity::Invoice, 20),
                    (Entity::Quotation, 15),
                    (Entity::Client, 10),
                ],
            );
            let id = ctx.pick_live(rng, entity, |record| !is_terminal(entity, record))?;
            ChangeRequest::Update { entity, id }
        }
        _ => {
            let entity = pick_weighted(rng, &[(Entity::Ticket, 60), (Entity::Quotation, 25), (Entity::Invoice, 15)]);
            let id = ctx.pick_live(rng, entity, |_| true)?;
            ChangeRequest::Delete { entity, id }
        }
    })
}

fn mutate(rng: &mut StdRng, entity: Entity, record: &mut Value, now: i64) {
    match entity {
        Entity::Ticket => match rng.random_range(0..4) {
            0 => {
                record["status_id"] = json!(TICKET_CLOSED);
                record["status_name"] = json!("Closed");
                record["dateclosed"] = time(now);
                record["hasbeenclosed"] = json!(true);
            }
            1 => {
                let (id, name) = *pick(rng, &[(2, "In Progress"), (3, "Waiting on Customer"), (4, "With Supplier")]);
                record["status_id"] = json!(id);
                record["status_name"] = json!(name);
            }
            2 => {
                let agent = rng.random_range(1..6);
                record["agent_id"] = json!(agent);
                record["agent_name"] = json!(format!("Agent {agent}"));
            }
            _ => {
                let priority = rng.random_range(1..5) as usize;
                let name = ["", "Critical", "High", "Medium", "Low"][priority];
                record["priority_id"] = json!(priority);
                record["priority_name"] = json!(name);
                record["priority"] = json!({"name": name});
            }
        },
        Entity::Invoice => {
            if rng.random_bool(0.5) {
                let total = record["total"].as_f64().unwrap_or(0.0);
                record["amountpaid"] = json!(total);
                record["amountdue"] = json!(0.0);
                record["paymentstatus"] = json!(2);
                record["datepaid"] = time(now);
            } else {
                record["posted"] = json!(true);
                record["dateposted"] = time(now);
            }
        }
        Entity::Quotation => {
            let status = *pick(rng, &[1_i64, 2, QUOTE_REJECTED]);
            record["status"] = json!(status);
            if status == 2 {
                record["approvaldatetime"] = time(now);
                record["approvalname"] = json!("Customer");
            }
        }
        _ => match rng.random_range(0..2) {
            0 => record["main_phonenumber"] = json!(names::phone(rng)),
            _ => {
                let inactive = record["inactive"] == json!(true);
                record["inactive"] = json!(!inactive);
            }
        },
    }
    if entity == Entity::Ticket {
        record["lastactiondate"] = time(now);
    }
    if let Some(field) = modified_field(entity) {
        record[field] = time(now);
    }
}

/// Applies one change to the HaloPSA world.
pub fn apply(ctx: &mut Ctx, rng: &mut StdRng, request: &ChangeRequest) -> Result<Vec<ChangeEvent>, ChangeError> {
    let now = ctx.now_ms();
    match request {
        ChangeRequest::Create { entity } => {
            let id = ctx.store.allocate_id(*entity, 1);
            let record = new_record(ctx, rng, *entity, id, now);
            Ok(vec![ctx.write(*entity, id, Some(record), now, ChangeAction::Create, None)])
        }
        ChangeRequest::Update { entity, id } => {
            let mut record = ctx.live(*entity, *id)?;
            mutate(rng, *entity, &mut record, now);
            Ok(vec![ctx.write(*entity, *id, Some(record), now, ChangeAction::Update, None)])
        }
        ChangeRequest::Delete { entity, id } => {
            ctx.live(*entity, *id)?;
            Ok(vec![ctx.write(*entity, *id, None, now, ChangeAction::Delete, None)])
        }
        ChangeRequest::Merge { .. } | ChangeRequest::DeactivateUser { .. } => Err(ChangeError::Unsupported(
            "merges and user deactivations are pipedrive changes".into(),
        )),
    }
}

/// The event name of a change, human-readable and lower case as on the live tenant
/// (`"ticket status changed"`): the entity first, then what happened.
pub fn event_name(event: &ChangeEvent) -> String {
    let label = event.entity.name();
    let status_changed = event.entity == Entity::Ticket
        && matches!((&event.before, &event.after), (Some(before), Some(after)) if before["status_id"] != after["status_id"]);
    match (event.action, &event.after) {
        (ChangeAction::Create, _) if event.entity == Entity::Ticket => "ticket logged".to_string(),
        (ChangeAction::Create, _) => format!("{label} created"),
        (_, None) => format!("{label} deleted"),
        _ if status_changed => "ticket status changed".to_string(),
        _ => format!("{label} updated"),
    }
}

/// One HaloPSA webhook object for a change, shaped as the delivery seen on a live tenant
/// (`shared/fixtures/halopsa/webhook_ticket_status_changed_live.json`): `id` (the element's
/// GUID), `webhook_id`, `notification_id`, `escmsg_id`, `event`, `message`, `object_id`,
/// `agent_id`, `timestamp` and the record nested under its type (none for a delete). With
/// [`HaloPayload::EventOnly`]: `{"id", "event", "object_id", "webhook_id"}`.
pub fn webhook_body(config: &WebhookConfig, event: &ChangeEvent, element_id: &str, escmsg_id: &str) -> Value {
    let name = event_name(event);
    if config.halopsa_payload == HaloPayload::EventOnly {
        return json!({
            "id": element_id,
            "event": name,
            "object_id": event.id,
            "webhook_id": config.halopsa_webhook_id,
        });
    }
    let label = match event.entity {
        Entity::Ticket => "Ticket",
        Entity::Invoice => "Invoice",
        Entity::Quotation => "Quotation",
        _ => "Client",
    };
    let message = if name == "ticket status changed" {
        format!("The status has been changed for Ticket ID: {:07}.", event.id)
    } else {
        format!("{label} ID: {:07} ({name}).", event.id)
    };
    let notification_id = match event.action {
        ChangeAction::Create => 40,
        ChangeAction::Delete => 43,
        _ if name == "ticket status changed" => 41,
        _ => 42,
    };
    let record = event.after.as_ref().or(event.before.as_ref());
    let agent_id = record.and_then(|record| record["agent_id"].as_u64()).unwrap_or(1);
    let mut body = json!({
        "id": element_id,
        "webhook_id": config.halopsa_webhook_id,
        "notification_id": notification_id,
        "escmsg_id": escmsg_id,
        "event": name,
        "message": message,
        "object_id": event.id,
        "agent_id": agent_id,
        "timestamp": crate::webhooks::halo_timestamp(event.at_ms),
    });
    if let Some(after) = &event.after {
        body[event.entity.name()] = after.clone();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimulatorConfig;
    use crate::entity::Connector;
    use crate::world::World;

    #[test]
    fn terminal_records_are_left_alone_by_the_generator() {
        let mut world = World::new(SimulatorConfig::for_connector(Connector::Halopsa)).expect("world");
        let events = world.step_changes(400);
        for entity in [Entity::Ticket, Entity::Invoice, Entity::Quotation] {
            for history in world.ctx.store.histories(entity) {
                let terminal_at = history
                    .versions
                    .iter()
                    .position(|version| version.record.as_ref().map(|record| is_terminal(entity, record)).unwrap_or(false));
                if let Some(index) = terminal_at {
                    let later_updates = history.versions[index + 1..]
                        .iter()
                        .filter(|version| version.record.is_some())
                        .count();
                    assert_eq!(later_updates, 0, "{entity} {} changed after its terminal state", history.id);
                }
            }
        }
        assert!(events
            .iter()
            .any(|event| event.after.as_ref().map(|r| is_terminal(event.entity, r)).unwrap_or(false)));
    }
}
