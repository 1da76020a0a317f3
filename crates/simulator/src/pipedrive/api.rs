//! Pipedrive HTTP API: v2 and v1 read endpoints, field endpoints, recents, webhooks list and the
//! OAuth token endpoint. Handlers are thin: parse, read the world, render.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::render;
use super::PipedriveCatalog;
use crate::clock::{format_pipedrive_v1, parse_timestamp, truncate_to_second};
use crate::entity::{Connector, Entity};
use crate::http::{parse_urlencoded, vendor_error, Params, VendorError};
use crate::paging::{keyset_page, offset_page, sort_keyed, Cursor, Direction, TimeWindow};
use crate::server::Shared;
use crate::store::{ChangeAction, Row, Store};
use crate::world::{Catalog, World};

type AppState = Arc<Shared>;

const MAX_LIMIT: usize = 500;

fn error(error: VendorError) -> Response {
    vendor_error(Connector::Pipedrive, error)
}

fn bad_request(message: String) -> Response {
    error(VendorError::BadRequest(message))
}

fn catalog(world: &World) -> PipedriveCatalog {
    match &world.ctx.catalog {
        Catalog::Pipedrive(catalog) => catalog.clone(),
        _ => PipedriveCatalog::new(world.ctx.config.seed),
    }
}

/// The data routes (all behind the auth/fault gate).
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (plural, entity) in [
        ("deals", Entity::Deal),
        ("persons", Entity::Person),
        ("organizations", Entity::Organization),
        ("pipelines", Entity::Pipeline),
        ("stages", Entity::Stage),
    ] {
        router = router
            .route(&format!("/api/v2/{plural}"), v2_list_route(entity))
            .route(&format!("/api/v2/{plural}/{{id}}"), v2_detail_route(entity))
            .route(&format!("/api/v1/{plural}"), v1_list_route(entity))
            .route(&format!("/api/v1/{plural}/{{id}}"), v1_detail_route(entity));
    }
    for (name, entity) in [
        ("dealFields", Entity::Deal),
        ("personFields", Entity::Person),
        ("organizationFields", Entity::Organization),
    ] {
        router = router
            .route(&format!("/api/v2/{name}"), v2_fields_route(entity))
            .route(&format!("/api/v1/{name}"), v1_fields_route(entity));
    }
    router
        .route("/api/v1/users", v1_list_route(Entity::User))
        .route("/api/v1/users/{id}", v1_detail_route(Entity::User))
        .route("/api/v1/recents", get(recents))
        .route("/api/v1/webhooks", get(webhooks_list))
}

/// The OAuth routes (no API auth).
pub fn auth_routes() -> Router<AppState> {
    Router::new().route("/oauth/token", post(oauth_token))
}

/// Token cost of an endpoint (Pipedrive's token-based rate limiting): v2 lists 10, v2 detail
/// GETs 1, v1 lists 20, v1 detail GETs 2, the OAuth endpoint 0.
pub fn cost(method_and_path: &str) -> u64 {
    let path = method_and_path.split(' ').nth(1).unwrap_or_default();
    let detail = path.ends_with("{id}");
    if path.starts_with("/api/v2/") {
        if detail {
            1
        } else {
            10
        }
    } else if path.starts_with("/api/v1/") {
        if detail {
            2
        } else {
            20
        }
    } else {
        0
    }
}

fn v2_list_route(entity: Entity) -> MethodRouter<AppState> {
    get(
        move |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move {
            v2_list(&shared, entity, &Params(query))
        },
    )
}

fn v2_detail_route(entity: Entity) -> MethodRouter<AppState> {
    get(move |State(shared): State<AppState>, Path(id): Path<String>| async move { v2_detail(&shared, entity, &id) })
}

fn v1_list_route(entity: Entity) -> MethodRouter<AppState> {
    get(
        move |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move {
            v1_list(&shared, entity, &Params(query))
        },
    )
}

fn v1_detail_route(entity: Entity) -> MethodRouter<AppState> {
    get(move |State(shared): State<AppState>, Path(id): Path<String>| async move { v1_detail(&shared, entity, &id) })
}

