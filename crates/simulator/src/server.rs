//! The running simulator: HTTP server, auth/fault gate, `/_sim/` controls, background change
//! generator, and the handle tests and the CLI drive it with.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{TokenRejection, TokenStats};
use crate::clock::format_rfc3339_millis;
use crate::config::{check_loopback_url, SimulatorConfig};
use crate::entity::{Connector, Entity};
use crate::error::SimulatorError;
use crate::http::{header_text, parse_urlencoded, parse_urlencoded_pairs, vendor_error, VendorError};
use crate::requests::{RequestLog, RequestLogEntry, RequestLogView};
use crate::store::{ChangeAction, History};
use crate::webhooks::{self, WebhookEngine, WebhookLogEntry, WebhookStats};
use crate::world::{ChangeError, ChangeEvent, ChangeRequest, ChangeStats, World};
use crate::{halopsa, pipedrive, zoho_desk};

/// Calls and cost of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointStats {
    /// Requests received.
    pub calls: u64,
    /// Cost of the successful ones (Pipedrive tokens, Zoho Desk credits; 1 per call for HaloPSA).
    pub cost: u64,
    /// Requests answered with an error status.
    pub errors: u64,
}

/// API counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApiStats {
    /// Requests received (data and token endpoints).
    pub calls: u64,
    /// Total cost of successful requests.
    pub cost: u64,
    /// Per endpoint, keyed `METHOD /path/{param}`.
    pub endpoints: BTreeMap<String, EndpointStats>,
    /// 429s injected.
    pub rate_limited: u64,
    /// 5xx injected.
    pub server_errors: u64,
    /// Slow responses injected.
    pub slow: u64,
    /// Requests refused during an outage.
    pub outage_rejections: u64,
    /// Requests refused for credentials.
    pub unauthorized: u64,
    /// Records inserted while a client paged.
    pub inserted_while_paging: u64,
    /// Records deleted by the delete-while-paging fault.
    pub deleted_while_paging: u64,
    /// Records updated by the update-while-paging fault.
    pub updated_while_paging: u64,
}

/// Everything `stats()` and `/_sim/stats` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatorStats {
    /// Simulated connector.
    pub connector: Connector,
    /// Virtual time now (RFC 3339).
    pub now: String,
    /// Whether an outage is on.
    pub outage: bool,
    /// Changes made.
    pub changes: ChangeStats,
    /// Webhooks.
    pub webhooks: WebhookStats,
    /// API calls and cost.
    pub api: ApiStats,
    /// Tokens.
    pub tokens: TokenStats,
}

/// Credentials a client needs to talk to the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    /// Simulated connector.
    pub connector: Connector,
    /// Base URL of the simulator (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// Root of the vendor API (Pipedrive `/api`, Zoho Desk `/api/v1`, HaloPSA `/api`).
    pub api_base_url: String,
    /// OAuth token endpoint.
    pub token_url: String,
    /// Pipedrive API token (`api_token` query parameter or `x-api-token` header).
    pub api_token: Option<String>,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Pipedrive and Zoho: the initial refresh token.
    pub refresh_token: Option<String>,
    /// Pipedrive and Zoho: a single-use authorization code.
    pub authorization_code: Option<String>,
    /// An access token issued at start (valid for the configured lifetime of virtual time).
    pub access_token: String,
    /// Zoho Desk `orgId` header value.
    pub org_id: Option<String>,
}

/// Every version of one record (ground truth).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordVersions {
    /// Record id.
    pub id: u64,
    /// Versions, oldest first.
    pub versions: Vec<VersionView>,
}

/// One version in ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionView {
    /// Global change sequence.
    pub sequence: u64,
    /// What happened.
    pub action: ChangeAction,
    /// Virtual time of the change (RFC 3339, ms).
    pub changed_at: String,
    /// Virtual time of the change, epoch ms.
    pub changed_ms: i64,
    /// The modified time the record carries, epoch ms (vendor resolution).
    pub modified_ms: i64,
    /// Whether this version is a deletion.
    pub deleted: bool,
    /// The record (primary API shape); null for a deletion.
    pub record: Value,
}

