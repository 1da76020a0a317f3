//! `syncline load`: apply a file of JSON lines to one history table.
//!
//! The whole file is validated before anything is written (a malformed line names its line
//! number and nothing is applied); then records are applied in batches, each one transaction
//! in the destination followed by the state-store update.
//!
//! Memory stays bounded whatever the file's size: one long-lived parser thread reads the file
//! and hands batches over a channel that holds one batch, so at most three batches are in
//! flight (being parsed, waiting, being written). The state-store update of a batch runs while
//! the destination applies the next one (see `HistoryWriter::deferring_index_writes`).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use syncline_core::{
    format_timestamp, parse_timestamp, row_hash, snake_case_if, FlatRecord, FlatValue, Flattener, HistoryProfile, LineError, Millis,
    NamingOptions, Observation, ObservationKind, ProfileKind, StartSetting,
};
use syncline_destinations::{
    open_destination, Destination, DestinationConfig, DuckDbDestination, HistoryTarget, HistoryWriter, Observed, WriteStats,
};
use syncline_state::postgres_url::redact_url;
use syncline_state::{open_state_store, StateConfig};

/// The history profiles selectable on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileArg {
    /// `_fivetran_start/_end/_active/_synced`, open end `9999-12-31 23:59:59`.
    Fivetran,
    /// `_cdc_start/_end/_active/_synced`, open end NULL.
    Cdc,
}

/// The start settings selectable on the command line (`--start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartArg {
    /// Versions start when syncline writes them, strictly increasing per table.
    Observed,
    /// Versions start at the record's modified time (`--modified-field`), else at `--at`.
    Source,
}

impl From<StartArg> for StartSetting {
    fn from(start: StartArg) -> Self {
        match start {
            StartArg::Observed => StartSetting::Observed,
            StartArg::Source => StartSetting::Source,
        }
    }
}

/// The state store and the history table a command writes (`syncline load`, `syncline adopt`).
#[derive(Debug, Args)]
pub struct TableArgs {
    /// The state store (current-record index): an SQLite file, as a path or `sqlite://path`
    /// (created if missing), or `postgres://user[:password]@host:5432/database?schema=name`.
    #[arg(long, value_name = "URL", default_value = "state.db")]
    pub state: String,
    /// The source name that scopes the state (one per upstream account; the name in
    /// syncline.toml).
    #[arg(long, default_value = "import")]
    pub source: String,
    /// The entity the records belong to, e.g. `deal`.
    #[arg(long)]
    pub entity: String,
    /// The history table; defaults to `{entity}_history`.
    #[arg(long)]
    pub table: Option<String>,
    /// The field that identifies a record.
    #[arg(long, default_value = "id")]
    pub primary_key: String,
}

impl TableArgs {
    /// The history table: `--table`, else `{entity}_history`.
    pub fn table_name(&self) -> String {
        self.table.clone().unwrap_or_else(|| format!("{}_history", self.entity))
    }
}

