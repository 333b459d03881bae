"""The training_snapshot DAG on a real scheduler: a daily run's features asset event triggers it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from airflow_client.client import DAGRunResponse
from airflow_client.client.exceptions import NotFoundException

from ecompipe import local_airflow as airflow_local
from tests.dbt.test_training_snapshot import DAILY, _check_manifest_against_files
from tests.helpers.sandbox import Pipeline, airflow_sandbox_env


def _wait_for_dag(api: airflow_local.Api, dag_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            api.dags.get_dag(dag_id)
            return
        except NotFoundException:  # not parsed yet
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _finished_runs(api: airflow_local.Api, dag_id: str, timeout: float = 300) -> list[DAGRunResponse]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.dag_runs.get_dag_runs(dag_id, limit=20).dag_runs
        if runs and all(run.state in ("success", "failed") for run in runs):
            return list(runs)
        time.sleep(3)
    raise AssertionError(f"no finished {dag_id} run after {timeout}s: {runs}")


@pytest.mark.airflow
def test_a_daily_run_triggers_the_snapshot_dag_through_the_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    settings = airflow_sandbox_env(tmp_path, PIPELINE_SCHEDULE_END_DATE="2024-01-05", PIPELINE_SNAPSHOT_DAYS="3")
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    Pipeline(data_dir=data_dir, work_dir=tmp_path / "work").generate("2024-01-02", rows=300)
    try:
        airflow_local.start()
        api = airflow_local.connect()
        _wait_for_dag(api, "training_snapshot")
        airflow_local.set_paused(api, False, "training_snapshot")  # paused DAGs are not queued
        assert airflow_local.backfill("2024-01-02", "2024-01-02", max_active_runs=1) == 0
        daily = api.dag_runs.get_dag_runs(DAILY, limit=5).dag_runs
        snapshot_runs = _finished_runs(api, "training_snapshot")
    finally:
        airflow_local.stop()

    assert [run.run_type for run in snapshot_runs] == ["asset_triggered"]
    run = snapshot_runs[0]
    logs = Path(settings["AIRFLOW_HOME"]) / "logs" / "dag_id=training_snapshot" / f"run_id={run.dag_run_id}"
    assert run.state == "success", f"snapshot run failed: logs in {logs}"
    latest = json.loads((data_dir / "features/training/latest.json").read_text())
    snapshot = data_dir / "features/training" / latest["dir"]
    manifest = _check_manifest_against_files(snapshot, data_dir / "warehouse.duckdb")
    assert manifest["window"] == {"start": "2023-12-31", "end": "2024-01-02"}
    assert manifest["dates_included"] == ["2024-01-02"] and manifest["row_count"] > 0
    assert [item["date"] for item in manifest["dates_excluded"]] == ["2023-12-31", "2024-01-01"]
    assert manifest["source"]["chosen_by"] == "asset events"
    (event,) = manifest["source"]["asset_events"]
    assert event["run_dates"] == ["2024-01-02"] and event["source_dag"] == DAILY
    assert event["source_run_id"] == daily[0].dag_run_id
    assert manifest["source"]["snapshot_run_id"] == run.dag_run_id
    assert manifest["source"]["registry_runs"]["2024-01-02"]["run_id"] == daily[0].dag_run_id