fn versions_of(history: &History) -> RecordVersions {
    RecordVersions {
        id: history.id,
        versions: history
            .versions
            .iter()
            .map(|version| VersionView {
                sequence: version.sequence,
                action: version.action,
                changed_at: format_rfc3339_millis(version.changed_ms),
                changed_ms: version.changed_ms,
                modified_ms: version.modified_ms,
                deleted: version.record.is_none(),
                record: version.record.clone().unwrap_or(Value::Null),
            })
            .collect(),
    }
}

/// State shared by the handlers, the generator and the handle.
#[derive(Debug)]
pub struct Shared {
    world: Mutex<World>,
    api: Mutex<ApiStats>,
    requests: Mutex<RequestLog>,
    /// The webhook delivery engine.
    pub webhooks: WebhookEngine,
    /// Base URL.
    pub base_url: String,
    /// Configuration at start.
    pub config: SimulatorConfig,
    initial_access_token: String,
}

impl Shared {
    /// Locks the world.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn api(&self) -> MutexGuard<'_, ApiStats> {
        self.api.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn requests(&self) -> MutexGuard<'_, RequestLog> {
        self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Turns change events into webhook deliveries (with seeded fault fates) and queues them.
    pub fn emit(&self, world: &mut World, events: &[ChangeEvent]) {
        if events.is_empty() {
            return;
        }
        let outgoing = webhooks::build(world, events);
        let faults = world.ctx.config.faults.clone();
        let deliveries = outgoing
            .into_iter()
            .map(|outgoing| {
                let fate = world.faults.webhook(&faults);
                (outgoing, fate)
            })
            .collect();
        self.webhooks.enqueue(deliveries, events.len() as u64);
    }

    /// Applies `count` random changes and emits their webhooks.
    pub fn step_changes(&self, count: usize) -> Vec<ChangeEvent> {
        let mut world = self.world();
        let events = world.step_changes(count);
        self.emit(&mut world, &events);
        events
    }

    /// Applies one explicit change and emits its webhooks.
    pub fn apply(&self, request: &ChangeRequest) -> Result<Vec<ChangeEvent>, ChangeError> {
        let mut world = self.world();
        let events = world.apply(request)?;
        self.emit(&mut world, &events);
        Ok(events)
    }

    /// Fault injection for a later page: maybe insert, delete or update records first (and
    /// emit their webhooks), as other users do while a client pages.
    pub fn maybe_insert_while_paging(&self, world: &mut World, entity: Entity) {
        let faults = world.ctx.config.faults.clone();
        let (delete, update) = world.faults.mutate_while_paging(&faults);
        if delete {
            let events = world.mutate_while_paging(entity, faults.delete_while_paging_count.max(1), true);
            self.api().deleted_while_paging += events.len() as u64;
            self.emit(world, &events);
        }
        if update {
            let events = world.mutate_while_paging(entity, faults.update_while_paging_count.max(1), false);
            self.api().updated_while_paging += events.len() as u64;
            self.emit(world, &events);
        }
        if !world.faults.insert_while_paging(&faults) {
            return;
        }
        let events = world.insert_while_paging(entity, faults.insert_while_paging_count.max(1));
        self.api().inserted_while_paging += events.len() as u64;
        self.emit(world, &events);
    }

    /// The cutoff time of the eventually consistent since-filter index.
    pub fn lagged_cutoff(&self, world: &World) -> i64 {
        let lag = i64::try_from(world.ctx.config.faults.eventual_consistency_lag_ms).unwrap_or(i64::MAX / 4);
        world.ctx.now_ms().saturating_sub(lag)
    }

    /// Counts a call to an endpoint that is not behind the gate (token endpoints).
    pub fn count_call(&self, endpoint: &str, cost: u64) {
        let mut api = self.api();
        api.calls += 1;
        api.cost += cost;
        let entry = api.endpoints.entry(endpoint.to_string()).or_default();
        entry.calls += 1;
        entry.cost += cost;
    }

    fn stats(&self) -> SimulatorStats {
        let world = self.world();
        SimulatorStats {
            connector: world.connector(),
            now: format_rfc3339_millis(world.ctx.now_ms()),
            outage: world.outage,
            changes: world.ctx.change_stats.clone(),
            webhooks: self.webhooks.stats(),
            api: self.api().clone(),
            tokens: world.tokens.stats.clone(),
        }
    }

