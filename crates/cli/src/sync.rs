//! `syncline sync` and `syncline check`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use syncline_connectors::reconcile::{sync_source, EntityReport, NoProgress, Progress, SourceRun, SyncMode};
use syncline_connectors::spec::reconciler_supports;
use syncline_connectors::SynclineConfig;
use syncline_destinations::{open_destination, DestinationConfig};
use syncline_state::{open_state_store, StateConfig, StateStore};

/// Arguments of `syncline sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The configuration file.
    #[arg(long, default_value = "syncline.toml")]
    config: PathBuf,
    /// `incremental` (since-filter from the cursor, capped pulls where there is none) or `full`
    /// (compare every id with the current-record index; closes ids deleted upstream).
    #[arg(long, value_enum, default_value_t = ModeArg::Incremental)]
    mode: ModeArg,
    /// Sync only this source (a `[sources.NAME]` of the config).
    #[arg(long)]
    source: Option<String>,
    /// Sync only this entity (`deal`, `ticket`, ...).
    #[arg(long)]
    entity: Option<String>,
}

/// The reconcile mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ModeArg {
    Incremental,
    Full,
}

/// Arguments of `syncline check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file.
    #[arg(long, default_value = "syncline.toml")]
    config: PathBuf,
}

/// Runs `syncline check`: parses, interpolates and validates the config without network.
pub async fn run_check(args: CheckArgs) -> anyhow::Result<()> {
    let config = SynclineConfig::load(&args.config)?;
    println!("{}: ok", args.config.display());
    for (name, source) in &config.sources {
        let unsupported: Vec<&str> = source
            .selected_entities()
            .into_iter()
            .filter(|entity| {
                source
                    .connector
                    .entity(entity)
                    .is_some_and(|spec| !reconciler_supports(source.connector, spec))
            })
            .collect();
        let support = if unsupported.is_empty() {
            String::new()
        } else {
            format!(" (not reconciled by this build yet: {})", unsupported.join(", "))
        };
        println!(
            "  source {name}: {} {}, entities {}{support}",
            source.connector.name(),
            syncline_connectors::redact_url(&source.base_url),
            source.selected_entities().join(", ")
        );
    }
    println!(
        "  destination {}, state {}",
        syncline_connectors::redact_url(&config.destination.url),
        syncline_connectors::redact_url(&config.state.url)
    );
    if config.server.sync_secret.is_none() {
        println!("  POST /sync disabled (no server.sync_secret)");
    }
    Ok(())
}

/// Runs `syncline sync` once and prints a summary; fails when any entity failed (the others
/// still sync).
pub async fn run_sync(args: SyncArgs) -> anyhow::Result<()> {
    let config = SynclineConfig::load(&args.config)?;
    let sources: Vec<String> = match &args.source {
        Some(source) if config.sources.contains_key(source) => vec![source.clone()],
        Some(source) => anyhow::bail!(
            "no source `{source}` in {}; use one of {}",
            args.config.display(),
            config.sources.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => config.sources.keys().cloned().collect(),
    };
    if let Some(entity) = &args.entity {
        let known = sources
            .iter()
            .any(|source| config.sources[source].selected_entities().contains(&entity.as_str()));
        if !known {
            anyhow::bail!("no selected source syncs entity `{entity}`; check --entity and the sources' entities lists");
        }
    }
    let destination_config: DestinationConfig = config.destination.url.parse()?;
    let destination = open_destination(&destination_config).await.context("cannot open the destination")?;
    let state_config: StateConfig = config.state.url.parse()?;
    let state: Arc<dyn StateStore> = Arc::from(open_state_store(&state_config).await.context("cannot open the state store")?);
    let mode = match args.mode {
        ModeArg::Incremental => SyncMode::Incremental,
        ModeArg::Full => SyncMode::Full,
    };
    let terminal = TerminalProgress::new();
    let progress: &dyn Progress = match &terminal {
        Some(terminal) => terminal,
        None => &NoProgress,
    };
    let mut reports = Vec::new();
    for source in &sources {
        if let Some(entity) = &args.entity {
            if !config.sources[source].selected_entities().contains(&entity.as_str()) {
                continue;
            }
        }
        reports.extend(
            sync_source(SourceRun {
                config: &config,
                source,
                destination: destination.as_ref(),
                state: Arc::clone(&state),
                mode,
                only_entity: args.entity.as_deref(),
                progress,
                engine: None,
                locks: &syncline_connectors::WriteLocks::new(),
            })
            .await,
        );
    }
    drop(terminal);
    print!("{}", summary_table(&reports));
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|report| {
            report
                .error
                .as_ref()
                .map(|error| format!("{}.{}: {error}", report.source, report.entity))
        })
        .collect();
    let deferred: Vec<String> = reports
        .iter()
        .filter(|report| report.error.is_none() && report.deferred)
        .map(|report| format!("{}.{}", report.source, report.entity))
        .collect();
    if !deferred.is_empty() {
        // Not a failure: the rest of the run waits for the vendor's daily pool to refill.
        eprintln!(
            "deferred (the api credit reserve is reached; the next run after the pool refills goes on): {}",
            deferred.join(", ")
        );
    }
    if !failed.is_empty() {
        anyhow::bail!("{} of {} entities failed:\n  {}", failed.len(), reports.len(), failed.join("\n  "));
    }
    Ok(())
}

