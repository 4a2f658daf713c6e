#!/usr/bin/env python3
"""The pipeline at 1×, 10× (and 30×) TheLook scale, stage by stage, next to DuckDB and LightGBM.

For each scale (1× = 100,000 users, ~2.4M events with the default `thelook` data profile) it:

1. generates the TheLook CSV export (`repurchase generate --format csv`) into WORK/xN/source;
2. runs the five workers as separate processes, as production does — extract (from the CSV
   export), build-features, train, calibrate, score — on WORK/xN/lake;
3. runs the same feature logic in DuckDB (bench/duckdb/anchors.sql via bench/duckdb/features.py,
   threads = 2) over the same raw Parquet partitions, writing Parquet, in its own process;
4. checks that DuckDB's feature table equals ours (bench/duckdb/check.py: same anchors, every
   column equal, floats within 1e-9 relative). On the first scale a mismatch stops the benchmark
   before anything is reported: a benchmark of different logic is worthless;
5. fits LightGBM (bench/peers.py's fit: same feature columns from the model card, same
   train / validation / test windows, early stopping on validation, isotonic calibration) in its
   own process, and reads our held-out test AUC from calibration/metrics.json;
6. measures scoring throughput: `score` over a scratch data root whose features/score partition
   lists features/train's file K times (hard links), K chosen for ≥ 2M rows, since the real score
   partition (open windows) holds only a few thousand rows;
7. runs the head-to-head pairs N - 1 more times (--repeat N, default 3), alternating ours and the peer
   (build-features / DuckDB, train / LightGBM, scoring throughput); the summary and the goals then
   use each one's median wall time (LightGBM: median read + fit), since single runs on a small
   shared machine vary by ±0.4 s at 1× and ±1 s at 10×.

Every process is measured from the parent with os.wait4: wall time, user + system CPU time and
peak RSS (ru_maxrss). It prints one table per scale, a summary with ratios and the goals, and writes
everything to bench/results/scale.json. Run it through bench/scale, which sets up the virtualenv
and builds the binaries.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "duckdb"))

USERS_1X = 100_000
WORKERS = ["extract", "build-features", "train", "calibrate", "score"]
BINARIES = WORKERS + ["repurchase"]
SCORE_THROUGHPUT_ROWS = 2_000_000

# Goals (issue 7).
GOAL_PIPELINE_1X_S = 10.0
GOAL_FEATURES_VS_DUCKDB = 1.0
GOAL_FEATURES_RSS_GIB = 4.0
GOAL_TRAIN_VS_LIGHTGBM = 1.0
GOAL_AUC_GAP = 0.003
GOAL_SCORE_ROWS_PER_S = 2_000_000


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Measuring one child process.
# ---------------------------------------------------------------------------------------------


class Failed(Exception):
    """A stage failed, timed out or passed the RSS limit; carries its measurement."""

    def __init__(self, msg: str, stage: str | None = None, measure: dict | None = None):
        super().__init__(msg)
        self.stage, self.measure = stage, measure


RSS_LIMIT_BYTES: int | None = None  # set from --rss-limit-gib in main()


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def measured(name: str, cmd: list[str], logs: Path, timeout: float, env: dict | None = None) -> dict:
    """Runs cmd as a child (stdout → logs/<name>.out, stderr → logs/<name>.err), reaps it with
    os.wait4 and returns its wall time, user/system CPU time and peak RSS. Kills only that child
    (by pid) when it outlives `timeout` seconds or its resident memory passes RSS_LIMIT_BYTES
    (polled every 0.1 s), so that a scale too large for the machine fails alone instead of
    waking the OOM killer for everyone."""
    import peers  # CpuWatch: how busy other processes kept the machine meanwhile

    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{name}.out", logs / f"{name}.err"
    log(f"{name}: {' '.join(cmd)}")
    watch = peers.CpuWatch()
    load0 = os.getloadavg()[0]
    timed_out = threading.Event()
    over_rss = threading.Event()
    done = threading.Event()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO_DIR)

        def kill():
            timed_out.set()
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()

        def guard():
            while not done.wait(0.1):
                rss = rss_bytes(proc.pid)
                if RSS_LIMIT_BYTES and rss and rss > RSS_LIMIT_BYTES:
                    over_rss.set()
                    try:
                        os.kill(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    return

        watcher = threading.Thread(target=guard, daemon=True)
        watcher.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            done.set()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    res = {
        "command": cmd,
        "exit": proc.returncode,
        "wall_s": wall,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_bytes": ru.ru_maxrss * 1024,  # KiB on Linux
        "other_processes_cores": watch.other_cores(),
        "load_average_at_start": load0,
        "stdout": str(out_path),
        "stderr": str(err_path),
        "timed_out": timed_out.is_set(),
    }
    log(
        f"{name}: exit {res['exit']}, wall {wall:.2f} s, cpu {res['cpu_s']:.2f} s, "
        f"peak RSS {res['peak_rss_bytes'] / 2**20:.0f} MiB"
        + (f", other processes ~{res['other_processes_cores']:.2f} cores" if res["other_processes_cores"] is not None else "")
    )
    res["killed_over_rss_limit"] = over_rss.is_set()
    if over_rss.is_set():
        raise Failed(
            f"{name} passed the RSS limit of {RSS_LIMIT_BYTES / 2**30:.1f} GiB after {wall:.0f} s and was killed "
            f"(--rss-limit-gib); logs: {err_path}",
            name,
            res,
        )
    if res["timed_out"] and not over_rss.is_set():
        raise Failed(f"{name} took longer than {timeout:.0f} s and was killed; logs: {err_path}", name, res)
    if res["exit"] != 0:
        tail = "\n".join(err_path.read_text(errors="replace").strip().splitlines()[-8:])
        raise Failed(f"{name} failed (exit {res['exit']}); {err_path}:\n{tail}", name, res)
    return res


# ---------------------------------------------------------------------------------------------
# Lake helpers.
# ---------------------------------------------------------------------------------------------


def manifest(lake: Path, dataset: str, run_date: str) -> dict:
    return json.loads((lake / dataset / f"run_date={run_date}" / "_manifest.json").read_text())


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def snapshot_binaries(bin_dir: Path, dest: Path) -> dict:
    """Hard links (else copies) of the binaries, so that a build finishing during the benchmark
    cannot swap a binary between two stages."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    out = {}
    for b in BINARIES:
        src = bin_dir / b
        if not os.access(src, os.X_OK):
            raise SystemExit(f"no executable {src}: build first (bench/scale does) or pass --bin-dir")
        link_or_copy(src, dest / b)
        out[b] = {"path": str(src), "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(src.stat().st_mtime))}
    return out


def score_throughput_root(lake: Path, run_date: str, root: Path) -> tuple[int, int]:
    """A scratch data root for measuring scoring speed: the model and its calibration, and a
    features/score partition listing features/train's Parquet file K times (hard links), so
    that score reads K × train rows. features/train has no repurchased_so_far column, so score
    skips no row (as bench/peers.py relies on)."""
    if root.exists():
        shutil.rmtree(root)
    part = f"run_date={run_date}"
    shutil.copytree(lake / "models" / part, root / "models" / part)
    src = lake / "features" / "train" / part
    m = json.loads((src / "_manifest.json").read_text())
    files = [f for f in m["files"] if f["name"].endswith(".parquet")]
    rows = sum(f["rows"] for f in files)
    k = max(1, math.ceil(SCORE_THROUGHPUT_ROWS / max(rows, 1)))
    dst = root / "features" / "score" / part
    dst.mkdir(parents=True)
    listed = []
    for i in range(k):
        for f in files:
            name = f"copy{i:04d}-{f['name']}"
            link_or_copy(src / f["name"], dst / name)
            listed.append(dict(f, name=name))
    m = dict(m, dataset="features/score", files=listed, row_count=rows * k)
    (dst / "_manifest.json").write_text(json.dumps(m, indent=2))
    return k, rows * k


# ---------------------------------------------------------------------------------------------
# LightGBM, in its own process (bench/scale.py --lightgbm-child).
# ---------------------------------------------------------------------------------------------


def lightgbm_child(lake: Path, run_date: str, threads: int) -> int:
    """Reads features/train and the model card exactly as bench/peers.py does, fits LightGBM with
    peers.fit_lightgbm (early stopping on the validation window) and calibrates it with
    peers.calibrated_peer (isotonic on validation); prints the figures as JSON on stdout."""
    t0 = time.perf_counter()
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    import peers

    imported = time.perf_counter()
    card = json.loads((lake / "models" / f"run_date={run_date}" / "model_card.json").read_text())
    table, _ = peers.read_features(lake, run_date)
    features = card["features"]
    anchor = peers.anchor_micros(table.column("anchor_time"))
    y = np.asarray(pc.cast(table.column("label"), pa.int64()).to_numpy(zero_copy_only=False)) == 1
    w = card["windows"]
    parts = {
        "train": np.flatnonzero(anchor < w["train_end_us"]),
        "valid": np.flatnonzero((anchor >= w["valid_start_us"]) & (anchor < w["valid_end_us"])),
        "test": np.flatnonzero((anchor >= w["test_start_us"]) & (anchor < w["test_end_us"])),
    }
    checks = {}
    for ours_key, part in [("train", "train"), ("validation", "valid"), ("test", "test")]:
        want = card[ours_key]
        got = (len(parts[part]), int(y[parts[part]].sum()))
        checks[ours_key] = {"rows": got[0], "positives": got[1], "match": got == (want["rows"], want["positives"])}
    X = peers.to_frame(table, features)
    read_done = time.perf_counter()
    args = argparse.Namespace(learning_rate=0.05, peer_seed=0, threads=threads, max_rounds=2000, early_stopping=100)
    fitted = peers.fit_lightgbm(X, y, parts, features, args)
    peer = peers.calibrated_peer(fitted, y, parts)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "model": peer["model"],
                "iterations": peer["iterations"],
                "params": peer["params"],
                "import_s": imported - t0,
                "read_s": read_done - imported,
                "fit_s": fitted["fit_seconds"],
                "read_fit_s": (read_done - imported) + fitted["fit_seconds"],
                "total_in_process_s": done - t0,
                "test_auc": peer["test"]["roc_auc"],
                "test_auc_raw": peer["test_raw"]["roc_auc"],
                "test_rows": peer["test"]["rows"],
                "features": len(features),
                "train_rows": int(len(parts["train"])),
                "window_checks": checks,
            }
        )
    )
    return 0


