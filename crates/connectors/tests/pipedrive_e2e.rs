//! End-to-end reconciliation against the Pipedrive simulator: incremental, full, faults, cost.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use syncline_connectors::http::REFRESH_TOKEN_NAME;
use syncline_connectors::pipedrive::stored_field_names;
use syncline_connectors::reconcile::{observe, record_id, sync_source, EntityReport, NoProgress, SourceRun, SyncMode};
use syncline_connectors::{ConnectorKind, SynclineConfig};
use syncline_core::ObservationKind;
use syncline_destinations::{open_destination, Destination};
use syncline_simulator::{ChangeMix, ChangeRequest, Connector, Entity, Simulator, SimulatorConfig, SimulatorHandle};
use syncline_state::{open_state_store, StateStore};

const SOURCE: &str = "pipedrive";

struct Harness {
    simulator: SimulatorHandle,
    config: SynclineConfig,
    destination: Box<dyn Destination>,
    state: Arc<dyn StateStore>,
    _dir: tempfile::TempDir,
}

enum AuthKind {
    ApiToken,
    OAuth,
}

async fn harness(simulator_config: SimulatorConfig, auth: AuthKind, extra: &str) -> Harness {
    let simulator = Simulator::start(simulator_config).await.expect("simulator starts");
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let auth_text = match auth {
        AuthKind::ApiToken => format!(
            "auth = {{ type = \"api_token\", token = \"{}\" }}",
            credentials.api_token.clone().unwrap()
        ),
        AuthKind::OAuth => format!(
            "auth = {{ type = \"oauth2_refresh\", token_url = \"{}\", client_id = \"{}\", client_secret = \"${{SIM_SECRET}}\", refresh_token = \"{}\" }}",
            credentials.token_url,
            credentials.client_id,
            credentials.refresh_token.clone().unwrap()
        ),
    };
    let text = format!(
        r#"
[destination]
url = "duckdb://{dir}/warehouse.duckdb"
[state]
url = "sqlite://{dir}/state.db"
[sources.{SOURCE}]
connector = "pipedrive"
base_url = "{base}"
{auth_text}
{extra}
[sources.{SOURCE}.retry]
max_attempts = 12
base_delay_ms = 1
max_delay_ms = 20
timeout_ms = 10000
"#,
        dir = dir.path().display(),
        base = credentials.api_base_url,
    );
    let secret = credentials.client_secret.clone();
    let config = SynclineConfig::parse_with_env(&text, |name| (name == "SIM_SECRET").then(|| secret.clone())).expect("config parses");
    let destination = open_destination(&config.destination.url.parse().unwrap()).await.unwrap();
    let state: Arc<dyn StateStore> = Arc::from(open_state_store(&config.state.url.parse().unwrap()).await.unwrap());
    Harness {
        simulator,
        config,
        destination,
        state,
        _dir: dir,
    }
}

fn quiet_config(seed: u64) -> SimulatorConfig {
    let mut config = SimulatorConfig::for_connector(Connector::Pipedrive);
    config.seed = seed;
    // Every webhook is lost: only the reconciler can bring changes in.
    config.faults.webhook_drop_rate = 1.0;
    config
}

fn no_deletes() -> ChangeMix {
    ChangeMix {
        create: 0.25,
        update: 0.6,
        delete: 0.0,
        merge: 0.0,
        deactivate_user: 0.03,
    }
}

impl Harness {
    async fn run(&self, mode: SyncMode) -> Vec<EntityReport> {
        let reports = sync_source(SourceRun {
            config: &self.config,
            source: SOURCE,
            destination: self.destination.as_ref(),
            state: Arc::clone(&self.state),
            mode,
            only_entity: None,
            progress: &NoProgress,
        })
        .await;
        for report in &reports {
            assert!(report.error.is_none(), "{}: {:?}", report.entity, report.error);
        }
        reports
    }

