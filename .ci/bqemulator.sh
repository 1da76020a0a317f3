#!/usr/bin/env bash
# Starts the BigQuery emulator (the `bqemulator` package from PyPI) on 127.0.0.1 for the
# service-backed BigQuery tests, unless it already answers. Idempotent:
#   - creates the virtualenv ~/.cache/syncline/bq-venv when it is missing and installs the pins
#     (bqemulator needs DuckDB's spatial extension at start; it is installed from the
#     duckdb-extension-spatial wheel, because the emulator would otherwise try to download it);
#   - starts `bqemulator start` in the background (REST on $BQEMULATOR_PORT, default 9050; gRPC on
#     $BQEMULATOR_GRPC_PORT, default 9060; in-memory), logging to ~/.cache/syncline/bqemulator.log;
#   - waits up to 60 s for GET /healthz.
# Tests then use SYNCLINE_TEST_BIGQUERY_URL=bigquery://test-project/syncline_test?endpoint=http://127.0.0.1:9050
set -euo pipefail

cache="$HOME/.cache/syncline"
venv="$cache/bq-venv"
port="${BQEMULATOR_PORT:-9050}"
grpc_port="${BQEMULATOR_GRPC_PORT:-9060}"
log="$cache/bqemulator.log"
health="http://127.0.0.1:$port/healthz"

answers() {
    curl -fsS --max-time 2 "$health" >/dev/null 2>&1
}

if answers; then
    echo "bqemulator already answers on 127.0.0.1:$port"
    exit 0
fi

mkdir -p "$cache"
if [ ! -x "$venv/bin/bqemulator" ]; then
    echo "installing bqemulator into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'duckdb==1.5.5' 'duckdb-extension-spatial==1.5.5' numpy bqemulator
fi

# The spatial extension from the wheel, into DuckDB's extension directory (~/.duckdb).
"$venv/bin/python" - <<'PY'
import glob
import os

import duckdb
import duckdb_extension_spatial

connection = duckdb.connect()
try:
    connection.execute("LOAD spatial")
except duckdb.Error:
    package = os.path.dirname(duckdb_extension_spatial.__file__)
    found = glob.glob(os.path.join(package, "extensions", "*", "spatial.duckdb_extension"))
    if not found:
        raise SystemExit(f"no spatial.duckdb_extension under {package}")
    connection.execute(f"INSTALL '{found[0]}'")
    connection.execute("LOAD spatial")
    print(f"installed the duckdb spatial extension from {found[0]}")
PY

echo "starting bqemulator on 127.0.0.1:$port (log: $log)"
nohup setsid "$venv/bin/bqemulator" start \
    --rest-host 127.0.0.1 --rest-port "$port" \
    --grpc-host 127.0.0.1 --grpc-port "$grpc_port" \
    --project test-project --ephemeral --log-level warning \
    >"$log" 2>&1 </dev/null &

for attempt in $(seq 1 60); do
    if answers; then
        echo "bqemulator answers on 127.0.0.1:$port"
        exit 0
    fi
    sleep 1
done
echo "bqemulator does not answer on 127.0.0.1:$port after 60 s; the end of $log:" >&2
tail -n 40 "$log" >&2
exit 1
