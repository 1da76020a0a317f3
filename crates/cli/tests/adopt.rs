//! End-to-end test of `syncline adopt`: the real binary carries a history table in Fivetran's
//! layout (no `_row_hash`) over into a new DuckDB file, a re-run is a no-op, `syncline load`
//! then continues the old connector's table and the adopted one with the same next extract,
//! and `syncline compare` reports parity; the two tables then hold the very same versions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn syncline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run syncline")
}

fn ok(output: Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    text
}

fn load(directory: &Path, file: &str, at: &str) {
    let warehouse = directory.join("warehouse.duckdb").display().to_string();
    let state = directory.join("state.db").display().to_string();
    let file = examples().join(file).display().to_string();
    ok(syncline(&[
        "load",
        "--duckdb",
        &warehouse,
        "--state",
        &state,
        "--entity",
        "deal",
        "--modified-field",
        "update_time",
        "--full-extract",
        "--at",
        at,
        &file,
    ]));
}

fn versions(warehouse: &Path) -> Vec<(i64, String, String, bool)> {
    let connection = duckdb::Connection::open(warehouse).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT id, CAST(_fivetran_start AS VARCHAR), CAST(_fivetran_end AS VARCHAR), _fivetran_active
             FROM deal_history ORDER BY id, _fivetran_start",
        )
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[test]
fn adopt_then_load_keeps_parity_with_the_old_connector() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The old connector keeps writing `old`; what is adopted is a copy of its table in Fivetran's
    // layout, without syncline's row hash.
    load(old.path(), "deals.jsonl", "2026-01-01T12:00:00Z");
    let old_warehouse = old.path().join("warehouse.duckdb");
    let fivetran = old.path().join("fivetran.duckdb");
    duckdb::Connection::open(&old_warehouse)
        .unwrap()
        .execute_batch(&format!(
            "ATTACH '{}' AS fivetran; CREATE TABLE fivetran.deal_history AS SELECT * EXCLUDE (_row_hash) FROM deal_history; DETACH fivetran",
            fivetran.display()
        ))
        .unwrap();
    let before = versions(&old_warehouse);
    assert_eq!(versions(&fivetran), before);

    let from = format!("duckdb://{}", fivetran.display());
    let old_url = format!("duckdb://{}", old_warehouse.display());
    let new_warehouse = new.path().join("warehouse.duckdb");
    let destination = format!("duckdb://{}", new_warehouse.display());
    let state = new.path().join("state.db").display().to_string();
    let adopt = [
        "adopt",
        "--from",
        &from,
        "--destination",
        &destination,
        "--state",
        &state,
        "--entity",
        "deal",
        "--modified-field",
        "update_time",
        "--timestamp-text",
        "iso-seconds",
        "--json",
    ];
    let report: serde_json::Value = serde_json::from_str(&ok(syncline(&adopt))).unwrap();
    assert_eq!(report["versions"], before.len(), "{report}");
    assert_eq!(report["already_adopted"], false);
    assert_eq!(versions(&new_warehouse), before, "the versions keep their starts and ends");
    let again: serde_json::Value = serde_json::from_str(&ok(syncline(&adopt))).unwrap();
    assert_eq!(again["already_adopted"], true, "{again}");
    assert_eq!(versions(&new_warehouse), before);

    // Both sides see the next extract: syncline continues from the adopted rows.
    load(old.path(), "deals_day2.jsonl", "2026-01-02T12:00:00Z");
    load(new.path(), "deals_day2.jsonl", "2026-01-02T12:00:00Z");
    let after = versions(&new_warehouse);
    assert!(after.len() > before.len(), "the next extract writes versions");
    assert_eq!(
        after,
        versions(&old_warehouse),
        "no duplicate first version where the content agrees"
    );
    let compare = syncline(&["compare", "--left", &old_url, "--right", &destination, "--tables", "deal_history"]);
    let text = String::from_utf8_lossy(&compare.stdout);
    assert_eq!(compare.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&compare.stderr));
}