    fn entity(&self, name: &str) -> Result<Entity, SimulatorError> {
        self.config.connector.entity(name).ok_or_else(|| SimulatorError::UnknownEntity {
            entity: name.to_string(),
            connector: self.config.connector,
            allowed: self.config.connector.entity_names(),
        })
    }

    fn truth(&self, entity: Entity) -> Vec<Value> {
        self.world().ctx.store.rows(entity).into_iter().map(|row| row.record).collect()
    }

    fn versions(&self, entity: Entity) -> Vec<RecordVersions> {
        self.world().ctx.store.histories(entity).into_iter().map(versions_of).collect()
    }
}

/// Client id and secret from HTTP Basic auth, else from the form.
pub fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (Option<String>, Option<String>) {
    let basic = header_text(headers, "authorization")
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.split_once(':').map(|(id, secret)| (id.to_string(), secret.to_string())));
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (form.get("client_id").cloned(), form.get("client_secret").cloned()),
    }
}

fn bearer(headers: &HeaderMap, scheme: &str) -> Option<String> {
    let value = header_text(headers, "authorization")?;
    let (given_scheme, token) = value.split_once(' ')?;
    given_scheme.eq_ignore_ascii_case(scheme).then(|| token.trim().to_string())
}

/// Checks the request's credentials the way the vendor does.
fn authenticate(shared: &Shared, world: &mut World, request: &Request) -> Result<(), VendorError> {
    let connector = shared.config.connector;
    let headers = request.headers();
    let faults = world.ctx.config.faults.clone();
    let expire_early = world.faults.token_expires_early(&faults);
    let now = world.ctx.now_ms();
    let check = |world: &mut World, token: &str| match world.tokens.check_access(token, now, expire_early) {
        Ok(()) => Ok(()),
        Err(TokenRejection::Expired) => Err(VendorError::TokenExpired),
        Err(_) => Err(VendorError::Unauthorized),
    };
    match connector {
        Connector::Pipedrive => {
            let query = parse_urlencoded(request.uri().query().unwrap_or_default());
            let api_token = query
                .get("api_token")
                .cloned()
                .or_else(|| header_text(headers, "x-api-token").map(str::to_string));
            if let Some(api_token) = api_token {
                if api_token == shared.config.auth.api_token {
                    return Ok(());
                }
                world.tokens.note_invalid();
                return Err(VendorError::Unauthorized);
            }
            match bearer(headers, "Bearer") {
                Some(token) => check(world, &token),
                None => {
                    world.tokens.note_invalid();
                    Err(VendorError::Unauthorized)
                }
            }
        }
        Connector::ZohoDesk => {
            let Some(token) = bearer(headers, "Zoho-oauthtoken") else {
                world.tokens.note_invalid();
                return Err(VendorError::Unauthorized);
            };
            check(world, &token)?;
            if header_text(headers, "orgId") != Some(shared.config.auth.zoho_org_id.as_str()) {
                return Err(VendorError::InvalidOrg);
            }
            Ok(())
        }
        Connector::Halopsa => match bearer(headers, "Bearer") {
            Some(token) => check(world, &token),
            None => {
                world.tokens.note_invalid();
                Err(VendorError::Unauthorized)
            }
        },
    }
}

/// The path with id segments replaced by `{id}` (`/api/v2/deals/7` -> `/api/v2/deals/{id}`),
/// used as the accounting key.
pub fn endpoint_template(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The cost of an endpoint for the counters: Pipedrive's token cost, 1 for HaloPSA (Zoho Desk
/// requests are priced in credits by [`api_gate`]).
fn endpoint_cost(connector: Connector, endpoint: &str) -> u64 {
    match connector {
        Connector::Pipedrive => pipedrive::api::cost(endpoint),
        Connector::ZohoDesk | Connector::Halopsa => 1,
    }
}

/// The gate in front of every data endpoint: accounting, outage, slow responses, auth, 429s
/// and 5xx, in that order; for Zoho Desk also the daily credit pool, whose two headers every
/// answer carries.
async fn api_gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if shared.config.connector != Connector::ZohoDesk {
        return gate(shared, request, next, None).await;
    }
    let endpoint = endpoint_template(request.uri().path());
    let query = parse_urlencoded_pairs(request.uri().query().unwrap_or_default());
    let credits = zoho_desk::credits::request_credits(&endpoint, &query);
    let mut response = gate(shared.clone(), request, next, Some(credits)).await;
    let (weight, remaining) = {
        let mut world = shared.world();
        let now = world.ctx.now_ms();
        let daily = shared.config.zoho_daily_credits;
        let weight = if response.status().is_success() {
            world.zoho_credits.spend(now, credits);
            credits
        } else {
            0
        };
        (weight, world.zoho_credits.left(now, daily))
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (zoho_desk::credits::WEIGHT_HEADER, weight),
        (zoho_desk::credits::REMAINING_HEADER, remaining),
    ] {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, value);
        }
    }
    response
}

