#!/usr/bin/env python3
"""Deterministic synthetic data for bench/scd2_vs_peers.sh.

Writes, into OUT_DIR:
  run1.jsonl     the first full extract: N records
  run2.jsonl     the second full extract: 10% of ids changed, 1% removed
                 (the two sets are disjoint), everything else byte-identical
  expected.json  the row counts every tool must end with after both runs

Each record has an integer `id`, ten scalar fields (strings, ints, floats,
booleans and one ISO-8601 timestamp string) and one nested object `address`
with three fields. Only the standard library is used, and the output depends
on N and the seed alone.
"""

import argparse
import json
import os
import random
from datetime import datetime, timedelta, timezone

FIRST_NAMES = ["ada", "grace", "alan", "edsger", "barbara", "donald", "ken", "dennis",
               "margaret", "john", "frances", "leslie", "tony", "niklaus", "radia", "guido"]
LAST_NAMES = ["lovelace", "hopper", "turing", "dijkstra", "liskov", "knuth", "thompson",
              "ritchie", "hamilton", "backus", "allen", "lamport", "hoare", "wirth", "perlman"]
STATUSES = ["open", "won", "lost", "pending", "archived"]
CITIES = ["Berlin", "Lisbon", "Oslo", "Vienna", "Dublin", "Tallinn", "Porto", "Ghent",
          "Utrecht", "Basel", "Lyon", "Turin"]
STREETS = ["Main St", "High St", "Station Rd", "Church Ln", "Mill Rd", "Park Ave", "Bridge St"]
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def make_record(rng, record_id):
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    created = EPOCH + timedelta(seconds=rng.randrange(0, 2 * 365 * 24 * 3600))
    return {
        "id": record_id,
        "name": f"{first} {last}",
        "email": f"{first}.{last}.{record_id}@example.com",
        "status": rng.choice(STATUSES),
        "amount": round(rng.uniform(10, 100_000), 2),
        "quantity": rng.randrange(1, 1_000),
        "score": round(rng.random(), 6),
        "is_active": rng.random() < 0.8,
        "is_vip": rng.random() < 0.1,
        "owner_id": rng.randrange(1, 500),
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "address": {
            "street": f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
            "city": rng.choice(CITIES),
            "zip": f"{rng.randrange(10_000, 99_999)}",
        },
    }


def change_record(rng, record):
    """Return a copy of `record` that differs in two or three fields, one of
    them sometimes inside the nested object, so that every tool must see a
    change. amount always moves, so the content is guaranteed to differ."""
    changed = json.loads(json.dumps(record))
    changed["amount"] = round(changed["amount"] + 1 + rng.randrange(0, 1_000), 2)
    changed["status"] = STATUSES[(STATUSES.index(changed["status"]) + 1) % len(STATUSES)]
    if rng.random() < 0.5:
        city_index = CITIES.index(changed["address"]["city"])
        changed["address"]["city"] = CITIES[(city_index + 1) % len(CITIES)]
    return changed


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, separators=(",", ":")))
            handle.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--changed-percent", type=float, default=10.0)
    parser.add_argument("--removed-percent", type=float, default=1.0)
    parser.add_argument("out_dir")
    args = parser.parse_args()
    if args.records < 1:
        parser.error("--records must be at least 1")

    rng = random.Random(args.seed)
    record_count = args.records
    changed_count = int(record_count * args.changed_percent / 100)
    removed_count = int(record_count * args.removed_percent / 100)
    if changed_count + removed_count > record_count:
        parser.error("changed + removed exceed the record count")

    run1 = [make_record(rng, record_id) for record_id in range(1, record_count + 1)]

    # One sample, split in two, keeps the changed and removed ids disjoint.
    picked = rng.sample(range(record_count), changed_count + removed_count)
    changed_positions = set(picked[:changed_count])
    removed_positions = set(picked[changed_count:])

    run2 = []
    for position, record in enumerate(run1):
        if position in removed_positions:
            continue
        if position in changed_positions:
            run2.append(change_record(rng, record))
        else:
            run2.append(record)

    os.makedirs(args.out_dir, exist_ok=True)
    write_jsonl(os.path.join(args.out_dir, "run1.jsonl"), run1)
    write_jsonl(os.path.join(args.out_dir, "run2.jsonl"), run2)

    expected = {
        "records": record_count,
        "seed": args.seed,
        "changed": changed_count,
        "removed": removed_count,
        "run1": {"current": record_count, "closed": 0},
        "run2": {
            "current": record_count - removed_count,
            "closed": changed_count + removed_count,
        },
    }
    with open(os.path.join(args.out_dir, "expected.json"), "w", encoding="utf-8") as handle:
        json.dump(expected, handle, indent=2)
        handle.write("\n")
    print(f"generated {record_count} records: run2 has {changed_count} changed, "
          f"{removed_count} removed (disjoint), seed {args.seed}")


if __name__ == "__main__":
    main()