def fit_step_seconds(stderr_path: Path) -> float | None:
    """duration_ms of the trainer's `fit` step in its JSON log (peers.fit_step_seconds)."""
    import peers

    return peers.fit_step_seconds(stderr_path.read_text(errors="replace"))


# ---------------------------------------------------------------------------------------------
# One scale.
# ---------------------------------------------------------------------------------------------


def run_duckdb(base: Path, lake: Path, d: str, py: str, args, logs: Path, timeout: float,
               name: str = "duckdb-features") -> dict:
    duck_out = base / "duckdb-features"
    if duck_out.exists():
        shutil.rmtree(duck_out)
    cmd = [py, str(BENCH_DIR / "duckdb" / "features.py"), "--data-root", str(lake), "--run-date", d,
           "--out", str(duck_out), "--threads", str(args.threads)]
    m = measured(name, cmd, logs, timeout)
    m["report"] = json.loads(Path(m["stdout"]).read_text())
    m["rows_out"] = m["report"]["anchors"]
    return m


def run_scale(scale: int, args, bins: Path, py: str, check_must_pass: bool, res: dict) -> dict:
    users = USERS_1X * scale
    base = Path(args.work_dir) / f"x{scale}"
    source, lake, logs = base / "source", base / "lake", base / "logs"
    d = args.run_date
    res.update({"scale": scale, "users": users, "dir": str(base), "stages": {}, "status": "running"})
    st = res["stages"]
    env = dict(os.environ, REPURCHASE_LOG_FORMAT="json")
    timeout = args.stage_timeout

    # 1. Generate (or reuse an export generated with the same parameters).
    marker = base / "generate.json"
    want = {"users": users, "seed": args.seed, "end_date": d, "profile": args.data_profile, "format": "csv"}
    old = json.loads(marker.read_text()) if (args.reuse and marker.exists()) else None
    if old and old.get("params") == want and source.is_dir():
        log(f"x{scale}: reusing the export in {source} (generated earlier: {old['measure']['wall_s']:.1f} s)")
        st["generate"] = dict(old["measure"], reused=True)
    else:
        marker.unlink(missing_ok=True)
        for p in (source, lake):
            if p.exists():
                shutil.rmtree(p)
        base.mkdir(parents=True, exist_ok=True)
        cmd = [str(bins / "repurchase"), "generate", "--users", str(users), "--seed", str(args.seed),
               "--end-date", d, "--out", str(source), "--profile", args.data_profile, "--format", "csv"]
        st["generate"] = measured("generate", cmd, logs, timeout, env)
        marker.write_text(json.dumps({"params": want, "measure": st["generate"]}, indent=2))
    st["generate"]["source_bytes"] = dir_bytes(source)

    # 2. The five workers, each its own process.
    if lake.exists():
        shutil.rmtree(lake)
    common = ["--run-date", d, "--data-root", str(lake), "--log-format", "json"]
    st["extract"] = measured("extract", [str(bins / "extract"), *common, "--source", str(source)], logs, timeout, env)
    raw_rows = {}
    for t in sorted(p.name for p in (lake / "raw").iterdir()):
        raw_rows[t] = manifest(lake, f"raw/{t}", d)["row_count"]
    st["extract"]["rows_out"] = sum(raw_rows.values())
    res["raw_rows"] = raw_rows
    res["raw_bytes"] = dir_bytes(lake / "raw")

    try:
        st["build-features"] = measured("build-features", [str(bins / "build-features"), *common], logs, timeout, env)
    except Failed as e:
        st["build-features"] = dict(e.measure or {}, failed=str(e))
        # For reference, DuckDB over the same raw partitions (no check possible), then stop.
        try:
            st["duckdb-features"] = run_duckdb(base, lake, d, py, args, logs, timeout)
        except Failed as e2:
            st["duckdb-features"] = dict(e2.measure or {}, failed=str(e2))
        raise
    ftrain, fscore = manifest(lake, "features/train", d), manifest(lake, "features/score", d)
    st["build-features"]["rows_out"] = ftrain["row_count"] + fscore["row_count"]
    res["features"] = {"train_rows": ftrain["row_count"], "score_rows": fscore["row_count"],
                       "positives": ftrain["counters"].get("positives"), "code_version": ftrain.get("code_version")}

    st["train"] = measured("train", [str(bins / "train"), *common], logs, timeout, env)
    st["train"]["fit_step_s"] = fit_step_seconds(Path(st["train"]["stderr"]))
    card = json.loads((lake / "models" / f"run_date={d}" / "model_card.json").read_text())
    st["train"]["rows_out"] = card["train"]["rows"]
    st["train"]["iterations"] = card.get("iterations")

    st["calibrate"] = measured("calibrate", [str(bins / "calibrate"), *common], logs, timeout, env)
    metrics = json.loads((lake / "models" / f"run_date={d}" / "calibration" / "metrics.json").read_text())
    st["calibrate"]["rows_out"] = metrics["test"]["rows"]

    st["score"] = measured("score", [str(bins / "score"), *common], logs, timeout, env)
    st["score"]["rows_out"] = manifest(lake, "scores", d)["row_count"]
    res["pipeline_wall_s"] = sum(st[s]["wall_s"] for s in WORKERS)
    res["pipeline_cpu_s"] = sum(st[s]["cpu_s"] for s in WORKERS)

    # 3. DuckDB, same SQL logic over the same raw Parquet.
    duck_out = base / "duckdb-features"
    st["duckdb-features"] = run_duckdb(base, lake, d, py, args, logs, timeout)

    # 4. Same logic? (always; fatal on the first scale)
    import check

    t = time.perf_counter()
    res["check"] = check.compare(lake, d, duck_out)
    res["check"]["seconds"] = time.perf_counter() - t
    text = check.describe(res["check"])
    print(f"\nx{scale} DuckDB vs build-features check ({res['check']['seconds']:.1f} s):\n{text}\n", flush=True)
    if not res["check"]["ok"]:
        res["status"] = "check failed"
        if check_must_pass:
            return res

    # 5. LightGBM on the same feature table and windows.
    lightgbm_cmd = [py, str(Path(__file__).resolve()), "--lightgbm-child", "--lake", str(lake), "--run-date", d,
                    "--threads", str(args.threads)]
    st["lightgbm"] = measured("lightgbm", lightgbm_cmd, logs, timeout)
    st["lightgbm"]["report"] = json.loads(Path(st["lightgbm"]["stdout"]).read_text())
    st["lightgbm"]["rows_out"] = st["lightgbm"]["report"]["train_rows"]
    res["auc"] = {
        "ours_test_auc": metrics["test"]["roc_auc"],
        "ours_test_auc_raw": (metrics.get("test_raw") or {}).get("roc_auc"),
        "ours_calibration": (metrics.get("calibration") or {}).get("chosen", {}).get("method")
        if isinstance(metrics.get("calibration"), dict) else metrics.get("calibration"),
        "lightgbm_test_auc": st["lightgbm"]["report"]["test_auc"],
        "lightgbm_test_auc_raw": st["lightgbm"]["report"]["test_auc_raw"],
        "test_rows": metrics["test"]["rows"],
        "test_positives": metrics["test"]["positives"],
    }

    # 6. Scoring throughput on ≥ 2M rows.
    tp_root = base / "score-throughput"
    k, rows = score_throughput_root(lake, d, tp_root)
    tp_common = ["--run-date", d, "--data-root", str(tp_root), "--log-format", "json"]
    st["score-throughput"] = measured("score-throughput", [str(bins / "score"), *tp_common], logs, timeout, env)
    scored = manifest(tp_root, "scores", d)["row_count"]
    st["score-throughput"].update(rows_out=scored, copies_of_train=k, rows_in=rows,
                                  rows_per_s=scored / st["score-throughput"]["wall_s"])

    # 7. Repeats of the head-to-head stages, ours and the peer alternating (--repeat).
    runs = {"build-features": [st["build-features"]["wall_s"]],
            "duckdb-features": [st["duckdb-features"]["wall_s"]],
            "train": [st["train"]["wall_s"]],
            "lightgbm_read_fit": [st["lightgbm"]["report"]["read_fit_s"]],
            "score-throughput": [st["score-throughput"]["wall_s"]]}
    for k in range(2, args.repeat + 1):
        runs["build-features"].append(
            measured(f"build-features-{k}", [str(bins / "build-features"), *common], logs, timeout, env)["wall_s"])
        runs["duckdb-features"].append(run_duckdb(base, lake, d, py, args, logs, timeout, f"duckdb-features-{k}")["wall_s"])
        runs["train"].append(measured(f"train-{k}", [str(bins / "train"), *common], logs, timeout, env)["wall_s"])
        # Republishing the model unpublishes its calibration: calibrate again (same bytes).
        measured(f"calibrate-{k}", [str(bins / "calibrate"), *common], logs, timeout, env)
        lg = measured(f"lightgbm-{k}", lightgbm_cmd, logs, timeout)
        runs["lightgbm_read_fit"].append(json.loads(Path(lg["stdout"]).read_text())["read_fit_s"])
        runs["score-throughput"].append(
            measured(f"score-throughput-{k}", [str(bins / "score"), *tp_common], logs, timeout, env)["wall_s"])
    res["runs"] = runs
    shutil.rmtree(tp_root)
    res["status"] = "ok" if res["check"]["ok"] else "check failed"
    return res


