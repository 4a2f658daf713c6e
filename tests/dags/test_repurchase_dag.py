"""Tests of dags/repurchase.py: parsing, structure, rendered ECS arguments, exit-code handling and a
real run of the five workers through dag.test() with the local runner."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.utils.state import DagRunState, TaskInstanceState

from conftest import DAGS

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.0
    from airflow.models.dagbag import DagBag
try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowException, AirflowFailException

MONDAY = pendulum.datetime(2025, 6, 30, tz="UTC")
TUESDAY = pendulum.datetime(2025, 7, 1, tz="UTC")
ORDER = ["task_definitions", "extract", "build_features", "is_training_day", "train", "calibrate",
         "champion_in_force", "shards", "score_shard", "score", "training_succeeded"]


@pytest.fixture
def dag():
    """A freshly parsed DAG for each test: in-process dag.test() writes run_conf into the DAG's
    Param objects, so a DAG object must not serve two tests."""
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["repurchase"]


@pytest.fixture(autouse=True)
def no_earlier_runs(request):
    """Each test starts without runs of the DAG in the metadata database: calibrate and
    champion_in_force depend on the previous run (by logical date), which must not be another
    test's."""
    if "airflow_db" not in request.fixturenames:
        yield
        return
    _delete_runs()
    _store_dag()
    yield


def _delete_runs():
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(BackfillDagRun))
        session.execute(delete(TaskInstance).where(TaskInstance.dag_id == "repurchase"))
        session.execute(delete(DagRun).where(DagRun.dag_id == "repurchase"))
        session.execute(delete(Backfill).where(Backfill.dag_id == "repurchase"))


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
    assert dag.dagrun_timeout == pendulum.duration(hours=20)
    for task in dag.tasks:
        assert task.retries >= 3
        # Doubling: a multiplier of 2 from Airflow 3.1, the flag (base 2) in 3.0.
        assert task.retry_exponential_backoff is True or task.retry_exponential_backoff == 2
        assert task.on_failure_callback, task.task_id
        # The long ECS waits hold slots of their own pool, not the default one.
        if task.task_id in ("extract", "build_features", "train", "calibrate", "score"):
            assert task.pool == "repurchase_ecs", task.task_id


