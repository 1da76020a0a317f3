//! End-to-end tests of `syncline load`: the real binary, a real DuckDB file, a real SQLite state.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use duckdb::Connection;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn syncline(directory: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("load")
        .arg("--duckdb")
        .arg(directory.join("warehouse.duckdb"))
        .arg("--state")
        .arg(directory.join("state.db"))
        .args(arguments)
        .output()
        .expect("run syncline")
}

fn summary(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "syncline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().expect("a summary line")).expect("summary is JSON")
}

fn query_i64(directory: &Path, sql: &str) -> i64 {
    let connection = Connection::open(directory.join("warehouse.duckdb")).expect("open warehouse");
    connection.query_row(sql, [], |row| row.get(0)).expect(sql)
}

fn load_deals(directory: &Path, file: &str, at: &str) -> serde_json::Value {
    let path = examples().join(file);
    summary(&syncline(
        directory,
        &[
            "--entity",
            "deal",
            "--modified-field",
            "update_time",
            "--full-extract",
            "--at",
            at,
            "--json",
            path.to_str().unwrap(),
        ],
    ))
}

#[test]
fn two_full_extracts_make_correct_history() {
    let directory = tempfile::tempdir().unwrap();
    let first = load_deals(directory.path(), "deals.jsonl", "2026-01-01T12:00:00Z");
    assert_eq!(first["inserted_versions"], 50);
    let second = load_deals(directory.path(), "deals_day2.jsonl", "2026-01-02T12:00:00Z");
    assert_eq!(second["inserted_versions"], 15, "ten changed and five new deals");
    assert_eq!(second["closed"], 10);
    assert_eq!(second["deleted"], 2);
    assert_eq!(second["unchanged"], 38);
    let again = load_deals(directory.path(), "deals_day2.jsonl", "2026-01-02T12:00:00Z");
    assert_eq!(again["inserted_versions"], 0, "a replayed extract changes nothing");
    assert_eq!(again["deleted"], 0);

    let dir = directory.path();
    assert_eq!(query_i64(dir, "SELECT count(*) FROM deal_history"), 65);
    assert_eq!(query_i64(dir, "SELECT count(*) FROM deal_history WHERE _fivetran_active"), 53);
    // the contract, checked with SQL on the real file
    assert_eq!(
        query_i64(
            dir,
            "SELECT count(*) FROM (SELECT id FROM deal_history WHERE _fivetran_active GROUP BY id HAVING count(*) > 1)"
        ),
        0
    );
    assert_eq!(
        query_i64(
            dir,
            "SELECT count(*) FROM deal_history WHERE _fivetran_active <> (_fivetran_end = TIMESTAMP '9999-12-31 23:59:59')"
        ),
        0
    );
    assert_eq!(
        query_i64(
            dir,
            "SELECT count(*) FROM (SELECT *, LEAD(_fivetran_start) OVER w AS next_start, LEAD(_row_hash) OVER w AS next_hash
             FROM deal_history WINDOW w AS (PARTITION BY id ORDER BY _fivetran_start))
             WHERE next_start IS NOT NULL AND (_fivetran_end <> next_start - INTERVAL 1 MILLISECOND OR _row_hash = next_hash)"
        ),
        0,
        "superseded versions end 1 ms before the next start and differ in content"
    );
    // deal 5 changed: its old version ends where the new one (modified time) begins
    assert_eq!(
        query_i64(
            dir,
            "SELECT epoch_ms(_fivetran_end) FROM deal_history WHERE id = 5 AND NOT _fivetran_active"
        ),
        1_767_330_300_000 - 1
    );
    // deal 7 vanished from the second extract: closed at the extract time, no active row
    assert_eq!(
        query_i64(dir, "SELECT count(*) FROM deal_history WHERE id = 7 AND _fivetran_active"),
        0
    );
    assert_eq!(
        query_i64(dir, "SELECT epoch_ms(max(_fivetran_end)) FROM deal_history WHERE id = 7"),
        1_767_355_200_000
    );
    // nested objects flattened, declared timestamps typed, lists kept as JSON text
    assert_eq!(
        query_i64(
            dir,
            "SELECT count(*) FROM deal_history WHERE custom_fields_priority = 'high' AND _fivetran_active"
        ),
        26
    );
    let connection = Connection::open(dir.join("warehouse.duckdb")).unwrap();
    let (update_type, labels): (String, String) = connection
        .query_row(
            "SELECT typeof(update_time), label_ids FROM deal_history WHERE id = 1 AND _fivetran_active",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(update_type, "TIMESTAMP");
    assert_eq!(labels, "[2]");
}