    /// Active rows of every history table equal the simulator's current records (ids and row
    /// hashes), and every table keeps the contract (no phantom versions).
    async fn assert_matches_truth(&self) {
        for name in self.config.sources[SOURCE].selected_entities() {
            let spec = ConnectorKind::Pipedrive.entity(name).unwrap();
            let entity: Entity = serde_json::from_value(serde_json::json!(name)).unwrap();
            let names = stored_field_names(self.state.as_ref(), SOURCE, name).await.unwrap();
            let mut expected: BTreeMap<String, String> = BTreeMap::new();
            for mut record in self.simulator.truth(entity).unwrap() {
                if let Some(names) = &names {
                    names.rename(&mut record);
                }
                let id = record_id(&record, "id").unwrap();
                let observed = observe(spec, record, 0).unwrap();
                let ObservationKind::Upsert { row_hash, .. } = observed.observation.kind else {
                    unreachable!()
                };
                expected.insert(id, row_hash);
            }
            let table = self.config.history.table_name(name);
            let profile = self.config.history.profile();
            let versions = self.destination.read_versions(&table, "id", &profile).await.unwrap();
            let actual: BTreeMap<String, String> = versions
                .iter()
                .filter(|version| version.active)
                .map(|version| (version.id.clone(), version.row_hash.clone()))
                .collect();
            let missing: Vec<&String> = expected.keys().filter(|id| !actual.contains_key(*id)).collect();
            let extra: Vec<&String> = actual.keys().filter(|id| !expected.contains_key(*id)).collect();
            let differing: Vec<&String> = expected
                .iter()
                .filter(|(id, hash)| actual.get(*id).is_some_and(|h| h != *hash))
                .map(|(id, _)| id)
                .collect();
            assert!(
                missing.is_empty() && extra.is_empty() && differing.is_empty(),
                "{name}: missing {missing:?}, extra {extra:?}, differing {differing:?}"
            );
            let check = self.destination.check_history(&table, "id", &profile).await.unwrap();
            assert!(check.is_clean(), "{name}: {check:?}");
        }
    }
}

fn totals(reports: &[EntityReport]) -> (usize, usize, usize) {
    (
        reports.iter().map(|report| report.new_versions).sum(),
        reports.iter().map(|report| report.closed).sum(),
        reports.iter().map(|report| report.deleted).sum(),
    )
}

