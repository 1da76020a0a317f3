//! The `syncline` binary.

mod adopt;
mod compare;
mod demo;
mod load;
mod serve;
mod simulate;
mod sync;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

/// mimalloc: bulk loads allocate and free millions of small strings; glibc's allocator spent
/// more time there (and in page faults) than syncline spent on its own work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// syncline keeps a warehouse in step with SaaS APIs and writes every change as a version in
/// an SCD Type 2 history table.
#[derive(Debug, Parser)]
#[command(name = "syncline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply a file of JSON lines to one history table (also how a snapshot from an old
    /// connector is imported).
    Load(load::LoadArgs),
    /// Run a simulated upstream API (Pipedrive, Zoho Desk or HaloPSA) on this machine.
    Simulate(simulate::SimulateArgs),
    /// Reconcile sources with their upstream APIs (incremental or full).
    Sync(sync::SyncArgs),
    /// Validate a configuration file without touching the network.
    Check(sync::CheckArgs),
    /// Compare two history datasets (migration parity check).
    Compare(compare::CompareArgs),
    /// Carry a table's history over from the old connector into syncline's table and index.
    Adopt(adopt::AdoptArgs),
    /// Run the webhook server, the inbox worker and the scheduler.
    Serve(serve::ServeArgs),
    /// Show, retry or drop the webhook inbox's dead letters.
    Inbox(serve::InboxArgs),
    /// Run the whole loop against a simulated Pipedrive, no accounts needed, and check parity.
    Demo(demo::DemoArgs),
}

/// Logs go to stderr: readable on a terminal, JSON lines otherwise. `RUST_LOG` filters them.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.compact().init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Load(args) => load::run(args).await,
            Command::Simulate(args) => simulate::run(args).await,
            Command::Sync(args) => sync::run_sync(args).await,
            Command::Check(args) => sync::run_check(args).await,
            Command::Compare(args) => compare::run(args).await,
            Command::Adopt(args) => adopt::run(args).await,
            Command::Serve(args) => serve::run_serve(args).await,
            Command::Inbox(args) => serve::run_inbox(args).await,
            Command::Demo(args) => demo::run(args).await,
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
