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
floor and is not shown worse than any of the last champions by a paired bootstrap interval).
Runs keep date order where it matters, also when a backfill (with its own max_active_runs) runs
beside the schedule: ``calibrate`` depends on the previous run's calibrate and what follows it
(``depends_on_past``, ``wait_for_downstream``) and ``champion_in_force`` on the previous run's, so
each calibration competes with the champion its predecessor left and a day's score never runs
before the Monday model it should use. Backfills must therefore pass ``--reprocess-behavior``.

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
  ``repurchase_capacity_provider``     ``FARGATE_SPOT`` (default; on no capacity or an interruption
                                        the try reruns on ``FARGATE``) or ``FARGATE``
  ``repurchase_alerts_topic_arn``     SNS topic every task failure is published to (``notify_failure``;
                                        attribute ``route`` = ``data`` for exit 65, else
                                        ``platform``); none: failures are only logged
Environment of the Airflow deployment (read when the DAG is parsed; Airflow 3.1+):
  ``REPURCHASE_ALERTS_TOPIC_ARN``      SNS topic of the deadline alert (``run_deadline``); unset: none
  ``REPURCHASE_RUN_DEADLINE_HOURS``    hours after a run is queued by which it must end (default 8)
Local runner: binaries in env ``REPURCHASE_BIN_DIR``, else ``$CARGO_TARGET_DIR/debug``, else
``target/debug`` of this repository.

Retries
-------
Workers exit 0 (ok), 2 (bad input or configuration), 65 (data refused by a quality gate: the
message names the gate; for the data's owners), 75 (transient: storage, Athena, network, or another
run of the same stage and date holding its lock) or 70 (a bug). Airflow's retry counter cannot filter by exit code, so ``WorkerOperator`` does it:
after a failed run it reads the container's exit code (ECS ``describe_tasks``, or the subprocess)
and raises ``AirflowFailException`` (no retry) for 2, 65 and 70; 75, an unknown exit code and failures
to start the task (capacity, image pull) are retried with exponential backoff.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import airflow
import pendulum
from airflow.providers.amazon.aws.hooks.ecs import EcsHook
from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import DAG, Asset, Param, chain, task

# Supported: Airflow 3.0.6 to 3.3.2 (tests/dags runs on both ends). The Task SDK has its own
# timetables and exceptions only from 3.1; 3.0 keeps them in airflow core.
try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable
try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowException, AirflowFailException
try:  # Deadline alerts exist from Airflow 3.1.
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
except ImportError:  # Airflow 3.0
    AsyncCallback = DeadlineAlert = DeadlineReference = None
# Exponential retry backoff: a multiplier from Airflow 3.1, a flag (doubling) in 3.0.
RETRY_BACKOFF = 2.0 if tuple(int(p) for p in airflow.__version__.split(".")[:2]) >= (3, 1) else True

DAG_ID = "repurchase"
log = logging.getLogger(__name__)
WORKERS = ("extract", "build-features", "train", "calibrate", "score")
TRAIN_WEEKDAY = 0  # Monday (pendulum/datetime weekday())
EXIT_BAD_INPUT, EXIT_DATA_REFUSED, EXIT_BUG, EXIT_TRANSIENT = 2, 65, 70, 75
NO_RETRY_EXIT_CODES = frozenset({EXIT_BAD_INPUT, EXIT_DATA_REFUSED, EXIT_BUG})
EXIT_MEANING = {
    EXIT_BAD_INPUT: "bad input or configuration",
    EXIT_DATA_REFUSED: "data refused by a quality gate: for the data's owners",
    EXIT_BUG: "a bug",
}

DATA_ROOT = "{{ params.data_root or var.value.get('repurchase_data_root') }}"


def _var(name: str, default: str) -> str:
    return "{{ var.value.get('%s', '%s') }}" % (name, default)


def _exit_code_of(error) -> int | None:
    """The worker's exit code named in a task's error ("<worker> exited N (...)"), if any."""
    match = re.search(r"\bexited (\d+)\b", str(error or ""))
    return int(match.group(1)) if match else None


