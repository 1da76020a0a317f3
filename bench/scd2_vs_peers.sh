#!/usr/bin/env bash
# SCD2 into DuckDB: syncline vs dlt (scd2 merge) vs a dbt snapshot.
#
# N synthetic records (10 scalar fields + one nested object) are loaded as a
# full extract, then a second full extract with 10% of the ids changed and 1%
# removed (disjoint sets). Every tool gets the same two files, one process per
# run, each timed with GNU time (wall seconds, peak RSS). The script prints a
# side-by-side table (also written to bench/out/scd2_vs_peers.md) with the
# ratios to syncline and each tool's current/closed row counts, and exits
# non-zero when the counts disagree. See bench/README.md.
#
# usage: bench/scd2_vs_peers.sh [--records N] [--tools LIST] [--no-build]
#                               [--enforce-target] [--venv DIR]
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
PEERS_DIR="$BENCH_DIR/peers"
OUT_DIR="$BENCH_DIR/out"

RECORDS=100000
TOOLS="syncline,dlt-default,dlt-parquet,dbt"
BUILD=1
ENFORCE_TARGET=0
VENV_DIR="${SYNCLINE_BENCH_VENV:-$HOME/.cache/syncline/bench-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/syncline/target}"
SYNCLINE_BIN="${SYNCLINE_BIN:-$CARGO_TARGET_DIR/release/syncline}"
ENTITY=record
RUN1_AT="2026-01-01T00:00:00Z"
RUN2_AT="2026-01-02T00:00:00Z"

usage() {
    cat <<EOF
usage: $0 [options]

  --records N       records in the first extract (default 100000)
  --tools LIST      comma-separated subset of: syncline,dlt-default,dlt-parquet,dbt
                    (default: all of them)
  --no-build        do not run 'cargo build --release --workspace' first;
                    use the existing binary (\$SYNCLINE_BIN, default
                    \$CARGO_TARGET_DIR/release/syncline)
  --enforce-target  exit 3 when syncline misses the target (>= 10x faster than
                    dlt's fastest configuration on both runs, <= 1/5 of its peak RSS)
  --venv DIR        virtualenv for the peers (default \$SYNCLINE_BENCH_VENV or
                    ~/.cache/syncline/bench-venv); created and reused

environment: CARGO_TARGET_DIR (default ~/.cache/syncline/target), SYNCLINE_BIN
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --records) RECORDS="${2:?--records needs a number}"; shift 2 ;;
        --records=*) RECORDS="${1#*=}"; shift ;;
        --tools) TOOLS="${2:?--tools needs a list}"; shift 2 ;;
        --tools=*) TOOLS="${1#*=}"; shift ;;
        --no-build) BUILD=0; shift ;;
        --enforce-target) ENFORCE_TARGET=1; shift ;;
        --venv) VENV_DIR="${2:?--venv needs a directory}"; shift 2 ;;
        --venv=*) VENV_DIR="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if ! [[ "$RECORDS" =~ ^[1-9][0-9]*$ ]]; then
    echo "--records must be a positive integer, got '$RECORDS'" >&2
    exit 2
fi
IFS=',' read -r -a TOOL_LIST <<<"$TOOLS"
for tool in "${TOOL_LIST[@]}"; do
    case "$tool" in
        syncline|dlt-default|dlt-parquet|dbt) ;;
        *) echo "unknown tool '$tool' in --tools (syncline, dlt-default, dlt-parquet, dbt)" >&2; exit 2 ;;
    esac
done
wants() { [[ ",$TOOLS," == *",$1,"* ]]; }

progress() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x /usr/bin/time ]; then
    echo "GNU time is needed at /usr/bin/time (apt-get install time)" >&2
    exit 2
fi

# ---------------------------------------------------------------- peers' venv
# Reused when its marker matches requirements.txt; rebuilt otherwise.
ensure_venv() {
    local requirements="$PEERS_DIR/requirements.txt"
    local marker="$VENV_DIR/.syncline-bench-requirements"
    if [ -x "$VENV_DIR/bin/python" ] && [ -f "$marker" ] && cmp -s "$requirements" "$marker"; then
        progress "reusing virtualenv $VENV_DIR"
        return
    fi
    progress "preparing virtualenv $VENV_DIR (dlt, dbt-duckdb, duckdb==1.5.5)"
    if [ ! -x "$VENV_DIR/bin/python" ]; then
        python3 -m venv "$VENV_DIR"
    fi
    "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$marker"
}

