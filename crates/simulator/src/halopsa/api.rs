//! HaloPSA HTTP API: `/api/Tickets`, `/api/Invoice`, `/api/Quotation`, `/api/Client` with
//! `pageinate`/`page_size`/`page_no` (1-based), `count`, `order`/`orderdesc`, detail GETs,
//! `/api/Attachment/{id}`, and the client-credentials token endpoint `/auth/token`.
//!
//! Since-filters, exactly as the vendor documents them (both ends inclusive, read from the
//! eventually consistent index):
//! - `/Tickets`: `lastupdatefromdate` / `lastupdatetodate` over `last_update`, and `datesearch`
//!   (`dateoccurred`, `datecreated`, `lastactiondate`, `last_update`, `dateclosed`) with
//!   `startdate` / `enddate`;
//! - `/Invoice`: `datesearch=last_modified` with `start_date`;
//! - `/Client`: `lastupdatefromdate` / `lastupdatetodate` over `alastupdate`, unless the tenant
//!   is configured to ignore it (`halopsa_client_filter_ignored`);
//! - `/Quotation`: none.
//!
//! List rows are partial ([`super::list_row`]): `includelines=true` adds invoice and quotation
//! lines, `includenotes=true` client notes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{envelope_key, list_row, Include};
use crate::clock::parse_timestamp;
use crate::entity::{Connector, Entity};
use crate::http::{parse_urlencoded, vendor_error, Params, VendorError};
use crate::paging::{numbered_page, sort_keyed, Direction, TimeWindow};
use crate::server::Shared;
use crate::store::Row;
use crate::world::World;

type AppState = Arc<Shared>;

const DATESEARCH_FIELDS: &[&str] = &["dateoccurred", "datecreated", "lastactiondate", "last_update", "dateclosed"];

fn error(error: VendorError) -> Response {
    vendor_error(Connector::Halopsa, error)
}

fn bad_request(message: String) -> Response {
    error(VendorError::BadRequest(message))
}

/// The data routes (all behind the auth/fault gate).
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (path, entity) in [
        ("Tickets", Entity::Ticket),
        ("Invoice", Entity::Invoice),
        ("Quotation", Entity::Quotation),
        ("Client", Entity::Client),
    ] {
        router = router
            .route(&format!("/api/{path}"), list_route(entity))
            .route(&format!("/api/{path}/{{id}}"), detail_route(entity));
    }
    router.route("/api/Attachment/{id}", get(attachment))
}

/// The token route (no API auth).
pub fn auth_routes() -> Router<AppState> {
    Router::new().route("/auth/token", post(token))
}

fn list_route(entity: Entity) -> MethodRouter<AppState> {
    get(
        move |State(shared): State<AppState>, Query(query): Query<HashMap<String, String>>| async move { list(&shared, entity, &Params(query)) },
    )
}

fn detail_route(entity: Entity) -> MethodRouter<AppState> {
    get(move |State(shared): State<AppState>, Path(id): Path<String>| async move { detail(&shared, entity, &id) })
}

fn time_of(row: &Row, field: &str) -> i64 {
    row.record[field].as_str().and_then(parse_timestamp).unwrap_or(i64::MIN)
}

fn list(shared: &Shared, entity: Entity, params: &Params) -> Response {
    let paginate = params.bool("pageinate").unwrap_or(false);
    let page_size = match params.usize("page_size") {
        Ok(size) => size.unwrap_or(50),
        Err(message) => return bad_request(message),
    };
    let page_no = match params.usize("page_no") {
        Ok(page) => page.unwrap_or(1),
        Err(message) => return bad_request(message),
    };
    let count = match params.usize("count") {
        Ok(count) => count,
        Err(message) => return bad_request(message),
    };
    if paginate && page_size == 0 {
        return bad_request("page_size must be at least 1".into());
    }
    let order = params.get("order").unwrap_or("id").to_ascii_lowercase();
    let direction = if params.bool("orderdesc").unwrap_or(false) {
        Direction::Desc
    } else {
        Direction::Asc
    };
    let windows = match since_windows(shared, entity, params) {
        Ok(windows) => windows,
        Err(vendor_error) => return error(vendor_error),
    };
    let include = Include {
        lines: params.bool("includelines").unwrap_or(false),
        notes: params.bool("includenotes").unwrap_or(false),
    };
    let mut world = shared.world();
    if paginate && page_no > 1 {
        shared.maybe_insert_while_paging(&mut world, entity);
    }
    let rows: Vec<Row> = if windows.iter().any(|(_, window)| window.is_bounded()) {
        let cutoff = shared.lagged_cutoff(&world);
        world
            .ctx
            .store
            .rows_as_of(entity, cutoff)
            .into_iter()
            .filter(|row| windows.iter().all(|(field, window)| window.contains(time_of(row, field))))
            .collect()
    } else {
        world.ctx.store.rows(entity)
    };
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|row| match params.get("client_id") {
            Some(client) => row.record["client_id"].as_u64().map(|id| id.to_string()).as_deref() == Some(client),
            None => true,
        })
        .filter(|row| !(params.bool("open_only").unwrap_or(false) && super::is_terminal(entity, &row.record)))
        .collect();
    let sorted: Vec<Value> = sort_keyed(
        rows,
        |row| {
            if order == "id" {
                row.id as i64
            } else {
                time_of(row, &order)
            }
        },
        direction,
    )
    .into_iter()
    .map(|keyed| list_row(entity, &keyed.row.record, include))
    .collect();
    let record_count = sorted.len();
    let key = envelope_key(entity);
    if paginate {
        let page = numbered_page(&sorted, page_no, page_size);
        let mut body = json!({"page_no": page_no.max(1), "page_size": page_size, "record_count": record_count});
        body[key] = Value::Array(page);
        return Json(body).into_response();
    }
    let records: Vec<Value> = match count {
        Some(count) => sorted.into_iter().take(count).collect(),
        None => sorted,
    };
    let mut body = json!({"record_count": record_count});
    body[key] = Value::Array(records);
    Json(body).into_response()
}

