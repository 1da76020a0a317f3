//! `syncline compare`: the migration parity check between two history datasets, possibly on
//! different destinations and profiles. The comparison lives in
//! `syncline_destinations::compare`; this is the command line and the output.

use std::io::Write;

use anyhow::Context;
use syncline_destinations::compare::{compare, open_reader, parse_profile, CompareOptions, IdSample, TableComparison};
use syncline_destinations::DestinationConfig;

/// Arguments of `syncline compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The first dataset (usually the old connector's): `duckdb://file.duckdb`, a DuckDB path,
    /// or `postgres://user@host:5432/database?schema=name`.
    #[arg(long)]
    pub left: String,
    /// The second dataset (usually syncline's), in the same forms as `--left`.
    #[arg(long)]
    pub right: String,
    /// The tables to compare (comma-separated); default: every history table on either side.
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// The history profile of the left side: `fivetran`, `cdc` or `prefix:{prefix}`.
    #[arg(long, default_value = "fivetran")]
    pub profile_left: String,
    /// The history profile of the right side: `fivetran`, `cdc` or `prefix:{prefix}`.
    #[arg(long, default_value = "fivetran")]
    pub profile_right: String,
    /// The id column, the same on both sides.
    #[arg(long, default_value = "id")]
    pub primary_key: String,
    /// How many ids to list for each kind of difference.
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `syncline compare`; the exit code is 1 when anything differs.
pub async fn run(args: CompareArgs) -> anyhow::Result<()> {
    let profile = |name: &str, flag: &str| {
        parse_profile(name).with_context(|| format!("{flag} `{name}` is not a profile; write fivetran, cdc or prefix:_your_prefix_"))
    };
    let options = CompareOptions {
        tables: args
            .tables
            .iter()
            .map(|table| table.trim().to_string())
            .filter(|table| !table.is_empty())
            .collect(),
        left_profile: profile(&args.profile_left, "--profile-left")?,
        right_profile: profile(&args.profile_right, "--profile-right")?,
        primary_key: args.primary_key.clone(),
        sample: args.sample,
    };
    let left_config: DestinationConfig = args.left.parse().context("--left")?;
    let right_config: DestinationConfig = args.right.parse().context("--right")?;
    let left = open_reader(&left_config).await.context("opening --left")?;
    let right = open_reader(&right_config).await.context("opening --right")?;
    let comparisons = compare(left.as_ref(), right.as_ref(), &options).await.context("comparing")?;
    let differs = comparisons.is_empty() || comparisons.iter().any(TableComparison::differs);
    let text = if args.json {
        let document = serde_json::json!({
            "differs": differs,
            "tables": comparisons.iter().map(TableComparison::to_json).collect::<Vec<_>>(),
        });
        format!("{}\n", serde_json::to_string_pretty(&document)?)
    } else {
        render(&comparisons)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    if differs {
        std::process::exit(1);
    }
    Ok(())
}

fn ids(sample: &IdSample) -> String {
    if sample.count == 0 {
        return "0".into();
    }
    let more = if sample.count as usize > sample.sample.len() { ", ..." } else { "" };
    format!("{} ({}{more})", sample.count, sample.sample.join(", "))
}

/// The human-readable report: one summary line per table, then the details of what differs.
fn render(comparisons: &[TableComparison]) -> String {
    let mut out = String::new();
    if comparisons.is_empty() {
        out.push_str("no history tables found on either side; check the urls, --tables and the profiles\n");
        return out;
    }
    let width = comparisons.iter().map(|table| table.table.len()).max().unwrap_or(5).max(5);
    out.push_str(&format!(
        "{:<width$}  {:>12}  {:>12}  {:>9}  {:>10}  {:>10}  {:>13}  result\n",
        "table", "left active", "right active", "left only", "right only", "mismatched", "hashes agree"
    ));
    for table in comparisons {
        out.push_str(&format!(
            "{:<width$}  {:>12}  {:>12}  {:>9}  {:>10}  {:>10}  {:>13}  {}\n",
            table.table,
            if table.left_exists {
                table.left_active.to_string()
            } else {
                "missing".into()
            },
            if table.right_exists {
                table.right_active.to_string()
            } else {
                "missing".into()
            },
            table.left_only_ids.count,
            table.right_only_ids.count,
            table.mismatched_ids,
            if table.left_content_hash == table.right_content_hash {
                "yes"
            } else {
                "no"
            },
            if table.differs() { "DIFFERS" } else { "ok" }
        ));
    }
    for table in comparisons.iter().filter(|table| table.differs()) {
        out.push_str(&format!("\n{}:\n", table.table));
        if !table.left_exists || !table.right_exists {
            let side = if table.left_exists { "right" } else { "left" };
            out.push_str(&format!("  the table is missing on the {side}\n"));
        }
        if !table.left_only_columns.is_empty() {
            out.push_str(&format!("  columns only on the left: {}\n", table.left_only_columns.join(", ")));
        }
        if !table.right_only_columns.is_empty() {
            out.push_str(&format!("  columns only on the right: {}\n", table.right_only_columns.join(", ")));
        }
        if table.left_only_ids.count > 0 {
            out.push_str(&format!("  active ids only on the left: {}\n", ids(&table.left_only_ids)));
        }
        if table.right_only_ids.count > 0 {
            out.push_str(&format!("  active ids only on the right: {}\n", ids(&table.right_only_ids)));
        }
        if table.left_several_active.count > 0 {
            out.push_str(&format!(
                "  ids with several active rows on the left: {}\n",
                ids(&table.left_several_active)
            ));
        }
        if table.right_several_active.count > 0 {
            out.push_str(&format!(
                "  ids with several active rows on the right: {}\n",
                ids(&table.right_several_active)
            ));
        }
        for mismatch in &table.mismatches {
            let columns: Vec<String> = mismatch
                .columns
                .iter()
                .map(|difference| {
                    let show = |value: &Option<String>| value.as_deref().map_or("NULL".to_string(), |text| format!("{text:?}"));
                    format!("{}: {} -> {}", difference.column, show(&difference.left), show(&difference.right))
                })
                .collect();
            out.push_str(&format!("  id {} differs: {}\n", mismatch.id, columns.join("; ")));
        }
        if table.mismatched_ids as usize > table.mismatches.len() {
            out.push_str(&format!(
                "  ... {} more ids differ (raise --sample to list them)\n",
                table.mismatched_ids as usize - table.mismatches.len()
            ));
        }
        if table.left_content_hash != table.right_content_hash {
            out.push_str(&format!(
                "  content hashes: left {} right {}\n",
                table.left_content_hash, table.right_content_hash
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncline_destinations::compare::{ColumnDifference, FieldMismatch};

    #[test]
    fn the_report_names_what_differs() {
        let mut table = TableComparison {
            table: "deal_history".into(),
            left_exists: true,
            right_exists: true,
            left_active: 3,
            right_active: 3,
            left_content_hash: "a".into(),
            right_content_hash: "b".into(),
            mismatched_ids: 1,
            ..TableComparison::default()
        };
        table.left_only_ids = IdSample {
            count: 1,
            sample: vec!["7".into()],
        };
        table.mismatches.push(FieldMismatch {
            id: "2".into(),
            columns: vec![ColumnDifference {
                column: "name".into(),
                left: Some("a".into()),
                right: None,
            }],
        });
        let text = render(&[table]);
        assert!(text.contains("DIFFERS"), "{text}");
        assert!(text.contains("active ids only on the left: 1 (7)"), "{text}");
        assert!(text.contains("id 2 differs: name: \"a\" -> NULL"), "{text}");
    }
}
