//! The HTTP surface: `POST /webhooks/{source}`, `POST /sync`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`. Every error maps to a status in one place, [`ApiError`]'s `IntoResponse`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use serde::Deserialize;
use serde_json::json;
use syncline_connectors::reconcile::SyncMode;
use syncline_connectors::webhook::{digest_eq, parse_webhook, verify, VerifyError, WebhookVerification};
use syncline_connectors::zoho_desk::jwks::JwksCache;
use syncline_connectors::SynclineConfig;
use tokio::sync::Notify;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;

use crate::listener::{overloaded_response, ListenerLimits, RETRY_AFTER_SECONDS};
use crate::sources::{now_ms, Sources};
use crate::Secret;

/// Longest entity name from a webhook that is written to the log.
const LOGGED_NAME_CHARS: usize = 64;

/// Shared by every handler.
pub struct AppState {
    /// The sources, stores and metrics.
    pub sources: Arc<Sources>,
    /// Wakes the inbox worker after a store.
    pub wake: Arc<Notify>,
    /// The `X-Sync-Secret` that `/sync` requires; `/sync` is refused without one.
    pub sync_secret: Option<Secret>,
    /// Zoho Desk key sets, by source name, for sources verified with `zoho_jwt`.
    pub zoho_keys: HashMap<String, Arc<JwksCache>>,
}

/// One key-set cache per source whose webhooks are verified with `zoho_jwt` (its `jwks_url`,
/// else the default for its `base_url`). Nothing is fetched until the first delivery.
pub fn zoho_key_caches(config: &SynclineConfig) -> HashMap<String, Arc<JwksCache>> {
    config
        .sources
        .iter()
        .filter_map(|(name, source)| match source.webhook.as_ref()?.verify.as_ref()? {
            WebhookVerification::ZohoJwt(jwt) => {
                let url = jwt.jwks_url_for(&source.base_url)?;
                Some((name.clone(), Arc::new(JwksCache::new(url))))
            }
            _ => None,
        })
        .collect()
}

/// Everything a handler can answer besides success.
#[derive(Debug)]
pub enum ApiError {
    /// Verification failed (no detail is given).
    Unauthorized,
    /// The body is not a webhook of the source's connector.
    Malformed(String),
    /// The body is over the source's limit.
    TooLarge(usize),
    /// The body did not arrive within the body-read timeout.
    BodyTimeout,
    /// No such source.
    UnknownSource,
    /// The state store (inbox) failed: nothing was stored, the sender should retry.
    Unavailable,
    /// `/sync` is not configured.
    SyncDisabled,
    /// A bad `/sync` query.
    BadRequest(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Unauthorized => return StatusCode::UNAUTHORIZED.into_response(),
            ApiError::Malformed(message) => (StatusCode::BAD_REQUEST, message),
            ApiError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {limit} bytes; raise webhook.max_body_bytes of the source if this is legitimate"),
            ),
            ApiError::UnknownSource => (
                StatusCode::NOT_FOUND,
                "no such source; post to /webhooks/{source} with a source of the configuration".to_string(),
            ),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time; send it at once, or raise server.body_read_timeout_ms".to_string(),
            ),
            ApiError::Unavailable => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": "the inbox cannot store the webhook right now; retry later" })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
                return response;
            }
            ApiError::SyncDisabled => (
                StatusCode::FORBIDDEN,
                "/sync is disabled; set server.sync_secret to enable it".to_string(),
            ),
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

/// The router. Every route but `/healthz` shares one cap on requests in flight: past it a
/// request is answered 503 with `Retry-After` at once (load shedding, before its body is read).
/// Webhooks, `/readyz` and `/metrics` are answered 408 past the whole-request timeout; `/sync`
/// runs as long as its reconcile. `/healthz` stays outside the cap, so a liveness probe does
/// not restart a server that is merely busy.
pub fn router(state: Arc<AppState>, limits: &ListenerLimits) -> Router {
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout);
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(shed_error))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_requests_in_flight));
    Router::new()
        .route("/webhooks/{source}", post(receive_webhook).get(webhook_handshake).layer(timeout))
        .route("/sync", post(sync))
        .route("/readyz", get(readyz).layer(timeout))
        .route("/metrics", get(metrics).layer(timeout))
        .layer(shed)
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn shed_error(error: BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        return overloaded_response();
    }
    tracing::error!(%error, "request failed in the listener's layers");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Why reading a body failed: over the limit (413), too slow (408), or the client broke off.
fn body_error(error: &axum::Error, limit: usize) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError::TooLarge(limit);
        }
        if current.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::BodyTimeout;
        }
        cause = current.source();
    }
    ApiError::Malformed("the body could not be read; send it again".to_string())
}

/// A name from request data, shortened and escaped for the log.
fn loggable(name: &str) -> String {
    let shortened: String = name.chars().take(LOGGED_NAME_CHARS).collect();
    format!("{shortened:?}")
}

