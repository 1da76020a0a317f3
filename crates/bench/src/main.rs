//! `syncline-bench`: the helpers of `bench/webhooks.sh`.
//!
//! - `load`: sends authenticated Pipedrive v2 webhooks over keep-alive connections, open loop at
//!   a fixed rate (latency measured from each request's scheduled send time, so a slow server
//!   cannot hide its queueing) or closed loop as fast as the server answers, and prints JSON;
//! - `bare`: an axum server whose `POST /webhooks/{source}` reads the body and answers 200, the
//!   ceiling the webhook server is compared with;
//! - `wait-ready`: polls a URL until it answers 200 and prints the time since a given instant
//!   (the spawn of the server), for start-to-ready measurements;
//! - `freshness`: webhook-to-row latency with and without a full reconcile (bench/freshness.sh).

mod bare;
mod freshness;
mod load;
mod ready;

use clap::{Parser, Subcommand};

/// Benchmark helpers for `syncline serve` (see bench/README.md).
#[derive(Debug, Parser)]
#[command(name = "syncline-bench", version, about)]
struct Cli {
    /// Async runtime worker threads (default: one per core, as `syncline serve`).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send webhook load and print a JSON summary of throughput and acknowledgement latency.
    Load(load::LoadArgs),
    /// Run a bare axum server that acknowledges every webhook with 200 (the ceiling).
    Bare(bare::BareArgs),
    /// Poll a URL until it answers 200; print the milliseconds since --since-unix-ns as JSON.
    WaitReady(ready::WaitReadyArgs),
    /// Webhook-to-row latency with and without a full reconcile running (bench/freshness.sh).
    Freshness(freshness::FreshnessArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = cli.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Load(args) => load::run(args).await,
            Command::Bare(args) => bare::run(args).await,
            Command::WaitReady(args) => ready::run(args).await,
            Command::Freshness(args) => freshness::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
