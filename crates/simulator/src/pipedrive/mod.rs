//! Pipedrive: records, changes and their renderings (v2 API, v1 API, v1 and v2 webhooks).
//!
//! The stored record of deals, persons, organizations, pipelines and stages is the v2 API shape
//! (`update_time` as `YYYY-MM-DDTHH:MM:SSZ`, whole seconds, custom fields under `custom_fields`
//! keyed by 40-character hashes); users are stored in the v1 `/users` shape (`modified` as
//! `YYYY-MM-DD HH:MM:SS`). The v1 shapes are rendered from these.

pub mod api;
pub mod render;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::clock::{self, format_pipedrive_v1, format_rfc3339_seconds, truncate_to_second};
use crate::entity::Entity;
use crate::names;
use crate::store::{ChangeAction, RecordId};
use crate::world::{pick, pick_kind, pick_weighted, ChangeError, ChangeEvent, ChangeKind, ChangeRequest, Ctx};

const DAY_MS: i64 = 86_400_000;

/// A Pipedrive custom field.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomField {
    /// Field id (as in `/dealFields`).
    pub id: u64,
    /// The 40-character hash key.
    pub key: String,
    /// Display name.
    pub name: &'static str,
    /// Pipedrive field type: `varchar`, `double`, `enum`, `date` or `monetary`.
    pub field_type: &'static str,
    /// Enum options `(id, label)`.
    pub options: Vec<(i64, &'static str)>,
}

/// Seed-derived Pipedrive data: the company and its custom fields.
#[derive(Debug, Clone)]
pub struct PipedriveCatalog {
    /// Company id in webhook metas.
    pub company_id: u64,
    /// Deal custom fields.
    pub deal_fields: Vec<CustomField>,
    /// Person custom fields.
    pub person_fields: Vec<CustomField>,
    /// Organization custom fields.
    pub organization_fields: Vec<CustomField>,
}

/// A 40-character lowercase hex key, like Pipedrive's custom-field keys.
pub fn custom_field_key(seed: u64, entity: Entity, name: &str) -> String {
    let digest = Sha256::digest(format!("{seed}/{entity}/{name}").as_bytes());
    names::hex(&digest)[..40].to_string()
}

impl PipedriveCatalog {
    /// The catalog for a seed.
    pub fn new(seed: u64) -> Self {
        let field =
            |id: u64, entity: Entity, name: &'static str, field_type: &'static str, options: Vec<(i64, &'static str)>| CustomField {
                id,
                key: custom_field_key(seed, entity, name),
                name,
                field_type,
                options,
            };
        Self {
            company_id: 8_087_566,
            deal_fields: vec![
                field(
                    101,
                    Entity::Deal,
                    "Customer Type",
                    "enum",
                    vec![(190, "Private person"), (191, "Company"), (192, "Government")],
                ),
                field(102, Entity::Deal, "Region", "varchar", vec![]),
                field(103, Entity::Deal, "Score", "double", vec![]),
                field(104, Entity::Deal, "Renewal date", "date", vec![]),
                field(105, Entity::Deal, "Contract value", "monetary", vec![]),
            ],
            person_fields: vec![
                field(201, Entity::Person, "Nickname", "varchar", vec![]),
                field(202, Entity::Person, "Lead score", "double", vec![]),
            ],
            organization_fields: vec![
                field(
                    301,
                    Entity::Organization,
                    "Tier",
                    "enum",
                    vec![(310, "Gold"), (311, "Silver"), (312, "Bronze")],
                ),
                field(302, Entity::Organization, "Account code", "varchar", vec![]),
            ],
        }
    }

    /// The custom fields of an entity (empty for those without).
    pub fn fields(&self, entity: Entity) -> &[CustomField] {
        match entity {
            Entity::Deal => &self.deal_fields,
            Entity::Person => &self.person_fields,
            Entity::Organization => &self.organization_fields,
            _ => &[],
        }
    }
}

fn catalog(ctx: &Ctx) -> PipedriveCatalog {
    match &ctx.catalog {
        crate::world::Catalog::Pipedrive(catalog) => catalog.clone(),
        _ => PipedriveCatalog::new(ctx.config.seed),
    }
}

