//! Shared helpers for the simulator's end-to-end tests: starting simulators, a webhook receiver
//! and fixture shape comparison.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use syncline_simulator::{Connector, Simulator, SimulatorConfig, SimulatorHandle};

/// A simulator config for tests: fast retries.
pub fn config(connector: Connector, seed: u64) -> SimulatorConfig {
    let mut config = SimulatorConfig::for_connector(connector);
    config.seed = seed;
    config.webhooks.retry_scale = 0.002;
    config.webhooks.timeout_ms = 2000;
    config
}

pub async fn start(config: SimulatorConfig) -> SimulatorHandle {
    Simulator::start(config).await.expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// One webhook delivery as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Status the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is json")
    }
}

#[derive(Debug, Default)]
struct ReceiverState {
    received: Vec<Received>,
    fail_first: usize,
    seen: usize,
}

/// A webhook receiver on 127.0.0.1 that records deliveries and can fail the first N.
#[derive(Clone)]
pub struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    pub url: String,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            fail_first,
            ..ReceiverState::default()
        }));
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State(state): State<Arc<Mutex<ReceiverState>>>, headers: HeaderMap, body: Bytes| async move {
                        let mut state = state.lock().expect("lock");
                        state.seen += 1;
                        let status = if state.seen <= state.fail_first {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        };
                        state.received.push(Received {
                            headers,
                            body,
                            status: status.as_u16(),
                        });
                        status
                    },
                ),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, url }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("lock").received.clone()
    }

    /// Deliveries answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|received| received.status == 200).collect()
    }
}

pub fn fixtures_dir() -> PathBuf {
    match std::env::var("SYNCLINE_FIXTURES") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

/// The vendors' specs (`shared/vendor`), or `SYNCLINE_VENDOR`.
pub fn vendor_dir() -> PathBuf {
    match std::env::var("SYNCLINE_VENDOR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vendor"),
    }
}

/// The property names of one `components.schemas` entry of HaloPSA's swagger.
pub fn halo_schema_properties(swagger: &Value, schema: &str) -> Vec<String> {
    swagger["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("the swagger has no schema {schema}"))
        .keys()
        .cloned()
        .collect()
}

/// HaloPSA's swagger.
pub fn halo_swagger() -> Value {
    let path = vendor_dir().join("halopsa/swagger.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parse {}: {error}", path.display()))
}

pub fn fixture(relative: &str) -> Value {
    let path = fixtures_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parse {}: {error}", path.display()))
}

/// JSON type name; integers and floats are both "number".
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Pipedrive custom-field keys: 40 lowercase hex characters, optionally with a subfield suffix.
pub fn is_custom_field_key(key: &str) -> bool {
    key.len() >= 40 && key[..40].bytes().all(|b| b.is_ascii_hexdigit()) && (key.len() == 40 || key.as_bytes()[40] == b'_')
}

fn compatible(fixture: &Value, simulated: &Value) -> bool {
    // Vendors' fields are nullable: a null on either side says nothing about the type.
    fixture.is_null() || simulated.is_null() || kind(fixture) == kind(simulated)
}

/// Same top-level keys (fixture annotations `_note` ignored) and compatible value types.
pub fn assert_same_top_level(name: &str, fixture: &Value, simulated: &Value) {
    let fixture_map = fixture.as_object().unwrap_or_else(|| panic!("{name}: fixture is not an object"));
    let simulated_map = simulated
        .as_object()
        .unwrap_or_else(|| panic!("{name}: simulated counterpart is not an object: {simulated}"));
    let mut fixture_keys: Vec<&String> = fixture_map.keys().filter(|key| !key.starts_with("_note")).collect();
    let mut simulated_keys: Vec<&String> = simulated_map.keys().collect();
    fixture_keys.sort();
    simulated_keys.sort();
    assert_eq!(fixture_keys, simulated_keys, "{name}: top-level keys differ");
    for key in fixture_keys {
        assert!(
            compatible(&fixture_map[key], &simulated_map[key]),
            "{name}: key {key:?} is {} in the fixture but {} in the simulator",
            kind(&fixture_map[key]),
            kind(&simulated_map[key])
        );
    }
}

/// Every key of the fixture record exists in the simulated one with a compatible type
/// (fixtures are often trimmed or abbreviated; Pipedrive custom-field hashes differ per account).
pub fn assert_record_covers(name: &str, fixture: &Value, simulated: &Value) {
    let fixture_map = fixture
        .as_object()
        .unwrap_or_else(|| panic!("{name}: fixture record is not an object"));
    let simulated_map = simulated
        .as_object()
        .unwrap_or_else(|| panic!("{name}: simulated record is not an object: {simulated}"));
    for (key, value) in fixture_map {
        if is_custom_field_key(key) || key.starts_with("_note") {
            continue;
        }
        let Some(simulated_value) = simulated_map.get(key) else {
            panic!("{name}: simulated record lacks key {key:?}");
        };
        assert!(
            compatible(value, simulated_value),
            "{name}: key {key:?} is {} in the fixture but {} in the simulator",
            kind(value),
            kind(simulated_value)
        );
    }
}
