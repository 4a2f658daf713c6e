#!/usr/bin/env python3
"""Copies a BigQuery-style CSV export of TheLook's seven tables to Parquet with DuckDB: extract's
peer in bench/scale. For each table, one statement

    COPY (SELECT * FROM read_csv(<files>, header = true, ..., types = {...}))
        TO 'OUT/<table>.parquet' (FORMAT parquet, COMPRESSION snappy)

with `SET threads = N`. <files> are what extract reads for the table: `<table>.csv` or
`<table>.csv.gz` in the source folder, else every CSV file in `<table>/` (markers starting with `_`
or `.` left out). The CSV is the shape `repurchase generate --format csv` writes (BigQuery's): a
header row, commas, RFC 4180 quotes ("" inside quotes), NULL as an empty field, timestamps as
`2023-01-05 10:02:03[.123456] UTC`. Column types are the raw tables' own, read from
sql/ddl/raw_<table>.sql (BIGINT, DOUBLE, STRING → VARCHAR, TIMESTAMP → TIMESTAMPTZ), so DuckDB
parses every column into the type extract writes instead of guessing from a sample (a guess that
a later row can break at 30×). Timestamps are parsed by DuckDB's own TIMESTAMPTZ cast, which takes
the ` UTC` suffix and the optional fraction as they are (no format string); in Parquet they are
microseconds adjusted to UTC, like extract's. Unlike extract, DuckDB copies every row: no
validation and no run-date cut.

Prints one JSON object on stdout: versions, settings, how the CSV was read, and per table its files,
rows and seconds. bench/scale.py runs it as its own process, so its wall time, CPU time and peak
RSS are measured apart from everything else; it imports only duckdb (and the standard library).

    python bench/duckdb/extract.py --source DIR --out DIR [--threads 2] [--memory-limit 4GB]
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
DDL = REPO / "sql" / "ddl"
# In extract's order (crates/core/src/schema.rs, Table::ALL).
TABLES = ["users", "orders", "order_items", "products", "inventory_items", "events", "distribution_centers"]
# Hive (Athena) DDL type → DuckDB type.
TYPES = {"BIGINT": "BIGINT", "DOUBLE": "DOUBLE", "STRING": "VARCHAR", "TIMESTAMP": "TIMESTAMPTZ"}
# The CSV dialect of a BigQuery export, stated rather than sniffed.
CSV_OPTIONS = {"header": "true", "delim": "','", "quote": "'\"'", "escape": "'\"'"}


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def ddl_types(table: str) -> dict[str, str]:
    """Column → DuckDB type from sql/ddl/raw_<table>.sql's `name` TYPE lines."""
    text = (DDL / f"raw_{table}.sql").read_text()
    body = text[text.index("(") + 1 : text.index("PARTITIONED BY")]
    cols = {m[1]: TYPES[m[2]] for m in re.finditer(r"`(\w+)`\s+(\w+)", body)}
    if not cols:
        raise SystemExit(f"no columns found in {DDL / f'raw_{table}.sql'}")
    return cols


def files(source: Path, table: str) -> list[Path]:
    for ext in (".csv", ".csv.gz"):
        if (source / f"{table}{ext}").is_file():
            return [source / f"{table}{ext}"]
    folder = source / table
    found = sorted(
        p
        for p in (folder.iterdir() if folder.is_dir() else [])
        if not p.name.startswith(("_", "."))
        and (p.name.lower().endswith(".csv") or p.name.lower().endswith(".csv.gz"))
    )
    if not found:
        raise SystemExit(f"{table}: no {table}.csv, {table}.csv.gz or CSV files in {table}/ under {source}")
    return found


def read_csv(paths: list[Path], types: dict[str, str]) -> str:
    listed = "[" + ", ".join(sql_str(str(p)) for p in paths) + "]"
    typed = "{" + ", ".join(f"{sql_str(c)}: {sql_str(t)}" for c, t in types.items()) + "}"
    options = ", ".join(f"{k} = {v}" for k, v in CSV_OPTIONS.items())
    return f"read_csv({listed}, {options}, types = {typed})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, help="folder of the CSV export (<table>.csv or <table>/)")
    p.add_argument("--out", required=True, help="output folder (gets <table>.parquet)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory-limit", help="DuckDB memory_limit (default: DuckDB's, 80%% of RAM)")
    a = p.parse_args()

    source = Path(a.source).resolve()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    plan = {t: (files(source, t), ddl_types(t)) for t in TABLES}

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {int(a.threads)}")
    if a.memory_limit:
        con.execute(f"SET memory_limit = {sql_str(a.memory_limit)}")
    tables = {}
    for t, (paths, types) in plan.items():
        target = out / f"{t}.parquet"
        t0 = time.perf_counter()
        (rows,) = con.execute(
            f"COPY (SELECT * FROM {read_csv(paths, types)}) TO {sql_str(str(target))} "
            "(FORMAT parquet, COMPRESSION snappy)"
        ).fetchone()
        tables[t] = {
            "seconds": time.perf_counter() - t0,
            "rows": rows,
            "files": [str(x) for x in paths],
            "csv_bytes": sum(x.stat().st_size for x in paths),
            "parquet_bytes": target.stat().st_size,
        }
    total_s = time.perf_counter() - started

    # After the clock: the types DuckDB read each column as (the DDL's, unless it failed to apply).
    for t, (paths, types) in plan.items():
        described = con.execute(f"DESCRIBE SELECT * FROM {read_csv(paths, types)}").fetchall()
        tables[t]["columns"] = {row[0]: row[1] for row in described}
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() "
            "WHERE name IN ('threads', 'memory_limit', 'preserve_insertion_order', 'TimeZone')"
        ).fetchall()
    )
    print(
        json.dumps(
            {
                "duckdb_version": duckdb.__version__,
                "python": sys.version.split()[0],
                "settings": settings,
                "read_csv": dict(CSV_OPTIONS, types="sql/ddl/raw_<table>.sql"),
                "timestamps": "TIMESTAMPTZ by DuckDB's own cast: '2023-01-05 10:02:03[.123456] UTC' as written, no format string",
                "copy": "FORMAT parquet, COMPRESSION snappy",
                "rows": sum(t["rows"] for t in tables.values()),
                "csv_bytes": sum(t["csv_bytes"] for t in tables.values()),
                "parquet_bytes": sum(t["parquet_bytes"] for t in tables.values()),
                "seconds": total_s,
                "tables": tables,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
