//! Pipedrive renderings: v1 API records, related objects, field definitions, and v1/v2 webhook
//! payloads, all derived from the stored v2 (or v1 for users) record.

use rand::rngs::StdRng;
use serde_json::{json, Map, Value};

use super::{CustomField, PipedriveCatalog};
use crate::clock::{format_pipedrive_v1, format_rfc3339_millis, format_rfc3339_seconds, parse_timestamp};
use crate::config::PipedriveWebhookVersion;
use crate::entity::Entity;
use crate::names;
use crate::store::{ChangeAction, Store};
use crate::world::ChangeEvent;

/// Timestamp fields that change format between v2 (`...Z`) and v1 (`YYYY-MM-DD HH:MM:SS`).
const TIME_FIELDS: &[&str] = &[
    "add_time",
    "update_time",
    "stage_change_time",
    "close_time",
    "won_time",
    "lost_time",
    "archive_time",
    "first_won_time",
];

/// Converts a v2 timestamp value to v1 format (null stays null).
pub fn v1_time(value: &Value) -> Value {
    match value.as_str().and_then(parse_timestamp) {
        Some(ms) => json!(format_pipedrive_v1(ms)),
        None => Value::Null,
    }
}

fn get<'a>(record: &'a Value, key: &str) -> &'a Value {
    record.get(key).unwrap_or(&Value::Null)
}

fn string_of(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(_) => value.clone(),
        other => json!(other.to_string()),
    }
}

/// Stable small counts derived from the id (activities, notes, ...), which the simulator does
/// not model as entities.
fn small_count(id: u64, salt: u64) -> u64 {
    (id.wrapping_mul(2_654_435_761).wrapping_add(salt * 40_503) >> 7) % 5
}

/// The v1 user object embedded in records (`owner_id`, `user_id`, ...).
pub fn user_object(store: &Store, id: &Value) -> Value {
    let Some(user) = id.as_u64().and_then(|id| store.current(Entity::User, id)) else {
        return Value::Null;
    };
    json!({
        "id": user["id"],
        "name": user["name"],
        "email": user["email"],
        "has_pic": 0,
        "pic_hash": null,
        "active_flag": user["active_flag"],
        "value": user["id"],
    })
}

fn person_object(store: &Store, id: &Value) -> Value {
    let Some(person) = id.as_u64().and_then(|id| store.current(Entity::Person, id)) else {
        return Value::Null;
    };
    json!({
        "active_flag": true,
        "name": person["name"],
        "email": person["emails"],
        "phone": person["phones"],
        "owner_id": person["owner_id"],
        "value": person["id"],
    })
}