fn v2_fields_route(entity: Entity) -> MethodRouter<AppState> {
    get(
        move |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move {
            fields(&shared, entity, &Params(query), 2)
        },
    )
}

fn v1_fields_route(entity: Entity) -> MethodRouter<AppState> {
    get(
        move |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move {
            fields(&shared, entity, &Params(query), 1)
        },
    )
}

fn limit_param(params: &Params, default: usize) -> Result<usize, VendorError> {
    let limit = params.usize("limit").map_err(VendorError::BadRequest)?.unwrap_or(default);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(VendorError::BadRequest(format!(
            "Validation failed: limit: Value must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}

fn time_param(params: &Params, name: &str) -> Result<Option<i64>, VendorError> {
    match params.get(name) {
        None => Ok(None),
        Some(text) => parse_timestamp(text)
            .map(Some)
            .ok_or_else(|| VendorError::BadRequest(format!("Validation failed: {name}: Invalid date-time format"))),
    }
}

fn add_time_ms(row: &Row) -> i64 {
    let field = if row.record.get("created").is_some() {
        "created"
    } else {
        "add_time"
    };
    row.record[field].as_str().and_then(parse_timestamp).unwrap_or(0)
}

/// Whether the v2 list of an entity supports `updated_since`/`updated_until`.
fn has_since_filter(entity: Entity) -> bool {
    matches!(entity, Entity::Deal | Entity::Person | Entity::Organization)
}

/// The `status` values of the v2 deal list.
const DEAL_STATUSES: [&str; 4] = ["open", "won", "lost", "deleted"];

/// How long `status=deleted` lists a deleted deal, as upstream: 30 days.
const DELETED_DEAL_RETENTION_MS: i64 = 30 * 86_400_000;

/// The `status` filter of `GET /v2/deals`: the statuses of not-deleted deals to keep, and
/// whether deals deleted within the retention are listed too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DealStatusFilter {
    live: Vec<&'static str>,
    deleted: bool,
}

/// Parses `status` (comma-separated `open`, `won`, `lost`, `deleted`); omitted means every
/// not-deleted deal, as upstream.
fn deal_status_filter(params: &Params) -> Result<DealStatusFilter, VendorError> {
    let Some(text) = params.get("status") else {
        return Ok(DealStatusFilter {
            live: DEAL_STATUSES[..3].to_vec(),
            deleted: false,
        });
    };
    let mut filter = DealStatusFilter {
        live: Vec::new(),
        deleted: false,
    };
    for part in text.split(',').map(str::trim) {
        match DEAL_STATUSES.iter().find(|status| **status == part) {
            Some(&"deleted") => filter.deleted = true,
            Some(status) => filter.live.push(status),
            None => {
                return Err(VendorError::BadRequest(format!(
                    "Validation failed: status: Value must be one of open, won, lost, deleted, got {part:?}"
                )))
            }
        }
    }
    Ok(filter)
}

/// The deals of the v2 list a lagging index sees at `cutoff_ms`, `status` applied: not-deleted
/// deals in the wanted statuses, then, with `deleted`, deals deleted (or merged away) within the
/// retention before `now_ms`, rendered with `status: "deleted"` and the delete as `update_time`.
fn deal_rows(store: &Store, filter: &DealStatusFilter, cutoff_ms: i64, now_ms: i64) -> Vec<Row> {
    let mut rows: Vec<Row> = store
        .rows_as_of(Entity::Deal, cutoff_ms)
        .into_iter()
        .filter(|row| {
            let status = row.record["status"].as_str().unwrap_or("open");
            filter.live.contains(&status)
        })
        .collect();
    if filter.deleted {
        rows.extend(
            store
                .deleted_as_of(Entity::Deal, cutoff_ms)
                .into_iter()
                .filter(|deleted| now_ms - deleted.deleted_ms <= DELETED_DEAL_RETENTION_MS)
                .map(|deleted| Row {
                    id: deleted.id,
                    record: render::v2_deleted_deal(&deleted.record, deleted.deleted_ms),
                    modified_ms: truncate_to_second(deleted.deleted_ms),
                }),
        );
        rows.sort_by_key(|row| row.id);
    }
    rows
}

/// Keeps rows whose `owner_id`, `person_id`, `org_id`, `pipeline_id`, `stage_id` (and, unless
/// `status` is handled elsewhere, `status`) equal the parameters, and whose id is in `ids`.
fn apply_equality_filters(rows: Vec<Row>, params: &Params, with_status: bool) -> Vec<Row> {
    let all_keys = ["owner_id", "person_id", "org_id", "pipeline_id", "stage_id", "status"];
    let keys = if with_status { &all_keys[..] } else { &all_keys[..5] };
    let ids: Option<Vec<String>> = params
        .get("ids")
        .map(|ids| ids.split(',').map(|id| id.trim().to_string()).collect());
    rows.into_iter()
        .filter(|row| {
            keys.iter().all(|key| match params.get(key) {
                None => true,
                Some(wanted) => {
                    let value = &row.record[*key];
                    value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string()) == wanted
                }
            })
        })
        .filter(|row| ids.as_ref().map(|ids| ids.contains(&row.id.to_string())).unwrap_or(true))
        .collect()
}

fn v2_list(shared: &Shared, entity: Entity, params: &Params) -> Response {
    let limit = match limit_param(params, 100) {
        Ok(limit) => limit,
        Err(response) => return error(response),
    };
    let sort_by = params.get("sort_by").unwrap_or("id");
    if !matches!(sort_by, "id" | "update_time" | "add_time") {
        return bad_request(format!(
            "Validation failed: sort_by: Value must be one of id, update_time, add_time, got {sort_by}"
        ));
    }
    let direction = match params.get("sort_direction").map(Direction::parse) {
        None => Direction::Asc,
        Some(Some(direction)) => direction,
        Some(None) => return bad_request("Validation failed: sort_direction: Value must be asc or desc".into()),
    };
    let cursor = match params.get("cursor") {
        None => None,
        Some(text) => match Cursor::decode(text) {
            Some(cursor) if cursor.field == sort_by && cursor.sort_direction == direction => Some(cursor),
            _ => return bad_request("Invalid cursor: it does not belong to this sort order".into()),
        },
    };
    let (since, until) = match (time_param(params, "updated_since"), time_param(params, "updated_until")) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(response), _) | (_, Err(response)) => return error(response),
    };
    let window = if has_since_filter(entity) {
        TimeWindow::pipedrive(since, until)
    } else {
        TimeWindow::default()
    };

    let deal_status = if entity == Entity::Deal {
        match deal_status_filter(params) {
            Ok(filter) => Some(filter),
            Err(response) => return error(response),
        }
    } else {
        None
    };

    let mut world = shared.world();
    if cursor.is_some() {
        shared.maybe_insert_while_paging(&mut world, entity);
    }
    // Since-filtered lists read the eventually consistent index; the others the current state.
    let cutoff = if window.is_bounded() {
        shared.lagged_cutoff(&world)
    } else {
        i64::MAX
    };
    let store = &world.ctx.store;
    let mut rows = match &deal_status {
        Some(filter) => deal_rows(store, filter, cutoff, world.ctx.now_ms()),
        None => store.rows_as_of(entity, cutoff),
    };
    // Upstream, a deleted person or organization stays in `updated_since` lists with
    // `is_deleted: true` and `update_time` at the delete; a merged-away one leaves them.
    if window.is_bounded() && soft_deletes(entity) {
        rows.extend(soft_deleted_rows(store, entity, cutoff).into_iter().map(|deleted| Row {
            id: deleted.id,
            record: render::v2_soft_deleted(&deleted.record, deleted.deleted_ms),
            modified_ms: truncate_to_second(deleted.deleted_ms),
        }));
    }
    let rows: Vec<Row> = rows.into_iter().filter(|row| window.contains(row.modified_ms)).collect();
    let rows = apply_equality_filters(rows, params, deal_status.is_none());
    let sorted = sort_keyed(
        rows,
        |row| match sort_by {
            "update_time" => row.modified_ms,
            "add_time" => add_time_ms(row),
            _ => row.id as i64,
        },
        direction,
    );
    let (page, more) = keyset_page(&sorted, cursor.as_ref(), limit);
    let next_cursor = match (more, page.last()) {
        (true, Some(last)) => json!(Cursor {
            field: sort_by.to_string(),
            field_value: last.key,
            sort_direction: direction,
            id: last.row.id,
        }
        .encode()),
        _ => Value::Null,
    };
    let data: Vec<Value> = page.into_iter().map(|keyed| keyed.row.record).collect();
    Json(json!({
        "success": true,
        "data": data,
        "additional_data": {"next_cursor": next_cursor},
    }))
    .into_response()
}

