//! Zoho Desk HTTP API: lists with `from`/`limit` (0-based `from`; an empty list is `204 No
//! Content`, as upstream; ticket and contact rows partial), `/tickets/search` and
//! `/contacts/search` with `modifiedTimeRange` and `sortBy`, detail GETs, per-ticket threads and
//! comments, and the Zoho Accounts token endpoint. Credits are charged by the gate
//! ([`super::credits`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::clock::parse_timestamp;
use crate::entity::{Connector, Entity};
use crate::http::{parse_urlencoded, vendor_error, Params, VendorError};
use crate::paging::{offset_page, sort_keyed, Direction, TimeWindow};
use crate::server::Shared;
use crate::store::{Row, Store};
use crate::world::World;

type AppState = Arc<Shared>;

fn error(error: VendorError) -> Response {
    vendor_error(Connector::ZohoDesk, error)
}

/// The data routes (all behind the auth/fault gate).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", list_route(Entity::Ticket))
        .route(
            "/api/v1/tickets/search",
            get(
                |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move {
                    search(&shared, Entity::Ticket, &Params(query))
                },
            ),
        )
        .route("/api/v1/tickets/{id}", detail_route(Entity::Ticket))
        .route(
            "/api/v1/tickets/{id}/threads",
            get(
                |s: State<AppState>, p: Path<String>, q: Query<HashMap<String, String>>| async move {
                    children(&s.0, Entity::Thread, &p.0, &Params(q.0))
                },
            ),
        )
        .route(
            "/api/v1/tickets/{id}/threads/{child}",
            get(|s: State<AppState>, p: Path<(String, String)>| async move { child(&s.0, Entity::Thread, &p.0 .0, &p.0 .1) }),
        )
        .route(
            "/api/v1/tickets/{id}/comments",
            get(
                |s: State<AppState>, p: Path<String>, q: Query<HashMap<String, String>>| async move {
                    children(&s.0, Entity::Comment, &p.0, &Params(q.0))
                },
            ),
        )
        .route(
            "/api/v1/tickets/{id}/comments/{child}",
            get(|s: State<AppState>, p: Path<(String, String)>| async move { child(&s.0, Entity::Comment, &p.0 .0, &p.0 .1) }),
        )
        .route("/api/v1/contacts", list_route(Entity::Contact))
        .route(
            "/api/v1/contacts/search",
            get(
                |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move {
                    search(&shared, Entity::Contact, &Params(query))
                },
            ),
        )
        .route("/api/v1/contacts/{id}", detail_route(Entity::Contact))
        .route("/api/v1/agents", list_route(Entity::Agent))
        .route("/api/v1/agents/{id}", detail_route(Entity::Agent))
        .route("/api/v1/departments", list_route(Entity::Department))
        .route("/api/v1/departments/{id}", detail_route(Entity::Department))
}

/// The Zoho Accounts token route (no API auth).
pub fn auth_routes() -> Router<AppState> {
    Router::new().route("/oauth/v2/token", post(token))
}

fn list_route(entity: Entity) -> MethodRouter<AppState> {
    get(
        move |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move { list(&shared, entity, &Params(query)) },
    )
}

fn detail_route(entity: Entity) -> MethodRouter<AppState> {
    get(
        move |State(shared): State<AppState>, Path(id): Path<String>, Query(query): Query<HashMap<String, String>>| async move {
            detail(&shared, entity, &id, &Params(query))
        },
    )
}

/// The fields of a `GET /tickets` row, as the vendor's list fixture shows them (the `include`
/// objects `contact`, `assignee`, `department`, `team` and `isRead` come on request): no
/// `modifiedTime`, no `description`, no `cf`. A row is not the record; the detail GET is.
pub const TICKET_LIST_FIELDS: &[&str] = &[
    "assigneeId",
    "category",
    "channel",
    "channelCode",
    "closedTime",
    "commentCount",
    "contactId",
    "createdTime",
    "customerResponseTime",
    "departmentId",
    "dueDate",
    "email",
    "id",
    "isSpam",
    "onholdTime",
    "phone",
    "priority",
    "productId",
    "responseDueDate",
    "sharedCount",
    "source",
    "status",
    "statusType",
    "subCategory",
    "subject",
    "teamId",
    "threadCount",
    "ticketNumber",
    "webUrl",
];

/// The fields of a `GET /contacts` row: the contact's identity and links, as Zoho's "List
/// contacts" example shows them; no `modifiedTime`, no address (`city`, `country`), no
/// `description`, no `accountName`. A row is not the record; the detail GET is.
pub const CONTACT_LIST_FIELDS: &[&str] = &[
    "accountId",
    "createdTime",
    "email",
    "firstName",
    "id",
    "isSpam",
    "lastName",
    "mobile",
    "ownerId",
    "phone",
    "type",
    "webUrl",
];