ensure_venv   # every tool needs it: the row counts are read with python duckdb 1.5.5
PY="$VENV_DIR/bin/python"

# Nothing may phone home: the machine reaches package registries only.
export RUNTIME__DLTHUB_TELEMETRY=false
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
export DBT_VERSION_CHECK=false
export DBT_USE_COLORS=false

# ------------------------------------------------------------------ syncline
if wants syncline; then
    if [ "$BUILD" = 1 ]; then
        progress "building syncline (cargo build --release --workspace, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
        (cd "$REPO_DIR" && cargo build --release --workspace)
    fi
    if [ ! -x "$SYNCLINE_BIN" ]; then
        echo "no syncline binary at $SYNCLINE_BIN: build it with" >&2
        echo "  (cd $REPO_DIR && CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release --workspace)" >&2
        echo "or leave it out with --tools dlt-default,dlt-parquet,dbt" >&2
        exit 2
    fi
fi

# ---------------------------------------------------------------------- data
DATA_DIR="$OUT_DIR/data"
RESULTS="$OUT_DIR/results.tsv"
COUNTS_DIR="$OUT_DIR/counts"
LOG_DIR="$OUT_DIR/logs"
rm -rf "$DATA_DIR" "$COUNTS_DIR" "$LOG_DIR" "$OUT_DIR"/syncline "$OUT_DIR"/dlt-* "$OUT_DIR"/dbt
mkdir -p "$DATA_DIR" "$COUNTS_DIR" "$LOG_DIR"
printf '# tool\trun\tstep\twall_s\tpeak_rss_kib\n' >"$RESULTS"

