//! `syncline serve` as a process, probed from outside as an attacker would: slowloris
//! connections, big unauthenticated bodies, an empty `/sync` secret, a traversal id, `/readyz`
//! against a DuckDB reader, made-up entity names against the metrics, and the modes of the
//! files it creates. Each test prints the figures it measured (`--nocapture`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use syncline_simulator::{Connector, Entity, Simulator, SimulatorConfig, SimulatorHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOOK_USER: &str = "hook";
const HOOK_PASSWORD: &str = "hook-password-0123456789";
const SYNC_SECRET: &str = "sync-secret-0123456789abcdef";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A simulated Pipedrive, a config for it in a temporary folder, and `syncline serve` on it.
struct Served {
    simulator: Option<SimulatorHandle>,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    server: Option<Child>,
    port: u16,
    client: reqwest::Client,
}

async fn simulator() -> SimulatorHandle {
    let mut config = SimulatorConfig::for_connector(Connector::Pipedrive);
    config.initial_records = [(Entity::Deal, 50), (Entity::Person, 5), (Entity::Organization, 5)]
        .into_iter()
        .collect();
    Simulator::start(config).await.expect("simulator starts")
}

/// The config text; `server_extra` goes into `[server]`, `state` and `warehouse` are paths
/// relative to the folder.
fn config_text(simulator: &SimulatorHandle, dir: &Path, server_extra: &str, state: &str, warehouse: &str) -> String {
    let credentials = simulator.credentials();
    format!(
        r#"
[destination]
url = "duckdb://{dir}/{warehouse}"
[state]
url = "sqlite://{dir}/{state}"
[server]
scheduler = false
{server_extra}
[sources.crm]
connector = "pipedrive"
base_url = "{base}"
auth = {{ type = "api_token", token = "{token}" }}
[sources.crm.webhook]
verify = {{ type = "basic", username = "{HOOK_USER}", password = "{HOOK_PASSWORD}" }}
"#,
        dir = dir.display(),
        base = credentials.api_base_url,
        token = credentials.api_token.clone().unwrap(),
    )
}

fn syncline(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_syncline"));
    command.args(args).env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("syncline runs")
}

impl Served {
    async fn start(server_extra: &str) -> Served {
        Self::start_with(server_extra, "state.db", "warehouse.duckdb").await
    }

