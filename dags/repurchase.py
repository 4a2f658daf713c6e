"""Daily repurchase pipeline: extract → build-features → train → calibrate → score.

Each worker runs as its own ECS task (Fargate, one task definition per worker) through the Amazon
provider's ``EcsRunTaskOperator``; with the local runner the same tasks run the built binaries on
the Airflow worker instead (``dag.test()`` runs the whole chain against local disk).

Cadence
-------
The DAG runs once a day (``CronDataIntervalTimetable("0 0 * * *")``: the run for day D starts
after D has ended, and its logical date D is the ``--run-date``). A run triggered without a
logical date (``airflow dags trigger``, the UI, the REST API: Airflow 3's default) processes the
last complete UTC day before it was queued; param ``run_date`` names a day explicitly
(``run_date()``). ``extract``, ``build-features`` and
``score`` run every day; ``train`` and ``calibrate`` run only on Mondays (``is_training_day``, a
short-circuit on the logical date's weekday; param ``train="always"`` forces them, e.g. for the
first run or a backfill that does not start on a Monday). On other days they are skipped and
scoring uses the champion in force on the run date: the model named
by the latest calibration at or before it (calibrate promotes a new model only if it clears an AUC
floor and is not shown worse than any of the last champions by a paired bootstrap interval). ``max_active_runs=1`` keeps runs in
date order, so a day's score never runs before the Monday model it should use, and each
calibration competes with the champion its predecessor left.

If ``train`` or ``calibrate`` fails, scoring still runs (``champion_in_force``, trigger rule
``all_done``) with the champion in force, last week's, and ``training_succeeded`` then fails the
run so that the failure is looked at; a failed ``extract`` or ``build-features`` stops scoring.

Each worker holds a lock for its stage and run date while it runs (``--lock-owner``, one per task
instance: a retry takes over the lock of a killed attempt at once, while another run of the same
date, e.g. a backfill beside the schedule, exits 75 and is retried).

Scoring fans out: ``score_shard`` is mapped over ``score_shards`` hash shards of the customers
(``score --shard I/N``, one ECS task each, dynamic task mapping), and ``score`` merges them
(``score --merge-shards N``) into the same partition an unsharded run writes, adding the deciles
and flags.

Configuration (read at run time only, never at parse time)
----------------------------------------------------------
Params (``airflow dags trigger --conf`` / ``dag.test(run_conf=...)``):
  ``run_date``   YYYY-MM-DD; "" (default) = the logical date, or the day before a run without one
  ``runner``     "ecs" or "local"; "" (default) = env ``REPURCHASE_DAG_RUNNER``, else "ecs"
  ``data_root``  "" (default) = Variable ``repurchase_data_root`` (e.g. ``s3://lake/prod``)
  ``source``     extract's ``--source``: "athena" (default) or a folder of TheLook files
  ``train``      "auto" (Mondays) or "always"
  ``score_shards`` number of score tasks to fan out to (default 1)
Variables (ECS runner; read through templates when a task runs):
  ``repurchase_ecs_cluster``           cluster name or ARN (default "repurchase")
  ``repurchase_task_definition_prefix`` task definition family prefix (default "repurchase":
                                        families ``repurchase-extract`` … ``repurchase-score``;
                                        the container is named after the worker and its
                                        entrypoint is the worker binary)
  ``repurchase_subnets``               comma-separated subnet ids (awsvpc)
  ``repurchase_security_groups``       comma-separated security group ids
  ``repurchase_assign_public_ip``      "DISABLED" (default) or "ENABLED"
  ``repurchase_awslogs_group``         CloudWatch log group (default "/ecs/repurchase")
  ``repurchase_awslogs_stream_prefix`` awslogs stream prefix (default "repurchase")
Local runner: binaries in env ``REPURCHASE_BIN_DIR``, else ``$CARGO_TARGET_DIR/debug``, else
``target/debug`` of this repository.

Retries
-------
Workers exit 0 (ok), 2 (bad input or configuration), 75 (transient: storage, Athena, network) or
70 (a bug). Airflow's retry counter cannot filter by exit code, so ``WorkerOperator`` does it:
after a failed run it reads the container's exit code (ECS ``describe_tasks``, or the subprocess)
and raises ``AirflowFailException`` (no retry) for 2 and 70; 75, an unknown exit code and failures
to start the task (capacity, image pull) are retried with exponential backoff.
"""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, chain, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

DAG_ID = "repurchase"
WORKERS = ("extract", "build-features", "train", "calibrate", "score")
TRAIN_WEEKDAY = 0  # Monday (pendulum/datetime weekday())
EXIT_BAD_INPUT, EXIT_BUG, EXIT_TRANSIENT = 2, 70, 75
NO_RETRY_EXIT_CODES = frozenset({EXIT_BAD_INPUT, EXIT_BUG})

