#!/usr/bin/env python3
"""The extract step in front of `dbt snapshot` for bench/scd2_vs_peers.sh.

dbt only transforms data that is already in the warehouse, so each run first
(re)writes the source table raw.records from the run's JSONL extract with
DuckDB's read_json, flattening the nested `address` object into
address_street / address_city / address_zip the way syncline names nested
fields. The benchmark counts this step in dbt's time.
"""

import argparse

import duckdb

SCALAR_COLUMNS = {
    "id": "BIGINT",
    "name": "VARCHAR",
    "email": "VARCHAR",
    "status": "VARCHAR",
    "amount": "DOUBLE",
    "quantity": "BIGINT",
    "score": "DOUBLE",
    "is_active": "BOOLEAN",
    "is_vip": "BOOLEAN",
    "owner_id": "BIGINT",
    "created_at": "VARCHAR",
}
NESTED_COLUMNS = {"address": ["street", "city", "zip"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duckdb", required=True)
    parser.add_argument("jsonl")
    args = parser.parse_args()

    json_columns = dict(SCALAR_COLUMNS)
    for parent, children in NESTED_COLUMNS.items():
        json_columns[parent] = "STRUCT(" + ", ".join(f"{c} VARCHAR" for c in children) + ")"
    columns_literal = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in json_columns.items()) + "}"

    select_list = [name for name in SCALAR_COLUMNS]
    select_list[select_list.index("created_at")] = "cast(created_at as timestamp) as created_at"
    for parent, children in NESTED_COLUMNS.items():
        select_list += [f"{parent}.{child} as {parent}_{child}" for child in children]

    connection = duckdb.connect(args.duckdb)
    connection.execute("create schema if not exists raw")
    connection.execute(
        "create or replace table raw.records as select "
        + ", ".join(select_list)
        + f" from read_json(?, format = 'newline_delimited', columns = {columns_literal})",
        [args.jsonl],
    )
    row_count = connection.execute("select count(*) from raw.records").fetchone()[0]
    connection.close()
    print(f"dbt source: raw.records <- {args.jsonl} ({row_count} rows)")


if __name__ == "__main__":
    main()
