//! `syncline sync` and `syncline check` as a user runs them, against the Pipedrive simulator.

use std::process::Command;

use syncline_simulator::{Connector, Simulator, SimulatorConfig};

fn syncline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("syncline runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_prints_a_summary_and_fails_only_the_broken_source() {
    let simulator = Simulator::start(SimulatorConfig::for_connector(Connector::Pipedrive))
        .await
        .unwrap();
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("syncline.toml");
    let text = format!(
        r#"
[destination]
url = "duckdb://{dir}/w.duckdb"
[state]
url = "sqlite://{dir}/state.db"
[sources.good]
connector = "pipedrive"
base_url = "{base}"
auth = {{ type = "api_token", token = "{token}" }}
[sources.broken]
connector = "pipedrive"
base_url = "{base}"
entities = ["deal"]
auth = {{ type = "api_token", token = "wrong-token" }}
retry = {{ max_attempts = 2, base_delay_ms = 1 }}
"#,
        dir = dir.path().display(),
        base = credentials.api_base_url,
        token = credentials.api_token.unwrap(),
    );
    std::fs::write(&config_path, text).unwrap();
    let config = config_path.to_str().unwrap().to_string();

    let check = tokio::task::spawn_blocking({
        let config = config.clone();
        move || syncline(&["check", "--config", &config])
    })
    .await
    .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let output = tokio::task::spawn_blocking({
        let config = config.clone();
        move || syncline(&["sync", "--config", &config])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a failed entity fails the run");
    assert!(stdout.contains("new versions") && stdout.contains("api calls"), "{stdout}");
    let good_rows: Vec<&str> = stdout.lines().filter(|line| line.starts_with("good ")).collect();
    assert_eq!(good_rows.len(), 6, "{stdout}");
    assert!(good_rows.iter().all(|line| line.ends_with("ok")), "{stdout}");
    assert!(
        stdout.lines().any(|line| line.starts_with("broken") && line.ends_with("FAILED")),
        "{stdout}"
    );
    assert!(stderr.contains("broken.deal") && stderr.contains("credentials"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token") && !stdout.contains("wrong-token"),
        "secrets stay out of output"
    );

    // Only the good source, incremental, nothing changed upstream: success and no new versions.
    let again = tokio::task::spawn_blocking(move || syncline(&["sync", "--config", &config, "--source", "good", "--entity", "deal"]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout} {}", String::from_utf8_lossy(&again.stderr));
    let deal_row = stdout.lines().find(|line| line.starts_with("good ")).unwrap();
    assert!(deal_row.contains("incremental"), "{deal_row}");
    simulator.shutdown().await;
}

#[test]
fn check_names_the_offending_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syncline.toml");
    std::fs::write(
        &path,
        r#"
[destination]
url = "duckdb://w.duckdb"
[state]
url = "sqlite://s.db"
[sources.pipedrive]
connector = "pipedrive"
base_url = "https://acme.pipedrive.com/api"
auth = { type = "api_token", token = "${SYNCLINE_TEST_UNSET_TOKEN}" }
"#,
    )
    .unwrap();
    let output = syncline(&["check", "--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("sources.pipedrive.auth.token") && stderr.contains("export SYNCLINE_TEST_UNSET_TOKEN"),
        "{stderr}"
    );
}
