//! The webhook server end to end over real HTTP: a simulated upstream for the re-fetches,
//! DuckDB and SQLite in a temporary folder, the real axum app on a free port.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use syncline_connectors::parity::{compare_active, expected_hashes};
use syncline_connectors::pipedrive::stored_field_names;
use syncline_connectors::reconcile::SyncMode;
use syncline_connectors::SynclineConfig;
use syncline_destinations::{open_destination, Destination};
use syncline_server::{ServerHandle, ServerOptions, WorkerOptions};
use syncline_simulator::{ChangeMix, Connector, Entity, Simulator, SimulatorConfig, SimulatorHandle};
use syncline_state::{open_state_store, StateStore};

const HOOK_USER: &str = "hook-user";
const HOOK_PASSWORD: &str = "hook-s3cret-0123456789";
const SYNC_SECRET: &str = "sync-s3cret-0123456789";
const ZOHO_SECRET: &str = "zoho-s3cret-0123456789";

struct Env {
    simulator: SimulatorHandle,
    server: Option<ServerHandle>,
    config: SynclineConfig,
    state: Arc<dyn StateStore>,
    destination: Arc<dyn Destination>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn pipedrive_simulator() -> SimulatorConfig {
    let mut config = SimulatorConfig::for_connector(Connector::Pipedrive);
    // Before every fixture's time, so the fixtures' deletes are newer than the records.
    config.start_time = "2018-01-01T00:00:00Z".into();
    // Enough records that every id the fixtures name exists upstream.
    config.initial_records = [
        (Entity::Deal, 1_400),
        (Entity::Organization, 1_000),
        (Entity::Person, 700),
        (Entity::Pipeline, 10),
        (Entity::Stage, 50),
    ]
    .into_iter()
    .collect();
    config
}

async fn start(simulator_config: SimulatorConfig) -> Env {
    start_with(simulator_config, None).await
}

/// `zoho_verify` replaces the Zoho Desk source's `verify = {...}` line.
async fn start_with(simulator_config: SimulatorConfig, zoho_verify: Option<String>) -> Env {
    let simulator = Simulator::start(simulator_config).await.expect("simulator starts");
    let zoho_verify = zoho_verify
        .unwrap_or_else(|| format!("verify = {{ type = \"hmac\", secret = \"{ZOHO_SECRET}\", timestamp_header = \"x-zoho-timestamp\" }}"));
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let auth = match simulator.connector() {
        Connector::Halopsa => format!(
            "auth = {{ type = \"client_credentials\", token_url = \"{}\", client_id = \"{}\", client_secret = \"{}\" }}\n[sources.crm.webhook]\nverify = {{ type = \"basic\", username = \"{HOOK_USER}\", password = \"{HOOK_PASSWORD}\" }}",
            credentials.token_url, credentials.client_id, credentials.client_secret
        ),
        Connector::Pipedrive => format!(
            "auth = {{ type = \"api_token\", token = \"{}\" }}\n[sources.crm.webhook]\nverify = {{ type = \"basic\", username = \"{HOOK_USER}\", password = \"{HOOK_PASSWORD}\" }}",
            credentials.api_token.clone().unwrap()
        ),
        _ => format!(
            "org_id = \"{}\"\nauth = {{ type = \"oauth2_refresh\", token_url = \"{}\", client_id = \"{}\", client_secret = \"{}\", refresh_token = \"{}\" }}\n[sources.crm.webhook]\n{zoho_verify}",
            credentials.org_id.clone().unwrap(),
            credentials.token_url,
            credentials.client_id,
            credentials.client_secret,
            credentials.refresh_token.clone().unwrap()
        ),
    };
    let text = format!(
        r#"
[destination]
url = "duckdb://{dir}/warehouse.duckdb"
[state]
url = "sqlite://{dir}/state.db"
[server]
scheduler = false
[sources.crm]
connector = "{connector}"
base_url = "{base}"
{auth}
[sources.crm.retry]
max_attempts = 4
base_delay_ms = 1
max_delay_ms = 20
"#,
        dir = dir.path().display(),
        connector = simulator.connector().name(),
        base = credentials.api_base_url,
    );
    let config = SynclineConfig::parse_with_env(&text, |_| None).expect("config parses");
    let destination: Arc<dyn Destination> = Arc::from(open_destination(&config.destination.url.parse().unwrap()).await.unwrap());
    let state: Arc<dyn StateStore> = Arc::from(open_state_store(&config.state.url.parse().unwrap()).await.unwrap());
    let options = ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        sync_secret: Some(syncline_server::Secret::new(SYNC_SECRET)),
        worker: WorkerOptions {
            linger: Duration::from_millis(5),
            ..WorkerOptions::default()
        },
        scheduler: false,
        limits: syncline_server::ListenerLimits::default(),
    };
    let server = syncline_server::start(config.clone(), options, Arc::clone(&state), Arc::clone(&destination))
        .await
        .expect("server starts");
    Env {
        simulator,
        server: Some(server),
        config,
        state,
        destination,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

/// The vendor fixtures: `SYNCLINE_FIXTURES`, else `shared/fixtures` beside the checkout.
fn fixtures_dir() -> std::path::PathBuf {
    match std::env::var("SYNCLINE_FIXTURES") {
        Ok(dir) => dir.into(),
        Err(_) => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

/// The Basic authorization header of the Pipedrive webhook user.
fn pipedrive_auth(password: &str) -> (&'static str, String) {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{HOOK_USER}:{password}"));
    ("authorization", format!("Basic {credentials}"))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

impl Env {
    /// A full reconcile of `crm`, then the simulator's webhooks pointed at the server.
    async fn load_then_hook(&self) {
        self.server
            .as_ref()
            .unwrap()
            .sources()
            .reconcile("crm", SyncMode::Full)
            .await
            .unwrap();
        self.simulator.set_webhook_target(Some(self.url("/webhooks/crm"))).unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.as_ref().unwrap().local_addr())
    }

    async fn post(&self, path: &str, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, String) {
        let mut request = self
            .client
            .post(self.url(path))
            .body(body)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn post_pipedrive(&self, body: Vec<u8>, password: &str) -> (u16, String) {
        self.post("/webhooks/crm", body, &[pipedrive_auth(password)]).await
    }

    async fn wait_until_applied(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stats = self.state.inbox_stats(now_ms()).await.unwrap();
            if stats.pending == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "inbox not drained: {stats:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn versions(&self, entity: &str) -> Vec<syncline_destinations::StoredVersion> {
        let table = self.config.history.table_name(entity);
        let profile = self.config.history.profile();
        if self.destination.table_schema(&table, &profile).await.unwrap().is_none() {
            return Vec::new();
        }
        self.destination.read_versions(&table, "id", &profile).await.unwrap()
    }

    /// Active rows of the entity's history equal the simulator's records (all, or those ids).
    async fn assert_parity(&self, entity_name: &str, only: Option<&BTreeSet<String>>) {
        let spec = self.config.sources["crm"].connector.entity(entity_name).unwrap();
        let entity: Entity = serde_json::from_value(json!(entity_name)).unwrap();
        let names = stored_field_names(self.state.as_ref(), "crm", entity_name).await.unwrap();
        let mut expected = expected_hashes(spec, self.simulator.truth(entity).unwrap(), names.as_ref()).unwrap();
        let mut versions = self.versions(entity_name).await;
        if let Some(only) = only {
            expected.retain(|id, _| only.contains(id));
            versions.retain(|version| only.contains(&version.id));
        }
        let parity = compare_active(&expected, &versions);
        assert_eq!(parity.mismatches(), 0, "{entity_name}: {parity:?}");
        if versions.is_empty() {
            return;
        }
        let table = self.config.history.table_name(entity_name);
        let check = self
            .destination
            .check_history(&table, "id", &self.config.history.profile())
            .await
            .unwrap();
        assert!(check.is_clean(), "{entity_name}: {check:?}");
    }

    async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.simulator.shutdown().await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every Pipedrive webhook fixture, as `(file, is a delete)`.
fn pipedrive_webhook_fixtures() -> Vec<(String, bool)> {
    let dir = fixtures_dir().join("pipedrive");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("_webhook_"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let delete = name.contains("_delete_");
            (format!("pipedrive/{name}"), delete)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_fixture_webhooks_become_history_rows() {
    let env = start(pipedrive_simulator()).await;
    let fixtures = pipedrive_webhook_fixtures();
    assert!(fixtures.len() >= 14, "{fixtures:?}");
    let mut touched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, delete) in fixtures.iter().filter(|(_, delete)| !delete) {
        let body = fixture(name);
        let (status, answer) = env.post_pipedrive(body.clone(), HOOK_PASSWORD).await;
        assert_eq!(status, 200, "{name}: {answer}");
        assert!(!delete);
        let value: Value = serde_json::from_slice(&body).unwrap();
        let meta = &value["meta"];
        let entity = meta["entity"].as_str().or(meta["object"].as_str()).unwrap().to_string();
        let id_value = if meta["entity_id"].is_null() {
            &meta["id"]
        } else {
            &meta["entity_id"]
        };
        let id = id_value.as_str().map(str::to_string).unwrap_or_else(|| id_value.to_string());
        touched.entry(entity).or_default().insert(id);
    }
    env.wait_until_applied().await;
    // Each record a fixture names is in its history table as the API has it now (re-fetched,
    // not taken from the payload)...
    for (entity, ids) in &touched {
        let upstream: BTreeSet<String> = env
            .simulator
            .truth(serde_json::from_value(json!(entity)).unwrap())
            .unwrap()
            .iter()
            .map(|record| record["id"].to_string())
            .collect();
        let known: BTreeSet<String> = ids.intersection(&upstream).cloned().collect();
        env.assert_parity(entity, Some(&known)).await;
        let active: BTreeSet<String> = env
            .versions(entity)
            .await
            .into_iter()
            .filter(|version| version.active)
            .map(|version| version.id)
            .collect();
        assert_eq!(active, known, "{entity}");
    }
    // ...and a user the API does not know (deleted, per its fixture) has no row.
    assert!(env.versions("user").await.iter().all(|version| version.id != "15702024"));

    // A delete is confirmed by a detail GET before it closes a record: the API still has deal 8
    // and organization 1, so the fixture deletes leave them active (a forged or mistaken delete
    // closes nothing).
    for (name, _) in fixtures.iter().filter(|(_, delete)| *delete) {
        let (status, answer) = env.post_pipedrive(fixture(name), HOOK_PASSWORD).await;
        assert_eq!(status, 200, "{name}: {answer}");
    }
    env.wait_until_applied().await;
    let deal_8: Vec<_> = env.versions("deal").await.into_iter().filter(|version| version.id == "8").collect();
    assert_eq!(deal_8.iter().filter(|version| version.active).count(), 1, "{deal_8:?}");
    assert_eq!(
        env.versions("organization")
            .await
            .iter()
            .filter(|version| version.id == "1" && version.active)
            .count(),
        1
    );
    // A replayed delivery (same delivery id) is absorbed.
    let (status, answer) = env
        .post_pipedrive(fixture("pipedrive/v2_webhook_delete_deal.json"), HOOK_PASSWORD)
        .await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["duplicates"], 1, "{answer}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_are_refused_and_store_nothing() {
    let env = start(pipedrive_simulator()).await;
    let body = fixture("pipedrive/v2_webhook_change_deal.json");
    let (status, answer) = env.post_pipedrive(body.clone(), "wrong-password").await;
    assert_eq!((status, answer.as_str()), (401, ""), "a 401 carries no detail");
    let (status, _) = env.post("/webhooks/crm", body.clone(), &[]).await;
    assert_eq!(status, 401);
    let mut oversized = b"{\"meta\":{\"action\":\"change\",\"entity\":\"deal\"},\"pad\":\"".to_vec();
    oversized.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    oversized.extend(b"\"}");
    let (name, value) = pipedrive_auth(HOOK_PASSWORD);
    let answer = env
        .client
        .post(env.url("/webhooks/crm"))
        .header(name, value)
        .body(oversized)
        .send()
        .await;
    match answer {
        Ok(response) => assert_eq!(response.status().as_u16(), 413),
        // The server answered 413 and closed the connection while the body was still being
        // sent; the rejection metric below shows it was refused as too large.
        Err(error) => assert!(error.is_request(), "{error}"),
    }
    let (status, answer) = env.post_pipedrive(b"{\"meta\": [not json".to_vec(), HOOK_PASSWORD).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("not JSON"), "{answer}");
    let (status, _) = env.post("/webhooks/nobody", body.clone(), &[]).await;
    assert_eq!(status, 404);
    let stats = env.state.inbox_stats(now_ms()).await.unwrap();
    assert_eq!((stats.pending, stats.done, stats.dead), (0, 0, 0), "nothing stored");

    // An entity the connector does not sync is acknowledged, logged and counted.
    let activity = json!({
        "v": 1,
        "meta": {"v": 1, "action": "updated", "object": "activity", "id": 77, "timestamp": 1700000000},
        "current": {"id": 77, "subject": "call"},
        "previous": {"id": 77, "subject": "call"}
    });
    let (status, answer) = env.post_pipedrive(serde_json::to_vec(&activity).unwrap(), HOOK_PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    let metrics = env.client.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("syncline_webhook_unknown_entity_total{source=\"crm\"} 1"),
        "{metrics}"
    );
    for reason in ["unauthorized\"} 2", "too_large\"} 1", "malformed\"} 1"] {
        assert!(
            metrics.contains(&format!("syncline_webhooks_rejected_total{{source=\"crm\",reason=\"{reason}")),
            "{reason}: {metrics}"
        );
    }
    assert!(metrics.contains("reason=\"unknown_source\"} 1"), "{metrics}");
    assert!(metrics.contains("syncline_inbox_depth 0"), "{metrics}");
    assert!(!metrics.contains(HOOK_PASSWORD));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_needs_the_secret_and_reports_the_run() {
    let env = start(pipedrive_simulator()).await;
    let (status, _) = env.post("/sync?mode=incremental", Vec::new(), &[]).await;
    assert_eq!(status, 401);
    let (status, _) = env.post("/sync", Vec::new(), &[("x-sync-secret", "nope".into())]).await;
    assert_eq!(status, 401);
    let (status, answer) = env
        .post("/sync?mode=sideways", Vec::new(), &[("x-sync-secret", SYNC_SECRET.into())])
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = env
        .post("/sync?mode=full&source=crm", Vec::new(), &[("x-sync-secret", SYNC_SECRET.into())])
        .await;
    assert_eq!(status, 200, "{answer}");
    let report: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(report["sources"][0]["status"], "ok");
    let deals = report["sources"][0]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entity| entity["entity"] == "deal")
        .unwrap()
        .clone();
    assert_eq!(deals["new_versions"], 1_400);
    env.assert_parity("deal", None).await;
    let health = env.client.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_reordered_and_late_webhooks_leave_no_phantom_versions() {
    let mut simulator_config = SimulatorConfig::for_connector(Connector::Pipedrive);
    simulator_config.seed = 7;
    simulator_config.change_spacing_ms = 400;
    simulator_config.webhooks.pipedrive_basic_auth = Some(syncline_simulator::BasicAuth {
        username: HOOK_USER.into(),
        password: HOOK_PASSWORD.into(),
    });
    simulator_config.webhooks.retry_scale = 0.001;
    simulator_config.faults.webhook_duplicate_rate = 0.2;
    simulator_config.faults.webhook_reorder_rate = 0.2;
    simulator_config.faults.webhook_delay_rate = 0.05;
    simulator_config.faults.webhook_delay_ms = 300;
    simulator_config.change_mix = ChangeMix {
        create: 0.2,
        update: 0.6,
        delete: 0.15,
        merge: 0.0,
        deactivate_user: 0.05,
    };
    let env = start(simulator_config).await;
    env.load_then_hook().await;
    for _ in 0..6 {
        env.simulator.step_changes(50);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    env.simulator.flush_webhooks().await;
    env.wait_until_applied().await;
    let stats = env.simulator.stats().webhooks;
    assert!(stats.duplicated > 10 && stats.reordered > 10, "{stats:?}");
    assert_eq!(stats.gave_up, 0, "{stats:?}");
    for entity in env.config.sources["crm"].selected_entities() {
        env.assert_parity(entity, None).await;
    }
    env.shutdown().await;
}

fn zoho_signature(timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(ZOHO_SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_outside_the_replay_window_are_refused() {
    let env = start(SimulatorConfig::for_connector(Connector::ZohoDesk)).await;
    let ticket = env.simulator.truth(Entity::Ticket).unwrap()[0].clone();
    let body = serde_json::to_vec(&json!([{
        "eventType": "Ticket_Update",
        "orgId": env.simulator.credentials().org_id,
        "eventTime": now_ms().to_string(),
        "payload": ticket,
    }]))
    .unwrap();
    let now = now_ms() / 1000;
    let signed = |timestamp: i64| {
        vec![
            ("x-zoho-timestamp", timestamp.to_string()),
            ("x-webhook-signature", zoho_signature(timestamp, &body)),
        ]
    };
    let (status, _) = env.post("/webhooks/crm", body.clone(), &signed(now - 3_600)).await;
    assert_eq!(status, 401, "an hour-old signature is a replay");
    let mut forged = signed(now);
    forged[1].1 = zoho_signature(now, b"[]");
    let (status, _) = env.post("/webhooks/crm", body.clone(), &forged).await;
    assert_eq!(status, 401);
    assert_eq!(env.state.inbox_stats(now_ms()).await.unwrap().pending, 0);
    let (status, answer) = env.post("/webhooks/crm", body.clone(), &signed(now)).await;
    assert_eq!(status, 200, "{answer}");
    env.wait_until_applied().await;
    let id = ticket["id"].as_str().unwrap().to_string();
    env.assert_parity("ticket", Some(&BTreeSet::from([id]))).await;

    // A new thread (unknown to the index) is re-fetched under the ticket its payload names.
    env.simulator
        .apply_change(&syncline_simulator::ChangeRequest::Create { entity: Entity::Thread })
        .unwrap();
    let threads = env.simulator.truth(Entity::Thread).unwrap();
    let thread = threads
        .iter()
        .max_by_key(|thread| thread["id"].as_str().unwrap().parse::<u64>().unwrap())
        .unwrap()
        .clone();
    let body = serde_json::to_vec(&json!([{
        "eventType": "Ticket_Thread_Add",
        "orgId": env.simulator.credentials().org_id,
        "eventTime": now_ms().to_string(),
        "payload": thread,
    }]))
    .unwrap();
    let now = now_ms() / 1000;
    let headers = vec![
        ("x-zoho-timestamp", now.to_string()),
        ("x-webhook-signature", zoho_signature(now, &body)),
    ];
    let (status, answer) = env.post("/webhooks/crm", body, &headers).await;
    assert_eq!(status, 200, "{answer}");
    env.wait_until_applied().await;
    let thread_id = thread["id"].as_str().unwrap().to_string();
    env.assert_parity("thread", Some(&BTreeSet::from([thread_id.clone()]))).await;
    assert!(env
        .versions("thread")
        .await
        .iter()
        .any(|version| version.id == thread_id && version.active));
    env.shutdown().await;
}

/// Pipedrive's user-deactivation example carries the user's id as `meta.id`: two later changes
/// of that user with the same `meta.id` are new events, while a retry of one is absorbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_changes_with_the_same_pipedrive_meta_id_are_not_swallowed() {
    let env = start(pipedrive_simulator()).await;
    let original: Value = serde_json::from_slice(&fixture("pipedrive/v2_webhook_user_deleted_is_change_active_flag_false.json")).unwrap();
    let first_stamp = original["meta"]["timestamp"].as_i64().unwrap();
    let mut bodies = vec![original.clone()];
    for later in [60, 120] {
        let mut body = original.clone();
        body["meta"]["timestamp"] = json!(first_stamp + later);
        assert_eq!(body["meta"]["id"], original["meta"]["id"]);
        bodies.push(body);
    }
    for body in &bodies {
        let (status, answer) = env.post_pipedrive(serde_json::to_vec(body).unwrap(), HOOK_PASSWORD).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["duplicates"], 0, "{answer}");
    }
    // A retry (only `meta.attempt` changes) of the second delivery is absorbed.
    let mut retry = bodies[1].clone();
    retry["meta"]["attempt"] = json!(2);
    let (status, answer) = env.post_pipedrive(serde_json::to_vec(&retry).unwrap(), HOOK_PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["duplicates"], 1, "{answer}");
    env.wait_until_applied().await;
    env.shutdown().await;
}

/// A v2 merge: the merged-away person is closed (the detail GET answers 404), the survivor is
/// re-fetched with its new update_time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipedrive_person_merge_closes_the_merged_away_record() {
    let mut simulator_config = pipedrive_simulator();
    simulator_config.webhooks.pipedrive_basic_auth = Some(syncline_simulator::BasicAuth {
        username: HOOK_USER.into(),
        password: HOOK_PASSWORD.into(),
    });
    let env = start(simulator_config).await;
    env.load_then_hook().await;
    let persons = env.simulator.truth(Entity::Person).unwrap();
    let loser = persons[0]["id"].as_u64().unwrap();
    let winner = persons[1]["id"].as_u64().unwrap();
    let before_update = persons[1]["update_time"].clone();
    let events = env
        .simulator
        .apply_change(&syncline_simulator::ChangeRequest::Merge {
            entity: Entity::Person,
            id: loser,
            into: winner,
        })
        .unwrap();
    assert!(events.iter().any(|event| event.merged_into == Some(winner)));
    env.simulator.flush_webhooks().await;
    env.wait_until_applied().await;
    let after = env.simulator.truth(Entity::Person).unwrap();
    assert!(
        after.iter().all(|record| record["id"] != json!(loser)),
        "the merged-away person left the api"
    );
    let survivor = after.iter().find(|record| record["id"] == json!(winner)).unwrap();
    assert_ne!(survivor["update_time"], before_update, "the survivor's update_time moves");
    let versions = env.versions("person").await;
    let loser_versions: Vec<_> = versions.iter().filter(|version| version.id == loser.to_string()).collect();
    assert!(!loser_versions.is_empty());
    assert!(loser_versions.iter().all(|version| !version.active), "{loser_versions:?}");
    env.assert_parity("person", None).await;
    env.shutdown().await;
}

/// A `change` webhook whose re-fetch answers `is_deleted: true` (the person was deleted
/// upstream since) closes the record instead of writing an active deleted version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipedrive_webhook_refetched_as_deleted_closes_the_record() {
    let env = start(pipedrive_simulator()).await;
    env.server
        .as_ref()
        .unwrap()
        .sources()
        .reconcile("crm", SyncMode::Full)
        .await
        .unwrap();
    let body = fixture("pipedrive/v2_webhook_change_person.json");
    let id = serde_json::from_slice::<Value>(&body).unwrap()["meta"]["entity_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env
        .versions("person")
        .await
        .iter()
        .any(|version| version.id == id && version.active));
    env.simulator
        .apply_change(&syncline_simulator::ChangeRequest::Delete {
            entity: Entity::Person,
            id: id.parse().unwrap(),
        })
        .unwrap();
    let (status, answer) = env.post_pipedrive(body, HOOK_PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    env.wait_until_applied().await;
    let rows: Vec<_> = env
        .versions("person")
        .await
        .into_iter()
        .filter(|version| version.id == id)
        .collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|version| !version.active), "{rows:?}");
    env.assert_parity("person", None).await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Zoho Desk's own webhook authentication: the RS256 JWT in `X-ZDesk-JWT`.

use syncline_simulator::zoho_desk::jwt as sim_jwt;

/// A Zoho Desk server verified with `zoho_jwt`; the key set is found at the default URL (the
/// simulator's host, from base_url).
async fn start_zoho_jwt() -> Env {
    let config = SimulatorConfig::for_connector(Connector::ZohoDesk);
    let webhook_id = config.webhooks.zoho_webhook_id.clone();
    start_with(
        config,
        Some(format!("verify = {{ type = \"zoho_jwt\", webhook_id = \"{webhook_id}\" }}")),
    )
    .await
}

fn zoho_body(env: &Env, ticket: &Value, event_time: i64) -> Vec<u8> {
    serde_json::to_vec(&json!([{
        "eventType": "Ticket_Update",
        "orgId": env.simulator.credentials().org_id,
        "eventTime": event_time.to_string(),
        "payload": ticket,
    }]))
    .unwrap()
}

fn zoho_token(key: usize, iss: &str, aud: &str, iat: i64, exp: i64) -> Vec<(&'static str, String)> {
    let claims = json!({"iss": iss, "aud": aud, "iat": iat, "exp": exp});
    vec![("x-zdesk-jwt", sim_jwt::sign_with(key, &claims).unwrap())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_jwt_get_handshake_answers_200() {
    let env = start_zoho_jwt().await;
    let response = env.client.get(env.url("/webhooks/crm")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = env.client.get(env.url("/webhooks/nope")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    env.shutdown().await;
    // A source verified otherwise keeps refusing GETs.
    let env = start(SimulatorConfig::for_connector(Connector::ZohoDesk)).await;
    let response = env.client.get(env.url("/webhooks/crm")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_jwt_refuses_expired_wrong_audience_wrong_issuer_and_unknown_keys() {
    let env = start_zoho_jwt().await;
    let org = env.simulator.credentials().org_id.unwrap();
    let webhook_id = env.simulator.config().webhooks.zoho_webhook_id.clone();
    let (iss, aud) = (format!("orgId:{org}"), format!("webhookId:{webhook_id}"));
    let ticket = env.simulator.truth(Entity::Ticket).unwrap()[0].clone();
    let now = now_ms() / 1000;
    let body = zoho_body(&env, &ticket, now_ms());
    let refused = [
        ("no token", vec![]),
        ("expired", zoho_token(0, &iss, &aud, now - 3_600, now - 600)),
        // Milliseconds are read as milliseconds: expired 10 minutes ago.
        ("expired (ms)", zoho_token(0, &iss, &aud, (now - 3_600) * 1000, (now - 600) * 1000)),
        ("wrong aud", zoho_token(0, &iss, "webhookId:999", now, now + 300)),
        ("wrong iss", zoho_token(0, "orgId:1", &aud, now, now + 300)),
        ("issued in the future", zoho_token(0, &iss, &aud, now + 3_600, now + 4_000)),
        // Key 3 is never published by the simulator before two rotations.
        ("unknown kid", zoho_token(2, &iss, &aud, now, now + 300)),
    ];
    for (case, headers) in refused {
        let (status, answer) = env.post("/webhooks/crm", body.clone(), &headers).await;
        assert_eq!(status, 401, "{case}: {answer}");
        assert!(answer.is_empty(), "{case}: a refusal gives no detail: {answer}");
    }
    // A signature from another key under the published kid.
    let mut forged = zoho_token(1, &iss, &aud, now, now + 300);
    let good = zoho_token(0, &iss, &aud, now, now + 300);
    let (good_header, _) = good[0].1.split_once('.').unwrap();
    let (_, rest) = forged[0].1.split_once('.').unwrap();
    forged[0].1 = format!("{good_header}.{rest}");
    let (status, _) = env.post("/webhooks/crm", body.clone(), &forged).await;
    assert_eq!(status, 401, "a signature by another key");
    assert_eq!(env.state.inbox_stats(now_ms()).await.unwrap().pending, 0);
    // Within the skew allowance, in milliseconds: accepted.
    let (status, answer) = env
        .post(
            "/webhooks/crm",
            body.clone(),
            &zoho_token(0, &iss, &aud, now * 1000, (now - 30) * 1000),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["stored"], 1);
    // The same event redelivered (a new token, batched with another) dedupes; a later change
    // of the same ticket does not.
    let first: Value = serde_json::from_slice(&body).unwrap();
    let later: Value = serde_json::from_slice(&zoho_body(&env, &ticket, now_ms() + 1_000)).unwrap();
    let batch = serde_json::to_vec(&json!([first[0], later[0]])).unwrap();
    let (status, answer) = env.post("/webhooks/crm", batch, &good).await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (answer["stored"].as_u64(), answer["duplicates"].as_u64()),
        (Some(1), Some(1)),
        "{answer}"
    );
    env.wait_until_applied().await;
    let id = ticket["id"].as_str().unwrap().to_string();
    env.assert_parity("ticket", Some(&BTreeSet::from([id]))).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_jwt_simulator_deliveries_are_accepted_across_a_key_rotation() {
    let env = start_zoho_jwt().await;
    env.load_then_hook().await;
    let delivered = |env: &Env| {
        let log = env.simulator.webhook_log();
        let ok = log
            .iter()
            .filter(|entry| entry.status == syncline_simulator::DeliveryStatus::Delivered)
            .count();
        (ok, log.len())
    };
    env.simulator.step_changes(5);
    env.simulator.flush_webhooks().await;
    let (ok, all) = delivered(&env);
    assert!(all >= 5 && ok == all, "signed deliveries are accepted: {ok} of {all}");
    // Rotate: the next deliveries name a kid the server has not seen; it refetches the JWKS.
    let old = env.simulator.zoho_key_id();
    let new = env.simulator.rotate_zoho_key();
    assert_ne!(old, new);
    env.simulator.step_changes(5);
    env.simulator.flush_webhooks().await;
    let (ok, all) = delivered(&env);
    assert!(ok == all, "deliveries after the rotation are accepted: {ok} of {all}");
    env.wait_until_applied().await;
    for entity in env.config.sources["crm"].selected_entities() {
        env.assert_parity(entity, None).await;
    }
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// HaloPSA: the live delivery shape (`event`, `object_id`, the object nested under its type),
// event-only payloads and batched arrays; partial list rows reconciled without phantoms.

const HALO_ENTITIES: [&str; 4] = ["client", "ticket", "invoice", "quotation"];

fn halopsa_simulator() -> SimulatorConfig {
    let mut config = SimulatorConfig::for_connector(Connector::Halopsa);
    config.seed = 31;
    config.webhooks.halopsa_auth = syncline_simulator::HaloWebhookAuth::Basic {
        username: HOOK_USER.into(),
        password: HOOK_PASSWORD.into(),
    };
    config.webhooks.retry_scale = 0.001;
    config.initial_records = [
        (Entity::Client, 8),
        (Entity::Ticket, 30),
        (Entity::Invoice, 15),
        (Entity::Quotation, 10),
    ]
    .into_iter()
    .collect();
    config
}

/// One element in the live delivery's shape (the fixture's fields), about `record` of `entity`.
fn halopsa_element(entity: &str, record: &Value, guid: &str) -> Value {
    let mut element: Value = serde_json::from_slice(&fixture("halopsa/webhook_ticket_status_changed_live.json")).unwrap();
    let fields = element.as_object_mut().unwrap();
    fields.remove("ticket");
    fields.insert("id".into(), json!(guid));
    fields.insert("event".into(), json!(format!("{entity} updated")));
    fields.insert("object_id".into(), record["id"].clone());
    fields.insert(entity.into(), record.clone());
    element
}

impl Env {
    async fn post_halopsa(&self, body: &Value) -> (u16, Value) {
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{HOOK_USER}:{HOOK_PASSWORD}"));
        let (status, answer) = self
            .post(
                "/webhooks/crm",
                serde_json::to_vec(body).unwrap(),
                &[("authorization", format!("Basic {credentials}"))],
            )
            .await;
        (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
    }

    async fn reconcile(&self, mode: SyncMode) -> Vec<syncline_connectors::EntityReport> {
        let reports = self.server.as_ref().unwrap().sources().reconcile("crm", mode).await.unwrap();
        for report in &reports {
            assert!(report.error.is_none(), "{report:?}");
        }
        reports
    }

    /// History rows per entity.
    async fn version_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entity in HALO_ENTITIES {
            counts.insert(entity.to_string(), self.versions(entity).await.len());
        }
        counts
    }

    async fn assert_halopsa_parity(&self) {
        for entity in HALO_ENTITIES {
            self.assert_parity(entity, None).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_reconcile_then_webhook_of_unchanged_records_writes_no_version() {
    let env = start(halopsa_simulator()).await;
    env.load_then_hook().await;
    // The full reconcile wrote the detail records (list rows are partial): parity with the API.
    env.assert_halopsa_parity().await;
    let loaded = env.version_counts().await;

    // Every record, unchanged upstream, touched by a webhook of the live shape (one batch).
    let mut elements = Vec::new();
    for entity in HALO_ENTITIES {
        let records = env.simulator.truth(serde_json::from_value(json!(entity)).unwrap()).unwrap();
        for record in &records {
            let guid = format!("00000000-0000-4000-8000-{:012}", elements.len());
            elements.push(halopsa_element(entity, record, &guid));
        }
    }
    let (status, answer) = env.post_halopsa(&Value::Array(elements.clone())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"].as_u64(), Some(elements.len() as u64), "{answer}");
    env.wait_until_applied().await;
    assert_eq!(
        env.version_counts().await,
        loaded,
        "a webhook of an unchanged record writes no version"
    );

    // Reconciling the same records fetches no detail and writes nothing.
    for mode in [SyncMode::Incremental, SyncMode::Full] {
        for report in env.reconcile(mode).await {
            assert_eq!(
                (report.new_versions, report.closed, report.deleted, report.fetched),
                (0, 0, 0, 0),
                "{mode:?}: {report:?}"
            );
        }
    }

    // Changes delivered by the simulator's webhooks, then reconciled: the reconciler finds the
    // webhook path's rows identical (same shape, same hash) and writes nothing more.
    env.simulator.step_changes(40);
    env.simulator.flush_webhooks().await;
    env.wait_until_applied().await;
    let hooked = env.version_counts().await;
    assert_ne!(hooked, loaded);
    env.assert_halopsa_parity().await;
    for mode in [SyncMode::Incremental, SyncMode::Full] {
        for report in env.reconcile(mode).await {
            assert_eq!(
                (report.new_versions, report.closed, report.deleted, report.fetched),
                (0, 0, 0, 0),
                "{mode:?} after the webhooks: {report:?}"
            );
        }
    }
    assert_eq!(env.version_counts().await, hooked);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_batched_deliveries_land_as_rows() {
    let mut config = halopsa_simulator();
    config.webhooks.halopsa_batch_size = 6;
    let env = start(config).await;
    env.load_then_hook().await;
    let loaded = env.version_counts().await;
    let events = env.simulator.step_changes(60);
    env.simulator.flush_webhooks().await;
    env.wait_until_applied().await;
    let log = env.simulator.webhook_log();
    assert!(log.iter().any(|entry| entry.events.len() > 1), "deliveries are batched");
    assert_eq!(log.iter().map(|entry| entry.events.len()).sum::<usize>(), events.len());
    assert!(log
        .iter()
        .all(|entry| entry.status == syncline_simulator::DeliveryStatus::Delivered));
    assert_ne!(env.version_counts().await, loaded);
    env.assert_halopsa_parity().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_event_only_deliveries_are_refetched_by_object_id() {
    let mut config = halopsa_simulator();
    config.webhooks.halopsa_payload = syncline_simulator::HaloPayload::EventOnly;
    let env = start(config).await;
    env.load_then_hook().await;
    let details_before = env.simulator.stats().api.calls;
    let events = env.simulator.step_changes(40);
    env.simulator.flush_webhooks().await;
    env.wait_until_applied().await;
    // The bodies carried no record: every row comes from the re-fetch by `object_id`.
    assert!(env.simulator.stats().api.calls > details_before);
    let changed: BTreeSet<(String, String)> = events
        .iter()
        .map(|event| (event.entity.name().to_string(), event.id.to_string()))
        .collect();
    for (entity, id) in &changed {
        let versions: Vec<_> = env.versions(entity).await.into_iter().filter(|version| &version.id == id).collect();
        assert!(!versions.is_empty(), "{entity} {id} was written");
    }
    env.assert_halopsa_parity().await;

    // A hand-made event-only delivery for a record changed while webhooks were off.
    env.simulator.set_webhook_target(None).unwrap();
    let ticket = env.simulator.truth(Entity::Ticket).unwrap()[0].clone();
    let id = ticket["id"].as_u64().unwrap();
    env.simulator
        .apply_change(&syncline_simulator::ChangeRequest::Update {
            entity: Entity::Ticket,
            id,
        })
        .unwrap();
    let body = json!({"id": "5f1c7c0e-0000-4000-8000-000000000001", "event": "ticket updated", "object_id": id, "webhook_id": "w"});
    let (status, answer) = env.post_halopsa(&body).await;
    assert_eq!((status, answer["stored"].as_u64()), (200, Some(1)), "{answer}");
    env.wait_until_applied().await;
    env.assert_parity("ticket", None).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_unknown_events_are_acknowledged_and_counted() {
    let env = start(halopsa_simulator()).await;
    let ticket = env.simulator.truth(Entity::Ticket).unwrap()[0].clone();
    let batch = json!([
        {"id": "7d0e0d47-0000-4000-8000-000000000001", "event": "asset updated", "object_id": 77, "webhook_id": "w", "asset": {"id": 77}},
        {"id": "7d0e0d47-0000-4000-8000-000000000002", "event": "ticket updated", "object_id": ticket["id"], "webhook_id": "w"},
    ]);
    let (status, answer) = env.post_halopsa(&batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["stored"].as_u64(), answer["ignored"].as_u64()),
        (Some(1), Some(1)),
        "{answer}"
    );
    // A long made-up event name is acknowledged too, and never becomes a label.
    let long_name = format!("custom {}", "z".repeat(5_000));
    let (status, answer) = env
        .post_halopsa(&json!({"id": "7d0e0d47-0000-4000-8000-000000000003", "event": long_name, "object_id": 1}))
        .await;
    assert_eq!((status, answer["ignored"].as_u64()), (200, Some(1)), "{answer}");
    env.wait_until_applied().await;
    let metrics = env.client.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("syncline_webhook_unknown_entity_total{source=\"crm\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("zzzz") && !metrics.contains("asset"), "event names are no labels");
    let id = ticket["id"].to_string();
    env.assert_parity("ticket", Some(&BTreeSet::from([id]))).await;
    env.shutdown().await;
}
