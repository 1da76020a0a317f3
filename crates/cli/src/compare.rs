//! `syncline compare` (owned by the destinations work).

/// Arguments of `syncline compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {}

/// Runs `syncline compare`; the exit code is 1 when anything differs.
pub async fn run(_args: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("syncline compare is not built yet")
}
