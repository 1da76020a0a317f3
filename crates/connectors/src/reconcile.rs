//! The reconciler: per entity, incremental (since-filter from the cursor minus a lookback
//! window, or a capped pull of the newest records where the API has no since-filter) or full
//! (list everything, compare with the current-record index, write only what is new or newer,
//! close ids that vanished upstream). Every record goes through the history engine, so an
//! unchanged record is never rewritten.
//!
//! Where the API lists deleted records (Pipedrive v2 deals, `status=deleted`), an incremental
//! run also reads that listing with the same since-filter and closes the ids it returns at their
//! delete time, so a lost delete webhook heals without waiting for the full reconcile.
//!
//! Where list rows are partial (`list_is_partial`), every mode compares the listed ids and
//! modified times with the current-record index and fetches the detail of new or changed ids
//! only, so the reconciler writes the same shape (and hash) as the webhook worker. A since-filter
//! the vendor may ignore ([`crate::spec::IgnoredFilter::FallBackToCapped`]) is watched: a page
//! with rows older than the since time turns the run into a capped pull.
//!
//! The decisions are pure functions ([`since_for`], [`select_changed`], [`advance_cursor`],
//! [`dedupe_latest`], [`deleted_list_request`], [`delete_observations`]); the I/O around them is
//! thin.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use syncline_core::{
    flatten_record, format_timestamp, parse_timestamp, row_hash, snake_case_if, CurrentVersion, Millis, NamingOptions, Observation,
    ObservationKind,
};
use syncline_destinations::{Destination, HistoryTarget, Observed};
use syncline_state::StateStore;

use crate::config::{InitialSync, SourceConfig, SynclineConfig};
use crate::http::{CallStats, HttpEngine};
use crate::list::{list_children, list_records, ListRequest, Pager, SearchWindow};
use crate::locks::WriteLocks;
use crate::pipedrive::{cached_field_names, refresh_field_names, FieldNames};
use crate::refetch::{write_under_lock, BatchTarget, BatchWritten};
use crate::spec::{reconciler_supports, EntitySpec, SinceFilter};
use crate::ConnectorError;

/// Observations written per history batch.
const BATCH_SIZE: usize = 2_000;

/// How to reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Since-filter (or capped pull) from the cursor.
    Incremental,
    /// Every id compared with the current-record index; vanished ids closed as deleted.
    Full,
}

impl SyncMode {
    /// The name shown in the summary.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Incremental => "incremental",
            SyncMode::Full => "full",
        }
    }
}

/// What happened to one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityReport {
    /// Source name.
    pub source: String,
    /// Entity name.
    pub entity: String,
    /// `incremental`, `capped`, `full`, `baseline`.
    pub method: String,
    /// Records listed.
    pub listed: usize,
    /// Records fetched one by one (detail calls).
    pub fetched: usize,
    /// New versions written.
    pub new_versions: usize,
    /// Versions closed because a newer one superseded them.
    pub closed: usize,
    /// Records whose content had not changed (skipped).
    pub unchanged: usize,
    /// Ids closed as deleted.
    pub deleted: usize,
    /// Records this run corrected that no webhook had delivered: new, changed or reopened
    /// records whose change is older than [`HEAL_GRACE_MS`] when listed, and ids closed as
    /// deleted. The entity's first run (the initial load) heals nothing.
    pub healed: usize,
    /// Ids missing from a full listing that were confirmed with a detail GET.
    pub confirmations: usize,
    /// Of those, ids the API still returned (rows shifted between offset pages): kept.
    pub kept_after_confirmation: usize,
    /// Records left out on their own (an invalid id, a detail the API refused or answered for
    /// another id, a record that cannot become a row); each is logged, and the next run
    /// tries it again.
    pub skipped: usize,
    /// True when a budgeted child listing stopped early; the next full run resumes it.
    pub resumable: bool,
    /// True when the vendor ignored a since-filter that may be ignored (rows modified before the
    /// since time came back): the run went on as a capped pull (`method` is `capped`).
    pub since_filter_ignored: bool,
    /// API calls and cost.
    pub calls: CallStats,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// The error, when the entity failed.
    pub error: Option<String>,
    /// True when the entity did not run, or stopped, because the vendor's daily API pool fell
    /// under the source's `credit_reserve`: not a failure; the next run after the pool refills
    /// goes on from the cursor.
    pub deferred: bool,
}

impl EntityReport {
    /// `ok`, `failed` or `deferred`: the word the summary, `/sync` and the metrics show.
    pub fn outcome(&self) -> &'static str {
        if self.error.is_some() {
            "failed"
        } else if self.deferred {
            "deferred"
        } else {
            "ok"
        }
    }

    /// Adds what one history batch did.
    pub fn add_written(&mut self, written: &BatchWritten) {
        self.new_versions += written.stats.plan.versions;
        self.closed += written.stats.plan.closed;
        self.deleted += written.stats.plan.deleted;
        self.unchanged += written.stats.plan.unchanged + written.stats.plan.ignored;
        self.healed += written.healed;
    }
}

/// A change older than this (by its modified time) when the reconciler finds it missing from
/// the warehouse had time to arrive by webhook: writing it counts as healed. Younger changes may
/// still be on their way through the inbox (the routine race between the two paths).
pub const HEAL_GRACE_MS: i64 = 120_000;

/// Progress notifications for a terminal display.
pub trait Progress: Send + Sync {
    /// An entity starts.
    fn entity_started(&self, source: &str, entity: &str);
    /// Records listed so far.
    fn listed(&self, source: &str, entity: &str, count: usize);
    /// An entity finished.
    fn entity_finished(&self, report: &EntityReport);
}

/// A progress sink that shows nothing.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn entity_started(&self, _: &str, _: &str) {}
    fn listed(&self, _: &str, _: &str, _: usize) {}
    fn entity_finished(&self, _: &EntityReport) {}
}

// ---------------------------------------------------------------------------------------------
// Pure decisions

/// The since-filter start: the cursor minus the lookback window.
pub fn since_for(cursor: Millis, lookback_ms: i64) -> Millis {
    cursor.saturating_sub(lookback_ms)
}

/// The new cursor: the largest modified time seen, never moving backwards.
pub fn advance_cursor(old: Option<Millis>, seen: impl IntoIterator<Item = Millis>) -> Option<Millis> {
    seen.into_iter()
        .fold(old, |best, time| Some(best.map_or(time, |best| best.max(time))))
}