def notify_failure(context) -> None:
    """``on_failure_callback`` of every task: publishes the failure to the SNS topic in Variable
    ``repurchase_alerts_topic_arn`` (none set: the failure is only logged).

    The message names the DAG, task, run, run date, try and error; attribute ``route`` is ``data``
    for data refused by a quality gate (exit 65: for the data's owners) and ``platform`` for
    everything else, so that SNS subscription filter policies can send each to its people.
    """
    ti = context["ti"]
    topic = context["var"]["value"].get("repurchase_alerts_topic_arn", "")
    error = context.get("exception")
    # The operator that ran records the exit code it saw (``ti.task``: on Airflow 3.0
    # ``context["task"]`` is the unrendered original, and no ``exception`` reaches the callback);
    # the error text is the fallback.
    code = getattr(getattr(ti, "task", None), "last_exit_code", None)
    if code is None:
        code = _exit_code_of(error)
    error = error or getattr(getattr(ti, "task", None), "last_failure", None)
    route = "data" if code == EXIT_DATA_REFUSED else "platform"
    day = run_date(context["dag_run"], context.get("params"))
    if not topic:
        log.warning("no Variable repurchase_alerts_topic_arn: failure of %s not published",
                    ti.task_id)
        return
    message = "\n".join([
        f"DAG {ti.dag_id}, task {ti.task_id}"
        + (f" [{ti.map_index}]" if getattr(ti, "map_index", -1) not in (-1, None) else ""),
        f"run {ti.run_id}, run date {day}, try {ti.try_number}",
        f"exit code {code} ({EXIT_MEANING.get(code, 'transient or unknown')})"
        if code is not None else "no worker exit code",
        f"error: {error}",
        f"route: {route}",
    ])
    SnsNotifier(
        aws_conn_id="aws_default",
        target_arn=topic,
        subject=f"repurchase {ti.task_id} failed for {day}"[:100],
        message=message,
        message_attributes={"route": route, "dag_id": ti.dag_id, "task_id": ti.task_id},
    ).notify(context)


def run_deadline(environ=os.environ):
    """The deadline alert: a run not finished ``REPURCHASE_RUN_DEADLINE_HOURS`` (default 8) after it
    was queued is published to the SNS topic ``REPURCHASE_ALERTS_TOPIC_ARN`` (route ``platform``).

    Both come from the Airflow environment, not from Variables: the triggerer fires the alert
    with no Variables in its context, and parsing reads none. ``None`` (no deadline) when the topic
    is not set or on Airflow 3.0, which has no deadline alerts (its ``dagrun_timeout`` still fails
    a run after 20 hours, and that failure is published).
    """
    topic = environ.get("REPURCHASE_ALERTS_TOPIC_ARN", "").strip()
    if DeadlineAlert is None or not topic:
        return None
    hours = float(environ.get("REPURCHASE_RUN_DEADLINE_HOURS", "8"))
    if not 0 < hours < 20:
        raise ValueError(f"REPURCHASE_RUN_DEADLINE_HOURS={hours}: between 0 and the 20-hour "
                         "dagrun_timeout")
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=hours),
        # Run in the triggerer as ``await SnsNotifier(**kwargs, context=...)``; the templates see
        # the run (``dag_run``) and the ``deadline``.
        callback=AsyncCallback(SnsNotifier, kwargs={
            "aws_conn_id": "aws_default",
            "target_arn": topic,
            "subject": f"repurchase run not finished {hours:g} h after it was queued",
            "message": "\n".join([
                "DAG {{ dag_run.dag_id }}, run {{ dag_run.run_id }}",
                "logical date {{ dag_run.logical_date }}, queued at {{ dag_run.queued_at }}",
                f"deadline {{{{ deadline.deadline_time }}}} ({hours:g} h after queued) passed "
                "before the run ended; state {{ dag_run.state }}",
                "route: platform",
            ]),
            "message_attributes": {"route": "platform", "dag_id": DAG_ID, "task_id": "deadline"},
        }),
    )


# Lineage: one Airflow Asset per dataset of the lake; each worker task names the assets it reads
# (inlets) and writes (outlets), and on success emits an asset event per outlet whose ``extra``
# names the partitions written and read for the run date (under the run's data root).
TABLES = ("distribution_centers", "events", "inventory_items", "order_items", "orders", "products",
          "users")