/// The modified-time field of an entity.
pub fn modified_field(entity: Entity) -> &'static str {
    match entity {
        Entity::User => "modified",
        _ => "update_time",
    }
}

fn random_custom_value(rng: &mut StdRng, field: &CustomField, now_ms: i64) -> Value {
    if rng.random_bool(0.2) {
        return Value::Null;
    }
    match field.field_type {
        "enum" => json!(pick(rng, &field.options).0),
        "double" => json!(rng.random_range(0..1000)),
        "date" => json!(clock::format_date(now_ms + rng.random_range(0..365) * DAY_MS)),
        "monetary" => json!({"value": rng.random_range(1..500) * 100, "currency": *pick(rng, names::CURRENCIES)}),
        _ => json!(format!("{} {}", pick(rng, names::COMPANY_STEMS), rng.random_range(1..99))),
    }
}

fn random_custom_fields(rng: &mut StdRng, fields: &[CustomField], now_ms: i64) -> Value {
    let map: Map<String, Value> = fields
        .iter()
        .map(|field| (field.key.clone(), random_custom_value(rng, field, now_ms)))
        .collect();
    Value::Object(map)
}

fn address(rng: &mut StdRng) -> Value {
    let (locality, admin_area, country) = *pick(rng, names::CITIES);
    let street = *pick(rng, names::STREETS);
    let number = rng.random_range(1..200).to_string();
    let postal = format!("{:05}", rng.random_range(10000..99999));
    json!({
        "value": format!("{street} {number}, {postal} {locality}"),
        "country": country,
        "admin_area_level_1": admin_area,
        "admin_area_level_2": "",
        "locality": locality,
        "sublocality": "",
        "route": street,
        "street_number": number,
        "subpremise": "",
        "postal_code": postal,
    })
}

fn time_v2(ms: i64) -> Value {
    json!(format_rfc3339_seconds(ms))
}

/// Writes an initial record whose version time is its own (past) modified time.
fn seed_write(ctx: &mut Ctx, entity: Entity, id: RecordId, record: Value, modified_ms: i64) {
    ctx.store.put(entity, id, record, modified_ms, modified_ms, ChangeAction::Create);
}

/// Past add/update times for an initial record (seconds, before the clock start).
fn past_times(rng: &mut StdRng, now_ms: i64) -> (i64, i64) {
    let add = truncate_to_second(now_ms - rng.random_range(30..400) * DAY_MS - rng.random_range(0..DAY_MS));
    let update = truncate_to_second((add + rng.random_range(0..30) * DAY_MS).min(now_ms - 60_000));
    (add, update.max(add))
}

/// Fills the store with the configured initial records.
pub fn seed_records(ctx: &mut Ctx, rng: &mut StdRng) {
    let now = ctx.now_ms();
    for _ in 0..ctx.config.initial_count(Entity::User) {
        let (add, update) = past_times(rng, now);
        let id = ctx.store.allocate_id(Entity::User, 1);
        let record = new_user(rng, id, add, update);
        seed_write(ctx, Entity::User, id, record, update);
    }
    for _ in 0..ctx.config.initial_count(Entity::Pipeline) {
        let (add, update) = past_times(rng, now);
        let id = ctx.store.allocate_id(Entity::Pipeline, 1);
        let record = new_pipeline(id, add, update);
        seed_write(ctx, Entity::Pipeline, id, record, update);
    }
    for index in 0..ctx.config.initial_count(Entity::Stage) {
        let (add, update) = past_times(rng, now);
        let id = ctx.store.allocate_id(Entity::Stage, 1);
        let pipelines = ctx.store.live_ids(Entity::Pipeline);
        let pipeline_id = if pipelines.is_empty() {
            1
        } else {
            pipelines[index % pipelines.len()]
        };
        let order_nr = ctx
            .store
            .rows(Entity::Stage)
            .iter()
            .filter(|row| row.record["pipeline_id"] == json!(pipeline_id))
            .count()
            + 1;
        let record = new_stage(rng, id, pipeline_id, order_nr, add, update);
        seed_write(ctx, Entity::Stage, id, record, update);
    }
    let catalog = catalog(ctx);
    for _ in 0..ctx.config.initial_count(Entity::Organization) {
        let (add, update) = past_times(rng, now);
        let id = ctx.store.allocate_id(Entity::Organization, 1);
        let record = new_organization(ctx, rng, &catalog, id, add, update);
        seed_write(ctx, Entity::Organization, id, record, update);
    }
    for _ in 0..ctx.config.initial_count(Entity::Person) {
        let (add, update) = past_times(rng, now);
        let id = ctx.store.allocate_id(Entity::Person, 1);
        let record = new_person(ctx, rng, &catalog, id, add, update);
        seed_write(ctx, Entity::Person, id, record, update);
    }
    for _ in 0..ctx.config.initial_count(Entity::Deal) {
        let (add, update) = past_times(rng, now);
        let id = ctx.store.allocate_id(Entity::Deal, 1);
        let record = new_deal(ctx, rng, &catalog, id, add, update);
        seed_write(ctx, Entity::Deal, id, record, update);
    }
}

