//! Webhooks as sent: authentication a receiver can verify, retries, faults, pause and flush.

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{client, config, start, Receiver};
use serde_json::{json, Value};
use syncline_simulator::{Connector, DeliveryStatus, HaloPayload, HaloWebhookAuth, SimulatorConfig};

fn basic_credentials(received: &common::Received) -> (String, String) {
    let header = received.headers["authorization"].to_str().expect("ascii");
    let encoded = header.strip_prefix("Basic ").expect("basic scheme");
    let decoded = String::from_utf8(STANDARD.decode(encoded).expect("base64")).expect("utf8");
    let (user, password) = decoded.split_once(':').expect("user:password");
    (user.to_string(), password.to_string())
}

async fn with_receiver(mut config: SimulatorConfig, fail_first: usize) -> (syncline_simulator::SimulatorHandle, Receiver) {
    let receiver = Receiver::start(fail_first).await;
    config.webhooks.target_url = Some(receiver.url.clone());
    (start(config).await, receiver)
}

#[tokio::test]
async fn pipedrive_webhooks_carry_basic_auth() {
    let (simulator, receiver) = with_receiver(config(Connector::Pipedrive, 5), 0).await;
    let events = simulator.step_changes(20);
    simulator.flush_webhooks().await;
    let received = receiver.received();
    assert_eq!(received.len(), events.len(), "one v2 webhook per change event");
    let expected = simulator.config().webhooks.pipedrive_basic_auth.clone().expect("auth");
    for delivery in &received {
        assert_eq!(basic_credentials(delivery), (expected.username.clone(), expected.password.clone()));
        let body = delivery.json();
        assert_eq!(body["meta"]["version"], json!("2.0"));
        assert!(["create", "change", "delete"].contains(&body["meta"]["action"].as_str().expect("action")));
    }
    // The order of deliveries follows the order of changes.
    let entity_ids: Vec<String> = received
        .iter()
        .map(|d| d.json()["meta"]["entity_id"].as_str().expect("id").to_string())
        .collect();
    let event_ids: Vec<String> = events.iter().map(|event| event.id.to_string()).collect();
    assert_eq!(entity_ids, event_ids);
    let stats = simulator.stats();
    assert_eq!(stats.webhooks.delivered, events.len() as u64);
    assert_eq!(stats.webhooks.pending, 0);
    simulator.shutdown().await;
}

/// Checks an RS256 JWT against a JWKS document: the key its `kid` names, the signature over
/// `header.claims`; returns the claims.
fn verified_claims(token: &str, jwks: &Value) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS compact token");
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).expect("base64url");
    let header: Value = serde_json::from_slice(&decode(parts[0])).expect("header json");
    assert_eq!(header["alg"], json!("RS256"));
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["kid"] == header["kid"])
        .expect("the kid is published");
    let n = decode(key["n"].as_str().expect("n"));
    let e = decode(key["e"].as_str().expect("e"));
    let signed = format!("{}.{}", parts[0], parts[1]);
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &decode(parts[2]))
        .expect("the signature verifies with the published key");
    serde_json::from_slice(&decode(parts[1])).expect("claims json")
}