# ---------------------------------------------------------------------------------------------
# Reporting.
# ---------------------------------------------------------------------------------------------


def mib(b) -> str:
    return f"{b / 2**20:,.0f}" if b is not None else "–"


def f2(v, digits=2) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return a / b if (a is not None and b) else None


def scale_table(r: dict, profile_label: str) -> str:
    st = r["stages"]
    events = r.get("raw_rows", {}).get("events")
    lines = [
        f"### {r['scale']}× — {r['users']:,} users"
        + (f", {events:,} events" if events else "")
        + (f", {sum(r['raw_rows'].values()):,} raw rows" if r.get("raw_rows") else "")
        + f" ({profile_label})",
        "",
        "| stage | wall s | CPU s | CPU / wall | peak RSS MiB | rows out | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    notes = {
        "generate": lambda s: ("reused export; " if s.get("reused") else "") + f"CSV export {s.get('source_bytes', 0) / 2**30:.2f} GiB",
        "extract": lambda s: f"raw Parquet {r.get('raw_bytes', 0) / 2**20:,.0f} MiB",
        "build-features": lambda s: f"FAILED: {s['failed'].splitlines()[0]}" if s.get("failed") else f"{r['features']['train_rows']:,} labelled, {r['features']['score_rows']:,} open",
        "train": lambda s: f"{s.get('iterations')} trees; fit step {f2(s.get('fit_step_s'))} s",
        "calibrate": lambda s: f"test window {s.get('rows_out'):,} anchors",
        "score": lambda s: "open windows only",
        "duckdb-features": lambda s: f"FAILED: {s['failed'].splitlines()[0]}" if s.get("failed") else f"DuckDB {s['report']['duckdb_version']}, threads {s['report']['settings'].get('threads')}; query {s['report']['query_seconds']:.2f} s + write {s['report']['write_seconds']:.2f} s",
        "lightgbm": lambda s: f"{s['report']['model']}, {s['report']['iterations']} rounds; read {s['report']['read_s']:.2f} s + fit {s['report']['fit_s']:.2f} s (imports {s['report']['import_s']:.2f} s)",
        "score-throughput": lambda s: f"features/train ×{s['copies_of_train']}: {s['rows_per_s']:,.0f} rows/s",
    }
    for name in ["generate", *WORKERS, "duckdb-features", "lightgbm", "score-throughput"]:
        s = st.get(name)
        if not s:
            continue
        try:
            note = notes[name](s)
        except (KeyError, TypeError):
            note = ""
        if s.get("other_processes_cores") and s["other_processes_cores"] > 0.3:
            note += f"; other processes ~{s['other_processes_cores']:.1f} cores"
        rows = s.get("rows_out")
        lines.append(
            f"| {name} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {ratio(s['cpu_s'], s['wall_s']) or 0:.2f} | "
            f"{mib(s['peak_rss_bytes'])} | {f'{rows:,}' if rows is not None else '–'} | {note} |"
        )
    if "pipeline_wall_s" in r:
        lines.append(f"| **pipeline** (extract → score) | **{r['pipeline_wall_s']:.2f}** | {r['pipeline_cpu_s']:.2f} | | | | from the CSV export |")
    return "\n".join(lines)


