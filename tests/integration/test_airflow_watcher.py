"""Cosmos WATCHER under real Airflow: a failing dbt test fails its model's task and the run, once.

The DAG runs one `dbt build` per run (task dbt.dbt_producer_watcher) and shows each model's result in
a sensor task of its own, with its tests (docs/performance.md). A data error must still fail the right task, stop
what depends on it, and reach the run registry.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.helpers.airflow import AIRFLOW, DAG_ID, dags_test_env, registry
from tests.helpers.sandbox import Pipeline, spoil_prices

pytestmark = pytest.mark.airflow
DAY = "2024-01-02"


def _task_states(airflow_home: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(airflow_home / "airflow.db") as con:
        rows = con.execute("select task_id, state, try_number from task_instance where dag_id = ?", (DAG_ID,))
        return {task_id: (state, tries) for task_id, state, tries in rows}


def test_failing_dbt_test_fails_its_model_task_and_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, data_dir = dags_test_env(tmp_path, monkeypatch, "production")
    pipeline = Pipeline(data_dir=data_dir, work_dir=tmp_path / "work")
    pipeline.generate(DAY, rows=300)
    spoil_prices(data_dir / "raw" / DAY / "transactions.csv", 6)

    completed = subprocess.run(
        [AIRFLOW, "dags", "test", DAG_ID, DAY],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = completed.stdout + completed.stderr
    states = _task_states(Path(env["AIRFLOW_HOME"]))

    # The audit's tests fail in the one dbt build; the audit's task reports it, for good (no retry:
    # a retry would read the same results), naming what to do.
    assert states["dbt.int_partitions__row_accounting_run"] == ("failed", 1), states
    assert "unusable_share" in output
    assert "its data tests failed, so nothing downstream of it was built" in output
    # Upstream models succeeded; everything behind the gate never ran.
    assert states["dbt.stg_raw__transactions_run"][0] == "success"
    for blocked in ("dbt.fct_transactions_run", "dbt.dq_daily_run", "dbt.export_daily_parquet_run"):
        assert states[blocked][0] == "upstream_failed", (blocked, states[blocked])
    # The producer ran `dbt build` once, tests included, and failed for good: data tests failed, and a
    # new build would read the same file (a try that fails otherwise builds again). No other dbt ran:
    # no model was run alone past the gate.
    assert states["dbt.dbt_producer_watcher"] == ("failed", 1), states["dbt.dbt_producer_watcher"]
    assert f"The dbt build of {DAY} failed data tests: " in output and "Not retried" in output
    # dbt as the pipeline runs it (ecompipe.settings.dbt_executable), or dbt itself.
    dbt_command = r"Running command: \[PosixPath\('[^']*/(?:ecompipe-dbt-run|dbt)'\), '(\w+)', ([^\n]*)"
    commands = re.findall(dbt_command, output)
    assert [cmd for cmd, _ in commands] == ["build"], commands
    assert "'--resource-type'" not in commands[0][1], commands
    assert "'--exclude-resource-type', 'unit_test'" in commands[0][1], commands
    # On the date (handed over as PIPELINE_RUN_DATE, not --vars: see macros/run_scope.sql).
    assert "--vars" not in commands[0][1], commands
    scopes = re.findall(r"Run scope: ([0-9-]{10}) to ([0-9-]{10})", output)
    assert scopes and set(scopes) == {(DAY, DAY)}, scopes
    # The run is failed, and recorded as failed; nothing of the date reached the marts.
    assert states["record_run"][0] == "failed"
    warehouse = data_dir / "warehouse.duckdb"
    assert [row[:3] for row in registry(warehouse)] == [(DAY, "manual", "failed")]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {row[0] for row in con.sql("select table_name from information_schema.tables").fetchall()}
    assert "stg_raw__transactions" in tables and "fct_transactions" not in tables, "the marts never ran"
    assert not (data_dir / "features" / "daily" / f"date={DAY}").exists()
