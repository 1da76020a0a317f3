//! Outgoing webhooks: building vendor payloads for change events (pure) and the delivery engine
//! that posts them with faults, retries, pauses and bans.

use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::{format_halo, format_rfc3339_millis};
use crate::config::{HaloWebhookAuth, SimulatorConfig};
use crate::entity::{Connector, Entity};
use crate::faults::WebhookFate;
use crate::names;
use crate::pipedrive::render as pipedrive_render;
use crate::store::{ChangeAction, RecordId};
use crate::world::{Catalog, ChangeEvent, World};
use crate::{halopsa, zoho_desk};

/// One change event referenced by a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    /// Change sequence number.
    pub sequence: u64,
    /// Entity.
    pub entity: Entity,
    /// Record id.
    pub id: RecordId,
    /// What happened.
    pub action: ChangeAction,
}

/// A webhook ready to send (before per-attempt rewriting and signing).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Delivery id (Pipedrive `meta.id`, else generated).
    pub delivery_id: String,
    /// Events carried.
    pub events: Vec<EventRef>,
    /// JSON body.
    pub body: Value,
}

/// Builds the deliveries for a batch of change events. Pure apart from the world's random
/// stream for delivery ids.
pub fn build(world: &mut World, events: &[ChangeEvent]) -> Vec<Outgoing> {
    let config = world.ctx.config.clone();
    match config.connector {
        Connector::Pipedrive => {
            let catalog = match &world.ctx.catalog {
                Catalog::Pipedrive(catalog) => catalog.clone(),
                _ => return Vec::new(),
            };
            let user_id = world.ctx.store.live_ids(Entity::User).first().copied().unwrap_or(10_001);
            let mut context = pipedrive_render::WebhookContext {
                store: &world.ctx.store,
                catalog: &catalog,
                rng: &mut world.paging_rng,
                webhook_id: 4_710_827,
                user_id,
                host: "simulated-company.pipedrive.com".into(),
            };
            events
                .iter()
                .map(|event| {
                    let body = pipedrive_render::webhook_body(config.webhooks.pipedrive_version, &mut context, event);
                    let delivery_id = body["meta"]["id"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("pd-{}", event.sequence));
                    Outgoing {
                        delivery_id,
                        events: vec![event_ref(event)],
                        body,
                    }
                })
                .collect()
        }
        Connector::ZohoDesk => {
            let batch = config.webhooks.zoho_max_events_per_delivery.max(1);
            let sent: Vec<&ChangeEvent> = events.iter().filter(|event| zoho_desk::sends_webhook(event)).collect();
            sent.chunks(batch)
                .map(|chunk| {
                    let body = Value::Array(chunk.iter().map(|event| zoho_desk::webhook_event(&config, event)).collect());
                    Outgoing {
                        delivery_id: names::uuid(&mut world.paging_rng),
                        events: chunk.iter().map(|event| event_ref(event)).collect(),
                        body,
                    }
                })
                .collect()
        }
        Connector::Halopsa => {
            let element = |rng: &mut rand::rngs::StdRng, event: &ChangeEvent| {
                let element_id = names::uuid(rng);
                let escmsg_id = names::uuid(rng);
                let body = halopsa::webhook_body(&config.webhooks, event, &element_id, &escmsg_id);
                (element_id, body)
            };
            match config.webhooks.halopsa_batch_size {
                // Batching off: one object per event, its GUID the delivery id.
                0 => events
                    .iter()
                    .map(|event| {
                        let (delivery_id, body) = element(&mut world.paging_rng, event);
                        Outgoing {
                            delivery_id,
                            events: vec![event_ref(event)],
                            body,
                        }
                    })
                    .collect(),
                batch => events
                    .chunks(batch)
                    .map(|chunk| {
                        let body = Value::Array(chunk.iter().map(|event| element(&mut world.paging_rng, event).1).collect());
                        Outgoing {
                            delivery_id: names::uuid(&mut world.paging_rng),
                            events: chunk.iter().map(event_ref).collect(),
                            body,
                        }
                    })
                    .collect(),
            }
        }
    }
}

fn event_ref(event: &ChangeEvent) -> EventRef {
    EventRef {
        sequence: event.sequence,
        entity: event.entity,
        id: event.id,
        action: event.action,
    }
}