    async fn start_with(server_extra: &str, state: &str, warehouse: &str) -> Served {
        let simulator = simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("syncline.toml");
        std::fs::write(&config_path, config_text(&simulator, dir.path(), server_extra, state, warehouse)).unwrap();
        let mut served = Served {
            simulator: Some(simulator),
            dir,
            config_path,
            server: None,
            port: free_port(),
            client: reqwest::Client::new(),
        };
        served.spawn().await;
        served
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_syncline"))
            .args([
                "serve",
                "--config",
                &self.config_path.display().to_string(),
                "--listen",
                &format!("127.0.0.1:{}", self.port),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("syncline serve starts");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = self.client.get(self.url("/healthz")).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("syncline serve did not become ready: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn pid(&self) -> u32 {
        self.server.as_ref().unwrap().id()
    }

    /// Resident memory of the server process in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    /// Posts a Pipedrive v2 change of `entity` `id` with the webhook credentials; returns the
    /// status, the answer and the time to it.
    async fn post_change(&self, client: &reqwest::Client, entity: &str, id: &str, delivery: &str) -> (u16, String, Duration) {
        let body = json!({
            "meta": {
                "action": "change", "entity": entity, "entity_id": id, "version": "2.0",
                "id": delivery, "timestamp": "2024-01-01T00:00:00Z",
            },
            "data": {"id": id},
            "previous": null,
        });
        let started = Instant::now();
        let response = client
            .post(self.url("/webhooks/crm"))
            .header("authorization", basic(HOOK_USER, HOOK_PASSWORD))
            .json(&body)
            .send()
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        let answer = response.text().await.unwrap_or_default();
        (status, answer, started.elapsed())
    }

    /// Posts a deal change for `id`; returns the status and the time to the answer.
    async fn post_deal(&self, client: &reqwest::Client, id: &str, sequence: usize) -> (u16, Duration) {
        let (status, _, elapsed) = self.post_change(client, "deal", id, &format!("delivery-{sequence}")).await;
        (status, elapsed)
    }

    async fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(simulator) = self.simulator.take() {
            simulator.shutdown().await;
        }
    }

    fn simulator(&self) -> &SimulatorHandle {
        self.simulator.as_ref().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = self.server.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn percentile(samples: &mut [Duration], quantile: f64) -> Duration {
    samples.sort();
    let rank = ((quantile * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Legitimate webhooks, one after the other on one kept-alive connection, until `until`.
async fn legitimate_traffic(served: &Served, until: Instant) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut sequence = 0;
    while Instant::now() < until {
        sequence += 1;
        let (status, elapsed) = served.post_deal(&client, &(1 + sequence % 50).to_string(), sequence).await;
        assert_eq!(status, 200, "a legitimate webhook is acknowledged during the attack");
        latencies.push(elapsed);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies
}

/// Until `until`: legitimate webhooks' ack latencies, and the server's peak RSS in MiB.
async fn during_attack(served: &Served, until: Instant) -> (Vec<Duration>, f64) {
    let rss_probe = async {
        let mut peak: f64 = 0.0;
        while Instant::now() < until {
            peak = peak.max(served.rss_mib());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    };
    tokio::join!(legitimate_traffic(served, until), rss_probe)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_are_closed_after_the_header_timeout() {
    const CONNECTIONS: usize = 1_000;
    let served = Served::start("header_read_timeout_ms = 1000\nmax_connections = 1500\n").await;
    let rss_before = served.rss_mib();
    let started = Instant::now();
    let mut attackers = Vec::with_capacity(CONNECTIONS);
    for index in 0..CONNECTIONS {
        let address = format!("127.0.0.1:{}", served.port);
        attackers.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connects");
            stream
                .write_all(b"POST /webhooks/crm HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .expect("request line");
            let opened = Instant::now();
            // Trickle one header line every 200 ms; the server must close the connection.
            let mut buffer = [0u8; 512];
            loop {
                tokio::select! {
                    read = stream.read(&mut buffer) => match read {
                        Ok(0) | Err(_) => return opened.elapsed(),
                        Ok(_) => continue,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if stream.write_all(format!("x-pad-{index}: a\r\n").as_bytes()).await.is_err() {
                            return opened.elapsed();
                        }
                    }
                }
                assert!(
                    opened.elapsed() < Duration::from_secs(10),
                    "a slowloris connection stayed open 10 s"
                );
            }
        }));
    }
    let (mut latencies, rss_peak) = during_attack(&served, started + Duration::from_millis(1_500)).await;
    let mut open_for = Vec::with_capacity(CONNECTIONS);
    for attacker in attackers {
        open_for.push(attacker.await.expect("attacker task"));
    }
    let longest = *open_for.iter().max().unwrap();
    let p99 = percentile(&mut latencies, 0.99);
    println!(
        "slowloris: {CONNECTIONS} connections, all closed, the longest after {:.2} s; legitimate acks: {} , p50 {:.1} ms, p99 {:.1} ms; server RSS {rss_before:.1} MiB before, {rss_peak:.1} MiB peak",
        longest.as_secs_f64(),
        latencies.len(),
        percentile(&mut latencies, 0.5).as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
    );
    assert!(
        longest < Duration::from_secs(4),
        "closed after the 1 s header timeout (plus slack): {longest:?}"
    );
    assert!(p99 < Duration::from_millis(100), "legitimate ack p99 {p99:?} during the attack");
    assert!(
        rss_peak - rss_before < 100.0,
        "memory stays bounded: {rss_before} -> {rss_peak} MiB"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn big_bodies_without_credentials_are_refused_unread() {
    const SENDERS: usize = 200;
    let served = Served::start("").await;
    let rss_before = served.rss_mib();
    // One shared buffer: the senders cost this process 1 MiB, not 200.
    let body = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
    let started = Instant::now();
    let mut senders = Vec::with_capacity(SENDERS);
    for _ in 0..SENDERS {
        let client = reqwest::Client::new();
        let url = served.url("/webhooks/crm");
        let body = body.clone();
        senders.push(tokio::spawn(async move {
            match client
                .post(url)
                .header("content-type", "application/json")
                .body(reqwest::Body::from(body))
                .send()
                .await
            {
                Ok(response) => Some(response.status().as_u16()),
                // The server answered and closed before the body was sent: refused too.
                Err(_) => None,
            }
        }));
    }
    let (mut latencies, rss_peak) = during_attack(&served, started + Duration::from_millis(1_500)).await;
    let mut statuses = std::collections::BTreeMap::new();
    for sender in senders {
        let status = sender.await.unwrap();
        *statuses.entry(status).or_insert(0) += 1;
        assert!(
            !status.is_some_and(|status| (200..300).contains(&status)),
            "an unauthenticated body was accepted"
        );
    }
    let p99 = percentile(&mut latencies, 0.99);
    println!(
        "big bodies: {SENDERS} x 1 MiB without credentials: answers {statuses:?} (None = closed before the body was sent); legitimate acks {} , p99 {:.1} ms; server RSS {rss_before:.1} MiB before, {rss_peak:.1} MiB peak",
        latencies.len(),
        p99.as_secs_f64() * 1e3
    );
    assert!(statuses.get(&Some(401)).copied().unwrap_or(0) > 0, "refusals are 401: {statuses:?}");
    // Buffering the bodies would take 200 MiB; the connections, tasks and allocator slack of
    // 200 concurrent requests take well under that.
    assert!(
        rss_peak - rss_before < 128.0,
        "bodies are not buffered: {rss_before} -> {rss_peak} MiB"
    );
    assert!(p99 < Duration::from_millis(100), "legitimate ack p99 {p99:?}");
    let metrics = served.metrics().await;
    assert!(metrics.contains("reason=\"unauthorized\""), "{metrics}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_sync_secret_is_refused_and_sync_stays_closed() {
    let simulator = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("syncline.toml");
    let config = config_text(
        &simulator,
        dir.path(),
        "sync_secret = \"${SYNCLINE_SYNC_SECRET}\"",
        "state.db",
        "warehouse.duckdb",
    );
    std::fs::write(&config_path, &config).unwrap();
    let path = config_path.display().to_string();
    for value in ["", "short"] {
        let check = syncline(&["check", "--config", &path], &[("SYNCLINE_SYNC_SECRET", value)]);
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert!(!check.status.success(), "check passes a {value:?} secret");
        assert!(
            stderr.contains("server.sync_secret") && stderr.contains("openssl rand"),
            "names the field and what to write: {stderr}"
        );
        let serve = syncline(
            &["serve", "--config", &path, "--listen", &format!("127.0.0.1:{}", free_port())],
            &[("SYNCLINE_SYNC_SECRET", value)],
        );
        assert!(!serve.status.success(), "serve starts with a {value:?} secret");
        assert!(String::from_utf8_lossy(&serve.stderr).contains("server.sync_secret"));
    }
    let check = syncline(&["check", "--config", &path], &[("SYNCLINE_SYNC_SECRET", SYNC_SECRET)]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(!String::from_utf8_lossy(&check.stdout).contains(SYNC_SECRET));
    simulator.shutdown().await;

    // Without a secret /sync is closed, with or without the header.
    let served = Served::start("").await;
    for header in [None, Some(""), Some("anything")] {
        let mut request = served.client.post(served.url("/sync"));
        if let Some(value) = header {
            request = request.header("x-sync-secret", value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert_eq!(status, 403, "/sync with {header:?}");
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_no_password() {
    let simulator = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("syncline.toml");
    let config = config_text(&simulator, dir.path(), "", "state.db", "warehouse.duckdb").replace(
        &format!("sqlite://{}/state.db", dir.path().display()),
        "postgres://ann:pg-password-1@db.example:5432/w?sslmode=verify-full&sslpassword=key-password-2&schema=s",
    );
    std::fs::write(&config_path, &config).unwrap();
    let check = syncline(&["check", "--config", &config_path.display().to_string()], &[]);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{output}");
    for secret in ["pg-password-1", "key-password-2", HOOK_PASSWORD] {
        assert!(!output.contains(secret), "{output}");
    }
    assert!(output.contains("postgres://ann:***@db.example"), "{output}");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traversal_id_is_refused_and_never_requested() {
    let served = Served::start("").await;
    for hostile in ["1/../../v1/users/1", "1%2F..%2F..%2Fv1%2Fusers%2F1", "../1", "1?x=1"] {
        let (status, answer, _) = served.post_change(&served.client, "deal", hostile, "d-1").await;
        assert_eq!(status, 400, "{hostile}: {answer}");
        assert!(answer.contains("not an id of the vendor"), "{answer}");
    }
    // A legitimate one is still taken, and fetched.
    let (status, _) = served.post_deal(&served.client, "7", 1).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !served
        .simulator()
        .stats()
        .api
        .endpoints
        .keys()
        .any(|endpoint| endpoint.contains("deals"))
    {
        assert!(Instant::now() < deadline, "the legitimate webhook was not re-fetched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let endpoints: Vec<String> = served.simulator().stats().api.endpoints.keys().cloned().collect();
    assert!(
        !endpoints.iter().any(|endpoint| endpoint.contains("users")),
        "no request left the deal path: {endpoints:?}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_never_pins_the_duckdb_file() {
    let mut served = Served::start("").await;
    // A warehouse with a table: a webhook applied, then the server releases the file when idle.
    let (status, _) = served.post_deal(&served.client, "3", 1).await;
    assert_eq!(status, 200);
    let warehouse = served.dir.path().join("warehouse.duckdb");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the warehouse was not written: {}", served.log());
        if warehouse.exists() && duckdb::Connection::open(&warehouse).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Restart, so nothing but /readyz could have opened the file.
    if let Some(mut child) = served.server.take() {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    served.spawn().await;
    for _ in 0..3 {
        let response = served.client.get(served.url("/readyz")).send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(status, 200, "{}", response.text().await.unwrap());
    }
    let reader = duckdb::Connection::open(&warehouse).expect("a DuckDB reader opens the file after /readyz");
    let count: i64 = reader.query_row("SELECT count(*) FROM deal_history", [], |row| row.get(0)).unwrap();
    assert!(count >= 1);
    drop(reader);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_entities_add_no_metric_series() {
    let served = Served::start("").await;
    for index in 0..200 {
        let (status, _, _) = served
            .post_change(&served.client, &format!("madeup{index}"), "1", &format!("m-{index}"))
            .await;
        assert_eq!(status, 200, "an unknown entity is acknowledged");
    }
    let metrics = served.metrics().await;
    assert!(!metrics.contains("madeup"), "no label from request data: {metrics}");
    assert!(
        metrics.contains("syncline_webhook_unknown_entity_total{source=\"crm\"} 200"),
        "{metrics}"
    );
    let series = metrics.lines().filter(|line| !line.starts_with('#')).count();
    println!("metrics after 200 made-up entities: {series} series");
    assert!(series < 120, "{series} series");
    served.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let served = Served::start_with("", "private/state/state.db", "private/warehouse/warehouse.duckdb").await;
    let (status, _) = served.post_deal(&served.client, "5", 1).await;
    assert_eq!(status, 200);
    let warehouse = served.dir.path().join("private/warehouse/warehouse.duckdb");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !warehouse.exists() {
        assert!(Instant::now() < deadline, "the warehouse was not written: {}", served.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let state = served.dir.path().join("private/state/state.db");
    for file in [state.clone(), PathBuf::from(format!("{}-wal", state.display())), warehouse.clone()] {
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    for folder in ["private/state", "private/warehouse"] {
        assert_eq!(mode(&served.dir.path().join(folder)), 0o700, "{folder}");
    }
    served.stop().await;
}
