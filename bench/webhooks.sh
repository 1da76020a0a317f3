#!/usr/bin/env bash
# Webhook load against `syncline serve` (SQLite inbox, DuckDB warehouse) beside a bare axum
# handler that answers 200 (the ceiling), both driven by the same load generator from a second
# process on loopback.
#
# For each server: start-to-ready time, idle RSS, a warm-up, an open-loop phase at a fixed rate
# (acknowledgement latency from each request's scheduled send time), then a closed-loop phase at
# full speed (throughput ceiling), and peak RSS. For syncline also the webhook-to-row latency of
# each phase, from the server's `syncline_webhook_to_warehouse_seconds` histogram after the inbox
# has drained. Prints a side-by-side table (also bench/out/webhooks/webhooks.md). See
# bench/README.md.
#
# usage: bench/webhooks.sh [--rate R] [--duration S] [--max-duration S] [--warmup S]
#                          [--connections C] [--ids N] [--no-build] [--enforce-target]
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
OUT_DIR="$BENCH_DIR/out/webhooks"

RATE=5000
DURATION=20
MAX_DURATION=10
WARMUP=5
CONNECTIONS=32
IDS=1000
BUILD=1
ENFORCE_TARGET=0
DRAIN_TIMEOUT=300
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/syncline/target}"
SYNCLINE_BIN="${SYNCLINE_BIN:-$CARGO_TARGET_DIR/release/syncline}"
BENCH_BIN="${SYNCLINE_BENCH_BIN:-$CARGO_TARGET_DIR/release/syncline-bench}"

# Targets on a 2-core machine (issue #5).
TARGET_RPS=5000
TARGET_ACK_P99_MS=20
TARGET_ROW_P99_S=1

usage() {
    cat <<EOF
usage: $0 [options]

  --rate R            open-loop phase: webhooks per second (default $RATE)
  --duration S        open-loop phase: measured seconds (default $DURATION)
  --max-duration S    closed-loop (full speed) phase: measured seconds (default $MAX_DURATION)
  --warmup S          seconds of load at --rate before the measured phases (default $WARMUP)
  --connections C     keep-alive connections of the load generator (default $CONNECTIONS)
  --ids N             deal ids 1..N in the simulator and in the webhooks (default $IDS)
  --no-build          do not run 'cargo build --release --workspace' first; use the existing
                      binaries (\$SYNCLINE_BIN, \$SYNCLINE_BENCH_BIN)
  --enforce-target    exit 3 when syncline misses a target (>= $TARGET_RPS webhooks/s,
                      ack p99 < $TARGET_ACK_P99_MS ms at --rate, webhook-to-row p99 < $TARGET_ROW_P99_S s)

environment: CARGO_TARGET_DIR (default ~/.cache/syncline/target), SYNCLINE_BIN,
SYNCLINE_BENCH_BIN
EOF
}

positive() {
    if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "$1 must be a positive integer, got '$2'" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --rate) RATE="${2:?--rate needs a number}"; shift 2 ;;
        --rate=*) RATE="${1#*=}"; shift ;;
        --duration) DURATION="${2:?--duration needs seconds}"; shift 2 ;;
        --duration=*) DURATION="${1#*=}"; shift ;;
        --max-duration) MAX_DURATION="${2:?--max-duration needs seconds}"; shift 2 ;;
        --max-duration=*) MAX_DURATION="${1#*=}"; shift ;;
        --warmup) WARMUP="${2:?--warmup needs seconds}"; shift 2 ;;
        --warmup=*) WARMUP="${1#*=}"; shift ;;
        --connections) CONNECTIONS="${2:?--connections needs a number}"; shift 2 ;;
        --connections=*) CONNECTIONS="${1#*=}"; shift ;;
        --ids) IDS="${2:?--ids needs a number}"; shift 2 ;;
        --ids=*) IDS="${1#*=}"; shift ;;
        --no-build) BUILD=0; shift ;;
        --enforce-target) ENFORCE_TARGET=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
positive --rate "$RATE"
positive --duration "$DURATION"
positive --max-duration "$MAX_DURATION"
positive --connections "$CONNECTIONS"
positive --ids "$IDS"
if ! [[ "$WARMUP" =~ ^[0-9]+$ ]]; then
    echo "--warmup must be a whole number of seconds, got '$WARMUP'" >&2
    exit 2
