"""DAG integrity, in the spirit of the Astro project template: imports, tags, retries, graph, wiring."""

from __future__ import annotations

import copy
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.timetables.base import TimeRestriction

from ecompipe.airflow.timetable import DailyPartitionTimetable

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"
DAG_ID = "end_to_end_data_pipeline"
DBT_MODELS = (
    "stg_raw__partitions",
    "stg_raw__transactions",
    "stg_raw__rejects",
    "int_partitions__row_accounting",
    "dq_daily",
    "int_transactions__repeats",
    "int_transactions__classified",
    "fct_transactions",
    "agg_customer_daily",
    "agg_customer_rolling",
    "fct_transaction_features",
    "export_daily_parquet",
)


SENSOR_ID = "wait_for_raw_partition"
PRODUCER_ID = "dbt.dbt_producer_watcher"
MANIFEST = REPO_ROOT / "dbt_project" / "target" / "manifest.json"


def _manifest_models() -> dict[str, bool]:
    """Model name -> whether it has data tests, from dbt's manifest (what Cosmos renders)."""
    nodes = json.loads(MANIFEST.read_text())["nodes"]
    models = {n["unique_id"]: n["name"] for n in nodes.values() if n["resource_type"] == "model"}
    tested = {
        parent
        for n in nodes.values()
        if n["resource_type"] == "test"
        for parent in n["depends_on"]["nodes"]
        if parent in models
    }
    return {name: unique_id in tested for unique_id, name in models.items()}


def _model_tasks(dag) -> dict[str, object]:
    """dbt model name -> its task, `dbt.<model>_run`."""
    tasks = {}
    for task in dag.tasks:
        name = task.task_id.removeprefix("dbt.")
        if task.task_id.startswith("dbt.") and name.endswith("_run"):
            tasks[name.removesuffix("_run")] = task
    return tasks


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_bulk_dag_is_manual_and_shares_the_warehouse_pool(dagbag: DagBag) -> None:
    bulk = dagbag.dags["end_to_end_data_pipeline_bulk"]
    assert type(bulk.timetable).__name__ == "NullTimetable", "the bulk DAG runs only when triggered"
    chunk = bulk.get_task("build_chunk")
    assert chunk.pool == "duckdb_warehouse" and chunk.max_active_tis_per_dag == 1


@pytest.fixture(scope="module")
def dag(dagbag: DagBag):
    return dagbag.dags[DAG_ID]


def test_dags_import_without_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dag_ids


def test_parsing_runs_no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"DAG parsing started a subprocess: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {} and DAG_ID in bag.dag_ids