progress "generating $RECORDS records into $DATA_DIR"
python3 "$PEERS_DIR/gen_data.py" --records "$RECORDS" "$DATA_DIR"
EXPECTED="$DATA_DIR/expected.json"
read -r EXPECTED_CURRENT EXPECTED_CLOSED < <(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["run2"]
print(e["current"], e["closed"])' "$EXPECTED")
progress "expected after run 2: $EXPECTED_CURRENT current rows, $EXPECTED_CLOSED closed rows"

# ------------------------------------------------------------------ measuring
# measure TOOL RUN STEP -- COMMAND...: runs COMMAND under GNU time, output in
# a log; appends "TOOL RUN STEP wall_s peak_rss_kib" to results.tsv.
measure() {
    local tool="$1" run="$2" step="$3"
    shift 4
    local log="$LOG_DIR/$tool.run$run.$step"
    local timing="$LOG_DIR/$tool.run$run.$step.time"
    if ! /usr/bin/time -f '%e %M' -o "$timing" "$@" >"$log.stdout" 2>"$log.stderr"; then
        echo "FAILED: $tool run $run ($step): $*" >&2
        echo "--- last lines of $log.stdout:" >&2
        tail -n 15 "$log.stdout" >&2
        echo "--- last lines of $log.stderr:" >&2
        tail -n 30 "$log.stderr" >&2
        exit 1
    fi
    local wall rss
    read -r wall rss < <(tail -n 1 "$timing")
    printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$run" "$step" "$wall" "$rss" >>"$RESULTS"
    progress "  $tool run $run $step: ${wall} s wall, $((rss / 1024)) MiB peak RSS"
}

count_rows() {
    local tool_kind="$1" key="$2" run="$3" duckdb_file="$4"
    "$PY" "$PEERS_DIR/count_rows.py" --tool "$tool_kind" --entity "$ENTITY" \
        --duckdb "$duckdb_file" >"$COUNTS_DIR/$key.run$run.json"
    progress "  $key after run $run: $(cat "$COUNTS_DIR/$key.run$run.json")"
}

at_for_run() { if [ "$1" = 1 ]; then echo "$RUN1_AT"; else echo "$RUN2_AT"; fi; }

# ----------------------------------------------------------------- the tools
run_syncline() {
    local dir="$OUT_DIR/syncline"
    mkdir -p "$dir"
    progress "syncline: $("$SYNCLINE_BIN" --version 2>/dev/null || echo "$SYNCLINE_BIN")"
    for run in 1 2; do
        measure syncline "$run" load -- "$SYNCLINE_BIN" load \
            --duckdb "$dir/warehouse.duckdb" --state "$dir/state.sqlite" \
            --entity "$ENTITY" --primary-key id --full-extract \
            --at "$(at_for_run "$run")" --json "$DATA_DIR/run$run.jsonl"
        progress "  syncline summary: $(tail -n 1 "$LOG_DIR/syncline.run$run.load.stdout")"
        count_rows syncline syncline "$run" "$dir/warehouse.duckdb"
    done
}

run_dlt() {
    local key="$1" format="$2"
    local dir="$OUT_DIR/$key"
    mkdir -p "$dir"
    for run in 1 2; do
        measure "$key" "$run" pipeline.run -- "$PY" "$PEERS_DIR/dlt_load.py" \
            --duckdb "$dir/dlt.duckdb" --pipelines-dir "$dir/pipelines" \
            --pipeline-name "scd2_${format}" --format "$format" \
            --at "$(at_for_run "$run")" "$DATA_DIR/run$run.jsonl"
        progress "  $(tail -n 1 "$LOG_DIR/$key.run$run.pipeline.run.stdout")"
        count_rows dlt "$key" "$run" "$dir/dlt.duckdb"
    done
}

run_dbt() {
    local dir="$OUT_DIR/dbt"
    local project="$PEERS_DIR/dbt_snapshot"
    mkdir -p "$dir"
    export BENCH_DBT_DUCKDB="$dir/dbt.duckdb"
    for run in 1 2; do
        local at
        at="$(at_for_run "$run")"
        at="${at%Z}"
        measure dbt "$run" source-load -- "$PY" "$PEERS_DIR/dbt_load_source.py" \
            --duckdb "$dir/dbt.duckdb" "$DATA_DIR/run$run.jsonl"
        measure dbt "$run" snapshot -- "$VENV_DIR/bin/dbt" snapshot \
            --project-dir "$project" --profiles-dir "$project" \
            --target-path "$dir/target" --log-path "$dir/logs" \
            --vars "{snapshot_at: '${at/T/ }'}"
        count_rows dbt dbt "$run" "$dir/dbt.duckdb"
    done
}

for tool in "${TOOL_LIST[@]}"; do
    case "$tool" in
        syncline) progress "syncline load (2 runs)"; run_syncline ;;
        dlt-default) progress "dlt scd2, default loader file format (2 runs)"; run_dlt dlt-default default ;;
        dlt-parquet) progress "dlt scd2, parquet loader file format (2 runs)"; run_dlt dlt-parquet parquet ;;
        dbt) progress "dbt snapshot, check strategy, hard_deletes: invalidate (2 runs)"; run_dbt ;;
    esac
done

# ------------------------------------------------------------------- report
VERSIONS="$("$PY" - <<'EOF'
from importlib.metadata import version
print(", ".join(f"{p} {version(p)}" for p in ("dlt", "dbt-core", "dbt-duckdb", "duckdb", "pyarrow")))
EOF
)"
CONTEXT="records: $RECORDS in the first extract; second extract: $(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
print("%d changed, %d removed (disjoint), seed %d" % (e["changed"], e["removed"], e["seed"]))' "$EXPECTED")"
CONTEXT+="\\nmachine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory; $(date -u +%Y-%m-%dT%H:%MZ)"
CONTEXT+="\\npeers: $VERSIONS"
if wants syncline; then
    CONTEXT+="\\nsyncline: $SYNCLINE_BIN"
fi
CONTEXT+="\\ndbt's time includes loading the JSONL into its source table (python duckdb read_json) before each dbt snapshot"

echo
progress "results ($RECORDS records; wall = seconds, peak = MiB RSS; r1 / r2 = run 1 / run 2)"
echo
report_args=(--results "$RESULTS" --counts-dir "$COUNTS_DIR" --expected "$EXPECTED"
             --tools "$TOOLS" --markdown "$OUT_DIR/scd2_vs_peers.md" --context "$CONTEXT")
if [ "$ENFORCE_TARGET" = 1 ]; then
    report_args+=(--enforce-target)
fi
status=0
python3 "$PEERS_DIR/report.py" "${report_args[@]}" || status=$?
echo
progress "table written to $OUT_DIR/scd2_vs_peers.md; logs in $LOG_DIR"
exit "$status"