/// [`api_gate`] before the credit headers; `zoho_credits` is what a Zoho Desk request costs.
async fn gate(shared: Arc<Shared>, request: Request, next: Next, zoho_credits: Option<u64>) -> Response {
    let connector = shared.config.connector;
    let path = endpoint_template(request.uri().path());
    let endpoint = format!("{} {}", request.method(), path);
    let faults = shared.config.faults.clone();
    let (fate, outage) = {
        let mut world = shared.world();
        let fate = world.faults.request(&faults);
        (fate, world.outage)
    };
    {
        let mut api = shared.api();
        api.calls += 1;
        api.endpoints.entry(endpoint.clone()).or_default().calls += 1;
    }
    let refuse = |error: VendorError| {
        let mut api = shared.api();
        match &error {
            VendorError::Outage => api.outage_rejections += 1,
            VendorError::RateLimited(_) => api.rate_limited += 1,
            VendorError::ServerError(_) => api.server_errors += 1,
            VendorError::Unauthorized | VendorError::TokenExpired | VendorError::InvalidOrg => api.unauthorized += 1,
            _ => {}
        }
        api.endpoints.entry(endpoint.clone()).or_default().errors += 1;
        vendor_error(connector, error)
    };
    if outage {
        return refuse(VendorError::Outage);
    }
    if faults.list_page_delay_ms > 0 && !path.ends_with("{id}") {
        tokio::time::sleep(Duration::from_millis(faults.list_page_delay_ms)).await;
    }
    if shared.world().forbidden_paths.contains(request.uri().path()) {
        return refuse(VendorError::Forbidden);
    }
    if fate.slow {
        shared.api().slow += 1;
        tokio::time::sleep(Duration::from_millis(faults.slow_response_ms)).await;
    }
    let authenticated = {
        let mut world = shared.world();
        authenticate(&shared, &mut world, &request)
    };
    if let Err(error) = authenticated {
        return refuse(error);
    }
    match fate.fault {
        Some(crate::faults::ApiFault::RateLimited) => return refuse(VendorError::RateLimited(faults.retry_after_secs)),
        Some(crate::faults::ApiFault::ServerError(status)) => return refuse(VendorError::ServerError(status)),
        None => {}
    }
    if let Some(credits) = zoho_credits {
        // The day's pool cannot pay for this request: 429 with the wait until it refills.
        let wait = {
            let mut world = shared.world();
            let now = world.ctx.now_ms();
            (world.zoho_credits.left(now, shared.config.zoho_daily_credits) < credits)
                .then(|| zoho_desk::credits::CreditPool::seconds_to_refill(now))
        };
        if let Some(wait) = wait {
            return refuse(VendorError::RateLimited(wait));
        }
    }
    let logged = shared.requests().enabled().then(|| {
        (
            request.method().to_string(),
            request.uri().path().to_string(),
            parse_urlencoded_pairs(request.uri().query().unwrap_or_default()),
        )
    });
    let mut response = next.run(request).await;
    if let Some((method, path_sent, query)) = logged {
        response = log_response(&shared, method, path_sent, path.clone(), query, response).await;
    }
    let mut api = shared.api();
    let entry = api.endpoints.entry(endpoint.clone()).or_default();
    if response.status().is_success() {
        let cost = zoho_credits.unwrap_or_else(|| endpoint_cost(connector, &endpoint));
        entry.cost += cost;
        api.cost += cost;
    } else {
        entry.errors += 1;
    }
    response
}