@pytest.mark.parametrize("path", sorted(DAGS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_import_airflow_before_cosmos_and_pass_safe_mode(path: Path) -> None:
    text = path.read_text()
    assert "airflow" in text and "dag" in text.lower(), "the dag-processor's safe mode would skip this file"
    if "cosmos" in text:
        assert text.index("from airflow") < text.index("from cosmos"), "import airflow before cosmos"


def test_every_dag_has_tags_owner_and_retries(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries}"
            assert task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"


def test_schedule_and_defaults(dag) -> None:
    assert isinstance(dag.timetable, DailyPartitionTimetable)
    assert dag.timetable.lag == timedelta(hours=2) and dag.timetable.summary == "daily, D+1 02:00 UTC"
    # Registered by this package's Airflow plugin: without it the scheduler cannot deserialize the DAG.
    from airflow import plugins_manager

    assert DailyPartitionTimetable in plugins_manager.get_timetables_plugins().values()
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date == pendulum.datetime(2024, 1, 1, tz="UTC")
    assert {"production", "end-to-end", "scheduled"} <= set(dag.tags)
    assert dag.default_args["retries"] == 2
    assert dag.default_args["retry_delay"] == timedelta(minutes=5)


def test_tasks_follow_the_dbt_graph(dag) -> None:
    ids = set(dag.task_ids)
    assert {"reprocess_late_partitions", "ingest_raw_partition", "record_run"} <= ids
    assert "reprocess_late_partitions" in dag.get_task("ingest_raw_partition").upstream_task_ids
    models = _model_tasks(dag)
    assert set(DBT_MODELS) <= set(models)
    stg, fct, agg = models["stg_raw__partitions"], models["fct_transactions"], models["agg_customer_daily"]
    assert "ingest_raw_partition" in stg.upstream_task_ids
    assert "ingest_raw_partition" in dag.get_task(PRODUCER_ID).upstream_task_ids
    assert fct.task_id in agg.upstream_task_ids
    # The quality gate: the marts' tasks wait for the row-conservation audit's (its model and tests).
    assert models["int_partitions__row_accounting"].task_id in fct.upstream_task_ids
    record = dag.get_task("record_run")
    assert record.upstream_task_ids and record.trigger_rule == "all_done", "the registry must hear of failures too"


def test_every_warehouse_task_uses_the_one_slot_pool(dag) -> None:  # the daily DAG
    for task in dag.tasks:
        if task.task_id == SENSOR_ID:
            continue  # only looks for a file; waiting must not block the warehouse (checked below)
        if task.task_id == f"{PRODUCER_ID}_done":
            assert type(task).__name__ == "EmptyOperator", "Cosmos's gate after the producer runs nothing"
            continue
        if getattr(task, "producer_task_id", None) == PRODUCER_ID:
            continue  # Cosmos's sensors read XComs once the build is done (checked below)
        assert task.pool == "duckdb_warehouse", f"{task.task_id} writes or reads the warehouse outside the pool"


def test_run_date_is_the_logical_date(dag) -> None:
    """The run of partition D has logical date D 00:00 and interval [D, D+1), fires at D+1 02:00, and its
    dbt's date (PIPELINE_RUN_DATE) renders to D; the param run_date overrides it; a run with neither
    renders '' (refused). No --vars: dbt's partial parsing survives from one date to the next."""
    first = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=pendulum.datetime(2024, 1, 15, tz="UTC"), latest=None, catchup=True),
    )
    assert first.run_after == pendulum.datetime(2024, 1, 16, 2, tz="UTC")
    assert first.logical_date == pendulum.datetime(2024, 1, 15, tz="UTC")
    assert first.data_interval.end == pendulum.datetime(2024, 1, 16, tz="UTC")
    following = dag.timetable.next_dagrun_info(
        last_automated_data_interval=first.data_interval,
        restriction=TimeRestriction(earliest=pendulum.datetime(2024, 1, 1, tz="UTC"), latest=None, catchup=True),
    )
    assert following.logical_date == pendulum.datetime(2024, 1, 16, tz="UTC")
    producer = dag.get_task(PRODUCER_ID)
    assert not producer.vars, "a date in --vars makes every build parse the whole project again"
    template = producer.env["PIPELINE_RUN_DATE"]
    env = dag.get_template_env()
    rendered = env.from_string(template).render(params={"run_date": None}, ds=first.logical_date.strftime("%Y-%m-%d"))
    assert rendered == "2024-01-15"
    override = env.from_string(template).render(params={"run_date": "2024-03-01"}, ds="2024-01-15")
    assert override == "2024-03-01"
    assert env.from_string(template).render(params={"run_date": "2024-03-01"}) == "2024-03-01"
    assert env.from_string(template).render(params={"run_date": None}) == ""
    ingest = dag.get_task("ingest_raw_partition")
    assert list(ingest.op_args) == [template], "ingestion and dbt must process the same date"
    for name, sensor in _model_tasks(dag).items():  # a sensor's fallback run (a retry) builds the same date
        assert sensor.env["PIPELINE_RUN_DATE"] == template and not sensor.vars, name


def test_dbt_tasks_get_absolute_pipeline_paths(dag) -> None:
    for dbt_task in (dag.get_task(PRODUCER_ID), _model_tasks(dag)["fct_transactions"]):
        assert Path(dbt_task.env["PIPELINE_DATA_DIR"]).is_absolute()
        assert Path(dbt_task.env["DUCKDB_PATH"]).is_absolute()


def test_one_dbt_build_per_run_and_a_task_per_model(dag) -> None:
    """Cosmos WATCHER (docs/performance.md): one `dbt build` per run, tests included, and a sensor task per
    model that reports its model and its tests. A regression to a dbt process per model, to one opaque
    task, or to a build without its tests (the quality gate), fails here."""
    from airflow.sdk.bases.sensor import BaseSensorOperator
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    from ecompipe.airflow.watcher_tries import BuildReportSensorMixin, RebuildingProducer

    producer = dag.get_task(PRODUCER_ID)
    assert isinstance(producer, DbtProducerWatcherOperator) and producer.base_cmd == ["build"]
    assert isinstance(producer, RebuildingProducer), "a retry or a clear must build again, not skip"
    assert producer.pool == "duckdb_warehouse"
    assert producer.invocation_mode.value == "subprocess", "dbtRunner keeps the warehouse open in `dags test`"
    assert not producer.exclude and not producer.select, "the build covers the whole project"
    assert "--resource-type" not in producer.dbt_cmd_flags, "the build must run the data tests: the quality gate"
    # ... but not the unit tests (fixed inputs: `make test` runs them), and that flag is dbt's.
    assert producer.dbt_cmd_flags == ["--exclude-resource-type", "unit_test"], producer.dbt_cmd_flags
    models = _model_tasks(dag)
    assert set(models) == set(_manifest_models()), "every dbt model has its own task"
    gate = dag.get_task(f"{PRODUCER_ID}_done")
    sensors = [t for t in dag.tasks if t.task_id.startswith("dbt.") and t.task_id not in (PRODUCER_ID, gate.task_id)]
    assert sorted(sensors, key=lambda t: t.task_id) == sorted(models.values(), key=lambda t: t.task_id), (
        "no task per model's tests: each model's task reports them"
    )
    for sensor in sensors:
        assert isinstance(sensor, BaseSensorOperator), f"{sensor.task_id} would run dbt on its first try"
        assert sensor.producer_task_id == PRODUCER_ID, sensor.task_id
        # Deferrable sensors would wait inside `airflow dags test` for a producer that never starts.
        assert sensor.mode == "reschedule" and sensor.deferrable is False, sensor.task_id
        # They start once the build is done (below), so they only read XComs: no warehouse slot, and
        # they run beside the next run's writers instead of one at a time in the slot.
        assert sensor.pool == "default_pool", sensor.task_id
        assert gate.task_id in sensor.get_flat_relative_ids(upstream=True), f"{sensor.task_id} pokes during the build"
        # Its model's result and its tests' from the producer; cleared alone, `dbt build` of its model.
        assert isinstance(sensor, BuildReportSensorMixin) and sensor.base_cmd == ["build"], sensor.task_id


