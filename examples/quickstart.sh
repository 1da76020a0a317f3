#!/usr/bin/env bash
# Loads two days of Pipedrive-shaped deals into a DuckDB history table and prints what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/syncline/target}"
cargo build --release -p syncline-cli
syncline="$CARGO_TARGET_DIR/release/syncline"
out=examples/out
rm -rf "$out" && mkdir -p "$out"
load() {
  "$syncline" load --duckdb "$out/warehouse.duckdb" --state "$out/state.db" --source pipedrive \
    --entity deal --primary-key id --modified-field update_time --timestamp-fields add_time \
    --full-extract "$@"
}
echo "== day 1: first full extract"
load --at 2026-01-01T12:00:00Z examples/deals.jsonl
echo
echo "== day 2: ten deals changed, two removed, five new"
load --at 2026-01-02T12:00:00Z examples/deals_day2.jsonl
echo
echo "== day 2 again: nothing changes"
load --at 2026-01-02T12:00:00Z examples/deals_day2.jsonl
echo
echo "history table deal_history is in $out/warehouse.duckdb; for example:"
echo "  duckdb $out/warehouse.duckdb \"SELECT id, status, value, _fivetran_start, _fivetran_end, _fivetran_active FROM deal_history WHERE id IN (5, 7) ORDER BY id, _fivetran_start\""
