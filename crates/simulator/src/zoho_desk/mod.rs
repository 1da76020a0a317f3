//! Zoho Desk: records, changes and webhook events.
//!
//! Ids are numeric strings (`"1892000000042034"`); counts are strings (`"threadCount": "3"`);
//! `modifiedTime` (tickets, contacts, comments) has millisecond resolution, e.g.
//! `2016-06-21T13:16:14.000Z`. Threads carry only `createdTime` (an edit moves neither it nor
//! the ticket, and sends no webhook); agents and departments carry no modified time, as
//! upstream.

pub mod api;
pub mod credits;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::clock::format_rfc3339_millis;
use crate::config::SimulatorConfig;
pub mod jwt;

use crate::entity::Entity;
use crate::names;
use crate::store::{ChangeAction, RecordId};
use crate::world::{pick, pick_kind, pick_weighted, ChangeError, ChangeEvent, ChangeKind, ChangeRequest, Ctx};

const DAY_MS: i64 = 86_400_000;

/// The first id of each entity.
pub fn first_id(entity: Entity) -> RecordId {
    match entity {
        Entity::Department => 1_892_000_000_006_001,
        Entity::Agent => 1_892_000_000_056_001,
        Entity::Contact => 1_892_000_000_042_001,
        Entity::Ticket => 1_892_000_000_094_001,
        Entity::Thread => 1_892_000_000_137_001,
        _ => 1_892_000_000_180_001,
    }
}

/// The modified-time field of an entity, if it has one.
pub fn modified_field(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::Ticket | Entity::Contact | Entity::Comment => Some("modifiedTime"),
        Entity::Thread => Some("createdTime"),
        _ => None,
    }
}

fn id_text(id: RecordId) -> Value {
    json!(id.to_string())
}

fn time(ms: i64) -> Value {
    json!(format_rfc3339_millis(ms))
}

fn id_of(value: &Value) -> Option<RecordId> {
    value.as_str().and_then(|text| text.parse().ok())
}

fn count_text(value: &Value) -> u64 {
    value.as_str().and_then(|text| text.parse().ok()).unwrap_or(0)
}

fn seed_write(ctx: &mut Ctx, entity: Entity, id: RecordId, record: Value, at_ms: i64) {
    ctx.store.put(entity, id, record, at_ms, at_ms, ChangeAction::Create);
}

fn past(rng: &mut StdRng, now: i64) -> i64 {
    now - rng.random_range(1..300) * DAY_MS - rng.random_range(0..DAY_MS)
}

/// Fills the store with the configured initial records.
pub fn seed_records(ctx: &mut Ctx, rng: &mut StdRng) {
    let now = ctx.now_ms();
    for index in 0..ctx.config.initial_count(Entity::Department) {
        let at = past(rng, now);
        let id = ctx.store.allocate_id(Entity::Department, 1);
        seed_write(ctx, Entity::Department, id, new_department(id, index, at), at);
    }
    for _ in 0..ctx.config.initial_count(Entity::Agent) {
        let at = past(rng, now);
        let id = ctx.store.allocate_id(Entity::Agent, 1);
        let record = new_agent(ctx, rng, id);
        seed_write(ctx, Entity::Agent, id, record, at);
    }
    for _ in 0..ctx.config.initial_count(Entity::Contact) {
        let at = past(rng, now);
        let id = ctx.store.allocate_id(Entity::Contact, 1);
        let record = new_contact(rng, id, at);
        seed_write(ctx, Entity::Contact, id, record, at);
    }
    for _ in 0..ctx.config.initial_count(Entity::Ticket) {
        let at = past(rng, now);
        let id = ctx.store.allocate_id(Entity::Ticket, 1);
        let record = new_ticket(ctx, rng, id, at);
        seed_write(ctx, Entity::Ticket, id, record, at);
    }
    for _ in 0..ctx.config.initial_count(Entity::Thread) {
        let Some(ticket_id) = ctx.pick_live(rng, Entity::Ticket, |_| true) else {
            break;
        };
        let Some(mut ticket) = ctx.store.current(Entity::Ticket, ticket_id).cloned() else {
            break;
        };
        let created = ticket["createdTime"]
            .as_str()
            .and_then(crate::clock::parse_timestamp)
            .unwrap_or(now);
        let at = (created + rng.random_range(1..DAY_MS)).min(now - 1000);
        let id = ctx.store.allocate_id(Entity::Thread, 1);
        let record = new_thread(ctx, rng, id, ticket_id, at);
        seed_write(ctx, Entity::Thread, id, record, at);
        ticket["threadCount"] = json!((count_text(&ticket["threadCount"]) + 1).to_string());
        let modified = ticket["modifiedTime"]
            .as_str()
            .and_then(crate::clock::parse_timestamp)
            .unwrap_or(at)
            .max(at);
        ticket["modifiedTime"] = time(modified);
        seed_write(ctx, Entity::Ticket, ticket_id, ticket, modified);
    }
    for _ in 0..ctx.config.initial_count(Entity::Comment) {
        let Some(ticket_id) = ctx.pick_live(rng, Entity::Ticket, |_| true) else {
            break;
        };
        let Some(mut ticket) = ctx.store.current(Entity::Ticket, ticket_id).cloned() else {
            break;
        };
        let modified = ticket["modifiedTime"]
            .as_str()
            .and_then(crate::clock::parse_timestamp)
            .unwrap_or(now);
        let at = (modified + rng.random_range(1..60_000)).min(now - 1);
        let id = ctx.store.allocate_id(Entity::Comment, 1);
        let record = new_comment(ctx, rng, id, ticket_id, at);
        seed_write(ctx, Entity::Comment, id, record, at);
        ticket["commentCount"] = json!((count_text(&ticket["commentCount"]) + 1).to_string());
        ticket["modifiedTime"] = time(at);
        seed_write(ctx, Entity::Ticket, ticket_id, ticket, at);
    }
}