def summarize(results: list[dict]) -> dict:
    rows = []
    for r in results:
        st = r["stages"]
        if r.get("status") != "ok":
            continue
        lg = st["lightgbm"]["report"]
        a = r["auc"]
        runs = r.get("runs") or {}

        def med(key, single):
            return statistics.median(runs[key]) if runs.get(key) else single

        features_s = med("build-features", st["build-features"]["wall_s"])
        duckdb_s = med("duckdb-features", st["duckdb-features"]["wall_s"])
        train_s = med("train", st["train"]["wall_s"])
        lightgbm_s = med("lightgbm_read_fit", lg["read_fit_s"])
        score_s = med("score-throughput", st["score-throughput"]["wall_s"])
        rows.append({
            "runs": len(runs.get("train") or [1]),
            "scale": r["scale"],
            "users": r["users"],
            "events": r["raw_rows"].get("events"),
            "raw_rows": sum(r["raw_rows"].values()),
            "generate_wall_s": st["generate"]["wall_s"],
            "generate_peak_rss_bytes": st["generate"]["peak_rss_bytes"],
            "pipeline_wall_s": r["pipeline_wall_s"],
            "features_wall_s": features_s,
            "features_peak_rss_bytes": st["build-features"]["peak_rss_bytes"],
            "duckdb_wall_s": duckdb_s,
            "duckdb_peak_rss_bytes": st["duckdb-features"]["peak_rss_bytes"],
            "features_over_duckdb": ratio(features_s, duckdb_s),
            "train_wall_s": train_s,
            "train_fit_step_s": st["train"].get("fit_step_s"),
            "lightgbm_wall_s": st["lightgbm"]["wall_s"],
            "lightgbm_read_fit_s": lightgbm_s,
            "lightgbm_fit_s": lg["fit_s"],
            "train_over_lightgbm": ratio(train_s, lightgbm_s),
            "fit_over_lightgbm_fit": ratio(st["train"].get("fit_step_s"), lg["fit_s"]),
            "auc_ours_raw": a["ours_test_auc_raw"],
            "auc_lightgbm_raw": a["lightgbm_test_auc_raw"],
            "auc_diff_raw": (a["ours_test_auc_raw"] - a["lightgbm_test_auc_raw"]) if a["ours_test_auc_raw"] is not None else None,
            "auc_ours": a["ours_test_auc"],
            "auc_lightgbm": a["lightgbm_test_auc"],
            "auc_diff": a["ours_test_auc"] - a["lightgbm_test_auc"],
            "score_rows_per_s": st["score-throughput"]["rows_out"] / score_s,
            "score_throughput_rows": st["score-throughput"]["rows_out"],
            "max_peak_rss_bytes": max(s["peak_rss_bytes"] for k, s in st.items() if k in WORKERS),
        })
    growth = []
    by_scale = {r["scale"]: r for r in results if r.get("status") == "ok"}
    scales = sorted(by_scale)
    if len(scales) >= 2:
        s0 = scales[0]
        r0 = by_scale[s0]
        for s1 in scales[1:]:
            r1 = by_scale[s1]
            data = sum(r1["raw_rows"].values()) / sum(r0["raw_rows"].values())
            g = {"from": s0, "to": s1, "data_growth": data, "stages": {}}
            for name in ["generate", *WORKERS, "duckdb-features", "lightgbm"]:
                # Medians where the stage was repeated (--repeat), single runs otherwise.
                t0, t1 = (statistics.median((r.get("runs") or {}).get(name) or [r["stages"][name]["wall_s"]])
                          for r in (r0, r1))
                g["stages"][name] = {
                    "time_growth": t1 / t0,
                    "exponent": math.log(t1 / t0) / math.log(data) if data > 1 and t0 > 0 else None,
                }
            growth.append(g)
    return {"rows": rows, "growth": growth}