ASSETS = {name: Asset(name=f"repurchase/{name}", uri=f"repurchase://lake/{name}", group="repurchase")
          for name in ("thelook", "raw", "features_train", "features_score", "models",
                       "calibrations", "score_shards", "scores", "monitoring")}
# worker (score: its shard and merge tasks) → (assets read, assets written)
WORKER_ASSETS = {
    "extract": (("thelook",), ("raw",)),
    "build-features": (("raw",), ("features_train", "features_score")),
    "train": (("features_train",), ("models",)),
    "calibrate": (("models", "features_train"), ("calibrations",)),
    "score-shard": (("features_score", "models", "calibrations"), ("score_shards",)),
    "score-merge": (("score_shards",), ("scores", "monitoring")),
}


def partitions(asset: str, day: str, shard: tuple[int, int] | None = None,
               shards: int | None = None) -> list[str]:
    """The partitions (paths under the data root) of ``asset`` that a run for ``day`` touches;
    the models and calibrations a scoring task reads are the champion in force on ``day``, named
    in its output's manifest, not here."""
    return {
        "raw": [f"raw/{t}/run_date={day}" for t in TABLES],
        "features_train": [f"features/train/run_date={day}"],
        "features_score": [f"features/score/run_date={day}"],
        "models": [f"models/run_date={day}"],
        "calibrations": [f"models/run_date={day}/calibration"],
        "score_shards": ([f"score_shards/run_date={day}/shard={shard[0]:04}-of-{shard[1]:04}"]
                         if shard else [f"score_shards/run_date={day}/shard={i:04}-of-{shards:04}"
                                        for i in range(shards or 0)]),
        "scores": [f"scores/run_date={day}"],
        "monitoring": [f"monitoring/run_date={day}"],
    }.get(asset, [])


EXIT_OOM = 137  # SIGKILL: what ECS reports for a container killed at its memory limit
OOM_RERUNS = 2
ECS_POOL = "repurchase_ecs"
SPOT, ON_DEMAND = "FARGATE_SPOT", "FARGATE"
# RunTask's failure reasons and the stop codes after which the same task is run at once on
# on-demand Fargate: Spot had no capacity, or reclaimed it (the worker exits 75 on the SIGTERM, its
# partition left unpublished).
SPOT_LOST_STOP_CODES = frozenset({"SpotInterruption"})
TASK_DEFINITIONS_TASK = "task_definitions"


def runner_of(params) -> str:
    """``ecs`` or ``local``: param ``runner``, else env ``REPURCHASE_DAG_RUNNER``, else ecs."""
    runner = (params or {}).get("runner") or os.environ.get("REPURCHASE_DAG_RUNNER") or "ecs"
    if runner not in ("ecs", "local"):
        raise AirflowFailException(f"unknown runner {runner!r}: use 'ecs' or 'local'")
    return runner


def _capacity_lost(error: BaseException | None, stopped: dict | None) -> bool:
    """Whether a failed ECS run lost its Spot capacity (none to start on, or reclaimed)."""
    if stopped and stopped.get("stopCode") in SPOT_LOST_STOP_CODES:
        return True
    text = " ".join(str(x) for x in (error, getattr(error, "failures", None),
                                     (stopped or {}).get("stoppedReason")) if x)
    return bool(re.search(r"capacity is unavailable|insufficient capacity|RESOURCE:FARGATE|"
                          r"no capacity", text, re.IGNORECASE))


def _fargate_sizes() -> list[tuple[int, int]]:
    """Every (cpu units, memory MiB) Fargate accepts, smallest memory first."""
    sizes = [(256, m) for m in (512, 1024, 2048)]
    for cpu, low, high, step in ((512, 1024, 4096, 1024), (1024, 2048, 8192, 1024),
                                 (2048, 4096, 16384, 1024), (4096, 8192, 30720, 1024),
                                 (8192, 16384, 61440, 4096), (16384, 32768, 122880, 8192)):
        sizes += [(cpu, m) for m in range(low, high + 1, step)]
    return sorted(sizes, key=lambda s: (s[1], s[0]))