fn parse_id(id: &str, entity: Entity) -> Result<u64, VendorError> {
    id.parse::<u64>().map_err(|_| VendorError::NotFound(entity))
}

fn v2_detail(shared: &Shared, entity: Entity, id: &str) -> Response {
    let id = match parse_id(id, entity) {
        Ok(id) => id,
        Err(response) => return error(response),
    };
    let world = shared.world();
    match world.ctx.store.current(entity, id) {
        Some(record) => Json(json!({"success": true, "data": record})).into_response(),
        None if soft_deletes(entity) => match soft_deleted_rows(&world.ctx.store, entity, i64::MAX)
            .into_iter()
            .find(|deleted| deleted.id == id)
        {
            Some(deleted) => {
                let record = render::v2_soft_deleted(&deleted.record, deleted.deleted_ms);
                Json(json!({"success": true, "data": record})).into_response()
            }
            None => error(VendorError::NotFound(entity)),
        },
        None => error(VendorError::NotFound(entity)),
    }
}

/// Entities whose deleted records the v2 API keeps answering with `is_deleted: true`.
fn soft_deletes(entity: Entity) -> bool {
    matches!(entity, Entity::Person | Entity::Organization)
}

/// Records deleted (not merged away) as the index sees them at `cutoff_ms`.
fn soft_deleted_rows(store: &Store, entity: Entity, cutoff_ms: i64) -> Vec<crate::store::DeletedRow> {
    store
        .deleted_as_of(entity, cutoff_ms)
        .into_iter()
        .filter(|deleted| deleted.action == ChangeAction::Delete)
        .collect()
}

