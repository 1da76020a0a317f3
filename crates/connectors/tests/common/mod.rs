//! The harness of the end-to-end tests: a simulator, a config pointing at it, a DuckDB
//! destination and an SQLite state store, and a comparison with ground truth.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use syncline_connectors::parity::{compare_active, expected_hashes};
use syncline_connectors::pipedrive::stored_field_names;
use syncline_connectors::reconcile::{sync_source, EntityReport, NoProgress, SourceRun, SyncMode};
use syncline_connectors::SynclineConfig;
use syncline_destinations::{open_destination, Destination};
use syncline_simulator::{ChangeMix, Connector, Entity, Simulator, SimulatorConfig, SimulatorHandle};
use syncline_state::{open_state_store, StateStore};

pub const SOURCE: &str = "upstream";

pub struct Harness {
    pub simulator: SimulatorHandle,
    pub config: SynclineConfig,
    pub destination: Box<dyn Destination>,
    pub state: Arc<dyn StateStore>,
    _dir: tempfile::TempDir,
}

pub enum AuthKind {
    ApiToken,
    OAuth,
    ClientCredentials,
}

pub async fn harness(simulator_config: SimulatorConfig, auth: AuthKind, extra: &str) -> Harness {
    let simulator = Simulator::start(simulator_config).await.expect("simulator starts");
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let connector = simulator.connector().name();
    let org_id = credentials
        .org_id
        .clone()
        .map(|org| format!("org_id = \"{org}\""))
        .unwrap_or_default();
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
        AuthKind::ClientCredentials => format!(
            "auth = {{ type = \"client_credentials\", token_url = \"{}\", client_id = \"{}\", client_secret = \"${{SIM_SECRET}}\" }}",
            credentials.token_url, credentials.client_id
        ),
    };
    let text = format!(
        r#"
[destination]
url = "duckdb://{dir}/warehouse.duckdb"
[state]
url = "sqlite://{dir}/state.db"
[sources.{SOURCE}]
connector = "{connector}"
base_url = "{base}"
{org_id}
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

pub fn quiet_config(connector: Connector, seed: u64) -> SimulatorConfig {
    let mut config = SimulatorConfig::for_connector(connector);
    config.seed = seed;
    // Every webhook is lost: only the reconciler can bring changes in.
    config.faults.webhook_drop_rate = 1.0;
    config
}

pub fn no_deletes() -> ChangeMix {
    ChangeMix {
        create: 0.25,
        update: 0.6,
        delete: 0.0,
        merge: 0.0,
        deactivate_user: 0.03,
    }
}

impl Harness {
    pub async fn run(&self, mode: SyncMode) -> Vec<EntityReport> {
        let reports = sync_source(SourceRun {
            config: &self.config,
            source: SOURCE,
            destination: self.destination.as_ref(),
            state: Arc::clone(&self.state),
            mode,
            only_entity: None,
            progress: &NoProgress,
            engine: None,
            locks: &syncline_connectors::WriteLocks::new(),
        })
        .await;
        for report in &reports {
            assert!(report.error.is_none(), "{}: {:?}", report.entity, report.error);
        }
        reports
    }

    /// Active rows of every history table equal the simulator's current records (ids and row
    /// hashes), and every table keeps the contract (no phantom versions).
    pub async fn assert_matches_truth(&self) {
        self.assert_matches_truth_but_created_since(None).await
    }

    /// As `assert_matches_truth`, but records created at or after `created_since` (virtual ms),
    /// such as records inserted while the last run paged, may still be missing.
    pub async fn assert_matches_truth_but_created_since(&self, created_since: Option<i64>) {
        self.assert_matches_truth_except(created_since, &[]).await
    }

    /// As `assert_matches_truth_but_created_since`, skipping the entities in `skip` (such as
    /// Zoho Desk comments after an incremental run: an edited comment does not bump its ticket).
    pub async fn assert_matches_truth_except(&self, created_since: Option<i64>, skip: &[&str]) {
        for name in self.config.sources[SOURCE].selected_entities() {
            if skip.contains(&name) {
                continue;
            }
            let spec = self.config.sources[SOURCE].connector.entity(name).unwrap();
            let entity: Entity = serde_json::from_value(serde_json::json!(name)).unwrap();
            let names = stored_field_names(self.state.as_ref(), SOURCE, name).await.unwrap();
            let expected = expected_hashes(spec, self.simulator.truth(entity).unwrap(), names.as_ref()).unwrap();
            let table = self.config.history.table_name(name);
            let profile = self.config.history.profile();
            let versions = self.destination.read_versions(&table, "id", &profile).await.unwrap();
            let parity = compare_active(&expected, &versions);
            let created_late: std::collections::HashSet<String> = match created_since {
                None => Default::default(),
                Some(since) => self
                    .simulator
                    .versions(entity)
                    .unwrap()
                    .into_iter()
                    .filter(|record| record.versions.first().is_some_and(|first| first.changed_ms >= since))
                    .map(|record| record.id.to_string())
                    .collect(),
            };
            let missing: Vec<&String> = parity.missing.iter().filter(|id| !created_late.contains(*id)).collect();
            let (extra, differing) = (&parity.extra, &parity.differing);
            assert!(
                missing.is_empty() && extra.is_empty() && differing.is_empty(),
                "{name}: missing {missing:?}, extra {extra:?}, differing {differing:?}"
            );
            let check = self.destination.check_history(&table, "id", &profile).await.unwrap();
            assert!(check.is_clean(), "{name}: {check:?}");
        }
    }
}

pub fn totals(reports: &[EntityReport]) -> (usize, usize, usize) {
    (
        reports.iter().map(|report| report.new_versions).sum(),
        reports.iter().map(|report| report.closed).sum(),
        reports.iter().map(|report| report.deleted).sum(),
    )
}

pub fn by_entity(reports: &[EntityReport]) -> HashMap<String, EntityReport> {
    reports.iter().map(|report| (report.entity.clone(), report.clone())).collect()
}