fn new_department(id: RecordId, index: usize, at: i64) -> Value {
    let name = ["Support", "Billing", "Onboarding", "Escalations"][index % 4];
    json!({
        "id": id_text(id),
        "name": name,
        "description": format!("{name} department"),
        "isEnabled": true,
        "isDefault": index == 0,
        "creatorId": null,
        "createdTime": time(at),
        "chatStatus": "AVAILABLE",
        "hasLogo": false,
        "isAssignToTeamEnabled": false,
        "isVisibleInCustomerPortal": true,
        "nameInCustomerPortal": name,
    })
}

fn new_agent(ctx: &Ctx, rng: &mut StdRng, id: RecordId) -> Value {
    let (first, last) = names::person_name(rng);
    let departments: Vec<Value> = ctx.store.live_ids(Entity::Department).into_iter().map(id_text).collect();
    json!({
        "id": id_text(id),
        "firstName": first,
        "lastName": last,
        "name": format!("{first} {last}"),
        "emailId": names::email(&first, &last, "zylker.test"),
        "phone": names::phone(rng),
        "mobile": null,
        "status": "ACTIVE",
        "roleId": "1892000000004001",
        "profileId": "1892000000004002",
        "isConfirmed": true,
        "zuid": (10_000_000 + id % 1_000_000).to_string(),
        "photoURL": format!("https://desk.zoho.com/api/v1/agents/{id}/photo?orgId={}", ctx.config.auth.zoho_org_id),
        "associatedDepartmentIds": departments,
        "langCode": "en_US",
        "timeZone": "Europe/Tallinn",
    })
}

fn new_contact(rng: &mut StdRng, id: RecordId, at: i64) -> Value {
    let (first, last) = names::person_name(rng);
    let company = names::company_name(rng);
    json!({
        "id": id_text(id),
        "firstName": first,
        "lastName": last,
        "email": names::email(&first, &last, "customer.test"),
        "phone": names::phone(rng),
        "mobile": names::phone(rng),
        "accountId": (1_892_000_000_975_000 + id % 1000).to_string(),
        "accountName": company,
        "ownerId": null,
        "type": null,
        "isSpam": false,
        "city": pick(rng, names::CITIES).0,
        "country": pick(rng, names::CITIES).2,
        "description": null,
        "createdTime": time(at),
        "modifiedTime": time(at),
        "webUrl": format!("https://desk.zoho.com/support/zylker/ShowHomePage.do#Contacts/dv/{id}"),
    })
}

const CHANNELS: &[&str] = &["Email", "Phone", "Web", "Chat", "Forums"];
const PRIORITIES: &[&str] = &["Low", "Medium", "High"];

fn status_type(status: &str) -> &'static str {
    match status {
        "Closed" => "Closed",
        "On Hold" => "On Hold",
        _ => "Open",
    }
}