fn new_user(rng: &mut StdRng, id: RecordId, add_ms: i64, update_ms: i64) -> Value {
    let (first, last) = names::person_name(rng);
    json!({
        "id": id,
        "name": format!("{first} {last}"),
        "default_currency": "EUR",
        "locale": "et_EE",
        "lang": 1,
        "email": names::email(&first, &last, "example-company.test"),
        "phone": names::phone(rng),
        "activated": true,
        "last_login": format_pipedrive_v1(update_ms),
        "created": format_pipedrive_v1(add_ms),
        "modified": format_pipedrive_v1(update_ms),
        "has_created_company": id == 10_001,
        "access": [{"app": "sales", "admin": id == 10_001, "permission_set_id": format!("{:08x}-0000-4000-8000-000000000001", id)}],
        "active_flag": true,
        "timezone_name": "Europe/Tallinn",
        "timezone_offset": "+02:00",
        "role_id": 1,
        "icon_url": null,
        "is_you": id == 10_001,
        "is_deleted": false,
    })
}

fn new_pipeline(id: RecordId, add_ms: i64, update_ms: i64) -> Value {
    let name = match id {
        1 => "Sales".to_string(),
        2 => "Renewals".to_string(),
        _ => format!("Pipeline {id}"),
    };
    json!({
        "id": id,
        "name": name,
        "order_nr": id,
        "is_deleted": false,
        "is_deal_probability_enabled": id % 2 == 1,
        "add_time": time_v2(add_ms),
        "update_time": time_v2(update_ms),
    })
}

const STAGE_NAMES: &[&str] = &[
    "Qualified",
    "Contact Made",
    "Demo Scheduled",
    "Proposal Made",
    "Negotiations Started",
];

fn new_stage(rng: &mut StdRng, id: RecordId, pipeline_id: RecordId, order_nr: usize, add_ms: i64, update_ms: i64) -> Value {
    let name = STAGE_NAMES[(order_nr - 1) % STAGE_NAMES.len()];
    json!({
        "id": id,
        "order_nr": order_nr,
        "name": name,
        "is_deleted": false,
        "deal_probability": (order_nr * 20).min(100),
        "pipeline_id": pipeline_id,
        "is_deal_rot_enabled": rng.random_bool(0.3),
        "days_to_rotten": if rng.random_bool(0.3) { json!(rng.random_range(1..30)) } else { Value::Null },
        "add_time": time_v2(add_ms),
        "update_time": time_v2(update_ms),
    })
}

fn active_user(ctx: &Ctx, rng: &mut StdRng) -> Value {
    match ctx.pick_live(rng, Entity::User, |user| user["active_flag"] == json!(true)) {
        Some(id) => json!(id),
        None => Value::Null,
    }
}

