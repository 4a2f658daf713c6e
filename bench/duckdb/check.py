"""Checks that DuckDB's features (bench/duckdb/features.py) equal build-features' for one run date.

For features/train and features/score separately: the same anchor set (order_id), the same column
names in the same order, and every column equal row by row after joining on order_id — integers,
strings, booleans and timestamps exactly, floats within a relative 1e-9 (with an absolute floor of
1e-12 for values at zero), nulls in the same places. Types are compared after folding Utf8View /
large strings into one string type (DataFusion writes Utf8View, DuckDB VARCHAR); the raw Arrow
types of both sides are reported too.

    python bench/duckdb/check.py --lake LAKE --run-date D --duckdb-out DIR

or `compare(lake, run_date, duckdb_out)` from bench/scale.py. Exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REL_TOL = 1e-9
ABS_FLOOR = 1e-12


def read_ours(lake: Path, part: str, run_date: str) -> pa.Table:
    """The manifest-listed Parquet files of features/<part>/run_date=D (as the workers read them)."""
    folder = lake / "features" / part / f"run_date={run_date}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    names = [f["name"] for f in manifest["files"] if f["name"].endswith(".parquet")]
    return pa.concat_tables([pq.read_table(folder / n) for n in names])


def norm_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or t == pa.string_view():
        return "string"
    return str(t)


def to_plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    t = col.type
    if t == pa.string_view() or pa.types.is_large_string(t):
        return pc.cast(col, pa.string())
    if pa.types.is_timestamp(t):
        return pc.cast(pc.cast(col, pa.timestamp("us", tz=t.tz)), pa.int64())
    return col


def compare_table(ours: pa.Table, duck: pa.Table, label: str) -> dict:
    res: dict = {"part": label, "rows_ours": ours.num_rows, "rows_duckdb": duck.num_rows}
    res["columns_only_ours"] = [c for c in ours.column_names if c not in duck.column_names]
    res["columns_only_duckdb"] = [c for c in duck.column_names if c not in ours.column_names]
    common = [c for c in ours.column_names if c in duck.column_names]
    res["column_order_equal"] = [c for c in ours.column_names if c in common] == [
        c for c in duck.column_names if c in common
    ]
    res["type_differences"] = {
        c: {"ours": str(ours.schema.field(c).type), "duckdb": str(duck.schema.field(c).type)}
        for c in common
        if norm_type(ours.schema.field(c).type) != norm_type(duck.schema.field(c).type)
    }
    res["representation_differences"] = sorted(
        f"{c}: {ours.schema.field(c).type} vs {duck.schema.field(c).type}"
        for c in common
        if str(ours.schema.field(c).type) != str(duck.schema.field(c).type)
        and c not in res["type_differences"]
    )

    o_ids = np.asarray(ours.column("order_id").to_numpy(), dtype=np.int64)
    d_ids = np.asarray(duck.column("order_id").to_numpy(), dtype=np.int64)
    res["duplicate_order_ids"] = {
        "ours": int(len(o_ids) - len(np.unique(o_ids))),
        "duckdb": int(len(d_ids) - len(np.unique(d_ids))),
    }
    only_o = np.setdiff1d(o_ids, d_ids)
    only_d = np.setdiff1d(d_ids, o_ids)
    res["anchors_only_ours"] = {"count": int(len(only_o)), "examples": only_o[:5].tolist()}
    res["anchors_only_duckdb"] = {"count": int(len(only_d)), "examples": only_d[:5].tolist()}
    res["row_order_equal"] = bool(len(o_ids) == len(d_ids) and np.array_equal(o_ids, d_ids))

    # Align DuckDB's rows to ours on order_id (anchors present on both sides).
    shared = np.intersect1d(o_ids, d_ids)
    o_idx = np.flatnonzero(np.isin(o_ids, shared))
    o_sorted = o_ids[o_idx]
    d_pos = {int(v): i for i, v in enumerate(d_ids)}
    d_idx = np.array([d_pos[int(v)] for v in o_sorted], dtype=np.int64)
    res["rows_compared"] = int(len(o_idx))

    mismatches = {}
    float_max_rel = {}
    for c in common:
        a = to_plain(ours.column(c)).take(pa.array(o_idx))
        b = to_plain(duck.column(c)).take(pa.array(d_idx))
        a_null = np.asarray(a.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        b_null = np.asarray(b.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        bad = a_null != b_null
        both = ~a_null & ~b_null
        if pa.types.is_floating(a.type) or pa.types.is_floating(b.type):
            av = np.asarray(pc.cast(a, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            bv = np.asarray(pc.cast(b, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            with np.errstate(invalid="ignore"):
                diff = np.abs(av - bv)
                scale = np.maximum(np.abs(av), np.abs(bv))
                nan_both = np.isnan(av) & np.isnan(bv)
                ok = nan_both | (diff <= np.maximum(REL_TOL * scale, ABS_FLOOR))
                rel = np.where(both & ~nan_both & (scale > 0), diff / np.where(scale > 0, scale, 1), 0.0)
            bad |= both & ~ok
            float_max_rel[c] = float(np.nanmax(rel)) if len(rel) else 0.0
        else:
            av = a.to_pylist()
            bv = b.to_pylist()
            neq = np.array([x != y for x, y in zip(av, bv)], dtype=bool) if len(av) else np.zeros(0, bool)
            bad |= both & neq
        n_bad = int(bad.sum())
        if n_bad:
            first = int(np.flatnonzero(bad)[0])
            mismatches[c] = {
                "rows": n_bad,
                "example": {
                    "order_id": int(o_sorted[first]),
                    "ours": a[first].as_py(),
                    "duckdb": b[first].as_py(),
                },
            }
    res["mismatching_columns"] = mismatches
    res["max_relative_difference"] = max(float_max_rel.values(), default=0.0)
    res["columns_compared"] = len(common)
    res["ok"] = bool(
        not mismatches
        and not res["columns_only_ours"]
        and not res["columns_only_duckdb"]
        and not res["type_differences"]
        and res["column_order_equal"]
        and not res["anchors_only_ours"]["count"]
        and not res["anchors_only_duckdb"]["count"]
        and not any(res["duplicate_order_ids"].values())
    )
    return res


def compare(lake: Path, run_date: str, duckdb_out: Path) -> dict:
    parts = []
    for part in ("train", "score"):
        ours = read_ours(Path(lake), part, run_date)
        duck = pq.read_table(Path(duckdb_out) / part)
        parts.append(compare_table(ours, duck, part))
    return {"ok": all(p["ok"] for p in parts), "rel_tol": REL_TOL, "abs_floor": ABS_FLOOR, "parts": parts}


def describe(result: dict) -> str:
    lines = []
    for p in result["parts"]:
        head = (
            f"features/{p['part']}: {p['rows_ours']} rows ours, {p['rows_duckdb']} DuckDB, "
            f"{p['rows_compared']} anchors compared on {p['columns_compared']} columns, "
            f"largest float relative difference {p['max_relative_difference']:.2e}: "
            + ("OK" if p["ok"] else "MISMATCH")
        )
        lines.append(head)
        for key in ("columns_only_ours", "columns_only_duckdb", "type_differences"):
            if p[key]:
                lines.append(f"  {key}: {p[key]}")
        if not p["column_order_equal"]:
            lines.append("  column order differs")
        for key in ("anchors_only_ours", "anchors_only_duckdb"):
            if p[key]["count"]:
                lines.append(f"  {key}: {p[key]['count']} (e.g. {p[key]['examples']})")
        if any(p["duplicate_order_ids"].values()):
            lines.append(f"  duplicate order ids: {p['duplicate_order_ids']}")
        for c, m in p["mismatching_columns"].items():
            lines.append(f"  column {c}: {m['rows']} rows differ, e.g. {m['example']}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--run-date", required=True)
    ap.add_argument("--duckdb-out", required=True)
    a = ap.parse_args()
    res = compare(Path(a.lake), a.run_date, Path(a.duckdb_out))
    print(describe(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