fn new_ticket(ctx: &Ctx, rng: &mut StdRng, id: RecordId, at: i64) -> Value {
    let number = 100 + id - first_id(Entity::Ticket);
    let contact_id = ctx.pick_live(rng, Entity::Contact, |_| true);
    let contact = contact_id.and_then(|contact| ctx.store.current(Entity::Contact, contact)).cloned();
    let department = ctx.pick_live(rng, Entity::Department, |_| true);
    let assignee = ctx.pick_live(rng, Entity::Agent, |agent| agent["status"] == json!("ACTIVE"));
    json!({
        "ticketNumber": number.to_string(),
        "subCategory": null,
        "statusType": "Open",
        "subject": *pick(rng, names::SUBJECTS),
        "dueDate": time(at + rng.random_range(1..10) * DAY_MS),
        "departmentId": department.map(id_text).unwrap_or(Value::Null),
        "channel": *pick(rng, CHANNELS),
        "onholdTime": null,
        "language": "English",
        "source": {"appName": null, "extId": null, "type": "SYSTEM", "permalink": null, "appPhotoURL": null},
        "closedTime": null,
        "sharedCount": "0",
        "responseDueDate": time(at + DAY_MS),
        "createdTime": time(at),
        "modifiedTime": time(at),
        "id": id_text(id),
        "email": contact.as_ref().map(|contact| contact["email"].clone()).unwrap_or(Value::Null),
        "channelCode": null,
        "customerResponseTime": time(at),
        "productId": null,
        "contactId": contact_id.map(id_text).unwrap_or(Value::Null),
        "threadCount": "0",
        "priority": *pick(rng, PRIORITIES),
        "assigneeId": assignee.map(id_text).unwrap_or(Value::Null),
        "commentCount": "0",
        "phone": contact.as_ref().map(|contact| contact["phone"].clone()).unwrap_or(Value::Null),
        "webUrl": format!("https://desk.zoho.com/support/zylker/ShowHomePage.do#Cases/dv/{id}"),
        "teamId": null,
        "isSpam": false,
        "category": null,
        "status": "Open",
        "cf": {"cf_region": pick(rng, names::CITIES).2},
    })
}

fn new_thread(ctx: &Ctx, rng: &mut StdRng, id: RecordId, ticket_id: RecordId, at: i64) -> Value {
    let incoming = rng.random_bool(0.5);
    let ticket = ctx.store.current(Entity::Ticket, ticket_id);
    let email = ticket.map(|ticket| ticket["email"].clone()).unwrap_or(Value::Null);
    json!({
        "id": id_text(id),
        "ticketId": id_text(ticket_id),
        "channel": "EMAIL",
        "status": "SUCCESS",
        "direction": if incoming { "in" } else { "out" },
        "visibility": "public",
        "createdTime": time(at),
        "summary": if incoming { "Any update on this?" } else { "We are looking into it." },
        "author": {"name": if incoming { "Customer" } else { "Agent" }, "email": email, "type": if incoming { "END_USER" } else { "AGENT" }},
        "fromEmailAddress": email,
        "to": "support@zylker.test",
        "cc": null,
        "contentType": "text/html",
        "hasAttach": false,
        "attachmentCount": "0",
        "isDescriptionThread": false,
        "respondedIn": null,
        "canReply": true,
    })
}

fn new_comment(ctx: &Ctx, rng: &mut StdRng, id: RecordId, ticket_id: RecordId, at: i64) -> Value {
    let agent_id = ctx.pick_live(rng, Entity::Agent, |_| true);
    let agent = agent_id.and_then(|agent| ctx.store.current(Entity::Agent, agent));
    json!({
        "id": id_text(id),
        "ticketId": id_text(ticket_id),
        "content": *pick(rng, &["Checked with billing.", "Customer called back.", "Escalating to tier 2.", "Waiting on vendor."]),
        "contentType": "plainText",
        "isPublic": rng.random_bool(0.3),
        "commentedTime": time(at),
        "modifiedTime": time(at),
        "commenterId": agent_id.map(id_text).unwrap_or(Value::Null),
        "commenter": {
            "id": agent_id.map(id_text).unwrap_or(Value::Null),
            "name": agent.map(|agent| agent["name"].clone()).unwrap_or(Value::Null),
            "email": agent.map(|agent| agent["emailId"].clone()).unwrap_or(Value::Null),
            "type": "AGENT",
            "roleName": "Agent",
        },
        "attachments": [],
        "mention": [],
    })
}