async fn receive_webhook(
    State(app): State<Arc<AppState>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let started = Instant::now();
    let metrics = &app.sources.metrics;
    let Some(source_config) = app.sources.config.sources.get(&source) else {
        metrics.increment(
            "syncline_webhooks_rejected_total",
            &[("source", "unknown"), ("reason", "unknown_source")],
        );
        return Err(ApiError::UnknownSource);
    };
    let labels = [("source", source.as_str())];
    metrics.increment("syncline_webhooks_received_total", &labels);
    let reject = |reason: &'static str, error: ApiError| {
        metrics.increment(
            "syncline_webhooks_rejected_total",
            &[("source", source.as_str()), ("reason", reason)],
        );
        error
    };
    let Some(webhook) = &source_config.webhook else {
        tracing::warn!(source, "webhook for a source without a [webhook] section; refused");
        return Err(reject("unauthorized", ApiError::Unauthorized));
    };
    let Some(verification) = &webhook.verify else {
        return Err(reject("unauthorized", ApiError::Unauthorized));
    };
    let limit = webhook.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(reject("too_large", ApiError::TooLarge(limit)));
    }
    // Schemes that need only the headers are checked before a byte of the body is read.
    if !verification.needs_body() {
        let checked = match verification {
            WebhookVerification::ZohoJwt(jwt) => match (app.zoho_keys.get(&source), source_config.org_id.as_deref()) {
                (Some(keys), Some(org_id)) => keys.verify(&headers, org_id, &jwt.webhook_id, now_ms()).await,
                _ => Err(VerifyError::KeysNeeded),
            },
            _ => verify(verification, &headers, &[], now_ms()),
        };
        if let Err(error) = checked {
            tracing::warn!(source, reason = %error, "webhook verification failed");
            return Err(reject("unauthorized", ApiError::Unauthorized));
        }
    }
    let body = match to_bytes(body, limit).await {
        Ok(body) => body,
        Err(error) => {
            let error = body_error(&error, limit);
            let reason = match error {
                ApiError::TooLarge(_) => "too_large",
                ApiError::BodyTimeout => "body_timeout",
                _ => "malformed",
            };
            return Err(reject(reason, error));
        }
    };
    let received_at = now_ms();
    if verification.needs_body() {
        if let Err(error) = verify(verification, &headers, &body, received_at) {
            tracing::warn!(source, reason = %error, "webhook verification failed");
            return Err(reject("unauthorized", ApiError::Unauthorized));
        }
    }
    let delivery_header = verification
        .delivery_id_header()
        .and_then(|name| headers.get(name))
        .and_then(|value| value.to_str().ok());
    let parsed = parse_webhook(source_config.connector, &source, &body, delivery_header, received_at).map_err(|error| {
        tracing::warn!(source, %error, "malformed webhook");
        reject("malformed", ApiError::Malformed(error.to_string()))
    })?;
    // Ids become request paths: one that is not the vendor's id syntax refuses the delivery.
    for event in &parsed.events {
        let Some(spec) = source_config.connector.entity(&event.entity) else {
            continue;
        };
        let checked = spec
            .check_id(&event.id)
            .and_then(|()| event.parent_id.as_deref().map_or(Ok(()), |parent| spec.check_id(parent)));
        if let Err(error) = checked {
            tracing::warn!(source, %error, "webhook refused: an id is not the vendor's");
            return Err(reject("malformed", ApiError::Malformed(error.to_string())));
        }
    }
    if !parsed.unknown_entities.is_empty() {
        for entity in &parsed.unknown_entities {
            tracing::info!(
                source,
                entity = %loggable(entity),
                "webhook for an entity this connector does not sync; acknowledged"
            );
        }
        // One series per source, whatever names the senders make up.
        metrics.add(
            "syncline_webhook_unknown_entity_total",
            &labels,
            parsed.unknown_entities.len() as f64,
        );
    }
    let selected = source_config.selected_entities();
    let (events, unselected): (Vec<_>, Vec<_>) = parsed
        .events
        .into_iter()
        .partition(|event| selected.contains(&event.entity.as_str()));
    for event in &unselected {
        tracing::debug!(source, entity = event.entity, "webhook for an entity not selected; acknowledged");
    }
    let stored = if events.is_empty() {
        0
    } else {
        app.sources.state.inbox_append(&events, received_at).await.map_err(|error| {
            tracing::error!(source, %error, "cannot store the webhook in the inbox");
            reject("unavailable", ApiError::Unavailable)
        })?
    };
    if stored > 0 {
        app.wake.notify_one();
    }
    metrics.increment("syncline_webhooks_accepted_total", &labels);
    metrics.add("syncline_webhook_events_total", &labels, stored as f64);
    metrics.add("syncline_webhook_duplicate_events_total", &labels, (events.len() - stored) as f64);
    metrics.observe("syncline_webhook_ack_seconds", &[], started.elapsed().as_secs_f64());
    Ok(Json(json!({
        "stored": stored,
        "duplicates": events.len() - stored,
        "ignored": unselected.len() + parsed.unknown_entities.len(),
    })))
}

