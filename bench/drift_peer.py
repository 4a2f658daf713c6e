"""Our drift report next to evidently's PSI on the same data.

For one scoring run of a data root, reads `monitoring/run_date=D/drift.json`, the served model's
reference anchors (the newest cross-fitting fold of `features/train` of the model date: anchors in
[reference_start, reference_end)) and the day's `features/score`, and for every model feature
computes

- evidently's PSI (`_psi`, its categorical path) on the rows mapped to our bins: the same data and
  the same bins, so it must equal our `psi` (the reference counts are checked equal first);
- evidently's PSI with its own binning (Sturges equal-width bins over both samples for numbers with
  more than 20 distinct reference values, raw categories otherwise; missing values dropped, as its
  Report does): a second opinion on which features moved.

Prints a JSON report; `bench/drift-peer` runs it in its own virtualenv (evidently pins pandas < 3).
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.core import ColumnType

OTHER, MISSING = "__other__", "__missing__"


def partition(root: Path, rel: str) -> pd.DataFrame:
    manifest = json.loads((root / rel / "_manifest.json").read_text())
    files = [root / rel / f["name"] for f in manifest["files"] if f["name"].endswith(".parquet")]
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def labels(values: pd.Series, bins: dict, known: set) -> pd.Series:
    """Each value's bin label, as drift.rs bins it."""
    if bins["kind"] == "numeric":
        edges = np.asarray(bins["edges"], dtype=float)
        v = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        idx = np.searchsorted(edges, v, side="left")  # right-closed: count of edges < v
        out = np.where(np.isnan(v), "(missing)", idx.astype(str))
        return pd.Series(out)
    top = {c: f"top:{c}" for c in bins["top"]}

    def one(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "(missing)"
        if v in top:
            return top[v]
        return "(other known)" if v in known else "(unknown to the model)"

    return values.map(one).astype(str)


def own_psi(ref: pd.Series, cur: pd.Series, numeric: bool) -> float | None:
    ref, cur = ref.replace([np.inf, -np.inf], np.nan).dropna(), cur.replace([np.inf, -np.inf], np.nan).dropna()
    if ref.empty or cur.empty:
        return None
    kind = ColumnType.Numerical if numeric else ColumnType.Categorical
    if numeric:
        ref, cur = ref.astype(float), cur.astype(float)
    return float(_psi(ref, cur, kind, 0.1)[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True, type=Path)
    ap.add_argument("--run-date", required=True)
    args = ap.parse_args()
    root = args.lake
    report = json.loads((root / f"monitoring/run_date={args.run_date}/drift.json").read_text())
    model_date = report["model_date"]
    model = json.loads((root / f"models/run_date={model_date}/model.json").read_text())
    known = {name: {k for k in enc["values"] if k not in (OTHER, MISSING)}
             for name, enc in model["encoders"].items()}
    train = partition(root, f"features/train/run_date={model_date}")
    start = pd.Timestamp(report["reference_start"].replace(" UTC", ""), tz="UTC")
    end = pd.Timestamp(report["reference_end"].replace(" UTC", ""), tz="UTC")
    ref = train[(train["anchor_time"] >= start) & (train["anchor_time"] < end)].reset_index(drop=True)
    cur = partition(root, f"features/score/run_date={args.run_date}")
    assert len(ref) == report["reference_rows"], (len(ref), report["reference_rows"])
    assert len(cur) == report["rows"], (len(cur), report["rows"])

    rows, worst = [], 0.0
    for h in report["features"]:
        name, bins = h["name"], h["bins"]
        r_lab = labels(ref[name], bins, known.get(name, set()))
        c_lab = labels(cur[name], bins, known.get(name, set()))
        if bins["kind"] == "numeric":
            order = [str(i) for i in range(len(bins["edges"]) + 1)] + ["(missing)"]
        else:
            order = [f"top:{c}" for c in bins["top"]] + ["(other known)", "(unknown to the model)", "(missing)"]
        counts = [int((r_lab == k).sum()) for k in order]
        assert counts == h["reference"], (name, counts, h["reference"])
        assert [int((c_lab == k).sum()) for k in order] == h["current"], name
        theirs = float(_psi(r_lab, c_lab, ColumnType.Categorical, 0.1)[0])
        ours = h["psi"]
        rel = abs(theirs - ours) / max(abs(ours), 1e-300) if ours else abs(theirs)
        worst = max(worst, rel)
        numeric = bins["kind"] == "numeric"
        own = own_psi(ref[name], cur[name], numeric)
        rows.append({"feature": name, "kind": bins["kind"], "bins": len(order), "psi": ours,
                     "evidently_same_bins": theirs, "relative_difference": rel,
                     "evidently_own_bins": own, "exempt": h["exempt"], "level": h["level"]})
    out = {
        "run_date": args.run_date, "model_version": report["model_version"],
        "rows": report["rows"], "reference_rows": report["reference_rows"],
        "features": len(rows), "largest_relative_difference": worst,
        "ours_warn": sorted(r["feature"] for r in rows if not r["exempt"] and r["psi"] >= 0.1),
        "evidently_own_bins_warn": sorted(r["feature"] for r in rows if not r["exempt"]
                                          and (r["evidently_own_bins"] or 0) >= 0.1),
        "table": rows,
    }
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0 if worst <= 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