/// The summary table printed after a run.
fn summary_table(reports: &[EntityReport]) -> String {
    let header = [
        "source",
        "entity",
        "method",
        "listed",
        "fetched",
        "new versions",
        "closed",
        "unchanged",
        "deleted",
        "api calls",
        "cost",
        "elapsed",
        "status",
    ];
    let mut rows: Vec<Vec<String>> = reports
        .iter()
        .map(|report| {
            vec![
                report.source.clone(),
                report.entity.clone(),
                report.method.clone(),
                report.listed.to_string(),
                report.fetched.to_string(),
                report.new_versions.to_string(),
                report.closed.to_string(),
                report.unchanged.to_string(),
                report.deleted.to_string(),
                report.calls.calls.to_string(),
                report.calls.cost.to_string(),
                format!("{:.1}s", report.elapsed_ms as f64 / 1000.0),
                match report.outcome() {
                    "failed" => "FAILED".into(),
                    other => other.to_string(),
                },
            ]
        })
        .collect();
    let total_calls: u64 = reports.iter().map(|report| report.calls.calls).sum();
    let total_cost: u64 = reports.iter().map(|report| report.calls.cost).sum();
    let mut total = vec![String::new(); header.len()];
    total[0] = "total".into();
    total[9] = total_calls.to_string();
    total[10] = total_cost.to_string();
    rows.push(total);
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].len())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                if column < 3 {
                    format!("{cell:<w$}", w = widths[column])
                } else {
                    format!("{cell:>w$}", w = widths[column])
                }
            })
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in &rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// One spinner per entity, only on a terminal.
struct TerminalProgress {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
}

impl TerminalProgress {
    fn new() -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        Some(Self {
            multi: indicatif::MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    }
}

impl Progress for TerminalProgress {
    fn entity_started(&self, source: &str, entity: &str) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {prefix:<28} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_prefix(format!("{source}.{entity}"));
        bar.set_message("listing");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(format!("{source}.{entity}"), bar);
        }
    }

    fn listed(&self, source: &str, entity: &str, count: usize) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(bar) = bars.get(&format!("{source}.{entity}")) {
                bar.set_message(format!("{count} records listed"));
            }
        }
    }

    fn entity_finished(&self, report: &EntityReport) {
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(bar) = bars.remove(&format!("{}.{}", report.source, report.entity)) {
                let message = match (&report.error, report.deferred) {
                    (Some(_), _) => "failed".to_string(),
                    (None, true) => "deferred: the api credit reserve is reached".to_string(),
                    (None, false) => format!(
                        "{} listed, {} new versions, {} deleted, {} calls",
                        report.listed, report.new_versions, report.deleted, report.calls.calls
                    ),
                };
                bar.finish_with_message(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_entity_and_totals() {
        let reports = vec![EntityReport {
            source: "pipedrive".into(),
            entity: "deal".into(),
            method: "incremental".into(),
            listed: 12,
            new_versions: 3,
            calls: syncline_connectors::CallStats {
                calls: 2,
                cost: 20,
                ..Default::default()
            },
            ..EntityReport::default()
        }];
        let table = summary_table(&reports);
        assert!(table.lines().next().unwrap().contains("new versions"));
        assert!(table.contains("pipedrive  deal"));
        assert!(table.lines().last().unwrap().starts_with("total"));
        let outcomes = |reports: &[EntityReport]| -> Vec<String> {
            summary_table(reports)
                .lines()
                .skip(1)
                .filter(|line| !line.starts_with("total"))
                .map(|line| line.split_whitespace().last().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(outcomes(&reports), ["ok"]);
        let deferred = vec![
            EntityReport {
                source: "desk".into(),
                entity: "ticket".into(),
                deferred: true,
                ..EntityReport::default()
            },
            EntityReport {
                source: "desk".into(),
                entity: "thread".into(),
                error: Some("boom".into()),
                ..EntityReport::default()
            },
        ];
        assert_eq!(outcomes(&deferred), ["deferred", "FAILED"]);
    }

    #[test]
    fn example_configs_pass_check() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut checked = 0;
        for entry in std::fs::read_dir(&examples).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|ext| ext.to_str()) != Some("toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            SynclineConfig::parse_with_env(&text, |name| Some(format!("value-of-{name}")))
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            checked += 1;
        }
        assert!(checked >= 1);
    }
}