/// `GET /webhooks/{source}`: Zoho Desk validates a webhook URL with a GET and wants 200 before
/// it saves the webhook. Answered for sources verified with `zoho_jwt` only (nothing is read or
/// stored); other sources answer 405 as before, unknown ones 404.
async fn webhook_handshake(State(app): State<Arc<AppState>>, Path(source): Path<String>) -> Response {
    let Some(source_config) = app.sources.config.sources.get(&source) else {
        return ApiError::UnknownSource.into_response();
    };
    let zoho_jwt = source_config
        .webhook
        .as_ref()
        .and_then(|webhook| webhook.verify.as_ref())
        .is_some_and(|verify| matches!(verify, WebhookVerification::ZohoJwt(_)));
    if zoho_jwt {
        (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("POST"))],
            Json(json!({ "error": "webhooks are posted; a GET is answered only for zoho desk sources verified with zoho_jwt" })),
        )
            .into_response()
    }
}

/// `/sync` query.
#[derive(Debug, Deserialize)]
struct SyncQuery {
    mode: Option<String>,
    source: Option<String>,
}

async fn sync(State(app): State<Arc<AppState>>, headers: HeaderMap, Query(query): Query<SyncQuery>) -> Result<Response, ApiError> {
    // An empty secret never authenticates (start refuses it too): an unset variable must not
    // open /sync to anyone.
    let Some(secret) = app.sync_secret.as_ref().filter(|secret| !secret.expose().is_empty()) else {
        return Err(ApiError::SyncDisabled);
    };
    let given = headers.get("x-sync-secret").map(|value| value.as_bytes()).unwrap_or_default();
    if !digest_eq(given, secret.expose().as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    let mode = match query.mode.as_deref().unwrap_or("incremental") {
        "incremental" => SyncMode::Incremental,
        "full" => SyncMode::Full,
        other => {
            return Err(ApiError::BadRequest(format!(
                "mode `{other}` is not known; use mode=incremental or mode=full"
            )))
        }
    };
    let config = &app.sources.config;
    let sources: Vec<String> = match query.source {
        Some(source) if config.sources.contains_key(&source) => vec![source],
        Some(source) => {
            return Err(ApiError::BadRequest(format!(
                "no source `{source}`; use one of {}",
                config.sources.keys().cloned().collect::<Vec<_>>().join(", ")
            )))
        }
        None => config.sources.keys().cloned().collect(),
    };
    let mut results = Vec::new();
    let mut busy = false;
    let mut failed = false;
    for source in sources {
        match app.sources.reconcile(&source, mode).await {
            Ok(reports) => {
                let source_failed = reports.iter().any(|report| report.error.is_some());
                failed |= source_failed;
                let entities: Vec<serde_json::Value> = reports
                    .iter()
                    .map(|report| {
                        json!({
                            "entity": report.entity,
                            "method": report.method,
                            "listed": report.listed,
                            "new_versions": report.new_versions,
                            "deleted": report.deleted,
                            "unchanged": report.unchanged,
                            "healed": report.healed,
                            "api_calls": report.calls.calls,
                            "api_cost": report.calls.cost,
                            "elapsed_ms": report.elapsed_ms,
                            "status": report.outcome(),
                            "deferred": report.deferred,
                            "error": report.error,
                        })
                    })
                    .collect();
                let status = if source_failed {
                    "failed"
                } else if reports.iter().any(|report| report.deferred) {
                    "deferred"
                } else {
                    "ok"
                };
                results.push(json!({"source": source, "status": status, "entities": entities}));
            }
            Err(_) => {
                busy = true;
                results.push(json!({"source": source, "status": "busy", "entities": []}));
            }
        }
    }
    let status = if failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if busy {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "mode": mode.name(), "sources": results }))).into_response())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let state = app
        .sources
        .state
        .schema_version()
        .await
        .map(|_| ())
        .map_err(|error| error.to_string());
    // The state of what is open; a DuckDB file is never opened (nor kept) for a probe.
    let destination = app.sources.destination.readiness().await.map_err(|error| error.to_string());
    let worker = app.sources.worker_health.is_up();
    let ready = state.is_ok() && destination.is_ok() && worker;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "state_store": state.err().unwrap_or_else(|| "ok".into()),
        "destination": destination.err().unwrap_or_else(|| "ok".into()),
        "worker": if worker { "ok" } else { "down: the inbox worker is restarting after a panic" },
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let metrics = &app.sources.metrics;
    let now = now_ms();
    match app.sources.state.inbox_stats(now).await {
        Ok(stats) => {
            metrics.set_gauge("syncline_inbox_depth", &[], stats.pending as f64);
            let age = stats
                .oldest_pending_received_at
                .map_or(0.0, |received| (now - received).max(0) as f64 / 1000.0);
            metrics.set_gauge("syncline_inbox_oldest_age_seconds", &[], age);
            metrics.set_gauge("syncline_inbox_dead_letters", &[], stats.dead as f64);
        }
        Err(error) => tracing::warn!(%error, "cannot read inbox statistics for /metrics"),
    }
    app.sources.publish_api_stats();
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], metrics.render()).into_response()
}
