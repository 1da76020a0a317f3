#!/usr/bin/env python3
"""Build the side-by-side table of bench/scd2_vs_peers.sh.

Reads the per-step measurements (results.tsv: tool, run, step, wall seconds,
peak RSS KiB), the per-tool row counts (counts/TOOL.runN.json) and the
generator's expected.json; prints the table, writes it as Markdown, checks
that every tool ends with the same (and the expected) current/closed counts
and evaluates the target against dlt's fastest configuration.

A tool's run is the sum of its steps' wall times and the largest of their
peak RSS values (steps are separate processes that run one after another).

Exit status: 0 when the counts agree (target met or not, unless
--enforce-target), 1 when the counts disagree or are missing, 3 when
--enforce-target is set and the target is missed.
"""

import argparse
import json
import os
import sys
from collections import defaultdict

LABELS = {
    "syncline": "syncline load",
    "dlt-default": "dlt scd2, default format (insert_values)",
    "dlt-parquet": "dlt scd2, parquet",
    "dbt": "dbt snapshot (check, incl. source load)",
}
RUNS = (1, 2)
TARGET_SPEEDUP = 10.0
TARGET_MEMORY_FRACTION = 0.2


def load_measurements(path):
    steps = defaultdict(list)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip() or line.startswith("#"):
                continue
            tool, run, step, wall, rss_kib = line.rstrip("\n").split("\t")
            steps[(tool, int(run))].append((step, float(wall), int(rss_kib)))
    runs = {}
    for key, step_list in steps.items():
        runs[key] = {
            "wall": sum(wall for _, wall, _ in step_list),
            "rss_mib": max(rss for _, _, rss in step_list) / 1024.0,
            "steps": step_list,
        }
    return runs


def load_counts(counts_dir, tool, run):
    path = os.path.join(counts_dir, f"{tool}.run{run}.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def ratio(value, base):
    if value is None or not base:
        return None
    return value / base


def fmt_ratio(values):
    if all(v is None for v in values):
        return "n/a"
    return " / ".join("n/a" if v is None else f"{v:.1f}x" for v in values)


def fmt_num(value, digits):
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_text(header, rows):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    def line(cells):
        out = []
        for i, cell in enumerate(cells):
            out.append(str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i]))
        return "  ".join(out)
    separator = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), separator] + [line(r) for r in rows])