/// Arguments of `syncline load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Where the history table goes: `duckdb:///path/warehouse.duckdb` (or a plain path),
    /// `postgres://user[:password]@host:5432/database?schema=name`. Default: the DuckDB file
    /// `warehouse.duckdb`.
    #[arg(long, value_name = "URL", conflicts_with = "duckdb")]
    pub destination: Option<String>,
    /// The DuckDB file to write (created if missing); short for `--destination duckdb://PATH`.
    #[arg(long, value_name = "PATH")]
    pub duckdb: Option<PathBuf>,
    /// The state store and the table.
    #[command(flatten)]
    pub target: TableArgs,
    /// The record's modified-time field (e.g. `update_time`); versions start at its value.
    /// Without it, versions start at `--at`.
    #[arg(long)]
    pub modified_field: Option<String>,
    /// More fields to type as TIMESTAMP, comma-separated (e.g. `add_time,close_time`).
    #[arg(long, value_delimiter = ',')]
    pub timestamp_fields: Vec<String>,
    /// The file is a full extract: ids in the table but not in the file are closed as
    /// deleted at `--at`.
    #[arg(long)]
    pub full_extract: bool,
    /// A file of ids (one per line) deleted upstream at `--at`.
    #[arg(long)]
    pub deleted_ids: Option<PathBuf>,
    /// The observation time, RFC 3339 (default: now). Versions of records without a modified
    /// field start here, and deletes happen here.
    #[arg(long)]
    pub at: Option<String>,
    /// The history profile.
    #[arg(long, value_enum, default_value = "fivetran")]
    pub profile: ProfileArg,
    /// A custom prefix for the history columns (e.g. `_cdc_`), overriding the profile's.
    #[arg(long)]
    pub prefix: Option<String>,
    /// The end of current versions: a timestamp such as `9999-12-31 23:59:59`, or `null`.
    /// Defaults to the profile's.
    #[arg(long)]
    pub open_end: Option<String>,
    /// What a version's start means: `observed` (when syncline wrote it, strictly increasing
    /// per table) or `source` (the record's modified time). Default: the table's stored
    /// setting, else `source`. Changing it on an existing table is refused.
    #[arg(long, value_enum)]
    pub start: Option<StartArg>,
    /// Keep field names as they are instead of converting them to snake_case.
    #[arg(long)]
    pub keep_names: bool,
    /// Records per transaction (larger is faster, smaller uses less memory).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The JSON-lines file to load.
    pub file: PathBuf,
}

/// Records per transaction unless `--batch-size` says otherwise.
const DEFAULT_BATCH_SIZE: usize = 10_000;

/// Everything derived from the arguments before any I/O.
struct LoadPlan {
    naming: NamingOptions,
    primary_key: String,
    modified_column: Option<String>,
    at: Millis,
    profile: HistoryProfile,
}

impl LoadPlan {
    fn from_args(args: &LoadArgs, now: Millis) -> anyhow::Result<Self> {
        let naming = NamingOptions {
            snake_case: !args.keep_names,
        };
        let at = match &args.at {
            Some(text) => parse_timestamp(text)
                .with_context(|| format!("--at `{text}` is not a timestamp; write RFC 3339 such as 2026-01-01T00:00:00Z"))?,
            None => now,
        };
        let base = match args.profile {
            ProfileArg::Fivetran => ProfileKind::Fivetran,
            ProfileArg::Cdc => ProfileKind::Cdc,
        };
        let mut profile = HistoryProfile::of(base);
        if let Some(prefix) = &args.prefix {
            if prefix.is_empty() {
                bail!("--prefix must not be empty; write a prefix such as _cdc_");
            }
            profile = HistoryProfile::with_prefix(prefix, profile.open_end);
        }
        profile.start = args.start.map(StartSetting::from);
        if let Some(open_end) = &args.open_end {
            profile.open_end = match open_end.as_str() {
                "null" | "NULL" => None,
                text => Some(parse_timestamp(text).with_context(|| {
                    format!("--open-end `{text}` is not a timestamp; write one such as '9999-12-31 23:59:59', or null")
                })?),
            };
        }
        if args.batch_size == 0 {
            bail!("--batch-size must be at least 1; the default is {DEFAULT_BATCH_SIZE}");
        }
        Ok(Self {
            naming,
            primary_key: snake_case_if(&args.target.primary_key, naming),
            modified_column: args.modified_field.as_deref().map(|field| snake_case_if(field, naming)),
            at,
            profile,
        })
    }

    /// Parses one line into its flattened record, id and observation time, or says what is
    /// wrong with it.
    fn parse(&self, flattener: &mut Flattener, line: &str) -> anyhow::Result<(FlatRecord, String, Millis)> {
        let record = flattener.flatten_str(line).map_err(|error| match error {
            LineError::Json(error) => anyhow::Error::new(error).context("invalid JSON"),
            LineError::Record(error) => error.into(),
        })?;
        let id = record.primary_key(&self.primary_key)?;
        if let Some(reserved) = record
            .fields
            .iter()
            .find(|(name, _)| self.profile.metadata_columns().contains(&name.as_str()))
        {
            bail!(
                "field `{}` collides with the history column of the same name; choose another --prefix",
                reserved.0
            );
        }
        let time = match &self.modified_column {
            None => self.at,
            Some(column) => match record.get(column) {
                Some(FlatValue::Text(text)) => {
                    parse_timestamp(text).with_context(|| format!("modified field `{column}` holds `{text}`, which is not a timestamp"))?
                }
                _ => bail!("record {id} has no modified field `{column}`; fix the record or drop --modified-field"),
            },
        };
        Ok((record, id, time))
    }

