//! End-to-end tests of `syncline compare`: the real binary on DuckDB files written by
//! `syncline load` with different profiles. (DuckDB against PostgreSQL is covered by the
//! library tests in `syncline_destinations::compare`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn load(directory: &Path, file: &str, at: &str, profile: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("load")
        .arg("--duckdb")
        .arg(directory.join("warehouse.duckdb"))
        .arg("--state")
        .arg(directory.join("state.db"))
        .args([
            "--entity",
            "deal",
            "--modified-field",
            "update_time",
            "--full-extract",
            "--at",
            at,
            "--profile",
            profile,
        ])
        .arg(examples().join(file))
        .output()
        .expect("run syncline load");
    assert!(output.status.success(), "load failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn compare(left: &Path, right: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("compare")
        .arg("--left")
        .arg(format!("duckdb://{}", left.join("warehouse.duckdb").display()))
        .arg("--right")
        .arg(format!("duckdb://{}", right.join("warehouse.duckdb").display()))
        .args(["--profile-left", "fivetran", "--profile-right", "cdc"])
        .args(extra)
        .output()
        .expect("run syncline compare")
}

#[test]
fn compare_reports_parity_and_then_the_differences() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    load(old.path(), "deals.jsonl", "2026-01-01T12:00:00Z", "fivetran");
    load(new.path(), "deals.jsonl", "2026-01-01T12:00:00Z", "cdc");

    let equal = compare(old.path(), new.path(), &[]);
    let text = String::from_utf8_lossy(&equal.stdout);
    assert_eq!(equal.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&equal.stderr));
    assert!(text.contains("deal_history") && text.contains(" ok"), "{text}");

    // day 2 reaches only the new side: changed, removed and new deals
    load(new.path(), "deals_day2.jsonl", "2026-01-02T12:00:00Z", "cdc");
    let differs = compare(old.path(), new.path(), &["--json", "--tables", "deal_history"]);
    assert_eq!(differs.status.code(), Some(1), "{}", String::from_utf8_lossy(&differs.stderr));
    let report: serde_json::Value = serde_json::from_slice(&differs.stdout).expect("json report");
    assert_eq!(report["differs"], true);
    let table = &report["tables"][0];
    assert_eq!(table["table"], "deal_history");
    assert_eq!(table["left_only_ids"]["count"], 2, "two deals removed upstream on day 2");
    assert_eq!(table["right_only_ids"]["count"], 5, "five new deals on day 2");
    assert_eq!(table["mismatched_ids"], 10, "ten deals changed on day 2");
    assert!(table["mismatches"][0]["columns"]
        .as_array()
        .is_some_and(|columns| !columns.is_empty()));
    assert_eq!(table["content_hashes_agree"], false);
}

#[test]
fn a_bad_profile_is_explained() {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["compare", "--left", "a.duckdb", "--right", "b.duckdb", "--profile-left", "nope"])
        .current_dir(directory.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("prefix:"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