def median_note(r: dict) -> str:
    return f"; medians of {r['runs']} runs" if r.get("runs", 1) > 1 else ""


def goals(summary: dict, results: list[dict] | None = None) -> list[dict]:
    rows = {r["scale"]: r for r in summary["rows"]}
    out = []
    for r in results or []:
        bf = r.get("stages", {}).get("build-features") or {}
        if r.get("scale") == 10 and bf.get("failed"):
            dk = r["stages"].get("duckdb-features") or {}
            ref = (f"; DuckDB: {dk['wall_s']:.1f} s, peak RSS {dk['peak_rss_bytes'] / 2**30:.2f} GiB"
                   if dk.get("wall_s") is not None and not dk.get("failed") else "")
            out.append({"goal": "build-features at 10× ≤ 1.0× DuckDB, peak RSS ≤ 4 GiB",
                        "measured": f"did not finish: killed after {bf.get('wall_s', 0):.0f} s at "
                                    f"{bf.get('peak_rss_bytes', 0) / 2**30:.1f} GiB RSS{ref}",
                        "met": False})
    if 1 in rows:
        out.append({"goal": f"pipeline at 1× from the CSV export ≤ {GOAL_PIPELINE_1X_S:.0f} s",
                    "measured": f"{rows[1]['pipeline_wall_s']:.2f} s", "met": rows[1]["pipeline_wall_s"] <= GOAL_PIPELINE_1X_S})
    if 10 in rows:
        r = rows[10]
        out.append({"goal": "build-features at 10× ≤ 1.0× DuckDB",
                    "measured": f"{r['features_over_duckdb']:.2f}× ({r['features_wall_s']:.2f} s vs {r['duckdb_wall_s']:.2f} s{median_note(r)})",
                    "met": r["features_over_duckdb"] <= GOAL_FEATURES_VS_DUCKDB})
        out.append({"goal": f"build-features at 10× peak RSS ≤ {GOAL_FEATURES_RSS_GIB:.0f} GiB",
                    "measured": f"{r['features_peak_rss_bytes'] / 2**30:.2f} GiB",
                    "met": r["features_peak_rss_bytes"] <= GOAL_FEATURES_RSS_GIB * 2**30})
    for g in summary["growth"]:
        e = g["stages"]["build-features"]
        out.append({"goal": f"build-features time {g['from']}×→{g['to']}× no worse than linear in data",
                    "measured": f"time ×{e['time_growth']:.2f} for data ×{g['data_growth']:.2f} (exponent {f2(e['exponent'])})",
                    "met": e["time_growth"] <= g["data_growth"]})
    for r in summary["rows"]:
        out.append({"goal": f"train ≤ 1.0× LightGBM wall time ({r['scale']}×)",
                    "measured": f"{r['train_over_lightgbm']:.2f}× ({r['train_wall_s']:.2f} s worker vs {r['lightgbm_read_fit_s']:.2f} s LightGBM read + fit{median_note(r)})",
                    "met": r["train_over_lightgbm"] <= GOAL_TRAIN_VS_LIGHTGBM})
        if r["auc_diff_raw"] is not None:
            out.append({"goal": f"held-out AUC within {GOAL_AUC_GAP} of LightGBM ({r['scale']}×, raw)",
                        "measured": f"{r['auc_ours_raw']:.4f} vs {r['auc_lightgbm_raw']:.4f} ({r['auc_diff_raw']:+.4f})",
                        "met": r["auc_diff_raw"] >= -GOAL_AUC_GAP})
        out.append({"goal": f"scoring ≥ 2M rows/s incl. Parquet I/O ({r['scale']}×)",
                    "measured": f"{r['score_rows_per_s']:,.0f} rows/s ({r['score_throughput_rows']:,} rows{median_note(r)})",
                    "met": r["score_rows_per_s"] >= GOAL_SCORE_ROWS_PER_S})
    return out