#[tokio::test]
async fn zoho_webhooks_are_event_arrays_signed_only_with_the_jwt() {
    let mut config = config(Connector::ZohoDesk, 5);
    config.webhooks.zoho_max_events_per_delivery = 3;
    config.webhooks.zoho_webhook_id = "1892000000777001".into();
    let (simulator, receiver) = with_receiver(config, 0).await;
    let events = simulator.step_changes(10);
    simulator.flush_webhooks().await;
    let jwks: Value = client()
        .get(format!("{}/.well-known/jwks.json", simulator.base_url()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let received = receiver.received();
    assert!(!received.is_empty());
    let mut carried = 0;
    for delivery in &received {
        // The JWT is Zoho's only authentication: no HMAC header, no other signature.
        assert!(delivery.headers.get("x-webhook-signature").is_none(), "{:?}", delivery.headers);
        let names: Vec<&str> = delivery.headers.keys().map(|name| name.as_str()).collect();
        assert!(
            !names.iter().any(|name| name.contains("signature") || name.contains("hmac")),
            "{names:?}"
        );
        let token = delivery.headers["x-zdesk-jwt"].to_str().expect("ascii");
        let claims = verified_claims(token, &jwks);
        assert_eq!(claims["iss"], json!("orgId:298902"));
        assert_eq!(claims["aud"], json!("webhookId:1892000000777001"));
        assert!(claims["exp"].as_i64().expect("exp") > claims["iat"].as_i64().expect("iat"));
        let body = delivery.json();
        let array = body.as_array().expect("an array of events");
        assert!(!array.is_empty() && array.len() <= 3);
        for event in array {
            assert!(event["eventType"].as_str().expect("type").contains('_'));
            assert_eq!(event["orgId"], json!("298902"));
            assert!(event["payload"].is_object());
        }
        carried += array.len();
    }
    assert_eq!(carried, events.len());
    simulator.shutdown().await;
}

#[tokio::test]
async fn halopsa_webhooks_use_basic_auth_or_a_static_header() {
    let (simulator, receiver) = with_receiver(config(Connector::Halopsa, 5), 0).await;
    simulator.step_changes(3);
    simulator.flush_webhooks().await;
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert_eq!(
        basic_credentials(&received[0]),
        ("sim-halo-webhook-user".to_string(), "sim-halo-webhook-password".to_string())
    );
    for delivery in &received {
        let body = delivery.json();
        let event = body["event"].as_str().expect("event");
        let entity = event.split(' ').next().expect("entity word");
        if !event.ends_with("deleted") {
            assert_eq!(body[entity]["id"], body["object_id"], "the record sits under its type: {body}");
        }
        assert!(body["id"].as_str().is_some_and(|id| id.len() == 36), "a GUID: {body}");
    }
    simulator.shutdown().await;

    let mut config = config(Connector::Halopsa, 5);
    config.webhooks.halopsa_auth = HaloWebhookAuth::Header {
        name: "X-Halo-Secret".into(),
        value: "s3cret".into(),
    };
    let (simulator, receiver) = with_receiver(config, 0).await;
    simulator.step_changes(2);
    simulator.flush_webhooks().await;
    for delivery in receiver.received() {
        assert_eq!(delivery.headers["x-halo-secret"], "s3cret");
        assert!(delivery.headers.get("authorization").is_none());
    }
    simulator.shutdown().await;
}

#[tokio::test]
async fn halopsa_batches_are_arrays_and_event_only_payloads_carry_no_object() {
    let mut config = config(Connector::Halopsa, 5);
    config.webhooks.halopsa_batch_size = 4;
    config.webhooks.halopsa_payload = HaloPayload::EventOnly;
    let (simulator, receiver) = with_receiver(config, 0).await;
    let events = simulator.step_changes(10);
    simulator.flush_webhooks().await;
    let received = receiver.received();
    assert_eq!(received.len(), events.len().div_ceil(4), "arrays of up to 4 events");
    let elements: Vec<Value> = received
        .iter()
        .flat_map(|delivery| delivery.json().as_array().expect("an array").clone())
        .collect();
    assert_eq!(elements.len(), events.len());
    for (element, event) in elements.iter().zip(&events) {
        let mut keys: Vec<&String> = element.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["event", "id", "object_id", "webhook_id"], "event information only");
        assert_eq!(element["object_id"], json!(event.id));
        assert!(element["event"].as_str().expect("event").starts_with(event.entity.name()));
    }
    simulator.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_on_the_scaled_schedule() {
    // The receiver fails the first two attempts; the third (second retry) succeeds.
    let (simulator, receiver) = with_receiver(config(Connector::Pipedrive, 6), 2).await;
    let events = simulator.step_changes(1);
    assert_eq!(events.len(), 1);
    let started = std::time::Instant::now();
    simulator.flush_webhooks().await;
    let received = receiver.received();
    assert_eq!(received.iter().map(|r| r.status).collect::<Vec<_>>(), vec![500, 500, 200]);
    let attempts: Vec<Value> = received.iter().map(|r| r.json()["meta"]["attempt"].clone()).collect();
    assert_eq!(attempts, vec![json!(1), json!(2), json!(3)]);
    let ids: Vec<Value> = received.iter().map(|r| r.json()["meta"]["id"].clone()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "a retry is the same delivery");
    // 3 s + 30 s scaled by 0.002 = 66 ms at least.
    assert!(started.elapsed() >= std::time::Duration::from_millis(60), "{:?}", started.elapsed());
    let stats = simulator.stats().webhooks;
    assert_eq!((stats.sent, stats.delivered, stats.failed_attempts, stats.retries), (3, 1, 2, 2));
    simulator.shutdown().await;
}

#[tokio::test]
async fn deliveries_give_up_after_the_last_retry_and_a_run_of_failures_bans() {
    let mut config = config(Connector::Pipedrive, 6);
    config.webhooks.ban_after_failures = Some(6);
    let (simulator, receiver) = with_receiver(config, usize::MAX).await;
    simulator.step_changes(1);
    simulator.flush_webhooks().await;
    assert_eq!(receiver.received().len(), 4, "first attempt plus 3 retries");
    let log = simulator.webhook_log();
    assert_eq!(log[0].status, DeliveryStatus::Failed);
    assert_eq!(simulator.stats().webhooks.gave_up, 1);
    simulator.step_changes(1);
    simulator.flush_webhooks().await;
    let stats = simulator.stats().webhooks;
    assert!(stats.banned, "6 consecutive failures ban the subscription");
    assert_eq!(receiver.received().len(), 6, "nothing is sent once banned");
    simulator.shutdown().await;
}

#[tokio::test]
async fn dropped_and_duplicated_webhooks_are_counted_and_logged() {
    let mut config = config(Connector::Pipedrive, 7);
    config.faults.webhook_drop_rate = 0.3;
    config.faults.webhook_duplicate_rate = 0.3;
    config.faults.webhook_reorder_rate = 0.2;
    config.faults.webhook_delay_rate = 0.2;
    config.faults.webhook_delay_ms = 20;
    let (simulator, receiver) = with_receiver(config, 0).await;
    let events = simulator.step_changes(60);
    simulator.flush_webhooks().await;
    let stats = simulator.stats().webhooks;
    let log = simulator.webhook_log();
    assert_eq!(log.len(), events.len());
    let dropped = log.iter().filter(|entry| entry.fate.drop).count() as u64;
    let duplicated = log.iter().filter(|entry| entry.fate.duplicate).count() as u64;
    assert!(dropped > 0 && duplicated > 0, "{stats:?}");
    assert_eq!(stats.dropped, dropped);
    assert_eq!(stats.duplicated, duplicated);
    assert_eq!(receiver.received().len() as u64, events.len() as u64 - dropped + duplicated);
    for entry in &log {
        let copies = receiver
            .received()
            .iter()
            .filter(|r| r.json()["meta"]["id"] == json!(entry.delivery_id))
            .count();
        let expected = if entry.fate.drop {
            0
        } else if entry.fate.duplicate {
            2
        } else {
            1
        };
        assert_eq!(copies, expected, "{entry:?}");
    }
    // Reordering and delays change the arrival order.
    let arrival: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["meta"]["id"].as_str().expect("id").to_string())
        .collect();
    let mut first_arrival: Vec<&String> = Vec::new();
    for id in &arrival {
        if !first_arrival.contains(&id) {
            first_arrival.push(id);
        }
    }
    let sent_order: Vec<&String> = log.iter().filter(|e| !e.fate.drop).map(|e| &e.delivery_id).collect();
    assert_ne!(first_arrival, sent_order);
    simulator.shutdown().await;
}

#[tokio::test]
async fn paused_webhooks_wait_until_resumed() {
    let (simulator, receiver) = with_receiver(config(Connector::ZohoDesk, 8), 0).await;
    simulator.pause_webhooks();
    simulator.step_changes(5);
    simulator.flush_webhooks().await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert!(receiver.received().is_empty());
    assert!(simulator.stats().webhooks.paused);
    assert!(simulator.stats().webhooks.pending >= 5);
    simulator.resume_webhooks();
    simulator.flush_webhooks().await;
    assert!(receiver.received().len() >= 5);
    assert_eq!(simulator.stats().webhooks.pending, 0);
    simulator.shutdown().await;
}