/// `Basic base64(user:password)`.
pub fn basic_auth_header(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

/// The raw body and headers of one attempt.
pub fn render_attempt(config: &SimulatorConfig, outgoing: &Outgoing, attempt: u32) -> (Vec<u8>, Vec<(String, String)>) {
    let mut body = outgoing.body.clone();
    if config.connector == Connector::Pipedrive {
        pipedrive_render::set_attempt(&mut body, attempt);
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    match config.connector {
        Connector::Pipedrive => {
            if let Some(auth) = &config.webhooks.pipedrive_basic_auth {
                headers.push(("authorization".into(), basic_auth_header(&auth.username, &auth.password)));
            }
        }
        // Zoho Desk signs with the JWT alone (`X-ZDesk-JWT`, added per attempt by the engine,
        // which holds the rotating keys); it sends no HMAC and cannot send custom headers.
        Connector::ZohoDesk => {}
        Connector::Halopsa => match &config.webhooks.halopsa_auth {
            HaloWebhookAuth::None => {}
            HaloWebhookAuth::Basic { username, password } => {
                headers.push(("authorization".into(), basic_auth_header(username, password)));
            }
            HaloWebhookAuth::Header { name, value } => headers.push((name.to_ascii_lowercase(), value.clone())),
        },
    }
    (bytes, headers)
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting to be sent (or to be retried).
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Dropped by fault injection: never sent.
    Dropped,
    /// No target URL was configured when it was due.
    NoTarget,
    /// Not sent because the subscription was banned.
    Banned,
}

/// One entry of the webhook log (`/_sim/webhooks`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookLogEntry {
    /// Delivery id.
    pub delivery_id: String,
    /// Events carried.
    pub events: Vec<EventRef>,
    /// Injected faults.
    pub fate: WebhookFate,
    /// Outcome so far.
    pub status: DeliveryStatus,
    /// HTTP attempts made (all copies).
    pub attempts: u32,
    /// Status code of the last answer, if any.
    pub last_http_status: Option<u16>,
}

/// Webhook counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStats {
    /// Change events that produced webhooks.
    pub events: u64,
    /// Deliveries built (before faults).
    pub deliveries: u64,
    /// HTTP POSTs made (first attempts, retries and duplicates).
    pub sent: u64,
    /// POSTs answered 2xx.
    pub delivered: u64,
    /// POSTs that failed (non-2xx, timeout, connection refused).
    pub failed_attempts: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Deliveries dropped by fault injection.
    pub dropped: u64,
    /// Deliveries sent twice by fault injection.
    pub duplicated: u64,
    /// Deliveries held back behind the next one.
    pub reordered: u64,
    /// Deliveries delayed.
    pub delayed: u64,
    /// Deliveries abandoned after the last retry.
    pub gave_up: u64,
    /// Deliveries waiting (queued, held back or in flight).
    pub pending: u64,
    /// Whether webhooks are paused.
    pub paused: bool,
    /// Whether the subscription is banned after consecutive failures.
    pub banned: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    due: Instant,
    attempt: u32,
    outgoing: Outgoing,
    log_index: usize,
}

#[derive(Debug, Default)]
struct EngineState {
    queue: Vec<Pending>,
    held: Option<Pending>,
    in_flight: usize,
    paused: bool,
    banned: bool,
    consecutive_failures: u32,
    target_url: Option<String>,
    stats: WebhookStats,
    log: Vec<WebhookLogEntry>,
    shutdown: bool,
}

/// The delivery engine: a queue of due deliveries worked by one task.
#[derive(Debug)]
pub struct WebhookEngine {
    state: Mutex<EngineState>,
    wake: Notify,
    client: reqwest::Client,
    config: SimulatorConfig,
    zoho_signer: zoho_desk::jwt::ZohoSigner,
}

