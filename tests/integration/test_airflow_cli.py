"""The course's Airflow CLI commands, typed as docs/airflow-cli.md says, against a real scheduler.

`source airflow_home/activate` (written by `make airflow`) gives a shell this repo's Airflow; then
`dags trigger --logical-date D` loads partition D, `backfill create --from-date A --to-date B` loads
A..B inclusive, and `tasks clear` of a date's run builds it once again (one dbt build, not one per model);
a model's task cleared alone builds that model (and its tests) alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ecompipe import local_airflow
from ecompipe.core.warehouse import fingerprints
from tests.helpers.airflow import DAG_ID
from tests.helpers.sandbox import Pipeline, airflow_sandbox_env

PRODUCER = "dbt.dbt_producer_watcher"
MODEL_TASK = "dbt.fct_transactions_run"
# What Cosmos's model/test sensors log when they run dbt themselves instead of reading the build.
FALLBACK_MARKERS = ("Retry attempt #", "Falling back to running", "Running tests for model")


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Pipeline]]:
    root = tmp_path_factory.mktemp("cli")
    settings = airflow_sandbox_env(root, PIPELINE_SCHEDULE_END_DATE="2024-01-03", PIPELINE_SENSOR_TIMEOUT_SECONDS="60")
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    pipeline = Pipeline(data_dir=root / "data", work_dir=root / "work")
    try:
        local_airflow.start()
        yield settings, pipeline
    finally:
        local_airflow.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _airflow(settings: dict[str, str], command: str, timeout: int = 300) -> str:
    """Run ``airflow <command>`` in a clean bash that only sourced the activate script."""
    activate = Path(settings["AIRFLOW_HOME"]) / "activate"
    script = f"source {activate} && airflow {command}"
    clean = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    for _ in range(4):
        done = subprocess.run(["bash", "-c", script], env=clean, capture_output=True, text=True, timeout=timeout)
        # SQLite, the embedded profile's metadata database, refuses a write while the scheduler holds
        # it; nothing was written, and a person would type the command again (docs/airflow-cli.md).
        if done.returncode == 0 or "database is locked" not in done.stdout + done.stderr:
            break
        time.sleep(3)
    assert done.returncode == 0, f"airflow {command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _runs(settings: dict[str, str]) -> list[dict[str, str]]:
    """`airflow dags list-runs -o json`: the JSON list, after whatever log lines precede it."""
    out = _airflow(settings, f"dags list-runs {DAG_ID} -o json")
    decoder = json.JSONDecoder()
    for line in out.splitlines():
        if line.startswith("[") and (line.startswith("[{") or line.strip() == "[]"):
            runs, _ = decoder.raw_decode(line)
            return runs
    raise AssertionError(f"no JSON list in: {out[-2000:]}")


def _wait_finished(settings: dict[str, str], logical_dates: set[str], timeout: float = 600) -> dict[str, str]:
    """{partition: state} once every run of ``logical_dates`` has finished."""
    deadline = time.monotonic() + timeout
    while True:
        states = {run["logical_date"][:10]: run["state"] for run in _runs(settings) if run["logical_date"]}
        if logical_dates <= states.keys() and all(states[d] in ("success", "failed") for d in logical_dates):
            return {day: states[day] for day in sorted(logical_dates)}
        assert time.monotonic() < deadline, f"runs not finished after {timeout}s: {states}"
        time.sleep(5)


def _wait_run(run_id: str, timeout: float = 600) -> str:
    """The state of a cleared run once it has finished (`tasks clear` queues it before returning)."""
    deadline = time.monotonic() + timeout
    api = local_airflow.connect()
    while (state := api.dag_runs.get_dag_run(DAG_ID, run_id).state) not in ("success", "failed"):
        assert time.monotonic() < deadline, f"cleared run {run_id} not finished: {state}"
        time.sleep(5)
    return str(getattr(state, "value", state))


def _fact_dates(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.sql("select distinct partition_date::varchar from fct_transactions order by 1").fetchall()
    return [row[0] for row in rows]


def _sensor_logs(settings: dict[str, str], run_id: str, attempt: int) -> dict[str, str]:
    run_dir = Path(settings["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    return {
        path.parent.name: path.read_text(errors="replace")
        for path in run_dir.glob(f"task_id=dbt.*/attempt={attempt}.log")
        if "dbt_producer_watcher" not in path.parent.name
    }


def test_the_course_commands_do_what_they_say(shell: tuple[dict[str, str], Pipeline]) -> None:
    settings, pipeline = shell
    assert DAG_ID in _airflow(settings, "dags list")
    assert "training_snapshot" in _airflow(settings, "dags list")
    # The CLI sees the project's settings: the DAGs folder is the repo's, not AIRFLOW_HOME/dags.
    dags_folder = _airflow(settings, "config get-value core dags_folder").strip()
    assert Path(dags_folder) == Path(local_airflow.REPO_ROOT) / "dags"
    _airflow(settings, f"dags unpause {DAG_ID}")
    _airflow(settings, f"dags next-execution {DAG_ID}")

    # "Trigger for a specific date": the run processes that partition.
    pipeline.generate("2024-01-03", rows=300)
    _airflow(settings, f"dags trigger {DAG_ID} --logical-date 2024-01-03")
    assert _wait_finished(settings, {"2024-01-03"}) == {"2024-01-03": "success"}
    assert _fact_dates(pipeline.warehouse) == ["2024-01-03"]

    # A backfill's --to-date is inclusive: 01-01 and 01-02 both load, two at a time.
    pipeline.generate("2024-01-01", "2024-01-02", rows=300)
    _airflow(
        settings, f"backfill create --dag-id {DAG_ID} --from-date 2024-01-01 --to-date 2024-01-02 --max-active-runs 2"
    )
    states = _wait_finished(settings, {"2024-01-01", "2024-01-02", "2024-01-03"})
    assert states == {"2024-01-01": "success", "2024-01-02": "success", "2024-01-03": "success"}
    assert _fact_dates(pipeline.warehouse) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    before = fingerprints(pipeline.warehouse)

    # The lab's "clear and rerun" in Airflow 3's words: one dbt build again, the sensors read it.
    (run,) = [r for r in _runs(settings) if (r["logical_date"] or "").startswith("2024-01-02")]
    _airflow(settings, f"tasks clear {DAG_ID} --start-date 2024-01-02 --end-date 2024-01-02 --yes")
    assert _wait_run(run["run_id"]) == "success"
    producer = local_airflow.connect().task_instances.get_task_instance(DAG_ID, run["run_id"], PRODUCER)
    assert (producer.state, producer.try_number) == ("success", 2), "the cleared run's producer must build again"
    logs = _sensor_logs(settings, run["run_id"], attempt=2)
    assert len(logs) > 10, sorted(logs)
    fell_back = sorted(task for task, text in logs.items() if any(marker in text for marker in FALLBACK_MARKERS))
    assert fell_back == [], f"sensors ran dbt themselves: {fell_back}"
    assert fingerprints(pipeline.warehouse) == before, "a cleared run rebuilds the same rows"

    # One model's task cleared on its own: `dbt build` of that model alone, its tests included.
    _airflow(settings, f"tasks clear {DAG_ID} -t {MODEL_TASK} --start-date 2024-01-02 --end-date 2024-01-02 --yes")
    assert _wait_run(run["run_id"]) == "success"
    # Its third try (the run's first, the run's clear, its own clear): dbt for the model, tests included.
    log = _sensor_logs(settings, run["run_id"], attempt=3)[f"task_id={MODEL_TASK}"]
    assert "'build'" in log and "'--select', 'fct_transactions'" in log, log[-3000:]
    assert re.search(r"PASS \S*fct_transactions", log), "its tests ran too"
    assert fingerprints(pipeline.warehouse) == before, "the model alone rebuilds the same rows"

    # One task, outside the scheduler, for a partition; then the run list.
    tested = _airflow(settings, f"tasks test {DAG_ID} ingest_raw_partition 2024-01-02")
    assert "2024-01-02" in tested
    listed = {run["logical_date"][:10] for run in _runs(settings) if run["logical_date"]}
    assert listed == {"2024-01-01", "2024-01-02", "2024-01-03"}
