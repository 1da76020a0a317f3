//! Freshness and isolation end to end over real HTTP (issue 10): the simulator as the upstream
//! (it also delivers the webhooks), the real server on a free port, DuckDB and SQLite in a
//! temporary folder.
//!
//! - webhooks are applied while a long full reconcile runs;
//! - one record whose detail GET answers 403 among 1,000 events is dead-lettered alone;
//! - a DuckDB file held by another process dead-letters nothing, and everything is applied
//!   once it is released (the lock lasts `LOCK_SECONDS`, not a minute: the worker's behaviour
//!   is the same for any length, a deferral never counts an attempt);
//! - a worker panic restarts it (`/readyz` is 503 meanwhile) and loses nothing;
//! - a forged delete dated in the year 5000 leaves the record active;
//! - a listing that loses rows between pages closes no id that exists upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use syncline_connectors::parity::expected_hashes;
use syncline_connectors::pipedrive::stored_field_names;
use syncline_connectors::reconcile::SyncMode;
use syncline_connectors::SynclineConfig;
use syncline_destinations::{Destination, DuckDbDestination, LockRetry};
use syncline_server::worker::BatchHook;
use syncline_server::{ServerHandle, ServerOptions, WorkerOptions};
use syncline_simulator::{ChangeRequest, Connector, Entity, Simulator, SimulatorConfig, SimulatorHandle};
use syncline_state::{open_state_store, StateStore};

const HOOK_USER: &str = "hook-user";
const HOOK_PASSWORD: &str = "hook-s3cret-long-enough";

/// How long the other process holds the warehouse file.
const LOCK_SECONDS: u64 = 6;

/// The child process that holds the DuckDB file (see `hold_the_warehouse_file_when_asked`).
const HOLD_ENV: &str = "SYNCLINE_TEST_HOLD_DUCKDB";

struct Env {
    simulator: SimulatorHandle,
    server: Option<ServerHandle>,
    config: SynclineConfig,
    state: Arc<dyn StateStore>,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

fn now_ms() -> i64 {
    syncline_connectors::reconcile::wall_clock_ms()
}

fn pipedrive(deals: usize) -> SimulatorConfig {
    let mut config = SimulatorConfig::for_connector(Connector::Pipedrive);
    config.initial_records = [(Entity::Deal, deals), (Entity::Pipeline, 2), (Entity::Stage, 8)]
        .into_iter()
        .collect();
    config.webhooks.pipedrive_basic_auth = Some(syncline_simulator::config::BasicAuth {
        username: HOOK_USER.into(),
        password: HOOK_PASSWORD.into(),
    });
    config.webhooks.retry_scale = 0.001;
    config
}

async fn start(simulator_config: SimulatorConfig, source_extra: &str, worker: WorkerOptions) -> Env {
    let simulator = Simulator::start(simulator_config).await.expect("simulator starts");
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let (auth, entities) = match simulator.connector() {
        Connector::Pipedrive => (
            format!(
                "auth = {{ type = \"api_token\", token = \"{}\" }}\n[sources.crm.webhook]\nverify = {{ type = \"basic\", username = \"{HOOK_USER}\", password = \"{HOOK_PASSWORD}\" }}",
                credentials.api_token.clone().unwrap()
            ),
            "[\"deal\"]",
        ),
        _ => (
            format!(
                "auth = {{ type = \"client_credentials\", token_url = \"{}\", client_id = \"{}\", client_secret = \"{}\" }}",
                credentials.token_url, credentials.client_id, credentials.client_secret
            ),
            "[\"ticket\"]",
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
entities = {entities}
{source_extra}
{auth}
[sources.crm.retry]
max_attempts = 3
base_delay_ms = 1
max_delay_ms = 20
"#,
        dir = dir.path().display(),
        connector = simulator.connector().name(),
        base = credentials.api_base_url,
    );
    let config = SynclineConfig::parse_with_env(&text, |_| None).expect("config parses");
    // Fail fast on a held file, so the worker's own deferral is what waits out the lock.
    let destination: Arc<dyn Destination> = Arc::new(DuckDbDestination::new(dir.path().join("warehouse.duckdb")).with_lock_retry(
        LockRetry {
            attempts: 2,
            first_wait: Duration::from_millis(20),
        },
    ));
    let state: Arc<dyn StateStore> = Arc::from(open_state_store(&config.state.url.parse().unwrap()).await.unwrap());
    let options = ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        sync_secret: None,
        worker,
        scheduler: false,
        limits: syncline_server::ListenerLimits::default(),
    };
    let server = syncline_server::start(config.clone(), options, Arc::clone(&state), destination)
        .await
        .expect("server starts");
    simulator
        .set_webhook_target(Some(format!("http://{}/webhooks/crm", server.local_addr())))
        .expect("loopback target");
    Env {
        simulator,
        server: Some(server),
        config,
        state,
        dir,
        client: reqwest::Client::new(),
    }
}

fn quick_worker() -> WorkerOptions {
    WorkerOptions {
        linger: Duration::from_millis(5),
        poll_interval: Duration::from_millis(100),
        transient_backoff: Duration::from_millis(200),
        max_transient_backoff: Duration::from_secs(2),
        ..WorkerOptions::default()
    }
}

impl Env {
    fn server(&self) -> &ServerHandle {
        self.server.as_ref().unwrap()
    }

