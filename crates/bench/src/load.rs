//! `syncline-bench load`: authenticated Pipedrive v2 webhook load.
//!
//! Every request is a `change` of a deal (ids cycle over `1..=ids`) with its own delivery id
//! (`meta.id`), so the receiver stores each one instead of absorbing it as a duplicate. `C`
//! tasks each own one keep-alive connection's worth of requests (one request in flight per
//! task, a pool of `C` connections).
//!
//! - `--rate R` (open loop): request `i` is due at `start + i / R`; a free task takes the next
//!   due request, waits for its time and sends it. The acknowledgement latency is measured from
//!   the due time, so when every connection is busy the wait counts (no coordinated omission).
//!   The time between handing the request to the connection and the answer is reported as the
//!   service time. (A request may leave up to 1 ms, one timer tick, early; it is then measured
//!   from when it left.)
//! - `--max` (closed loop): every task sends its next request as soon as the previous one is
//!   answered; the rate is what the server sustains with `C` requests in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine as _;
use serde_json::{json, Value};

/// Arguments of `syncline-bench load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The webhook URL, e.g. `http://127.0.0.1:8080/webhooks/pipedrive`.
    #[arg(long)]
    url: String,
    /// HTTP Basic credentials, `user:password` (Pipedrive's webhook authentication).
    #[arg(long)]
    basic_auth: Option<String>,
    /// Open loop: requests per second, each measured from its scheduled send time.
    #[arg(long, conflicts_with = "max", required_unless_present = "max")]
    rate: Option<f64>,
    /// Closed loop: as fast as the server answers, `--connections` requests in flight.
    #[arg(long)]
    max: bool,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of the same load before the measured part (not counted).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Keep-alive connections (requests in flight at most).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Deal ids cycle over 1..=ids.
    #[arg(long, default_value_t = 1_000)]
    ids: u64,
    /// Per-request timeout in seconds (a timeout counts as an error).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

/// Resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// One task's record of a phase.
#[derive(Debug, Default)]
struct TaskRecord {
    /// Acknowledgement latency in microseconds (open loop: from the due time).
    ack_us: Vec<u32>,
    /// From handing the request to the connection to the answer, microseconds.
    service_us: Vec<u32>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    unsent: u64,
    last_done: Option<Instant>,
}

/// What every task of a phase shares.
struct Phase {
    client: reqwest::Client,
    url: String,
    authorization: Option<String>,
    ids: u64,
    start: Instant,
    end: Instant,
    /// Open loop: nanoseconds between two due times.
    interval_ns: Option<f64>,
    /// Open loop: requests still due this long after `end` are not sent (counted as unsent).
    give_up: Instant,
    next: AtomicU64,
    deliveries: Arc<AtomicU64>,
    delivery_seed: u64,
}

/// Runs the warm-up (if any), then the measured phase, and prints the JSON summary.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.connections >= 1, "--connections must be at least 1");
    anyhow::ensure!(args.ids >= 1, "--ids must be at least 1");
    anyhow::ensure!(args.duration > 0.0, "--duration must be positive");
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate > 0.0, "--rate must be positive");
    }
    let authorization = match &args.basic_auth {
        Some(pair) => {
            anyhow::ensure!(pair.contains(':'), "--basic-auth must be user:password");
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
        }
        None => None,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .pool_idle_timeout(Duration::from_secs(300))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs_f64(args.timeout))
        .build()
        .context("cannot build the HTTP client")?;
    let deliveries = Arc::new(AtomicU64::new(0));
    let delivery_seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    let cpu_before = process_cpu_seconds();
    if args.warmup > 0.0 {
        let warmup = run_phase(&args, &client, &authorization, &deliveries, delivery_seed, args.warmup).await;
        eprintln!(
            "warm-up: {} ok, {} errors in {:.1} s",
            warmup.ok,
            warmup.errors.values().sum::<u64>(),
            args.warmup
        );
    }
    let cpu_measured_from = process_cpu_seconds();
    let measured = run_phase(&args, &client, &authorization, &deliveries, delivery_seed, args.duration).await;
    let cpu_after = process_cpu_seconds();
    let summary = measured.summary(&args, cpu_after - cpu_measured_from, cpu_after - cpu_before);
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// The merged records of one phase.
struct PhaseRecord {
    ack_us: Vec<u32>,
    service_us: Vec<u32>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    unsent: u64,
    elapsed: Duration,
}

