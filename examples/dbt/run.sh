#!/usr/bin/env bash
# Runs the dbt example end to end, incrementally, the way a team runs it between syncs: for each
# destination (DuckDB; PostgreSQL at 127.0.0.1:5432) and each `[history] start` setting
# (observed, source), `syncline demo` makes several rounds of upstream changes with lost, late
# (reordered) and duplicated webhooks, each healed by an incremental reconcile, and runs
# `dbt build` after every round (the incremental path). At the end every incremental model is
# rebuilt with --full-refresh in another schema and compared with the incremental one (EXCEPT
# in both directions): they must be equal wherever the start setting fits the pattern (see
# README.md); the misfits are measured and reported. Exits non-zero when anything fails.
#
# Environment:
#   CARGO_TARGET_DIR       where the release build of syncline is (default ~/.cache/syncline/target)
#   SYNCLINE_DBT_VENV      the virtualenv for dbt (default ~/.cache/syncline/dbt-venv); created and
#                          reused while requirements.txt is unchanged
#   SYNCLINE_DBT_KEEP=1    keep the temporary folder (demo warehouses, dbt logs) after a success
#   SYNCLINE_DBT_BACKENDS  which destinations (default "duckdb postgres")
#   SYNCLINE_DBT_ROUNDS    rounds of changes (default 3)
#   SYNCLINE_DBT_CHANGES   upstream changes per round (default 600)
#   SYNCLINE_DBT_PG_URL    the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/syncline/target}"
syncline="$target_dir/release/syncline"
venv="${SYNCLINE_DBT_VENV:-$HOME/.cache/syncline/dbt-venv}"
backends="${SYNCLINE_DBT_BACKENDS:-duckdb postgres}"
rounds="${SYNCLINE_DBT_ROUNDS:-3}"
changes="${SYNCLINE_DBT_CHANGES:-600}"
pg_url="${SYNCLINE_DBT_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if [ ! -x "$syncline" ]; then
    echo "examples/dbt/run.sh: no syncline binary at $syncline" >&2
    echo "  build it first: CARGO_TARGET_DIR=$target_dir cargo build --release --workspace" >&2
    echo "  (or set CARGO_TARGET_DIR to the target directory that holds release/syncline)" >&2
    exit 2
fi

# ---------------------------------------------------------------- dbt's virtualenv
requirements="$here/requirements.txt"
marker="$venv/.syncline-dbt-requirements"
if [ -x "$venv/bin/dbt" ] && [ -f "$marker" ] && cmp -s "$requirements" "$marker"; then
    echo "== reusing virtualenv $venv"
else
    echo "== preparing virtualenv $venv (dbt-core<1.12, dbt-duckdb, dbt-postgres, duckdb==1.5.5)"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$marker"
fi

