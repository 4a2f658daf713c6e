#!/usr/bin/env python3
"""Our repurchase model side by side with LightGBM, CatBoost and the generator's oracle.

For each profile (`signal`, `thelook`) this script runs `repurchase demo` (generate N users,
then extract → build-features → train → calibrate → score into DIR/lake), reads back exactly
what our trainer saw — the feature partition's manifest-listed files, the model card's feature
list and out-of-time windows — fits LightGBM and CatBoost on the same training window with
early stopping on the same validation window, calibrates them with isotonic regression on that
validation window, and reports held-out test metrics for all of them plus the oracle (the true
probabilities the `signal` generator planted; the `thelook` profile has none).

One test window holds only ~1,500 (signal) to ~4,000 (thelook) anchors, so every figure moves
noticeably between generated data sets. The script therefore repeats all of the above for
several data seeds (`--seeds N`, default 3: seeds 42, 43, 44), one demo folder per seed, and after
the per-seed tables prints, per profile, mean ± standard deviation across seeds and the goals
evaluated on the means and on the pooled test rows (the calibrated test predictions and labels
of all seeds concatenated, AUC and ECE computed once on them).

It is a benchmark, not a test: it prints Markdown tables and writes the same figures as JSON.
Run it through `bench/run-peers`, which sets up the Python environment and builds the binary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEFAULT_TARGET = os.environ.get("CARGO_TARGET_DIR", "/var/cache/repurchase-target")

# Columns that must never be features, whatever the model card says. The card is the source of
# the feature list; this is only a guard against a card that (wrongly) lists one of them. The list
# is read from the Rust trainer's META_COLUMNS, so that the two cannot disagree.
def _rust_meta_columns() -> set[str]:
    src = (REPO_DIR / "crates/model/src/table.rs").read_text()
    m = re.search(r"pub const META_COLUMNS: \[&str; \d+\] = \[(.*?)\];", src, re.S)
    if m is None:
        sys.exit("bench/peers.py: META_COLUMNS not found in crates/model/src/table.rs")
    return set(re.findall(r'"([^"]+)"', m.group(1)))


META_COLUMNS = _rust_meta_columns()

# Goals of the project (bench/README.md, "Goals").
GOAL_AUC_GAP = -0.005  # ours − best peer, on test ROC-AUC
GOAL_ORACLE_RATIO = 0.98  # ours / oracle, on test ROC-AUC
GOAL_ECE = 0.01  # our calibrated test ECE


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


class CpuWatch:
    """How many cores *other* processes kept busy over an interval: machine-wide busy time from
    /proc/stat minus this process's and its waited-for children's CPU time. A parallel build
    makes fit times meaningless, and the load average cannot tell it from our own work."""

    def __init__(self) -> None:
        self.start = self._snap()

    @staticmethod
    def _snap():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            busy = (v[0] + v[1] + v[2] + sum(v[5:8])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            busy = None
        t = os.times()
        return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system

    def other_cores(self) -> float | None:
        wall0, busy0, own0 = self.start
        wall1, busy1, own1 = self._snap()
        if busy0 is None or busy1 is None or wall1 <= wall0:
            return None
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))


def looks_like_identifier(name: str) -> bool:
    """Same rule as repurchase_model::table::is_identifier."""
    n = name.lower()
    return n == "id" or n.endswith("_id") or n.endswith("_ids") or "sku" in n or n.startswith("id_")


# ---------------------------------------------------------------------------------------------
# Metrics: the same definitions as crates/model/src/metrics.rs.
# ---------------------------------------------------------------------------------------------


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann–Whitney AUC, ties counting one half (== sklearn.metrics.roc_auc_score)."""
    from scipy.stats import rankdata

    labels = labels.astype(bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(scores, method="average")
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Average precision, step-wise, ties entering together (== sklearn average_precision_score)."""
    from sklearn.metrics import average_precision_score

    if labels.sum() == 0:
        return None
    return float(average_precision_score(labels.astype(int), scores))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((probs - labels.astype(float)) ** 2)) if len(probs) else 0.0


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    if not len(probs):
        return 0.0
    p = np.clip(probs, 1e-15, 1 - 1e-15)
    y = labels.astype(bool)
    return float(np.mean(np.where(y, -np.log(p), -np.log1p(-p))))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Σ_b (n_b/n)·|mean_predicted_b − observed_b| over equal-width bins of [0, 1]; values
    outside [0, 1] fall into the end bins and 1.0 belongs to the last bin (as bin_index does)."""
    n = len(probs)
    if n == 0:
        return 0.0
    p = np.nan_to_num(np.clip(probs, 0.0, 1.0), nan=0.0)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    y = labels.astype(float)
    for b in range(bins):
        m = idx == b
        rows = int(m.sum())
        if rows:
            # mean_predicted uses the unclipped probability, as the Rust code does.
            total += rows / n * abs(float(probs[m].mean()) - float(y[m].mean()))
    return total


def summary(probs: np.ndarray, labels: np.ndarray) -> dict:
    labels = labels.astype(bool)
    return {
        "rows": int(len(probs)),
        "positives": int(labels.sum()),
        "positive_rate": float(labels.mean()) if len(labels) else 0.0,
        "roc_auc": roc_auc(probs, labels),
        "pr_auc": pr_auc(probs, labels),
        "brier": brier(probs, labels),
        "log_loss": log_loss(probs, labels),
        "ece": ece(probs, labels),
    }


# ---------------------------------------------------------------------------------------------
# Running the demo and reading the lake.
# ---------------------------------------------------------------------------------------------


def demo_dir_flag(binary: str) -> str:
    """`repurchase demo` has taken its folder as --dir; accept --demo-dir too if it is renamed."""
    out = subprocess.run([binary, "demo", "--help"], capture_output=True, text=True, check=True).stdout
    if "--demo-dir" in out:
        return "--demo-dir"
    return "--dir"


DEMO_MARKER = "peers-demo.json"


def read_demo_marker(demo_dir: Path) -> dict | None:
    """What `run_demo` recorded after a demo in `demo_dir` finished (None: none finished there)."""
    try:
        return json.loads((demo_dir / DEMO_MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_demo(binary: str, users: int, profile: str, seed: int, demo_dir: Path) -> dict:
    demo_dir.mkdir(parents=True, exist_ok=True)
    # A half-overwritten folder must not pass for a finished demo (see --reuse).
    (demo_dir / DEMO_MARKER).unlink(missing_ok=True)
    cmd = [
        binary,
        "demo",
        "--users",
        str(users),
        "--profile",
        profile,
        "--seed",
        str(seed),
        demo_dir_flag(binary),
        str(demo_dir),
        "--log-format",
        "json",
    ]
    log("running " + " ".join(cmd))
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (demo_dir / "demo-stdout.txt").write_text(proc.stdout)
    (demo_dir / "demo-stderr.jsonl").write_text(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"repurchase demo failed (exit {proc.returncode}) for {profile}:\n{tail}")
    log(f"demo finished in {seconds:.1f} s")
    run = {"command": cmd, "seconds": seconds}
    marker = run | {"users": users, "profile": profile, "seed": seed, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (demo_dir / DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return run


def our_test_predictions(binary: str, lake: Path, run_date: str, order_ids: np.ndarray) -> np.ndarray:
    """Our calibrated probability for each of `order_ids` (anchors of features/train), in order.

    calibrate keeps only aggregate metrics, so the score worker recomputes them: in a scratch data
    root, features/train is published as features/score next to a copy of the model and its
    calibration, and `repurchase score` writes `probability_at_anchor` = calibrator(model(x)) for
    every anchor (the train table has no `repurchased_so_far`, so none is skipped). The real lake
    is left untouched."""
    with tempfile.TemporaryDirectory(prefix="peers-score-") as tmp:
        part = f"run_date={run_date}"
        shutil.copytree(lake / "models" / part, Path(tmp) / "models" / part)
        shutil.copytree(lake / "features" / "train" / part, Path(tmp) / "features" / "score" / part)
        cmd = [binary, "score", "--run-date", run_date, "--data-root", tmp, "--log-format", "json"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise SystemExit(f"`repurchase score` on a copy of features/train failed (exit {proc.returncode}):\n{tail}")
        scores = pq.read_table(
            Path(tmp) / "scores" / part, columns=["anchor_order_id", "probability_at_anchor"]
        ).to_pandas()
    by_order = pd.Series(scores["probability_at_anchor"].to_numpy(dtype=float), index=scores["anchor_order_id"].to_numpy())
    if not by_order.index.is_unique:
        raise SystemExit("scores list an anchor order twice; cannot map our test predictions to rows")
    p = by_order.reindex(order_ids).to_numpy(dtype=float)
    if np.isnan(p).any():
        raise SystemExit(f"`repurchase score` gave no probability for {int(np.isnan(p).sum())} test anchors")
    return p


def parse_demo_outputs(demo_dir: Path) -> dict:
    """Stage times from the demo's summary and the `fit` step from its JSON logs, if saved."""
    out: dict = {"stages": {}, "fit_step_seconds": None, "summary_text": None}
    stdout = demo_dir / "demo-stdout.txt"
    if stdout.exists():
        text = stdout.read_text()
        out["summary_text"] = text.strip()
        for line in text.splitlines():
            m = re.match(r"^(generate|extract|build-features|train|calibrate|score)\s+(\d+)\s+([\d.]+)\s*(.*)$", line)
            if m:
                out["stages"][m.group(1)] = {
                    "rows": int(m.group(2)),
                    "seconds": float(m.group(3)),
                    "detail": m.group(4).strip(),
                }
    stderr = demo_dir / "demo-stderr.jsonl"
    if stderr.exists():
        out["fit_step_seconds"] = fit_step_seconds(stderr.read_text())
    return out


def fit_step_seconds(jsonl: str) -> float | None:
    """duration_ms of the trainer's `fit` step (encoders + boosting with early stopping)."""
    found = None
    for line in jsonl.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("message") == "step finished" and rec.get("step") == "fit":
            found = rec.get("duration_ms", 0) / 1000.0
    return found


def time_train_separately(binary: str, lake: Path, run_date: str, card: dict) -> dict:
    """Fallback when the demo's logs are not at hand: copy features/train into a scratch lake and
    time `repurchase train` there (so the real lake's model is not rewritten)."""
    with tempfile.TemporaryDirectory(prefix="peers-train-") as tmp:
        part = f"features/train/run_date={run_date}"
        shutil.copytree(lake / part, Path(tmp) / part)
        w = card["windows"]
        p = card.get("params", {})
        cmd = [
            binary,
            "train",
            "--run-date",
            run_date,
            "--data-root",
            tmp,
            "--valid-days",
            str(w["valid_days"]),
            "--test-days",
            str(w["test_days"]),
        ]
        for flag, key in [
            ("--max-iterations", "max_iterations"),
            ("--learning-rate", "learning_rate"),
            ("--max-depth", "max_depth"),
            ("--seed", "seed"),
        ]:
            if key in p:
                cmd += [flag, str(p[key])]
        env = dict(os.environ, REPURCHASE_LOG_FORMAT="json")
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            log(f"timing `repurchase train` failed (exit {proc.returncode}); fit time unknown")
            return {"command": cmd, "seconds": None, "fit_step_seconds": None}
        return {"command": cmd, "seconds": seconds, "fit_step_seconds": fit_step_seconds(proc.stderr)}


def single_run_date(folder: Path) -> str:
    dates = sorted(p.name.split("=", 1)[1] for p in folder.glob("run_date=*") if (p / "_manifest.json").exists())
    if not dates:
        raise SystemExit(f"no published run_date=* partition under {folder}")
    if len(dates) > 1:
        log(f"several run dates under {folder} ({', '.join(dates)}); using the latest")
    return dates[-1]


def anchor_micros(col: pa.ChunkedArray) -> np.ndarray:
    """anchor_time as µs since the epoch (UTC), whatever the stored timestamp unit."""
    t = col.type
    if not pa.types.is_timestamp(t):
        raise SystemExit(f"anchor_time has type {t}, expected a timestamp")
    us = pc.cast(col, pa.timestamp("us", tz=t.tz))
    return np.asarray(pc.cast(us, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def read_features(lake: Path, run_date: str) -> tuple[pa.Table, dict]:
    part = lake / "features" / "train" / f"run_date={run_date}"
    manifest = json.loads((part / "_manifest.json").read_text())
    names = [f["name"] for f in manifest["files"] if f["name"].endswith(".parquet")]
    if not names:
        raise SystemExit(f"{part}/_manifest.json lists no parquet file")
    on_disk = sorted(p.name for p in part.glob("*.parquet"))
    unlisted = sorted(set(on_disk) - set(names))
    if unlisted:
        log(f"ignoring parquet files not in the manifest: {unlisted}")
    tables = []
    for name in names:
        t = pq.read_table(part / name)
        listed_rows = next(f.get("rows") for f in manifest["files"] if f["name"] == name)
        if listed_rows is not None and t.num_rows != listed_rows:
            raise SystemExit(f"{name}: {t.num_rows} rows, manifest says {listed_rows}")
        tables.append(t)
    table = pa.concat_tables(tables, promote_options="permissive")
    return table, manifest


def to_frame(table: pa.Table, features: list[dict]) -> pd.DataFrame:
    """The card's features only: numeric as float64 (null → NaN), categorical as str/None."""
    cols = {}
    for f in features:
        col = table.column(f["name"])
        if f["kind"] == "numeric":
            cols[f["name"]] = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        elif f["kind"] == "categorical":
            cols[f["name"]] = pd.Series(pc.cast(col, pa.string()).to_pylist(), dtype=object)
        else:
            raise SystemExit(f"feature {f['name']} has unknown kind {f['kind']!r}")
    return pd.DataFrame(cols)


def feature_table_notes(table: pa.Table, features: list[dict], X: pd.DataFrame, y: np.ndarray, parts: dict) -> dict:
    """Facts about the feature table worth a look: unused columns, empty or constant features, and
    any single feature that ranks the test window suspiciously well on its own (leak smell)."""
    feat_names = [f["name"] for f in features]
    unused = [c for c in table.column_names if c not in feat_names and c not in META_COLUMNS]
    tr = parts["train"]
    all_null, constant, strong = [], [], []
    for f in features:
        s = X[f["name"]].iloc[tr]
        if s.isna().all():
            all_null.append(f["name"])
        elif s.nunique(dropna=False) <= 1:
            constant.append(f["name"])
    te = parts["test"]
    alone = []
    for f in features:
        if f["kind"] != "numeric":
            continue
        v = X[f["name"]].to_numpy()[te]
        v = np.where(np.isnan(v), np.nanmin(v) - 1 if np.isfinite(v).any() else 0.0, v)
        a = roc_auc(v, y[te])
        if a is None:
            continue
        alone.append({"feature": f["name"], "test_auc_alone": round(a, 4)})
        if abs(a - 0.5) > 0.2:
            strong.append({"feature": f["name"], "test_auc_alone": round(a, 4)})
    alone.sort(key=lambda r: -abs(r["test_auc_alone"] - 0.5))
    cardinality = {
        f["name"]: int(X[f["name"]].iloc[tr].nunique()) for f in features if f["kind"] == "categorical"
    }
    null_share = {
        f["name"]: round(float(X[f["name"]].iloc[tr].isna().mean()), 4)
        for f in features
        if X[f["name"]].iloc[tr].isna().mean() > 0.5
    }
    return {
        "columns_in_table": table.num_columns,
        "features": len(features),
        "numeric": sum(f["kind"] == "numeric" for f in features),
        "categorical": sum(f["kind"] == "categorical" for f in features),
        "columns_not_in_card": unused,
        "all_null_in_train": all_null,
        "constant_in_train": constant,
        "mostly_null_in_train": null_share,
        "strong_single_features": strong,
        "top_single_feature_test_auc": alone[:8],
        "categorical_cardinality_in_train": cardinality,
    }


# ---------------------------------------------------------------------------------------------
# Peers.
# ---------------------------------------------------------------------------------------------


def lightgbm_frames(X: pd.DataFrame, features: list[dict], tr: np.ndarray) -> pd.DataFrame:
    """pandas category dtype, categories fixed from the training window (unseen → missing)."""
    out = X.copy()
    for f in features:
        if f["kind"] == "categorical":
            col = X[f["name"]]
            cats = sorted({v for v in col.iloc[tr] if v is not None})
            seen = col.where(col.isin(set(cats)), None)
            out[f["name"]] = pd.Categorical(seen, categories=cats)
    return out


def fit_lightgbm(X, y, parts, features, args) -> dict:
    import lightgbm as lgb

    Xl = lightgbm_frames(X, features, parts["train"])
    tr, va = parts["train"], parts["valid"]
    params = {
        "objective": "binary",
        "learning_rate": args.learning_rate,
        "metric": "binary_logloss",
        "seed": args.peer_seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": args.threads,
        "verbose": -1,
    }
    started = time.perf_counter()
    dtrain = lgb.Dataset(Xl.iloc[tr], label=y[tr], categorical_feature="auto", free_raw_data=False)
    dvalid = lgb.Dataset(Xl.iloc[va], label=y[va], reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=args.max_rounds,
        valid_sets=[dvalid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(args.early_stopping, verbose=False)],
    )
    fit_seconds = time.perf_counter() - started
    best = booster.best_iteration or booster.current_iteration()

    def predict(idx):
        return booster.predict(Xl.iloc[idx], num_iteration=best)

    gain = booster.feature_importance(importance_type="gain")
    importance = sorted(zip(booster.feature_name(), (float(g) for g in gain)), key=lambda kv: -kv[1])
    return {
        "name": f"LightGBM {lgb.__version__}",
        "predict": predict,
        "fit_seconds": fit_seconds,
        "iterations": int(best),
        "params": {**params, "num_boost_round": args.max_rounds, "early_stopping_rounds": args.early_stopping},
        "importance_top": importance[:10],
    }


def fit_catboost(X, y, parts, features, args) -> dict:
    import catboost
    from catboost import CatBoostClassifier, Pool

    cat_cols = [f["name"] for f in features if f["kind"] == "categorical"]
    Xc = X.copy()
    for c in cat_cols:
        # CatBoost wants text without NaN: missing becomes its own category.
        Xc[c] = Xc[c].where(Xc[c].notna(), "__missing__").astype(str)
    tr, va = parts["train"], parts["valid"]
    params = {
        "iterations": args.max_rounds,
        "learning_rate": args.learning_rate,
        "depth": 6,
        "loss_function": "Logloss",
        "eval_metric": "Logloss",
        "od_type": "Iter",
        "early_stopping_rounds": args.early_stopping,
        "use_best_model": True,
        "random_seed": args.peer_seed,
        "thread_count": args.threads,
        "verbose": 0,
        "allow_writing_files": False,
    }
    started = time.perf_counter()
    model = CatBoostClassifier(**params)
    model.fit(
        Pool(Xc.iloc[tr], label=y[tr], cat_features=cat_cols),
        eval_set=Pool(Xc.iloc[va], label=y[va], cat_features=cat_cols),
    )
    fit_seconds = time.perf_counter() - started

    def predict(idx):
        return model.predict_proba(Pool(Xc.iloc[idx], cat_features=cat_cols))[:, 1]

    importance = sorted(
        zip(Xc.columns, (float(v) for v in model.get_feature_importance())), key=lambda kv: -kv[1]
    )
    return {
        "name": f"CatBoost {catboost.__version__}",
        "predict": predict,
        "fit_seconds": fit_seconds,
        "iterations": int(model.get_best_iteration() + 1),
        "params": params,
        "importance_top": importance[:10],
    }


def calibrated_peer(fitted: dict, y: np.ndarray, parts: dict) -> dict:
    """Isotonic regression fitted on validation predictions, clipped outside their range; the
    same validation window our calibrator uses."""
    from sklearn.isotonic import IsotonicRegression

    raw_valid = fitted["predict"](parts["valid"])
    raw_test = fitted["predict"](parts["test"])
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(raw_valid, y[parts["valid"]])
    cal_test = iso.predict(raw_test)
    return {
        "model": fitted["name"],
        "test": summary(cal_test, y[parts["test"]]),
        "test_raw": summary(raw_test, y[parts["test"]]),
        "_test_probs": cal_test,
        "calibration": "isotonic",
        "fit_seconds": fitted["fit_seconds"],
        "iterations": fitted["iterations"],
        "params": fitted["params"],
        "importance_top": fitted["importance_top"],
    }


# ---------------------------------------------------------------------------------------------
# One demo folder: one profile, one data seed.
# ---------------------------------------------------------------------------------------------


def ece_noise_floor(p: np.ndarray, source: str, draws: int = 500) -> dict:
    """The ECE a perfectly calibrated model would show on these rows: outcomes drawn from the
    probabilities themselves, `draws` times (seeded, so reruns agree)."""
    rng = np.random.default_rng(0)
    sims = np.array([ece(p, rng.random(len(p)) < p) for _ in range(draws)])
    return {
        "from": source,
        "rows": int(len(p)),
        "draws": draws,
        "mean": float(sims.mean()),
        "p90": float(np.quantile(sims, 0.9)),
        "share_above_goal": float((sims > GOAL_ECE).mean()),
    }


def bench_run(profile: str, args, demo_dir: Path, seed: int | None, demo_run: dict | None, marker: dict | None) -> dict:
    """Everything for one demo folder. `demo_run` is set when the demo ran just now; `marker` is
    what an earlier run recorded when the folder is reused. The result carries the calibrated
    test predictions under `_predictions` (model name → (probabilities, labels)) for pooling;
    keys starting with `_` never reach the JSON."""
    run_started = time.perf_counter()
    load_at_start = list(os.getloadavg())
    run_watch = CpuWatch()
    lake, source = demo_dir / "lake", demo_dir / "source"
    demo_out = parse_demo_outputs(demo_dir)
    tag = f"{profile} seed {seed}" if seed is not None else profile

    run_date = single_run_date(lake / "models")
    card = json.loads((lake / "models" / f"run_date={run_date}" / "model_card.json").read_text())
    metrics = json.loads((lake / "models" / f"run_date={run_date}" / "calibration" / "metrics.json").read_text())
    table, fmanifest = read_features(lake, run_date)

    features = card["features"]
    bad = [f["name"] for f in features if f["name"] in META_COLUMNS or looks_like_identifier(f["name"])]
    if bad:
        raise SystemExit(f"the model card lists meta/identifier columns as features: {bad}")
    missing = [f["name"] for f in features if f["name"] not in table.column_names]
    if missing:
        raise SystemExit(f"card features missing from the feature table: {missing}")

    anchor = anchor_micros(table.column("anchor_time"))
    y = np.asarray(pc.cast(table.column("label"), pa.int64()).to_numpy(zero_copy_only=False)) == 1
    order_id = np.asarray(table.column("order_id").to_numpy(zero_copy_only=False), dtype=np.int64)
    w = card["windows"]
    parts = {
        "train": np.flatnonzero(anchor < w["train_end_us"]),
        "valid": np.flatnonzero((anchor >= w["valid_start_us"]) & (anchor < w["valid_end_us"])),
        "test": np.flatnonzero((anchor >= w["test_start_us"]) & (anchor < w["test_end_us"])),
    }
    te = parts["test"]
    # The windows must hold exactly what our trainer counted.
    checks = []
    for ours_key, part in [("train", "train"), ("validation", "valid"), ("test", "test")]:
        want = card[ours_key]
        got_rows, got_pos = len(parts[part]), int(y[parts[part]].sum())
        ok = got_rows == want["rows"] and got_pos == want["positives"]
        checks.append({"window": ours_key, "rows": got_rows, "positives": got_pos, "card_rows": want["rows"], "card_positives": want["positives"], "match": ok})
        if not ok:
            log(f"WARNING {tag}: {ours_key} window: {got_rows} rows / {got_pos} positives here, card says {want['rows']} / {want['positives']}")
    log(
        f"{tag}: run date {run_date}, {table.num_rows} labelled anchors, {len(features)} features; "
        f"train {len(parts['train'])}, validation {len(parts['valid'])}, test {len(te)}"
    )

    X = to_frame(table, features)
    notes = feature_table_notes(table, features, X, y, parts)
    predictions: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    # Ours: what calibrate wrote for the test window.
    if demo_out["fit_step_seconds"] is not None:
        ours_fit = demo_out["fit_step_seconds"]
        ours_fit_source = "`fit` step (target encoding + boosting with early stopping) in the demo's JSON logs"
        separate = None
    else:
        log(f"{tag}: demo logs not found: timing `repurchase train` on a copy of features/train")
        separate = time_train_separately(args.binary, lake, run_date, card)
        ours_fit = separate["fit_step_seconds"]
        ours_fit_source = "`fit` step of a separate `repurchase train` run on a copy of features/train"
    calib = metrics.get("calibration")
    calib_method = calib.get("chosen", {}).get("method") if isinstance(calib, dict) else calib
    ours = {
        "model": "ours (forust-ml GBDT)",
        "test": metrics["test"],
        "test_raw": metrics.get("test_raw", card.get("raw_test")),
        "calibration": calib_method if isinstance(calib_method, str) else None,
        "fit_seconds": ours_fit,
        "fit_seconds_source": ours_fit_source,
        "train_stage_seconds": demo_out["stages"].get("train", {}).get("seconds"),
        "separate_train_run": separate,
        "iterations": card.get("iterations"),
        "params": card.get("params"),
        "importance_top": (card.get("feature_importance") or [])[:10],
    }
    if ours["test"]["rows"] != len(te):
        log(f"WARNING {tag}: metrics.json test rows {ours['test']['rows']} != {len(te)} test rows here")
    # Our per-row calibrated test probabilities (for pooling across seeds), recomputed by the
    # score worker and checked against the aggregate metrics calibrate wrote.
    if os.access(args.binary, os.X_OK):
        p_ours = our_test_predictions(args.binary, lake, run_date, order_id[te])
        again = summary(p_ours, y[te])
        diff = max(abs((again[k] or 0.0) - (ours["test"][k] or 0.0)) for k in ("roc_auc", "pr_auc", "brier", "ece"))
        ours["test_predictions"] = {
            "source": "`repurchase score` (probability_at_anchor) on a scratch copy of features/train and the model",
            "max_abs_difference_from_metrics_json": diff,
        }
        if diff > 1e-9:
            log(f"WARNING {tag}: our re-scored test predictions differ from metrics.json by up to {diff:.2e}")
        predictions[ours["model"]] = (p_ours, y[te])
    else:
        log(f"{tag}: no binary at {args.binary}: our per-row test predictions (pooled figures) unavailable")
        ours["test_predictions"] = None
        predictions[ours["model"]] = None

    # Peers.
    peers = []
    for fit in (fit_lightgbm, fit_catboost):
        log(f"{tag}: fitting {fit.__name__[4:]} on {len(parts['train'])} rows")
        watch = CpuWatch()
        fitted = fit(X, y, parts, features, args)
        other = watch.other_cores()
        peer = calibrated_peer(fitted, y, parts) | {"other_processes_cores_during_fit": other}
        predictions[peer["model"]] = (peer.pop("_test_probs"), y[te])
        peers.append(peer)
        log(f"{tag}: {fitted['name']} {fitted['iterations']} rounds in {fitted['fit_seconds']:.1f} s")

    # Oracle: the generator's true probabilities on the same test anchors.
    truth_path = source / "truth" / "anchor_truth.parquet"
    oracle = None
    if truth_path.exists():
        truth = pq.read_table(truth_path, columns=["order_id", "p_true"]).to_pandas()
        p_by_order = pd.Series(truth["p_true"].to_numpy(), index=truth["order_id"].to_numpy())
        p = p_by_order.reindex(order_id[te]).to_numpy()
        have = ~np.isnan(p)
        oracle = {
            "model": "oracle (generator's p_true)",
            "test": summary(p[have], y[te][have]),
            "test_anchors_with_truth": int(have.sum()),
            "test_anchors": int(len(te)),
        }
        predictions[oracle["model"]] = (p[have], y[te][have])
        if have.sum() != len(te):
            log(f"WARNING {tag}: oracle: {len(te) - int(have.sum())} test anchors have no p_true")

    best_peer = max(peers, key=lambda r: r["test"]["roc_auc"] or 0.0)
    best_peer_raw = max(peers, key=lambda r: r["test_raw"]["roc_auc"] or 0.0)
    ours_auc, ours_raw_auc = ours["test"]["roc_auc"], (ours["test_raw"] or {}).get("roc_auc")
    gaps = {
        "auc_gap_vs_best_peer": ours_auc - best_peer["test"]["roc_auc"],
        "best_peer": best_peer["model"],
        "auc_gap_vs_best_peer_raw": (ours_raw_auc - best_peer_raw["test_raw"]["roc_auc"]) if ours_raw_auc is not None else None,
        "best_peer_raw": best_peer_raw["model"],
        "ours_over_oracle_auc": (ours_auc / oracle["test"]["roc_auc"]) if oracle and oracle["test"]["roc_auc"] else None,
        "ours_ece": ours["test"]["ece"],
        "ours_test_auc_ci95": metrics.get("test_auc_ci"),
    }
    # What ECE a perfectly calibrated model would show on a test window this size: outcomes drawn
    # from the oracle's probabilities where there are some, else from the best peer's calibrated
    # test probabilities (whose spread is similar to ours).
    if oracle:
        gaps["ece_noise_floor"] = ece_noise_floor(predictions[oracle["model"]][0], "oracle p_true")
    else:
        gaps["ece_noise_floor"] = ece_noise_floor(
            predictions[best_peer["model"]][0], f"{best_peer['model']} calibrated test probabilities"
        )
    gaps["goals"] = {
        "auc_gap_vs_best_peer >= -0.005": gaps["auc_gap_vs_best_peer"] >= GOAL_AUC_GAP,
        "ours_over_oracle_auc >= 0.98": (gaps["ours_over_oracle_auc"] >= GOAL_ORACLE_RATIO) if gaps["ours_over_oracle_auc"] is not None else None,
        "ours_ece <= 0.01": gaps["ours_ece"] <= GOAL_ECE,
    }
    return {
        "profile": profile,
        "seed": seed,
        "users": (marker or {}).get("users", args.users if demo_run else None),
        "demo_dir": str(demo_dir),
        "run_date": run_date,
        "model_version": card.get("model_version"),
        "features_code_version": fmanifest.get("code_version"),
        "windows": {k: w[k] for k in ("horizon_days", "valid_days", "test_days", "train_end_us", "valid_start_us", "valid_end_us", "test_start_us", "test_end_us")} | {"readable": w.get("readable")},
        "window_checks": checks,
        "feature_table": notes,
        "feature_list": features,
        "models": [ours, *peers] + ([oracle] if oracle else []),
        "gaps": gaps,
        "demo": {
            "reused": demo_run is None,
            "command": (demo_run or marker or {}).get("command"),
            "wall_seconds": demo_run["seconds"] if demo_run else None,
            "earlier_wall_seconds": marker.get("seconds") if (marker and not demo_run) else None,
            "finished_at": (marker or {}).get("finished_at") if not demo_run else None,
            "stages": demo_out["stages"],
            "summary": demo_out["summary_text"],
        },
        "wall_seconds": time.perf_counter() - run_started,
        "environment": {
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
            "other_processes_cores": run_watch.other_cores(),
        },
        "_predictions": predictions,
    }


# ---------------------------------------------------------------------------------------------
# One profile: all seeds, then the summary across them.
# ---------------------------------------------------------------------------------------------


def mean_sd(values: list) -> dict:
    """Mean and sample standard deviation (n − 1) of the values that are not None."""
    v = [float(x) for x in values if x is not None]
    return {
        "values": values,
        "n": len(v),
        "mean": float(np.mean(v)) if v else None,
        "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None,
    }


def summarize(runs: list[dict]) -> dict:
    names = [m["model"] for m in runs[0]["models"]]
    models = []
    for name in names:
        ms = [next((m for m in r["models"] if m["model"] == name), None) for r in runs]
        row: dict = {"model": name}
        for key in ("roc_auc", "pr_auc", "brier", "log_loss", "ece"):
            row[key] = mean_sd([m["test"][key] if m else None for m in ms])
        timed = any(m and "fit_seconds" in m for m in ms)
        row["fit_seconds"] = mean_sd([m.get("fit_seconds") if m else None for m in ms]) if timed else None
        row["iterations"] = mean_sd([m.get("iterations") if m else None for m in ms]) if timed else None
        pairs = [r["_predictions"].get(name) for r in runs]
        if all(pp is not None for pp in pairs):
            probs = np.concatenate([pp[0] for pp in pairs])
            labels = np.concatenate([pp[1] for pp in pairs])
            row["pooled"] = summary(probs, labels)
            row["_pooled_probs"] = probs
        else:
            row["pooled"] = None
        models.append(row)

    ours = models[0]
    oracle = next((m for m in models if m["model"].startswith("oracle")), None)
    peers = [m for m in models[1:] if m is not oracle]
    ok = lambda v, goal: None if v is None else v >= goal  # noqa: E731

    # Goals on the means across seeds.
    best = max(peers, key=lambda m: m["roc_auc"]["mean"] or 0.0)
    paired = [
        (o - b) if o is not None and b is not None else None
        for o, b in zip(ours["roc_auc"]["values"], best["roc_auc"]["values"])
    ]
    ratio = (ours["roc_auc"]["mean"] / oracle["roc_auc"]["mean"]) if oracle and oracle["roc_auc"]["mean"] else None
    ratios = (
        [(o / t) if o is not None and t else None for o, t in zip(ours["roc_auc"]["values"], oracle["roc_auc"]["values"])]
        if oracle
        else None
    )
    floors = [r["gaps"]["ece_noise_floor"] for r in runs]
    on_means = {
        "best_peer": best["model"],
        "auc_gap_vs_best_peer": ours["roc_auc"]["mean"] - best["roc_auc"]["mean"],
        "auc_gap_vs_best_peer_per_seed": mean_sd(paired),
        "ours_over_oracle_auc": ratio,
        "ours_over_oracle_auc_per_seed": mean_sd(ratios) if ratios else None,
        "ours_ece": ours["ece"]["mean"],
        "ece_noise_floor_per_seed": {
            "from": floors[0]["from"],
            "rows": [f["rows"] for f in floors],
            "mean": float(np.mean([f["mean"] for f in floors])),
            "p90": float(np.mean([f["p90"] for f in floors])),
            "share_above_goal": float(np.mean([f["share_above_goal"] for f in floors])),
        },
    }
    on_means["goals"] = {
        "auc_gap_vs_best_peer >= -0.005": on_means["auc_gap_vs_best_peer"] >= GOAL_AUC_GAP,
        "ours_over_oracle_auc >= 0.98": ok(ratio, GOAL_ORACLE_RATIO),
        "ours_ece <= 0.01": on_means["ours_ece"] <= GOAL_ECE,
    }

    # Goals on the pooled test rows of all seeds.
    pooled = None
    if ours["pooled"] is not None:
        pbest = max(peers, key=lambda m: (m["pooled"] or {}).get("roc_auc") or 0.0)
        pratio = (ours["pooled"]["roc_auc"] / oracle["pooled"]["roc_auc"]) if oracle and oracle["pooled"] else None
        if oracle and oracle["pooled"]:
            floor = ece_noise_floor(oracle["_pooled_probs"], "oracle p_true, pooled")
        else:
            floor = ece_noise_floor(pbest["_pooled_probs"], f"{pbest['model']} calibrated test probabilities, pooled")
        pooled = {
            "what": "calibrated test predictions and labels of all seeds concatenated; each metric computed once on them",
            "seeds": [r["seed"] for r in runs],
            "rows": ours["pooled"]["rows"],
            "positives": ours["pooled"]["positives"],
            "best_peer": pbest["model"],
            "auc_gap_vs_best_peer": ours["pooled"]["roc_auc"] - pbest["pooled"]["roc_auc"],
            "ours_over_oracle_auc": pratio,
            "ours_ece": ours["pooled"]["ece"],
            "ece_noise_floor": floor,
        }
        pooled["goals"] = {
            "auc_gap_vs_best_peer >= -0.005": pooled["auc_gap_vs_best_peer"] >= GOAL_AUC_GAP,
            "ours_over_oracle_auc >= 0.98": ok(pratio, GOAL_ORACLE_RATIO),
            "ours_ece <= 0.01": pooled["ours_ece"] <= GOAL_ECE,
        }
    return {
        "seeds": [r["seed"] for r in runs],
        "test_rows_per_seed": [r["window_checks"][2]["rows"] for r in runs],
        "test_positives_per_seed": [r["window_checks"][2]["positives"] for r in runs],
        "sd": "sample standard deviation across seeds (n − 1); null with one seed",
        "models": models,
        "on_means": on_means,
        "pooled": pooled,
    }


def bench_profile(profile: str, args, seeds: list[int]) -> dict:
    """Runs (or reuses) one demo per seed, benchmarks each, prints each seed's table as soon as
    it is done, and returns all runs with the summary across them."""
    started = time.perf_counter()
    load_at_start = list(os.getloadavg())
    watch = CpuWatch()
    runs = []
    if args.skip_demo:
        base = Path(args.skip_demo)
        candidates = [base, base / f"{profile}-{args.users}-seed{seeds[0]}", base / f"{profile}-{args.users}", base / profile]
        demo_dir = next((c for c in candidates if (c / "lake").is_dir()), None)
        if demo_dir is None:
            raise SystemExit("--skip-demo: none of " + ", ".join(f"{c}/lake" for c in candidates) + " exists")
        marker = read_demo_marker(demo_dir)
        log(f"{profile}: reusing {demo_dir}")
        plan = [(demo_dir, (marker or {}).get("seed"), marker)]
    else:
        plan = [(Path(args.work_dir) / f"{profile}-{args.users}-seed{seed}", seed, None) for seed in seeds]
    for k, (demo_dir, seed, marker) in enumerate(plan):
        demo_run = None
        if not args.skip_demo:
            marker = read_demo_marker(demo_dir) if args.reuse else None
            wanted = {"users": args.users, "profile": profile, "seed": seed}
            if marker and all(marker.get(key) == v for key, v in wanted.items()) and (demo_dir / "lake").is_dir():
                log(f"{profile} seed {seed}: reusing {demo_dir} (demo finished {marker.get('finished_at')})")
            else:
                if args.reuse:
                    log(f"{profile} seed {seed}: no finished demo with these settings in {demo_dir}; running it")
                marker = None
                demo_run = run_demo(args.binary, args.users, profile, seed, demo_dir)
        res = bench_run(profile, args, demo_dir, seed, demo_run, marker)
        if k == 0:
            print(profile_header(res, args, plan), flush=True)
        print(run_markdown(res) + "\n", flush=True)
        runs.append(res)
    return {
        "profile": profile,
        "users": runs[0]["users"],
        "seeds": [r["seed"] for r in runs],
        "runs": runs,
        "summary": summarize(runs),
        "wall_seconds": time.perf_counter() - started,
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "peer_threads": args.threads,
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
            "other_processes_cores": watch.other_cores(),
        },
    }


# ---------------------------------------------------------------------------------------------
# Output.
# ---------------------------------------------------------------------------------------------


def fmt(v, digits=4):
    if v is None:
        return "n/a"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    return f"{v:.{digits}f}"


def fmt_ms(ms: dict | None, digits=4) -> str:
    if not ms or ms["mean"] is None:
        return "—"
    if ms["sd"] is None:
        return fmt(ms["mean"], digits)
    return f"{ms['mean']:.{digits}f} ± {ms['sd']:.{digits}f}"


def status(b) -> str:
    return "n/a" if b is None else ("met" if b else "**MISSED**")


def public(obj):
    """Drops keys starting with `_` (prediction arrays) for the JSON."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


def profile_header(res: dict, args, plan: list) -> str:
    ft = res["feature_table"]
    seeds = [s for _, s, _ in plan]
    head = f"## {res['profile']} profile" + (f", {res['users']:,} users" if res["users"] else "")
    if any(s is not None for s in seeds):
        head += ", data seed" + ("s " if len(seeds) > 1 else " ") + ", ".join(str(s) for s in seeds)
    head += f" — run date {res['run_date']}"
    return (
        head
        + "\n\n"
        + f"{ft['features']} features ({ft['numeric']} numeric, {ft['categorical']} categorical). "
        + "All figures on the held-out test window, after calibration unless marked raw.\n"
    )


def run_notes(res: dict) -> list[str]:
    ft = res["feature_table"]
    odd = []
    if ft["columns_not_in_card"]:
        odd.append(f"columns in the table but not in the card (not used): {', '.join(ft['columns_not_in_card'])}")
    if ft["all_null_in_train"]:
        odd.append(f"all-null in train: {', '.join(ft['all_null_in_train'])}")
    if ft["constant_in_train"]:
        odd.append(f"constant in train: {', '.join(ft['constant_in_train'])}")
    hi_card = {k: v for k, v in ft["categorical_cardinality_in_train"].items() if v > 1000}
    if hi_card:
        odd.append(
            "categorical features with > 1000 levels in train (near-identifiers for native "
            "categorical splits): " + ", ".join(hi_card)
        )
    if ft["strong_single_features"]:
        odd.append("single features with test AUC far from 0.5 on their own: " + ", ".join(s["feature"] for s in ft["strong_single_features"]))
    if not all(c["match"] for c in res["window_checks"]):
        odd.append("window row counts differ from the model card (see window_checks in the JSON)")
    if res["models"][0].get("test_predictions") and res["models"][0]["test_predictions"]["max_abs_difference_from_metrics_json"] > 1e-9:
        odd.append("our re-scored test predictions differ from metrics.json (pooled figures for ours are suspect)")
    return odd


def run_markdown(res: dict) -> str:
    """One seed: the model table and a few lines (the summary comes after all seeds)."""
    win = {c["window"]: c for c in res["window_checks"]}
    te = win["test"]
    lines = [
        f"### {res['profile']}" + (f", seed {res['seed']}" if res["seed"] is not None else "")
        + f" — model {res['model_version']}; test {te['rows']:,} anchors, {te['positives']:,} repurchased "
        f"({te['positives'] / max(te['rows'], 1):.1%}); train {win['train']['rows']:,}, validation {win['validation']['rows']:,}",
        "",
        "| model | ROC-AUC | ROC-AUC raw | PR-AUC | Brier | log loss | ECE | calibration | rounds | fit s |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for m in res["models"]:
        t, r = m["test"], m.get("test_raw") or {}
        lines.append(
            "| {model} | {auc} | {raw} | {ap} | {brier} | {ll} | {ece} | {cal} | {it} | {fit} |".format(
                model=m["model"],
                auc=fmt(t["roc_auc"]),
                raw=fmt(r.get("roc_auc")),
                ap=fmt(t["pr_auc"]),
                brier=fmt(t["brier"]),
                ll=fmt(t["log_loss"]),
                ece=fmt(t["ece"]),
                cal=m.get("calibration") or ("true p" if m["model"].startswith("oracle") else "n/a"),
                it=m.get("iterations") if m.get("iterations") is not None else "—",
                fit=fmt(m.get("fit_seconds"), 2) if "fit_seconds" in m else "—",
            )
        )
    g, goals = res["gaps"], res["gaps"]["goals"]
    raw = f", raw {g['auc_gap_vs_best_peer_raw']:+.4f}" if g["auc_gap_vs_best_peer_raw"] is not None else ""
    fl = g["ece_noise_floor"]
    ci = g.get("ours_test_auc_ci95")
    lines.append("")
    lines.append(
        f"goals: ours − best peer ROC-AUC {g['auc_gap_vs_best_peer']:+.4f} vs {g['best_peer']}{raw} "
        f"({status(goals['auc_gap_vs_best_peer >= -0.005'])}); "
        + (
            f"ours / oracle {fmt(g['ours_over_oracle_auc'])} ({status(goals['ours_over_oracle_auc >= 0.98'])}); "
            if g["ours_over_oracle_auc"] is not None
            else "no oracle; "
        )
        + f"ECE {g['ours_ece']:.4f} ({status(goals['ours_ece <= 0.01'])}). "
        f"A perfectly calibrated model on these {fl['rows']:,} rows shows ECE {fl['mean']:.4f} on average "
        f"(p90 {fl['p90']:.4f}, > 0.01 in {fl['share_above_goal']:.0%} of draws)"
        + (f"; our ROC-AUC 95% bootstrap interval [{ci[0]:.3f}, {ci[1]:.3f}]." if ci else ".")
    )
    demo = res["demo"]
    walls = f"wall {res['wall_seconds']:.1f} s"
    if demo["wall_seconds"] is not None:
        walls += f" + demo {demo['wall_seconds']:.1f} s"
    elif demo["reused"]:
        walls += " (demo reused" + (f", finished {demo['finished_at']}" if demo.get("finished_at") else "") + ")"
    other = res["environment"].get("other_processes_cores")
    fit_other = [m.get("other_processes_cores_during_fit") for m in res["models"]]
    worst = max([o for o in fit_other + [other] if o is not None], default=0.0)
    if other is not None:
        walls += f"; other processes used {other:.2f} cores meanwhile"
        if worst > 0.25:
            walls += f" (up to {worst:.2f} during a peer fit: fit times inflated, the OpenMP peers most)"
    lines.append(walls + ".")
    return "\n".join(lines)


def summary_markdown(prof: dict) -> str:
    s = prof["summary"]
    runs = prof["runs"]
    n = len(runs)
    if n == 1:
        return (
            f"(one run of the {prof['profile']} profile, nothing to summarise across seeds: "
            "`--seeds N` runs N data seeds, `--reuse` reuses their folders)"
        )
    seeds = ", ".join(str(x) for x in s["seeds"])
    rows = " / ".join(f"{r:,}" for r in s["test_rows_per_seed"])
    lines = [
        f"### {prof['profile']} profile: summary over {n} seed{'s' if n != 1 else ''} ({seeds})",
        "",
        f"Test windows of {rows} anchors. Per-seed columns: mean ± sample standard deviation across seeds. "
        "Pooled columns: the calibrated test predictions and labels of all seeds concatenated"
        + (f" ({s['pooled']['rows']:,} rows, {s['pooled']['positives']:,} repurchased)" if s["pooled"] else "")
        + ", each metric computed once on them.",
        "",
        "| model | ROC-AUC | pooled ROC-AUC | PR-AUC | Brier | ECE | pooled ECE | fit s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in s["models"]:
        pooled = m["pooled"] or {}
        lines.append(
            f"| {m['model']} | {fmt_ms(m['roc_auc'])} | {fmt(pooled.get('roc_auc'))} | {fmt_ms(m['pr_auc'])} | "
            f"{fmt_ms(m['brier'])} | {fmt_ms(m['ece'])} | {fmt(pooled.get('ece'))} | {fmt_ms(m['fit_seconds'], 2)} |"
        )
    om, po = s["on_means"], s["pooled"]
    gap_seed = om["auc_gap_vs_best_peer_per_seed"]
    per_seed = ", ".join(fmt(v, 4) if v is None else f"{v:+.4f}" for v in gap_seed["values"])
    lines += [
        "",
        "| goal | on the means | on the pooled test rows | target | means / pooled |",
        "|---|---:|---:|---:|---|",
        f"| ours − best peer ROC-AUC | {om['auc_gap_vs_best_peer']:+.4f} (vs {om['best_peer']}) | "
        + (f"{po['auc_gap_vs_best_peer']:+.4f} (vs {po['best_peer']})" if po else "n/a")
        + f" | ≥ −0.005 | {status(om['goals']['auc_gap_vs_best_peer >= -0.005'])} / {status(po['goals']['auc_gap_vs_best_peer >= -0.005']) if po else 'n/a'} |",
        f"| ours / oracle ROC-AUC | {fmt(om['ours_over_oracle_auc'])} | {fmt(po['ours_over_oracle_auc']) if po else 'n/a'} | ≥ 0.98 | "
        f"{status(om['goals']['ours_over_oracle_auc >= 0.98'])} / {status(po['goals']['ours_over_oracle_auc >= 0.98']) if po else 'n/a'} |",
        f"| our test ECE | {om['ours_ece']:.4f} | {fmt(po['ours_ece']) if po else 'n/a'} | ≤ 0.01 | "
        f"{status(om['goals']['ours_ece <= 0.01'])} / {status(po['goals']['ours_ece <= 0.01']) if po else 'n/a'} |",
        "",
        f"- ours − {om['best_peer']} ROC-AUC seed by seed: {per_seed}"
        + (f" (sd {gap_seed['sd']:.4f})" if gap_seed["sd"] is not None else "")
        + (
            "; ours / oracle seed by seed: " + ", ".join(fmt(v) for v in om["ours_over_oracle_auc_per_seed"]["values"])
            if om["ours_over_oracle_auc_per_seed"]
            else ""
        )
        + ".",
    ]
    fs = om["ece_noise_floor_per_seed"]
    lines.append(
        f"- ECE noise floor (a perfectly calibrated model, outcomes drawn from {fs['from']}, 500 draws): "
        f"on one seed's test window it averages {fs['mean']:.4f} (p90 {fs['p90']:.4f}, > 0.01 in "
        f"{fs['share_above_goal']:.0%} of draws), so the ECE mean across seeds carries that floor"
        + (
            f"; on the {po['ece_noise_floor']['rows']:,} pooled rows"
            + (f" (outcomes drawn from {po['ece_noise_floor']['from']})" if not po["ece_noise_floor"]["from"].startswith(fs["from"]) else "")
            + f" it averages {po['ece_noise_floor']['mean']:.4f} "
            f"(p90 {po['ece_noise_floor']['p90']:.4f}, > 0.01 in {po['ece_noise_floor']['share_above_goal']:.0%} of draws)."
            if po
            else "."
        )
    )
    if po:
        lines.append(
            "- pooling puts the seeds' separately trained and calibrated models on one scale, so the "
            "pooled ROC-AUC also asks that their probabilities rank consistently across data sets."
        )
    timing = f"- fit s: ours = {runs[0]['models'][0]['fit_seconds_source']}; peers = wall time of fitting with early stopping (calibration not included)."
    lines.append(timing)
    loaded = [
        r["seed"]
        for r in runs
        if max([o for o in [r["environment"].get("other_processes_cores")] + [m.get("other_processes_cores_during_fit") for m in r["models"]] if o is not None], default=0.0) > 0.25
    ]
    if loaded:
        lines.append(
            f"- other processes used more than 0.25 cores during seed{'s' if len(loaded) > 1 else ''} "
            f"{', '.join(str(x) for x in loaded)}: those fit times are inflated and only roughly comparable."
        )
    notes: dict[str, list] = {}
    for r in runs:
        for o in run_notes(r):
            notes.setdefault(o, []).append(r["seed"])
    for o, where in notes.items():
        suffix = "" if len(where) == n else " (seed " + ", ".join(str(x) for x in where) + ")"
        lines.append(f"- note: {o}{suffix}")
    env = prof["environment"]
    other = env.get("other_processes_cores")
    lines.append(
        f"- wall time {prof['wall_seconds']:.1f} s for this profile"
        + (f"; other processes kept {other:.2f} of {env['cpus']} cores busy on average" if other is not None else "")
        + "."
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000, help="customers to generate (default 100000)")
    ap.add_argument("--profile", action="append", choices=["signal", "thelook"], help="profile to run; repeat for several (default: signal and thelook)")
    ap.add_argument("--seed", type=int, default=42, help="first data seed (default 42, the demo's); the seeds are SEED, SEED+1, …")
    ap.add_argument("--seeds", type=int, help="how many data seeds to run per profile (default 3; 1 with --skip-demo)")
    ap.add_argument("--binary", default=f"{DEFAULT_TARGET}/debug/repurchase", help="the repurchase binary (default $CARGO_TARGET_DIR/debug/repurchase)")
    ap.add_argument("--work-dir", default=str(BENCH_DIR / "results" / "data"), help="where demo folders <profile>-<users>-seed<k>/ go (default bench/results/data)")
    ap.add_argument("--reuse", action="store_true", help="reuse a seed's demo folder under --work-dir when a demo with the same users, profile and seed finished there (it records peers-demo.json); run the demo otherwise")
    ap.add_argument("--skip-demo", metavar="DIR", help="benchmark one existing demo folder instead of running demos: DIR itself (it has lake/), DIR/<profile>-<users>-seed<seed>, DIR/<profile>-<users> or DIR/<profile>")
    ap.add_argument("--out", default=str(BENCH_DIR / "results" / "peers-{profile}.json"), help="JSON output; {profile} is replaced (default bench/results/peers-{profile}.json)")
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--max-rounds", type=int, default=2000)
    ap.add_argument("--early-stopping", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for the peers (default: all cores, as forust uses)")
    ap.add_argument("--peer-seed", type=int, default=0)
    args = ap.parse_args()

    profiles = args.profile or ["signal", "thelook"]
    if args.skip_demo and args.reuse:
        ap.error("--skip-demo reads one given folder, --reuse the per-seed folders under --work-dir; pick one")
    if args.skip_demo and args.seeds not in (None, 1):
        ap.error("--skip-demo reads one folder (one seed); for several seeds use --reuse")
    n_seeds = args.seeds if args.seeds is not None else (1 if args.skip_demo else 3)
    if n_seeds < 1:
        ap.error("--seeds must be at least 1")
    seeds = [args.seed + k for k in range(n_seeds)]
    if len(profiles) > 1 and "{profile}" not in args.out:
        ap.error("--out needs a {profile} placeholder when several profiles run")
    if args.skip_demo and len(profiles) > 1 and (Path(args.skip_demo) / "lake").is_dir():
        ap.error("--skip-demo DIR holds one demo (DIR/lake); pick its --profile")
    if not args.skip_demo and not os.access(args.binary, os.X_OK):
        ap.error(f"no executable at {args.binary}; build it or pass --binary")

    started = time.perf_counter()
    for profile in profiles:
        prof = bench_profile(profile, args, seeds)
        out = Path(args.out.replace("{profile}", profile))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(public(prof), indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")
        print(summary_markdown(prof))
        print(f"\n(JSON: {out})\n", flush=True)
    total = time.perf_counter() - started
    print(f"total wall time {total:.1f} s ({total / 60:.1f} min) for {len(profiles)} profile(s) × {len(seeds)} seed(s).")
    log(f"all profiles done in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