#[test]
fn malformed_line_names_its_number_and_writes_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("bad.jsonl");
    std::fs::write(&file, "{\"id\": 1}\n{\"id\": 2}\n\n{\"id\": 3, oops}\n{\"id\": 4}\n").unwrap();
    let output = syncline(directory.path(), &["--entity", "deal", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4") && stderr.contains("nothing was written"), "{stderr}");
    assert!(
        !directory.path().join("warehouse.duckdb").exists(),
        "the warehouse must not be touched"
    );
}

#[test]
fn bad_lines_are_numbered_in_either_half_of_the_file() {
    for bad in [3usize, 777] {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("many.jsonl");
        let lines: Vec<String> = (1..=1000)
            .map(|number| {
                if number == bad {
                    "{\"id\": }".to_string()
                } else {
                    format!("{{\"id\": {number}}}")
                }
            })
            .collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let output = syncline(directory.path(), &["--entity", "deal", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains(&format!("line {bad}:")), "line {bad} must be named: {stderr}");
        assert!(!directory.path().join("warehouse.duckdb").exists());
    }
}

#[test]
fn record_without_primary_key_is_rejected_clearly() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("nokey.jsonl");
    std::fs::write(&file, "{\"id\": 1}\n{\"name\": \"no id\"}\n").unwrap();
    let output = syncline(directory.path(), &["--entity", "deal", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("no primary key field `id`"),
        "{stderr}"
    );
    assert!(!directory.path().join("warehouse.duckdb").exists());
}

#[test]
fn hostile_field_names_are_quoted_never_executed() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("hostile.jsonl");
    let long_name = "x".repeat(300);
    let record = serde_json::json!({
        "id": 1,
        "a\"; DROP TABLE deal_history; --": "quote",
        "semi;colon": 2,
        "ünïcødé": true,
        long_name.clone(): "long",
    });
    std::fs::write(&file, format!("{record}\n")).unwrap();
    let output = syncline(
        directory.path(),
        &["--entity", "deal", "--keep-names", "--json", file.to_str().unwrap()],
    );
    assert_eq!(summary(&output)["inserted_versions"], 1);
    let connection = Connection::open(directory.path().join("warehouse.duckdb")).unwrap();
    let value: String = connection
        .query_row("SELECT \"a\"\"; DROP TABLE deal_history; --\" FROM deal_history", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(value, "quote");
    let long: String = connection
        .query_row(&format!("SELECT \"{long_name}\" FROM deal_history"), [], |row| row.get(0))
        .unwrap();
    assert_eq!(long, "long");
}

#[test]
fn deleted_ids_and_cdc_profile() {
    let directory = tempfile::tempdir().unwrap();
    let deals = examples().join("deals.jsonl");
    let deleted = directory.path().join("deleted.txt");
    std::fs::write(&deleted, "3\n4\n\n").unwrap();
    let first = summary(&syncline(
        directory.path(),
        &[
            "--entity",
            "deal",
            "--profile",
            "cdc",
            "--at",
            "2026-01-01T00:00:00Z",
            "--json",
            deals.to_str().unwrap(),
        ],
    ));
    assert_eq!(first["inserted_versions"], 50);
    let empty = directory.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let second = summary(&syncline(
        directory.path(),
        &[
            "--entity",
            "deal",
            "--profile",
            "cdc",
            "--at",
            "2026-01-03T00:00:00Z",
            "--deleted-ids",
            deleted.to_str().unwrap(),
            "--json",
            empty.to_str().unwrap(),
        ],
    ));
    assert_eq!(second["deleted"], 2);
    let dir = directory.path();
    assert_eq!(
        query_i64(dir, "SELECT count(*) FROM deal_history WHERE _cdc_end IS NULL AND _cdc_active"),
        48
    );
    assert_eq!(
        query_i64(
            dir,
            "SELECT count(*) FROM deal_history WHERE id IN (3, 4) AND NOT _cdc_active AND _cdc_end IS NOT NULL"
        ),
        2
    );
}

#[test]
fn a_locked_file_is_retried_until_it_is_free() {
    let directory = tempfile::tempdir().unwrap();
    let deals = examples().join("deals.jsonl");
    // This process holds the DuckDB file, as a `duckdb` CLI session would.
    let holder = Connection::open(directory.path().join("warehouse.duckdb")).unwrap();
    holder.execute_batch("CREATE TABLE other (x INTEGER)").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["load", "--entity", "deal", "--json", "--duckdb"])
        .arg(directory.path().join("warehouse.duckdb"))
        .arg("--state")
        .arg(directory.path().join("state.db"))
        .arg(&deals)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(holder);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("locked by another process"), "the wait must be logged: {stderr}");
    assert_eq!(summary(&output)["inserted_versions"], 50);
}