def summary_markdown(summary: dict, goal_rows: list[dict], profile_label: str) -> str:
    lines = [f"### Summary ({profile_label})", "",
             "| scale | users | events | pipeline s | features s (ours / DuckDB) | ours ÷ DuckDB | features peak RSS MiB (ours / DuckDB) "
             "| train s (worker / LightGBM read+fit) | ours ÷ LightGBM | fit step ÷ LightGBM fit | test AUC raw (ours / LightGBM) | AUC diff | calibrated AUC diff | score rows/s | generate s / peak RSS MiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        lines.append(
            f"| {r['scale']}× | {r['users']:,} | {r['events']:,} | {r['pipeline_wall_s']:.2f} | "
            f"{r['features_wall_s']:.2f} / {r['duckdb_wall_s']:.2f} | {r['features_over_duckdb']:.2f} | "
            f"{mib(r['features_peak_rss_bytes'])} / {mib(r['duckdb_peak_rss_bytes'])} | "
            f"{r['train_wall_s']:.2f} / {r['lightgbm_read_fit_s']:.2f} | {r['train_over_lightgbm']:.2f} | {f2(r['fit_over_lightgbm_fit'])} | "
            f"{f2(r['auc_ours_raw'], 4)} / {f2(r['auc_lightgbm_raw'], 4)} | {f2(r['auc_diff_raw'], 4)} | {r['auc_diff']:+.4f} | "
            f"{r['score_rows_per_s']:,.0f} | {r['generate_wall_s']:.1f} / {mib(r['generate_peak_rss_bytes'])} |"
        )
    for g in summary["growth"]:
        lines += ["", f"Growth {g['from']}× → {g['to']}× (raw rows ×{g['data_growth']:.2f}): "
                  + ", ".join(f"{k} ×{v['time_growth']:.2f}" for k, v in g["stages"].items())]
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    for gl in goal_rows:
        lines.append(f"| {gl['goal']} | {gl['measured']} | {'yes' if gl['met'] else '**no**'} |")
    return "\n".join(lines)