async fn run_phase(
    args: &LoadArgs,
    client: &reqwest::Client,
    authorization: &Option<String>,
    deliveries: &Arc<AtomicU64>,
    delivery_seed: u64,
    seconds: f64,
) -> PhaseRecord {
    let start = Instant::now() + Duration::from_millis(5);
    let end = start + Duration::from_secs_f64(seconds);
    let phase = Arc::new(Phase {
        client: client.clone(),
        url: args.url.clone(),
        authorization: authorization.clone(),
        ids: args.ids,
        start,
        end,
        interval_ns: args.rate.map(|rate| 1e9 / rate),
        give_up: end + Duration::from_secs_f64(seconds.max(5.0)),
        next: AtomicU64::new(0),
        deliveries: Arc::clone(deliveries),
        delivery_seed,
    });
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| {
            let phase = Arc::clone(&phase);
            tokio::spawn(async move {
                if phase.interval_ns.is_some() {
                    open_loop(&phase).await
                } else {
                    closed_loop(&phase).await
                }
            })
        })
        .collect();
    let mut merged = PhaseRecord {
        ack_us: Vec::new(),
        service_us: Vec::new(),
        ok: 0,
        errors: BTreeMap::new(),
        unsent: 0,
        elapsed: Duration::ZERO,
    };
    let mut last_done = start;
    for task in tasks {
        let record = match task.await {
            Ok(record) => record,
            Err(error) => {
                *merged.errors.entry(format!("task: {error}")).or_default() += 1;
                continue;
            }
        };
        merged.ack_us.extend(record.ack_us);
        merged.service_us.extend(record.service_us);
        merged.ok += record.ok;
        merged.unsent += record.unsent;
        for (key, count) in record.errors {
            *merged.errors.entry(key).or_default() += count;
        }
        if let Some(done) = record.last_done {
            last_done = last_done.max(done);
        }
    }
    // Open loop: the phase lasts until the last due request is answered (longer than the
    // duration when the server falls behind); closed loop: until the last answer.
    merged.elapsed = last_done.saturating_duration_since(start).max(Duration::from_secs_f64(seconds));
    merged
}

async fn open_loop(phase: &Phase) -> TaskRecord {
    let interval_ns = phase.interval_ns.unwrap_or(1.0);
    let mut record = TaskRecord::default();
    loop {
        let index = phase.next.fetch_add(1, Ordering::Relaxed);
        let due = phase.start + Duration::from_nanos((index as f64 * interval_ns) as u64);
        if due >= phase.end {
            break;
        }
        let now = Instant::now();
        if now > phase.give_up {
            // Far behind schedule: the rest of the due requests are counted, not sent.
            let remaining = ((phase.end - phase.start).as_nanos() as f64 / interval_ns) as u64;
            record.unsent += remaining.saturating_sub(index);
            // Stop the other tasks too.
            phase.next.store(u64::MAX / 2, Ordering::Relaxed);
            break;
        }
        // tokio's timer has millisecond ticks and wakes at the first tick at or after the
        // deadline: aim one tick early so a request leaves within [due - 1 ms, due], and measure
        // an early one from when it left (never shorter than its service time).
        if let Some(wake) = due.checked_sub(TIMER_TICK).filter(|wake| *wake > now) {
            tokio::time::sleep_until(wake.into()).await;
        }
        let sent = Instant::now();
        send(phase, index, &mut record).await;
        let done = Instant::now();
        record.ack_us.push(micros(done - due.min(sent)));
        record.service_us.push(micros(done - sent));
        record.last_done = Some(done);
    }
    record
}

async fn closed_loop(phase: &Phase) -> TaskRecord {
    let mut record = TaskRecord::default();
    while Instant::now() < phase.end {
        let index = phase.next.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        send(phase, index, &mut record).await;
        let done = Instant::now();
        let latency = micros(done - sent);
        record.ack_us.push(latency);
        record.service_us.push(latency);
        record.last_done = Some(done);
    }
    record
}

async fn send(phase: &Phase, index: u64, record: &mut TaskRecord) {
    let deal_id = index % phase.ids + 1;
    let delivery = phase.deliveries.fetch_add(1, Ordering::Relaxed);
    let body = webhook_body(deal_id, &delivery_id(phase.delivery_seed, delivery));
    let mut request = phase
        .client
        .post(&phase.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(authorization) = &phase.authorization {
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            // Read the whole answer so the connection goes back to the pool.
            let read = response.bytes().await;
            if status.is_success() && read.is_ok() {
                record.ok += 1;
            } else if read.is_err() {
                *record.errors.entry("body".into()).or_default() += 1;
            } else {
                *record.errors.entry(status.as_u16().to_string()).or_default() += 1;
            }
        }
        Err(error) if error.is_timeout() => *record.errors.entry("timeout".into()).or_default() += 1,
        Err(error) if error.is_connect() => *record.errors.entry("connect".into()).or_default() += 1,
        Err(_) => *record.errors.entry("transport".into()).or_default() += 1,
    }
}

fn micros(duration: Duration) -> u32 {
    duration.as_micros().min(u128::from(u32::MAX)) as u32
}

