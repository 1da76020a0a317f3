#!/usr/bin/env python3
"""Count current and closed versions in one tool's SCD2 result.

  syncline  {entity}_history: current = _fivetran_active, closed = the rest
  dlt       records (dataset bench): current = _dlt_valid_to IS NULL
  dbt       records_snapshot: current = dbt_valid_to IS NULL

Prints one JSON object: {"tool", "table", "current", "closed", "notes"}.
Runs with the benchmark's virtualenv (python duckdb pinned to the version
syncline bundles, so every file is read by the engine that wrote it).
"""

import argparse
import json

import duckdb

OPEN_END = "9999-12-31 23:59:59"


def find_table(connection, table_name):
    rows = connection.execute(
        "select table_catalog, table_schema, table_name from information_schema.tables "
        "where table_name = ? and table_schema not like '%staging%' order by table_schema",
        [table_name],
    ).fetchall()
    if not rows:
        raise SystemExit(f"count_rows: no table named {table_name} in the DuckDB file")
    catalog, schema, name = rows[0]
    return f'"{catalog}"."{schema}"."{name}"'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True, choices=["syncline", "dlt", "dbt"])
    parser.add_argument("--duckdb", required=True)
    parser.add_argument("--entity", default="record", help="syncline entity name")
    parser.add_argument("--table", default=None, help="override the table name")
    args = parser.parse_args()

    table_name, current_predicate = {
        "syncline": (f"{args.entity}_history", "_fivetran_active"),
        "dlt": ("records", "_dlt_valid_to is null"),
        "dbt": ("records_snapshot", "dbt_valid_to is null"),
    }[args.tool]
    table_name = args.table or table_name

    connection = duckdb.connect(args.duckdb, read_only=True)
    table = find_table(connection, table_name)
    current, closed = connection.execute(
        f"select count(*) filter (where {current_predicate}), "
        f"count(*) filter (where not coalesce({current_predicate}, false)) from {table}"
    ).fetchone()

    notes = []
    if args.tool == "syncline":
        # cross-check the Fivetran contract: the active flag and the open end agree
        open_ended, active_without_open_end, ids_with_two_active = connection.execute(
            f"select count(*) filter (where _fivetran_end = timestamp '{OPEN_END}'), "
            f"count(*) filter (where _fivetran_active and _fivetran_end <> timestamp '{OPEN_END}'), "
            f"(select count(*) from (select id from {table} where _fivetran_active "
            f"group by id having count(*) > 1)) from {table}"
        ).fetchone()
        if open_ended != current or active_without_open_end:
            notes.append(f"{open_ended} rows have the open end but {current} are active")
        if ids_with_two_active:
            notes.append(f"{ids_with_two_active} ids have more than one active row")
    else:
        ids_with_two_current = connection.execute(
            f"select count(*) from (select id from {table} where {current_predicate} "
            f"group by id having count(*) > 1)"
        ).fetchone()[0]
        if ids_with_two_current:
            notes.append(f"{ids_with_two_current} ids have more than one current row")
    connection.close()

    print(json.dumps({"tool": args.tool, "table": table, "current": current,
                      "closed": closed, "notes": notes}))


if __name__ == "__main__":
    main()