/// Indexes of listed `(id, modified)` pairs that need writing: ids the index does not know, ids
/// it holds as deleted, ids listed with a later modified time, and ids without a modified time
/// (their content decides, through skip-if-unchanged).
pub fn select_changed(listed: &[(String, Option<Millis>)], index: &HashMap<String, CurrentVersion>) -> Vec<usize> {
    listed
        .iter()
        .enumerate()
        .filter(|(_, (id, modified))| match (index.get(id), modified) {
            (None, _) => true,
            (Some(current), _) if current.end.is_some() => true,
            (Some(current), Some(modified)) => *modified > current.modified,
            (Some(_), None) => true,
        })
        .map(|(position, _)| position)
        .collect()
}

/// Keeps one record per id (the one with the latest modified time, else the last listed), in
/// first-seen order; offset paging can list a record twice when rows shift.
pub fn dedupe_latest(records: Vec<(String, Option<Millis>, Value)>) -> Vec<(String, Option<Millis>, Value)> {
    let mut position: HashMap<String, usize> = HashMap::with_capacity(records.len());
    let mut out: Vec<(String, Option<Millis>, Value)> = Vec::with_capacity(records.len());
    for item in records {
        match position.get(&item.0) {
            Some(&at) => {
                if item.1 >= out[at].1 {
                    out[at] = item;
                }
            }
            None => {
                position.insert(item.0.clone(), out.len());
                out.push(item);
            }
        }
    }
    out
}

/// The request of an entity's deleted listing: its since-filtered (incremental) list request
/// plus the listing's parameters. `None` when the API has no such listing.
pub fn deleted_list_request(spec: &EntitySpec, incremental: &ListRequest) -> Option<ListRequest> {
    let listing = spec.deleted_listing?;
    let mut request = incremental.clone();
    request
        .params
        .extend(listing.params.iter().map(|(key, value)| (key.to_string(), value.to_string())));
    Some(request)
}

/// One delete observation per record of a deleted listing, at the record's modified time (the
/// delete time); records without an id or a modified time are skipped. The planner ignores
/// deletes of ids that are not active and deletes older than the current version, so listing a
/// delete again changes nothing.
pub fn delete_observations(spec: &EntitySpec, records: &[Value]) -> Vec<Observation> {
    records
        .iter()
        .filter_map(|record| {
            Some(Observation {
                id: record_id(record, spec.id_field)?,
                time: record_modified(record, spec)?,
                kind: ObservationKind::Delete,
            })
        })
        .collect()
}

