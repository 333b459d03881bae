"""Production mode on a real scheduler: waiting for the raw partition, and the deadline alert.

One Airflow (scheduler, dag-processor, triggerer, api-server) in production mode with a short sensor
(deferred to the triggerer, 3 s pokes, 25 s timeout) and a deadline 3 s after the data interval.
Unpausing the DAG makes the scheduler create the run of the latest complete interval (catchup off),
whose partition is not there: it waits, times out naming the file, and misses its deadline, which
the triggerer's callback records in the run registry. A manual run then gets its file while it
waits and goes on to load it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest
from airflow_client.client import DAGRunResponse, TaskInstanceResponse, TriggerDAGRunPostBody

from ecompipe.local_airflow import Api, list_task_instances, set_paused
from tests.helpers.airflow import live_members
from tests.helpers.sandbox import REPO_ROOT, Pipeline, airflow_api, airflow_sandbox_env

pytestmark = pytest.mark.airflow
DAG_ID = "end_to_end_data_pipeline"
SENSOR = "wait_for_raw_partition"
SENSOR_TIMEOUT_SECONDS = 25
DEADLINE_SECONDS = 3
ARRIVING_DATE = "2024-01-10"
T = TypeVar("T")


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("production")
    data_dir = root / "data"
    settings = airflow_sandbox_env(
        root,
        PIPELINE_SENSOR_POKE_SECONDS="3",
        PIPELINE_SENSOR_TIMEOUT_SECONDS=str(SENSOR_TIMEOUT_SECONDS),
        PIPELINE_DEADLINE_MINUTES=str(DEADLINE_SECONDS / 60),
    )
    env = {**os.environ, **settings}
    env.pop("PIPELINE_SCHEDULE_END_DATE", None)  # the scheduler must create "yesterday's" run
    data_dir.mkdir(parents=True)
    started = subprocess.run(
        ["make", "-s", "airflow"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield env
    finally:
        subprocess.run(["make", "-s", "airflow-stop"], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        found = probe()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"Gave up after {timeout:.0f}s waiting for {what}")


def _task_states(api: Api, run_id: str) -> dict[str, TaskInstanceResponse]:
    return {ti.task_id: ti for ti in list_task_instances(api, DAG_ID, run_id)}


def _state(instance: TaskInstanceResponse | None) -> str | None:
    return instance.state.value if instance and instance.state else None


def _follow(api: Api, run_id: str, timeout: float) -> tuple[DAGRunResponse, set[str]]:
    """Wait for the run to end; return it and every state its sensor was seen in."""
    seen: set[str] = set()

    def ended() -> DAGRunResponse | None:
        seen.add(str(_state(_task_states(api, run_id).get(SENSOR))))
        run = api.dag_runs.get_dag_run(DAG_ID, run_id)
        return run if run.state in ("success", "failed") else None

    return _wait_for(f"run {run_id} to end", ended, timeout), seen


def _task_log(env: dict[str, str], run_id: str, task_id: str) -> str:
    folder = Path(env["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    return "\n".join(path.read_text(errors="replace") for path in sorted(folder.rglob("*")) if path.is_file())


def _registry_row(env: dict[str, str], run_id: str) -> dict[str, Any] | None:
    with duckdb.connect(env["DUCKDB_PATH"], read_only=True) as con:
        found = con.execute(
            "select run_date::varchar, run_type, status, deadline_time, deadline_missed_at "
            "from pipeline_runs where run_id = ?",
            [run_id],
        ).fetchone()
    keys = ("run_date", "run_type", "status", "deadline_time", "deadline_missed_at")
    return dict(zip(keys, found, strict=True)) if found else None


def _registry_row_when(env: dict[str, str], run_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        try:
            row = _registry_row(env, run_id)
        except duckdb.Error:  # the table does not exist yet, or a writer holds the file
            return None
        return row if row and done(row) else None

    return _wait_for(f"the registry record of {run_id}", probe, timeout=120, every=2)


def test_scheduled_run_times_out_naming_the_file_and_its_deadline_miss_is_recorded(
    production: dict[str, str],
) -> None:
    env = production
    api = airflow_api(env)
    set_paused(api, False)

    def scheduled_run() -> DAGRunResponse | None:
        runs = api.dag_runs.get_dag_runs(DAG_ID, limit=100).dag_runs
        return next((run for run in runs if run.run_type == "scheduled"), None)

    run = _wait_for("the scheduler to create the latest interval's run", scheduled_run, timeout=180)
    run_id = run.dag_run_id
    run_date = run.data_interval_start.date().isoformat()
    missing = Path(env["PIPELINE_DATA_DIR"]) / "raw" / run_date / "transactions.csv"
    assert not missing.exists()

    began = time.monotonic()
    ended, sensor_states = _follow(api, run_id, timeout=420)
    assert ended.state == "failed"
    assert time.monotonic() - began >= SENSOR_TIMEOUT_SECONDS - 5, "the run failed before the sensor's timeout"
    assert "deferred" in sensor_states, "while waiting the sensor must give its worker slot back"
    states = _task_states(api, run_id)
    assert states[SENSOR].state == "failed"
    assert states[SENSOR].try_number == 1, "a timed-out sensor is not retried"
    assert states["ingest_raw_partition"].state == "upstream_failed"

    log = _task_log(env, run_id, SENSOR)
    assert f"Raw partition for {run_date} did not arrive within {SENSOR_TIMEOUT_SECONDS} s: {missing}" in log
    assert "Deliver the file" in log and "is not there yet" in log

    # The deadline (due time D+1 02:00 + 3 s) passed while the run waited: the triggerer's callback recorded it.
    row = _registry_row_when(env, run_id, lambda r: r["deadline_missed_at"] is not None and r["status"] == "failed")
    expected_deadline = run.data_interval_end + timedelta(hours=2, seconds=DEADLINE_SECONDS)
    assert row["run_date"] == run_date and row["run_type"] == "scheduled"
    assert row["deadline_time"] == expected_deadline.replace(tzinfo=None)
    assert row["deadline_missed_at"] > row["deadline_time"]
    lines = [json.loads(line) for line in (Path(env["PIPELINE_DATA_DIR"]) / "pipeline_registry.jsonl").open()]
    [entry] = [line for line in lines if line["run_id"] == run_id]
    assert entry["status"] == "failed" and entry["deadline_missed_at"], "the run's record keeps the miss"
    services = Path(env["AIRFLOW_HOME"]) / "logs" / "services"
    assert f"DEADLINE MISSED: {DAG_ID} run {run_id}" in (services / "triggerer.log").read_text()
    triggerer = int((Path(env["AIRFLOW_HOME"]) / "run" / "triggerer.pid").read_text())
    assert live_members(triggerer), "the callback must not bring the triggerer down"


def test_partition_arriving_while_the_sensor_waits_lets_the_run_load_it(production: dict[str, str]) -> None:
    env = production
    api = airflow_api(env)
    set_paused(api, False)
    # 10 s pokes: the trigger's first look comes well after the deferral's executor event (the race
    # of apache/airflow#71172 would fail the resumed sensor, which try_number == 1 below would catch).
    conf = {"run_date": ARRIVING_DATE, "sensor_poke_seconds": 10, "sensor_timeout_seconds": 600}
    run_id = api.dag_runs.trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf=conf)).dag_run_id

    def waiting() -> bool:
        return _state(_task_states(api, run_id).get(SENSOR)) == "deferred"

    _wait_for("the sensor to wait for the file", waiting, timeout=300)
    Pipeline(data_dir=Path(env["PIPELINE_DATA_DIR"]), work_dir=Path(env["AIRFLOW_HOME"]) / "work").generate(
        ARRIVING_DATE, rows=300
    )
    ended, _ = _follow(api, run_id, timeout=900)
    states = _task_states(api, run_id)
    assert states[SENSOR].state == "success" and states[SENSOR].try_number == 1
    assert ended.state == "success", {task: _state(ti) for task, ti in states.items()}
    assert "has arrived" in _task_log(env, run_id, SENSOR)
    row = _registry_row_when(env, run_id, lambda r: r["status"] == "success")
    assert row["run_date"] == ARRIVING_DATE
    assert row["deadline_missed_at"] is None, "a manual run is not held to the schedule's deadline"
    with duckdb.connect(env["DUCKDB_PATH"], read_only=True) as con:
        kept = con.execute("select count(*) from fct_transactions where partition_date = ?", [ARRIVING_DATE]).fetchone()
    assert kept[0] > 0


def _callback_context(run_type: str, run_id: str) -> dict[str, Any]:
    """The context Airflow's scheduler gives a deadline callback (Deadline.handle_miss)."""
    return {
        "dag_run": {
            "dag_id": DAG_ID,
            "dag_run_id": run_id,
            "run_type": run_type,
            "state": "running",
            "conf": {},
            "start_date": "2024-01-06T02:00:05Z",
            "end_date": None,
            "logical_date": "2024-01-05T00:00:00Z",
            "data_interval_start": "2024-01-05T00:00:00Z",
            "data_interval_end": "2024-01-06T00:00:00Z",
        },
        "deadline": {"id": "x", "deadline_time": "2024-01-06 04:00:00+00:00"},
    }