    /// Parses one line into an observation; the line becomes the record the index keeps.
    fn observe(&self, flattener: &mut Flattener, line: &str) -> anyhow::Result<Observed> {
        let (record, id, time) = self.parse(flattener, line)?;
        let hash = row_hash(&record);
        Ok(Observed {
            observation: Observation {
                id,
                time,
                kind: ObservationKind::Upsert { record, row_hash: hash },
            },
            raw: Some(line.to_owned()),
            terminal: false,
        })
    }
}

/// The read buffer of each pass over the file.
const READ_BUFFER: usize = 256 << 10;

/// What validating one range of the file found.
struct RangeCheck {
    /// Lines in the range (up to the first bad one).
    lines: u64,
    /// Records among them.
    records: u64,
    /// The first bad line (1-based within the range) and its error.
    bad: Option<(u64, anyhow::Error)>,
}

/// Validates lines `[start, end)` (byte offsets aligned to line starts).
fn validate_range(path: &Path, start: u64, end: u64, plan: &LoadPlan) -> anyhow::Result<RangeCheck> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}; check the path", path.display()))?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let mut flattener = Flattener::new(plan.naming);
    let (mut offset, mut lines, mut records) = (start, 0u64, 0u64);
    let mut line = String::new();
    while offset < end {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        offset += read as u64;
        lines += 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(error) = plan.parse(&mut flattener, line.trim_end_matches(['\n', '\r'])) {
            return Ok(RangeCheck {
                lines,
                records,
                bad: Some((lines, error)),
            });
        }
        records += 1;
    }
    Ok(RangeCheck { lines, records, bad: None })
}

/// The offset of the first line that starts at or after `offset`.
fn next_line_start(path: &Path, offset: u64) -> anyhow::Result<u64> {
    if offset == 0 {
        return Ok(0);
    }
    let mut reader = BufReader::new(File::open(path)?);
    reader.seek(SeekFrom::Start(offset - 1))?;
    let mut skipped = Vec::new();
    let read = reader.read_until(b'\n', &mut skipped)?;
    Ok(offset - 1 + read as u64)
}

/// Pass one: every line must parse. The file is split in halves checked on two threads.
/// Returns the number of records.
fn validate(path: &Path, plan: &LoadPlan) -> anyhow::Result<u64> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot open {}; check the path", path.display()))?
        .len();
    let middle = next_line_start(path, size / 2)?;
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| validate_range(path, middle, size, plan));
        let first = validate_range(path, 0, middle, plan);
        (
            first,
            second.join().unwrap_or_else(|_| Err(anyhow::anyhow!("validation thread panicked"))),
        )
    });
    let (first, second) = (first?, second?);
    let bad = first.bad.or(second.bad.map(|(line, error)| (first.lines + line, error)));
    if let Some((line, error)) = bad {
        return Err(error.context(format!(
            "{}: line {line}: nothing was written; fix the line and run again",
            path.display()
        )));
    }
    Ok(first.records + second.records)
}

/// What the parser thread sends: the validation result first, then batches of observations.
enum Parsed {
    /// Pass one is over: the number of records, or the first bad line.
    Validated(anyhow::Result<u64>),
    /// A batch of pass two.
    Batch(anyhow::Result<Vec<Observed>>),
}

/// The parser thread, one for the whole load (a thread of its own rather than the blocking
/// pool, whose idle threads would keep the memory they freed): validates the file (pass one,
/// with a helper thread for the second half), then parses it again in batches (pass two),
/// which it sends through a channel holding one batch, so parsing the next batch overlaps
/// writing the current one and at most three batches exist at a time.
fn spawn_parser(
    path: PathBuf,
    plan: Arc<LoadPlan>,
    batch_size: usize,
    sender: tokio::sync::mpsc::Sender<Parsed>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("syncline-parse".into())
        .spawn(move || {
            let validated = validate(&path, &plan);
            let valid = validated.is_ok();
            if sender.blocking_send(Parsed::Validated(validated)).is_err() || !valid {
                return;
            }
            if let Err(error) = parse_batches(&path, &plan, batch_size, &sender) {
                let _ = sender.blocking_send(Parsed::Batch(Err(error)));
            }
        })
        .context("cannot start the parser thread")
}