/// The id of a record as text.
pub fn record_id(record: &Value, field: &str) -> Option<String> {
    match &record[field] {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The modified time of a record.
pub fn record_modified(record: &Value, spec: &EntitySpec) -> Option<Millis> {
    spec.modified_field
        .and_then(|field| record[field].as_str())
        .and_then(parse_timestamp)
}

/// True when every field of a (partial) list row equals the same field of the stored record:
/// the row shows no change. A row with no field, or a stored value that is not an object,
/// matches nothing.
pub fn row_matches_stored(row: &Value, stored: &Value) -> bool {
    let mut row = row.clone();
    avoid_column_collisions(&mut row);
    match (&row, stored) {
        (Value::Object(fields), Value::Object(stored)) => {
            !fields.is_empty() && fields.iter().all(|(key, value)| stored.get(key) == Some(value))
        }
        _ => false,
    }
}

/// Vendors sometimes send both a flat field and a nested object that flattens onto it (HaloPSA
/// tickets: `priority_name` and `priority: {"name": ..}`). Such a nested object is kept whole,
/// as its JSON text in one column named after it, so no value is dropped and no column clashes.
pub fn avoid_column_collisions(record: &mut Value) {
    let Value::Object(map) = record else { return };
    let naming = NamingOptions::default();
    let flat_names: HashSet<String> = map
        .iter()
        .filter(|(_, value)| !value.is_object())
        .map(|(key, _)| snake_case_if(key, naming))
        .collect();
    let clashing: Vec<String> = map
        .iter()
        .filter(|(_, value)| value.is_object())
        .filter(|(key, value)| {
            let single = Value::Object([((*key).clone(), (*value).clone())].into_iter().collect());
            match flatten_record(single, naming) {
                Ok(flat) => flat.fields.iter().any(|(column, _)| flat_names.contains(column)),
                Err(_) => true,
            }
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in clashing {
        if let Some(value) = map.get_mut(&key) {
            *value = Value::String(value.to_string());
        }
    }
}

/// Turns a record into an observation at its modified time (else `observed_at`). A record that
/// carries its vendor's deleted flag (a list, search or detail row of a soft-deleted record) is a
/// delete at that time, never an active version.
pub fn observe(spec: &EntitySpec, mut record: Value, observed_at: Millis) -> Result<Observed, ConnectorError> {
    let modified = record_modified(&record, spec);
    if spec.is_deleted(&record) {
        if let Some(id) = record_id(&record, spec.id_field) {
            return Ok(delete_at(id, modified.unwrap_or(observed_at)));
        }
    }
    avoid_column_collisions(&mut record);
    let terminal = spec.terminal.is_some_and(|rule| rule.is_terminal(&record));
    let raw = record.to_string();
    let flat = flatten_record(record, NamingOptions::default())?;
    let id = flat.primary_key(spec.id_field)?;
    let hash = row_hash(&flat);
    Ok(Observed {
        observation: Observation {
            id,
            time: modified.unwrap_or(observed_at),
            kind: ObservationKind::Upsert {
                record: flat,
                row_hash: hash,
            },
        },
        raw: Some(raw),
        terminal,
    })
}

/// The since-filter time as the vendor wants it.
pub fn format_since(filter: SinceFilter, since: Millis) -> String {
    let text = format_timestamp(since);
    match filter {
        // Pipedrive: RFC 3339 in whole seconds (the filter is inclusive; seconds round down).
        SinceFilter::UpdatedSince => format!("{}Z", text.get(..19).unwrap_or(&text)),
        SinceFilter::ModifiedTimeRange { .. } | SinceFilter::SinceParam { .. } => text,
    }
}

/// The history target of an entity.
pub fn history_target(config: &SynclineConfig, source: &str, spec: &EntitySpec) -> HistoryTarget {
    let naming = NamingOptions::default();
    let timestamp_columns = spec
        .modified_field
        .iter()
        .chain(spec.timestamp_fields.iter())
        .map(|field| snake_case_if(field, naming))
        .collect();
    HistoryTarget {
        source: source.to_string(),
        entity: spec.name.to_string(),
        table: config.history.table_name(spec.name),
        primary_key: snake_case_if(spec.id_field, naming),
        profile: config.history.profile(),
        timestamp_columns,
    }
}

/// The wall clock in milliseconds since the Unix epoch (the I/O edge's clock; the core takes
/// times as arguments).
pub fn wall_clock_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|duration| duration.as_millis() as Millis)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// I/O

/// Everything one source's run needs.
pub struct SourceRun<'a> {
    /// The whole configuration.
    pub config: &'a SynclineConfig,
    /// Source name.
    pub source: &'a str,
    /// The destination.
    pub destination: &'a dyn Destination,
    /// The state store.
    pub state: Arc<dyn StateStore>,
    /// Mode requested.
    pub mode: SyncMode,
    /// Only this entity, if given.
    pub only_entity: Option<&'a str>,
    /// Progress display.
    pub progress: &'a dyn Progress,
    /// The source's HTTP engine when the caller keeps one (the server shares one engine, and so
    /// one OAuth2 token, between the webhook worker and the reconciler); `None` makes one.
    pub engine: Option<Arc<HttpEngine>>,
    /// The write locks shared with the webhook worker: taken for one batch at a time.
    pub locks: &'a WriteLocks,
}

/// Reconciles every selected entity of one source. An entity that fails is reported with its
/// error and the others still run.
pub async fn sync_source(run: SourceRun<'_>) -> Vec<EntityReport> {
    let source_config = &run.config.sources[run.source];
    let entities: Vec<&'static str> = source_config
        .selected_entities()
        .into_iter()
        .filter(|entity| run.only_entity.is_none_or(|only| only == *entity))
        .collect();
    let engine = match run.engine.clone().map_or_else(
        || HttpEngine::new(run.source, source_config, Arc::clone(&run.state)).map(Arc::new),
        Ok,
    ) {
        Ok(engine) => engine,
        Err(error) => {
            return entities
                .iter()
                .map(|entity| EntityReport {
                    source: run.source.to_string(),
                    entity: entity.to_string(),
                    error: Some(error.to_string()),
                    ..EntityReport::default()
                })
                .collect()
        }
    };
    engine.start_run();
    let mut reports = Vec::with_capacity(entities.len());
    // Set once the vendor's pool falls under the source's credit reserve.
    let mut deferred: Option<String> = None;
    for entity in entities {
        let spec = source_config
            .connector
            .entity(entity)
            .expect("selected entities come from the spec");
        if !reconciler_supports(source_config.connector, spec) {
            let report = EntityReport {
                source: run.source.to_string(),
                entity: entity.to_string(),
                method: run.mode.name().to_string(),
                error: Some(format!(
                    "the {} {entity} reconciler is not built yet; remove `{entity}` from sources.{}.entities",
                    source_config.connector.name(),
                    run.source
                )),
                ..EntityReport::default()
            };
            run.progress.entity_finished(&report);
            reports.push(report);
            continue;
        }
        if let Some(reason) = &deferred {
            // The pool is under the reserve: later entities wait for the next run too.
            let report = EntityReport {
                source: run.source.to_string(),
                entity: entity.to_string(),
                method: run.mode.name().to_string(),
                deferred: true,
                ..EntityReport::default()
            };
            tracing::warn!(source = run.source, entity, %reason, "entity deferred: the api credit reserve is reached");
            run.progress.entity_finished(&report);
            reports.push(report);
            continue;
        }
        run.progress.entity_started(run.source, entity);
        let started = Instant::now();
        let calls_before = engine.stats();
        let mut report = EntityReport {
            source: run.source.to_string(),
            entity: entity.to_string(),
            method: run.mode.name().to_string(),
            ..EntityReport::default()
        };
        let result = match engine.check_credit_reserve() {
            Ok(()) => sync_entity(&run, source_config, &engine, spec, &mut report).await,
            Err(error) => Err(error),
        };
        let calls_after = engine.stats();
        report.calls = calls_after - calls_before;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        if let Err(error @ ConnectorError::CreditReserve { .. }) = &result {
            // Not a failure: the credits left belong to the customer's other integrations. What
            // this entity wrote stays; its cursor did not move, so the next run goes on.
            tracing::warn!(
                source = run.source,
                entity,
                reason = %error,
                listed = report.listed,
                new_versions = report.new_versions,
                "entity deferred: the api credit reserve is reached"
            );
            report.deferred = true;
            deferred = Some(error.to_string());
        } else if let Err(error) = result {
            tracing::error!(source = run.source, entity, %error, "entity failed");
            report.error = Some(error.to_string());
        } else {
            tracing::info!(
                source = run.source,
                entity,
                method = %report.method,
                listed = report.listed,
                new_versions = report.new_versions,
                deleted = report.deleted,
                healed = report.healed,
                confirmations = report.confirmations,
                kept_after_confirmation = report.kept_after_confirmation,
                resumable = report.resumable,
                calls = report.calls.calls,
                cost = report.calls.cost,
                "entity synced"
            );
        }
        run.progress.entity_finished(&report);
        reports.push(report);
    }
    reports
}

fn cursor_key_value(cursor: Millis) -> String {
    format_timestamp(cursor)
}

/// What one entity's run works with.
struct EntityRun<'r, 'a> {
    run: &'r SourceRun<'a>,
    engine: &'r HttpEngine,
    spec: &'r EntitySpec,
    parent: Option<&'r EntitySpec>,
    mode: SyncMode,
    /// `Some(time)`: a correction of a change older than this counts as healed; `None` on the
    /// entity's first run (the initial load is routine).
    heal_before: Option<Millis>,
}

impl EntityRun<'_, '_> {
    fn target(&self) -> BatchTarget<'_> {
        BatchTarget {
            config: self.run.config,
            source: self.run.source,
            destination: self.run.destination,
            state: self.run.state.as_ref(),
            locks: self.run.locks,
        }
    }

    /// Writes observations in batches under the entity's write lock, adding to the report.
    async fn write(&self, observed: Vec<Observed>, observed_at: Millis, report: &mut EntityReport) -> Result<(), ConnectorError> {
        let mut observed = observed;
        while !observed.is_empty() {
            let rest = observed.split_off(observed.len().min(BATCH_SIZE));
            let written = write_under_lock(&self.target(), self.spec, observed, observed_at, wall_clock_ms(), self.heal_before).await?;
            report.add_written(&written);
            observed = rest;
        }
        Ok(())
    }

    /// Compares one page (or chunk) of listed records with the index and writes what is new or
    /// newer: full runs and sub-resources write only what the index does not hold at that
    /// modified time; partial list rows are completed by a detail GET (a row gone or flagged
    /// deleted by then becomes a delete). Returns the newest modified time of the records it
    /// read, details included: list rows without one (Zoho Desk tickets and contacts) still move
    /// the cursor.
    async fn apply_listed(
        &self,
        names: &mut Option<FieldNames>,
        records: Vec<Value>,
        observed_at: Millis,
        report: &mut EntityReport,
    ) -> Result<Option<Millis>, ConnectorError> {
        let spec = self.spec;
        let state = self.run.state.as_ref();
        if let Some(current_names) = names.as_mut() {
            if records.iter().any(|record| !current_names.unknown_keys(record).is_empty()) {
                *current_names = refresh_field_names(self.engine, state, self.run.source, spec).await?;
            }
        }
        let keyed: Vec<(String, Option<Millis>, Value)> = records
            .into_iter()
            .filter_map(|record| {
                let id = record_id(&record, spec.id_field)?;
                let modified = record_modified(&record, spec);
                Some((id, modified, record))
            })
            .collect();
        let keyed = dedupe_latest(keyed);
        // Partial rows are compared with the index in every mode: only new or changed ids cost
        // a detail GET, and an unchanged record is not fetched (its stored version is the
        // detail already, written by either path).
        let compare_with_index = self.mode == SyncMode::Full || self.parent.is_some() || spec.list_is_partial;
        let selected: Vec<(String, Option<Millis>, Value)> = if compare_with_index {
            let ids: Vec<String> = keyed.iter().map(|(id, ..)| id.clone()).collect();
            let index = state.current_versions(self.run.source, spec.name, &ids).await?;
            let pairs: Vec<(String, Option<Millis>)> = keyed.iter().map(|(id, modified, _)| (id.clone(), *modified)).collect();
            let wanted: HashSet<usize> = select_changed(&pairs, &index).into_iter().collect();
            report.unchanged += keyed.len() - wanted.len();
            keyed
                .into_iter()
                .enumerate()
                .filter(|(position, _)| wanted.contains(position))
                .map(|(_, item)| item)
                .collect()
        } else {
            keyed
        };
        let selected = if spec.list_is_partial && spec.modified_field.is_none() {
            // Partial rows of an entity without a modified time (Zoho Desk threads): only their
            // content tells a change, so a row whose every field equals the stored record's is
            // unchanged and costs no detail GET; any other is fetched.
            let mut kept = Vec::with_capacity(selected.len());
            for item in selected {
                let stored = state
                    .record(self.run.source, spec.name, &item.0)
                    .await?
                    .filter(|stored| stored.version.end.is_none())
                    .and_then(|stored| stored.record)
                    .and_then(|text| serde_json::from_str::<Value>(&text).ok());
                if stored.is_some_and(|stored| row_matches_stored(&item.2, &stored)) {
                    report.unchanged += 1;
                } else {
                    kept.push(item);
                }
            }
            kept
        } else {
            selected
        };
        let mut observed: Vec<Observed> = Vec::with_capacity(selected.len());
        let mut newest: Option<Millis> = None;
        for (id, _, record) in selected {
            let mut record = if spec.list_is_partial {
                // A list row is not the whole record: write what the detail GET returns, so the
                // reconciler and the webhook worker write the same shape.
                let parent_id = self.parent.and_then(|parent| record_id(&record, &parent_id_field(parent)));
                match self.fetch_detail(&id, parent_id.as_deref(), report).await? {
                    Some(detail) => detail,
                    // Gone between list and detail (the full reconcile confirms and closes it),
                    // or left out on its own.
                    None => continue,
                }
            } else {
                record
            };
            newest = newest.max(record_modified(&record, spec));
            if spec.is_deleted(&record) {
                observed.push(delete_at(
                    id,
                    record_modified(&record, spec).unwrap_or(observed_at).min(wall_clock_ms()),
                ));
                continue;
            }
            if let Some(names) = names.as_ref() {
                rename_custom_fields(names, &mut record);
            }
            match observe(spec, record, observed_at) {
                Ok(one) => observed.push(one),
                Err(error) => {
                    report.skipped += 1;
                    tracing::warn!(entity = spec.name, %id, %error, "record left out of this run; the next run tries it again");
                }
            }
        }
        self.write(observed, observed_at, report).await?;
        Ok(newest)
    }

    /// The detail record behind a partial list row; `None` when it is gone or must be left out
    /// on its own (an invalid id, a refused request, an answer for another id). Transient
    /// trouble fails the run, which the next one retries.
    async fn fetch_detail(&self, id: &str, parent_id: Option<&str>, report: &mut EntityReport) -> Result<Option<Value>, ConnectorError> {
        let spec = self.spec;
        let left_out = |report: &mut EntityReport, why: &dyn std::fmt::Display| {
            report.skipped += 1;
            tracing::warn!(entity = spec.name, %why, "record left out of this run; the next run tries it again");
        };
        let path = match spec.detail_path_for(id, parent_id) {
            Ok(path) => path,
            Err(error) => {
                left_out(report, &error);
                return Ok(None);
            }
        };
        report.fetched += 1;
        match self.engine.get(&path, &[], true).await {
            Ok(Some(body)) => {
                let detail = body.get("data").cloned().unwrap_or(body);
                if spec.is_record(&detail, id) {
                    Ok(Some(detail))
                } else {
                    left_out(report, &format_args!("the detail of {id} answered another record"));
                    Ok(None)
                }
            }
            Ok(None) => Ok(None),
            Err(error) if !error.is_transient() && !matches!(error, ConnectorError::Auth(_)) => {
                left_out(report, &error);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The end of a full listing: the ids the index holds as active but the listing did not
    /// show, compared chunk by chunk. Each is confirmed by a detail GET before it is closed
    /// (offset pages shift when rows are deleted or inserted while a client pages, so a missing
    /// row proves nothing): 404/410 or the vendor's deleted flag close it at the listing time;
    /// a record the API still returns is written as it is.
    async fn close_missing(&self, seen: &SeenIds, listing_started: Millis, report: &mut EntityReport) -> Result<(), ConnectorError> {
        let spec = self.spec;
        let state = self.run.state.as_ref();
        let mut after: Option<String> = None;
        loop {
            let chunk = state
                .active_ids_page(self.run.source, spec.name, after.as_deref(), CLOSE_CHUNK)
                .await?;
            let Some(last) = chunk.last().cloned() else { break };
            let missing: Vec<String> = chunk.into_iter().filter(|id| !seen.contains(id)).collect();
            let mut observed: Vec<Observed> = Vec::new();
            let confirmed_at = wall_clock_ms();
            for id in missing {
                let Some(path) = self.detail_path_of(&id).await? else {
                    continue;
                };
                report.fetched += 1;
                report.confirmations += 1;
                match self.engine.get(&path, &[], true).await? {
                    None => observed.push(delete_at(id, listing_started)),
                    Some(body) => {
                        let record = body.get("data").filter(|data| data.is_object()).cloned().unwrap_or(body);
                        if spec.is_deleted(&record) {
                            observed.push(delete_at(id, listing_started));
                        } else {
                            report.kept_after_confirmation += 1;
                            tracing::debug!(
                                source = self.run.source,
                                entity = spec.name,
                                id,
                                "missing from the listing but alive upstream; kept"
                            );
                            observed.push(observe(spec, record, confirmed_at)?);
                        }
                    }
                }
            }
            self.write(observed, confirmed_at, report).await?;
            after = Some(last);
        }
        Ok(())
    }

    /// The detail path of an id the index holds (a sub-resource's parent from its stored record).
    async fn detail_path_of(&self, id: &str) -> Result<Option<String>, ConnectorError> {
        let path = self.spec.detail_path.replace("{id}", id);
        let Some(parent) = self.parent else {
            return Ok(Some(path));
        };
        let stored = self.run.state.record(self.run.source, self.spec.name, id).await?;
        let parent_id = stored
            .and_then(|stored| stored.record)
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|record| record_id(&record, &parent_id_field(parent)));
        Ok(parent_id.map(|parent_id| path.replace("{parent}", &parent_id)))
    }
}

/// Active ids compared per chunk at the end of a full listing.
const CLOSE_CHUNK: usize = 1_000;

/// The marker holding where a budgeted child listing stopped (the last parent done).
fn children_marker(entity: &str) -> String {
    format!("children_after:{entity}")
}

/// The marker holding the parents' cursor when a full child listing pass began.
fn children_since_marker(entity: &str) -> String {
    format!("children_since:{entity}")
}

fn delete_at(id: String, time: Millis) -> Observed {
    Observed {
        observation: Observation {
            id,
            time,
            kind: ObservationKind::Delete,
        },
        raw: None,
        terminal: false,
    }
}

/// Ids listed in one full run, kept compact (numeric ids as integers), to find the ids the
/// listing did not show.
#[derive(Debug, Default)]
pub struct SeenIds {
    numeric: HashSet<u64>,
    other: HashSet<String>,
}

impl SeenIds {
    fn compact(id: &str) -> Option<u64> {
        id.parse::<u64>().ok().filter(|number| number.to_string() == id)
    }

    /// Remembers an id.
    pub fn insert(&mut self, id: &str) {
        match Self::compact(id) {
            Some(number) => {
                self.numeric.insert(number);
            }
            None => {
                self.other.insert(id.to_string());
            }
        }
    }

    /// True when the id was listed.
    pub fn contains(&self, id: &str) -> bool {
        match Self::compact(id) {
            Some(number) => self.numeric.contains(&number),
            None => self.other.contains(id),
        }
    }

    /// How many ids were listed.
    pub fn len(&self) -> usize {
        self.numeric.len() + self.other.len()
    }

    /// True when none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Orders ids as numbers when both are numeric, else as text (the order of a budgeted child
/// listing and its resume point).
pub fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

async fn sync_entity(
    run: &SourceRun<'_>,
    source_config: &SourceConfig,
    engine: &HttpEngine,
    spec: &EntitySpec,
    report: &mut EntityReport,
) -> Result<(), ConnectorError> {
    let state = run.state.as_ref();
    let cursor = state.cursor(run.source, spec.name).await?.as_deref().and_then(parse_timestamp);
    let mode = match (run.mode, cursor) {
        (SyncMode::Full, _) => SyncMode::Full,
        (SyncMode::Incremental, Some(_)) => SyncMode::Incremental,
        (SyncMode::Incremental, None) => match source_config.initial_sync {
            InitialSync::Full => SyncMode::Full,
            InitialSync::Baseline => {
                report.method = "baseline".into();
                let now = wall_clock_ms();
                // A sub-resource's cursor is in its parent's clock.
                let clock = spec
                    .parent
                    .and_then(|parent| source_config.connector.entity(parent))
                    .unwrap_or(spec);
                let baseline = upstream_now(engine, clock).await?.unwrap_or(now);
                state.set_cursor(run.source, spec.name, &cursor_key_value(baseline), now).await?;
                state.set_marker(run.source, "initial_sync", "baseline", now).await?;
                return Ok(());
            }
        },
    };
    let page_size = source_config.page_size.unwrap_or(source_config.connector.max_page_size());
    let mut names = if spec.fields_path.is_some() {
        Some(cached_field_names(engine, state, run.source, spec).await?)
    } else {
        None
    };
    let listing_started = wall_clock_ms();
    let source = run.source;
    let progress = run.progress;
    let parent = spec.parent.and_then(|parent| source_config.connector.entity(parent));
    let entity_run = EntityRun {
        run,
        engine,
        spec,
        parent,
        mode,
        heal_before: cursor.map(|_| listing_started - HEAL_GRACE_MS),
    };
    // The cursor follows the modified times of the listed records, or, for a sub-resource, of
    // the listed parents.
    let mut new_cursor = cursor;
    let mut seen = SeenIds::default();
    // False when a budgeted child listing stopped early: nothing is closed then.
    let mut listing_complete = true;
    match parent {
        None => {
            let (request, method) = list_request(spec, mode, cursor, source_config, page_size);
            report.method = method.to_string();
            // A since-filter the vendor may ignore is watched: the since time it was sent with.
            let watched = match (method, spec.since_filter, cursor) {
                ("incremental", Some(filter), Some(cursor)) => {
                    Some((filter, since_for(cursor, (source_config.lookback_minutes * 60_000) as i64)))
                }
                _ => None,
            };
            let mut capped = method == "capped";
            if !capped {
                // Each page is compared and written as it arrives: memory stays flat.
                let mut pager = Pager::new(spec, &request);
                loop {
                    let page_started = wall_clock_ms();
                    let Some(page) = pager.next_page(engine).await? else { break };
                    if let Some((filter, since)) = watched {
                        if filter.ignored_by(spec, &page, since) {
                            tracing::warn!(
                                source,
                                entity = spec.name,
                                since = %format_timestamp(since),
                                "the vendor ignored the since-filter (rows modified before the since time came back); \
                                 falling back to the capped pull of the newest records"
                            );
                            report.since_filter_ignored = true;
                            report.method = "capped".into();
                            capped = true;
                            break;
                        }
                    }
                    progress.listed(source, spec.name, pager.listed());
                    new_cursor = advance_cursor(new_cursor, page.iter().filter_map(|record| record_modified(record, spec)));
                    if mode == SyncMode::Full {
                        for record in &page {
                            if let Some(id) = record_id(record, spec.id_field) {
                                seen.insert(&id);
                            }
                        }
                    }
                    let newest = entity_run.apply_listed(&mut names, page, page_started, report).await?;
                    new_cursor = advance_cursor(new_cursor, newest);
                }
                report.listed = pager.listed();
            }
            if capped {
                let request = capped_request(spec, source_config, page_size);
                let mut records = list_records(engine, spec, &request, |count| progress.listed(source, spec.name, count)).await?;
                if records.len() > source_config.capped_limit {
                    // Unpaged lists come whole: keep the newest N.
                    records.sort_by_key(|record| std::cmp::Reverse(record_modified(record, spec)));
                    records.truncate(source_config.capped_limit);
                }
                report.listed = records.len();
                new_cursor = advance_cursor(new_cursor, records.iter().filter_map(|record| record_modified(record, spec)));
                let newest = entity_run.apply_listed(&mut names, records, listing_started, report).await?;
                new_cursor = advance_cursor(new_cursor, newest);
            }
            if report.method == "incremental" {
                if let Some(deleted_request) = deleted_list_request(spec, &request) {
                    let deleted = list_records(engine, spec, &deleted_request, |_| {}).await?;
                    let deletes = delete_observations(spec, &deleted);
                    new_cursor = advance_cursor(new_cursor, deletes.iter().map(|delete| delete.time));
                    let observed = deletes
                        .into_iter()
                        .map(|observation| Observed {
                            observation,
                            raw: None,
                            terminal: false,
                        })
                        .collect();
                    entity_run.write(observed, wall_clock_ms(), report).await?;
                }
            }
        }
        Some(parent) => {
            let (request, method) = list_request(parent, mode, cursor, source_config, page_size);
            report.method = method.to_string();
            let params: Vec<(String, String)> = spec.sort_id.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let parent_field = parent_id_field(parent);
            // A full child listing is budgeted and resumable: it starts after the parent the
            // last run stopped at.
            let budget = source_config.child_list_budget.unwrap_or(engine.budget() / 4);
            let resume_after = if mode == SyncMode::Full {
                state
                    .marker(run.source, &children_marker(spec.name))
                    .await?
                    .filter(|marker| !marker.is_empty())
            } else {
                None
            };
            listing_complete = resume_after.is_none();
            if mode == SyncMode::Full && resume_after.is_none() {
                // A fresh pass: remember where the parents stood (their cursor), so a pass that
                // ends in a later run sets the cursor no later than this, and the parents
                // changed meanwhile have their children listed by the next incremental run.
                let parent_cursor = state.cursor(run.source, parent.name).await?.unwrap_or_default();
                state
                    .set_marker(run.source, &children_since_marker(spec.name), &parent_cursor, wall_clock_ms())
                    .await?;
            }
            let calls_at_start = engine.stats().calls;
            let mut stopped_after: Option<String> = None;
            let mut last_parent: Option<String> = None;
            let mut pager = Pager::new(parent, &request);
            // Parents come in the listing's order (Zoho Desk tickets by `createdTime`): a resumed
            // pass skips them up to and including the one the last pass finished with.
            let mut skipping = resume_after.is_some();
            let mut parents_done: HashSet<String> = HashSet::new();
            let listing: Result<(), ConnectorError> = async {
                'pages: loop {
                    let Some(parents) = pager.next_page(engine).await? else { break };
                    new_cursor = advance_cursor(new_cursor, parents.iter().filter_map(|record| record_modified(record, parent)));
                    let parent_ids: Vec<String> = parents.iter().filter_map(|record| record_id(record, parent.id_field)).collect();
                    for parent_id in parent_ids {
                        if skipping {
                            if resume_after.as_deref() == Some(parent_id.as_str()) {
                                skipping = false;
                            }
                            continue;
                        }
                        // Offset pages can show a parent twice when rows shift.
                        if !parents_done.insert(parent_id.clone()) {
                            continue;
                        }
                        if mode == SyncMode::Full && engine.stats().calls.saturating_sub(calls_at_start) >= budget {
                            stopped_after = last_parent.clone().or_else(|| resume_after.clone()).or(Some(String::new()));
                            break 'pages;
                        }
                        let listed = list_children(engine, spec, &parent_id, &params, page_size).await?;
                        let children: Vec<Value> = listed
                            .into_iter()
                            .map(|mut child| {
                                if let Value::Object(fields) = &mut child {
                                    fields
                                        .entry(parent_field.clone())
                                        .or_insert_with(|| Value::String(parent_id.clone()));
                                }
                                child
                            })
                            .collect();
                        report.listed += children.len();
                        if mode == SyncMode::Full {
                            for child in &children {
                                if let Some(id) = record_id(child, spec.id_field) {
                                    seen.insert(&id);
                                }
                            }
                        }
                        progress.listed(source, spec.name, report.listed);
                        // A sub-resource's cursor follows its parents, not its own records.
                        entity_run.apply_listed(&mut names, children, wall_clock_ms(), report).await?;
                        last_parent = Some(parent_id);
                    }
                }
                Ok(())
            }
            .await;
            if let Err(error @ ConnectorError::CreditReserve { .. }) = &listing {
                // Deferred mid-listing: the next full pass resumes after the last parent done,
                // so a listing longer than a day's credits still finishes over several days.
                if let (SyncMode::Full, Some(after)) = (mode, last_parent.clone().or_else(|| resume_after.clone())) {
                    tracing::info!(source, entity = spec.name, after = %after, reason = %error, "child listing deferred; the next full run resumes after this parent");
                    state
                        .set_marker(run.source, &children_marker(spec.name), &after, wall_clock_ms())
                        .await?;
                }
            }
            listing?;
            if mode == SyncMode::Full {
                let now = wall_clock_ms();
                match &stopped_after {
                    Some(after) => {
                        listing_complete = false;
                        report.resumable = true;
                        tracing::info!(
                            source,
                            entity = spec.name,
                            after,
                            budget,
                            "child listing reached its budget; the next full run resumes after this parent"
                        );
                        state.set_marker(run.source, &children_marker(spec.name), after, now).await?;
                    }
                    None if resume_after.is_some() => {
                        // The pass that resumed finished: the next one starts from the top. The
                        // parents it skipped were listed in an earlier run; the cursor goes back
                        // to where the parents stood when the pass began.
                        state.set_marker(run.source, &children_marker(spec.name), "", now).await?;
                        let began = state
                            .marker(run.source, &children_since_marker(spec.name))
                            .await?
                            .as_deref()
                            .and_then(parse_timestamp);
                        if let Some(began) = began {
                            new_cursor = Some(new_cursor.map_or(began, |seen| seen.min(began)));
                        }
                    }
                    None => {}
                }
            }
        }
    }
    if mode == SyncMode::Full && listing_complete {
        entity_run.close_missing(&seen, listing_started, report).await?;
    }
    if let Some(new_cursor) = new_cursor {
        if Some(new_cursor) != cursor {
            state
                .set_cursor(run.source, spec.name, &cursor_key_value(new_cursor), wall_clock_ms())
                .await?;
        }
    } else if cursor.is_none() {
        // An empty entity: remember that the first run happened.
        state
            .set_cursor(run.source, spec.name, &cursor_key_value(0), wall_clock_ms())
            .await?;
    }
    Ok(())
}

/// The list request of an entity in a mode: since-filter from the cursor minus the lookback
/// (`incremental`), newest `capped_limit` records (`capped`) or every record by id (`full`).
fn list_request(
    spec: &EntitySpec,
    mode: SyncMode,
    cursor: Option<Millis>,
    source_config: &SourceConfig,
    page_size: usize,
) -> (ListRequest, &'static str) {
    match (mode, spec.since_filter, cursor) {
        (SyncMode::Incremental, Some(filter), Some(cursor)) => {
            let since = since_for(cursor, (source_config.lookback_minutes * 60_000) as i64);
            let mut params: Vec<(String, String)> = spec
                .sort_modified_ascending
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut window = None;
            let path = match filter {
                SinceFilter::UpdatedSince => {
                    params.push(("updated_since".into(), format_since(filter, since)));
                    spec.list_path.to_string()
                }
                SinceFilter::ModifiedTimeRange { path, max_offset } => {
                    let end = format_since(filter, wall_clock_ms() + 86_400_000);
                    params.push(("modifiedTimeRange".into(), format!("{},{end}", format_since(filter, since))));
                    window = Some(SearchWindow {
                        param: "modifiedTimeRange",
                        end,
                        max_offset,
                        filter,
                    });
                    path.to_string()
                }
                SinceFilter::SinceParam { param, with, .. } => {
                    params.extend(with.iter().map(|(key, value)| (key.to_string(), value.to_string())));
                    params.push((param.to_string(), format_since(filter, since)));
                    spec.list_path.to_string()
                }
            };
            (
                ListRequest {
                    path,
                    params,
                    page_size,
                    cap: None,
                    window,
                },
                "incremental",
            )
        }
        (SyncMode::Incremental, _, _) => (capped_request(spec, source_config, page_size), "capped"),
        (SyncMode::Full, _, _) => (
            ListRequest {
                path: spec.list_path.to_string(),
                params: spec.sort_id.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                page_size,
                cap: None,
                window: None,
            },
            "full",
        ),
    }
}

/// The capped pull of an entity: its newest `capped_limit` records, newest first.
fn capped_request(spec: &EntitySpec, source_config: &SourceConfig, page_size: usize) -> ListRequest {
    ListRequest {
        path: spec.list_path.to_string(),
        params: spec
            .sort_modified_descending
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        page_size: page_size.min(source_config.capped_limit.max(1)),
        cap: Some(source_config.capped_limit),
        window: None,
    }
}

/// The field of a sub-resource record holding its parent's id (`ticketId`): kept from the
/// payload, or added from the parent the record was listed under.
pub fn parent_id_field(parent: &EntitySpec) -> String {
    format!("{}Id", parent.name)
}

/// "Now" in the upstream's clock, for a baseline: the modified time of the newest record (one
/// small list call), so a skewed local clock cannot hide changes. `None` when the entity has no
/// modified time or no record.
async fn upstream_now(engine: &HttpEngine, spec: &EntitySpec) -> Result<Option<Millis>, ConnectorError> {
    if spec.modified_field.is_none() {
        return Ok(None);
    }
    let (path, params): (String, Vec<(String, String)>) = match spec.since_filter {
        // A list that cannot sort by modified time (Zoho Desk tickets and contacts): ask its
        // search endpoint for the newest record of all time.
        Some(filter @ SinceFilter::ModifiedTimeRange { path, .. }) if spec.sort_modified_descending.is_empty() => {
            let range = format!("{},{}", format_since(filter, 0), format_since(filter, wall_clock_ms() + 86_400_000));
            (
                path.to_string(),
                vec![("sortBy".into(), "-modifiedTime".into()), ("modifiedTimeRange".into(), range)],
            )
        }
        _ if spec.sort_modified_descending.is_empty() => return Ok(None),
        _ => (
            spec.list_path.to_string(),
            spec.sort_modified_descending
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        ),
    };
    let request = ListRequest {
        path,
        params,
        page_size: 1,
        cap: Some(1),
        window: None,
    };
    let records = list_records(engine, spec, &request, |_| {}).await?;
    Ok(records.iter().filter_map(|record| record_modified(record, spec)).max())
}

/// Renames Pipedrive custom-field keys in a record.
pub fn rename_custom_fields(names: &FieldNames, record: &mut Value) {
    names.rename(record);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ConnectorKind;

    fn version(modified: Millis, deleted: bool) -> CurrentVersion {
        CurrentVersion {
            start: modified,
            end: deleted.then_some(modified + 5),
            row_hash: "h".into(),
            modified,
            hashes_at_modified: vec!["h".into()],
        }
    }

    #[test]
    fn a_row_with_the_deleted_flag_is_observed_as_a_delete() {
        let person = ConnectorKind::Pipedrive.entity("person").unwrap();
        let deleted = serde_json::json!({"id": 7, "name": "Ann", "is_deleted": true, "update_time": "2024-03-01T10:00:00Z"});
        let observed = observe(person, deleted, 5).unwrap();
        assert_eq!(observed.observation.id, "7");
        assert!(matches!(observed.observation.kind, ObservationKind::Delete));
        assert_eq!(observed.observation.time, parse_timestamp("2024-03-01T10:00:00Z").unwrap());
        let alive = serde_json::json!({"id": 7, "name": "Ann", "is_deleted": false});
        let observed = observe(person, alive, 5).unwrap();
        assert!(matches!(observed.observation.kind, ObservationKind::Upsert { .. }));
        assert_eq!(observed.observation.time, 5);
    }

    #[test]
    fn select_changed_takes_new_newer_recreated_and_untimed() {
        let index: HashMap<String, CurrentVersion> = [
            ("same".to_string(), version(100, false)),
            ("newer".to_string(), version(100, false)),
            ("older".to_string(), version(100, false)),
            ("deleted".to_string(), version(100, true)),
            ("untimed".to_string(), version(100, false)),
        ]
        .into();
        let listed = vec![
            ("same".to_string(), Some(100)),
            ("newer".to_string(), Some(101)),
            ("older".to_string(), Some(99)),
            ("deleted".to_string(), Some(100)),
            ("untimed".to_string(), None),
            ("new".to_string(), Some(1)),
        ];
        assert_eq!(select_changed(&listed, &index), vec![1, 3, 4, 5]);
    }

    #[test]
    fn a_partial_row_matches_the_stored_record_only_when_every_field_is_equal() {
        let stored = serde_json::json!({"id": "1", "summary": "Any update?", "content": "<p>Any update?</p>", "author": {"name": "A"}});
        assert!(row_matches_stored(
            &serde_json::json!({"id": "1", "summary": "Any update?"}),
            &stored
        ));
        assert!(row_matches_stored(
            &serde_json::json!({"id": "1", "author": {"name": "A"}}),
            &stored
        ));
        assert!(!row_matches_stored(&serde_json::json!({"id": "1", "summary": "Edited"}), &stored));
        assert!(!row_matches_stored(&serde_json::json!({"id": "1", "channel": "EMAIL"}), &stored));
        assert!(!row_matches_stored(&serde_json::json!({}), &stored));
        assert!(!row_matches_stored(&serde_json::json!({"id": "1"}), &Value::Null));
    }

    #[test]
    fn cursor_only_moves_forward() {
        assert_eq!(advance_cursor(None, []), None);
        assert_eq!(advance_cursor(Some(50), [10, 40]), Some(50));
        assert_eq!(advance_cursor(Some(50), [10, 70, 60]), Some(70));
        assert_eq!(since_for(1_000_000, 600_000), 400_000);
    }

    #[test]
    fn dedupe_keeps_latest_modified() {
        let out = dedupe_latest(vec![
            ("1".into(), Some(5), Value::from(1)),
            ("2".into(), Some(5), Value::from(2)),
            ("1".into(), Some(9), Value::from(3)),
            ("1".into(), Some(7), Value::from(4)),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].2, Value::from(3));
    }

    #[test]
    fn clashing_nested_objects_become_json_text() {
        let mut record =
            serde_json::json!({"id": 1, "priority_name": "High", "priority": {"name": "High", "id": 2}, "owner": {"name": "A"}});
        avoid_column_collisions(&mut record);
        assert_eq!(record["priority"], Value::String("{\"id\":2,\"name\":\"High\"}".into()));
        assert!(record["owner"].is_object());
    }

    #[test]
    fn deleted_listing_adds_its_parameters_to_the_since_filtered_request() {
        let deal = ConnectorKind::Pipedrive.entity("deal").unwrap();
        let incremental = ListRequest {
            path: "/v2/deals".into(),
            params: vec![
                ("sort_by".into(), "update_time".into()),
                ("updated_since".into(), "2026-01-01T00:00:00Z".into()),
            ],
            page_size: 500,
            cap: None,
            window: None,
        };
        let deleted = deleted_list_request(deal, &incremental).unwrap();
        assert_eq!(deleted.path, "/v2/deals");
        assert_eq!(deleted.params[..2], incremental.params[..]);
        assert_eq!(deleted.params[2], ("status".to_string(), "deleted".to_string()));
        let person = ConnectorKind::Pipedrive.entity("person").unwrap();
        assert!(deleted_list_request(person, &incremental).is_none());
    }

    #[test]
    fn deleted_records_become_deletes_at_their_update_time() {
        let deal = ConnectorKind::Pipedrive.entity("deal").unwrap();
        let records = vec![
            serde_json::json!({"id": 4, "status": "deleted", "is_deleted": true, "update_time": "2026-01-02T03:04:05Z"}),
            serde_json::json!({"id": 5, "status": "deleted", "update_time": null}),
            serde_json::json!({"status": "deleted", "update_time": "2026-01-02T03:04:05Z"}),
        ];
        let deletes = delete_observations(deal, &records);
        assert_eq!(
            deletes,
            vec![Observation {
                id: "4".into(),
                time: parse_timestamp("2026-01-02T03:04:05Z").unwrap(),
                kind: ObservationKind::Delete,
            }]
        );
        assert_eq!(
            advance_cursor(Some(10), deletes.iter().map(|delete| delete.time)),
            Some(parse_timestamp("2026-01-02T03:04:05Z").unwrap())
        );
    }

    #[test]
    fn since_is_formatted_per_vendor() {
        let time = parse_timestamp("2026-01-01T00:10:05.250Z").unwrap();
        assert_eq!(format_since(SinceFilter::UpdatedSince, time), "2026-01-01T00:10:05Z");
        assert_eq!(format_since(crate::halopsa::spec::INVOICE_SINCE, time), "2026-01-01T00:10:05.250Z");
    }

    #[test]
    fn observation_uses_modified_time_and_terminal_rule() {
        let spec = crate::halopsa::spec::ENTITIES[1];
        let record = serde_json::json!({"id": 7, "status_id": 9, "last_update": "2026-01-01T00:00:01.0000000Z"});
        let observed = observe(&spec, record, 5).unwrap();
        assert_eq!(observed.observation.id, "7");
        assert_eq!(observed.observation.time, parse_timestamp("2026-01-01T00:00:01Z").unwrap());
        assert!(observed.terminal);
    }
}
