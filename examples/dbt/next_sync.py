"""Writes the records of a simulated "next sync" for run.sh: one open deal is won, one deal is
deleted. The changed deal is the current version of a real deal with `status` set to `won` and
`update_time` one hour after the newest change in the table, so `syncline load` appends a new
version and closes the old one exactly as a webhook would.

usage: python next_sync.py WAREHOUSE.duckdb CHANGED.jsonl DELETED_IDS.txt
prints: "<won deal id> <deleted deal id>"
"""

import datetime
import json
import sys

import duckdb

warehouse, changed_path, deleted_path = sys.argv[1:4]
con = duckdb.connect(warehouse, read_only=True)
meta = {"_fivetran_start", "_fivetran_end", "_fivetran_active", "_fivetran_synced", "_row_hash"}

cur = con.execute(
    "select * from deal_history where _fivetran_active and status = 'open' order by id limit 1"
)
names = [d[0] for d in cur.description]
row = dict(zip(names, cur.fetchone()))
newest = con.execute("select max(update_time) from deal_history").fetchone()[0]
deleted_id = con.execute(
    "select max(id) from deal_history where _fivetran_active and id <> ?", [row["id"]]
).fetchone()[0]
con.close()

record = {}
for name, value in row.items():
    if name in meta or value is None:
        continue
    if isinstance(value, datetime.datetime):
        value = value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record[name] = value
record["status"] = "won"
record["update_time"] = (newest + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

with open(changed_path, "w") as f:
    f.write(json.dumps(record) + "\n")
with open(deleted_path, "w") as f:
    f.write(f"{deleted_id}\n")
print(row["id"], deleted_id)