def test_task_order(dag):
    """The same tasks and edges serve both runners (the runner is chosen when a task executes)."""
    assert sorted(t.task_id for t in dag.tasks) == sorted(ORDER)
    down = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert down == {
        "task_definitions": ["extract"],
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
        assert task.reattach is True and not task.launch_type
        assert task.capacity_provider_strategy == [{
            "capacityProvider": "{{ var.value.get('repurchase_capacity_provider', 'FARGATE_SPOT') }}",
            "weight": 1}]
    mapped = dag.get_task("score_shard")
    assert mapped.operator_class.__name__ == "WorkerOperator"
    assert mapped.partial_kwargs["worker"] == "score"


def test_exit_codes_decide_retries(dag):
    op = dag.get_task("train")
    for code, meaning in ((2, "bad input"), (65, "quality gate"), (70, "a bug")):
        with pytest.raises(AirflowFailException, match=meaning):
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


def _asset_events(dag_run) -> dict:
    """The extras of the asset events a run's tasks emitted, by asset name."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_run_id == dag_run.run_id)
            .order_by(AssetEvent.id)).all()
    out = {}
    for name, extra in rows:
        out.setdefault(name, []).append(extra)
    return out


def _states(dag_run):
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_ecs_runner_renders_overrides(dag, airflow_db, monkeypatch):
    """dag.test with the ECS runner; the ECS call itself is replaced by a recorder."""
    arns = _ecs_variables(monkeypatch)
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_SUBNETS", "subnet-a, subnet-b")
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_SECURITY_GROUPS", "sg-1")
    calls = {}
    shard_commands = []
    owners = set()
    deployed = {}

    def record(self, context):
        if self.task_id == "build_features" and not deployed:
            # A deploy while the run is under way: new revisions of every task definition.
            deployed.update(_register_task_definitions(_moto(monkeypatch)))
        command = _without_owner(self.overrides["containerOverrides"][0]["command"], self.task_id)
        if self.task_id == "score_shard":
            shard_commands.append(command)
            owners.add(self.overrides["containerOverrides"][0]["command"][5])
        calls[self.task_id] = {
            "task_definition": self.task_definition,
            "capacity": self.capacity_provider_strategy,
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
    # Every task of the run uses the revision pinned when the run began, not the one deployed
    # meanwhile.
    def revision(arn):
        return int(arn.rsplit(":", 1)[1])

    assert revision(deployed["score"]) == revision(arns["score"]) + 1, (arns, deployed)
    assert calls["extract"]["task_definition"] == arns["extract"]
    assert calls["score_shard"]["task_definition"] == arns["score"]
    assert calls["score"]["command"] == [
        "--run-date", "2025-07-01", "--data-root", "s3://lake/prod", "--merge-shards", "3"]
    assert calls["score"]["task_definition"] == arns["score"]
    assert calls["score"]["capacity"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert calls["score"]["container"] == "score"
    assert calls["score"]["cluster"] == "repurchase"
    assert calls["score"]["network"] == {"awsvpcConfiguration": {
        "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}}
    assert calls["score"]["awslogs"] == ("/ecs/repurchase", "repurchase", "score")

    # Lineage: each worker task's asset events name the partitions it wrote and read.
    events = _asset_events(run)
    assert sorted(events) == ["repurchase/features_score", "repurchase/features_train",
                              "repurchase/monitoring", "repurchase/raw", "repurchase/score_shards",
                              "repurchase/scores"]
    (raw,) = events["repurchase/raw"]
    assert raw == {"run_date": "2025-07-01", "data_root": "s3://lake/prod", "inputs": ["athena"],
                   "partitions": [f"raw/{t}/run_date=2025-07-01" for t in (
                       "distribution_centers", "events", "inventory_items", "order_items",
                       "orders", "products", "users")]}
    assert events["repurchase/features_train"][0]["inputs"] == raw["partitions"]
    assert sorted(p for e in events["repurchase/score_shards"] for p in e["partitions"]) == [
        f"score_shards/run_date=2025-07-01/shard={i:04}-of-0003" for i in range(3)]
    assert all(e["inputs"] == ["features/score/run_date=2025-07-01"]
               and e["model"] == "the champion in force on 2025-07-01"
               for e in events["repurchase/score_shards"])
    (scores,) = events["repurchase/scores"]
    assert scores["partitions"] == ["scores/run_date=2025-07-01"]
    (monitoring,) = events["repurchase/monitoring"]
    assert monitoring["partitions"] == ["monitoring/run_date=2025-07-01"]
    assert monitoring["inputs"] == scores["inputs"]
    assert scores["inputs"] == [f"score_shards/run_date=2025-07-01/shard={i:04}-of-0003"
                                for i in range(3)]
    assert {a.name for a in dag.get_task("score_shard").outlets} == {"repurchase/score_shards"}

    calls.clear()
    run = dag.test(logical_date=MONDAY, run_conf={"runner": "ecs", "data_root": "s3://other/x",
                                                  "score_shards": 1})
    assert run.state == DagRunState.SUCCESS
    assert sorted(calls) == ["build_features", "calibrate", "extract", "score", "score_shard", "train"]
    assert calls["score"]["command"][-2:] == ["--merge-shards", "1"]
    assert calls["train"]["command"] == ["--run-date", "2025-06-30", "--data-root", "s3://other/x"]
    # The next run pins the revision deployed during the last one.
    assert calls["calibrate"]["task_definition"] == deployed["calibrate"]
    (calibration,) = _asset_events(run)["repurchase/calibrations"]
    assert calibration["partitions"] == ["models/run_date=2025-06-30/calibration"]
    assert calibration["inputs"] == ["models/run_date=2025-06-30",
                                     "features/train/run_date=2025-06-30"]
    assert calibration["data_root"] == "s3://other/x"
    assert revision(calls["extract"]["task_definition"]) == revision(arns["extract"]) + 1


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


def _moto(monkeypatch) -> dict:
    """boto3 arguments for the moto server scripts/test starts, which also serves Airflow's
    connection aws_default here."""
    endpoint = os.environ.get("REPURCHASE_TEST_S3_ENDPOINT")
    assert endpoint, "REPURCHASE_TEST_S3_ENDPOINT is not set: run tests/dags through scripts/test"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}))
    return dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                aws_secret_access_key="testing")


def _topic_into_queue(aws: dict, name: str):
    """An SNS topic on moto subscribed by an SQS queue, to read back what is published:
    (topic ARN, SQS client, queue URL)."""
    import boto3

    sns, sqs = boto3.client("sns", **aws), boto3.client("sqs", **aws)
    topic = sns.create_topic(Name=f"repurchase-{name}-{os.getpid()}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"repurchase-{name}-{os.getpid()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, sqs, queue


def _register_task_definitions(aws: dict, prefix: str = "repurchase") -> dict:
    """A new revision of each worker's task definition on moto's ECS; their ARNs by worker."""
    import boto3

    ecs = boto3.client("ecs", **aws)
    arns = {}
    for worker in ("extract", "build-features", "train", "calibrate", "score"):
        arns[worker] = ecs.register_task_definition(
            family=f"{prefix}-{worker}", requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc", cpu="1024", memory="4096",
            containerDefinitions=[{"name": worker, "image": "repurchase:test", "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]
    return arns


def _ecs_variables(monkeypatch) -> dict:
    """The Variables of the ECS runner, and the task definitions registered (their ARNs)."""
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_DATA_ROOT", "s3://lake/prod")
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_SUBNETS", "subnet-a")
    return _register_task_definitions(_moto(monkeypatch))


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


def test_failures_are_published_to_sns_routed_by_exit_code(dag, airflow_db, monkeypatch):
    """notify_failure publishes every task failure to the SNS topic of Variable
    repurchase_alerts_topic_arn, on the moto server scripts/test starts (its SNS and SQS): a
    quality-gate refusal (exit 65) is routed to the data's owners, anything else to the platform."""
    aws = _moto(monkeypatch)
    topic, sqs, queue = _topic_into_queue(aws, "alerts")
    monkeypatch.setenv("AIRFLOW_VAR_REPURCHASE_ALERTS_TOPIC_ARN", topic)
    _ecs_variables(monkeypatch)

    def received():
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            if not got.get("Messages"):
                return out
            for m in got["Messages"]:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    # ECS as the operator meets it: the task stops, describe_tasks reports the exit code.
    WorkerOperator = type(dag.get_task("train"))  # noqa: N806 - the DAG module's own class
    exit_code = {"code": 65}

    def refuse(self, context):
        self.arn = "arn:aws:ecs:task/1"
        raise AirflowException("This task is not in success state")

    monkeypatch.setattr(WorkerOperator, "stopped_task",
                        lambda self: _stopped(self.worker, exit_code["code"]))
    monkeypatch.setattr(EcsRunTaskOperator, "execute", refuse)
    run = dag.test(logical_date=TUESDAY, run_conf={"runner": "ecs"})
    assert run.state == DagRunState.FAILED
    # extract is the first task to fail (the recorder refuses every ECS task).
    notes = received()
    assert [n["Subject"] for n in notes] == ["repurchase extract failed for 2025-07-01"], notes
    note = notes[0]
    assert note["MessageAttributes"]["route"]["Value"] == "data"
    assert note["MessageAttributes"]["task_id"]["Value"] == "extract"
    for part in ("DAG repurchase, task extract", "run date 2025-07-01", "exit code 65",
                 "extract exited 65 (data refused by a quality gate", "route: data"):
        assert part in note["Message"], note["Message"]

    exit_code["code"] = 70
    run = dag.test(logical_date=TUESDAY.add(days=1), run_conf={"runner": "ecs"})
    notes = received()
    assert len(notes) == 1 and notes[0]["MessageAttributes"]["route"]["Value"] == "platform", notes
    assert "exit code 70 (a bug)" in notes[0]["Message"]


def _stopped(worker, code, cpu="1024", memory="4096"):
    return {"cpu": cpu, "memory": memory, "containers": [{"name": worker, "exitCode": code}]}


def test_an_oom_kill_reruns_at_once_on_the_next_fargate_size(dag, monkeypatch):
    """Exit 137 (killed at the memory limit): the same try runs the task again with twice the
    memory (task-level overrides, a valid Fargate size), at most twice; other codes keep their
    rules."""
    WorkerOperator = type(dag.get_task("train"))  # noqa: N806 - the DAG module's own class
    next_size = sys.modules[WorkerOperator.__module__].next_size
    assert next_size(1024, 4096) == (1024, 8192)
    assert next_size(1024, 8192) == (2048, 16384)
    assert next_size(256, 512) == (256, 1024)
    assert next_size(16384, 122880) is None
    op = dag.get_task("train")
    sizes, outcomes = [], [137, 137, 0]

    def run(self, context):
        sizes.append((self.overrides.get("cpu"), self.overrides.get("memory")))
        self.arn = f"arn:aws:ecs:task/{len(sizes)}"
        if outcomes[len(sizes) - 1]:
            raise AirflowException("This task is not in success state")
        return "done"

    memory = {"arn:aws:ecs:task/1": ("1024", "4096"), "arn:aws:ecs:task/2": ("1024", "8192")}
    monkeypatch.setattr(EcsRunTaskOperator, "execute", run)
    monkeypatch.setattr(WorkerOperator, "stopped_task", lambda self: _stopped(
        "train", outcomes[len(sizes) - 1], *memory.get(self.arn, ("1024", "4096"))))
    op.network_configuration["awsvpcConfiguration"]["subnets"] = "subnet-a"
    op.capacity_provider_strategy = [{"capacityProvider": "FARGATE", "weight": 1}]  # rendered
    assert op.run_ecs({}) == "done"
    assert sizes == [(None, None), ("1024", "8192"), ("2048", "16384")]

    # Three OOM kills in a row: the third is an ordinary (retried) failure.
    sizes.clear()
    outcomes[:] = [137, 137, 137]
    with pytest.raises(AirflowException) as err:
        op.run_ecs({})
    assert not isinstance(err.value, AirflowFailException)
    assert "exited 137" in str(err.value) and len(sizes) == 3


def test_spot_capacity_lost_reruns_at_once_on_demand(dag, monkeypatch):
    """Fargate Spot first; with no Spot capacity at RunTask, or a Spot interruption mid-run (the
    worker exits 75 on the SIGTERM), the same try runs again on on-demand Fargate. Other failures
    keep their rules, and on-demand is not left again."""
    from airflow.providers.amazon.aws.exceptions import EcsOperatorError

    op = dag.get_task("build_features")
    WorkerOperator = type(op)  # noqa: N806 - the DAG module's own class
    op.network_configuration["awsvpcConfiguration"]["subnets"] = "subnet-a"
    providers, outcomes, stopped = [], [], {}

    def run(self, context):
        if not providers:
            self.arn = None  # each section is a new try: no task of an earlier one
        providers.append(self.capacity_provider_strategy[0]["capacityProvider"])
        outcome = outcomes[len(providers) - 1]
        if outcome == "no capacity":
            failures = [{"arn": "arn:aws:ecs:us-east-1:0:container-instance/x",
                         "reason": "Capacity is unavailable at this time. Please try again later "
                                   "or in a different availability zone"}]
            raise EcsOperatorError(failures, {"tasks": [], "failures": failures})
        self.arn = f"arn:aws:ecs:task/{len(providers)}"
        stopped[self.arn] = outcome
        if outcome != "ok":
            raise AirflowException("This task is not in success state")
        return "done"

    def stopped_task(self):
        outcome = stopped.get(getattr(self, "arn", None))
        if outcome is None:
            return None
        task = _stopped("build-features", 75 if outcome == "interrupted" else outcome)
        if outcome == "interrupted":
            task.update(stopCode="SpotInterruption", stoppedReason="Your Spot Task was interrupted.")
        return task

    monkeypatch.setattr(EcsRunTaskOperator, "execute", run)
    monkeypatch.setattr(WorkerOperator, "stopped_task", stopped_task)
    for first in ("no capacity", "interrupted"):
        op.capacity_provider_strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
        providers.clear()
        outcomes[:] = [first, "ok"]
        assert op.run_ecs({}) == "done", first
        assert providers == ["FARGATE_SPOT", "FARGATE"], first

    # Interrupted on Spot, then a bad input on-demand: no retry; on-demand is kept.
    op.capacity_provider_strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    providers.clear()
    outcomes[:] = ["interrupted", 2]
    with pytest.raises(AirflowFailException, match="exited 2"):
        op.run_ecs({})
    assert providers == ["FARGATE_SPOT", "FARGATE"]
    # A transient failure on Spot that is not about capacity is retried by Airflow, on Spot.
    op.capacity_provider_strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    providers.clear()
    outcomes[:] = [75]
    with pytest.raises(AirflowException, match="exited 75") as err:
        op.run_ecs({})
    assert not isinstance(err.value, AirflowFailException) and providers == ["FARGATE_SPOT"]
    # Variable repurchase_capacity_provider=FARGATE: on-demand only; a typo is refused.
    op.capacity_provider_strategy = [{"capacityProvider": "FARGATE", "weight": 1}]
    providers.clear()
    outcomes[:] = ["no capacity"]
    with pytest.raises(EcsOperatorError):
        op.run_ecs({})
    assert providers == ["FARGATE"]
    op.capacity_provider_strategy = [{"capacityProvider": "FARGATE_SPOTT", "weight": 1}]
    with pytest.raises(AirflowFailException, match="repurchase_capacity_provider"):
        op.run_ecs({})


def test_deferrable_mode_keeps_the_exit_code_rules(dag, monkeypatch):
    """With ``deferrable=True`` (or ``[operators] default_deferrable``) the task ends in
    execute_complete: bad input and bugs still fail without retry, 75 is still retried."""
    op = dag.get_task("calibrate")
    WorkerOperator = type(op)  # noqa: N806 - the DAG module's own class

    def failed(self, context, event=None):
        raise AirflowException("This task is not in success state")

    monkeypatch.setattr(EcsRunTaskOperator, "execute_complete", failed)
    event = {"status": "success", "task_arn": "arn:aws:ecs:task/9", "cluster": "repurchase"}
    for code, fail in ((2, True), (65, True), (70, True), (75, False)):
        monkeypatch.setattr(WorkerOperator, "stopped_task",
                            lambda self, code=code: _stopped("calibrate", code))
        with pytest.raises(AirflowException) as err:
            op.execute_complete({}, event)
        assert isinstance(err.value, AirflowFailException) is fail, (code, err.value)
        assert f"exited {code}" in str(err.value)
    assert op.arn == "arn:aws:ecs:task/9"


def test_params_reach_champion_from_and_model_date(dag):
    calibrate, shard, merge = dag.get_task("calibrate"), dag.get_task("score_shard"), dag.get_task("score")
    params = {"champion_from": "2025-06-23", "model_date": "2025-06-30"}
    assert calibrate.param_args(params) == ["--champion-from", "2025-06-23"]
    assert merge.param_args(params) == []  # the merge takes no model
    assert calibrate.param_args({"champion_from": ""}) == []
    assert dag.get_task("train").param_args(params) == []
    # The mapped shard tasks are built from the partial's arguments when they run.
    assert shard.partial_kwargs["worker"] == "score"
    op = WorkerOperatorFor(dag, "score")
    assert op.param_args(params) == ["--model-date", "2025-06-30"]


def WorkerOperatorFor(dag, worker):  # noqa: N802 - reads as a constructor
    """A plain WorkerOperator of the DAG module (what a mapped task expands into)."""
    cls = type(dag.get_task("train"))
    return cls(task_id=f"probe_{worker}", worker=worker, args=["--run-date", "x"])


def _run_at(session, logical_date):
    """The DAG's run of that logical date in the metadata database, or None."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    return session.scalar(select(DagRun).where(DagRun.dag_id == "repurchase",
                                               DagRun.logical_date == logical_date))


def _ti_states(logical_date) -> dict:
    from airflow.utils.session import create_session

    with create_session() as session:
        run = _run_at(session, logical_date)
        return {} if run is None else {ti.task_id: ti.state
                                       for ti in run.get_task_instances(session=session)}


def _set_states(logical_date, states: dict):
    """Writes task outcomes into a run, as its tasks would when they end."""
    from airflow.utils.session import create_session

    with create_session() as session:
        for ti in _run_at(session, logical_date).get_task_instances(session=session):
            if ti.task_id in states:
                ti.state = states[ti.task_id]


def _past_met(dag, logical_date, task_id) -> bool:
    """Whether Airflow's depends-on-past rule lets ``task_id`` of that run start now."""
    from airflow.ti_deps.dep_context import DepContext
    from airflow.ti_deps.deps.prev_dagrun_dep import PrevDagrunDep
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = _run_at(session, logical_date).get_task_instance(task_id, session=session)
        ti.task = dag.get_task(task_id)
        return PrevDagrunDep().is_met(ti=ti, session=session, dep_context=DepContext())


def _store_dag():
    """The DAG serialized into the metadata database with its assets active, as the dag processor
    stores it (Airflow's backfill code reads it there, and a task whose assets are not active
    fails; dag.test stores it itself only from Airflow 3.1)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(DAGS))
    try:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    except ImportError:  # Airflow 3.0
        bag.sync_to_db("dags-folder", None)
    else:
        sync_bag_to_db(bag, "dags-folder", None)


def test_calibrations_keep_date_order_beside_a_backfill(dag, airflow_db, monkeypatch):
    """A backfill runs beside the schedule with its own max_active_runs. The scheduled Monday's
    calibrate waits until the backfill's calibrations before it are done, also across the
    backfill's days whose calibrate is skipped; then it runs. Airflow's own scheduling loop
    (dag.test) decides, over the runs Airflow's backfill code created; the backfill's task outcomes
    are written into the metadata database (from a second thread) as its tasks would write them."""
    import inspect
    import threading
    import time

    from airflow.models.backfill import InvalidReprocessBehavior, ReprocessBehavior, _create_backfill

    _ecs_variables(monkeypatch)
    calls = {}
    monkeypatch.setattr(EcsRunTaskOperator, "execute", _recorder(calls))
    day = pendulum.datetime(2025, 7, 6, tz="UTC")  # a Sunday: the schedule's run before
    assert dag.test(logical_date=day, run_conf={"runner": "ecs"}).state == DagRunState.SUCCESS
    _store_dag()

    # The backfill: Monday 2025-07-07 to Sunday 2025-07-13, none of it run yet.
    kwargs = dict(dag_id="repurchase", from_date=day.add(days=1), to_date=day.add(days=7),
                  max_active_runs=10, reverse=False, dag_run_conf={"runner": "ecs"})
    if "triggering_user_name" in inspect.signature(_create_backfill).parameters:
        kwargs["triggering_user_name"] = "backfill-beside-the-schedule"
    # Airflow refuses a backfill of a DAG with depends_on_past unless told what to do with the
    # days already run (docs/AIRFLOW.md's backfill command passes --reprocess-behavior).
    with pytest.raises(InvalidReprocessBehavior):
        _create_backfill(**kwargs)
    _create_backfill(**kwargs, reprocess_behavior=ReprocessBehavior.FAILED)
    backfill_days = [day.add(days=i) for i in range(1, 8)]
    for d in backfill_days:
        assert _ti_states(d).get("calibrate", "missing") is None, d

    monday = day.add(days=8)  # the schedule's next Monday, 2025-07-14
    seen = {}

    def backfill():
        """Plays the backfill once the scheduled run's train is done."""
        end = time.monotonic() + 120
        while "train" not in calls and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(4)  # the scheduling loop has looked again
        seen["before"] = (sorted(calls), _ti_states(monday).get("calibrate"))
        # Within the backfill, the days after its Monday skip calibrate at once, but their
        # champion_in_force waits for the day's before, so the chain carries to the last day.
        seen["chain"] = [_past_met(dag, d, "champion_in_force") for d in backfill_days[:3]]
        _set_states(backfill_days[0], {"champion_in_force": TaskInstanceState.SUCCESS})
        seen["chain"].append(_past_met(dag, backfill_days[1], "champion_in_force"))
        _set_states(backfill_days[0], {"champion_in_force": None})
        time.sleep(2)
        seen["after_chain"] = sorted(calls)
        # The backfill ends, in date order: its Monday calibrates, the other days skip.
        for d in backfill_days:
            _set_states(d, {
                "calibrate": TaskInstanceState.SUCCESS if d == backfill_days[0]
                else TaskInstanceState.SKIPPED,
                "champion_in_force": TaskInstanceState.SUCCESS,
                "training_succeeded": TaskInstanceState.SUCCESS,
            })

    calls.clear()
    player = threading.Thread(target=backfill, daemon=True)
    player.start()
    run = dag.test(logical_date=monday, run_conf={"runner": "ecs"})
    player.join(timeout=10)
    assert run.state == DagRunState.SUCCESS
    # While the backfill's Monday was not calibrated, the scheduled calibrate waited ...
    assert seen["before"] == (["build_features", "extract", "train"], None), seen
    # The backfill's first run may start; each later day waits for the day before it.
    assert seen["chain"] == [True, False, False, True], seen
    assert seen["after_chain"] == ["build_features", "extract", "train"], seen
    # Then it ran, and scoring after it.
    assert calls["calibrate"] == [["--run-date", "2025-07-14", "--data-root", "s3://lake/prod"]]
    assert "score" in calls


def test_a_run_past_its_deadline_is_published_to_sns(monkeypatch):
    """From Airflow 3.1: a run not finished REPURCHASE_RUN_DEADLINE_HOURS after it was queued
    fires the DAG's deadline alert; its callback, run by Airflow's own CallbackTrigger (what the
    triggerer runs), publishes to the SNS topic on the moto server. The scheduler's detection of
    the missed deadline is Airflow's and not run here."""
    import asyncio

    if DeadlineAlertAvailable() is False:
        # Airflow 3.0 has no deadline alerts: the DAG parses without one.
        monkeypatch.setenv("REPURCHASE_ALERTS_TOPIC_ARN", "arn:aws:sns:us-east-1:0:x")
        bag = DagBag(dag_folder=str(DAGS))
        assert bag.import_errors == {} and not getattr(bag.dags["repurchase"], "deadline", None)
        pytest.skip("deadline alerts exist from Airflow 3.1")
    from airflow.triggers.callback import CallbackTrigger

    aws = _moto(monkeypatch)
    topic, sqs, queue = _topic_into_queue(aws, "deadline")

    # No topic in the environment: no deadline.
    monkeypatch.delenv("REPURCHASE_ALERTS_TOPIC_ARN", raising=False)
    assert not DagBag(dag_folder=str(DAGS)).dags["repurchase"].deadline
    monkeypatch.setenv("REPURCHASE_ALERTS_TOPIC_ARN", topic)
    monkeypatch.setenv("REPURCHASE_RUN_DEADLINE_HOURS", "6")
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    (alert,) = bag.dags["repurchase"].deadline
    assert alert.interval == pendulum.duration(hours=6)
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"

    # What the scheduler hands the triggerer when the deadline passes (Deadline.handle_miss).
    context = {"dag_run": {"dag_id": "repurchase", "run_id": "scheduled__2025-07-01T00:00:00+00:00",
                           "logical_date": "2025-07-01T00:00:00Z", "state": "running",
                           "queued_at": "2025-07-02T00:00:05Z"},
               "deadline": {"id": "d-1", "deadline_time": "2025-07-02T06:00:05Z"}}
    trigger = CallbackTrigger(callback_path=alert.callback.path,
                              callback_kwargs={**alert.callback.kwargs, "context": context})

    async def events():
        return [e.payload async for e in trigger.run()]

    payloads = asyncio.run(events())
    assert payloads[-1]["state"] == "success", payloads
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    (note,) = [json.loads(m["Body"]) for m in got["Messages"]]
    assert note["Subject"] == "repurchase run not finished 6 h after it was queued"
    assert note["MessageAttributes"]["route"]["Value"] == "platform"
    for part in ("run scheduled__2025-07-01T00:00:00+00:00", "deadline 2025-07-02T06:00:05Z",
                 "state running"):
        assert part in note["Message"], note["Message"]
    # A deadline past the 20-hour dagrun_timeout would never fire: refused when parsed.
    monkeypatch.setenv("REPURCHASE_RUN_DEADLINE_HOURS", "30")
    assert "REPURCHASE_RUN_DEADLINE_HOURS" in str(DagBag(dag_folder=str(DAGS)).import_errors)


def DeadlineAlertAvailable() -> bool:  # noqa: N802 - reads as a question
    try:
        from airflow.sdk import DeadlineAlert  # noqa: F401
    except ImportError:
        return False
    return True