/// Keys the v2 API spec (`openapi-v2.yaml`, the 200 schemas of `GET /deals`, `/persons`,
/// `/organizations` and their `/{id}`) declares as non-nullable, but that a record may have no
/// value for: an open deal has no `won_time`, a person without contact sync no `birthday`
/// ("included if contact sync is enabled"). A v2 record leaves such a key out rather than
/// sending `null` (the v1 renderings and webhooks still carry `null`).
pub const V2_ABSENT_WHEN_EMPTY: &[(Entity, &[&str])] = &[
    (
        Entity::Deal,
        &[
            "owner_id",
            "person_id",
            "org_id",
            "stage_id",
            "stage_change_time",
            "won_time",
            "lost_time",
        ],
    ),
    (Entity::Person, &["owner_id", "org_id", "picture_id", "notes", "birthday"]),
    (Entity::Organization, &["owner_id"]),
];

/// The v2 record without the keys of `V2_ABSENT_WHEN_EMPTY` that are null.
pub fn without_empty(entity: Entity, mut record: Value) -> Value {
    let keys = V2_ABSENT_WHEN_EMPTY
        .iter()
        .find(|(listed, _)| *listed == entity)
        .map(|(_, keys)| *keys)
        .unwrap_or_default();
    if let Some(map) = record.as_object_mut() {
        map.retain(|key, value| !(value.is_null() && keys.contains(&key.as_str())));
    }
    record
}

fn live_or_null(ctx: &Ctx, rng: &mut StdRng, entity: Entity) -> Value {
    match ctx.pick_live(rng, entity, |_| true) {
        Some(id) => json!(id),
        None => Value::Null,
    }
}

fn new_organization(ctx: &Ctx, rng: &mut StdRng, catalog: &PipedriveCatalog, id: RecordId, add_ms: i64, update_ms: i64) -> Value {
    let name = names::company_name(rng);
    let domain: String = name.split(' ').next().unwrap_or("company").to_lowercase();
    let record = json!({
        "id": id,
        "name": name,
        "owner_id": active_user(ctx, rng),
        "org_id": id,
        "add_time": time_v2(add_ms),
        "update_time": time_v2(update_ms),
        "address": address(rng),
        "is_deleted": false,
        "visible_to": 3,
        "label_ids": [],
        "website": format!("https://www.{domain}.test"),
        "linkedin": format!("https://linkedin.com/company/{domain}"),
        "industry": rng.random_range(1..20),
        "annual_revenue": rng.random_range(1..500) * 10_000,
        "employee_count": rng.random_range(1..2000),
        "custom_fields": random_custom_fields(rng, catalog.fields(Entity::Organization), add_ms),
    });
    without_empty(Entity::Organization, record)
}

fn new_person(ctx: &Ctx, rng: &mut StdRng, catalog: &PipedriveCatalog, id: RecordId, add_ms: i64, update_ms: i64) -> Value {
    let (first, last) = names::person_name(rng);
    let record = json!({
        "id": id,
        "name": format!("{first} {last}"),
        "first_name": first,
        "last_name": last,
        "owner_id": active_user(ctx, rng),
        "org_id": live_or_null(ctx, rng, Entity::Organization),
        "add_time": time_v2(add_ms),
        "update_time": time_v2(update_ms),
        "emails": [{"value": names::email(&first, &last, "customer.test"), "primary": true, "label": "work"}],
        "phones": [{"value": names::phone(rng), "primary": true, "label": "work"}],
        "is_deleted": false,
        "visible_to": 3,
        "label_ids": [],
        "picture_id": null,
        "custom_fields": random_custom_fields(rng, catalog.fields(Entity::Person), add_ms),
        "notes": null,
        "im": [],
        "birthday": null,
        "job_title": if rng.random_bool(0.5) { json!("Manager") } else { json!("Engineer") },
        "postal_address": address(rng),
    });
    without_empty(Entity::Person, record)
}