fn v1_sort(params: &Params) -> Result<(String, Direction), VendorError> {
    let Some(text) = params.get("sort") else {
        return Ok(("id".into(), Direction::Asc));
    };
    let mut parts = text.split_whitespace();
    let field = parts.next().unwrap_or("id").to_string();
    let direction = match parts.next().map(Direction::parse) {
        None => Direction::Asc,
        Some(Some(direction)) => direction,
        Some(None) => {
            return Err(VendorError::BadRequest(format!(
                "Invalid sort direction in {text:?}; use ASC or DESC"
            )))
        }
    };
    if !matches!(field.as_str(), "id" | "update_time" | "add_time") {
        return Err(VendorError::BadRequest(format!(
            "Sorting by {field} is not supported; use id, update_time or add_time"
        )));
    }
    Ok((field, direction))
}

fn v1_list(shared: &Shared, entity: Entity, params: &Params) -> Response {
    let limit = match limit_param(params, 100) {
        Ok(limit) => limit,
        Err(response) => return error(response),
    };
    let start = match params.usize("start") {
        Ok(start) => start.unwrap_or(0),
        Err(message) => return bad_request(message),
    };
    let (sort_field, direction) = match v1_sort(params) {
        Ok(sort) => sort,
        Err(response) => return error(response),
    };
    let mut world = shared.world();
    if start > 0 {
        shared.maybe_insert_while_paging(&mut world, entity);
    }
    let rows = apply_equality_filters(world.ctx.store.rows(entity), params, true);
    let sorted = sort_keyed(
        rows,
        |row| match sort_field.as_str() {
            "update_time" => row.modified_ms,
            "add_time" => add_time_ms(row),
            _ => row.id as i64,
        },
        direction,
    );
    let catalog = catalog(&world);
    let store = &world.ctx.store;
    // Users and pipelines come back whole, without pagination (as upstream).
    if matches!(entity, Entity::User | Entity::Pipeline) {
        let data: Vec<Value> = sorted
            .iter()
            .map(|keyed| render::v1_record(store, &catalog, entity, &keyed.row.record))
            .collect();
        return Json(json!({"success": true, "data": data})).into_response();
    }
    let (page, more) = offset_page(&sorted, start, limit);
    let stored: Vec<Value> = page.iter().map(|keyed| keyed.row.record.clone()).collect();
    let data: Vec<Value> = stored
        .iter()
        .map(|record| render::v1_record(store, &catalog, entity, record))
        .collect();
    let mut pagination = json!({"start": start, "limit": limit, "more_items_in_collection": more});
    if more {
        pagination["next_start"] = json!(start + page.len());
    }
    // An empty v1 page has `"data": null`, as upstream.
    let data = if data.is_empty() { Value::Null } else { Value::Array(data) };
    let mut body = json!({
        "success": true,
        "data": data,
        "additional_data": {"pagination": pagination},
    });
    if matches!(entity, Entity::Deal | Entity::Person | Entity::Organization) {
        body["related_objects"] = render::related_objects(store, entity, &stored);
    }
    Json(body).into_response()
}

