"""Tests of dags/repurchase.py: parsing, structure, rendered ECS arguments, exit-code handling and a
real run of the five workers through dag.test() with the local runner."""

import json
import os
import subprocess
from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.utils.state import DagRunState, TaskInstanceState

from conftest import DAGS

MONDAY = pendulum.datetime(2025, 6, 30, tz="UTC")
TUESDAY = pendulum.datetime(2025, 7, 1, tz="UTC")
ORDER = ["extract", "build_features", "is_training_day", "train", "calibrate",
         "champion_in_force", "shards", "score_shard", "score", "training_succeeded"]


@pytest.fixture
def dag():
    """A freshly parsed DAG for each test: in-process dag.test() writes run_conf into the DAG's
    Param objects, so a DAG object must not serve two tests."""
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["repurchase"]


def test_dagbag_imports_without_errors_variables_or_database(monkeypatch):
    """Parsing reads no Variable (none is set, and any access would raise) and needs no database."""
    from airflow.sdk import Variable

    def no_variables(*args, **kwargs):
        raise AssertionError("Variable read at parse time")

    monkeypatch.setattr(Variable, "get", no_variables)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["repurchase"]
    source = (DAGS / "repurchase.py").read_text()
    assert "Variable.get" not in source and "datetime.now" not in source


def test_schedule_and_run_settings(dag):
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.start_date == pendulum.datetime(2025, 6, 1, tz="UTC")
    assert dag.params["source"] == "athena"
    for task in dag.tasks:
        assert task.retries >= 3
        assert task.retry_exponential_backoff > 1


def test_task_order(dag):
    """The same tasks and edges serve both runners (the runner is chosen when a task executes)."""
    assert sorted(t.task_id for t in dag.tasks) == sorted(ORDER)
    down = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert down == {
        "extract": ["build_features"],
        "build_features": ["is_training_day", "score_shard"],
        "is_training_day": ["train"],
        "train": ["calibrate", "training_succeeded"],
        "calibrate": ["champion_in_force", "training_succeeded"],
        "champion_in_force": ["score_shard"],
        "shards": ["score_shard"],
        "score_shard": ["score"],
        "score": ["training_succeeded"],
        "training_succeeded": [],
    }
    # Scoring runs on the days train and calibrate are skipped, and when they fail.
    assert dag.get_task("champion_in_force").trigger_rule == "all_done"
    assert dag.get_task("score_shard").trigger_rule == "all_success"
    assert dag.get_task("training_succeeded").trigger_rule == "none_failed"
    for worker in ("extract", "build_features", "train", "calibrate", "score"):
        task = dag.get_task(worker)
        assert isinstance(task, EcsRunTaskOperator)
        assert task.reattach is True and task.launch_type == "FARGATE"
    mapped = dag.get_task("score_shard")
    assert mapped.operator_class.__name__ == "WorkerOperator"
    assert mapped.partial_kwargs["worker"] == "score"


def test_exit_codes_decide_retries(dag):
    op = dag.get_task("train")
    for code in (2, 70):
        with pytest.raises(AirflowFailException):
            op._raise_for_exit_code(code)
    with pytest.raises(AirflowException) as err:
        op._raise_for_exit_code(75)
    assert not isinstance(err.value, AirflowFailException)
    op._raise_for_exit_code(0)
    op._raise_for_exit_code(None)

    class Client:
        def describe_tasks(self, cluster, tasks):
            return {"tasks": [{"containers": [{"name": "sidecar", "exitCode": 0},
                                              {"name": "train", "exitCode": 2}]}]}

    op.arn, op.client = "arn:aws:ecs:task/1", Client()  # client is a cached property
    assert op.ecs_exit_code() == 2


def _without_owner(command, task_id):
    """The command without its ``--lock-owner``, which must name the run and the task instance."""
    i = command.index("--lock-owner")
    owner = command[i + 1]
    assert owner.startswith("airflow:repurchase/") and f"/{task_id}/" in owner, owner
    return command[:i] + command[i + 2:]


