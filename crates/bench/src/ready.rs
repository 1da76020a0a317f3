//! `syncline-bench wait-ready`: start-to-ready time of a server spawned just before.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

/// Arguments of `syncline-bench wait-ready`.
#[derive(Debug, clap::Args)]
pub struct WaitReadyArgs {
    /// The URL that answers 200 once the server is ready (`/readyz`).
    #[arg(long)]
    url: String,
    /// The instant to measure from, in nanoseconds since the Unix epoch (`date +%s%N` taken just
    /// before the spawn); default: when this command starts.
    #[arg(long)]
    since_unix_ns: Option<u128>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Pause between two polls, in milliseconds.
    #[arg(long, default_value_t = 2)]
    interval_ms: u64,
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0)
}

/// Polls until a 200, then prints `{"ready_ms": .., "polls": ..}`.
pub async fn run(args: WaitReadyArgs) -> anyhow::Result<()> {
    let since = args.since_unix_ns.unwrap_or_else(unix_ns);
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    // A fresh connection per poll: a refused connect fails fast, and nothing is pooled across
    // the moment the server starts listening.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut polls = 0u64;
    loop {
        polls += 1;
        let last = match client.get(&args.url).send().await {
            Ok(response) if response.status().is_success() => {
                let ready_ms = unix_ns().saturating_sub(since) as f64 / 1e6;
                println!("{}", json!({ "ready_ms": (ready_ms * 10.0).round() / 10.0, "polls": polls }));
                return Ok(());
            }
            Ok(response) => format!("status {}", response.status()),
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{} was not ready after {} s (last: {last}); see the server's log",
                args.url,
                args.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
}
