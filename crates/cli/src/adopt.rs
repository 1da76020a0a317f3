//! `syncline adopt`: carries one table's history over from the old connector into syncline's
//! table and current-record index, before syncline's first sync of it. The work is done by
//! `syncline_destinations::adopt`; this is the command line and the report.

use std::collections::HashSet;

use anyhow::Context;
use syncline_core::{snake_case_if, HistoryProfile, NamingOptions, ProfileKind, StartSetting};
use syncline_destinations::adopt::{adopt, AdoptOptions, TimestampText};
use syncline_destinations::compare::{open_reader, parse_profile};
use syncline_destinations::{open_destination, DestinationConfig, HistoryTarget};
use syncline_state::{open_state_store, StateConfig};

use crate::load::{ProfileArg, StartArg, TableArgs};

/// How TIMESTAMP values of the old table are written for the row hash (`--timestamp-text`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TimestampTextArg {
    /// `2024-01-15 10:20:30` (Pipedrive).
    SpaceSeconds,
    /// `2024-01-15T10:20:30.000Z` (Zoho Desk, HaloPSA and most RFC 3339 APIs).
    IsoMillis,
    /// `2024-01-15T10:20:30Z` (Pipedrive API v2).
    IsoSeconds,
}

/// Arguments of `syncline adopt`.
#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// The old connector's dataset: `duckdb:///path/file.duckdb` (or a plain path),
    /// `postgres://user@host:5432/database?schema=name` or `bigquery://project/dataset`.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The old history table; default: the same name as `--table`.
    #[arg(long)]
    pub from_table: Option<String>,
    /// The old table's profile: `fivetran`, `cdc` or `prefix:{prefix}` (e.g. `prefix:_cdc_`).
    #[arg(long, default_value = "fivetran")]
    pub from_profile: String,
    /// syncline's dataset, as for `syncline load --destination`.
    #[arg(long, value_name = "URL", default_value = "warehouse.duckdb")]
    pub destination: String,
    /// syncline's state store and history table.
    #[command(flatten)]
    pub target: TableArgs,
    /// The record's modified-time column (e.g. `update_time`), if the entity has one.
    #[arg(long)]
    pub modified_field: Option<String>,
    /// syncline's history profile.
    #[arg(long, value_enum, default_value = "fivetran")]
    pub profile: ProfileArg,
    /// A custom prefix for syncline's history columns, overriding the profile's.
    #[arg(long)]
    pub prefix: Option<String>,
    /// The start setting syncline continues the table with (default: the table's stored
    /// setting, else `source`). The adopted versions keep their starts either way.
    #[arg(long, value_enum)]
    pub start: Option<StartArg>,
    /// How the API writes timestamps, so that adopted versions hash like records fetched later.
    #[arg(long, value_enum, default_value = "space-seconds")]
    pub timestamp_text: TimestampTextArg,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `syncline adopt`.
pub async fn run(args: AdoptArgs) -> anyhow::Result<()> {
    let old_profile = parse_profile(&args.from_profile).with_context(|| {
        format!(
            "--from-profile `{}` is not a profile; write fivetran, cdc or prefix:_your_prefix_",
            args.from_profile
        )
    })?;
    let mut profile = HistoryProfile::of(match args.profile {
        ProfileArg::Fivetran => ProfileKind::Fivetran,
        ProfileArg::Cdc => ProfileKind::Cdc,
    });
    if let Some(prefix) = &args.prefix {
        anyhow::ensure!(!prefix.is_empty(), "--prefix must not be empty; write a prefix such as _cdc_");
        profile = HistoryProfile::with_prefix(prefix, profile.open_end);
    }
    profile.start = args.start.map(StartSetting::from);
    let naming = NamingOptions::default();
    let table = args.target.table_name();
    let modified_column = args.modified_field.as_deref().map(|field| snake_case_if(field, naming));
    let target = HistoryTarget {
        source: args.target.source.clone(),
        entity: args.target.entity.clone(),
        table: table.clone(),
        primary_key: args.target.primary_key.clone(),
        profile,
        timestamp_columns: modified_column.iter().cloned().collect::<HashSet<_>>(),
    };
    let options = AdoptOptions {
        old_table: args.from_table.clone().unwrap_or_else(|| table.clone()),
        old_profile,
        timestamp_text: match args.timestamp_text {
            TimestampTextArg::SpaceSeconds => TimestampText::SpaceSeconds,
            TimestampTextArg::IsoMillis => TimestampText::IsoMillis,
            TimestampTextArg::IsoSeconds => TimestampText::IsoSeconds,
        },
        modified_column,
        now: syncline_connectors::reconcile::wall_clock_ms(),
    };
    let from_config: DestinationConfig = args.from.parse().context("--from")?;
    let destination_config: DestinationConfig = args.destination.parse().context("--destination")?;
    let state_config: StateConfig = args.target.state.parse().context("--state")?;
    let old = open_reader(&from_config).await.context("opening --from")?;
    let destination = open_destination(&destination_config).await.context("opening --destination")?;
    let state = open_state_store(&state_config).await.context("opening --state")?;
    let report = adopt(old.as_ref(), destination.as_ref(), state.as_ref(), &target, &options).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "table": table,
                "from_table": options.old_table,
                "already_adopted": report.already_adopted,
                "versions": report.versions,
                "ids": report.ids,
                "deleted_ids": report.deleted_ids,
                "start": report.start.map(StartSetting::as_str),
            })
        );
    } else if report.already_adopted {
        println!("{table}: already adopted; nothing written");
    } else {
        println!(
            "{table}: adopted {} versions of {} ids ({} deleted) from {}; start = \"{}\" from here on",
            report.versions,
            report.ids,
            report.deleted_ids,
            options.old_table,
            report.start.unwrap_or_default().as_str(),
        );
    }
    Ok(())
}