def render_markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--counts-dir", required=True)
    parser.add_argument("--expected", required=True)
    parser.add_argument("--tools", required=True, help="comma-separated tool keys, in order")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--context", default="", help="lines (\\n-separated) for the Markdown head")
    parser.add_argument("--enforce-target", action="store_true")
    args = parser.parse_args()

    tools = [t for t in args.tools.split(",") if t]
    with open(args.expected, encoding="utf-8") as handle:
        expected = json.load(handle)
    runs = load_measurements(args.results)

    base = {run: runs.get(("syncline", run)) for run in RUNS}

    header = ["tool / config", "run1 wall s", "run1 peak MiB", "run2 wall s", "run2 peak MiB",
              "wall vs syncline (r1 / r2)", "RSS vs syncline (r1 / r2)",
              "current rows", "closed rows"]
    rows = []
    problems = []
    final_counts = {}
    for tool in tools:
        per_run = [runs.get((tool, run)) for run in RUNS]
        wall_ratios = [ratio(m and m["wall"], b and b["wall"]) for m, b in zip(per_run, base.values())]
        rss_ratios = [ratio(m and m["rss_mib"], b and b["rss_mib"]) for m, b in zip(per_run, base.values())]
        counts = {run: load_counts(args.counts_dir, tool, run) for run in RUNS}
        final = counts[2]
        final_counts[tool] = final
        mark = ""
        for run in RUNS:
            got = counts[run]
            want = expected[f"run{run}"]
            if got is None:
                problems.append(f"{tool}: no row counts after run {run}")
                mark = " !"
                continue
            if (got["current"], got["closed"]) != (want["current"], want["closed"]):
                problems.append(
                    f"{tool}: after run {run} current/closed = {got['current']}/{got['closed']}, "
                    f"expected {want['current']}/{want['closed']}")
                mark = " !"
            for note in got.get("notes", []):
                problems.append(f"{tool}: after run {run}: {note}")
                mark = " !"
        rows.append([
            LABELS.get(tool, tool),
            fmt_num(per_run[0] and per_run[0]["wall"], 2),
            fmt_num(per_run[0] and per_run[0]["rss_mib"], 0),
            fmt_num(per_run[1] and per_run[1]["wall"], 2),
            fmt_num(per_run[1] and per_run[1]["rss_mib"], 0),
            "1.0x (base)" if tool == "syncline" and base[1] else fmt_ratio(wall_ratios),
            "1.0x (base)" if tool == "syncline" and base[1] else fmt_ratio(rss_ratios),
            ("n/a" if final is None else str(final["current"])) + mark,
            ("n/a" if final is None else str(final["closed"])) + mark,
        ])
    rows.append(["expected", "", "", "", "", "", "",
                 str(expected["run2"]["current"]), str(expected["run2"]["closed"])])

    distinct = {(c["current"], c["closed"]) for c in final_counts.values() if c is not None}
    counts_agree = not problems and len(distinct) == 1
    if len(distinct) > 1:
        problems.append("tools disagree on the final counts: " + ", ".join(
            f"{tool}={c['current']}/{c['closed']}" for tool, c in final_counts.items() if c))

    # Target: syncline >= 10x faster than dlt's fastest configuration on both
    # runs, with at most a fifth of that configuration's peak memory.
    target_lines = []
    target_met = None
    dlt_tools = [t for t in tools if t.startswith("dlt")]
    if base[1] and base[2] and dlt_tools:
        target_met = True
        for run in RUNS:
            candidates = [(runs[(t, run)]["wall"], t) for t in dlt_tools if (t, run) in runs]
            if not candidates:
                target_met = None
                break
            fastest_wall, fastest = min(candidates)
            fastest_rss = runs[(fastest, run)]["rss_mib"]
            speedup = fastest_wall / base[run]["wall"] if base[run]["wall"] else float("inf")
            memory_fraction = base[run]["rss_mib"] / fastest_rss
            ok = speedup >= TARGET_SPEEDUP and memory_fraction <= TARGET_MEMORY_FRACTION
            target_met = target_met and ok
            target_lines.append(
                f"run {run}: dlt's fastest is {LABELS[fastest]} ({fastest_wall:.2f} s, "
                f"{fastest_rss:.0f} MiB); syncline is {speedup:.1f}x faster (target >= "
                f"{TARGET_SPEEDUP:.0f}x) with {memory_fraction:.2f} of its peak memory (target <= "
                f"{TARGET_MEMORY_FRACTION:.2f}): {'met' if ok else 'MISSED'}")
    else:
        target_lines.append("target not evaluated: needs syncline and at least one dlt configuration")

    step_lines = []
    for tool in tools:
        for run in RUNS:
            measured = runs.get((tool, run))
            if measured and len(measured["steps"]) > 1:
                parts = ", ".join(f"{step} {wall:.2f} s / {rss / 1024:.0f} MiB"
                                  for step, wall, rss in measured["steps"])
                step_lines.append(f"{LABELS.get(tool, tool)}, run {run}: {parts}")

    text = render_text(header, rows)
    print(text)
    print()
    for line in step_lines:
        print("  steps: " + line)
    for line in target_lines:
        print("  target: " + line)
    if target_met is not None:
        print("  target: " + ("met on both runs" if target_met else "MISSED"))
    if counts_agree:
        c = next(iter(distinct))
        print(f"  counts: all tools agree ({c[0]} current, {c[1]} closed) and match the expected numbers")
    else:
        for problem in problems:
            print("  COUNTS DISAGREE: " + problem)

    with open(args.markdown, "w", encoding="utf-8") as handle:
        handle.write("# scd2_vs_peers\n\n")
        for line in args.context.split("\\n"):
            if line:
                handle.write(f"- {line}\n")
        handle.write("\n" + render_markdown(header, rows) + "\n\n")
        handle.write("Wall time and peak RSS per run come from GNU time (`%e %M`) around each "
                     "process; ratios are tool / syncline for run 1 / run 2; `!` marks a count that "
                     "disagrees.\n\n")
        for line in step_lines:
            handle.write(f"- steps: {line}\n")
        for line in target_lines:
            handle.write(f"- target: {line}\n")
        if counts_agree:
            handle.write("- counts: all tools agree and match the expected numbers\n")
        else:
            for problem in problems:
                handle.write(f"- COUNTS DISAGREE: {problem}\n")

    if not counts_agree:
        return 1
    if args.enforce_target and not target_met:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