/// Drops the test's PostgreSQL schemas when the test ends, passed or not (through `psql`, which
/// `.ci/run` needs anyway; a leftover schema is only reported).
struct DropSchemas {
    base: String,
    schemas: Vec<String>,
}

impl Drop for DropSchemas {
    fn drop(&mut self) {
        let statements: String = self
            .schemas
            .iter()
            .map(|schema| format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE;"))
            .collect();
        let dropped = Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &self.base, "-c", &statements])
            .output();
        if !dropped.is_ok_and(|output| output.status.success()) {
            eprintln!("could not drop the test schemas {:?}; drop them by hand", self.schemas);
        }
    }
}

#[test]
fn loads_into_postgres_with_postgres_state_and_matches_duckdb() {
    use syncline_state::postgres_url::{test_service_url, unique_test_schema};
    let Some(base) = test_service_url() else { return };
    let (warehouse, state) = (unique_test_schema("syncline_load_dest"), unique_test_schema("syncline_load_state"));
    let _cleanup = DropSchemas {
        base: base.clone(),
        schemas: vec![warehouse.clone(), state.clone()],
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let destination_url = format!("{base}{separator}schema={warehouse}");
    let state_url = format!("{base}{separator}schema={state}");
    let directory = tempfile::tempdir().unwrap();
    let load = |file: &str, at: &str, destination: &[&str], state: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_syncline"))
            .arg("load")
            .args(destination)
            .args(["--state", state])
            .args([
                "--entity",
                "deal",
                "--modified-field",
                "update_time",
                "--full-extract",
                "--at",
                at,
                "--json",
            ])
            .arg(examples().join(file))
            .output()
            .expect("run syncline");
        summary(&output)
    };
    let postgres = ["--destination", destination_url.as_str()];
    let first = load("deals.jsonl", "2026-01-01T12:00:00Z", &postgres, &state_url);
    assert_eq!(first["inserted_versions"], 50);
    assert!(first["destination"].as_str().unwrap().contains(&warehouse), "{first}");
    let second = load("deals_day2.jsonl", "2026-01-02T12:00:00Z", &postgres, &state_url);
    assert_eq!(
        (
            &second["inserted_versions"],
            &second["closed"],
            &second["deleted"],
            &second["unchanged"]
        ),
        (&15.into(), &10.into(), &2.into(), &38.into())
    );
    let again = load("deals_day2.jsonl", "2026-01-02T12:00:00Z", &postgres, &state_url);
    assert_eq!(again["inserted_versions"], 0, "a replayed extract changes nothing");
    assert_eq!(again["deleted"], 0);

    // the same two loads into DuckDB (SQLite state, given as a URL) give the same history
    let duckdb = format!("duckdb://{}", directory.path().join("warehouse.duckdb").display());
    let sqlite = format!("sqlite://{}", directory.path().join("state.db").display());
    load("deals.jsonl", "2026-01-01T12:00:00Z", &["--destination", &duckdb], &sqlite);
    load("deals_day2.jsonl", "2026-01-02T12:00:00Z", &["--destination", &duckdb], &sqlite);
    assert_eq!(query_i64(directory.path(), "SELECT count(*) FROM deal_history"), 65);
    let compared = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["compare", "--json", "--left", &duckdb, "--right", &destination_url])
        .output()
        .expect("run syncline compare");
    let report = String::from_utf8_lossy(&compared.stdout);
    assert_eq!(
        compared.status.code(),
        Some(0),
        "postgres and duckdb histories differ: {report}{}",
        String::from_utf8_lossy(&compared.stderr)
    );
}

#[test]
fn destination_flags_are_checked() {
    let directory = tempfile::tempdir().unwrap();
    let deals = examples().join("deals.jsonl");
    let both = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args([
            "load",
            "--entity",
            "deal",
            "--duckdb",
            "a.duckdb",
            "--destination",
            "duckdb://b.duckdb",
        ])
        .arg(&deals)
        .current_dir(directory.path())
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
    let unknown = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["load", "--entity", "deal", "--destination", "mysql://ann:s3cret@db/w"])
        .arg(&deals)
        .current_dir(directory.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success());
    assert!(
        stderr.contains("--destination") && stderr.contains("duckdb://") && !stderr.contains("s3cret"),
        "{stderr}"
    );
    let state = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["load", "--entity", "deal", "--state", "redis://x"])
        .arg(&deals)
        .current_dir(directory.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&state.stderr);
    assert!(!state.status.success());
    assert!(stderr.contains("--state") && stderr.contains("sqlite://"), "{stderr}");
    assert!(
        !directory.path().join("warehouse.duckdb").exists(),
        "nothing is written on a bad flag"
    );
}
