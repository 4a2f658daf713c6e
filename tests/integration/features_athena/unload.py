"""Stands in for Athena executing an UNLOAD in tests/integration/features_athena.rs.

Reads one JSON request on stdin:
  {"query": "<the UNLOAD statement as sent to Athena>",
   "parameters": ["DATE '2025-06-30'", ...],      # ExecutionParameters, in `?` order
   "run_date": "2025-06-30",
   "tables": {"raw_users": ["/tmp/.../part-00000.parquet"], ...},
   "out_dir": "/tmp/.../out"}

Takes the SELECT out of the UNLOAD, fills each `?` with its parameter literal (what Athena does
with ExecutionParameters), transpiles the Trino SQL to DuckDB with sqlglot, runs it in DuckDB over
views raw_<table> (the downloaded Parquet files plus the `run_date` partition column, as the Glue
tables of sql/ddl expose them) and writes the result as Snappy Parquet files named like Athena's
(no extension), split in two and shuffled, as UNLOAD writes in parallel and in no order.
Prints one JSON line: {"rows": N, "files": [...], "duckdb_sql": "..."}.
"""

import json
import os
import re
import sys

import duckdb
import sqlglot


def select_of(unload: str) -> str:
    m = re.fullmatch(r"UNLOAD \(\n(.*)\n\)\nTO '([^']*)'\nWITH \((.*)\)", unload, re.S)
    if not m:
        raise SystemExit(f"not an UNLOAD statement as the client builds them:\n{unload}")
    options = m.group(3)
    if "format = 'PARQUET'" not in options or "compression = 'SNAPPY'" not in options:
        raise SystemExit(f"unexpected UNLOAD options: {options}")
    return m.group(1)


def bind(sql: str, parameters: list) -> str:
    """Replaces each `?` outside string literals and comments with the next parameter."""
    out, i, n, k = [], 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and j + 1 < n and sql[j + 1] == "'":
                    j += 2
                    continue
                if sql[j] == "'":
                    break
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif c == "?":
            if k >= len(parameters):
                raise SystemExit("more `?` than execution parameters")
            out.append(parameters[k])
            k += 1
            i += 1
        else:
            out.append(c)
            i += 1
    if k != len(parameters):
        raise SystemExit(f"{len(parameters)} execution parameters for {k} `?`")
    return "".join(out)


def main() -> None:
    req = json.load(sys.stdin)
    trino = bind(select_of(req["query"]), req["parameters"])
    (duck_sql,) = sqlglot.transpile(trino, read="trino", write="duckdb")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 2")
    run_date = req["run_date"]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", run_date):
        raise SystemExit(f"bad run date {run_date!r}")
    for name, files in req["tables"].items():
        if not re.fullmatch(r"raw_[a-z_]+", name):
            raise SystemExit(f"bad table name {name!r}")
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(
            f"CREATE VIEW {name} AS SELECT *, DATE '{run_date}' AS run_date "
            f"FROM read_parquet([{listed}])"
        )
    con.execute(f"CREATE TEMP TABLE result AS {duck_sql}")
    rows = con.execute("SELECT COUNT(*) FROM result").fetchone()[0]
    out_dir = req["out_dir"]
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for part in (0, 1):
        name = f"20250701_031522_0000{part}_feat7_{part:05d}-a1b2"
        path = os.path.join(out_dir, name)
        con.execute(
            f"COPY (SELECT * FROM result WHERE hash(order_id) % 2 = {part} ORDER BY random()) "
            f"TO '{path}' (FORMAT PARQUET, COMPRESSION SNAPPY)"
        )
        files.append(name)
    print(json.dumps({"rows": rows, "files": files, "duckdb_sql": duck_sql}))


if __name__ == "__main__":
    main()
