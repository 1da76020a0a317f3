#!/usr/bin/env bash
# Runs the dbt example end to end: `syncline demo` into a temporary folder, then `dbt build` over
# its warehouse, a simulated next sync (one deal won, one deleted, through `syncline load`), and a
# second `dbt build` that takes the incremental (MERGE) path. Exits non-zero when anything fails.
#
# Environment:
#   CARGO_TARGET_DIR     where the release build of syncline is (default ~/.cache/syncline/target)
#   SYNCLINE_DBT_VENV    the virtualenv for dbt (default ~/.cache/syncline/dbt-venv); created and
#                        reused while requirements.txt is unchanged
#   SYNCLINE_DBT_KEEP=1  keep the temporary folder (demo warehouse, dbt logs) after a success
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/syncline/target}"
syncline="$target_dir/release/syncline"
venv="${SYNCLINE_DBT_VENV:-$HOME/.cache/syncline/dbt-venv}"

if [ ! -x "$syncline" ]; then
    echo "examples/dbt/run.sh: no syncline binary at $syncline" >&2
    echo "  build it first: CARGO_TARGET_DIR=$target_dir cargo build --release -p syncline-cli" >&2
    echo "  (or set CARGO_TARGET_DIR to the target directory that holds release/syncline)" >&2
    exit 2
fi

# ---------------------------------------------------------------- dbt's virtualenv
requirements="$here/requirements.txt"
marker="$venv/.syncline-dbt-requirements"
if [ -x "$venv/bin/dbt" ] && [ -f "$marker" ] && cmp -s "$requirements" "$marker"; then
    echo "== reusing virtualenv $venv"
else
    echo "== preparing virtualenv $venv (dbt-core<1.12, dbt-duckdb, duckdb==1.5.5)"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$marker"
fi

# ---------------------------------------------------------------- demo warehouse
work="$(mktemp -d "${TMPDIR:-/tmp}/syncline-dbt.XXXXXX")"
finish() {
    local rc=$?
    if [ "$rc" -eq 0 ] && [ "${SYNCLINE_DBT_KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "examples/dbt/run.sh: the demo warehouse and dbt's logs are kept in $work" >&2
    fi
    exit "$rc"
}
trap finish EXIT

# syncline logs at info as JSON lines when not on a terminal; the reports on stdout say enough.
export RUST_LOG="${RUST_LOG:-warn}"

echo "== syncline demo --dir $work/demo"
"$syncline" demo --dir "$work/demo"

# The project itself is used unchanged: only its profile's DuckDB path comes from the environment.
export SYNCLINE_DEMO_DUCKDB="$work/demo/warehouse.duckdb"
export DBT_TARGET_PATH="$work/target" DBT_LOG_PATH="$work/logs"   # keep the clone clean
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_VERSION_CHECK=false DBT_USE_COLORS=false
dbt() {
    (cd "$here" && "$venv/bin/dbt" "$@" --project-dir "$here" --profiles-dir "$here")
}

echo "== dbt build (first run: every model built in full)"
dbt build

echo "== next sync: one open deal is won, one deal is deleted (syncline load)"
read -r won_id deleted_id < <("$venv/bin/python" "$here/next_sync.py" "$SYNCLINE_DEMO_DUCKDB" \
    "$work/next_sync.jsonl" "$work/deleted_ids.txt")
echo "deal $won_id won, deal $deleted_id deleted"
"$syncline" load --duckdb "$SYNCLINE_DEMO_DUCKDB" --state "$work/demo/state.db" --source pipedrive \
    --entity deal --primary-key id --modified-field update_time --timestamp-fields add_time \
    --deleted-ids "$work/deleted_ids.txt" "$work/next_sync.jsonl"

echo "== dbt build (second run: deals_current is merged incrementally)"
dbt build

# The second run must have taken the incremental path (a MERGE, not a rebuild) and the tests
# (assert_deals_current_matches_staging) have checked its result; show the two deals.
compiled="$work/target/run/syncline_pipedrive/models/marts/deals_current.sql"
if ! grep -q "MERGE INTO" "$compiled"; then
    echo "examples/dbt/run.sh: the second dbt build did not merge into deals_current ($compiled)" >&2
    exit 1
fi
"$venv/bin/python" - "$SYNCLINE_DEMO_DUCKDB" "$won_id" "$deleted_id" <<'PY'
import sys
import duckdb

path, won_id, deleted_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = duckdb.connect(path, read_only=True)
status = con.execute("select status from analytics.deals_current where deal_id = ?", [won_id]).fetchall()
gone = con.execute("select count(*) from analytics.deals_current where deal_id = ?", [deleted_id]).fetchone()[0] == 0
rows = con.execute("select count(*) from analytics.deals_current").fetchone()[0]
print(f"deals_current: {rows} deals; deal {won_id} is {status[0][0] if status else 'missing'}; "
      f"deal {deleted_id} {'removed' if gone else 'still present'}")
if status != [("won",)] or not gone:
    sys.exit("examples/dbt/run.sh: the incremental run missed the next sync's changes")
PY
echo "== examples/dbt: PASS"