fn v1_detail(shared: &Shared, entity: Entity, id: &str) -> Response {
    let id = match parse_id(id, entity) {
        Ok(id) => id,
        Err(response) => return error(response),
    };
    let world = shared.world();
    let catalog = catalog(&world);
    let store = &world.ctx.store;
    let Some(record) = store.current(entity, id) else {
        return error(VendorError::NotFound(entity));
    };
    let mut body = json!({"success": true, "data": render::v1_record(store, &catalog, entity, record)});
    if matches!(entity, Entity::Deal | Entity::Person | Entity::Organization) {
        body["related_objects"] = render::related_objects(store, entity, std::slice::from_ref(record));
    }
    Json(body).into_response()
}

fn fields(shared: &Shared, entity: Entity, params: &Params, version: u8) -> Response {
    let limit = match limit_param(params, 100) {
        Ok(limit) => limit,
        Err(response) => return error(response),
    };
    let world = shared.world();
    let catalog = catalog(&world);
    if version == 1 {
        let start = match params.usize("start") {
            Ok(start) => start.unwrap_or(0),
            Err(message) => return bad_request(message),
        };
        let all = render::v1_fields(&catalog, entity);
        let (page, more) = offset_page(&all, start, limit);
        let mut pagination = json!({"start": start, "limit": limit, "more_items_in_collection": more});
        if more {
            pagination["next_start"] = json!(start + page.len());
        }
        return Json(json!({"success": true, "data": page, "additional_data": {"pagination": pagination}})).into_response();
    }
    // v2 field lists page by cursor over the field position.
    let all = render::v2_fields(&catalog, entity);
    let start = match params.get("cursor") {
        None => 0,
        Some(text) => match Cursor::decode(text) {
            Some(cursor) if cursor.field == "position" => usize::try_from(cursor.field_value + 1).unwrap_or(0),
            _ => return bad_request("Invalid cursor".into()),
        },
    };
    let (page, more) = offset_page(&all, start, limit);
    let next_cursor = if more {
        let last = (start + page.len() - 1) as i64;
        json!(Cursor {
            field: "position".into(),
            field_value: last,
            sort_direction: Direction::Asc,
            id: last as u64,
        }
        .encode())
    } else {
        Value::Null
    };
    Json(json!({"success": true, "data": page, "additional_data": {"next_cursor": next_cursor}})).into_response()
}