fn new_deal(ctx: &Ctx, rng: &mut StdRng, catalog: &PipedriveCatalog, id: RecordId, add_ms: i64, update_ms: i64) -> Value {
    let person_id = live_or_null(ctx, rng, Entity::Person);
    let org_id = person_id
        .as_u64()
        .and_then(|person| ctx.store.current(Entity::Person, person))
        .map(|person| person["org_id"].clone())
        .filter(|org| !org.is_null())
        .unwrap_or_else(|| live_or_null(ctx, rng, Entity::Organization));
    let stage_id = live_or_null(ctx, rng, Entity::Stage);
    let pipeline_id = stage_id
        .as_u64()
        .and_then(|stage| ctx.store.current(Entity::Stage, stage))
        .map(|stage| stage["pipeline_id"].clone())
        .unwrap_or(json!(1));
    let owner = active_user(ctx, rng);
    let value = rng.random_range(1..200) * 250;
    let title = match org_id.as_u64().and_then(|org| ctx.store.current(Entity::Organization, org)) {
        Some(org) => format!("{} deal", org["name"].as_str().unwrap_or("Organization")),
        None => format!("{} deal", names::company_name(rng)),
    };
    let record = json!({
        "id": id,
        "title": title,
        "creator_user_id": owner,
        "owner_id": owner,
        "value": value,
        "person_id": person_id,
        "org_id": org_id,
        "stage_id": stage_id,
        "pipeline_id": pipeline_id,
        "currency": *pick(rng, names::CURRENCIES),
        "archive_time": null,
        "add_time": time_v2(add_ms),
        "update_time": time_v2(update_ms),
        "stage_change_time": null,
        "status": "open",
        "is_archived": false,
        "is_deleted": false,
        "probability": null,
        "lost_reason": null,
        "visible_to": 3,
        "close_time": null,
        "won_time": null,
        "lost_time": null,
        "local_won_date": null,
        "local_lost_date": null,
        "local_close_date": null,
        "expected_close_date": clock::format_date(add_ms + rng.random_range(10..120) * DAY_MS),
        "label_ids": [],
        "origin": "ManuallyCreated",
        "origin_id": null,
        "channel": null,
        "channel_id": null,
        "source_lead_id": null,
        "acv": value,
        "arr": value,
        "mrr": value / 12,
        "custom_fields": random_custom_fields(rng, catalog.fields(Entity::Deal), add_ms),
    });
    without_empty(Entity::Deal, record)
}

/// Chooses a random change.
pub fn random_request(ctx: &Ctx, rng: &mut StdRng) -> Option<ChangeRequest> {
    let kind = pick_kind(ctx, rng);
    let request = match kind {
        ChangeKind::Create => ChangeRequest::Create {
            entity: pick_weighted(
                rng,
                &[
                    (Entity::Deal, 50),
                    (Entity::Person, 25),
                    (Entity::Organization, 15),
                    (Entity::Stage, 3),
                    (Entity::User, 2),
                ],
            ),
        },
        ChangeKind::Update => {
            let entity = pick_weighted(
                rng,
                &[
                    (Entity::Deal, 55),
                    (Entity::Person, 20),
                    (Entity::Organization, 15),
                    (Entity::Stage, 4),
                    (Entity::Pipeline, 3),
                    (Entity::User, 3),
                ],
            );
            let id = ctx.pick_live(rng, entity, |record| entity != Entity::User || record["active_flag"] == json!(true))?;
            ChangeRequest::Update { entity, id }
        }
        ChangeKind::Delete => {
            let entity = pick_weighted(
                rng,
                &[
                    (Entity::Deal, 60),
                    (Entity::Person, 25),
                    (Entity::Organization, 12),
                    (Entity::Stage, 3),
                ],
            );
            let id = if entity == Entity::Stage {
                deletable_stage(ctx, rng)?
            } else {
                ctx.pick_live(rng, entity, |_| true)?
            };
            ChangeRequest::Delete { entity, id }
        }
        ChangeKind::Merge => {
            let entity = pick_weighted(rng, &[(Entity::Deal, 50), (Entity::Person, 30), (Entity::Organization, 20)]);
            let id = ctx.pick_live(rng, entity, |_| true)?;
            let into = ctx.pick_live(rng, entity, |record| record["id"] != json!(id))?;
            ChangeRequest::Merge { entity, id, into }
        }
        ChangeKind::DeactivateUser => {
            let active = ctx
                .store
                .rows(Entity::User)
                .iter()
                .filter(|row| row.record["active_flag"] == json!(true))
                .count();
            if active < 2 {
                return None;
            }
            let id = ctx.pick_live(rng, Entity::User, |user| {
                user["active_flag"] == json!(true) && user["is_you"] != json!(true)
            })?;
            ChangeRequest::DeactivateUser { id }
        }
    };
    Some(request)
}