/// A date parameter, `None` when absent.
fn date_param(params: &Params, name: &str) -> Result<Option<i64>, VendorError> {
    match params.get(name) {
        None => Ok(None),
        Some(text) => parse_timestamp(text)
            .map(Some)
            .ok_or_else(|| VendorError::BadRequest(format!("{name} is not a date: {text:?}"))),
    }
}

/// The since-filters of one list request: `(field, window)` pairs a row must all fall in.
fn since_windows(shared: &Shared, entity: Entity, params: &Params) -> Result<Vec<(&'static str, TimeWindow)>, VendorError> {
    let mut windows = Vec::new();
    let last_update = |field: &'static str| -> Result<(&'static str, TimeWindow), VendorError> {
        Ok((
            field,
            TimeWindow::halo(date_param(params, "lastupdatefromdate")?, date_param(params, "lastupdatetodate")?),
        ))
    };
    match entity {
        Entity::Ticket => {
            windows.push(last_update("last_update")?);
            match params.get("datesearch") {
                None => {}
                Some(field) => {
                    let Some(field) = DATESEARCH_FIELDS.iter().find(|known| **known == field) else {
                        return Err(VendorError::BadRequest(format!(
                            "datesearch {field:?} is not supported; use one of {}",
                            DATESEARCH_FIELDS.join(", ")
                        )));
                    };
                    windows.push((
                        *field,
                        TimeWindow::halo(date_param(params, "startdate")?, date_param(params, "enddate")?),
                    ));
                }
            }
        }
        Entity::Invoice => match params.get("datesearch") {
            None => {}
            Some("last_modified") => windows.push(("last_modified", TimeWindow::halo(date_param(params, "start_date")?, None))),
            Some(other) => {
                return Err(VendorError::BadRequest(format!(
                    "datesearch {other:?} is not supported on /Invoice; use last_modified with start_date"
                )))
            }
        },
        Entity::Client if !shared.config.halopsa_client_filter_ignored => windows.push(last_update("alastupdate")?),
        // Quotations have no since-filter; a tenant ignoring the client filter lists every client.
        _ => {}
    }
    Ok(windows)
}

fn detail(shared: &Shared, entity: Entity, id: &str) -> Response {
    let world = shared.world();
    match id.parse().ok().and_then(|id| world.ctx.store.current(entity, id)) {
        Some(record) => Json(record.clone()).into_response(),
        None => error(VendorError::NotFound(entity)),
    }
}

fn find_attachment(world: &World, id: u64) -> Option<(Value, Value)> {
    world.ctx.store.rows(Entity::Ticket).into_iter().find_map(|row| {
        row.record["attachments"]
            .as_array()?
            .iter()
            .find(|attachment| attachment["id"] == json!(id))
            .map(|attachment| (attachment.clone(), row.record["datecreated"].clone()))
    })
}

/// `GET /api/Attachment/{id}`: the attachment of a live ticket.
async fn attachment(State(shared): State<AppState>, Path(id): Path<String>) -> Response {
    let world = shared.world();
    let Some((attachment, created)) = id.parse().ok().and_then(|id| find_attachment(&world, id)) else {
        return (StatusCode::NOT_FOUND, Json(json!("Attachment not found"))).into_response();
    };
    Json(json!({
        "third_party_id": "",
        "content_type": "image/png",
        "id": attachment["id"],
        "filename": attachment["filename"],
        "datecreated": created,
        "note": "",
        "filesize": 84_061,
        "type": 0,
        "unique_id": 0,
        "desc": attachment["filename"],
        "isimage": attachment["isimage"],
        "data": "iVBORw0KGgo=",
    }))
    .into_response()
}

/// `POST /auth/token` (form): `grant_type=client_credentials`, `client_id`, `client_secret`,
/// `scope`. Wrong credentials get `400 {"error": "invalid_client"}`.
async fn token(State(shared): State<AppState>, body: String) -> Response {
    shared.count_call("POST /auth/token", 0);
    let form = parse_urlencoded(&body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    let auth = &shared.config.auth;
    if form.get("client_id") != Some(&auth.client_id) || form.get("client_secret") != Some(&auth.client_secret) {
        shared.world().tokens.note_invalid();
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let lifetime = shared.config.access_token_lifetime_secs();
    let mut world = shared.world();
    let now = world.ctx.now_ms();
    let World { tokens, token_rng, .. } = &mut *world;
    let access_token = tokens.issue_access(token_rng, now, lifetime);
    Json(json!({
        "scope": form.get("scope").cloned().unwrap_or_else(|| "all".into()),
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": lifetime,
    }))
    .into_response()
}