def machine() -> dict:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "memory_bytes": mem, "kernel": platform.release(),
            "python": platform.python_version()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1,10", help="comma-separated multiples of 100,000 users (default 1,10; add 30 if memory allows)")
    ap.add_argument("--bin-dir", default=None, help="folder of the worker binaries (default $CARGO_TARGET_DIR/<release|debug>)")
    ap.add_argument("--profile", choices=["release", "dev"], default="release", help="which build's binaries (label and default --bin-dir)")
    ap.add_argument("--work-dir", default=str(BENCH_DIR / "results" / "scale-data"), help="data folders xN/ go here (default bench/results/scale-data)")
    ap.add_argument("--data-profile", default="thelook", choices=["thelook", "signal"], help="generator profile (default thelook: 1× ≈ 2.4M events, like TheLook)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--run-date", default="2025-06-30")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB and LightGBM threads (default 2)")
    ap.add_argument("--stage-timeout", type=float, default=900, help="kill a stage after this many seconds (default 900)")
    ap.add_argument("--rss-limit-gib", type=float, help="kill a stage whose resident memory passes this (default: 75%% of MemAvailable at start)")
    ap.add_argument("--reuse", action="store_true", help="reuse a scale's generated export when generate.json says it has the same parameters")
    ap.add_argument("--repeat", type=int, default=3, help="run the head-to-head stages (build-features/DuckDB, train/LightGBM, score throughput) N times, alternating, and compare medians (default 3; 1 for single runs)")
    ap.add_argument("--keep-data", action="store_true", help="keep each scale's source/ and lake/ (default: delete after the scale, keep logs)")
    ap.add_argument("--out", default=str(BENCH_DIR / "results" / "scale.json"))
    ap.add_argument("--lightgbm-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lake", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.lightgbm_child:
        return lightgbm_child(Path(args.lake), args.run_date, args.threads)

    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    global RSS_LIMIT_BYTES
    if args.rss_limit_gib:
        RSS_LIMIT_BYTES = int(args.rss_limit_gib * 2**30)
    else:
        avail = next((int(l.split()[1]) * 1024 for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemAvailable")), None)
        RSS_LIMIT_BYTES = int(0.75 * avail) if avail else None
    scales = sorted({int(s) for s in args.scales.split(",") if s.strip()})
    target = Path(os.environ.get("CARGO_TARGET_DIR", "/var/cache/repurchase-target"))
    bin_dir = Path(args.bin_dir) if args.bin_dir else target / ("release" if args.profile == "release" else "debug")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    binaries = snapshot_binaries(bin_dir, work / "bin")
    bins = work / "bin"
    py = sys.executable
    profile_label = f"{args.profile} profile binaries" + (" — NOT release figures" if args.profile == "dev" else "")
    env_info = machine() | {"load_average_at_start": list(os.getloadavg()), "rss_limit_bytes": RSS_LIMIT_BYTES}
    log(f"binaries from {bin_dir} ({profile_label}); data profile {args.data_profile}; scales {scales}; work dir {work}")

    started = time.perf_counter()
    results, stopped = [], None
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def write_json(summary=None, goal_rows=None):
        doc = {
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_profile": args.profile,
            "binaries": binaries,
            "data_profile": args.data_profile,
            "seed": args.seed,
            "run_date": args.run_date,
            "threads_peers": args.threads,
            "machine": env_info | {"load_average_at_end": list(os.getloadavg())},
            "scales": results,
            "summary": summary,
            "goals": goal_rows,
            "stopped": stopped,
            "wall_s": time.perf_counter() - started,
        }
        out_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")

    for i, scale in enumerate(scales):
        log(f"=== {scale}× ({scale * USERS_1X:,} users) ===")
        r: dict = {}
        results.append(r)
        try:
            run_scale(scale, args, bins, py, (i == 0), r)
        except Failed as e:
            stopped = f"{scale}×: {e}"
            r["status"] = f"failed: {e}"
            if e.stage and e.stage not in r["stages"] and e.measure:
                r["stages"][e.stage] = dict(e.measure, failed=str(e))
            log(f"stopping: {stopped}")
            print("\n" + scale_table(r, profile_label) + "\n", flush=True)
            write_json()
            break
        if r["status"] == "check failed" and i == 0:
            stopped = f"{scale}×: DuckDB's features differ from build-features' (see the check above); nothing is reported"
            write_json()
            print(f"\nBENCHMARK STOPPED: {stopped}", flush=True)
            return 1
        print("\n" + scale_table(r, profile_label) + "\n", flush=True)
        write_json()
        if not args.keep_data:
            for sub in ("source", "lake", "duckdb-features"):
                shutil.rmtree(Path(r["dir"]) / sub, ignore_errors=True)
            (Path(r["dir"]) / "generate.json").unlink(missing_ok=True)

    if not args.keep_data:
        shutil.rmtree(bins, ignore_errors=True)  # hard links keep replaced binaries' disk space alive
    summary = summarize(results)
    goal_rows = goals(summary, results)
    write_json(summary, goal_rows)
    m = env_info
    print(f"\nMachine: {m['nproc']} cores ({m['cpu_model']}), {m['memory_bytes'] / 2**30:.1f} GiB RAM; {profile_label}; "
          f"data profile {args.data_profile}, seed {args.seed}, run date {args.run_date}\n")
    print(summary_markdown(summary, goal_rows, profile_label))
    if stopped:
        print(f"\nSTOPPED EARLY: {stopped}")
    total = time.perf_counter() - started
    print(f"\n(JSON: {out_path}; total {total:.0f} s)")
    return 1 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
