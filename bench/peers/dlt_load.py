#!/usr/bin/env python3
"""One dlt run for bench/scd2_vs_peers.sh: load a JSONL full extract into
DuckDB with write_disposition merge/scd2, primary key id.

The script is run once per extract, in its own process, so that wall time
and peak RSS of each run can be measured on their own. The pipeline's state
lives in --pipelines-dir, so the second run continues the first.

--format default leaves dlt's loader file format alone (for DuckDB that is
insert_values); --format parquet sets loader_file_format="parquet" (pyarrow).
--at is passed as the scd2 boundary_timestamp, so dlt's _dlt_valid_from /
_dlt_valid_to carry the same observation times as the other tools.
"""

import argparse
import os

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
from dlt.common import json  # noqa: E402  (orjson when available)

BATCH_SIZE = 1_000


def read_jsonl(path):
    batch = []
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            batch.append(json.loadb(line))
            if len(batch) == BATCH_SIZE:
                yield batch
                batch = []
    if batch:
        yield batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duckdb", required=True, help="DuckDB file to write")
    parser.add_argument("--pipelines-dir", required=True, help="dlt's working/state directory")
    parser.add_argument("--pipeline-name", required=True)
    parser.add_argument("--format", choices=["default", "parquet"], default="default")
    parser.add_argument("--at", required=True, help="observation time (scd2 boundary_timestamp)")
    parser.add_argument("--table", default="records")
    parser.add_argument("--dataset", default="bench")
    parser.add_argument("jsonl")
    args = parser.parse_args()

    write_disposition = {
        "disposition": "merge",
        "strategy": "scd2",
        "boundary_timestamp": args.at,
    }

    @dlt.resource(name=args.table, primary_key="id", write_disposition=write_disposition)
    def records():
        yield from read_jsonl(args.jsonl)

    pipeline = dlt.pipeline(
        pipeline_name=args.pipeline_name,
        pipelines_dir=args.pipelines_dir,
        destination=dlt.destinations.duckdb(args.duckdb),
        dataset_name=args.dataset,
        progress="log" if os.environ.get("BENCH_DLT_PROGRESS") else None,
    )
    run_kwargs = {}
    if args.format == "parquet":
        run_kwargs["loader_file_format"] = "parquet"
    load_info = pipeline.run(records(), **run_kwargs)
    load_info.raise_on_failed_jobs()

    used_formats = sorted(
        {job.job_file_info.file_format
         for package in load_info.load_packages
         for job in package.jobs["completed_jobs"]
         if job.job_file_info.table_name == args.table}
    )
    print(f"dlt {dlt.__version__}: pipeline {args.pipeline_name} loaded "
          f"{args.jsonl}; table {args.table} written as {', '.join(used_formats)}")


if __name__ == "__main__":
    main()