/// Chooses a random change.
pub fn random_request(ctx: &Ctx, rng: &mut StdRng) -> Option<ChangeRequest> {
    Some(match pick_kind(ctx, rng) {
        ChangeKind::Create => ChangeRequest::Create {
            entity: pick_weighted(
                rng,
                &[
                    (Entity::Ticket, 35),
                    (Entity::Thread, 30),
                    (Entity::Comment, 15),
                    (Entity::Contact, 15),
                    (Entity::Agent, 3),
                    (Entity::Department, 2),
                ],
            ),
        },
        ChangeKind::Update => {
            let entity = pick_weighted(
                rng,
                &[
                    (Entity::Ticket, 60),
                    (Entity::Contact, 20),
                    (Entity::Comment, 10),
                    (Entity::Agent, 6),
                    (Entity::Department, 4),
                ],
            );
            let id = ctx.pick_live(rng, entity, |record| {
                entity != Entity::Ticket || record["status"] != json!("Closed")
            })?;
            ChangeRequest::Update { entity, id }
        }
        _ => {
            let entity = pick_weighted(rng, &[(Entity::Ticket, 50), (Entity::Contact, 30), (Entity::Comment, 20)]);
            let id = ctx.pick_live(rng, entity, |_| true)?;
            ChangeRequest::Delete { entity, id }
        }
    })
}

/// Bumps a ticket after a thread or comment was added: count, modified time.
fn bump_ticket(ctx: &mut Ctx, ticket_id: RecordId, counter: &str, now: i64) -> Result<ChangeEvent, ChangeError> {
    let mut ticket = ctx.live(Entity::Ticket, ticket_id)?;
    ticket[counter] = json!((count_text(&ticket[counter]) + 1).to_string());
    ticket["modifiedTime"] = time(now);
    Ok(ctx.write(Entity::Ticket, ticket_id, Some(ticket), now, ChangeAction::Update, None))
}

/// Deletes the threads and comments of a deleted ticket, as Zoho does (its sub-resource
/// endpoints answer 404 from then on), each with a recorded delete version.
fn delete_children(ctx: &mut Ctx, ticket_id: RecordId, now: i64) -> Vec<ChangeEvent> {
    let ticket = id_text(ticket_id);
    let mut events = Vec::new();
    for entity in [Entity::Thread, Entity::Comment] {
        let children: Vec<RecordId> = ctx
            .store
            .rows(entity)
            .into_iter()
            .filter(|row| row.record["ticketId"] == ticket)
            .map(|row| row.id)
            .collect();
        for child in children {
            events.push(ctx.write(entity, child, None, now, ChangeAction::Delete, None));
        }
    }
    events
}