/// A stage that no live deal uses and whose pipeline keeps another stage.
fn deletable_stage(ctx: &Ctx, rng: &mut StdRng) -> Option<RecordId> {
    let deals = ctx.store.rows(Entity::Deal);
    let stages = ctx.store.rows(Entity::Stage);
    let candidates: Vec<RecordId> = stages
        .iter()
        .filter(|stage| !deals.iter().any(|deal| deal.record["stage_id"] == json!(stage.id)))
        .filter(|stage| {
            stages
                .iter()
                .filter(|other| other.record["pipeline_id"] == stage.record["pipeline_id"])
                .count()
                > 1
        })
        .map(|stage| stage.id)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    Some(*pick(rng, &candidates))
}

fn now_seconds(ctx: &Ctx) -> i64 {
    truncate_to_second(ctx.now_ms())
}

fn touch(record: &mut Value, entity: Entity, now_s: i64) {
    let stamp = if entity == Entity::User {
        json!(format_pipedrive_v1(now_s))
    } else {
        time_v2(now_s)
    };
    record[modified_field(entity)] = stamp;
}

fn mutate(ctx: &Ctx, rng: &mut StdRng, catalog: &PipedriveCatalog, entity: Entity, record: &mut Value, now_s: i64) {
    match entity {
        Entity::Deal => {
            let open = record["status"] == json!("open");
            let choice = rng.random_range(0..7);
            match choice {
                0 => record["value"] = json!(rng.random_range(1..200) * 250),
                1 => {
                    if let Some(stage) = ctx.pick_live(rng, Entity::Stage, |stage| stage["pipeline_id"] == record["pipeline_id"]) {
                        record["stage_id"] = json!(stage);
                        record["stage_change_time"] = time_v2(now_s);
                    }
                }
                2 if open => {
                    let won = rng.random_bool(0.6);
                    record["status"] = json!(if won { "won" } else { "lost" });
                    record["close_time"] = time_v2(now_s);
                    record["local_close_date"] = json!(clock::format_date(now_s));
                    if won {
                        record["won_time"] = time_v2(now_s);
                        record["local_won_date"] = json!(clock::format_date(now_s));
                    } else {
                        record["lost_time"] = time_v2(now_s);
                        record["local_lost_date"] = json!(clock::format_date(now_s));
                        record["lost_reason"] = json!("Price too high");
                    }
                }
                3 => record["owner_id"] = active_user(ctx, rng),
                4 => {
                    let fields = catalog.fields(Entity::Deal);
                    let field = pick(rng, fields);
                    record["custom_fields"][&field.key] = random_custom_value(rng, field, now_s);
                }
                5 => record["probability"] = json!(rng.random_range(1..10) * 10),
                _ => record["expected_close_date"] = json!(clock::format_date(now_s + rng.random_range(5..90) * DAY_MS)),
            }
        }
        Entity::Person => match rng.random_range(0..4) {
            0 => {
                let (first, last) = names::person_name(rng);
                record["name"] = json!(format!("{first} {last}"));
                record["first_name"] = json!(first);
                record["last_name"] = json!(last);
            }
            1 => record["phones"] = json!([{"value": names::phone(rng), "primary": true, "label": "work"}]),
            2 => {
                let fields = catalog.fields(Entity::Person);
                let field = pick(rng, fields);
                record["custom_fields"][&field.key] = random_custom_value(rng, field, now_s);
            }
            _ => record["job_title"] = json!(*pick(rng, &["Director", "Buyer", "Engineer", "CFO"])),
        },
        Entity::Organization => match rng.random_range(0..3) {
            0 => record["address"] = address(rng),
            1 => {
                let fields = catalog.fields(Entity::Organization);
                let field = pick(rng, fields);
                record["custom_fields"][&field.key] = random_custom_value(rng, field, now_s);
            }
            _ => record["employee_count"] = json!(rng.random_range(1..5000)),
        },
        Entity::Stage => match rng.random_range(0..2) {
            0 => record["deal_probability"] = json!(rng.random_range(1..10) * 10),
            _ => {
                let name = format!("{} {}", pick(rng, STAGE_NAMES), rng.random_range(2..9));
                record["name"] = json!(name);
            }
        },
        Entity::Pipeline => {
            let enabled = record["is_deal_probability_enabled"] == json!(true);
            record["is_deal_probability_enabled"] = json!(!enabled);
        }
        Entity::User => match rng.random_range(0..2) {
            0 => record["phone"] = json!(names::phone(rng)),
            _ => record["last_login"] = json!(format_pipedrive_v1(now_s)),
        },
        _ => {}
    }
}

