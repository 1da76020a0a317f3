//! `syncline simulate <connector>`: run a simulated upstream API until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use syncline_simulator::{BasicAuth, Connector, PipedriveWebhookVersion, Simulator, SimulatorConfig};

/// Arguments of `syncline simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Which upstream to simulate: `pipedrive`, `zoho_desk` or `halopsa`.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(["pipedrive", "zoho_desk", "halopsa"]))]
    pub connector: String,
    /// A JSON simulator config file (see docs/simulator.md); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed of records, changes and faults.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to POST webhooks (a loopback http:// URL).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Background changes per second (0 turns the generator off).
    #[arg(long, default_value_t = 1.0)]
    pub changes_per_second: f64,
    /// Keep the virtual clock still instead of following real time.
    #[arg(long)]
    pub manual_clock: bool,
    /// Pipedrive webhook payload version: `v1` or `v2`.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["v1", "v2"]))]
    pub pipedrive_webhook_version: Option<String>,
    /// Pipedrive webhook HTTP Basic credentials as `user:password`.
    #[arg(long)]
    pub webhook_basic_auth: Option<String>,
    /// Zoho Desk: the webhook id the deliveries' JWT names (`aud = webhookId:<id>`); configure
    /// the same id as `verify = { type = "zoho_jwt", webhook_id = "..." }` in syncline.toml.
    #[arg(long)]
    pub zoho_webhook_id: Option<String>,
    /// Zoho Desk: the portal's daily API credit pool (default 1000000).
    #[arg(long)]
    pub zoho_daily_credits: Option<u64>,
    /// Multiplier on the webhook retry schedule (3, 30, 150 s).
    #[arg(long)]
    pub retry_scale: Option<f64>,
    /// Access-token lifetime in seconds.
    #[arg(long)]
    pub token_lifetime_secs: Option<u64>,
    /// Issue a new refresh token on every refresh and refuse the old one.
    #[arg(long)]
    pub rotate_refresh_tokens: bool,
    /// Probability that a webhook is dropped.
    #[arg(long)]
    pub drop_rate: Option<f64>,
    /// Probability that a webhook is sent twice.
    #[arg(long)]
    pub duplicate_rate: Option<f64>,
    /// Probability that a webhook is sent after the next one.
    #[arg(long)]
    pub reorder_rate: Option<f64>,
    /// Probability that an API call gets 429 with Retry-After.
    #[arg(long)]
    pub rate_limit_rate: Option<f64>,
    /// Probability that an API call gets a 5xx.
    #[arg(long)]
    pub server_error_rate: Option<f64>,
    /// Eventual-consistency lag of since-filters, in milliseconds.
    #[arg(long)]
    pub consistency_lag_ms: Option<u64>,
    /// Keep the last N served data requests with their response bodies at `/_sim/requests`
    /// (0, the default, keeps none).
    #[arg(long)]
    pub request_log_limit: Option<usize>,
}

fn build_config(args: &SimulateArgs) -> anyhow::Result<SimulatorConfig> {
    let connector: Connector = args
        .connector
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown connector {:?}; use pipedrive, zoho_desk or halopsa", args.connector))?;
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("could not read simulator config {}", path.display()))?;
            serde_json::from_str::<SimulatorConfig>(&text)
                .with_context(|| format!("simulator config {} is not valid; see docs/simulator.md", path.display()))?
        }
        None => SimulatorConfig::default(),
    };
    config.connector = connector;
    config.bind = Some(SocketAddr::new(args.host, args.port));
    config.realtime_clock = !args.manual_clock;
    config.changes_per_second = args.changes_per_second;
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(url) = &args.webhook_url {
        config.webhooks.target_url = Some(url.clone());
    }
    if let Some(version) = &args.pipedrive_webhook_version {
        config.webhooks.pipedrive_version = if version == "v1" {
            PipedriveWebhookVersion::V1
        } else {
            PipedriveWebhookVersion::V2
        };
    }
    if let Some(pair) = &args.webhook_basic_auth {
        let (username, password) = pair.split_once(':').context("--webhook-basic-auth must look like user:password")?;
        config.webhooks.pipedrive_basic_auth = Some(BasicAuth {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    if let Some(webhook_id) = &args.zoho_webhook_id {
        if webhook_id.trim().is_empty() {
            anyhow::bail!("--zoho-webhook-id is empty; give the id to sign deliveries for, e.g. 1892000000612001");
        }
        config.webhooks.zoho_webhook_id = webhook_id.trim().to_string();
    }
    if let Some(credits) = args.zoho_daily_credits {
        config.zoho_daily_credits = credits;
    }
    if let Some(scale) = args.retry_scale {
        config.webhooks.retry_scale = scale;
    }
    if let Some(lifetime) = args.token_lifetime_secs {
        config.auth.access_token_lifetime_secs = Some(lifetime);
    }
    if args.rotate_refresh_tokens {
        config.auth.rotate_refresh_tokens = true;
    }
    let faults = &mut config.faults;
    faults.webhook_drop_rate = args.drop_rate.unwrap_or(faults.webhook_drop_rate);
    faults.webhook_duplicate_rate = args.duplicate_rate.unwrap_or(faults.webhook_duplicate_rate);
    faults.webhook_reorder_rate = args.reorder_rate.unwrap_or(faults.webhook_reorder_rate);
    faults.rate_limit_rate = args.rate_limit_rate.unwrap_or(faults.rate_limit_rate);
    faults.server_error_rate = args.server_error_rate.unwrap_or(faults.server_error_rate);
    faults.eventual_consistency_lag_ms = args.consistency_lag_ms.unwrap_or(faults.eventual_consistency_lag_ms);
    if let Some(limit) = args.request_log_limit {
        config.request_log_limit = limit;
    }
    config.validate().context("the simulator settings are not valid")?;
    Ok(config)
}

/// Runs a simulator until interrupted.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = build_config(&args)?;
    let simulator = Simulator::start(config).await.context("could not start the simulator")?;
    let credentials = simulator.credentials();
    println!("{} simulator listening on {}", simulator.connector(), simulator.base_url());
    println!("{}", serde_json::to_string_pretty(&credentials)?);
    println!("ground truth and controls: {}/_sim/  (Ctrl-C to stop)", simulator.base_url());
    tokio::signal::ctrl_c().await.context("could not wait for Ctrl-C")?;
    simulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn zoho_webhook_id_and_daily_credits_reach_the_simulator_config() {
        let cli = Cli::parse_from([
            "simulate",
            "zoho_desk",
            "--zoho-webhook-id",
            "1892000000777001",
            "--zoho-daily-credits",
            "5000",
        ]);
        let config = build_config(&cli.args).unwrap();
        assert_eq!(config.webhooks.zoho_webhook_id, "1892000000777001");
        assert_eq!(config.zoho_daily_credits, 5_000);
        let cli = Cli::parse_from(["simulate", "zoho_desk", "--zoho-webhook-id", " "]);
        assert!(build_config(&cli.args).unwrap_err().to_string().contains("--zoho-webhook-id"));
        // Zoho signs with its JWT only: there is no HMAC secret to set.
        assert!(Cli::try_parse_from(["simulate", "zoho_desk", "--zoho-webhook-secret", "s"]).is_err());
    }
}