fn address_text(org: &Value) -> Value {
    org.get("address")
        .and_then(|address| address.get("value"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn org_object(store: &Store, id: &Value) -> Value {
    let Some(org) = id.as_u64().and_then(|id| store.current(Entity::Organization, id)) else {
        return Value::Null;
    };
    json!({
        "name": org["name"],
        "people_count": people_count(store, id),
        "owner_id": org["owner_id"],
        "address": address_text(org),
        "active_flag": true,
        "cc_email": format!("org{}@pipedrivemail.com", org["id"]),
        "value": org["id"],
    })
}

fn people_count(store: &Store, org_id: &Value) -> usize {
    store
        .rows(Entity::Person)
        .iter()
        .filter(|row| &row.record["org_id"] == org_id)
        .count()
}

fn name_of(store: &Store, entity: Entity, id: &Value) -> Value {
    id.as_u64()
        .and_then(|id| store.current(entity, id))
        .map(|record| record["name"].clone())
        .unwrap_or(Value::Null)
}

/// Flattens v2 `custom_fields` into v1 top-level keys (`<hash>`, `<hash>_currency`).
fn flatten_custom_fields(target: &mut Map<String, Value>, record: &Value, fields: &[CustomField]) {
    for field in fields {
        let value = record
            .get("custom_fields")
            .and_then(|custom| custom.get(&field.key))
            .cloned()
            .unwrap_or(Value::Null);
        if field.field_type == "monetary" {
            target.insert(field.key.clone(), value.get("value").cloned().unwrap_or(Value::Null));
            target.insert(
                format!("{}_currency", field.key),
                value.get("currency").cloned().unwrap_or(Value::Null),
            );
        } else {
            target.insert(field.key.clone(), value);
        }
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A deal in the v1 API shape (`/v1/deals`), with related objects expanded.
pub fn v1_deal(store: &Store, catalog: &PipedriveCatalog, deal: &Value) -> Value {
    let id = deal["id"].as_u64().unwrap_or(0);
    let stage = deal["stage_id"].as_u64().and_then(|stage| store.current(Entity::Stage, stage));
    let status = get(deal, "status").as_str().unwrap_or("open");
    let value = get(deal, "value").as_f64().unwrap_or(0.0);
    let currency = get(deal, "currency").as_str().unwrap_or("EUR").to_string();
    let probability = get(deal, "probability").as_f64().unwrap_or(100.0);
    let weighted = (value * probability / 100.0).round();
    let label = deal["label_ids"].get(0).map(string_of).unwrap_or(Value::Null);
    let mut map = object(json!({
        "id": id,
        "creator_user_id": user_object(store, get(deal, "creator_user_id")),
        "user_id": user_object(store, get(deal, "owner_id")),
        "person_id": person_object(store, get(deal, "person_id")),
        "org_id": org_object(store, get(deal, "org_id")),
        "stage_id": deal["stage_id"],
        "title": deal["title"],
        "value": deal["value"],
        "currency": currency,
        "archive_time": v1_time(get(deal, "archive_time")),
        "add_time": v1_time(get(deal, "add_time")),
        "update_time": v1_time(get(deal, "update_time")),
        "stage_change_time": v1_time(get(deal, "stage_change_time")),
        "active": status == "open",
        "deleted": false,
        "is_archived": get(deal, "is_archived"),
        "status": status,
        "probability": get(deal, "probability"),
        "next_activity_date": null,
        "next_activity_time": null,
        "next_activity_id": null,
        "last_activity_id": null,
        "last_activity_date": null,
        "lost_reason": get(deal, "lost_reason"),
        "visible_to": string_of(get(deal, "visible_to")),
        "close_time": v1_time(get(deal, "close_time")),
        "pipeline_id": deal["pipeline_id"],
        "won_time": v1_time(get(deal, "won_time")),
        "first_won_time": v1_time(get(deal, "won_time")),
        "lost_time": v1_time(get(deal, "lost_time")),
        "products_count": small_count(id, 1),
        "files_count": small_count(id, 2),
        "notes_count": small_count(id, 3),
        "followers_count": 1,
        "email_messages_count": small_count(id, 4),
        "activities_count": small_count(id, 5),
        "done_activities_count": 0,
        "undone_activities_count": small_count(id, 5),
        "participants_count": 1,
        "expected_close_date": get(deal, "expected_close_date"),
        "last_incoming_mail_time": null,
        "last_outgoing_mail_time": null,
        "label": label,
        "origin": get(deal, "origin"),
        "origin_id": get(deal, "origin_id"),
        "channel": get(deal, "channel"),
        "channel_id": get(deal, "channel_id"),
        "stage_order_nr": stage.map(|stage| stage["order_nr"].clone()).unwrap_or(Value::Null),
        "person_name": name_of(store, Entity::Person, get(deal, "person_id")),
        "org_name": name_of(store, Entity::Organization, get(deal, "org_id")),
        "next_activity_subject": null,
        "next_activity_type": null,
        "next_activity_duration": null,
        "next_activity_note": null,
        "formatted_value": format!("{value} {currency}"),
        "weighted_value": weighted,
        "formatted_weighted_value": format!("{weighted} {currency}"),
        "weighted_value_currency": currency,
        "rotten_time": null,
        "owner_name": name_of(store, Entity::User, get(deal, "owner_id")),
        "cc_email": format!("company+deal{id}@pipedrivemail.com"),
        "org_hidden": false,
        "person_hidden": false,
        "acv": get(deal, "acv"),
        "arr": get(deal, "arr"),
        "mrr": get(deal, "mrr"),
        "acv_currency": currency,
        "arr_currency": currency,
        "mrr_currency": currency,
    }));
    flatten_custom_fields(&mut map, deal, catalog.fields(Entity::Deal));
    Value::Object(map)
}

/// An organization in the v1 API shape.
pub fn v1_organization(store: &Store, catalog: &PipedriveCatalog, org: &Value) -> Value {
    let id = org["id"].as_u64().unwrap_or(0);
    let address = org.get("address").cloned().unwrap_or(Value::Null);
    let part = |key: &str| address.get(key).cloned().unwrap_or(Value::Null);
    let name = org["name"].as_str().unwrap_or_default().to_string();
    let deals: Vec<Value> = store
        .rows(Entity::Deal)
        .into_iter()
        .filter(|row| row.record["org_id"] == json!(id))
        .map(|row| row.record)
        .collect();
    let count_status = |status: &str| deals.iter().filter(|deal| deal["status"] == json!(status)).count();
    let mut map = object(json!({
        "id": id,
        "company_id": catalog.company_id,
        "owner_id": user_object(store, get(org, "owner_id")),
        "name": name,
        "open_deals_count": count_status("open"),
        "related_open_deals_count": 0,
        "closed_deals_count": count_status("won") + count_status("lost"),
        "related_closed_deals_count": 0,
        "email_messages_count": small_count(id, 4),
        "people_count": people_count(store, &json!(id)),
        "activities_count": small_count(id, 5),
        "done_activities_count": 0,
        "undone_activities_count": small_count(id, 5),
        "files_count": small_count(id, 2),
        "notes_count": small_count(id, 3),
        "followers_count": 1,
        "won_deals_count": count_status("won"),
        "related_won_deals_count": 0,
        "lost_deals_count": count_status("lost"),
        "related_lost_deals_count": 0,
        "active_flag": true,
        "picture_id": null,
        "country_code": null,
        "first_char": name.chars().next().map(|c| c.to_lowercase().to_string()).unwrap_or_default(),
        "update_time": v1_time(get(org, "update_time")),
        "add_time": v1_time(get(org, "add_time")),
        "visible_to": string_of(get(org, "visible_to")),
        "next_activity_date": null,
        "next_activity_time": null,
        "next_activity_id": null,
        "last_activity_id": null,
        "last_activity_date": null,
        "label": org["label_ids"].get(0).cloned().unwrap_or(Value::Null),
        "label_ids": get(org, "label_ids"),
        "address": part("value"),
        "address_subpremise": part("subpremise"),
        "address_street_number": part("street_number"),
        "address_route": part("route"),
        "address_sublocality": part("sublocality"),
        "address_locality": part("locality"),
        "address_admin_area_level_1": part("admin_area_level_1"),
        "address_admin_area_level_2": part("admin_area_level_2"),
        "address_country": part("country"),
        "address_postal_code": part("postal_code"),
        "address_formatted_address": part("value"),
        "owner_name": name_of(store, Entity::User, get(org, "owner_id")),
        "cc_email": format!("org{id}@pipedrivemail.com"),
    }));
    flatten_custom_fields(&mut map, org, catalog.fields(Entity::Organization));
    Value::Object(map)
}

/// A person in the v1 API shape.
pub fn v1_person(store: &Store, catalog: &PipedriveCatalog, person: &Value) -> Value {
    let id = person["id"].as_u64().unwrap_or(0);
    let name = person["name"].as_str().unwrap_or_default().to_string();
    let primary_email = person["emails"].get(0).map(|email| email["value"].clone()).unwrap_or(Value::Null);
    let mut map = object(json!({
        "id": id,
        "company_id": catalog.company_id,
        "owner_id": user_object(store, get(person, "owner_id")),
        "org_id": org_object(store, get(person, "org_id")),
        "name": name,
        "first_name": get(person, "first_name"),
        "last_name": get(person, "last_name"),
        "open_deals_count": 0,
        "related_open_deals_count": 0,
        "closed_deals_count": 0,
        "related_closed_deals_count": 0,
        "participant_open_deals_count": 0,
        "participant_closed_deals_count": 0,
        "email_messages_count": small_count(id, 4),
        "activities_count": small_count(id, 5),
        "done_activities_count": 0,
        "undone_activities_count": small_count(id, 5),
        "files_count": small_count(id, 2),
        "notes_count": small_count(id, 3),
        "followers_count": 1,
        "won_deals_count": 0,
        "related_won_deals_count": 0,
        "lost_deals_count": 0,
        "related_lost_deals_count": 0,
        "active_flag": true,
        "phone": get(person, "phones"),
        "email": get(person, "emails"),
        "primary_email": primary_email,
        "first_char": name.chars().next().map(|c| c.to_lowercase().to_string()).unwrap_or_default(),
        "update_time": v1_time(get(person, "update_time")),
        "add_time": v1_time(get(person, "add_time")),
        "visible_to": string_of(get(person, "visible_to")),
        "marketing_status": "no_consent",
        "picture_id": null,
        "next_activity_date": null,
        "next_activity_time": null,
        "next_activity_id": null,
        "last_activity_id": null,
        "last_activity_date": null,
        "last_incoming_mail_time": null,
        "last_outgoing_mail_time": null,
        "label": person["label_ids"].get(0).cloned().unwrap_or(Value::Null),
        "label_ids": get(person, "label_ids"),
        "org_name": name_of(store, Entity::Organization, get(person, "org_id")),
        "owner_name": name_of(store, Entity::User, get(person, "owner_id")),
        "cc_email": format!("company+person{id}@pipedrivemail.com"),
    }));
    flatten_custom_fields(&mut map, person, catalog.fields(Entity::Person));
    Value::Object(map)
}

fn url_title(name: &Value) -> String {
    name.as_str().unwrap_or_default().replace(' ', "-")
}

/// A pipeline in the v1 API shape.
pub fn v1_pipeline(pipeline: &Value) -> Value {
    json!({
        "id": pipeline["id"],
        "name": pipeline["name"],
        "url_title": url_title(&pipeline["name"]),
        "order_nr": pipeline["order_nr"],
        "active": true,
        "deal_probability": pipeline["is_deal_probability_enabled"],
        "add_time": v1_time(get(pipeline, "add_time")),
        "update_time": v1_time(get(pipeline, "update_time")),
        "selected": pipeline["id"] == json!(1),
    })
}

/// A stage in the v1 API shape.
pub fn v1_stage(store: &Store, stage: &Value) -> Value {
    let pipeline = stage["pipeline_id"].as_u64().and_then(|id| store.current(Entity::Pipeline, id));
    json!({
        "id": stage["id"],
        "order_nr": stage["order_nr"],
        "name": stage["name"],
        "active_flag": true,
        "deal_probability": stage["deal_probability"],
        "pipeline_id": stage["pipeline_id"],
        "rotten_flag": stage["is_deal_rot_enabled"],
        "rotten_days": stage["days_to_rotten"],
        "add_time": v1_time(get(stage, "add_time")),
        "update_time": v1_time(get(stage, "update_time")),
        "pipeline_name": pipeline.map(|pipeline| pipeline["name"].clone()).unwrap_or(Value::Null),
        "pipeline_deal_probability": pipeline
            .map(|pipeline| pipeline["is_deal_probability_enabled"].clone())
            .unwrap_or(Value::Null),
    })
}

/// Any entity in its v1 API shape.
pub fn v1_record(store: &Store, catalog: &PipedriveCatalog, entity: Entity, record: &Value) -> Value {
    match entity {
        Entity::Deal => v1_deal(store, catalog, record),
        Entity::Organization => v1_organization(store, catalog, record),
        Entity::Person => v1_person(store, catalog, record),
        Entity::Pipeline => v1_pipeline(record),
        Entity::Stage => v1_stage(store, record),
        _ => record.clone(),
    }
}

/// `related_objects` of a v1 list page: the users, organizations, persons, stages and
/// pipelines the page's records point at.
pub fn related_objects(store: &Store, entity: Entity, records: &[Value]) -> Value {
    let mut users = Map::new();
    let mut organizations = Map::new();
    let mut persons = Map::new();
    let mut stages = Map::new();
    let mut pipelines = Map::new();
    for record in records {
        for key in ["owner_id", "creator_user_id"] {
            let user = user_object(store, get(record, key));
            if let Some(id) = user.get("id").map(|id| id.to_string()) {
                let mut user = object(user);
                user.remove("value");
                users.insert(id, Value::Object(user));
            }
        }
        let org = org_object(store, get(record, "org_id"));
        if let Some(id) = org.get("value").map(|id| id.to_string()) {
            let mut org = object(org);
            if let Some(value) = org.remove("value") {
                org.insert("id".into(), value);
            }
            organizations.insert(id, Value::Object(org));
        }
        if entity == Entity::Deal {
            let person = person_object(store, get(record, "person_id"));
            if let Some(id) = person.get("value").map(|id| id.to_string()) {
                let mut person = object(person);
                if let Some(value) = person.remove("value") {
                    person.insert("id".into(), value);
                }
                persons.insert(id, Value::Object(person));
            }
            if let Some(stage) = record["stage_id"].as_u64().and_then(|id| store.current(Entity::Stage, id)) {
                stages.insert(stage["id"].to_string(), v1_stage(store, stage));
            }
            if let Some(pipeline) = record["pipeline_id"].as_u64().and_then(|id| store.current(Entity::Pipeline, id)) {
                pipelines.insert(pipeline["id"].to_string(), v1_pipeline(pipeline));
            }
        }
    }
    let mut related = Map::new();
    related.insert("user".into(), Value::Object(users));
    related.insert("organization".into(), Value::Object(organizations));
    if entity == Entity::Deal {
        related.insert("person".into(), Value::Object(persons));
        related.insert("stage".into(), Value::Object(stages));
        related.insert("pipeline".into(), Value::Object(pipelines));
    } else {
        related.insert("picture".into(), Value::Object(Map::new()));
    }
    Value::Object(related)
}

// ---------------------------------------------------------------------------------------------
// Field definitions (/v1/dealFields, /api/v2/dealFields and the person/organization variants)

const STANDARD_FIELDS: &[(&str, &str, &str, &str)] = &[
    // (entity, key, name, type)
    ("deal", "title", "Title", "varchar"),
    ("deal", "value", "Value", "monetary"),
    ("deal", "status", "Status", "status"),
    ("deal", "stage_id", "Stage", "stage"),
    ("deal", "pipeline_id", "Pipeline", "double"),
    ("deal", "owner_id", "Owner", "user"),
    ("deal", "person_id", "Contact person", "people"),
    ("deal", "org_id", "Organization", "org"),
    ("deal", "add_time", "Deal created", "date"),
    ("deal", "update_time", "Update time", "date"),
    ("deal", "expected_close_date", "Expected close date", "date"),
    ("deal", "probability", "Probability", "double"),
    ("person", "name", "Name", "varchar"),
    ("person", "first_name", "First name", "varchar"),
    ("person", "last_name", "Last name", "varchar"),
    ("person", "emails", "Email", "varchar"),
    ("person", "phones", "Phone", "phone"),
    ("person", "org_id", "Organization", "org"),
    ("person", "owner_id", "Owner", "user"),
    ("person", "add_time", "Person created", "date"),
    ("person", "update_time", "Update time", "date"),
    ("organization", "name", "Name", "varchar"),
    ("organization", "owner_id", "Owner", "user"),
    ("organization", "address", "Address", "address"),
    ("organization", "add_time", "Organization created", "date"),
    ("organization", "update_time", "Update time", "date"),
];

struct FieldDef {
    id: u64,
    key: String,
    name: String,
    field_type: String,
    custom: bool,
    options: Option<Vec<(i64, String)>>,
}

fn field_defs(catalog: &PipedriveCatalog, entity: Entity) -> Vec<FieldDef> {
    let mut defs: Vec<FieldDef> = STANDARD_FIELDS
        .iter()
        .filter(|(owner, ..)| *owner == entity.name())
        .enumerate()
        .map(|(index, (_, key, name, field_type))| FieldDef {
            id: index as u64 + 1,
            key: (*key).to_string(),
            name: (*name).to_string(),
            field_type: (*field_type).to_string(),
            custom: false,
            options: None,
        })
        .collect();
    defs.extend(catalog.fields(entity).iter().map(|field| FieldDef {
        id: field.id,
        key: field.key.clone(),
        name: field.name.to_string(),
        field_type: field.field_type.to_string(),
        custom: true,
        options: (!field.options.is_empty()).then(|| field.options.iter().map(|(id, label)| (*id, (*label).to_string())).collect()),
    }));
    defs
}

/// Field definitions in the v1 `/dealFields` shape.
pub fn v1_fields(catalog: &PipedriveCatalog, entity: Entity) -> Vec<Value> {
    field_defs(catalog, entity)
        .into_iter()
        .enumerate()
        .map(|(order, def)| {
            json!({
                "id": def.id,
                "key": def.key,
                "name": def.name,
                "order_nr": order,
                "field_type": def.field_type,
                "add_time": "2025-01-01 00:00:00",
                "update_time": "2025-01-01 00:00:00",
                "last_updated_by_user_id": 10001,
                "created_by_user_id": 10001,
                "active_flag": true,
                "edit_flag": def.custom,
                "index_visible_flag": true,
                "details_visible_flag": true,
                "add_visible_flag": true,
                "important_flag": false,
                "bulk_edit_allowed": true,
                "searchable_flag": false,
                "filtering_allowed": true,
                "sortable_flag": true,
                "options": def.options.map(|options| {
                    options.into_iter().map(|(id, label)| json!({"id": id, "label": label})).collect::<Vec<_>>()
                }),
                "mandatory_flag": def.key == "title" || def.key == "name",
            })
        })
        .collect()
}

/// Field definitions in the v2 `/dealFields` shape.
pub fn v2_fields(catalog: &PipedriveCatalog, entity: Entity) -> Vec<Value> {
    field_defs(catalog, entity)
        .into_iter()
        .map(|def| {
            let subfields = if def.field_type == "monetary" {
                json!([
                    {"field_code": def.key, "field_name": format!("Amount of {}", def.name), "field_type": "double"},
                    {"field_code": if def.custom { format!("{}_currency", def.key) } else { "currency".to_string() },
                     "field_name": format!("Currency of {}", def.name), "field_type": "varchar"},
                ])
            } else {
                Value::Null
            };
            json!({
                "field_name": def.name,
                "field_code": def.key,
                // A string in the v2 spec (not nullable): every field describes itself.
                "description": format!("The {} of the {}", def.name.to_lowercase(), entity.name()),
                "field_type": def.field_type,
                "options": def.options.map(|options| {
                    options.into_iter().map(|(id, label)| json!({"id": id, "label": label, "color": null})).collect::<Vec<_>>()
                }),
                "subfields": subfields,
                "is_custom_field": def.custom,
                "is_optional_response_field": false,
                "ui_visibility": {
                    "add_visible_flag": true,
                    "details_visible_flag": true,
                    "projects_detail_visible_flag": false,
                    "show_in_pipelines": {"show_in_all": true, "pipeline_ids": []}
                },
                "important_fields": {"enabled": false, "stage_ids": []},
                "required_fields": {"enabled": false, "stage_ids": [], "statuses": {}},
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// Typed custom fields as v2 webhooks send them: `{"type": .., "value": ..}` or null.
fn typed_custom_fields(record: &Value, fields: &[CustomField]) -> Value {
    let map: Map<String, Value> = fields
        .iter()
        .map(|field| {
            let value = record
                .get("custom_fields")
                .and_then(|custom| custom.get(&field.key))
                .cloned()
                .unwrap_or(Value::Null);
            let typed = match value {
                Value::Null => Value::Null,
                Value::Object(mut inner) if field.field_type == "monetary" => {
                    inner.insert("type".into(), json!("monetary"));
                    Value::Object(inner)
                }
                other => json!({"type": field.field_type, "value": other}),
            };
            (field.key.clone(), typed)
        })
        .collect();
    Value::Object(map)
}

fn pick_keys(record: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter().map(|key| ((*key).to_string(), get(record, key).clone())).collect()
}

/// A record as v2 webhooks carry it in `data`/`previous`.
pub fn v2_webhook_record(catalog: &PipedriveCatalog, entity: Entity, record: &Value) -> Value {
    let mut map = match entity {
        Entity::Deal => {
            let mut map = pick_keys(
                record,
                &[
                    "add_time",
                    "channel",
                    "channel_id",
                    "close_time",
                    "creator_user_id",
                    "currency",
                    "expected_close_date",
                    "id",
                    "label_ids",
                    "lost_reason",
                    "lost_time",
                    "org_id",
                    "origin",
                    "origin_id",
                    "owner_id",
                    "person_id",
                    "pipeline_id",
                    "probability",
                    "stage_change_time",
                    "stage_id",
                    "status",
                    "title",
                    "update_time",
                    "value",
                    "won_time",
                ],
            );
            map.insert("first_won_time".into(), get(record, "won_time").clone());
            map
        }
        Entity::Organization => {
            let mut map = pick_keys(record, &["add_time", "id", "name", "owner_id", "update_time"]);
            map.insert("address".into(), address_text(record));
            map.insert("country_code".into(), Value::Null);
            map.insert("label".into(), record["label_ids"].get(0).cloned().unwrap_or(Value::Null));
            map.insert("picture_id".into(), Value::Null);
            map
        }
        Entity::Person => {
            let mut map = pick_keys(
                record,
                &[
                    "add_time",
                    "emails",
                    "first_name",
                    "id",
                    "last_name",
                    "name",
                    "org_id",
                    "owner_id",
                    "phones",
                    "update_time",
                ],
            );
            map.insert("label".into(), record["label_ids"].get(0).cloned().unwrap_or(Value::Null));
            map
        }
        Entity::Pipeline => {
            let mut map = pick_keys(record, &["id", "name", "order_nr", "add_time", "update_time"]);
            map.insert("url_title".into(), json!(url_title(&record["name"])));
            map.insert("active_flag".into(), json!(true));
            map.insert("deal_probability".into(), get(record, "is_deal_probability_enabled").clone());
            map
        }
        Entity::Stage => {
            let mut map = pick_keys(
                record,
                &[
                    "id",
                    "name",
                    "order_nr",
                    "deal_probability",
                    "add_time",
                    "pipeline_id",
                    "update_time",
                ],
            );
            map.insert("active_flag".into(), json!(true));
            map.insert("rotten_days".into(), get(record, "days_to_rotten").clone());
            map.insert("rotten_flag".into(), get(record, "is_deal_rot_enabled").clone());
            map
        }
        Entity::User => {
            let mut map = pick_keys(
                record,
                &[
                    "default_currency",
                    "name",
                    "email",
                    "phone",
                    "locale",
                    "active_flag",
                    "last_login",
                    "timezone_name",
                    "icon_url",
                    "created",
                    "modified",
                ],
            );
            map.insert("id".into(), json!(record["id"].to_string()));
            map.insert("lang".into(), json!("en-US"));
            map.insert("access".into(), Value::Null);
            map
        }
        _ => object(record.clone()),
    };
    if matches!(entity, Entity::Deal | Entity::Organization | Entity::Person) {
        map.insert("custom_fields".into(), typed_custom_fields(record, catalog.fields(entity)));
    }
    if matches!(entity, Entity::Deal | Entity::Organization | Entity::Person) {
        map.insert("visible_to".into(), string_of(get(record, "visible_to")));
    }
    Value::Object(map)
}

/// The keys whose values differ between two records (v2 webhook `previous` holds only those).
fn changed_subset(before: &Value, after: &Value) -> Value {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return before.clone();
    };
    let mut changed = Map::new();
    for (key, old) in before {
        let new = after.get(key).unwrap_or(&Value::Null);
        if old == new {
            continue;
        }
        match (old, new) {
            (Value::Object(old_inner), Value::Object(_)) if key == "custom_fields" => {
                let inner = changed_subset(&Value::Object(old_inner.clone()), new);
                changed.insert(key.clone(), inner);
            }
            _ => {
                changed.insert(key.clone(), old.clone());
            }
        }
    }
    Value::Object(changed)
}

/// A v1 webhook `current`/`previous` record: the v1 list shape with plain ids.
pub fn v1_webhook_record(store: &Store, catalog: &PipedriveCatalog, entity: Entity, record: &Value) -> Value {
    let mut v1 = object(v1_record(store, catalog, entity, record));
    for key in ["creator_user_id", "user_id", "person_id", "org_id", "owner_id"] {
        if let Some(value) = v1.get(key).and_then(|inner| inner.get("value")).cloned() {
            v1.insert(key.into(), value);
        }
    }
    if matches!(entity, Entity::Deal | Entity::Organization | Entity::Person) {
        v1.insert("reference_activities_count".into(), json!(0));
    }
    if entity == Entity::Deal {
        // Activities are not simulated; the webhook carries the keys with null.
        v1.insert("last_activity".into(), Value::Null);
        v1.insert("next_activity".into(), Value::Null);
    }
    if entity == Entity::Organization {
        v1.insert("category_id".into(), Value::Null);
        v1.insert("address_lat".into(), Value::Null);
        v1.insert("address_long".into(), Value::Null);
        v1.insert("edit_name".into(), json!(true));
    }
    Value::Object(v1)
}

/// Webhook meta fields shared by a delivery.
pub struct WebhookContext<'a> {
    /// The store (for v1 renderings and names).
    pub store: &'a Store,
    /// Custom fields.
    pub catalog: &'a PipedriveCatalog,
    /// Random stream for delivery ids.
    pub rng: &'a mut StdRng,
    /// Webhook id (meta.webhook_id).
    pub webhook_id: u64,
    /// Acting user id.
    pub user_id: u64,
    /// Host in meta.
    pub host: String,
}

fn v2_action(event: &ChangeEvent) -> &'static str {
    match (event.action, &event.before, &event.after) {
        (ChangeAction::Create, ..) => "create",
        (_, _, None) => "delete",
        _ => "change",
    }
}

fn v1_action(event: &ChangeEvent) -> &'static str {
    match (event.action, &event.after) {
        (ChangeAction::Create, _) => "added",
        (ChangeAction::Merge, Some(_)) => "merged",
        (_, None) => "deleted",
        _ => "updated",
    }
}

/// The body of one Pipedrive webhook for one change event.
pub fn webhook_body(version: PipedriveWebhookVersion, context: &mut WebhookContext<'_>, event: &ChangeEvent) -> Value {
    let delivery_id = names::uuid(context.rng);
    match version {
        PipedriveWebhookVersion::V2 => {
            let render = |record: &Value| v2_webhook_record(context.catalog, event.entity, record);
            let data = event.after.as_ref().map(render).unwrap_or(Value::Null);
            let previous = match (&event.before, &event.after) {
                (None, _) => Value::Null,
                (Some(before), None) => render(before),
                (Some(before), Some(after)) => changed_subset(&render(before), &render(after)),
            };
            let correlation_id = names::uuid(context.rng);
            // The docs' user example carries an epoch-seconds timestamp; the others an RFC 3339 one.
            let timestamp = if event.entity == Entity::User {
                json!(event.at_ms / 1000)
            } else {
                json!(format_rfc3339_millis(event.at_ms))
            };
            let mut body = json!({
                "data": data,
                "previous": previous,
                "meta": {
                    "action": v2_action(event),
                    "company_id": context.catalog.company_id.to_string(),
                    "correlation_id": correlation_id,
                    "entity_id": event.id.to_string(),
                    "entity": event.entity.name(),
                    "id": delivery_id,
                    "is_bulk_edit": false,
                    "timestamp": timestamp,
                    "type": "general",
                    "user_id": context.user_id.to_string(),
                    "version": "2.0",
                    "webhook_id": context.webhook_id.to_string(),
                    "webhook_owner_id": context.user_id.to_string(),
                    "change_source": "app",
                    "attempt": 1,
                    "host": context.host,
                }
            });
            // The merged-away record's event names the survivor, as Pipedrive's v2 merges do.
            if let Some(into) = event.merged_into {
                body["meta"]["merged_to_id"] = json!(into.to_string());
            }
            body
        }
        PipedriveWebhookVersion::V1 => {
            let render = |record: &Value| v1_webhook_record(context.store, context.catalog, event.entity, record);
            let action = v1_action(event);
            let current = event.after.as_ref().map(render).unwrap_or(Value::Null);
            let previous = event.before.as_ref().map(render).unwrap_or(Value::Null);
            let matches = json!({"current": []});
            json!({
                "v": 1,
                "matches_filters": matches,
                "meta": {
                    "v": 1,
                    "action": action,
                    "object": event.entity.name(),
                    "id": event.id,
                    "company_id": context.catalog.company_id,
                    "user_id": context.user_id,
                    "host": context.host,
                    "timestamp": event.at_ms / 1000,
                    "timestamp_micro": event.at_ms * 1000,
                    "prepublish_timestamp": event.at_ms,
                    "permitted_user_ids": [context.user_id],
                    "trans_pending": false,
                    "is_bulk_update": false,
                    "pipedrive_service_name": false,
                    "matches_filters": matches,
                    "webhook_id": context.webhook_id.to_string(),
                    "change_source": "app",
                },
                "current": current,
                "previous": previous,
                "event": format!("{action}.{}", event.entity.name()),
                "retry": 0,
            })
        }
    }
}

/// Rewrites the attempt counter of a body for a retry (`meta.attempt` in v2, `retry` in v1).
pub fn set_attempt(body: &mut Value, attempt: u32) {
    if let Some(meta) = body.get_mut("meta").and_then(Value::as_object_mut) {
        if meta.contains_key("attempt") {
            meta.insert("attempt".into(), json!(attempt));
        }
    }
    if let Some(retry) = body.get_mut("retry") {
        *retry = json!(attempt.saturating_sub(1));
    }
}

/// A record's modified time in v2 RFC 3339 form, for display.
pub fn v2_time(ms: i64) -> String {
    format_rfc3339_seconds(ms)
}

/// A deleted deal as `GET /v2/deals?status=deleted` returns it: the last live record with
/// `status: "deleted"`, `is_deleted: true` and `update_time` at the delete (whole seconds).
pub fn v2_deleted_deal(record: &Value, deleted_ms: i64) -> Value {
    let mut deal = record.clone();
    deal["status"] = json!("deleted");
    deal["is_deleted"] = json!(true);
    deal["update_time"] = json!(format_rfc3339_seconds(deleted_ms));
    deal
}

/// A deleted person or organization as the v2 API still answers it: `is_deleted: true` and
/// `update_time` at the delete.
pub fn v2_soft_deleted(record: &Value, deleted_ms: i64) -> Value {
    let mut soft = record.clone();
    soft["is_deleted"] = json!(true);
    soft["update_time"] = json!(format_rfc3339_seconds(deleted_ms));
    soft
}

/// The time fields converted by `v1_time` (exposed for tests).
pub fn time_fields() -> &'static [&'static str] {
    TIME_FIELDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_holds_only_changed_keys() {
        let before = json!({"a": 1, "b": 2, "custom_fields": {"x": 1, "y": 2}});
        let after = json!({"a": 1, "b": 3, "custom_fields": {"x": 1, "y": 5}});
        assert_eq!(changed_subset(&before, &after), json!({"b": 2, "custom_fields": {"y": 2}}));
    }

    #[test]
    fn deleted_deals_carry_the_delete_time_and_flags() {
        let deal = json!({"id": 4, "status": "won", "is_deleted": false, "update_time": "2026-01-01T00:00:01Z"});
        let deleted = v2_deleted_deal(&deal, 1_767_225_662_750);
        assert_eq!(deleted["status"], json!("deleted"));
        assert_eq!(deleted["is_deleted"], json!(true));
        assert_eq!(deleted["update_time"], json!("2026-01-01T00:01:02Z"));
        assert_eq!(deleted["id"], json!(4));
    }

    #[test]
    fn v1_times_drop_the_t_and_z() {
        assert_eq!(v1_time(&json!("2022-11-24T13:18:55Z")), json!("2022-11-24 13:18:55"));
        assert_eq!(v1_time(&Value::Null), Value::Null);
        assert!(time_fields().contains(&"update_time"));
    }

    #[test]
    fn monetary_custom_fields_flatten_with_currency() {
        let catalog = PipedriveCatalog::new(1);
        let field = catalog
            .deal_fields
            .iter()
            .find(|field| field.field_type == "monetary")
            .expect("monetary");
        let record = json!({"custom_fields": {field.key.clone(): {"value": 500, "currency": "EUR"}}});
        let mut flat = Map::new();
        flatten_custom_fields(&mut flat, &record, &catalog.deal_fields);
        assert_eq!(flat[&field.key], json!(500));
        assert_eq!(flat[&format!("{}_currency", field.key)], json!("EUR"));
        let typed = typed_custom_fields(&record, &catalog.deal_fields);
        assert_eq!(typed[&field.key], json!({"value": 500, "currency": "EUR", "type": "monetary"}));
    }
}