def test_deadline_callback_records_scheduled_runs_once_and_ignores_backfills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from ecompipe.airflow.deadlines import record_deadline_miss
    from ecompipe.pipeline.run_registry import RunRecord, record_run

    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    outcome = asyncio.run(record_deadline_miss(context=_callback_context("backfill", "backfill__2024-01-05")))
    assert "not recorded" in outcome and not (tmp_path / "warehouse.duckdb").exists()

    run_id = "scheduled__2024-01-05T00:00:00+00:00"
    assert "recorded" in asyncio.run(record_deadline_miss(context=_callback_context("scheduled", run_id)))
    first = _registry_row({"DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")}, run_id)
    assert first is not None and first["run_date"] == "2024-01-05" and first["status"] == "running"
    assert first["deadline_time"] == datetime(2024, 1, 6, 4)
    asyncio.run(record_deadline_miss(context=_callback_context("scheduled", run_id)))  # twice = once
    # The run records itself at its end: one record, the miss kept, in the table and the JSON lines.
    record_run(RunRecord("2024-01-05", run_id, "scheduled", None, "2024-01-06T05:00:00+00:00", "failed"))
    again = _registry_row({"DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")}, run_id)
    assert again == {**first, "status": "failed"}
    lines = [json.loads(line) for line in (tmp_path / "pipeline_registry.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["status"] == "failed" and lines[0]["deadline_missed_at"]
