//! End-to-end tests of `syncline compare`: the real binary on DuckDB files written by
//! `syncline load` with different profiles, and on PostgreSQL against BigQuery (the emulator).
//! (The planted differences between DuckDB, PostgreSQL and BigQuery are covered by the library
//! tests in `syncline_destinations::compare`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn load(directory: &Path, file: &str, at: &str, profile: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("load")
        .arg("--duckdb")
        .arg(directory.join("warehouse.duckdb"))
        .arg("--state")
        .arg(directory.join("state.db"))
        .args([
            "--entity",
            "deal",
            "--modified-field",
            "update_time",
            "--full-extract",
            "--at",
            at,
            "--profile",
            profile,
        ])
        .arg(examples().join(file))
        .output()
        .expect("run syncline load");
    assert!(output.status.success(), "load failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn compare(left: &Path, right: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("compare")
        .arg("--left")
        .arg(format!("duckdb://{}", left.join("warehouse.duckdb").display()))
        .arg("--right")
        .arg(format!("duckdb://{}", right.join("warehouse.duckdb").display()))
        .args(["--profile-left", "fivetran", "--profile-right", "cdc"])
        .args(extra)
        .output()
        .expect("run syncline compare")
}

#[test]
fn compare_reports_parity_and_then_the_differences() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    load(old.path(), "deals.jsonl", "2026-01-01T12:00:00Z", "fivetran");
    load(new.path(), "deals.jsonl", "2026-01-01T12:00:00Z", "cdc");

    let equal = compare(old.path(), new.path(), &[]);
    let text = String::from_utf8_lossy(&equal.stdout);
    assert_eq!(equal.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&equal.stderr));
    assert!(text.contains("deal_history") && text.contains(" ok"), "{text}");

    // day 2 reaches only the new side: changed, removed and new deals
    load(new.path(), "deals_day2.jsonl", "2026-01-02T12:00:00Z", "cdc");
    let differs = compare(old.path(), new.path(), &["--json", "--tables", "deal_history"]);
    assert_eq!(differs.status.code(), Some(1), "{}", String::from_utf8_lossy(&differs.stderr));
    let report: serde_json::Value = serde_json::from_slice(&differs.stdout).expect("json report");
    assert_eq!(report["differs"], true);
    let table = &report["tables"][0];
    assert_eq!(table["table"], "deal_history");
    assert_eq!(table["left_only_ids"]["count"], 2, "two deals removed upstream on day 2");
    assert_eq!(table["right_only_ids"]["count"], 5, "five new deals on day 2");
    assert_eq!(table["mismatched_ids"], 10, "ten deals changed on day 2");
    assert!(table["mismatches"][0]["columns"]
        .as_array()
        .is_some_and(|columns| !columns.is_empty()));
    assert_eq!(table["content_hashes_agree"], false);
}

#[test]
fn a_bad_profile_is_explained() {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["compare", "--left", "a.duckdb", "--right", "b.duckdb", "--profile-left", "nope"])
        .current_dir(directory.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("prefix:"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes deals to a destination through the history writer, as syncline would.
async fn write_deals(destination: &dyn syncline_destinations::Destination, profile: &str, ids: std::ops::RangeInclusive<i64>) {
    use syncline_core::{flatten_record, row_hash, NamingOptions, Observation, ObservationKind};
    let state = syncline_state::SqliteStateStore::in_memory().unwrap();
    let target = syncline_destinations::HistoryTarget {
        source: "pipedrive".into(),
        entity: "deal".into(),
        table: "deal_history".into(),
        primary_key: "id".into(),
        profile: syncline_destinations::compare::parse_profile(profile).unwrap(),
        timestamp_columns: ["update_time".to_string()].into(),
    };
    let mut writer = syncline_destinations::HistoryWriter::new(destination, &state, target);
    let batch = ids
        .map(|id| {
            let deal = serde_json::json!({"id": id, "title": format!("deal {id}"), "value": id as f64 * 2.5, "update_time": "2024-03-01 10:00:00"});
            let flat = flatten_record(deal, NamingOptions::default()).unwrap();
            let hash = row_hash(&flat);
            syncline_destinations::Observed {
                observation: Observation {
                    id: id.to_string(),
                    time: 1_000,
                    kind: ObservationKind::Upsert { record: flat, row_hash: hash },
                },
                raw: None,
                terminal: false,
            }
        })
        .collect();
    writer.write(batch, 2_000).await.unwrap();
}

/// The binary on PostgreSQL (left) and BigQuery (the emulator, right): equal data compares
/// equal, and an id only BigQuery holds is reported. Skipped without the test services; CI
/// fails instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_postgres_with_bigquery() {
    let (Some(postgres), Some(bigquery)) = (
        syncline_state::postgres_url::test_service_url(),
        syncline_destinations::bigquery_test_service_url(),
    ) else {
        return;
    };
    let schema = syncline_state::postgres_url::unique_test_schema("syncline_cli_compare");
    let separator = if postgres.contains('?') { '&' } else { '?' };
    let postgres_url = format!("{postgres}{separator}schema={schema}");
    let mut bigquery_config = syncline_destinations::BigQueryConfig::parse(&bigquery).unwrap();
    bigquery_config.dataset = syncline_state::postgres_url::unique_test_schema(&format!("{}_cli", bigquery_config.dataset));
    let bigquery_url = format!(
        "bigquery://{}/{}?endpoint={}",
        bigquery_config.project,
        bigquery_config.dataset,
        bigquery_config.endpoint.clone().unwrap_or_default()
    );
    let left = syncline_destinations::PostgresDestination::connect(&postgres_url).await.unwrap();
    let right = syncline_destinations::BigQueryDestination::open(&bigquery_config).await.unwrap();
    write_deals(&left, "fivetran", 1..=4).await;
    write_deals(&right, "cdc", 1..=4).await;
    let run = |url_left: String, url_right: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_syncline"))
                .args(["compare", "--json", "--profile-left", "fivetran", "--profile-right", "cdc"])
                .args(["--left", &url_left, "--right", &url_right])
                .output()
                .expect("run syncline compare")
        })
    };
    let equal = run(postgres_url.clone(), bigquery_url.clone()).await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&equal.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&equal.stdout),
            String::from_utf8_lossy(&equal.stderr)
        )
    });
    assert_eq!(equal.status.code(), Some(0), "{report:#}");
    assert_eq!(report["tables"][0]["table"], "deal_history");
    assert_eq!(report["tables"][0]["left_active"], 4);

    write_deals(&right, "cdc", 5..=5).await;
    let differs = run(postgres_url, bigquery_url).await.unwrap();
    assert_eq!(differs.status.code(), Some(1), "{}", String::from_utf8_lossy(&differs.stderr));
    let report: serde_json::Value = serde_json::from_slice(&differs.stdout).unwrap();
    assert_eq!(report["tables"][0]["right_only_ids"]["sample"], serde_json::json!(["5"]));
    assert_eq!(report["tables"][0]["mismatched_ids"], 0);

    // clean up: the schema and the dataset
    let (config, tls) = syncline_state::postgres_url::connection_config(&postgres).unwrap();
    let (client, connection) = config.connect(tls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
    if let Some(endpoint) = &bigquery_config.endpoint {
        let url = format!(
            "{endpoint}/bigquery/v2/projects/{}/datasets/{}?deleteContents=true",
            bigquery_config.project, bigquery_config.dataset
        );
        reqwest::Client::new().delete(url).send().await.expect("drop the test dataset");
    }
}