def next_size(cpu: int, memory: int) -> tuple[int, int] | None:
    """The smallest Fargate size with at least twice ``memory`` and at least ``cpu``; None past
    the largest (120 GiB)."""
    for c, m in _fargate_sizes():
        if m >= 2 * memory and c >= cpu:
            return c, m
    return None


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
        # The worker's exit code and the failure raised for it, once it has run (notify_failure).
        self.last_exit_code: int | None = None
        self.last_failure: str | None = None
        if shard is not None:  # a mapped score task: its shard "I/N"
            args = [*args, "--shard", shard]
        self.role = worker
        if worker == "score":
            self.role = "score-merge" if "--merge-shards" in args else "score-shard"
        reads, writes = WORKER_ASSETS[self.role]
        kwargs.setdefault("inlets", [ASSETS[a] for a in reads])
        kwargs.setdefault("outlets", [ASSETS[a] for a in writes])
        super().__init__(
            # The revision pinned for this run by task ``task_definitions``: a deploy during a run
            # (a new revision, a new image) never mixes two versions of the workers in one run,
            # and a retry runs the image its first try ran.
            task_definition="{{ ti.xcom_pull(task_ids='%s')['%s'] }}" % (TASK_DEFINITIONS_TASK,
                                                                         worker),
            cluster=_var("repurchase_ecs_cluster", "repurchase"),
            # Fargate Spot first (Variable repurchase_capacity_provider: FARGATE_SPOT, the
            # default, or FARGATE); on no Spot capacity or a Spot interruption the same try runs
            # again at once on FARGATE (run_ecs). A strategy replaces the launch type.
            launch_type="",
            capacity_provider_strategy=[{
                "capacityProvider": _var("repurchase_capacity_provider", SPOT), "weight": 1}],
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
            # Long ECS waits hold a slot of this pool (create it: `airflow pools set
            # repurchase_ecs 8 "ECS tasks of repurchase"`), not of the default pool.
            pool=kwargs.pop("pool", ECS_POOL),
            **kwargs,
        )

    @property
    def command(self) -> list[str]:
        return list(self.overrides["containerOverrides"][0]["command"])

    def param_args(self, params) -> list[str]:
        """Flags that DAG params add: ``champion_from`` to calibrate (``--champion-from``: the
        decision a backfilled calibration competes with) and ``model_date`` to score's shard
        tasks (``--model-date``: serve that model instead of the champion)."""
        params = params or {}
        if self.worker == "calibrate" and params.get("champion_from"):
            return ["--champion-from", params["champion_from"]]
        if (self.worker == "score" and params.get("model_date")
                and "--merge-shards" not in self.command):
            return ["--model-date", params["model_date"]]
        return []

    def execute(self, context):
        extra = self.param_args(context["params"])
        if extra:
            self.overrides["containerOverrides"][0]["command"] = [*self.command, *extra]
        if runner_of(context["params"]) == "local":
            result = self.run_local()
        else:
            result = self.run_ecs(context)
        self.record_lineage(context)
        return result

    def _flag(self, name: str) -> str | None:
        command = self.command
        return command[command.index(name) + 1] if name in command else None

    def record_lineage(self, context) -> None:
        """Names the partitions this task wrote and read in the ``extra`` of its asset events."""
        day, root = self._flag("--run-date"), self._flag("--data-root")
        shard = self._flag("--shard")
        merged = self._flag("--merge-shards")
        at = (tuple(int(x) for x in shard.split("/")) if shard else None)
        reads, writes = WORKER_ASSETS[self.role]
        inputs = [p for a in reads for p in partitions(a, day, at, int(merged or 0))
                  if not (self.role == "score-shard" and a in ("models", "calibrations"))]
        if self.role == "extract":
            inputs = [self._flag("--source")]
        for name in writes:
            event = context["outlet_events"][ASSETS[name]]
            event.extra = {
                "run_date": day,
                "data_root": root,
                "partitions": partitions(name, day, at, int(merged or 0)),
                "inputs": inputs,
                **({"model": f"the champion in force on {day}"}
                   if self.role == "score-shard" else {}),
            }

    # --- ECS -------------------------------------------------------------------------------------

    def run_ecs(self, context):
        vpc = self.network_configuration["awsvpcConfiguration"]
        vpc["subnets"] = _split_ids(vpc.get("subnets"))
        vpc["securityGroups"] = _split_ids(vpc.get("securityGroups"))
        if not vpc["subnets"]:
            raise AirflowFailException("set the Airflow Variable repurchase_subnets (awsvpc subnets)")
        provider = self.capacity_provider_strategy[0]["capacityProvider"]
        if provider not in (SPOT, ON_DEMAND):
            raise AirflowFailException(
                f"Variable repurchase_capacity_provider is {provider!r}: use {SPOT} or {ON_DEMAND}")
        oom_reruns = 0
        while True:
            try:
                return super().execute(context)
            except AirflowFailException:
                raise
            except Exception as err:
                if self._fall_back_to_on_demand(err):
                    continue
                code = self.ecs_exit_code()
                if code == EXIT_OOM and oom_reruns < OOM_RERUNS and self._grow_after_oom():
                    oom_reruns += 1
                    continue
                self._raise_for_exit_code(code, err)
                raise

    def _fall_back_to_on_demand(self, err: BaseException) -> bool:
        """After Spot lost its capacity (none to start on, or reclaimed mid-run), switches this
        task to on-demand Fargate for the rest of the try; False when it already runs there."""
        if self.capacity_provider_strategy[0]["capacityProvider"] != SPOT:
            return False
        if not _capacity_lost(err, self.stopped_task()):
            return False
        self.log.warning("%s lost its Fargate Spot capacity (%s): running it again on %s",
                         self.worker, err, ON_DEMAND)
        self.capacity_provider_strategy = [{"capacityProvider": ON_DEMAND, "weight": 1}]
        self.arn = None
        return True

    def execute_complete(self, context, event=None):
        """Deferrable mode (``deferrable=True`` or ``[operators] default_deferrable``) ends here:
        the same exit-code rules as the blocking path."""
        if isinstance(event, dict) and event.get("task_arn"):
            self.arn = event["task_arn"]
        try:
            return super().execute_complete(context, event)
        except AirflowFailException:
            raise
        except Exception as err:
            self._raise_for_exit_code(self.ecs_exit_code(), err)
            raise

    def _grow_after_oom(self) -> bool:
        """After an OOM kill, reruns at once on the next Fargate size with twice the memory
        (task-level cpu/memory overrides); False when there is none."""
        task = self.stopped_task() or {}
        try:
            cpu, memory = int(task.get("cpu", 0)), int(task.get("memory", 0))
        except (TypeError, ValueError):
            return False
        bigger = next_size(cpu, memory) if memory else None
        if bigger is None:
            return False
        self.log.warning("%s was killed at its memory limit (%s MiB, exit %s): running it again "
                         "with cpu %s and %s MiB", self.worker, memory, EXIT_OOM, *bigger)
        self.overrides["cpu"], self.overrides["memory"] = str(bigger[0]), str(bigger[1])
        self.arn = None
        return True

    def stopped_task(self) -> dict | None:
        """ECS's description of the task just run, if it has one."""
        arn = getattr(self, "arn", None)
        if not arn:
            return None
        try:
            tasks = self.client.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"]
        except Exception:  # noqa: BLE001 - the original error is what matters
            return None
        return tasks[0] if tasks else None

    def ecs_exit_code(self) -> int | None:
        """The worker container's exit code of the task just run, if ECS reports one."""
        for c in (self.stopped_task() or {}).get("containers", []):
            if c.get("name") == self.worker and c.get("exitCode") is not None:
                return int(c["exitCode"])
        return None

    def _raise_for_exit_code(self, code: int | None, err: BaseException | None = None):
        self.last_exit_code = code
        if code in NO_RETRY_EXIT_CODES:
            self.last_failure = f"{self.worker} exited {code} ({EXIT_MEANING[code]}); not retrying"
            raise AirflowFailException(self.last_failure) from err
        if code is not None and code != 0:
            self.last_failure = f"{self.worker} exited {code} (transient if 75); will retry"
            raise AirflowException(self.last_failure) from err

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