/// `/v1/recents`: records changed since `since_timestamp` (inclusive), oldest first.
async fn recents(State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let params = Params(query);
    let Some(since_text) = params.get("since_timestamp") else {
        return bad_request("since_timestamp is required (format YYYY-MM-DD HH:MM:SS)".into());
    };
    let Some(since) = parse_timestamp(since_text) else {
        return bad_request("since_timestamp must look like YYYY-MM-DD HH:MM:SS".into());
    };
    let limit = match limit_param(&params, 100) {
        Ok(limit) => limit,
        Err(response) => return error(response),
    };
    let start = match params.usize("start") {
        Ok(start) => start.unwrap_or(0),
        Err(message) => return bad_request(message),
    };
    let wanted: Vec<Entity> = match params.get("items") {
        None => Connector::Pipedrive.entities().to_vec(),
        Some(items) => {
            let mut wanted = Vec::new();
            for item in items.split(',') {
                match Connector::Pipedrive.entity(item.trim()) {
                    Some(entity) => wanted.push(entity),
                    None => return bad_request(format!("Unknown item {item:?}")),
                }
            }
            wanted
        }
    };
    let world = shared.world();
    let cutoff = shared.lagged_cutoff(&world);
    let catalog = catalog(&world);
    let store = &world.ctx.store;
    let mut items: Vec<(i64, Entity, Row)> = wanted
        .iter()
        .flat_map(|entity| {
            store
                .rows_as_of(*entity, cutoff)
                .into_iter()
                .filter(|row| row.modified_ms >= since)
                .map(move |row| (row.modified_ms, *entity, row))
        })
        .collect();
    items.sort_by_key(|(modified, entity, row)| (*modified, entity.name(), row.id));
    let (page, more) = offset_page(&items, start, limit);
    let last_timestamp = page.last().map(|(modified, ..)| json!(format_pipedrive_v1(*modified)));
    let data: Vec<Value> = page
        .iter()
        .map(|(_, entity, row)| {
            let data = if *entity == Entity::User {
                row.record.clone()
            } else {
                render::v1_webhook_record(store, &catalog, *entity, &row.record)
            };
            json!({"item": entity.name(), "id": row.id, "data": data})
        })
        .collect();
    let mut pagination = json!({"start": start, "limit": limit, "more_items_in_collection": more});
    if more {
        pagination["next_start"] = json!(start + page.len());
    }
    Json(json!({
        "success": true,
        "data": data,
        "additional_data": {
            "since_timestamp": format_pipedrive_v1(since),
            "last_timestamp_on_page": last_timestamp.unwrap_or(Value::Null),
            "pagination": pagination,
        }
    }))
    .into_response()
}

/// `/v1/webhooks`: the simulator's one subscription (if a target is set).
async fn webhooks_list(State(shared): State<AppState>) -> Response {
    let target = shared.webhooks.target();
    let config = &shared.config;
    let (user, password) = match &config.webhooks.pipedrive_basic_auth {
        Some(auth) => (json!(auth.username), json!(auth.password)),
        None => (Value::Null, Value::Null),
    };
    let version = match config.webhooks.pipedrive_version {
        crate::config::PipedriveWebhookVersion::V1 => "1.0",
        crate::config::PipedriveWebhookVersion::V2 => "2.0",
    };
    let stats = shared.webhooks.stats();
    let data: Vec<Value> = target
        .into_iter()
        .map(|url| {
            json!({
                "id": 4_710_827,
                "company_id": 8_087_566,
                "owner_id": 10_001,
                "user_id": 10_001,
                "event_action": "*",
                "event_object": "*",
                "subscription_url": url,
                "version": version,
                "is_active": if stats.banned { 0 } else { 1 },
                "add_time": "2026-01-01T00:00:00.000Z",
                "remove_time": null,
                "type": "general",
                "http_auth_user": user,
                "http_auth_password": password,
                "remove_reason": null,
                "last_delivery_time": null,
                "last_http_status": null,
                "admin_id": 10_001,
                "name": "syncline simulator webhook",
            })
        })
        .collect();
    Json(json!({"status": "ok", "success": true, "data": data})).into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, Json(json!({"error": code, "error_description": description}))).into_response()
}