def _states(dag_run):
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_ecs_runner_renders_overrides(dag, airflow_db, monkeypatch):
    """dag.test with the ECS runner; the ECS call itself is replaced by a recorder."""
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_DATA_ROOT", "s3://lake/prod")
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_SUBNETS", "subnet-a, subnet-b")
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_SECURITY_GROUPS", "sg-1")
    calls = {}
    shard_commands = []
    owners = set()

    def record(self, context):
        command = _without_owner(self.overrides["containerOverrides"][0]["command"], self.task_id)
        if self.task_id == "score_shard":
            shard_commands.append(command)
            owners.add(self.overrides["containerOverrides"][0]["command"][5])
        calls[self.task_id] = {
            "task_definition": self.task_definition,
            "cluster": self.cluster,
            "command": command,
            "container": self.overrides["containerOverrides"][0]["name"],
            "network": self.network_configuration,
            "awslogs": (self.awslogs_group, self.awslogs_stream_prefix, self.container_name),
        }

    monkeypatch.setattr(EcsRunTaskOperator, "execute", record)
    run = dag.test(logical_date=TUESDAY, run_conf={"runner": "ecs", "score_shards": 3})
    assert run.state == DagRunState.SUCCESS
    states = _states(run)
    assert states["train"] == states["calibrate"] == TaskInstanceState.SKIPPED  # not a Monday
    assert states["score"] == TaskInstanceState.SUCCESS
    assert sorted(calls) == ["build_features", "extract", "score", "score_shard"]
    assert calls["extract"]["command"] == [
        "--run-date", "2025-07-01", "--data-root", "s3://lake/prod", "--source", "athena"]
    # Three mapped ECS tasks, one per shard, then the merge.
    assert sorted(shard_commands) == [
        ["--run-date", "2025-07-01", "--data-root", "s3://lake/prod", "--shard", f"{i}/3"]
        for i in range(3)]
    # Each mapped shard locks as a task instance of its own.
    assert len(owners) == 3 and all(o.rsplit("/", 1)[1] in "012" for o in owners), owners
    assert calls["score_shard"]["task_definition"] == "repurchase-score"
    assert calls["score"]["command"] == [
        "--run-date", "2025-07-01", "--data-root", "s3://lake/prod", "--merge-shards", "3"]
    assert calls["score"]["task_definition"] == "repurchase-score"
    assert calls["score"]["container"] == "score"
    assert calls["score"]["cluster"] == "repurchase"
    assert calls["score"]["network"] == {"awsvpcConfiguration": {
        "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}}
    assert calls["score"]["awslogs"] == ("/ecs/repurchase", "repurchase", "score")

    calls.clear()
    run = dag.test(logical_date=MONDAY, run_conf={"runner": "ecs", "data_root": "s3://other/x",
                                                  "score_shards": 1})
    assert run.state == DagRunState.SUCCESS
    assert sorted(calls) == ["build_features", "calibrate", "extract", "score", "score_shard", "train"]
    assert calls["score"]["command"][-2:] == ["--merge-shards", "1"]
    assert calls["train"]["command"] == ["--run-date", "2025-06-30", "--data-root", "s3://other/x"]
    assert calls["calibrate"]["task_definition"] == "repurchase-calibrate"


def test_local_runner_runs_the_workers(dag, airflow_db, bin_dir, tmp_path, monkeypatch):
    """dag.test with REPURCHASE_DAG_RUNNER=local runs the built binaries against local disk: the
    Monday run trains, the Tuesday run scores with Monday's model."""
    source = tmp_path / "source"
    subprocess.run([str(bin_dir / "repurchase"), "generate", "--users", "6000", "--end-date",
                    "2025-06-30", "--out", str(source), "--format", "parquet"],
                   check=True, capture_output=True)
    lake = tmp_path / "lake"
    monkeypatch.setenv("REPURCHASE_DAG_RUNNER", "local")
    monkeypatch.setenv("REPURCHASE_BIN_DIR", str(bin_dir))
    conf = {"data_root": str(lake), "source": str(source)}

    run = dag.test(logical_date=MONDAY, run_conf=conf)
    assert run.state == DagRunState.SUCCESS, _states(run)
    assert set(_states(run).values()) == {TaskInstanceState.SUCCESS}
    manifest = json.loads((lake / "scores/run_date=2025-06-30/_manifest.json").read_text())
    assert manifest
    assert (lake / "models/run_date=2025-06-30/calibration/calibrator.json").is_file()

    run = dag.test(logical_date=TUESDAY, run_conf={**conf, "score_shards": 2})
    assert run.state == DagRunState.SUCCESS, _states(run)
    assert _states(run)["train"] == TaskInstanceState.SKIPPED
    assert (lake / "scores/run_date=2025-07-01/_manifest.json").is_file()
    for shard in ("0000-of-0002", "0001-of-0002"):
        assert (lake / f"score_shards/run_date=2025-07-01/shard={shard}/_manifest.json").is_file()
    assert not (lake / "models/run_date=2025-07-01").exists()
    # backfilled dates never clobber each other: the Monday partition is still there
    assert (lake / "scores/run_date=2025-06-30/_manifest.json").is_file()


def test_local_runner_fails_without_retry_on_bad_input(dag, airflow_db, bin_dir, tmp_path,
                                                      monkeypatch):
    """A missing source folder is bad input (exit 2): the task fails at once, no retry."""
    monkeypatch.setenv("REPURCHASE_BIN_DIR", str(bin_dir))
    run = dag.test(logical_date=MONDAY, run_conf={
        "runner": "local", "data_root": str(tmp_path / "lake"), "source": str(tmp_path / "nothing")})
    assert run.state == DagRunState.FAILED
    states = _states(run)
    assert states["extract"] == TaskInstanceState.FAILED
    assert not (tmp_path / "lake" / "scores").exists()


def _recorder(calls, fail=()):
    """Stands in for the ECS call: records each task's command; raises for tasks in ``fail``."""

    def record(self, context):
        calls.setdefault(self.task_id, []).append(
            _without_owner(self.overrides["containerOverrides"][0]["command"], self.task_id))
        if self.task_id in fail:
            raise AirflowFailException(f"{self.task_id} exited 2 (recorded)")

    return record


def _ecs_variables(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_DATA_ROOT", "s3://lake/prod")
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_SUBNETS", "subnet-a")


def test_a_run_without_logical_date_processes_the_day_before_it_was_queued(dag, airflow_db,
                                                                          monkeypatch):
    """Airflow 3 creates manual runs without a logical date (``{{ ds }}`` would not render): they
    process the last complete day before they were queued, or the day param run_date names."""
    _ecs_variables(monkeypatch)
    calls = {}
    monkeypatch.setattr(EcsRunTaskOperator, "execute", _recorder(calls))
    run = dag.test(logical_date=None, run_after=pendulum.datetime(2025, 7, 2, 6, 30, tz="UTC"),
                   run_conf={"runner": "ecs"})
    assert run.logical_date is None
    assert run.state == DagRunState.SUCCESS
    assert calls["extract"] == [["--run-date", "2025-07-01", "--data-root", "s3://lake/prod",
                                 "--source", "athena"]]
    assert "train" not in calls  # 2025-07-01 is a Tuesday

    calls.clear()
    run = dag.test(logical_date=None, run_after=pendulum.datetime(2025, 7, 2, 6, 31, tz="UTC"),
                   run_conf={"runner": "ecs", "run_date": "2025-06-30"})
    assert run.state == DagRunState.SUCCESS
    assert calls["train"] == [["--run-date", "2025-06-30", "--data-root", "s3://lake/prod"]]
    assert calls["score"][0][:2] == ["--run-date", "2025-06-30"]


def test_scoring_goes_on_with_the_champion_when_training_fails(dag, airflow_db, monkeypatch):
    """A failed Monday train: calibrate cannot run, scoring still does (with last week's champion),
    and the run ends failed so that someone looks."""
    _ecs_variables(monkeypatch)
    calls = {}
    monkeypatch.setattr(EcsRunTaskOperator, "execute", _recorder(calls, fail={"train"}))
    run = dag.test(logical_date=MONDAY, run_conf={"runner": "ecs"})
    states = _states(run)
    assert states["train"] == TaskInstanceState.FAILED
    assert states["calibrate"] == TaskInstanceState.UPSTREAM_FAILED
    assert states["champion_in_force"] == TaskInstanceState.SUCCESS
    assert states["score_shard"] == TaskInstanceState.SUCCESS
    assert states["score"] == TaskInstanceState.SUCCESS
    assert states["training_succeeded"] == TaskInstanceState.UPSTREAM_FAILED
    assert run.state == DagRunState.FAILED
    assert "--merge-shards" in calls["score"][0]

    # A failed build-features stops scoring: there is nothing to score.
    calls.clear()
    monkeypatch.setattr(EcsRunTaskOperator, "execute", _recorder(calls, fail={"build_features"}))
    run = dag.test(logical_date=TUESDAY, run_conf={"runner": "ecs"})
    states = _states(run)
    assert states["score_shard"] == TaskInstanceState.UPSTREAM_FAILED
    assert run.state == DagRunState.FAILED
    assert "score" not in calls