def worker(name: str, *extra: str, task_id: str | None = None, **kwargs) -> WorkerOperator:
    return WorkerOperator(task_id=task_id or name.replace("-", "_"), worker=name, args=_args(*extra),
                          **kwargs)


DEADLINE = run_deadline()

with DAG(
    dag_id=DAG_ID,
    description="TheLook 60-day repurchase: extract → build-features → train → calibrate → score",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 6, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # A day's run must end before the next one is due; a stuck run would hold the next back.
    dagrun_timeout=timedelta(hours=20),
    **({"deadline": DEADLINE} if DEADLINE else {}),  # Airflow 3.0's DAG takes no deadline
    default_args={
        "owner": "repurchase",
        "retries": 4,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": RETRY_BACKOFF,  # 2, 4, 8, 16 min
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=3),
        "on_failure_callback": notify_failure,
    },
    user_defined_macros={"repurchase_run_date": run_date},
    params={
        "run_date": Param("", type="string", pattern=r"^(|\d{4}-\d{2}-\d{2})$",
                          description="YYYY-MM-DD; '' = the run's logical date, or for a run "
                                      "without one the last complete day before it was queued"),
        "champion_from": Param("", type="string", pattern=r"^(|\d{4}-\d{2}-\d{2})$",
                               description="calibrate --champion-from: the decision a "
                                           "backfilled calibration competes with"),
        "model_date": Param("", type="string", pattern=r"^(|\d{4}-\d{2}-\d{2})$",
                            description="score --model-date: serve this date's model "
                                        "instead of the champion"),
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

    @task(task_id=TASK_DEFINITIONS_TASK)
    def task_definitions(**context) -> dict[str, str]:
        """Pins each worker's task definition to its latest ACTIVE revision (ECS
        DescribeTaskDefinition on the family ``<prefix>-<worker>``), once per run; every worker
        task of the run reads its ARN from here. The local runner runs no task definition."""
        prefix = context["var"]["value"].get("repurchase_task_definition_prefix", "repurchase")
        families = {w: f"{prefix}-{w}" for w in WORKERS}
        if runner_of(context["params"]) == "local":
            return families
        ecs = EcsHook(aws_conn_id="aws_default").conn
        pinned = {}
        for name, family in families.items():
            try:
                found = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
            except ecs.exceptions.ClientException as err:
                raise AirflowFailException(
                    f"no task definition {family} for worker {name}: apply infra/ or set "
                    f"Variable repurchase_task_definition_prefix ({err})") from err
            pinned[name] = found["taskDefinitionArn"]
        return pinned

    @task
    def shards(**context) -> list[str]:
        """The shards to score, "0/N" … "N-1/N", one mapped score task each."""
        n = int(context["params"]["score_shards"])
        return [f"{i}/{n}" for i in range(n)]

    extract = worker("extract", "--source", "{{ params.source }}")
    build_features = worker("build-features")
    train = worker("train")
    # Calibrations in date order, whoever created the runs (the schedule, a backfill beside it
    # with its own max_active_runs): calibrate waits for the previous run's calibrate and for what
    # follows it there (champion_in_force), and champion_in_force for the previous run's. As
    # champion_in_force runs only once its run's calibrate is done, the chain carries through the
    # days calibrate is skipped: Monday's calibrate waits for last Monday's.
    calibrate = worker("calibrate", depends_on_past=True, wait_for_downstream=True)

    @task(trigger_rule="all_done", depends_on_past=True)
    def champion_in_force() -> None:
        """Lets scoring go on whatever became of training: skipped (not a training day), done, or
        failed, when the champion in force on the run date (last week's) serves instead. Waits
        for the previous run's (``depends_on_past``), so days are scored in date order too."""

    @task(trigger_rule="none_failed")
    def training_succeeded() -> None:
        """Runs after scoring. If train or calibrate failed it ends ``upstream_failed``, which
        fails the run, so that a day scored by last week's champion is looked at."""

    score_shard = WorkerOperator.partial(
        task_id="score_shard", worker="score", args=_args(),
        inlets=[ASSETS[a] for a in WORKER_ASSETS["score-shard"][0]],
        outlets=[ASSETS[a] for a in WORKER_ASSETS["score-shard"][1]],
    ).expand(shard=shards())
    score = worker("score", "--merge-shards", "{{ params.score_shards }}")
    gate = champion_in_force()

    chain(task_definitions(), extract, build_features, is_training_day(), train, calibrate, gate,
          score_shard, score)
    build_features >> score_shard
    [train, calibrate, score] >> training_succeeded()