    async fn wait_until_drained(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let stats = self.state.inbox_stats(now_ms()).await.unwrap();
            if stats.pending == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "inbox not drained: {stats:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Expected row hashes of the simulator's current records, by id.
    async fn expected(&self, entity_name: &str) -> BTreeMap<String, String> {
        let spec = self.config.sources["crm"].connector.entity(entity_name).unwrap();
        let entity: Entity = serde_json::from_value(json!(entity_name)).unwrap();
        let names = stored_field_names(self.state.as_ref(), "crm", entity_name).await.unwrap();
        expected_hashes(spec, self.simulator.truth(entity).unwrap(), names.as_ref()).unwrap()
    }

    /// Ids whose current-record index entry (written after the warehouse commit) is active with
    /// the expected content.
    async fn matching(&self, entity: &str, expected: &BTreeMap<String, String>) -> BTreeSet<String> {
        let ids: Vec<String> = expected.keys().cloned().collect();
        let current = self.state.current_versions("crm", entity, &ids).await.unwrap();
        expected
            .iter()
            .filter(|(id, hash)| {
                current
                    .get(*id)
                    .is_some_and(|version| version.end.is_none() && version.row_hash == **hash)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.simulator.shutdown().await;
    }
}

fn update(id: u64) -> ChangeRequest {
    ChangeRequest::Update { entity: Entity::Deal, id }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_applied_while_a_long_full_reconcile_runs() {
    let mut simulator = pipedrive(3_000);
    // 30 pages of 100 at 250 ms each: a reconcile of about 8 s.
    simulator.faults.list_page_delay_ms = 250;
    let env = start(simulator, "page_size = 100", quick_worker()).await;
    let sources = env.server().sources();
    let reconcile = tokio::spawn(async move { sources.reconcile("crm", SyncMode::Full).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sent = Instant::now();
    let changed: Vec<u64> = (2_001..=2_020).collect();
    for id in &changed {
        env.simulator.apply_change(&update(*id)).expect("update");
    }
    let mut expected = env.expected("deal").await;
    let wanted: BTreeSet<String> = changed.iter().map(u64::to_string).collect();
    expected.retain(|id, _| wanted.contains(id));
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.matching("deal", &expected).await.len() < expected.len() {
        assert!(Instant::now() < deadline, "webhooks not applied during the reconcile");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let applied_after = sent.elapsed();
    assert!(
        !reconcile.is_finished(),
        "the webhooks were applied only after the reconcile finished ({applied_after:?})"
    );
    assert!(applied_after < Duration::from_secs(5), "webhooks took {applied_after:?}");
    let reports = reconcile.await.unwrap().expect("not busy");
    assert!(reports.iter().all(|report| report.error.is_none()), "{reports:?}");
    env.wait_until_drained(Duration::from_secs(20)).await;
    let expected = env.expected("deal").await;
    assert_eq!(env.matching("deal", &expected).await.len(), expected.len(), "every deal in step");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_forbidden_record_among_a_thousand_events_is_dead_lettered_alone() {
    let env = start(
        pipedrive(1_000),
        "",
        WorkerOptions {
            max_attempts: 3,
            ..quick_worker()
        },
    )
    .await;
    env.simulator.set_forbidden("/api/v2/deals/500", true);
    for id in 1..=1_000 {
        env.simulator.apply_change(&update(id)).expect("update");
    }
    env.simulator.flush_webhooks().await;
    env.wait_until_drained(Duration::from_secs(60)).await;
    let dead = env.state.inbox_dead(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].event.id, "500");
    assert_eq!(dead[0].attempts, 3);
    assert!(dead[0].last_error.as_deref().unwrap_or_default().contains("403"), "{dead:?}");
    let mut expected = env.expected("deal").await;
    expected.remove("500");
    assert_eq!(expected.len(), 999);
    assert_eq!(env.matching("deal", &expected).await.len(), 999, "the other 999 are applied");
    env.shutdown().await;
}

/// Not a test of its own: the child process of `a_held_warehouse_dead_letters_nothing`, which
/// holds the DuckDB file for `LOCK_SECONDS` when run with `SYNCLINE_TEST_HOLD_DUCKDB=path`.
#[test]
fn hold_the_warehouse_file_when_asked() {
    let Ok(path) = std::env::var(HOLD_ENV) else { return };
    let connection = duckdb::Connection::open(&path).expect("the child opens the file");
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS _held_by_another_process (x INTEGER)")
        .expect("write");
    println!("held");
    std::thread::sleep(Duration::from_secs(LOCK_SECONDS));
    drop(connection);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_warehouse_dead_letters_nothing_and_everything_is_applied_after() {
    let env = start(
        pipedrive(200),
        "",
        WorkerOptions {
            // Were deferrals counted, every event would be dead after two.
            max_attempts: 2,
            ..quick_worker()
        },
    )
    .await;
    let path = env.dir.path().join("warehouse.duckdb");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hold_the_warehouse_file_when_asked", "--nocapture", "--test-threads=1"])
        .env(HOLD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    assert!(
        lines.any(|line| line.is_ok_and(|line| line.contains("held"))),
        "the child holds the file"
    );
    let held_since = Instant::now();
    for id in 1..=50 {
        env.simulator.apply_change(&update(id)).expect("update");
    }
    env.simulator.flush_webhooks().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = env.state.inbox_stats(now_ms()).await.unwrap();
    assert!(stats.pending > 0, "nothing can be applied while the file is held: {stats:?}");
    assert_eq!(stats.dead, 0);
    child.wait().expect("the child ends");
    let held_for = held_since.elapsed();
    env.wait_until_drained(Duration::from_secs(30)).await;
    let stats = env.state.inbox_stats(now_ms()).await.unwrap();
    assert_eq!(stats.dead, 0, "a held warehouse dead-letters nothing");
    let metrics = env.server().metrics().render();
    assert!(metrics.contains("syncline_worker_batches_total{outcome=\"deferred\"}"), "{metrics}");
    let mut expected = env.expected("deal").await;
    let wanted: BTreeSet<String> = (1..=50).map(|id: u64| id.to_string()).collect();
    expected.retain(|id, _| wanted.contains(id));
    assert_eq!(
        env.matching("deal", &expected).await.len(),
        50,
        "all applied after the lock ({held_for:?})"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_panic_restarts_it_and_loses_nothing() {
    let panicked = Arc::new(AtomicBool::new(false));
    let hook = {
        let panicked = Arc::clone(&panicked);
        BatchHook(Arc::new(move |_source: &str, _events: &[syncline_state::InboxEntry]| {
            if !panicked.swap(true, Ordering::SeqCst) {
                panic!("injected fault");
            }
        }))
    };
    let env = start(
        pipedrive(200),
        "",
        WorkerOptions {
            restart_delay: Duration::from_millis(1_500),
            before_batch: Some(hook),
            ..quick_worker()
        },
    )
    .await;
    let readyz = format!("http://{}/readyz", env.server().local_addr());
    let ready_before = env.client.get(&readyz).send().await.unwrap().status().as_u16();
    assert_eq!(ready_before, 200);
    let watcher = {
        let client = env.client.clone();
        let readyz = readyz.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let response = client.get(&readyz).send().await.unwrap();
                if response.status().as_u16() == 503 {
                    return Some(response.text().await.unwrap_or_default());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        })
    };
    for id in 1..=100 {
        env.simulator.apply_change(&update(id)).expect("update");
    }
    let unready = watcher.await.unwrap().expect("/readyz reports the worker down");
    assert!(unready.contains("worker"), "{unready}");
    env.simulator.flush_webhooks().await;
    env.wait_until_drained(Duration::from_secs(30)).await;
    assert!(panicked.load(Ordering::SeqCst));
    assert_eq!(env.server().sources().worker_health.restarts(), 1);
    assert_eq!(env.client.get(&readyz).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(env.state.inbox_stats(now_ms()).await.unwrap().dead, 0);
    let mut expected = env.expected("deal").await;
    let wanted: BTreeSet<String> = (1..=100).map(|id: u64| id.to_string()).collect();
    expected.retain(|id, _| wanted.contains(id));
    assert_eq!(env.matching("deal", &expected).await.len(), 100, "nothing lost");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_delete_dated_in_the_year_5000_leaves_the_record_active() {
    let env = start(pipedrive(50), "", quick_worker()).await;
    env.simulator.apply_change(&update(7)).expect("update");
    env.simulator.flush_webhooks().await;
    env.wait_until_drained(Duration::from_secs(20)).await;
    let before = env.state.current_versions("crm", "deal", &["7".to_string()]).await.unwrap();
    assert!(before["7"].end.is_none(), "deal 7 is active");
    let forged = json!({
        "data": null,
        "previous": {"id": 7},
        "meta": {"action": "delete", "entity": "deal", "entity_id": "7", "id": "forged-1",
                 "timestamp": "5000-01-01T00:00:00.000Z", "version": "2.0", "attempt": 1}
    });
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{HOOK_USER}:{HOOK_PASSWORD}"));
    let response = env
        .client
        .post(format!("http://{}/webhooks/crm", env.server().local_addr()))
        .header("authorization", format!("Basic {credentials}"))
        .header("content-type", "application/json")
        .body(forged.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap_or_default());
    env.wait_until_drained(Duration::from_secs(20)).await;
    let after = env.state.current_versions("crm", "deal", &["7".to_string()]).await.unwrap();
    assert!(after["7"].end.is_none(), "a refuted delete closes nothing: {:?}", after["7"]);
    assert_eq!(env.state.inbox_stats(now_ms()).await.unwrap().dead, 0);
    // A real delete is confirmed (404) and closes it, at a time that is not in the future.
    env.simulator
        .apply_change(&ChangeRequest::Delete {
            entity: Entity::Deal,
            id: 7,
        })
        .expect("delete");
    env.simulator.flush_webhooks().await;
    env.wait_until_drained(Duration::from_secs(20)).await;
    let deleted = env.state.current_versions("crm", "deal", &["7".to_string()]).await.unwrap();
    let end = deleted["7"].end.expect("the confirmed delete closes deal 7");
    assert!(end <= now_ms() + 60_000, "the delete time is clamped: {end}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listing_that_loses_rows_between_pages_closes_no_id_that_exists_upstream() {
    let mut simulator = SimulatorConfig::for_connector(Connector::Halopsa);
    simulator.initial_records = [(Entity::Ticket, 150), (Entity::Client, 5)].into_iter().collect();
    simulator.faults.delete_while_paging_rate = 1.0;
    simulator.faults.delete_while_paging_count = 2;
    simulator.faults.update_while_paging_rate = 0.5;
    simulator.faults.update_while_paging_count = 1;
    let env = start(simulator, "page_size = 10", quick_worker()).await;
    let sources = env.server().sources();
    let mut kept = 0;
    let mut confirmations = 0;
    for run in 1..=2 {
        let reports = sources.reconcile("crm", SyncMode::Full).await.expect("not busy");
        let report = &reports[0];
        assert!(report.error.is_none(), "{report:?}");
        kept += report.kept_after_confirmation;
        confirmations += report.confirmations;
        let live: BTreeSet<String> = env
            .simulator
            .truth(Entity::Ticket)
            .unwrap()
            .iter()
            .map(|ticket| ticket["id"].to_string())
            .collect();
        let all: Vec<String> = (1_000..1_400).map(|id: u64| id.to_string()).collect();
        let index = env.state.current_versions("crm", "ticket", &all).await.unwrap();
        let wrongly_closed: Vec<&String> = index
            .iter()
            .filter(|(id, version)| version.end.is_some() && live.contains(*id))
            .map(|(id, _)| id)
            .collect();
        assert!(
            wrongly_closed.is_empty(),
            "run {run}: closed but alive upstream: {wrongly_closed:?}"
        );
        let closed = index.values().filter(|version| version.end.is_some()).count();
        if run == 2 {
            assert!(closed > 0, "ids deleted upstream are closed");
        }
    }
    assert!(confirmations > 0, "missing ids were confirmed");
    assert!(kept > 0, "rows shifted between pages were kept after their confirmation");
    let stats = env.simulator.stats();
    assert!(stats.api.deleted_while_paging > 0);
    env.shutdown().await;
}