/// A ticket or contact as a list row (`GET /tickets`, `GET /contacts`) or, with `modifiedTime`
/// kept, a search row (the search endpoints sort by it; that their rows carry it is not
/// confirmed). Other entities' rows are whole records.
fn list_row(entity: Entity, record: &Value, keep_modified: bool) -> Value {
    let fields = match entity {
        Entity::Ticket => TICKET_LIST_FIELDS,
        Entity::Contact => CONTACT_LIST_FIELDS,
        _ => return record.clone(),
    };
    let Value::Object(map) = record else { return record.clone() };
    Value::Object(
        map.iter()
            .filter(|(key, _)| fields.contains(&key.as_str()) || (keep_modified && key.as_str() == "modifiedTime"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

/// The `sortBy` values `GET /tickets` accepts (each also with a `-` prefix).
pub const TICKET_SORT_FIELDS: &[&str] = &["createdTime", "responseDueDate", "customerResponseTime"];

/// The largest `from` Zoho Desk's search endpoints accept (0 to 4999).
pub const SEARCH_MAX_FROM: usize = 4_999;

fn paging(params: &Params, default_limit: usize, max_limit: usize) -> Result<(usize, usize), VendorError> {
    let from = params.usize("from").map_err(VendorError::BadRequest)?.unwrap_or(0);
    let limit = params.usize("limit").map_err(VendorError::BadRequest)?.unwrap_or(default_limit);
    if limit == 0 || limit > max_limit {
        return Err(VendorError::BadRequest(format!(
            "The value of limit must be between 1 and {max_limit}."
        )));
    }
    Ok((from, limit))
}

fn time_of(row: &Row, field: &str) -> i64 {
    row.record[field].as_str().and_then(parse_timestamp).unwrap_or(0)
}

/// `sortBy` with an optional `-` prefix for descending.
fn sort_param(params: &Params, allowed: &[&str], default: &str) -> Result<(String, Direction), VendorError> {
    let text = params.get("sortBy").unwrap_or(default);
    let (field, direction) = match text.strip_prefix('-') {
        Some(field) => (field, Direction::Desc),
        None => (text, Direction::Asc),
    };
    if !allowed.contains(&field) {
        return Err(VendorError::BadRequest(format!(
            "The value of sortBy must be one of {}.",
            allowed.join(", ")
        )));
    }
    Ok((field.to_string(), direction))
}

fn sort_rows(rows: Vec<Row>, field: &str, direction: Direction) -> Vec<Row> {
    let key = |row: &Row| match field {
        "ticketNumber" => row.record["ticketNumber"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
        "id" => row.id as i64,
        other => time_of(row, other),
    };
    sort_keyed(rows, key, direction).into_iter().map(|keyed| keyed.row).collect()
}

/// Adds the objects `include=contacts,assignee,departments,team,isRead` asks for.
fn with_includes(store: &Store, record: &Value, include: &[&str]) -> Value {
    let mut record = record.clone();
    let lookup = |entity: Entity, key: &str| {
        record[key]
            .as_str()
            .and_then(|id| id.parse().ok())
            .and_then(|id| store.current(entity, id))
            .cloned()
    };
    let contact = lookup(Entity::Contact, "contactId");
    let assignee = lookup(Entity::Agent, "assigneeId");
    let department = lookup(Entity::Department, "departmentId");
    for item in include {
        match *item {
            "contacts" => {
                record["contact"] = contact
                    .as_ref()
                    .map(|contact| {
                        json!({
                            "firstName": contact["firstName"],
                            "lastName": contact["lastName"],
                            "phone": contact["phone"],
                            "mobile": contact["mobile"],
                            "id": contact["id"],
                            "type": contact["type"],
                            "email": contact["email"],
                            "account": {"website": null, "accountName": contact["accountName"], "id": contact["accountId"]},
                        })
                    })
                    .unwrap_or(Value::Null)
            }
            "assignee" => {
                record["assignee"] = assignee
                    .as_ref()
                    .map(|agent| {
                        json!({
                            "firstName": agent["firstName"],
                            "lastName": agent["lastName"],
                            "photoURL": agent["photoURL"],
                            "id": agent["id"],
                            "email": agent["emailId"],
                        })
                    })
                    .unwrap_or(Value::Null)
            }
            "departments" => {
                record["department"] = department
                    .as_ref()
                    .map(|department| json!({"name": department["name"], "id": department["id"]}))
                    .unwrap_or(Value::Null)
            }
            "team" => record["team"] = Value::Null,
            "isRead" => record["isRead"] = json!(record["threadCount"] != json!("0")),
            _ => {}
        }
    }
    record
}

fn includes(params: &Params) -> Vec<&str> {
    params
        .get("include")
        .map(|text| text.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// A Zoho list page: `{"data": [...]}`, or `204 No Content` when empty.
fn page_response(data: Vec<Value>, count: Option<usize>) -> Response {
    if data.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut body = json!({"data": data});
    if let Some(count) = count {
        body["count"] = json!(count);
    }
    Json(body).into_response()
}

fn list(shared: &Shared, entity: Entity, params: &Params) -> Response {
    let max = if matches!(entity, Entity::Agent | Entity::Department) {
        200
    } else {
        100
    };
    let (from, limit) = match paging(params, if entity == Entity::Ticket { 10 } else { 50 }, max) {
        Ok(paging) => paging,
        Err(response) => return error(response),
    };
    let (allowed, default): (&[&str], &str) = match entity {
        // Zoho: `GET /tickets` sorts only by these (no modified time); anything else is a 400.
        Entity::Ticket => (TICKET_SORT_FIELDS, "createdTime"),
        Entity::Contact => (&["createdTime", "modifiedTime", "id"], "id"),
        _ => (&["id"], "id"),
    };
    let (field, direction) = match sort_param(params, allowed, default) {
        Ok(sort) => sort,
        Err(response) => return error(response),
    };
    let mut world = shared.world();
    if from > 0 {
        shared.maybe_insert_while_paging(&mut world, entity);
    }
    let rows = filter_rows(world.ctx.store.rows(entity), params);
    let rows = sort_rows(rows, &field, direction);
    let (page, _) = offset_page(&rows, from, limit);
    let include = includes(params);
    let data = page
        .iter()
        .map(|row| list_row(entity, &row.record, false))
        .map(|record| with_includes(&world.ctx.store, &record, &include))
        .collect();
    page_response(data, None)
}

fn filter_rows(rows: Vec<Row>, params: &Params) -> Vec<Row> {
    let filters = ["departmentId", "status", "assigneeId", "contactId", "priority"];
    rows.into_iter()
        .filter(|row| {
            filters.iter().all(|key| match params.get(key) {
                None => true,
                Some(wanted) => wanted.split(',').any(|value| row.record[*key].as_str() == Some(value.trim())),
            })
        })
        .collect()
}

fn range_param(params: &Params, name: &str) -> Result<Option<(i64, i64)>, VendorError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    let parsed = text
        .split_once(',')
        .and_then(|(from, to)| Some((parse_timestamp(from)?, parse_timestamp(to)?)));
    match parsed {
        Some(range) => Ok(Some(range)),
        None => Err(VendorError::BadRequest(format!(
            "The value of {name} must be two ISO timestamps separated by a comma, e.g. 2026-01-01T00:00:00.000Z,2026-01-02T00:00:00.000Z."
        ))),
    }
}

/// `/tickets/search` and `/contacts/search`: `modifiedTimeRange` / `createdTimeRange` (both
/// ends inclusive), `sortBy` `modifiedTime`/`createdTime`/`relevance` (`-` for descending),
/// `from`/`limit` (max 100), `{"data": [...], "count": N}`, rows as partial as list rows (plus
/// `modifiedTime`). As upstream, `from` only reaches [`SEARCH_MAX_FROM`]: the matches past it
/// cannot be paged to, so a client must narrow the time range.
fn search(shared: &Shared, entity: Entity, params: &Params) -> Response {
    let (from, limit) = match paging(params, 10, 100) {
        Ok(paging) => paging,
        Err(response) => return error(response),
    };
    if from > SEARCH_MAX_FROM {
        return error(VendorError::BadRequest(format!(
            "The value of from must be between 0 and {SEARCH_MAX_FROM}."
        )));
    }
    let (field, direction) = match sort_param(params, &["modifiedTime", "createdTime", "relevance"], "relevance") {
        Ok(sort) => sort,
        Err(response) => return error(response),
    };
    let (modified, created) = match (range_param(params, "modifiedTimeRange"), range_param(params, "createdTimeRange")) {
        (Ok(modified), Ok(created)) => (modified, created),
        (Err(response), _) | (_, Err(response)) => return error(response),
    };
    let mut world = shared.world();
    if from > 0 {
        shared.maybe_insert_while_paging(&mut world, entity);
    }
    // Search reads the eventually consistent index.
    let cutoff = shared.lagged_cutoff(&world);
    let modified_window = modified.map(|(since, until)| TimeWindow::zoho(Some(since), Some(until)));
    let created_window = created.map(|(since, until)| TimeWindow::zoho(Some(since), Some(until)));
    let rows: Vec<Row> = world
        .ctx
        .store
        .rows_as_of(entity, cutoff)
        .into_iter()
        .filter(|row| {
            modified_window
                .map(|window| window.contains(time_of(row, "modifiedTime")))
                .unwrap_or(true)
        })
        .filter(|row| {
            created_window
                .map(|window| window.contains(time_of(row, "createdTime")))
                .unwrap_or(true)
        })
        .collect();
    let rows = filter_rows(rows, params);
    let rows = if field == "relevance" {
        sort_rows(rows, "id", direction)
    } else {
        sort_rows(rows, &field, direction)
    };
    let count = rows.len();
    let (page, _) = offset_page(&rows, from, limit);
    let include = includes(params);
    let data = page
        .iter()
        .map(|row| with_includes(&world.ctx.store, &list_row(entity, &row.record, true), &include))
        .collect();
    page_response(data, Some(count))
}

fn parse_id(text: &str, entity: Entity) -> Result<u64, VendorError> {
    text.parse().map_err(|_| VendorError::NotFound(entity))
}

fn detail(shared: &Shared, entity: Entity, id: &str, params: &Params) -> Response {
    let id = match parse_id(id, entity) {
        Ok(id) => id,
        Err(response) => return error(response),
    };
    let world = shared.world();
    match world.ctx.store.current(entity, id) {
        Some(record) => Json(with_includes(&world.ctx.store, record, &includes(params))).into_response(),
        None => error(VendorError::NotFound(entity)),
    }
}

fn children_of(world: &World, entity: Entity, ticket_id: &str) -> Vec<Row> {
    world
        .ctx
        .store
        .rows(entity)
        .into_iter()
        .filter(|row| row.record["ticketId"].as_str() == Some(ticket_id))
        .collect()
}

fn children(shared: &Shared, entity: Entity, ticket_id: &str, params: &Params) -> Response {
    let (from, limit) = match paging(params, 50, 200) {
        Ok(paging) => paging,
        Err(response) => return error(response),
    };
    let world = shared.world();
    let Some(ticket) = ticket_id.parse().ok().and_then(|id| world.ctx.store.current(Entity::Ticket, id)) else {
        return error(VendorError::NotFound(Entity::Ticket));
    };
    let time_field = if entity == Entity::Thread { "createdTime" } else { "commentedTime" };
    // Zoho lists threads and comments newest first unless told otherwise.
    let direction = match params.get("sortBy") {
        Some(text) if !text.starts_with('-') => Direction::Asc,
        _ => Direction::Desc,
    };
    let rows = sort_rows(children_of(&world, entity, ticket_id), time_field, direction);
    let (page, _) = offset_page(&rows, from, limit);
    let _ = ticket;
    page_response(page.into_iter().map(|row| row.record).collect(), None)
}

fn child(shared: &Shared, entity: Entity, ticket_id: &str, child_id: &str) -> Response {
    let world = shared.world();
    let found = child_id
        .parse()
        .ok()
        .and_then(|id| world.ctx.store.current(entity, id))
        .filter(|record| record["ticketId"].as_str() == Some(ticket_id));
    match found {
        Some(record) => Json(record.clone()).into_response(),
        None => error(VendorError::NotFound(entity)),
    }
}

/// `POST /oauth/v2/token`: parameters in the query string (as Zoho documents) or the form.
/// Errors come back as `200 {"error": "invalid_code"}` / `{"error": "invalid_client"}`, as Zoho
/// Accounts answers them.
async fn token(State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>, body: String) -> Response {
    shared.count_call("POST /oauth/v2/token", 0);
    let mut params = parse_urlencoded(&body);
    params.extend(query);
    let auth = &shared.config.auth;
    if params.get("client_id") != Some(&auth.client_id) || params.get("client_secret") != Some(&auth.client_secret) {
        shared.world().tokens.note_invalid();
        return Json(json!({"error": "invalid_client"})).into_response();
    }
    let lifetime = shared.config.access_token_lifetime_secs();
    let rotate = auth.rotate_refresh_tokens;
    let mut world = shared.world();
    let now = world.ctx.now_ms();
    let World { tokens, token_rng, .. } = &mut *world;
    let (issued, include_refresh) = match params.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let refresh = params.get("refresh_token").map(String::as_str).unwrap_or_default();
            (tokens.refresh(token_rng, refresh, now, lifetime, rotate), rotate)
        }
        Some("authorization_code") => {
            let code = params.get("code").map(String::as_str).unwrap_or_default();
            (tokens.exchange_code(token_rng, code, now, lifetime), true)
        }
        _ => return Json(json!({"error": "unsupported_grant_type"})).into_response(),
    };
    match issued {
        Ok(issued) => {
            let mut body = json!({
                "access_token": issued.access_token,
                "expires_in": issued.expires_in,
                "api_domain": "https://www.zohoapis.com",
                "token_type": "Bearer",
            });
            if include_refresh {
                body["refresh_token"] = json!(issued.refresh_token);
            }
            Json(body).into_response()
        }
        Err(_) => Json(json!({"error": "invalid_code"})).into_response(),
    }
}