/// Buffers the response body into the request log and hands the response on unchanged.
async fn log_response(
    shared: &Shared,
    method: String,
    path: String,
    endpoint: String,
    query: Vec<(String, String)>,
    response: Response,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, %path, "could not buffer a response for the request log");
            return (StatusCode::INTERNAL_SERVER_ERROR, "simulator: response body unreadable").into_response();
        }
    };
    shared.requests().push(RequestLogEntry {
        sequence: 0,
        method,
        path,
        endpoint,
        query,
        status: parts.status.as_u16(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

// ---------------------------------------------------------------------------------------------
// /_sim/ controls

fn sim_error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn sim_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/health", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/_sim/credentials",
            get(|State(shared): State<Arc<Shared>>| async move { Json(credentials(&shared)) }),
        )
        .route(
            "/_sim/config",
            get(|State(shared): State<Arc<Shared>>| async move { Json(shared.config.clone()) }),
        )
        .route(
            "/_sim/stats",
            get(|State(shared): State<Arc<Shared>>| async move { Json(shared.stats()) }),
        )
        .route(
            "/_sim/requests",
            get(|State(shared): State<Arc<Shared>>| async move { Json(shared.requests().view()) }).delete(
                |State(shared): State<Arc<Shared>>| async move {
                    shared.requests().clear();
                    Json(shared.requests().view())
                },
            ),
        )
        .route("/_sim/truth/{entity}", get(sim_truth))
        .route("/_sim/versions/{entity}", get(sim_versions))
        .route(
            "/_sim/webhooks",
            get(|State(shared): State<Arc<Shared>>| async move { Json(shared.webhooks.log()) }),
        )
        .route(
            "/_sim/webhooks/pause",
            post(|State(shared): State<Arc<Shared>>| async move {
                shared.webhooks.pause();
                Json(shared.webhooks.stats())
            }),
        )
        .route(
            "/_sim/webhooks/resume",
            post(|State(shared): State<Arc<Shared>>| async move {
                shared.webhooks.resume();
                Json(shared.webhooks.stats())
            }),
        )
        .route(
            "/_sim/webhooks/flush",
            post(|State(shared): State<Arc<Shared>>| async move {
                shared.webhooks.flush().await;
                Json(shared.webhooks.stats())
            }),
        )
        .route("/_sim/webhooks/target", post(sim_webhook_target))
        .route(
            "/_sim/outage/start",
            post(|State(shared): State<Arc<Shared>>| async move { set_outage(&shared, true) }),
        )
        .route(
            "/_sim/outage/stop",
            post(|State(shared): State<Arc<Shared>>| async move { set_outage(&shared, false) }),
        )
        .route("/_sim/clock", get(sim_clock))
        .route("/_sim/clock/advance", post(sim_clock_advance))
        .route("/_sim/changes/step", post(sim_changes_step))
        .route("/_sim/changes/apply", post(sim_changes_apply))
        .route("/_sim/tokens/revoke", post(sim_tokens_revoke))
        .route("/.well-known/jwks.json", get(zoho_jwks))
        .route("/_sim/zoho/rotate_key", post(zoho_rotate_key))
}

/// Zoho Desk's published webhook keys (404 for other connectors).
async fn zoho_jwks(State(shared): State<Arc<Shared>>) -> Response {
    if shared.config.connector != Connector::ZohoDesk {
        return sim_error(StatusCode::NOT_FOUND, "only zoho desk publishes webhook keys".into());
    }
    Json(shared.webhooks.zoho_signer().jwks()).into_response()
}

/// Moves Zoho Desk's webhook signing to the next key; answers the new `kid`.
async fn zoho_rotate_key(State(shared): State<Arc<Shared>>) -> Response {
    if shared.config.connector != Connector::ZohoDesk {
        return sim_error(StatusCode::NOT_FOUND, "only zoho desk signs webhooks with rotating keys".into());
    }
    Json(json!({"kid": shared.webhooks.zoho_signer().rotate()})).into_response()
}

fn set_outage(shared: &Shared, on: bool) -> Json<Value> {
    shared.world().outage = on;
    Json(json!({"outage": on}))
}

async fn sim_truth(State(shared): State<Arc<Shared>>, Path(entity): Path<String>) -> Response {
    match shared.entity(&entity) {
        Ok(entity) => Json(shared.truth(entity)).into_response(),
        Err(error) => sim_error(StatusCode::NOT_FOUND, error.to_string()),
    }
}

async fn sim_versions(State(shared): State<Arc<Shared>>, Path(entity): Path<String>) -> Response {
    match shared.entity(&entity) {
        Ok(entity) => Json(shared.versions(entity)).into_response(),
        Err(error) => sim_error(StatusCode::NOT_FOUND, error.to_string()),
    }
}

async fn sim_webhook_target(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let url = body.get("url").and_then(Value::as_str).map(str::to_string);
    if let Some(url) = &url {
        if let Err(error) = check_loopback_url(url) {
            return sim_error(StatusCode::BAD_REQUEST, error.to_string());
        }
    }
    shared.webhooks.set_target(url.clone());
    Json(json!({"url": url})).into_response()
}

fn clock_body(world: &World) -> Value {
    let now = world.ctx.now_ms();
    json!({"now": format_rfc3339_millis(now), "now_ms": now})
}

async fn sim_clock(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(clock_body(&shared.world()))
}

async fn sim_clock_advance(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let seconds = query.get("seconds").map(|text| text.parse::<f64>());
    let ms = query.get("ms").map(|text| text.parse::<i64>());
    let delta = match (seconds, ms) {
        (Some(Ok(seconds)), None) if seconds.is_finite() && seconds >= 0.0 => (seconds * 1000.0) as i64,
        (None, Some(Ok(ms))) if ms >= 0 => ms,
        _ => {
            return sim_error(
                StatusCode::BAD_REQUEST,
                "pass exactly one of ?seconds=N or ?ms=N with a non-negative number".into(),
            )
        }
    };
    let mut world = shared.world();
    world.ctx.clock.advance_ms(delta);
    Json(clock_body(&world)).into_response()
}

async fn sim_changes_step(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let count = match query.get("count").map(|text| text.parse::<usize>()) {
        None => 1,
        Some(Ok(count)) if count <= 100_000 => count,
        _ => return sim_error(StatusCode::BAD_REQUEST, "count must be an integer between 0 and 100000".into()),
    };
    Json(shared.step_changes(count)).into_response()
}

async fn sim_changes_apply(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: ChangeRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(error) => {
            return sim_error(
                StatusCode::BAD_REQUEST,
                format!("could not read the change request: {error}; send e.g. {{\"action\":\"update\",\"entity\":\"deal\",\"id\":1}}"),
            )
        }
    };
    match shared.apply(&request) {
        Ok(events) => Json(events).into_response(),
        Err(error) => sim_error(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

async fn sim_tokens_revoke(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Json<Value> {
    let include_refresh = query.get("refresh").map(|value| value == "true").unwrap_or(false);
    shared.world().tokens.revoke_all(include_refresh);
    Json(json!({"revoked": true, "refresh_tokens_revoked": include_refresh}))
}

fn credentials(shared: &Shared) -> Credentials {
    let config = &shared.config;
    let connector = config.connector;
    let base = shared.base_url.clone();
    let (api_base_url, token_url) = match connector {
        Connector::Pipedrive => (format!("{base}/api"), format!("{base}/oauth/token")),
        Connector::ZohoDesk => (format!("{base}/api/v1"), format!("{base}/oauth/v2/token")),
        Connector::Halopsa => (format!("{base}/api"), format!("{base}/auth/token")),
    };
    let oauth_refresh = matches!(connector, Connector::Pipedrive | Connector::ZohoDesk);
    Credentials {
        connector,
        base_url: base,
        api_base_url,
        token_url,
        api_token: (connector == Connector::Pipedrive).then(|| config.auth.api_token.clone()),
        client_id: config.auth.client_id.clone(),
        client_secret: config.auth.client_secret.clone(),
        refresh_token: oauth_refresh.then(|| config.auth.initial_refresh_token.clone()),
        authorization_code: oauth_refresh.then(|| config.auth.authorization_code.clone()),
        access_token: shared.initial_access_token.clone(),
        org_id: (connector == Connector::ZohoDesk).then(|| config.auth.zoho_org_id.clone()),
    }
}

// ---------------------------------------------------------------------------------------------
// Start and handle

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Builds the world, binds the listener (loopback only; `127.0.0.1:0` unless configured)
    /// and starts serving, delivering webhooks and (if configured) generating changes.
    pub async fn start(config: SimulatorConfig) -> Result<SimulatorHandle, SimulatorError> {
        config.validate()?;
        let address = config.bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| SimulatorError::Bind {
                address: address.to_string(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| SimulatorError::Bind {
            address: address.to_string(),
            source,
        })?;
        let base_url = format!("http://{local_addr}");
        let mut world = World::new(config.clone())?;
        let now = world.ctx.now_ms();
        let lifetime = config.access_token_lifetime_secs();
        let initial_access_token = {
            let World { tokens, token_rng, .. } = &mut world;
            tokens.issue_access(token_rng, now, lifetime)
        };
        let engine = WebhookEngine::new(config.clone()).map_err(|error| SimulatorError::HttpClient(error.to_string()))?;
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            api: Mutex::new(ApiStats::default()),
            requests: Mutex::new(RequestLog::new(config.request_log_limit)),
            webhooks: engine,
            base_url,
            config: config.clone(),
            initial_access_token,
        });

        let (data_routes, auth_routes) = match config.connector {
            Connector::Pipedrive => (pipedrive::api::routes(), pipedrive::api::auth_routes()),
            Connector::ZohoDesk => (zoho_desk::api::routes(), zoho_desk::api::auth_routes()),
            Connector::Halopsa => (halopsa::api::routes(), halopsa::api::auth_routes()),
        };
        let app = data_routes
            .route_layer(middleware::from_fn_with_state(shared.clone(), api_gate))
            .merge(auth_routes)
            .merge(sim_routes())
            .with_state(shared.clone());

        let (shutdown_sender, mut shutdown_receiver) = watch::channel(false);
        let mut server_shutdown = shutdown_receiver.clone();
        let server_task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_shutdown.changed().await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "simulator server stopped with an error");
            }
        });
        let webhook_shared = shared.clone();
        let webhook_task = tokio::spawn(async move { webhook_shared.webhooks.run().await });
        let generator_task = (config.changes_per_second > 0.0).then(|| {
            let generator_shared = shared.clone();
            let period = Duration::from_secs_f64((1.0 / config.changes_per_second).max(0.000_1));
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(period);
                interval.tick().await;
                loop {
                    tokio::select! {
                        _ = interval.tick() => { generator_shared.step_changes(1); }
                        _ = shutdown_receiver.changed() => return,
                    }
                }
            })
        });
        tracing::info!(connector = %config.connector, base_url = %shared.base_url, seed = config.seed, "simulator started");
        Ok(SimulatorHandle {
            shared,
            local_addr,
            shutdown_sender,
            tasks: vec![Some(server_task), Some(webhook_task), generator_task],
        })
    }
}