/// Applies one change to the Zoho Desk world.
pub fn apply(ctx: &mut Ctx, rng: &mut StdRng, request: &ChangeRequest) -> Result<Vec<ChangeEvent>, ChangeError> {
    let now = ctx.now_ms();
    match request {
        ChangeRequest::Create { entity } => {
            let entity = *entity;
            match entity {
                Entity::Thread | Entity::Comment => {
                    let ticket_id = ctx
                        .pick_live(rng, Entity::Ticket, |ticket| ticket["status"] != json!("Closed"))
                        .or_else(|| ctx.pick_live(rng, Entity::Ticket, |_| true))
                        .ok_or_else(|| ChangeError::Unsupported(format!("a {entity} needs a live ticket; create one first")))?;
                    let id = ctx.store.allocate_id(entity, 1);
                    let record = if entity == Entity::Thread {
                        new_thread(ctx, rng, id, ticket_id, now)
                    } else {
                        new_comment(ctx, rng, id, ticket_id, now)
                    };
                    let created = ctx.write(entity, id, Some(record), now, ChangeAction::Create, None);
                    let counter = if entity == Entity::Thread { "threadCount" } else { "commentCount" };
                    let bumped = bump_ticket(ctx, ticket_id, counter, now)?;
                    Ok(vec![created, bumped])
                }
                Entity::Ticket | Entity::Contact | Entity::Agent | Entity::Department => {
                    let id = ctx.store.allocate_id(entity, 1);
                    let record = match entity {
                        Entity::Ticket => new_ticket(ctx, rng, id, now),
                        Entity::Contact => new_contact(rng, id, now),
                        Entity::Agent => new_agent(ctx, rng, id),
                        _ => new_department(id, ctx.store.live_count(Entity::Department), now),
                    };
                    Ok(vec![ctx.write(entity, id, Some(record), now, ChangeAction::Create, None)])
                }
                other => Err(ChangeError::UnknownEntity(other)),
            }
        }
        ChangeRequest::Update { entity, id } => {
            let entity = *entity;
            let mut record = ctx.live(entity, *id)?;
            match entity {
                Entity::Ticket => match rng.random_range(0..4) {
                    0 => {
                        let status = *pick(rng, &["Open", "On Hold", "Escalated", "Closed"]);
                        record["status"] = json!(status);
                        record["statusType"] = json!(status_type(status));
                        record["closedTime"] = if status == "Closed" { time(now) } else { Value::Null };
                        record["onholdTime"] = if status == "On Hold" { time(now) } else { Value::Null };
                    }
                    1 => record["priority"] = json!(*pick(rng, PRIORITIES)),
                    2 => {
                        let assignee = ctx.pick_live(rng, Entity::Agent, |agent| agent["status"] == json!("ACTIVE"));
                        record["assigneeId"] = assignee.map(id_text).unwrap_or(Value::Null);
                    }
                    _ => record["subject"] = json!(format!("{} (updated)", pick(rng, names::SUBJECTS))),
                },
                Entity::Contact => record["phone"] = json!(names::phone(rng)),
                Entity::Comment => record["content"] = json!(format!("Edited: {}", pick(rng, names::SUBJECTS))),
                Entity::Agent => {
                    let active = record["status"] == json!("ACTIVE");
                    record["status"] = json!(if active { "DISABLED" } else { "ACTIVE" });
                }
                Entity::Department => record["description"] = json!(format!("Updated {}", rng.random_range(1..1000))),
                // An edited thread (a corrected draft, say): its content changes, its
                // `createdTime` does not, and neither does its ticket.
                Entity::Thread => record["summary"] = json!(format!("Edited: {}", pick(rng, names::SUBJECTS))),
                other => return Err(ChangeError::UnknownEntity(other)),
            }
            let modified = match modified_field(entity) {
                Some("modifiedTime") => {
                    record["modifiedTime"] = time(now);
                    now
                }
                _ => now,
            };
            Ok(vec![ctx.write(entity, *id, Some(record), modified, ChangeAction::Update, None)])
        }
        ChangeRequest::Delete { entity, id } => {
            let record = ctx.live(*entity, *id)?;
            if matches!(entity, Entity::Thread | Entity::Department) {
                return Err(ChangeError::Unsupported(format!(
                    "zoho desk {entity}s are not deleted in the simulator"
                )));
            }
            let mut events = vec![ctx.write(*entity, *id, None, now, ChangeAction::Delete, None)];
            if *entity == Entity::Ticket {
                events.extend(delete_children(ctx, *id, now));
            }
            if *entity == Entity::Comment {
                if let Some(ticket_id) = id_of(&record["ticketId"]) {
                    if let Ok(mut ticket) = ctx.live(Entity::Ticket, ticket_id) {
                        let count = count_text(&ticket["commentCount"]).saturating_sub(1);
                        ticket["commentCount"] = json!(count.to_string());
                        ticket["modifiedTime"] = time(now);
                        events.push(ctx.write(Entity::Ticket, ticket_id, Some(ticket), now, ChangeAction::Update, None));
                    }
                }
            }
            Ok(events)
        }
        ChangeRequest::Merge { .. } | ChangeRequest::DeactivateUser { .. } => Err(ChangeError::Unsupported(
            "merges and user deactivations are pipedrive changes".into(),
        )),
    }
}

fn event_type(event: &ChangeEvent) -> String {
    let subject = match event.entity {
        Entity::Ticket => "Ticket",
        Entity::Contact => "Contact",
        Entity::Thread => "Ticket_Thread",
        Entity::Comment => "Ticket_Comment",
        Entity::Agent => "Agent",
        Entity::Department => "Department",
        _ => "Unknown",
    };
    let verb = match (event.action, &event.after) {
        (ChangeAction::Create, _) => "Add",
        (_, None) => "Delete",
        _ => "Update",
    };
    format!("{subject}_{verb}")
}

/// Whether Zoho Desk sends a webhook for a change: its thread events are `Ticket_Thread_Add`
/// only, so an edited thread is seen by the API alone.
pub fn sends_webhook(event: &ChangeEvent) -> bool {
    !(event.entity == Entity::Thread && event.action == ChangeAction::Update)
}