/// `POST /oauth/token`: `refresh_token` and `authorization_code` grants, client credentials in
/// HTTP Basic auth (or the form).
async fn oauth_token(State(shared): State<AppState>, headers: HeaderMap, body: String) -> Response {
    shared.count_call("POST /oauth/token", 0);
    let form = parse_urlencoded(&body);
    let (client_id, client_secret) = crate::server::client_credentials(&headers, &form);
    let auth = &shared.config.auth;
    if client_id.as_deref() != Some(auth.client_id.as_str()) || client_secret.as_deref() != Some(auth.client_secret.as_str()) {
        shared.world().tokens.note_invalid();
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client credentials");
    }
    let lifetime = shared.config.access_token_lifetime_secs();
    let rotate = auth.rotate_refresh_tokens;
    let mut world = shared.world();
    let now = world.ctx.now_ms();
    let World { tokens, token_rng, .. } = &mut *world;
    let issued = match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let refresh_token = form.get("refresh_token").map(String::as_str).unwrap_or_default();
            tokens.refresh(token_rng, refresh_token, now, lifetime, rotate)
        }
        Some("authorization_code") => {
            let code = form.get("code").map(String::as_str).unwrap_or_default();
            tokens.exchange_code(token_rng, code, now, lifetime)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be refresh_token or authorization_code",
            )
        }
    };
    match issued {
        Ok(issued) => Json(json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "scope": "base",
            "api_domain": shared.base_url,
        }))
        .into_response(),
        Err(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid grant: refresh token is not valid",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_published_scheme() {
        assert_eq!(cost("GET /api/v2/deals"), 10);
        assert_eq!(cost("GET /api/v2/deals/{id}"), 1);
        assert_eq!(cost("GET /api/v1/users"), 20);
        assert_eq!(cost("GET /api/v1/users/{id}"), 2);
        assert_eq!(cost("POST /oauth/token"), 0);
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn deal_status_parses_comma_separated_values_and_rejects_unknown_ones() {
        let all = deal_status_filter(&params(&[])).expect("omitted");
        assert_eq!((all.live, all.deleted), (vec!["open", "won", "lost"], false));
        let some = deal_status_filter(&params(&[("status", "won, deleted")])).expect("two");
        assert_eq!((some.live, some.deleted), (vec!["won"], true));
        for bad in ["all_not_deleted", "open,", "Deleted"] {
            assert!(
                matches!(deal_status_filter(&params(&[("status", bad)])), Err(VendorError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn deleted_deals_are_listed_within_the_retention_and_the_cutoff() {
        use crate::store::ChangeAction;
        let mut store = Store::new(Connector::Pipedrive, |_| 1);
        let day = 86_400_000;
        store.put(Entity::Deal, 1, json!({"id": 1, "status": "open"}), 0, 0, ChangeAction::Create);
        store.put(Entity::Deal, 2, json!({"id": 2, "status": "won"}), 0, 0, ChangeAction::Create);
        store.put(Entity::Deal, 3, json!({"id": 3, "status": "lost"}), 0, 0, ChangeAction::Create);
        store.delete(Entity::Deal, 1, 2 * day + 1_500, ChangeAction::Delete);
        store.delete(Entity::Deal, 3, 40 * day, ChangeAction::Merge);
        let filter = DealStatusFilter {
            live: vec![],
            deleted: true,
        };
        let now = 40 * day;
        let rows = deal_rows(&store, &filter, i64::MAX, now);
        assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), vec![3], "deal 1 is past 30 days");
        assert_eq!(rows[0].record["status"], json!("deleted"));
        assert_eq!(rows[0].modified_ms, 40 * day);
        let now = 31 * day;
        let rows = deal_rows(&store, &filter, 31 * day, now);
        assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), vec![1]);
        assert_eq!(rows[0].modified_ms, 2 * day + 1_000, "whole seconds");
        assert_eq!(rows[0].record["is_deleted"], json!(true));
        let both = DealStatusFilter {
            live: vec!["won"],
            deleted: true,
        };
        let rows = deal_rows(&store, &both, 31 * day, now);
        assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), vec![1, 2]);
    }
}