/// Applies one change to the Pipedrive world.
pub fn apply(ctx: &mut Ctx, rng: &mut StdRng, request: &ChangeRequest) -> Result<Vec<ChangeEvent>, ChangeError> {
    let catalog = catalog(ctx);
    let now_s = now_seconds(ctx);
    match request {
        ChangeRequest::Create { entity } => {
            let entity = *entity;
            let id = ctx.store.allocate_id(entity, 1);
            let record = match entity {
                Entity::Deal => new_deal(ctx, rng, &catalog, id, now_s, now_s),
                Entity::Person => new_person(ctx, rng, &catalog, id, now_s, now_s),
                Entity::Organization => new_organization(ctx, rng, &catalog, id, now_s, now_s),
                Entity::User => new_user(rng, id, now_s, now_s),
                Entity::Pipeline => new_pipeline(id, now_s, now_s),
                Entity::Stage => {
                    let pipeline = ctx.pick_live(rng, Entity::Pipeline, |_| true).unwrap_or(1);
                    let order = ctx
                        .store
                        .rows(Entity::Stage)
                        .iter()
                        .filter(|row| row.record["pipeline_id"] == json!(pipeline))
                        .count()
                        + 1;
                    new_stage(rng, id, pipeline, order, now_s, now_s)
                }
                other => return Err(ChangeError::UnknownEntity(other)),
            };
            Ok(vec![ctx.write(entity, id, Some(record), now_s, ChangeAction::Create, None)])
        }
        ChangeRequest::Update { entity, id } => {
            let entity = *entity;
            let mut record = ctx.live(entity, *id)?;
            let before = record.clone();
            // Keep drawing until a field actually changes (a few tries), as an upstream change
            // always changes something.
            for _ in 0..4 {
                mutate(ctx, rng, &catalog, entity, &mut record, now_s);
                if record != before {
                    break;
                }
            }
            touch(&mut record, entity, now_s);
            Ok(vec![ctx.write(entity, *id, Some(record), now_s, ChangeAction::Update, None)])
        }
        ChangeRequest::Delete { entity, id } => {
            if *entity == Entity::User {
                return Err(ChangeError::Unsupported(
                    "pipedrive users are never deleted; use deactivate_user".into(),
                ));
            }
            ctx.live(*entity, *id)?;
            Ok(vec![ctx.write(*entity, *id, None, now_s, ChangeAction::Delete, None)])
        }
        ChangeRequest::Merge { entity, id, into } => merge(ctx, *entity, *id, *into, now_s),
        ChangeRequest::DeactivateUser { id } => {
            let mut user = ctx.live(Entity::User, *id)?;
            if user["active_flag"] == json!(false) {
                return Err(ChangeError::Unsupported(format!("user {id} is already deactivated")));
            }
            user["active_flag"] = json!(false);
            touch(&mut user, Entity::User, now_s);
            Ok(vec![ctx.write(
                Entity::User,
                *id,
                Some(user),
                now_s,
                ChangeAction::Deactivate,
                None,
            )])
        }
    }
}