# ---------------------------------------------------------------- the runs
work="$(mktemp -d "${TMPDIR:-/tmp}/syncline-dbt.XXXXXX")"
pg_schemas=()
drop_pg_schemas() {
    for schema in "${pg_schemas[@]}"; do
        "$venv/bin/python" - "$pg_url" "$schema" <<'PY' || true
import sys
import psycopg2
url, schema = sys.argv[1], sys.argv[2]
with psycopg2.connect(url) as con, con.cursor() as cur:
    for name in (schema, schema + "_analytics", schema + "_analytics_full"):
        cur.execute('DROP SCHEMA IF EXISTS "%s" CASCADE' % name.replace('"', '""'))
PY
    done
}
finish() {
    local rc=$?
    drop_pg_schemas
    if [ "$rc" -eq 0 ] && [ "${SYNCLINE_DBT_KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "examples/dbt/run.sh: the demo warehouses and dbt's logs are kept in $work" >&2
    fi
    exit "$rc"
}
trap finish EXIT

# syncline logs at info as JSON lines when not on a terminal; the reports on stdout say enough.
export RUST_LOG="${RUST_LOG:-warn}"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_VERSION_CHECK=false DBT_USE_COLORS=false
export SYNCLINE_DBT_HERE="$here" SYNCLINE_DBT_BIN="$venv/bin/dbt"

# What the demo runs after each round, while syncline is idle and the warehouse released: an
# incremental `dbt build`. The project is used unchanged; only its profile's target, schemas and
# DuckDB path come from the environment.
build_after_round='cd "$SYNCLINE_DBT_HERE" && echo "== dbt build after round $SYNCLINE_DEMO_ROUND" && "$SYNCLINE_DBT_BIN" build --quiet --project-dir . --profiles-dir . --vars "{deals_as_of: '"'"'$(date -u -d "+2 seconds" "+%Y-%m-%d %H:%M:%S")'"'"'}"'

all_models="deals_current, deals_merge, stg_pipedrive__deal_history, deal_daily_history, deals_active"
synced_models="deals_current, stg_pipedrive__deal_history, deals_active"
start_models="deals_merge, deal_daily_history"
summary="$work/summary.txt"
: > "$summary"

run_case() {
    local backend=$1 start=$2
    local dir="$work/$backend-$start"
    local destination_args=() analytics
    export DBT_TARGET_PATH="$work/target-$backend-$start" DBT_LOG_PATH="$work/logs-$backend-$start"
    if [ "$backend" = duckdb ]; then
        export SYNCLINE_DBT_TARGET=demo SYNCLINE_DEMO_DUCKDB="$dir/warehouse.duckdb" SYNCLINE_DBT_SOURCE_SCHEMA=main
        analytics=analytics
    else
        local schema="syncline_dbt_${start}_$$"
        pg_schemas+=("$schema")
        destination_args=(--destination "$pg_url?schema=$schema")
        export SYNCLINE_DBT_TARGET=postgres SYNCLINE_DBT_SOURCE_SCHEMA="$schema"
        analytics="${schema}_analytics"
    fi
    export SYNCLINE_DBT_SCHEMA="$analytics"
    echo "== $backend, start = $start: syncline demo, $rounds rounds of $changes changes, 20% of webhooks lost"
    "$syncline" demo --dir "$dir" --rounds "$rounds" --changes "$changes" --drop-rate 0.2 --duplicate-rate 0.05 \
        --start "$start" "${destination_args[@]}" --after-round "$build_after_round" | tee "$dir.log"
    echo "== $backend, start = $start: every model again with --full-refresh, into ${analytics}_full"
    local now models report_only
    now="$(date -u -d '+2 seconds' '+%Y-%m-%d %H:%M:%S')"
    (cd "$here" && SYNCLINE_DBT_SCHEMA="${analytics}_full" "$venv/bin/dbt" run --quiet --full-refresh \
        --project-dir . --profiles-dir . --vars "{deals_as_of: '$now'}")
    if [ "$start" = observed ]; then
        models="$all_models" report_only=""
    else
        models="$synced_models" report_only="$start_models"
    fi
    echo "== $backend, start = $start: incremental models against the full refresh (EXCEPT both ways)"
    (cd "$here" && "$venv/bin/dbt" run-operation assert_same_as_full_refresh --project-dir . --profiles-dir . \
        --args "{full_schema: ${analytics}_full, models: [$models], report_only: [$report_only]}") | tee "$dir.compare.log"
    {
        echo "$backend, start = $start"
        grep -E '^[a-z_]+_history +[0-9]+ of +[0-9]+ versions' "$dir.log" | sed 's/^/  late versions: /' || true
        grep -oE '[a-z_]+: (equal|DIFFERENT) .*' "$dir.compare.log" | sed 's/^/  /' || true
    } >> "$summary"
}

for backend in $backends; do
    for start in observed source; do
        run_case "$backend" "$start"
    done
done

echo
echo "== summary (late versions: written with a start at or before the newest start of an earlier write)"
cat "$summary"
echo "== examples/dbt: PASS"
