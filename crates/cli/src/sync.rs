//! `syncline sync` and `syncline check` (owned by the connectors work).

/// Arguments of `syncline sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {}

/// Arguments of `syncline check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

/// Runs `syncline sync`.
pub async fn run_sync(_args: SyncArgs) -> anyhow::Result<()> {
    anyhow::bail!("syncline sync is not built yet")
}

/// Runs `syncline check`.
pub async fn run_check(_args: CheckArgs) -> anyhow::Result<()> {
    anyhow::bail!("syncline check is not built yet")
}