/// A running simulator. Dropping it stops it; `shutdown` stops it and waits.
#[derive(Debug)]
pub struct SimulatorHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown_sender: watch::Sender<bool>,
    tasks: Vec<Option<JoinHandle<()>>>,
}

impl SimulatorHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The simulated connector.
    pub fn connector(&self) -> Connector {
        self.shared.config.connector
    }

    /// The configuration the simulator started with.
    pub fn config(&self) -> &SimulatorConfig {
        &self.shared.config
    }

    /// Credentials and URLs a client needs.
    pub fn credentials(&self) -> Credentials {
        credentials(&self.shared)
    }

    /// Issues a fresh access token valid from the current virtual time.
    pub fn issue_access_token(&self) -> String {
        let mut world = self.shared.world();
        let now = world.ctx.now_ms();
        let lifetime = self.shared.config.access_token_lifetime_secs();
        let World { tokens, token_rng, .. } = &mut *world;
        tokens.issue_access(token_rng, now, lifetime)
    }

    /// Applies `count` random changes (moving the virtual clock `change_spacing_ms` before each)
    /// and queues their webhooks.
    pub fn step_changes(&self, count: usize) -> Vec<ChangeEvent> {
        self.shared.step_changes(count)
    }

    /// Applies one explicit change at the current virtual time and queues its webhooks.
    pub fn apply_change(&self, request: &ChangeRequest) -> Result<Vec<ChangeEvent>, ChangeError> {
        self.shared.apply(request)
    }

    /// Moves the virtual clock forward.
    pub fn advance_clock(&self, duration: Duration) {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4);
        self.shared.world().ctx.clock.advance_ms(ms);
    }

    /// Virtual time now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.shared.world().ctx.now_ms()
    }

    /// Current live records of an entity, as the primary API returns them, by id.
    pub fn truth(&self, entity: Entity) -> Result<Vec<Value>, SimulatorError> {
        let entity = self.shared.entity(entity.name())?;
        Ok(self.shared.truth(entity))
    }

    /// Every version of every record of an entity (deleted ones included).
    pub fn versions(&self, entity: Entity) -> Result<Vec<RecordVersions>, SimulatorError> {
        let entity = self.shared.entity(entity.name())?;
        Ok(self.shared.versions(entity))
    }

    /// Counters: changes, webhooks, API calls and cost, tokens.
    pub fn stats(&self) -> SimulatorStats {
        self.shared.stats()
    }

    /// The request log (`request_log_limit` entries at most): every data request that passed
    /// the gate, with its query and response body.
    pub fn request_log(&self) -> RequestLogView {
        self.shared.requests().view()
    }

    /// The webhook log: every delivery with its events, fate and outcome.
    pub fn webhook_log(&self) -> Vec<WebhookLogEntry> {
        self.shared.webhooks.log()
    }

    /// Stops sending webhooks (they queue up).
    pub fn pause_webhooks(&self) {
        self.shared.webhooks.pause();
    }

    /// Resumes sending webhooks (and lifts a ban).
    pub fn resume_webhooks(&self) {
        self.shared.webhooks.resume();
    }

    /// Points webhooks at another loopback URL (or nowhere).
    pub fn set_webhook_target(&self, url: Option<String>) -> Result<(), SimulatorError> {
        if let Some(url) = &url {
            check_loopback_url(url)?;
        }
        self.shared.webhooks.set_target(url);
        Ok(())
    }

    /// Makes the API answer 403 to GETs of this request path (`/api/v2/deals/17`): a record the
    /// API user may not read. `false` lifts it.
    pub fn set_forbidden(&self, path: &str, forbidden: bool) {
        let mut world = self.shared.world();
        if forbidden {
            world.forbidden_paths.insert(path.to_string());
        } else {
            world.forbidden_paths.remove(path);
        }
    }

    /// Starts or ends an outage: every API call answers 503 meanwhile.
    pub fn set_outage(&self, on: bool) {
        self.shared.world().outage = on;
    }

    /// Revokes all access tokens (and refresh tokens when `include_refresh`).
    pub fn revoke_tokens(&self, include_refresh: bool) {
        self.shared.world().tokens.revoke_all(include_refresh);
    }

    /// Zoho Desk: moves webhook signing to the next key (the JWKS then lists it and the
    /// previous one); returns the new `kid`.
    pub fn rotate_zoho_key(&self) -> &'static str {
        self.shared.webhooks.zoho_signer().rotate()
    }

    /// Zoho Desk: the credits left in today's pool (the pool refills at midnight UTC of the
    /// virtual clock).
    pub fn zoho_credits_left(&self) -> u64 {
        let mut world = self.shared.world();
        let now = world.ctx.now_ms();
        world.zoho_credits.left(now, self.shared.config.zoho_daily_credits)
    }

    /// Zoho Desk: the `kid` signing webhooks now.
    pub fn zoho_key_id(&self) -> &'static str {
        self.shared.webhooks.zoho_signer().current_kid()
    }

    /// Waits until every queued delivery, including retries, is done. Returns at once while
    /// webhooks are paused or banned.
    pub async fn flush_webhooks(&self) {
        self.shared.webhooks.flush().await;
    }

    fn signal_stop(&self) {
        let _ = self.shutdown_sender.send(true);
        self.shared.webhooks.stop();
    }

    /// Stops serving and delivering, and waits for the tasks (at most 2 s).
    pub async fn shutdown(mut self) {
        self.signal_stop();
        for task in self.tasks.iter_mut() {
            if let Some(mut task) = task.take() {
                if tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err() {
                    task.abort();
                }
            }
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.signal_stop();
        for task in self.tasks.iter_mut().flatten() {
            if task.is_finished() {
                continue;
            }
            task.abort();
        }
    }
}