DATA_ROOT = "{{ params.data_root or var.value.get('repurchase_data_root') }}"


def _var(name: str, default: str) -> str:
    return "{{ var.value.get('%s', '%s') }}" % (name, default)


def _split_ids(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value or [])


class WorkerOperator(EcsRunTaskOperator):
    """Runs one worker as an ECS task, or as a local subprocess with the same arguments.

    The command line is the rendered container command override, so both runners run exactly the
    same ``<worker> --run-date … --data-root …``.
    """

    def __init__(self, *, worker: str, args: list[str], shard: str | None = None, **kwargs):
        self.worker = worker
        self._proc: subprocess.Popen | None = None
        if shard is not None:  # a mapped score task: its shard "I/N"
            args = [*args, "--shard", shard]
        super().__init__(
            task_definition=_var("repurchase_task_definition_prefix", "repurchase") + f"-{worker}",
            cluster=_var("repurchase_ecs_cluster", "repurchase"),
            launch_type="FARGATE",
            overrides={"containerOverrides": [{"name": worker, "command": args}]},
            network_configuration={
                "awsvpcConfiguration": {
                    "subnets": _var("repurchase_subnets", ""),
                    "securityGroups": _var("repurchase_security_groups", ""),
                    "assignPublicIp": _var("repurchase_assign_public_ip", "DISABLED"),
                }
            },
            awslogs_group=_var("repurchase_awslogs_group", "/ecs/repurchase"),
            # ECS names streams <prefix>/<container>/<task id>; the operator adds the last two.
            awslogs_stream_prefix=_var("repurchase_awslogs_stream_prefix", "repurchase"),
            container_name=worker,
            reattach=True,
            wait_for_completion=True,
            **kwargs,
        )

    @property
    def command(self) -> list[str]:
        return list(self.overrides["containerOverrides"][0]["command"])

    def execute(self, context):
        runner = context["params"].get("runner") or os.environ.get("REPURCHASE_DAG_RUNNER") or "ecs"
        if runner == "local":
            return self.run_local()
        if runner != "ecs":
            raise AirflowFailException(f"unknown runner {runner!r}: use 'ecs' or 'local'")
        return self.run_ecs(context)

    # --- ECS -------------------------------------------------------------------------------------

    def run_ecs(self, context):
        vpc = self.network_configuration["awsvpcConfiguration"]
        vpc["subnets"] = _split_ids(vpc.get("subnets"))
        vpc["securityGroups"] = _split_ids(vpc.get("securityGroups"))
        if not vpc["subnets"]:
            raise AirflowFailException("set the Airflow Variable repurchase_subnets (awsvpc subnets)")
        try:
            return super().execute(context)
        except AirflowFailException:
            raise
        except Exception as err:
            code = self.ecs_exit_code()
            self._raise_for_exit_code(code, err)
            raise

    def ecs_exit_code(self) -> int | None:
        """The worker container's exit code of the task just run, if ECS reports one."""
        arn = getattr(self, "arn", None)
        if not arn:
            return None
        try:
            tasks = self.client.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"]
        except Exception:  # noqa: BLE001 - the original error is what matters
            return None
        for t in tasks:
            for c in t.get("containers", []):
                if c.get("name") == self.worker and c.get("exitCode") is not None:
                    return int(c["exitCode"])
        return None

    def _raise_for_exit_code(self, code: int | None, err: BaseException | None = None):
        if code in NO_RETRY_EXIT_CODES:
            kind = "bad input or configuration" if code == EXIT_BAD_INPUT else "a bug"
            raise AirflowFailException(f"{self.worker} exited {code} ({kind}); not retrying") from err
        if code is not None and code != 0:
            raise AirflowException(f"{self.worker} exited {code} (transient if 75); will retry") from err

    # --- local -----------------------------------------------------------------------------------

    def bin_dir(self) -> Path:
        if os.environ.get("REPURCHASE_BIN_DIR"):
            return Path(os.environ["REPURCHASE_BIN_DIR"])
        if os.environ.get("CARGO_TARGET_DIR"):
            return Path(os.environ["CARGO_TARGET_DIR"]) / "debug"
        return Path(__file__).resolve().parent.parent / "target" / "debug"

    def run_local(self):
        binary = self.bin_dir() / self.worker
        if not binary.is_file():
            raise AirflowFailException(f"no {binary}: build the workers or set REPURCHASE_BIN_DIR")
        argv = [str(binary), *self.command]
        self.log.info("running %s", " ".join(argv))
        env = {**os.environ, "REPURCHASE_LOG_FORMAT": os.environ.get("REPURCHASE_LOG_FORMAT", "json")}
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self._proc = proc
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.info("%s", line.rstrip("\n"))
        code = proc.wait()
        self._raise_for_exit_code(code)
        return code

    def on_kill(self):
        if self._proc is not None:
            # the workers stop cleanly on SIGTERM (exit 75, partition left unpublished)
            if self._proc.poll() is None:
                self._proc.terminate()
            return
        super().on_kill()