fi

progress() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v python3 >/dev/null; then
    echo "python3 is needed (apt-get install python3)" >&2
    exit 2
fi

if [ "$BUILD" = 1 ]; then
    progress "building (cargo build --release --workspace, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO_DIR" && cargo build --release --workspace)
fi
for binary in "$SYNCLINE_BIN" "$BENCH_BIN"; do
    if [ ! -x "$binary" ]; then
        echo "no binary at $binary: build with" >&2
        echo "  (cd $REPO_DIR && CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release --workspace)" >&2
        exit 2
    fi
done

rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/syncline-webhooks-bench.XXXXXX")"

# ------------------------------------------------------------- processes
# Every process this script starts, stopped on exit whatever happens.
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helper
# One Python file (standard library only) for the small jobs: free ports, reading the
# simulator's credentials, scraping /metrics, and the report.
HELPER="$WORK_DIR/helper.py"
cat >"$HELPER" <<'PY'
import json, socket, sys, time, urllib.request

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def simulator_json(path, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            text = open(path).read()
            start = text.index("{")
            value, _ = json.JSONDecoder().raw_decode(text[start:])
            return value
        except (ValueError, OSError):
            time.sleep(0.05)
    raise SystemExit(f"the simulator printed no credentials in {timeout} s; see {path}")

def scrape(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()

def series(text):
    """{(name, labels): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        name, _, labels = key.partition("{")
        out[(name, "{" + labels if labels else "")] = float(value)
    return out

def drain(url, timeout):
    """Waits until syncline_inbox_depth is 0; prints the seconds waited."""
    started = time.time()
    while True:
        depth = series(scrape(url)).get(("syncline_inbox_depth", ""), 0.0)
        if depth == 0:
            print(f"{time.time() - started:.2f}")
            return
        if time.time() - started > timeout:
            raise SystemExit(f"the inbox still holds {depth:.0f} events after {timeout} s")
        time.sleep(0.1)

def histogram(text, name):
    """[(upper bound, cumulative count)] of an unlabelled histogram."""
    buckets = []
    for (series_name, labels), value in series(text).items():
        if series_name == name + "_bucket":
            bound = labels.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound), value))
    return sorted(buckets)

def quantile(buckets, q):
    """histogram_quantile as Prometheus computes it: linear inside the bucket."""
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower

def diff(after, before):
    before = dict(before)
    return [(bound, count - before.get(bound, 0.0)) for bound, count in after]

def bucket_of(buckets, value):
    lower = 0.0
    for bound, _ in buckets:
        if value <= bound:
            return lower, bound
        lower = bound
    return lower, float("inf")

def window(before_path, after_path, name):
    """Count and p50/p90/p99 of a histogram between two scrapes."""
    buckets = diff(histogram(open(after_path).read(), name), histogram(open(before_path).read(), name))
    if not buckets or buckets[-1][1] == 0:
        return {"count": 0}
    out = {"count": int(buckets[-1][1])}
    for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        value = quantile(buckets, q)
        out[label] = value
        out[label + "_bucket"] = bucket_of(buckets, value)
    return out

def counter(path, name):
    return sum(v for (n, _), v in series(open(path).read()).items() if n == name)

def fmt_ms(value):
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"

def fmt_bucket_ms(stats, label):
    if stats.get("count", 0) == 0:
        return "-"
    low, high = stats[label + "_bucket"]
    high_text = "inf" if high == float("inf") else f"{high * 1000:g}"
    return f"{stats[label] * 1000:.0f} ({low * 1000:g}-{high_text})"

def report(out_dir, args_path, markdown_path):
    args = json.load(open(args_path))
    facts = json.load(open(f"{out_dir}/facts.json"))
    load = lambda name: json.load(open(f"{out_dir}/{name}.json"))
    s_rate, s_max, b_rate, b_max = load("syncline.rate"), load("syncline.max"), load("bare.rate"), load("bare.max")
    p_max, p_rate = load("syncline_power_loss.max"), load("syncline_power_loss.rate")
    m = lambda tag: f"{out_dir}/metrics.{tag}.txt"
    row_rate = window(m("before-rate"), m("after-rate"), "syncline_webhook_to_warehouse_seconds")
    row_max = window(m("before-max"), m("after-max"), "syncline_webhook_to_warehouse_seconds")
    ack_rate = window(m("before-rate"), m("after-rate"), "syncline_webhook_ack_seconds")
    ack_max = window(m("before-max"), m("after-max"), "syncline_webhook_ack_seconds")
    rate, conns = args["rate"], args["connections"]
    errors = lambda run: ", ".join(f"{k}: {v}" for k, v in run["errors"].items()) + (f", unsent: {run['unsent']}" if run["unsent"] else "") or "0"
    lat = lambda run, key="ack_ms": f"{fmt_ms(run[key]['p50'])} / {fmt_ms(run[key]['p90'])} / {fmt_ms(run[key]['p99'])} / {fmt_ms(run[key]['max'])}"
    mib = lambda kib: f"{kib / 1024:.1f}"
    cpu = lambda seconds, run: f"{seconds:.1f} s ({1000 * seconds / max(run['ok'], 1):.3f} ms/webhook)"
    checks = []
    def target(name, ok, text):
        checks.append((name, ok))
        return f"{text} ({'met' if ok else 'MISSED'})"
    best_rps = max(s_max["rps"], s_rate["rps"])
    rows = [
        ("| measure | syncline serve (SQLite inbox, DuckDB) | bare axum 200 (ceiling) | target |", None),
        ("| --- | --- | --- | --- |", None),
        (f"| start to ready (`/readyz` 200, from spawn) | {facts['syncline_ready_ms']:.0f} ms | {facts['bare_ready_ms']:.0f} ms | |", None),
        (f"| RSS idle (VmRSS after ready) | {mib(facts['syncline_rss_idle_kib'])} MiB | {mib(facts['bare_rss_idle_kib'])} MiB | |", None),
        (f"| **full speed** (closed loop, {conns} connections, {args['max_duration']} s): webhooks/s | "
         + target("throughput", best_rps >= args["target_rps"], f"{s_max['rps']:.0f}")
         + f" | {b_max['rps']:.0f} | >= {args['target_rps']} |", None),
        (f"| full speed: ack ms p50 / p90 / p99 / max | {lat(s_max)} | {lat(b_max)} | |", None),
        (f"| full speed: errors | {errors(s_max)} | {errors(b_max)} | |", None),
        (f"| full speed with `[state] durability = \"power_loss\"` (SQLite synchronous = FULL): webhooks/s, ack ms p50 / p90 / p99 / max | "
         f"{p_max['rps']:.0f} ({100 * p_max['rps'] / max(s_max['rps'], 1):.0f} % of the default `crash`), {lat(p_max)} | n/a | |", None),
        (f"| **open loop at {rate}/s** ({args['duration']} s): achieved webhooks/s | {s_rate['rps']:.0f} | {b_rate['rps']:.0f} | |", None),
        (f"| at {rate}/s: ack ms p50 / p90 / p99 / max (from scheduled send) | "
         + target("ack p99", s_rate["ack_ms"]["p99"] < args["target_ack_p99_ms"] and s_rate["rps"] >= 0.98 * rate, lat(s_rate))
         + f" | {lat(b_rate)} | p99 < {args['target_ack_p99_ms']} ms |", None),
        (f"| at {rate}/s: service ms p50 / p90 / p99 / max (from leaving the generator) | {lat(s_rate, 'service_ms')} | {lat(b_rate, 'service_ms')} | |", None),
        (f"| at {rate}/s: errors | {errors(s_rate)} | {errors(b_rate)} | |", None),
    ]
    if row_rate.get("count", 0):
        ok = row_rate["p99"] < args["target_row_p99_s"]
        rows.append((f"| at {rate}/s: webhook-to-row ms p50 / p99 (histogram estimate, bucket) | "
                     + target("webhook-to-row p99", ok, f"{fmt_bucket_ms(row_rate, 'p50')} / {fmt_bucket_ms(row_rate, 'p99')}")
                     + f" | n/a | p99 < {args['target_row_p99_s']} s |", None))
    else:
        checks.append(("webhook-to-row p99", False))
        rows.append((f"| at {rate}/s: webhook-to-row | no observations (MISSED) | n/a | p99 < {args['target_row_p99_s']} s |", None))
    rows += [
        (f"| at {rate}/s: inbox drained after the load stopped | {facts['syncline_drain_rate_s']:.1f} s | n/a | |", None),
        (f"| full speed: webhook-to-row ms p50 / p99 (histogram estimate, bucket) | {fmt_bucket_ms(row_max, 'p50')} / {fmt_bucket_ms(row_max, 'p99')} | n/a | |", None),
        (f"| full speed: inbox drained after the load stopped | {facts['syncline_drain_max_s']:.1f} s | n/a | |", None),
        (f"| server-side ack p50 / p99 ms at {rate}/s / full speed (`syncline_webhook_ack_seconds`, estimate) | "
         f"{fmt_bucket_ms(ack_rate, 'p50')} / {fmt_bucket_ms(ack_rate, 'p99')}; {fmt_bucket_ms(ack_max, 'p50')} / {fmt_bucket_ms(ack_max, 'p99')} | n/a | |", None),
        (f"| RSS peak under load (VmHWM) | {mib(facts['syncline_hwm_rate_kib'])} MiB at {rate}/s, {mib(facts['syncline_hwm_kib'])} MiB overall | "
         f"{mib(facts['bare_hwm_kib'])} MiB | |", None),
        (f"| server CPU at {rate}/s (user+sys, incl. the worker) | {cpu(facts['syncline_cpu_rate_s'], s_rate)} | {cpu(facts['bare_cpu_rate_s'], b_rate)} | |", None),
        (f"| server CPU at full speed | {cpu(facts['syncline_cpu_max_s'], s_max)} | {cpu(facts['bare_cpu_max_s'], b_max)} | |", None),
        (f"| simulator CPU at {rate}/s / full speed (answers the worker's re-fetches; same machine) | "
         f"{facts['simulator_cpu_rate_s']:.1f} s / {facts['simulator_cpu_max_s']:.1f} s | n/a | |", None),
        (f"| load generator CPU at {rate}/s / full speed | {s_rate['generator_cpu_s']:.1f} s / {s_max['generator_cpu_s']:.1f} s | "
         f"{b_rate['generator_cpu_s']:.1f} s / {b_max['generator_cpu_s']:.1f} s | |", None),
    ]
    failed = sum(v for (n, labels), v in series(open(m("after-max")).read()).items()
                 if n == "syncline_worker_batches_total" and 'outcome="failed"' in labels)
    dead = counter(m("after-max"), "syncline_inbox_dead_letters")
    rows.append((f"| worker: failed batches / dead letters (whole run) | "
                 + target("no failures", failed == 0 and dead == 0, f"{failed:.0f} / {dead:.0f}")
                 + " | n/a | 0 / 0 |", None))
    s_events = counter(m("after-max"), "syncline_webhook_events_total")
    s_dupes = counter(m("after-max"), "syncline_webhook_duplicate_events_total")
    s_versions = counter(m("after-max"), "syncline_versions_written_total")
    s_batches = counter(m("after-max"), "syncline_worker_batches_total")
    s_calls = counter(m("after-max"), "syncline_api_calls_total")
    notes = [
        f"machine: {args['machine']}; {args['when']}",
        f"load: Pipedrive v2 `change` deliveries of deals 1..{args['ids']} (round robin), a unique `meta.id` each, "
        f"HTTP Basic auth, {conns} keep-alive connections from `syncline-bench load` (a second process); "
        f"warm-up {args['warmup']} s at {rate}/s before the measured phases",
        "ack latency: open loop measures from each request's scheduled send time (queueing behind busy connections counts); "
        "closed loop from the send; nearest-rank percentiles over every request",
        "webhook-to-row: from receipt to the commit of the batch's history write, estimated from the "
        "`syncline_webhook_to_warehouse_seconds` bucket counts of each phase (difference of two scrapes, linear "
        "interpolation inside a bucket as Prometheus `histogram_quantile`); the bucket holding the value is in "
        f"parentheses, in ms. Counted {row_rate.get('count', 0)} events at {rate}/s and {row_max.get('count', 0)} at full speed",
        f"syncline totals: {s_events:.0f} events stored, {s_dupes:.0f} duplicates, {s_batches:.0f} worker batches, "
        f"{s_calls:.0f} upstream API calls (re-fetches from the simulator), {s_versions:.0f} history versions "
        "(the simulator makes no changes, so only the first event of each deal writes a version; the rest are "
        "re-fetched and skipped as unchanged)",
        "server CPU: /proc/PID/stat utime+stime over the phase, including the drain afterwards",
    ]
    # Both durabilities side by side: the same load on the same machine, fresh files for each.
    p_ack_rate = window(m("power_loss.before-rate"), m("power_loss.after-rate"), "syncline_webhook_ack_seconds")
    p_ack_max = window(m("power_loss.before-max"), m("power_loss.after-max"), "syncline_webhook_ack_seconds")
    share = lambda run, base: f"{run['rps']:.0f} ({100 * run['rps'] / max(base['rps'], 1):.0f} %)"
    p50_p99 = lambda run: f"{fmt_ms(run['ack_ms']['p50'])} / {fmt_ms(run['ack_ms']['p99'])}"
    durability = [
        f"| `[state] durability` | full speed: webhooks/s | full speed: ack ms p50 / p99 | at {rate}/s: achieved webhooks/s | "
        f"at {rate}/s: ack ms p50 / p99 (from scheduled send) | server-side ack p99 ms at {rate}/s / full speed (estimate, bucket) | errors (full speed / at {rate}/s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| `crash` (default; SQLite synchronous = NORMAL) | {s_max['rps']:.0f} | {p50_p99(s_max)} | {s_rate['rps']:.0f} | {p50_p99(s_rate)} | "
        f"{fmt_bucket_ms(ack_rate, 'p99')} / {fmt_bucket_ms(ack_max, 'p99')} | {errors(s_max)} / {errors(s_rate)} |",
        f"| `power_loss` (SQLite synchronous = FULL) | {share(p_max, s_max)} | {p50_p99(p_max)} | {share(p_rate, s_rate)} | {p50_p99(p_rate)} | "
        f"{fmt_bucket_ms(p_ack_rate, 'p99')} / {fmt_bucket_ms(p_ack_max, 'p99')} | {errors(p_max)} / {errors(p_rate)} |",
    ]
    notes.append("durability: the `power_loss` server runs the same warm-up and phases on fresh files after the default "
                 "one stopped; its percentages are of the default's figures")
    lines = [row for row, _ in rows] + [""] + durability + [""] + [f"- {note}" for note in notes]
    text = "\n".join(lines)
    print(text)
    with open(markdown_path, "w") as out:
        out.write(text + "\n")
    missed = [name for name, ok in checks if not ok]
    print()
    print("targets: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))
    return 0 if not missed else 3

if __name__ == "__main__":
    command = sys.argv[1]
    if command == "free-port":
        print(free_port())
    elif command == "simulator":
        value = simulator_json(sys.argv[2])
        print(value["api_base_url"], value["api_token"])
    elif command == "scrape":
        open(sys.argv[3], "w").write(scrape(sys.argv[2]))
    elif command == "drain":
        drain(sys.argv[2], float(sys.argv[3]))
    elif command == "report":
        sys.exit(report(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        raise SystemExit(f"unknown helper command {command}")
PY
helper() { python3 "$HELPER" "$@"; }

# /proc readings of a running process.
status_kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
cpu_seconds() {
    local stat ticks
    stat="$(cat "/proc/$1/stat")"
    stat="${stat##*) }"
    read -r -a fields <<<"$stat"
    ticks="$(getconf CLK_TCK)"
    # utime and stime are fields 14 and 15; the array starts at field 3.
    awk -v u="${fields[11]}" -v s="${fields[12]}" -v t="$ticks" 'BEGIN {printf "%.2f", (u + s) / t}'
}
subtract() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a - b}'; }

FACTS="$OUT_DIR/facts.env"
: >"$FACTS"
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }

# run_load NAME URL ARGS...: one load-generator run; its JSON goes to $OUT_DIR/NAME.json.
run_load() {
    local name="$1" url="$2"
    shift 2
    if ! "$BENCH_BIN" load --url "$url" --basic-auth "$WEBHOOK_USER:$WEBHOOK_PASSWORD" \
        --connections "$CONNECTIONS" --ids "$IDS" "$@" >"$OUT_DIR/$name.json" 2>"$OUT_DIR/$name.log"; then
        echo "the load generator failed ($name); see $OUT_DIR/$name.log" >&2
        cat "$OUT_DIR/$name.log" >&2
        exit 1
    fi
    progress "  $name: $(cat "$OUT_DIR/$name.json")"
}

WEBHOOK_USER=bench
WEBHOOK_PASSWORD="bench-webhook-$RANDOM-$RANDOM-$RANDOM"

# ------------------------------------------------------------- simulator
progress "starting the Pipedrive simulator ($IDS deals, manual clock, no changes)"
cat >"$WORK_DIR/simulator.json" <<EOF
{"seed": 5, "initial_records": {"deal": $IDS}}
EOF
"$SYNCLINE_BIN" simulate pipedrive --config "$WORK_DIR/simulator.json" --manual-clock \
    --changes-per-second 0 --port 0 >"$OUT_DIR/simulator.out" 2>"$OUT_DIR/simulator.log" &
SIMULATOR_PID=$!
PIDS+=("$SIMULATOR_PID")
read -r API_BASE_URL API_TOKEN < <(helper simulator "$OUT_DIR/simulator.out")
progress "  simulator at $API_BASE_URL"

# ---------------------------------------------------------------- syncline
SYNCLINE_PORT="$(helper free-port)"
CONFIG="$WORK_DIR/syncline.toml"
cat >"$CONFIG" <<EOF
[destination]
url = "duckdb://$WORK_DIR/warehouse.duckdb"

[state]
url = "sqlite://$WORK_DIR/state.db"

[server]
scheduler = false

[sources.pipedrive]
connector = "pipedrive"
base_url = "$API_BASE_URL"
entities = ["deal"]
# Every webhook costs one re-fetch; the default budget (100000 calls per run) would stop the
# worker mid-benchmark, because the worker's engine starts a new budget run only when a reconcile
# runs (none here: scheduler = false).
request_budget = 1000000000

[sources.pipedrive.auth]
type = "api_token"
token = "$API_TOKEN"

[sources.pipedrive.webhook]
verify = { type = "basic", username = "$WEBHOOK_USER", password = "$WEBHOOK_PASSWORD" }
EOF
"$SYNCLINE_BIN" check --config "$CONFIG" >"$OUT_DIR/check.log" 2>&1 || {
    echo "syncline check refused the generated configuration:" >&2
    cat "$OUT_DIR/check.log" >&2
    exit 1
}

progress "syncline serve on 127.0.0.1:$SYNCLINE_PORT"
BASE="http://127.0.0.1:$SYNCLINE_PORT"
spawned_ns="$(date +%s%N)"
"$SYNCLINE_BIN" serve --config "$CONFIG" --listen "127.0.0.1:$SYNCLINE_PORT" \
    >"$OUT_DIR/serve.out" 2>"$OUT_DIR/serve.log" &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
if ! ready="$("$BENCH_BIN" wait-ready --url "$BASE/readyz" --since-unix-ns "$spawned_ns" --timeout 120)"; then
    echo "syncline serve did not get ready; last lines of $OUT_DIR/serve.log:" >&2
    tail -n 20 "$OUT_DIR/serve.log" >&2
    exit 1
fi
fact syncline_ready_ms "$(echo "$ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ready_ms"])')"
sleep 1
fact syncline_rss_idle_kib "$(status_kib "$SERVE_PID" VmRSS)"
progress "  ready: $ready; idle VmRSS $(status_kib "$SERVE_PID" VmRSS) KiB"

HOOK="$BASE/webhooks/pipedrive"
if [ "$WARMUP" -gt 0 ]; then
    progress "  warm-up: $WARMUP s at $RATE/s"
    run_load syncline.warmup "$HOOK" --rate "$RATE" --duration "$WARMUP"
    helper drain "$BASE/metrics" "$DRAIN_TIMEOUT" >/dev/null
fi

measure_syncline_phase() {
    local phase="$1"
    shift
    helper scrape "$BASE/metrics" "$OUT_DIR/metrics.before-$phase.txt"
    local cpu_before simulator_cpu_before drained
    cpu_before="$(cpu_seconds "$SERVE_PID")"
    simulator_cpu_before="$(cpu_seconds "$SIMULATOR_PID")"
    run_load "syncline.$phase" "$HOOK" "$@"
    drained="$(helper drain "$BASE/metrics" "$DRAIN_TIMEOUT")"
    fact "syncline_drain_${phase}_s" "$drained"
    fact "syncline_cpu_${phase}_s" "$(subtract "$(cpu_seconds "$SERVE_PID")" "$cpu_before")"
    fact "simulator_cpu_${phase}_s" "$(subtract "$(cpu_seconds "$SIMULATOR_PID")" "$simulator_cpu_before")"
    helper scrape "$BASE/metrics" "$OUT_DIR/metrics.after-$phase.txt"
    progress "  inbox drained $drained s after the load; VmRSS $(status_kib "$SERVE_PID" VmRSS) KiB, VmHWM $(status_kib "$SERVE_PID" VmHWM) KiB"
}

progress "  open loop: $DURATION s at $RATE/s"
measure_syncline_phase rate --rate "$RATE" --duration "$DURATION"
fact syncline_hwm_rate_kib "$(status_kib "$SERVE_PID" VmHWM)"
progress "  closed loop: $MAX_DURATION s at full speed"
measure_syncline_phase max --max --duration "$MAX_DURATION"
fact syncline_hwm_kib "$(status_kib "$SERVE_PID" VmHWM)"
kill -TERM "$SERVE_PID" 2>/dev/null || true
wait "$SERVE_PID" 2>/dev/null || true

# ------------------------------------------- syncline, durability = "power_loss"
# The same server with `[state] durability = "power_loss"` (SQLite synchronous = FULL: a disk
# flush per inbox commit), fresh files, the same warm-up, open-loop and full-speed phases (each
# drained before the next): the cost of surviving a power cut beside the default ("crash").
POWER_CONFIG="$WORK_DIR/syncline.power_loss.toml"
sed -e "s#$WORK_DIR/state.db#$WORK_DIR/state.power_loss.db#" \
    -e "s#$WORK_DIR/warehouse.duckdb#$WORK_DIR/warehouse.power_loss.duckdb#" \
    -e "s#^url = \"sqlite://.*\"#&\ndurability = \"power_loss\"#" "$CONFIG" >"$POWER_CONFIG"
POWER_PORT="$(helper free-port)"
POWER_BASE="http://127.0.0.1:$POWER_PORT"
progress "syncline serve with durability = \"power_loss\" on 127.0.0.1:$POWER_PORT"
spawned_ns="$(date +%s%N)"
"$SYNCLINE_BIN" serve --config "$POWER_CONFIG" --listen "127.0.0.1:$POWER_PORT" \
    >"$OUT_DIR/serve.power_loss.out" 2>"$OUT_DIR/serve.power_loss.log" &
POWER_PID=$!
PIDS+=("$POWER_PID")
"$BENCH_BIN" wait-ready --url "$POWER_BASE/readyz" --since-unix-ns "$spawned_ns" --timeout 120 >/dev/null
if [ "$WARMUP" -gt 0 ]; then
    run_load syncline_power_loss.warmup "$POWER_BASE/webhooks/pipedrive" --rate "$RATE" --duration "$WARMUP"
    helper drain "$POWER_BASE/metrics" "$DRAIN_TIMEOUT" >/dev/null
fi
measure_power_loss_phase() {
    local phase="$1"
    shift
    helper scrape "$POWER_BASE/metrics" "$OUT_DIR/metrics.power_loss.before-$phase.txt"
    run_load "syncline_power_loss.$phase" "$POWER_BASE/webhooks/pipedrive" "$@"
    helper drain "$POWER_BASE/metrics" "$DRAIN_TIMEOUT" >/dev/null
    helper scrape "$POWER_BASE/metrics" "$OUT_DIR/metrics.power_loss.after-$phase.txt"
}
progress "  open loop: $DURATION s at $RATE/s"
measure_power_loss_phase rate --rate "$RATE" --duration "$DURATION"
progress "  closed loop: $MAX_DURATION s at full speed"
measure_power_loss_phase max --max --duration "$MAX_DURATION"
cp "$OUT_DIR/metrics.power_loss.after-max.txt" "$OUT_DIR/metrics.power_loss.txt"
grep -q 'syncline_inbox_durability{level="power_loss"} 1' "$OUT_DIR/metrics.power_loss.txt" || {
    echo "the power_loss server does not report durability power_loss" >&2
    exit 1
}
kill -TERM "$POWER_PID" 2>/dev/null || true
wait "$POWER_PID" 2>/dev/null || true

# -------------------------------------------------------------------- bare
BARE_PORT="$(helper free-port)"
BARE="http://127.0.0.1:$BARE_PORT"
progress "bare axum server on 127.0.0.1:$BARE_PORT"
spawned_ns="$(date +%s%N)"
"$BENCH_BIN" bare --listen "127.0.0.1:$BARE_PORT" >"$OUT_DIR/bare.out" 2>"$OUT_DIR/bare.log" &
BARE_PID=$!
PIDS+=("$BARE_PID")
ready="$("$BENCH_BIN" wait-ready --url "$BARE/readyz" --since-unix-ns "$spawned_ns" --timeout 30)"
fact bare_ready_ms "$(echo "$ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ready_ms"])')"
sleep 1
fact bare_rss_idle_kib "$(status_kib "$BARE_PID" VmRSS)"
BARE_HOOK="$BARE/webhooks/pipedrive"
if [ "$WARMUP" -gt 0 ]; then
    progress "  warm-up: $WARMUP s at $RATE/s"
    run_load bare.warmup "$BARE_HOOK" --rate "$RATE" --duration "$WARMUP"
fi
for phase in rate max; do
    cpu_before="$(cpu_seconds "$BARE_PID")"
    if [ "$phase" = rate ]; then
        progress "  open loop: $DURATION s at $RATE/s"
        run_load bare.rate "$BARE_HOOK" --rate "$RATE" --duration "$DURATION"
    else
        progress "  closed loop: $MAX_DURATION s at full speed"
        run_load bare.max "$BARE_HOOK" --max --duration "$MAX_DURATION"
    fi
    fact "bare_cpu_${phase}_s" "$(subtract "$(cpu_seconds "$BARE_PID")" "$cpu_before")"
done
fact bare_hwm_kib "$(status_kib "$BARE_PID" VmHWM)"

# ------------------------------------------------------------------ report
python3 - "$FACTS" "$OUT_DIR/facts.json" <<'PY'
import json, sys
facts = {}
for line in open(sys.argv[1]):
    key, _, value = line.strip().partition("=")
    facts[key] = float(value)
json.dump(facts, open(sys.argv[2], "w"), indent=1)
PY
cat >"$OUT_DIR/args.json" <<EOF
{"rate": $RATE, "duration": $DURATION, "max_duration": $MAX_DURATION, "warmup": $WARMUP,
 "connections": $CONNECTIONS, "ids": $IDS, "target_rps": $TARGET_RPS,
 "target_ack_p99_ms": $TARGET_ACK_P99_MS, "target_row_p99_s": $TARGET_ROW_P99_S,
 "machine": "$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory, load average $(cut -d' ' -f1-3 /proc/loadavg)",
 "when": "$(date -u +%Y-%m-%dT%H:%MZ)"}
EOF
echo
progress "results (webhooks/s; latencies in ms unless marked; RSS in MiB)"
echo
status=0
helper report "$OUT_DIR" "$OUT_DIR/args.json" "$OUT_DIR/webhooks.md" || status=$?
echo
progress "table written to $OUT_DIR/webhooks.md; logs and raw JSON in $OUT_DIR"
if [ "$status" = 3 ] && [ "$ENFORCE_TARGET" = 0 ]; then
    status=0
fi
exit "$status"
