#!/usr/bin/env python3
"""Runs bench/duckdb/anchors.sql (the DuckDB SQL scripts/gen-sql generates from
sql/features/anchors.sql) over the raw Parquet partitions of a data root and writes what
build-features writes:

    OUT/train/part-00000.parquet   anchors whose 60-day window closed and settled, i.e. anchored
                                   before the run end minus horizon + settle days (as
                                   build-features' split; window_closed dropped)
    OUT/score/part-00000.parquet   open windows, `label` renamed `repurchased_so_far`

both Snappy-compressed like the workers' files. Prints one JSON object on stdout (row counts and
the query / write split of the wall time). bench/scale.py runs it as its own process, so its wall
time, CPU time and peak RSS are measured apart from everything else; it imports only duckdb.

    python bench/duckdb/features.py --data-root LAKE --run-date 2025-06-30 --out DIR [--threads 2]
"""

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import duckdb

SQL = Path(__file__).resolve().parent / "anchors.sql"


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True, help="local path of the data root")
    p.add_argument("--run-date", required=True, help="YYYY-MM-DD")
    p.add_argument("--out", required=True, help="output folder (gets train/ and score/)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory-limit", help="DuckDB memory_limit (default: DuckDB's, 80%% of RAM)")
    p.add_argument("--anchor", default="first-order", choices=["first-order", "every-order"])
    p.add_argument("--horizon-days", type=int, default=60)
    # build-features' default: a closed window is labelled only once it settled; the anchors in
    # between are in neither partition.
    p.add_argument("--settle-days", type=int, default=14)
    a = p.parse_args()

    day = dt.date.fromisoformat(a.run_date)
    run_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    run_end_us = int(run_end.timestamp()) * 1_000_000
    horizon_us = a.horizon_days * 86_400_000_000
    labelled_before_us = run_end_us - (a.horizon_days + a.settle_days) * 86_400_000_000
    labelled = f"window_closed AND epoch_us(anchor_time) < {labelled_before_us}"
    root = str(Path(a.data_root).resolve())
    out = Path(a.out)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "score").mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {int(a.threads)}")
    if a.memory_limit:
        con.execute(f"SET memory_limit = {sql_str(a.memory_limit)}")
    con.execute(f"SET VARIABLE data_root = {sql_str(root)}")
    con.execute(f"SET VARIABLE run_date = {sql_str(day.isoformat())}")
    con.execute(f"SET VARIABLE run_end_us = {run_end_us}::BIGINT")
    con.execute(f"SET VARIABLE horizon_us = {horizon_us}::BIGINT")
    con.execute(f"SET VARIABLE first_only = {'true' if a.anchor == 'first-order' else 'false'}")
    con.execute(SQL.read_text())
    query_s = time.perf_counter() - started

    t = time.perf_counter()
    train = out / "train" / "part-00000.parquet"
    score = out / "score" / "part-00000.parquet"
    # ORDER BY again: COPY of a table scan with several threads need not keep insertion order.
    con.execute(
        f"COPY (SELECT * EXCLUDE (window_closed) FROM features WHERE {labelled} "
        f"ORDER BY anchor_time, order_id) TO {sql_str(str(train))} (FORMAT parquet, COMPRESSION snappy)"
    )
    con.execute(
        f"COPY (SELECT * EXCLUDE (window_closed) RENAME (label AS repurchased_so_far) FROM features "
        f"WHERE NOT window_closed ORDER BY anchor_time, order_id) TO {sql_str(str(score))} "
        f"(FORMAT parquet, COMPRESSION snappy)"
    )
    write_s = time.perf_counter() - t
    rows = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {labelled}), "
        f"count(*) FILTER (WHERE {labelled} AND label = 1), "
        "count(*) FILTER (WHERE NOT window_closed) FROM features"
    ).fetchone()
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', 'memory_limit')"
        ).fetchall()
    )
    print(
        json.dumps(
            {
                "duckdb_version": duckdb.__version__,
                "anchors": rows[0],
                "train_rows": rows[1],
                "score_rows": rows[3],
                "unsettled_rows": rows[0] - rows[1] - rows[3],
                "train_positives": rows[2],
                "query_seconds": query_s,
                "write_seconds": write_s,
                "settings": settings,
                "train": str(train),
                "score": str(score),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