# The owner recorded in the worker's stage lock (`_locks/<stage>/run_date=D.json`): one per task
# instance, so a retry after a killed attempt (OOM, lost host) takes its lock over at once, while
# another run of the same date (a backfill beside the schedule) is refused with exit 75 and retried.
LOCK_OWNER = "airflow:{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}/{{ ti.map_index }}"


def run_date(dag_run, params) -> str:
    """The day a run processes (``--run-date``), as YYYY-MM-DD.

    1. ``params.run_date``, when given;
    2. else the run's logical date (``ds``): for scheduled runs and backfills, the day just ended;
    3. else, for a run created without a logical date (Airflow 3's default for ``airflow dags
       trigger``, the UI's trigger button and the REST API), the last complete UTC day before the
       run was queued (``run_after`` minus one day).
    """
    given = ((params or {}).get("run_date") or "").strip()
    if given:
        try:
            return pendulum.from_format(given, "YYYY-MM-DD").to_date_string()
        except ValueError as err:
            raise AirflowFailException(f"param run_date {given!r} is not a date YYYY-MM-DD") from err
    if dag_run.logical_date is not None:
        return pendulum.instance(dag_run.logical_date).in_timezone("UTC").to_date_string()
    after = pendulum.instance(dag_run.run_after).in_timezone("UTC")
    return after.subtract(days=1).to_date_string()


RUN_DATE = "{{ repurchase_run_date(dag_run, params) }}"


def _args(*extra: str) -> list[str]:
    return ["--run-date", RUN_DATE, "--data-root", DATA_ROOT, "--lock-owner", LOCK_OWNER, *extra]


def worker(name: str, *extra: str, task_id: str | None = None) -> WorkerOperator:
    return WorkerOperator(task_id=task_id or name.replace("-", "_"), worker=name, args=_args(*extra))


with DAG(
    dag_id=DAG_ID,
    description="TheLook 60-day repurchase: extract → build-features → train → calibrate → score",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 6, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "repurchase",
        "retries": 4,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,  # 2, 4, 8, 16 min
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=3),
    },
    user_defined_macros={"repurchase_run_date": run_date},
    params={
        "run_date": Param("", type="string", pattern=r"^(|\d{4}-\d{2}-\d{2})$",
                          description="YYYY-MM-DD; '' = the run's logical date, or for a run "
                                      "without one the last complete day before it was queued"),
        "runner": Param("", type="string", enum=["", "ecs", "local"],
                        description="'' = env REPURCHASE_DAG_RUNNER, else ecs"),
        "data_root": Param("", type="string",
                           description="'' = Variable repurchase_data_root"),
        "source": Param("athena", type="string",
                        description="extract --source: athena or a folder of TheLook files"),
        "train": Param("auto", type="string", enum=["auto", "always"],
                       description="auto: train and calibrate on Mondays only"),
        "score_shards": Param(1, type="integer", minimum=1, maximum=256,
                              description="score tasks to fan out to (hash shards of customers)"),
    },
    tags=["repurchase"],
) as dag:

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def is_training_day(**context) -> bool:
        """True on Mondays (or with train=always); otherwise train and calibrate are skipped."""
        if context["params"].get("train") == "always":
            return True
        day = pendulum.parse(run_date(context["dag_run"], context["params"]))
        return day.weekday() == TRAIN_WEEKDAY

    @task
    def shards(**context) -> list[str]:
        """The shards to score, "0/N" … "N-1/N", one mapped score task each."""
        n = int(context["params"]["score_shards"])
        return [f"{i}/{n}" for i in range(n)]

    extract = worker("extract", "--source", "{{ params.source }}")
    build_features = worker("build-features")
    train = worker("train")
    calibrate = worker("calibrate")

    @task(trigger_rule="all_done")
    def champion_in_force() -> None:
        """Lets scoring go on whatever became of training: skipped (not a training day), done, or
        failed, when the champion in force on the run date (last week's) serves instead."""

    @task(trigger_rule="none_failed")
    def training_succeeded() -> None:
        """Runs after scoring. If train or calibrate failed it ends ``upstream_failed``, which
        fails the run, so that a day scored by last week's champion is looked at."""

    score_shard = WorkerOperator.partial(
        task_id="score_shard", worker="score", args=_args(),
    ).expand(shard=shards())
    score = worker("score", "--merge-shards", "{{ params.score_shards }}")
    gate = champion_in_force()

    chain(extract, build_features, is_training_day(), train, calibrate, gate, score_shard, score)
    build_features >> score_shard
    [train, calibrate, score] >> training_succeeded()