def test_sensors_report_whatever_the_build_did(dag) -> None:
    """The sensors at the root of the dbt graph wait for the producer's gate *and* ingestion: they run
    whether the build succeeded, failed (to show which model failed) or skipped (a cleared run: they
    fall back to dbt), and not when ingestion failed or skipped (an unchanged partition)."""
    gate = dag.get_task(f"{PRODUCER_ID}_done")
    roots = [dag.get_task(task_id) for task_id in gate.downstream_task_ids if task_id != "record_run"]
    assert sorted(root.task_id for root in roots) == [
        "dbt.stg_dbt_hooks__test_results_run",
        "dbt.stg_raw__partitions_run",
    ]
    for root in roots:
        assert root.upstream_task_ids == {gate.task_id, "ingest_raw_partition"}
        assert root.trigger_rule == "all_done_min_one_success"
    assert gate.trigger_rule == "none_failed", "Cosmos's gate: done once the producer is, without failing"


def test_production_runs_wait_for_their_partition_without_holding_a_slot(dag) -> None:
    sensor = dag.get_task(SENSOR_ID)
    assert sensor.deferrable, "a poking sensor would hold a worker slot for hours"
    assert sensor.pool != "duckdb_warehouse", "waiting must not take the warehouse's only slot"
    assert sensor.poke_interval == 300 and sensor.timeout == 6 * 3600, "production defaults: 5 min / 6 h"
    ingest = dag.get_task("ingest_raw_partition")
    assert SENSOR_ID in ingest.upstream_task_ids
    assert sensor.run_date == ingest.op_args[0], "the sensor waits for the date ingestion processes"
    assert {"sensor_poke_seconds", "sensor_timeout_seconds"} <= set(dag.params)


def test_sensor_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_SENSOR_POKE_SECONDS", "7")
    monkeypatch.setenv("PIPELINE_SENSOR_TIMEOUT_SECONDS", "90")
    monkeypatch.setenv("PIPELINE_DEADLINE_MINUTES", "30")
    configured = DagBag(dag_folder=str(DAGS_DIR)).dags[DAG_ID]
    sensor = configured.get_task(SENSOR_ID)
    assert (sensor.poke_interval, sensor.timeout) == (7, 90)
    [alert] = configured.deadline if isinstance(configured.deadline, list) else [configured.deadline]
    assert alert.interval == timedelta(days=1, hours=2, minutes=30)
    monkeypatch.setenv("PIPELINE_SENSOR_TIMEOUT_SECONDS", "-5")
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert any("PIPELINE_SENSOR_TIMEOUT_SECONDS must be" in str(error) for error in bag.import_errors.values())


def test_deadline_is_two_hours_after_the_run_is_due(dag) -> None:
    from airflow.sdk import AsyncCallback, DeadlineReference

    [alert] = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    # Scheduled runs: logical date D 00:00, due at D+1 02:00 -> finished by D+1 04:00.
    assert alert.interval == timedelta(days=1, hours=4)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "ecompipe.airflow.deadlines.record_deadline_miss"
    from ecompipe.airflow.deadlines import under_dags_test

    # `airflow dags test` gets none (apache/airflow#73428); the scheduler's parse does.
    assert under_dags_test(["dags", "test", DAG_ID, "2024-01-02"]) and not under_dags_test(["dag-processor"])


def test_sensor_defers_to_the_triggerer_in_production_and_not_in_demo_mode(
    dag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.standard.triggers.file import FileTrigger
    from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PIPELINE_MODE", raising=False)
    sensor = copy.deepcopy(dag.get_task(SENSOR_ID))
    sensor.run_date = "2024-01-05"
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"params": {"sensor_timeout_seconds": 90}})
    trigger = deferred.value.trigger
    assert isinstance(trigger, FileTrigger)
    assert trigger.filepath == str(tmp_path / "raw" / "2024-01-05" / "transactions.csv")
    assert deferred.value.timeout == timedelta(seconds=90)
    assert sensor.execute({"params": {"generate_if_missing": True}}), "demo mode does not wait"
    sensor.run_date = "2024-01-05/../../etc"
    with pytest.raises(AirflowFailException, match="YYYY-MM-DD"):
        sensor.execute({"params": {}})
