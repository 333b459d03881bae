"""Driving a throwaway real Airflow from tests: `airflow dags test` environments, the registry, processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from ecompipe import local_airflow
from ecompipe.core import processes
from tests.helpers.sandbox import airflow_sandbox_env

DAG_ID = "end_to_end_data_pipeline"
AIRFLOW = str(Path(os.sys.executable).parent / "airflow")


def dags_test_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> tuple[dict[str, str], Path]:
    for key, value in airflow_sandbox_env(tmp_path, PIPELINE_MODE=mode, PIPELINE_RETRY_DELAY_SECONDS="1").items():
        monkeypatch.setenv(key, value)
    env = local_airflow.airflow_env()
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    return env, tmp_path / "data"


def registry(warehouse: Path) -> list[tuple[str, str, str, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(
            "select run_date::varchar, run_type, status, coalesce(dbt_summary, '') from pipeline_runs order by ended_at"
        ).fetchall()


def live_members(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies, already dead, are not counted)."""
    return processes.live_group_members(pgid)


def supervised_service(home: Path, component: str) -> int | None:
    """The pid of an Airflow component itself, the child of the supervisor whose pid its pid file holds
    (None while the supervisor waits to start it again)."""
    supervisor = int((home / "run" / f"{component}.pid").read_text())
    for pid in live_members(supervisor):
        if (processes.proc_stat(pid) or ["?", "0"])[1] == str(supervisor):
            return pid
    return None
