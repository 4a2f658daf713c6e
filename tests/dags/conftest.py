"""Airflow in a throw-away home: sqlite, no examples, dags/ of this repository.

Set before anything imports airflow (its configuration is read at import).
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"

_home = Path(tempfile.mkdtemp(prefix="repurchase-airflow-"))
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
os.environ.pop("REPURCHASE_DAG_RUNNER", None)
for _k in [k for k in os.environ if k.startswith("AIRFLOW_VAR_")]:
    del os.environ[_k]


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated sqlite metadata database (dag.test needs one)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL)
    return _home


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """The built worker binaries: $REPURCHASE_BIN_DIR, else $CARGO_TARGET_DIR/debug, else target/debug."""
    if os.environ.get("REPURCHASE_BIN_DIR"):
        d = Path(os.environ["REPURCHASE_BIN_DIR"])
    else:
        d = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"
    missing = [w for w in ("repurchase", "extract", "build-features", "train", "calibrate", "score")
               if not (d / w).is_file()]
    if missing:
        pytest.fail(f"worker binaries {missing} not in {d}: run cargo build --workspace --bins")
    return d