/// Pass two: parses the file into batches and sends them; stops early when the receiver is gone.
fn parse_batches(path: &Path, plan: &LoadPlan, batch_size: usize, sender: &tokio::sync::mpsc::Sender<Parsed>) -> anyhow::Result<()> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, File::open(path)?);
    let mut flattener = Flattener::new(plan.naming);
    let mut batch = Vec::with_capacity(batch_size);
    let mut number = 0usize;
    let mut buffer = String::new();
    loop {
        buffer.clear();
        let read = reader
            .read_line(&mut buffer)
            .with_context(|| format!("cannot read line {}", number + 1))?;
        if read == 0 {
            break;
        }
        number += 1;
        let line = buffer.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        batch.push(
            plan.observe(&mut flattener, line)
                .with_context(|| format!("line {number} changed while loading"))?,
        );
        if batch.len() >= batch_size {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            if sender.blocking_send(Parsed::Batch(Ok(full))).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = sender.blocking_send(Parsed::Batch(Ok(batch)));
    }
    Ok(())
}

/// The destination as opened for a load.
enum LoadDestination {
    /// DuckDB, holding the file open for the whole load.
    DuckDb(DuckDbDestination),
    /// Any other destination.
    Other(Box<dyn Destination>),
}

impl LoadDestination {
    async fn open(config: &DestinationConfig) -> anyhow::Result<Self> {
        Ok(match config {
            DestinationConfig::DuckDb { path } => LoadDestination::DuckDb(DuckDbDestination::new(path).holding_file_open()),
            other => LoadDestination::Other(open_destination(other).await.context("cannot open the destination")?),
        })
    }

    fn as_dyn(&self) -> &dyn Destination {
        match self {
            LoadDestination::DuckDb(destination) => destination,
            LoadDestination::Other(destination) => destination.as_ref(),
        }
    }

    async fn release(&self) -> anyhow::Result<()> {
        if let LoadDestination::DuckDb(destination) = self {
            destination.release().await?;
        }
        Ok(())
    }
}

/// The destination named by `--destination` or `--duckdb` (default: `warehouse.duckdb`).
fn destination_config(args: &LoadArgs) -> anyhow::Result<DestinationConfig> {
    match (&args.destination, &args.duckdb) {
        (Some(url), _) => url.parse().context("--destination"),
        (None, Some(path)) => Ok(DestinationConfig::DuckDb { path: path.clone() }),
        (None, None) => Ok(DestinationConfig::DuckDb {
            path: "warehouse.duckdb".into(),
        }),
    }
}

/// The destination as the summary names it (never with a password).
fn describe_destination(config: &DestinationConfig) -> String {
    match config {
        DestinationConfig::DuckDb { path } => path.display().to_string(),
        DestinationConfig::Postgres { url, schema } => format!("{} (schema {schema})", redact_url(url)),
        DestinationConfig::BigQuery(config) => format!("bigquery://{}/{}", config.project, config.dataset),
    }
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} records ({per_sec}, {eta} left)") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("loading");
    Some(bar)
}

fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as Millis)
}