impl WebhookEngine {
    /// An engine for `config`.
    pub fn new(config: SimulatorConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.webhooks.timeout_ms.max(1)))
            .no_proxy()
            .build()?;
        let state = EngineState {
            target_url: config.webhooks.target_url.clone(),
            ..EngineState::default()
        };
        Ok(Self {
            state: Mutex::new(state),
            wake: Notify::new(),
            client,
            config,
            zoho_signer: zoho_desk::jwt::ZohoSigner::default(),
        })
    }

    /// The key Zoho Desk deliveries are signed with (and its rotation).
    pub fn zoho_signer(&self) -> &zoho_desk::jwt::ZohoSigner {
        &self.zoho_signer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EngineState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues deliveries with their fault fates.
    pub fn enqueue(&self, deliveries: Vec<(Outgoing, WebhookFate)>, event_count: u64) {
        let now = Instant::now();
        let delay = Duration::from_millis(self.config.faults.webhook_delay_ms);
        let mut state = self.lock();
        state.stats.events += event_count;
        for (outgoing, fate) in deliveries {
            state.stats.deliveries += 1;
            let log_index = state.log.len();
            state.log.push(WebhookLogEntry {
                delivery_id: outgoing.delivery_id.clone(),
                events: outgoing.events.clone(),
                fate,
                status: if fate.drop {
                    DeliveryStatus::Dropped
                } else {
                    DeliveryStatus::Pending
                },
                attempts: 0,
                last_http_status: None,
            });
            if fate.drop {
                state.stats.dropped += 1;
                continue;
            }
            let due = if fate.delay {
                state.stats.delayed += 1;
                now + delay
            } else {
                now
            };
            let pending = Pending {
                due,
                attempt: 1,
                outgoing,
                log_index,
            };
            if fate.duplicate {
                state.stats.duplicated += 1;
                state.queue.push(Pending {
                    due: due + Duration::from_micros(1),
                    ..pending.clone()
                });
            }
            // A held-back delivery goes out right after this one.
            if let Some(mut held) = state.held.take() {
                held.due = due.max(held.due) + Duration::from_micros(2);
                state.queue.push(pending);
                state.queue.push(held);
            } else if fate.reorder {
                state.stats.reordered += 1;
                state.held = Some(pending);
            } else {
                state.queue.push(pending);
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Pauses sending (deliveries queue up).
    pub fn pause(&self) {
        self.lock().paused = true;
    }

    /// Resumes sending and lifts a ban.
    pub fn resume(&self) {
        let mut state = self.lock();
        state.paused = false;
        state.banned = false;
        state.consecutive_failures = 0;
        drop(state);
        self.wake.notify_one();
    }

    /// Changes the target URL (validated by the caller).
    pub fn set_target(&self, url: Option<String>) {
        self.lock().target_url = url;
        self.wake.notify_one();
    }

    /// The target URL.
    pub fn target(&self) -> Option<String> {
        self.lock().target_url.clone()
    }

    /// Counters.
    pub fn stats(&self) -> WebhookStats {
        let state = self.lock();
        let mut stats = state.stats.clone();
        stats.pending = (state.queue.len() + state.in_flight + usize::from(state.held.is_some())) as u64;
        stats.paused = state.paused;
        stats.banned = state.banned;
        stats
    }

    /// The delivery log.
    pub fn log(&self) -> Vec<WebhookLogEntry> {
        self.lock().log.clone()
    }

    /// Waits until nothing is queued, held or in flight (held-back deliveries are released).
    /// Returns at once while paused or banned, since nothing would be sent.
    pub async fn flush(&self) {
        loop {
            {
                let mut state = self.lock();
                if let Some(held) = state.held.take() {
                    state.queue.push(held);
                    self.wake.notify_one();
                }
                if state.paused || state.banned || state.shutdown {
                    return;
                }
                if state.queue.is_empty() && state.in_flight == 0 {
                    return;
                }
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops the worker.
    pub fn stop(&self) {
        self.lock().shutdown = true;
        self.wake.notify_one();
    }

    /// The worker loop: sends due deliveries one at a time, in due order.
    pub async fn run(&self) {
        let delays = self.config.retry_delays_secs();
        loop {
            let next = {
                let mut state = self.lock();
                if state.shutdown {
                    return;
                }
                if state.paused || state.banned || state.queue.is_empty() {
                    Err(None)
                } else {
                    let (index, due) = state
                        .queue
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, pending)| pending.due)
                        .map(|(index, pending)| (index, pending.due))
                        .unwrap_or((0, Instant::now()));
                    if due <= Instant::now() {
                        let pending = state.queue.remove(index);
                        state.in_flight += 1;
                        Ok((pending, state.target_url.clone()))
                    } else {
                        Err(Some(due))
                    }
                }
            };
            match next {
                Ok((pending, target)) => self.attempt(pending, target, &delays).await,
                Err(until) => {
                    let sleep_until = until.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(sleep_until) => {}
                    }
                }
            }
        }
    }

    async fn attempt(&self, pending: Pending, target: Option<String>, delays: &[f64]) {
        let Some(target) = target else {
            let mut state = self.lock();
            state.in_flight -= 1;
            if let Some(entry) = state.log.get_mut(pending.log_index) {
                entry.status = DeliveryStatus::NoTarget;
            }
            return;
        };
        let (body, mut headers) = render_attempt(&self.config, &pending.outgoing, pending.attempt);
        if self.config.connector == Connector::ZohoDesk {
            // Signed per attempt, as Zoho does: a retry carries a fresh token.
            let token = self
                .zoho_signer
                .token(&self.config.auth.zoho_org_id, &self.config.webhooks.zoho_webhook_id);
            headers.push((zoho_desk::jwt::JWT_HEADER.to_string(), token));
        }
        let mut request = self.client.post(&target).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let outcome = request.send().await;
        let status = outcome.as_ref().ok().map(|response| response.status().as_u16());
        let success = status.map(|code| (200..300).contains(&code)).unwrap_or(false);
        tracing::debug!(
            delivery_id = %pending.outgoing.delivery_id,
            attempt = pending.attempt,
            status = ?status,
            success,
            "simulator webhook attempt"
        );
        let mut state = self.lock();
        state.in_flight -= 1;
        state.stats.sent += 1;
        if let Some(entry) = state.log.get_mut(pending.log_index) {
            entry.attempts += 1;
            entry.last_http_status = status;
        }
        if success {
            state.stats.delivered += 1;
            state.consecutive_failures = 0;
            if let Some(entry) = state.log.get_mut(pending.log_index) {
                entry.status = DeliveryStatus::Delivered;
            }
            return;
        }
        state.stats.failed_attempts += 1;
        state.consecutive_failures += 1;
        let retry_index = usize::try_from(pending.attempt - 1).unwrap_or(usize::MAX);
        if let Some(delay) = delays.get(retry_index) {
            state.stats.retries += 1;
            state.queue.push(Pending {
                due: Instant::now() + Duration::from_secs_f64(*delay),
                attempt: pending.attempt + 1,
                ..pending
            });
        } else {
            state.stats.gave_up += 1;
            if let Some(entry) = state.log.get_mut(pending.log_index) {
                if entry.status != DeliveryStatus::Delivered {
                    entry.status = DeliveryStatus::Failed;
                }
            }
        }
        if let Some(limit) = self.config.webhooks.ban_after_failures {
            if state.consecutive_failures >= limit && !state.banned {
                state.banned = true;
                tracing::warn!(failures = state.consecutive_failures, "simulated webhook subscription banned");
                let indexes: Vec<usize> = state.queue.iter().map(|pending| pending.log_index).collect();
                for index in indexes {
                    if let Some(entry) = state.log.get_mut(index) {
                        entry.status = DeliveryStatus::Banned;
                    }
                }
            }
        }
    }
}

/// The Zoho Desk `eventTime`: epoch milliseconds as a string.
pub fn zoho_event_time(ms: i64) -> String {
    ms.to_string()
}

/// The HaloPSA webhook timestamp.
pub fn halo_timestamp(ms: i64) -> String {
    format_halo(ms)
}

/// A generic RFC 3339 timestamp for logs.
pub fn log_time(ms: i64) -> Value {
    json!(format_rfc3339_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64_of_user_and_password() {
        assert_eq!(basic_auth_header("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn reorder_holds_back_until_the_next_delivery() {
        let config = SimulatorConfig::default();
        let engine = WebhookEngine::new(config).expect("engine");
        let outgoing = |id: &str| Outgoing {
            delivery_id: id.into(),
            events: vec![],
            body: json!({}),
        };
        let reorder = WebhookFate {
            reorder: true,
            ..WebhookFate::default()
        };
        engine.enqueue(vec![(outgoing("a"), reorder)], 1);
        assert_eq!(engine.stats().pending, 1);
        assert!(engine.lock().queue.is_empty(), "a is held back");
        engine.enqueue(vec![(outgoing("b"), WebhookFate::default())], 1);
        let state = engine.lock();
        let mut order: Vec<(Instant, String)> = state
            .queue
            .iter()
            .map(|pending| (pending.due, pending.outgoing.delivery_id.clone()))
            .collect();
        order.sort();
        let ids: Vec<&str> = order.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(ids, vec!["b", "a"]);
    }
}