fn merge(ctx: &mut Ctx, entity: Entity, loser: RecordId, winner: RecordId, now_s: i64) -> Result<Vec<ChangeEvent>, ChangeError> {
    if !matches!(entity, Entity::Deal | Entity::Person | Entity::Organization) {
        return Err(ChangeError::Unsupported(format!(
            "pipedrive merges deals, persons and organizations, not {entity}"
        )));
    }
    if loser == winner {
        return Err(ChangeError::Unsupported("a record cannot be merged into itself".into()));
    }
    ctx.live(entity, loser)?;
    let mut survivor = ctx.live(entity, winner)?;
    touch(&mut survivor, entity, now_s);
    let mut events = vec![ctx.write(entity, winner, Some(survivor), now_s, ChangeAction::Merge, None)];
    events.push(ctx.write(entity, loser, None, now_s, ChangeAction::Merge, Some(winner)));
    // Records that pointed at the merged-away record now point at the survivor.
    let pointer = match entity {
        Entity::Person => Some("person_id"),
        Entity::Organization => Some("org_id"),
        _ => None,
    };
    if let Some(field) = pointer {
        let referencing: Vec<(Entity, RecordId, Value)> = [Entity::Deal, Entity::Person]
            .into_iter()
            .flat_map(|child| {
                ctx.store
                    .rows(child)
                    .into_iter()
                    .filter(|row| row.record.get(field) == Some(&json!(loser)))
                    .map(move |row| (child, row.id, row.record))
            })
            .collect();
        for (child, child_id, mut record) in referencing {
            record[field] = json!(winner);
            touch(&mut record, child, now_s);
            events.push(ctx.write(child, child_id, Some(record), now_s, ChangeAction::Update, None));
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimulatorConfig;
    use crate::world::World;

    fn world() -> World {
        World::new(SimulatorConfig::default()).expect("world")
    }

    #[test]
    fn custom_field_keys_are_40_hex_characters() {
        let catalog = PipedriveCatalog::new(7);
        for entity in [Entity::Deal, Entity::Person, Entity::Organization] {
            for field in catalog.fields(entity) {
                assert_eq!(field.key.len(), 40);
                assert!(field.key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
        }
        assert_ne!(PipedriveCatalog::new(8).deal_fields[0].key, catalog.deal_fields[0].key);
    }

    #[test]
    fn update_times_have_second_resolution() {
        let mut world = world();
        world.ctx.config.change_spacing_ms = 250;
        let events = world.step_changes(40);
        for event in events {
            let Some(after) = &event.after else { continue };
            let field = modified_field(event.entity);
            let text = after[field].as_str().expect("modified time is a string");
            let ms = clock::parse_timestamp(text).expect("parses");
            assert_eq!(ms % 1000, 0, "{text}");
            assert_eq!(ms, truncate_to_second(event.at_ms));
        }
    }

    #[test]
    fn merge_deletes_the_loser_and_repoints_children() {
        let mut world = world();
        let persons = world.ctx.store.live_ids(Entity::Person);
        let (loser, winner) = (persons[0], persons[1]);
        let deal_id = world.ctx.store.live_ids(Entity::Deal)[0];
        let mut deal = world.ctx.store.current(Entity::Deal, deal_id).cloned().expect("deal");
        deal["person_id"] = json!(loser);
        world.ctx.store.put(Entity::Deal, deal_id, deal, 0, 0, ChangeAction::Update);
        let events = world
            .apply(&ChangeRequest::Merge {
                entity: Entity::Person,
                id: loser,
                into: winner,
            })
            .expect("merge");
        assert_eq!(events[1].merged_into, Some(winner));
        assert!(world.ctx.store.current(Entity::Person, loser).is_none());
        let deal = world.ctx.store.current(Entity::Deal, deal_id).expect("deal");
        assert_eq!(deal["person_id"], json!(winner));
        assert!(events.iter().any(|event| event.entity == Entity::Deal && event.id == deal_id));
    }

    #[test]
    fn users_are_deactivated_not_deleted() {
        let mut world = world();
        let user = world.ctx.store.live_ids(Entity::User)[1];
        assert!(world
            .apply(&ChangeRequest::Delete {
                entity: Entity::User,
                id: user
            })
            .is_err());
        let events = world.apply(&ChangeRequest::DeactivateUser { id: user }).expect("deactivate");
        assert_eq!(events[0].action, ChangeAction::Deactivate);
        let after = events[0].after.as_ref().expect("still there");
        assert_eq!(after["active_flag"], json!(false));
    }
}