/// Runs `syncline load`.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let plan = Arc::new(LoadPlan::from_args(&args, now_millis())?);
    let destination_config = destination_config(&args)?;
    let state_config: StateConfig = args.target.state.parse().context("--state")?;
    let deleted_ids = match &args.deleted_ids {
        None => Vec::new(),
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --deleted-ids {}; check the path", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect(),
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
    let _parser = spawn_parser(args.file.clone(), Arc::clone(&plan), args.batch_size, sender)?;
    let total = match receiver.recv().await {
        Some(Parsed::Validated(result)) => result?,
        _ => bail!("the parser thread stopped before validating the file"),
    };
    tracing::info!(file = %args.file.display(), records = total, elapsed_ms = started.elapsed().as_millis() as u64, "file validated");

    let destination = LoadDestination::open(&destination_config).await?;
    let state = open_state_store(&state_config)
        .await
        .with_context(|| format!("cannot open the state store {}", redact_url(&args.target.state)))?;
    let mut timestamp_columns: HashSet<String> = args
        .timestamp_fields
        .iter()
        .map(|field| snake_case_if(field, plan.naming))
        .collect();
    timestamp_columns.extend(plan.modified_column.clone());
    let target = HistoryTarget {
        source: args.target.source.clone(),
        entity: args.target.entity.clone(),
        table: args.target.table_name(),
        primary_key: plan.primary_key.clone(),
        profile: plan.profile.clone(),
        timestamp_columns,
    };
    let table = target.table.clone();
    let mut writer = HistoryWriter::new(destination.as_dyn(), state.as_ref(), target).deferring_index_writes();
    let bar = progress_bar(total);
    let mut stats = WriteStats::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut done = 0u64;
    while let Some(parsed) = receiver.recv().await {
        let Parsed::Batch(batch) = parsed else { continue };
        let batch = batch?;
        if args.full_extract {
            seen.extend(batch.iter().map(|observed| observed.observation.id.clone()));
        }
        done += batch.len() as u64;
        stats += writer.write(batch, now_millis()).await?;
        report_progress(bar.as_ref(), done, total, &stats);
    }
    if done != total {
        bail!("the file changed while loading ({done} records read, {total} validated); run again");
    }
    if !deleted_ids.is_empty() {
        let deletes = deleted_ids
            .into_iter()
            .map(|id| Observed {
                observation: Observation {
                    id,
                    time: plan.at,
                    kind: ObservationKind::Delete,
                },
                raw: None,
                terminal: false,
            })
            .collect();
        stats += writer.write(deletes, now_millis()).await?;
    }
    if args.full_extract {
        stats += writer.close_absent(&seen, plan.at, now_millis()).await?;
    }
    drop(seen);
    writer.flush().await?;
    drop(writer);
    destination.release().await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let summary = Summary {
        table: &table,
        destination: describe_destination(&destination_config),
        records: total,
        elapsed: started.elapsed().as_secs_f64(),
        at: plan.at,
    };
    print_summary(&args, &summary, &stats);
    Ok(())
}

fn report_progress(bar: Option<&indicatif::ProgressBar>, done: u64, total: u64, stats: &WriteStats) {
    match bar {
        Some(bar) => bar.set_position(done),
        None => tracing::info!(
            done,
            total,
            versions = stats.plan.versions,
            unchanged = stats.plan.unchanged,
            "batch applied"
        ),
    }
}

/// What the summary reports besides the write counts.
struct Summary<'a> {
    table: &'a str,
    destination: String,
    records: u64,
    elapsed: f64,
    at: Millis,
}

fn print_summary(args: &LoadArgs, summary: &Summary<'_>, stats: &WriteStats) {
    let Summary {
        table,
        records,
        elapsed,
        at,
        ..
    } = *summary;
    let plan = stats.plan;
    if args.json {
        let report = serde_json::json!({
            "table": table,
            "records": records,
            "inserted_versions": plan.versions,
            "closed": plan.closed,
            "unchanged": plan.unchanged,
            "deleted": plan.deleted,
            "ignored": plan.ignored,
            "schema_changes": stats.schema_changes,
            "elapsed_seconds": elapsed,
            "observed_at": format_timestamp(at),
            "destination": summary.destination,
        });
        println!("{report}");
        return;
    }
    println!("loaded {records} records into {table} of {} in {elapsed:.2} s", summary.destination);
    println!("  inserted versions  {:>10}", plan.versions);
    println!("  closed (changed)   {:>10}", plan.closed);
    println!("  unchanged          {:>10}", plan.unchanged);
    println!("  deleted            {:>10}", plan.deleted);
    println!("  ignored (stale)    {:>10}", plan.ignored);
    println!("  schema changes     {:>10}", stats.schema_changes);
}
