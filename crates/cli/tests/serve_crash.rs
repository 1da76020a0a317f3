//! `syncline serve` as a process: killed with SIGKILL in the middle of a burst of 10,000
//! webhooks and started again, every acknowledged event ends up applied exactly once; SIGTERM
//! stops it gracefully.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use syncline_connectors::parity::{compare_active, expected_hashes};
use syncline_connectors::pipedrive::stored_field_names;
use syncline_connectors::SynclineConfig;
use syncline_destinations::open_destination;
use syncline_simulator::{BasicAuth, ChangeMix, Connector, Entity, Simulator, SimulatorConfig};
use syncline_state::{open_state_store, StateStore};

const BURST: usize = 10_000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn_server(config: &std::path::Path, port: u16, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args([
            "serve",
            "--config",
            &config.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("syncline serve starts")
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("syncline serve did not become ready");
}

async fn inbox_pending(state: &dyn StateStore) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    state.inbox_stats(now).await.unwrap().pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_loses_and_doubles_nothing() {
    let port = free_port();
    let mut simulator_config = SimulatorConfig::for_connector(Connector::Pipedrive);
    simulator_config.seed = 11;
    simulator_config.change_spacing_ms = 50;
    simulator_config.webhooks.pipedrive_basic_auth = Some(BasicAuth {
        username: "hook".into(),
        password: "hook-password-0123456".into(),
    });
    // Deliveries that meet the dead server are retried long enough to reach the restarted one.
    simulator_config.webhooks.retry_schedule_secs = Some(vec![0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]);
    simulator_config.webhooks.ban_after_failures = None;
    simulator_config.change_mix = ChangeMix {
        create: 0.25,
        update: 0.6,
        delete: 0.1,
        merge: 0.0,
        deactivate_user: 0.02,
    };
    let simulator = Simulator::start(simulator_config).await.unwrap();
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("syncline.toml");
    let log_path = dir.path().join("serve.log");
    let text = format!(
        r#"
[destination]
url = "duckdb://{dir}/warehouse.duckdb"
[state]
url = "sqlite://{dir}/state.db"
[server]
scheduler = false
[sources.crm]
connector = "pipedrive"
base_url = "{base}"
auth = {{ type = "api_token", token = "{token}" }}
[sources.crm.webhook]
verify = {{ type = "basic", username = "hook", password = "hook-password-0123456" }}
"#,
        dir = dir.path().display(),
        base = credentials.api_base_url,
        token = credentials.api_token.clone().unwrap(),
    );
    std::fs::write(&config_path, &text).unwrap();
    let initial = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["sync", "--config", &config_path.display().to_string(), "--mode", "full"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(initial.status.success(), "{}", String::from_utf8_lossy(&initial.stderr));

    let client = reqwest::Client::new();
    let mut server = spawn_server(&config_path, port, &log_path);
    wait_ready(&client, port).await;
    simulator
        .set_webhook_target(Some(format!("http://127.0.0.1:{port}/webhooks/crm")))
        .unwrap();
    simulator.step_changes(BURST);

    // Kill it once a good part of the burst is acknowledged (and the worker is busy).
    let deadline = Instant::now() + Duration::from_secs(120);
    while simulator.stats().webhooks.delivered < (BURST as u64) / 3 {
        assert!(Instant::now() < deadline, "deliveries stalled: {:?}", simulator.stats().webhooks);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL");
    let killed = server.wait().unwrap();
    assert!(!killed.success());
    let acknowledged_before_kill = simulator.stats().webhooks.delivered;
    assert!(acknowledged_before_kill < BURST as u64, "the kill came after the burst");

    let mut server = spawn_server(&config_path, port, &log_path);
    wait_ready(&client, port).await;
    simulator.flush_webhooks().await;
    let stats = simulator.stats().webhooks;
    assert_eq!(stats.gave_up, 0, "{stats:?}");
    assert!(stats.failed_attempts > 0, "some deliveries met the dead server: {stats:?}");

    let config = SynclineConfig::parse_with_env(&text, |_| None).unwrap();
    let state: Arc<dyn StateStore> = Arc::from(open_state_store(&config.state.url.parse().unwrap()).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(180);
    while inbox_pending(state.as_ref()).await > 0 {
        assert!(Instant::now() < deadline, "the restarted server did not drain the inbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SIGTERM: a graceful, prompt exit with status 0.
    let stopped = Instant::now();
    let term = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
    assert!(stopped.elapsed() < Duration::from_secs(10));

    let inbox = state.inbox_stats(0).await.unwrap();
    assert_eq!((inbox.pending, inbox.dead), (0, 0), "{inbox:?}");
    let destination = open_destination(&config.destination.url.parse().unwrap()).await.unwrap();
    let profile = config.history.profile();
    let mut active_per_table = BTreeMap::new();
    for name in config.sources["crm"].selected_entities() {
        let spec = config.sources["crm"].connector.entity(name).unwrap();
        let entity: Entity = serde_json::from_value(serde_json::json!(name)).unwrap();
        let names = stored_field_names(state.as_ref(), "crm", name).await.unwrap();
        let expected = expected_hashes(spec, simulator.truth(entity).unwrap(), names.as_ref()).unwrap();
        let table = config.history.table_name(name);
        let versions = destination.read_versions(&table, "id", &profile).await.unwrap();
        let parity = compare_active(&expected, &versions);
        assert_eq!(parity.mismatches(), 0, "{name}: {parity:?}");
        let check = destination.check_history(&table, "id", &profile).await.unwrap();
        assert!(check.is_clean(), "{name}: {check:?}");
        active_per_table.insert(table, parity.active);
    }
    assert!(active_per_table["deal_history"] > 0);
    simulator.shutdown().await;
}
