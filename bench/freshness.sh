#!/usr/bin/env bash
# Freshness under a full reconcile (issue 10), two parts, one table (also
# bench/out/freshness/freshness.md):
#
# 1. webhook-to-row latency (p50/p99) of webhooks at --rate per second with no reconcile
#    running, beside the same during a full reconcile of --deals deals whose list pages each take
#    --page-delay-ms (syncline-bench freshness: simulator and server in one process, webhooks over
#    loopback HTTP); target p99 under 1 s during the reconcile;
# 2. peak RSS of `syncline sync --mode full` (a separate process, /usr/bin/time) into empty
#    stores against a `syncline simulate` process with --deals and with 10x --deals records;
#    target: the larger under 1.5x the smaller.
#
# usage: bench/freshness.sh [--deals N] [--page-delay-ms MS] [--rate R] [--idle-secs S] [--no-build]
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
OUT_DIR="$BENCH_DIR/out/freshness"
DEALS=20000
PAGE_DELAY_MS=400
RATE=50
IDLE_SECS=15
BUILD=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/syncline/target}"
SYNCLINE_BIN="${SYNCLINE_BIN:-$CARGO_TARGET_DIR/release/syncline}"
BENCH_BIN="${SYNCLINE_BENCH_BIN:-$CARGO_TARGET_DIR/release/syncline-bench}"

while [ $# -gt 0 ]; do
    case "$1" in
        --deals) DEALS="$2"; shift 2 ;;
        --page-delay-ms) PAGE_DELAY_MS="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --idle-secs) IDLE_SECS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n 2,16p "$0"; exit 0 ;;
        *) echo "unknown option $1; see --help" >&2; exit 2 ;;
    esac
done

if [ "$BUILD" = 1 ]; then
    (cd "$REPO_DIR" && CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --workspace --bins)
fi
command -v jq >/dev/null || { echo "jq is needed to read the JSON results" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed for peak RSS (apt-get install time)" >&2; exit 2; }

rm -rf "$OUT_DIR"; mkdir -p "$OUT_DIR"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "latency: $DEALS deals, ${PAGE_DELAY_MS} ms per list page, $RATE webhooks/s" >&2
"$BENCH_BIN" freshness --deals "$DEALS" --page-delay-ms "$PAGE_DELAY_MS" --rate "$RATE" \
    --idle-secs "$IDLE_SECS" --dir "$OUT_DIR/latency" > "$OUT_DIR/latency.json" 2> "$OUT_DIR/latency.log"

# Peak RSS of a full reconcile of $1 records: a simulator process, then `syncline sync`.
rss_of_full_reconcile() {
    local records="$1" dir="$OUT_DIR/rss-$1"
    mkdir -p "$dir"
    printf '{"initial_records": {"deal": %s, "pipeline": 2, "stage": 8}}\n' "$records" > "$dir/sim.json"
    "$SYNCLINE_BIN" simulate pipedrive --config "$dir/sim.json" --changes-per-second 0 > "$dir/sim.out" 2> "$dir/sim.log" &
    local sim_pid=$!
    PIDS+=("$sim_pid")
    local base="" token=""
    for _ in $(seq 1 600); do
        if grep -q '"api_base_url"' "$dir/sim.out" 2>/dev/null && grep -q '^}' "$dir/sim.out"; then
            base=$(sed -n '/^{/,/^}/p' "$dir/sim.out" | jq -r .api_base_url)
            token=$(sed -n '/^{/,/^}/p' "$dir/sim.out" | jq -r .api_token)
            break
        fi
        sleep 0.1
    done
    [ -n "$base" ] || { echo "the simulator with $records records did not start; see $dir/sim.log" >&2; exit 1; }
    cat > "$dir/syncline.toml" <<TOML
[destination]
url = "duckdb://$dir/warehouse.duckdb"
[state]
url = "sqlite://$dir/state.db"
[sources.crm]
connector = "pipedrive"
base_url = "$base"
entities = ["deal"]
auth = { type = "api_token", token = "$token" }
TOML
    local started ended
    started=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$dir/rss_kb" "$SYNCLINE_BIN" sync --config "$dir/syncline.toml" --mode full > "$dir/sync.out" 2> "$dir/sync.log"
    ended=$(date +%s.%N)
    kill "$sim_pid" 2>/dev/null || true
    echo "$(cat "$dir/rss_kb") $(echo "$ended - $started" | bc)"
}

echo "peak RSS: full reconcile of $DEALS and of $((DEALS * 10)) records" >&2
read -r SMALL_KB SMALL_S < <(rss_of_full_reconcile "$DEALS")
read -r LARGE_KB LARGE_S < <(rss_of_full_reconcile "$((DEALS * 10))")

j() { jq -r "$1" "$OUT_DIR/latency.json"; }
ms() { printf '%.0f' "$1"; }
RATIO=$(echo "scale=2; $LARGE_KB / $SMALL_KB" | bc)
DURING_P99=$(j .during.latency.p99_ms)
{
    echo "| freshness ($DEALS deals, ${PAGE_DELAY_MS} ms/list page, $RATE webhooks/s) | no reconcile | during a full reconcile | target |"
    echo "| --- | --- | --- | --- |"
    echo "| webhooks sent | $(j .idle.webhooks) | $(j .during.webhooks) | |"
    echo "| webhook-to-row p50 | $(ms "$(j .idle.latency.p50_ms)") ms | $(ms "$(j .during.latency.p50_ms)") ms | |"
    echo "| webhook-to-row p99 | $(ms "$(j .idle.latency.p99_ms)") ms | $(ms "$DURING_P99") ms | < 1000 ms during |"
    echo "| reconcile duration | | $(printf '%.1f' "$(j .reconcile_s)") s ($(j .reconcile_api_calls) API calls) | |"
    echo ""
    echo "| full reconcile into empty stores | $DEALS records | $((DEALS * 10)) records | target |"
    echo "| --- | --- | --- | --- |"
    echo "| peak RSS | $((SMALL_KB / 1024)) MiB | $((LARGE_KB / 1024)) MiB ($RATIO x) | < 1.5 x |"
    echo "| duration | $(printf '%.1f' "$SMALL_S") s | $(printf '%.1f' "$LARGE_S") s | |"
} | tee "$OUT_DIR/freshness.md"
