//! Pure logic of syncline's history engine: flattening records, hashing their content,
//! inferring and widening column types, and planning SCD Type 2 versions.
//!
//! Nothing here performs I/O or reads a clock: every time is passed in as milliseconds since the
//! Unix epoch (UTC), so the same inputs always give the same plan.

pub mod batch;
pub mod cron;
pub mod error;
pub mod event;
pub mod flatten;
pub mod hash;
pub mod memory;
pub mod plan;
pub mod profile;
pub mod schema;
pub mod time;
pub mod value;

pub use batch::{assemble_batch, assemble_batch_owned, HistoryBatch, HistoryRow, VersionClose};
pub use cron::{CronError, CronSchedule, CronTimeZone};
pub use error::CoreError;
pub use event::{EventAction, WebhookEvent};
pub use flatten::{flatten_record, snake_case_if, FlatRecord, Flattener, LineError, NamingOptions};
pub use hash::row_hash;
pub use plan::{
    full_extract_deletes, plan_history, plan_history_with, CurrentVersion, IndexEntry, Observation, ObservationKind, Plan, PlanStats,
    PlannedVersion, Starts,
};
pub use profile::{HistoryProfile, ProfileKind, StartSetting};
pub use schema::{over_column_cap, Column, ColumnType, OverColumnCap, SchemaChange, TableSchema, DEFAULT_MAX_COLUMNS};
pub use time::{format_timestamp, parse_timestamp, Millis, FAR_FUTURE};
pub use value::{CellValue, FlatValue};