/// One element of a Zoho Desk webhook array.
pub fn webhook_event(config: &SimulatorConfig, event: &ChangeEvent) -> Value {
    let payload = match &event.after {
        Some(record) => record.clone(),
        None => json!({"id": id_text(event.id)}),
    };
    let mut body = json!({
        "eventType": event_type(event),
        "orgId": config.auth.zoho_org_id,
        "eventTime": crate::webhooks::zoho_event_time(event.at_ms),
        "payload": payload,
    });
    if event.action != ChangeAction::Create {
        if let Some(before) = &event.before {
            body["prevState"] = before.clone();
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Connector;
    use crate::world::World;

    #[test]
    fn adding_a_thread_bumps_the_ticket() {
        let mut world = World::new(SimulatorConfig::for_connector(Connector::ZohoDesk)).expect("world");
        world.ctx.clock.advance_ms(1000);
        let events = world.apply(&ChangeRequest::Create { entity: Entity::Thread }).expect("thread");
        assert_eq!(events.len(), 2);
        let ticket = events[1].after.as_ref().expect("ticket");
        let before = events[1].before.as_ref().expect("before");
        assert_eq!(count_text(&ticket["threadCount"]), count_text(&before["threadCount"]) + 1);
        assert_eq!(ticket["modifiedTime"], time(world.ctx.now_ms()));
        assert!(ticket["modifiedTime"].as_str().expect("string").ends_with('Z'));
    }

    #[test]
    fn deleting_a_ticket_deletes_its_threads_and_comments() {
        let mut world = World::new(SimulatorConfig::for_connector(Connector::ZohoDesk)).expect("world");
        world.ctx.clock.advance_ms(1000);
        let thread = world.apply(&ChangeRequest::Create { entity: Entity::Thread }).expect("thread");
        let ticket_id = thread[1].id;
        let thread_id = thread[0].id;
        let ticket_text = id_text(ticket_id);
        let comment_id = loop {
            let events = world.apply(&ChangeRequest::Create { entity: Entity::Comment }).expect("comment");
            if events[1].id == ticket_id {
                break events[0].id;
            }
        };
        let children = |world: &World, entity: Entity| {
            world
                .ctx
                .store
                .rows(entity)
                .into_iter()
                .filter(|row| row.record["ticketId"] == ticket_text)
                .count()
        };
        let threads_before = children(&world, Entity::Thread);
        let comments_before = children(&world, Entity::Comment);
        assert!(threads_before >= 1 && comments_before >= 1);

        world.ctx.clock.advance_ms(1000);
        let events = world
            .apply(&ChangeRequest::Delete {
                entity: Entity::Ticket,
                id: ticket_id,
            })
            .expect("delete");
        assert_eq!(events.len(), 1 + threads_before + comments_before);
        assert!(events
            .iter()
            .all(|event| event.after.is_none() && event.at_ms == world.ctx.now_ms()));
        assert_eq!(children(&world, Entity::Thread), 0);
        assert_eq!(children(&world, Entity::Comment), 0);
        assert!(world.ctx.store.current(Entity::Thread, thread_id).is_none());
        assert!(world.ctx.store.current(Entity::Comment, comment_id).is_none());
        // The deletes are versions of the records, not silent removals.
        let deleted: Vec<(Entity, RecordId)> = events.iter().map(|event| (event.entity, event.id)).collect();
        assert!(deleted.contains(&(Entity::Thread, thread_id)));
        assert!(deleted.contains(&(Entity::Comment, comment_id)));
    }

    #[test]
    fn webhook_events_name_entity_and_action() {
        let config = SimulatorConfig::for_connector(Connector::ZohoDesk);
        let event = ChangeEvent {
            sequence: 1,
            entity: Entity::Ticket,
            id: 5,
            action: ChangeAction::Delete,
            at_ms: 1_700_000_000_123,
            before: Some(json!({"id": "5"})),
            after: None,
            merged_into: None,
        };
        let body = webhook_event(&config, &event);
        assert_eq!(body["eventType"], "Ticket_Delete");
        assert_eq!(body["eventTime"], "1700000000123");
        assert_eq!(body["payload"], json!({"id": "5"}));
        assert_eq!(body["prevState"], json!({"id": "5"}));
    }
}