fn by_entity(reports: &[EntityReport]) -> HashMap<String, EntityReport> {
    reports.iter().map(|report| (report.entity.clone(), report.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_run_heals_every_dropped_webhook() {
    let mut config = quiet_config(11);
    config.change_mix = no_deletes();
    config.initial_records = [(Entity::Deal, 300), (Entity::Person, 200), (Entity::Organization, 100)].into();
    let harness = harness(config, AuthKind::ApiToken, "").await;
    let first = harness.run(SyncMode::Incremental).await;
    assert!(
        first.iter().all(|report| report.method == "full"),
        "first run is a full initial sync"
    );
    harness.assert_matches_truth().await;

    harness.simulator.step_changes(3_000);
    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    assert_eq!(entities["deal"].method, "incremental");
    assert_eq!(entities["stage"].method, "capped");
    assert!(totals(&reports).0 > 1_000, "{reports:?}");
    harness.assert_matches_truth().await;

    let again = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&again), (0, 0, 0), "a second run right after changes nothing: {again:?}");
    harness.assert_matches_truth().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_detects_deletes_and_writes_nothing_when_unchanged() {
    let mut config = quiet_config(12);
    config.initial_records = [(Entity::Deal, 200), (Entity::Person, 100)].into();
    let harness = harness(config, AuthKind::ApiToken, "").await;
    harness.run(SyncMode::Full).await;
    harness.assert_matches_truth().await;
    let unchanged = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&unchanged), (0, 0, 0), "{unchanged:?}");
    assert!(unchanged.iter().all(|report| report.fetched == 0));

    harness.simulator.step_changes(800);
    let reports = harness.run(SyncMode::Full).await;
    let (versions, _, deleted) = totals(&reports);
    assert!(versions > 0);
    assert!(deleted > 0, "{reports:?}");
    harness.assert_matches_truth().await;
    let again = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&again), (0, 0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_change_the_result() {
    let mut config = quiet_config(13);
    config.change_mix = no_deletes();
    config.initial_records = [(Entity::Deal, 300), (Entity::Person, 150), (Entity::Organization, 80)].into();
    config.faults.rate_limit_rate = 0.1;
    config.faults.retry_after_secs = 0;
    config.faults.server_error_rate = 0.1;
    config.faults.token_expiry_rate = 0.05;
    config.faults.insert_while_paging_rate = 0.3;
    config.faults.insert_while_paging_count = 2;
    config.faults.eventual_consistency_lag_ms = 120_000;
    config.auth.rotate_refresh_tokens = true;
    let initial_refresh = config.auth.initial_refresh_token.clone();
    let harness = harness(config, AuthKind::OAuth, "page_size = 50").await;
    harness.run(SyncMode::Incremental).await;
    harness.simulator.step_changes(1_500);
    harness.run(SyncMode::Incremental).await;
    // Changes of the last two minutes were invisible to the since-filter; once the index
    // catches up they fall inside the lookback window.
    harness.simulator.advance_clock(Duration::from_secs(180));
    harness.run(SyncMode::Incremental).await;
    harness.assert_matches_truth().await;

    let stats = harness.simulator.stats();
    assert!(stats.api.rate_limited > 0 && stats.api.server_errors > 0, "{:?}", stats.api);
    assert!(stats.api.inserted_while_paging > 0, "{:?}", stats.api);
    let stored = harness.state.token(SOURCE, REFRESH_TOKEN_NAME).await.unwrap();
    assert!(
        stored.is_some_and(|token| token != initial_refresh),
        "the rotated refresh token is stored"
    );
    // The full reconcile agrees and has nothing left to do.
    let full = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&full).2, 0, "{full:?}");
    harness.assert_matches_truth().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_is_twenty_times_cheaper_than_a_full_pull() {
    let mut config = quiet_config(14);
    config.initial_records = [(Entity::Deal, 20_000)].into();
    config.change_mix = ChangeMix {
        create: 0.0,
        update: 1.0,
        delete: 0.0,
        merge: 0.0,
        deactivate_user: 0.0,
    };
    let harness = harness(config, AuthKind::ApiToken, "entities = [\"deal\"]").await;
    harness.run(SyncMode::Full).await;
    let deal_ids: Vec<u64> = harness.simulator.truth(Entity::Deal).unwrap().iter().filter_map(|deal| deal["id"].as_u64()).collect();
    for id in deal_ids.iter().step_by(100) {
        harness.simulator.advance_clock(Duration::from_millis(700));
        harness.simulator.apply_change(&ChangeRequest::Update { entity: Entity::Deal, id: *id }).unwrap();
    }
    let incremental = harness.run(SyncMode::Incremental).await;
    let full = harness.run(SyncMode::Full).await;
    harness.assert_matches_truth().await;
    let (inc, ful) = (incremental[0].calls, full[0].calls);
    println!("N = 20000 deals, 200 changed (1%)");
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>13}",
        "run", "api calls", "cost", "listed", "new versions"
    );
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>13}",
        "incremental", inc.calls, inc.cost, incremental[0].listed, incremental[0].new_versions
    );
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>13}",
        "full", ful.calls, ful.cost, full[0].listed, full[0].new_versions
    );
    assert_eq!(incremental[0].new_versions, 200, "{incremental:?}");
    assert_eq!(full[0].new_versions, 0);
    assert!(inc.cost * 20 <= ful.cost, "incremental {inc:?} vs full {ful:?}");
    assert!(inc.calls * 20 <= ful.calls, "incremental {inc:?} vs full {ful:?}");
}