/// A UUID-shaped delivery id, unique per run (seed) and request (counter).
fn delivery_id(seed: u64, counter: u64) -> String {
    let high = mix(seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let low = mix(high ^ counter);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        0x8000 | ((low >> 48) & 0x3fff),
        low & 0xffff_ffff_ffff
    )
}

/// splitmix64's finaliser.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A Pipedrive v2 `change` of a deal, shaped like
/// `shared/fixtures/pipedrive/v2_webhook_change_deal.json` (about 900 bytes).
fn webhook_body(deal_id: u64, delivery_id: &str) -> String {
    let now = jiff::Timestamp::now();
    let timestamp = now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
    let update_time = now.strftime("%Y-%m-%dT%H:%M:%SZ");
    format!(
        concat!(
            r#"{{"data":{{"add_time":"2025-11-24T13:18:55Z","channel":null,"channel_id":null,"close_time":null,"#,
            r#""creator_user_id":1,"currency":"EUR","custom_fields":{{}},"expected_close_date":null,"first_won_time":null,"#,
            r#""id":{deal},"label_ids":[24,25],"lost_reason":null,"lost_time":null,"org_id":1,"origin":"ManuallyCreated","#,
            r#""origin_id":null,"owner_id":1,"person_id":1,"pipeline_id":1,"probability":null,"stage_change_time":null,"#,
            r#""stage_id":2,"status":"open","title":"Bench deal {deal}","update_time":"{update_time}","value":100,"#,
            r#""visible_to":"3","won_time":null}},"previous":{{"title":"Bench deal {deal} (before)"}},"#,
            r#""meta":{{"action":"change","company_id":"1","correlation_id":"{delivery}","entity_id":"{deal}","#,
            r#""entity":"deal","id":"{delivery}","is_bulk_edit":false,"timestamp":"{timestamp}","type":"general","#,
            r#""user_id":"1","version":"2.0","webhook_id":"1","webhook_owner_id":"1","change_source":"app","attempt":1,"#,
            r#""host":"bench.invalid"}}}}"#
        ),
        deal = deal_id,
        delivery = delivery_id,
        update_time = update_time,
        timestamp = timestamp,
    )
}

/// User + system CPU seconds of this process (all threads), from `/proc/self/stat`
/// (clock ticks of 1/100 s, the Linux default); 0 where that file does not exist.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|text| text.parse::<f64>().ok()).unwrap_or(0.0);
    // utime is field 14, stime field 15; `fields[0]` is field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u32], quantile: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(micros: u32) -> f64 {
    (f64::from(micros) / 10.0).round() / 100.0
}

fn latency_summary(samples: &mut [u32]) -> Value {
    samples.sort_unstable();
    json!({
        "p50": millis(percentile(samples, 0.50)),
        "p90": millis(percentile(samples, 0.90)),
        "p99": millis(percentile(samples, 0.99)),
        "p999": millis(percentile(samples, 0.999)),
        "max": millis(samples.last().copied().unwrap_or(0)),
    })
}

impl PhaseRecord {
    fn summary(mut self, args: &LoadArgs, cpu_measured: f64, cpu_total: f64) -> Value {
        let seconds = self.elapsed.as_secs_f64();
        let sent = self.ok + self.errors.values().sum::<u64>();
        json!({
            "mode": if args.max { "max" } else { "rate" },
            "target_rate": args.rate,
            "connections": args.connections,
            "ids": args.ids,
            "duration_s": args.duration,
            "elapsed_s": (seconds * 1000.0).round() / 1000.0,
            "sent": sent,
            "ok": self.ok,
            "errors": self.errors,
            "unsent": self.unsent,
            "rps": (self.ok as f64 / seconds).round(),
            "ack_ms": latency_summary(&mut self.ack_us),
            "service_ms": latency_summary(&mut self.service_us),
            "generator_cpu_s": (cpu_measured * 100.0).round() / 100.0,
            "generator_cpu_total_s": (cpu_total * 100.0).round() / 100.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_pipedrive_v2_changes_with_unique_delivery_ids() {
        let first: Value = serde_json::from_str(&webhook_body(7, &delivery_id(1, 0))).expect("json");
        let second: Value = serde_json::from_str(&webhook_body(7, &delivery_id(1, 1))).expect("json");
        assert_eq!(first["meta"]["action"], "change");
        assert_eq!(first["meta"]["entity"], "deal");
        assert_eq!(first["meta"]["entity_id"], "7");
        assert_eq!(first["data"]["id"], 7);
        assert_ne!(first["meta"]["id"], second["meta"]["id"]);
        let id = first["meta"]["id"].as_str().expect("string");
        assert_eq!(id.len(), 36);
        assert_eq!(id.split('-').map(str::len).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12]);
        assert!(first["meta"]["timestamp"].as_str().expect("string").ends_with('Z'));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), 50);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[], 0.99), 0);
    }
}
