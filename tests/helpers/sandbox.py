"""Sandboxes for tests: a private data dir + warehouse with a dbt runner, and a throwaway Airflow's settings."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ecompipe.local_airflow import Api, connect
from ecompipe.pipeline.generator import generate_partition

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO_ROOT / "dbt_project"
VENV_BIN = Path(sys.executable).parent


@dataclass
class Pipeline:
    """A private pipeline sandbox: data dir, warehouse and a dbt runner bound to them."""

    data_dir: Path
    work_dir: Path
    warehouse_name: str = "warehouse.duckdb"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def warehouse(self) -> Path:
        return self.data_dir / self.warehouse_name

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"PIPELINE_DATA_DIR": str(self.data_dir), "DUCKDB_PATH": str(self.warehouse), "DO_NOT_TRACK": "1"})
        return env

    def generate(self, *dates: str, rows: int = 1000, seed: int = 42, force: bool = False) -> None:
        for day in dates:
            generate_partition(day, self.raw_dir, rows=rows, seed=seed, force=force)

    def dbt(
        self,
        *args: str,
        variables: dict[str, str] | None = None,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run dbt with ``args`` on this sandbox; ``launcher`` replaces the ``dbt`` executable (a probe)."""
        command = [
            *(launcher or [str(VENV_BIN / "dbt")]),
            *args,
            "--target-path",
            str(self.work_dir / "target"),
            "--log-path",
            str(self.work_dir / "logs"),
        ]
        if variables is not None:
            command += ["--vars", json.dumps(variables)]
        env = {**self.env(), **(extra_env or {})}
        completed = subprocess.run(command, cwd=DBT_PROJECT, env=env, capture_output=True, text=True)
        if check and completed.returncode != 0:
            raise AssertionError(
                f"dbt {' '.join(args)} failed:\n{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}"
            )
        return completed

    @classmethod
    def with_one_day(cls, root: Path, day: str = "2024-01-01", rows: int = 200) -> Pipeline:
        """A sandbox under ``root`` with ``day`` generated and built."""
        pipeline = cls(data_dir=root / "data", work_dir=root / "work")
        pipeline.generate(day, rows=rows)
        pipeline.build(day)
        return pipeline

    def build(self, run_date: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.dbt("build", variables={"run_date": run_date}, check=check)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_sandbox_env(root: Path, **overrides: str) -> dict[str, str]:
    """The settings of a throwaway real Airflow under ``root`` (overrides win): its own home, data dir
    and warehouse, production mode, a 2 s retry delay, and free ports for the api-server and the log
    servers, so that it runs beside any other Airflow. Only the settings: add them to an environment."""
    data_dir = root / "data"
    return {
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "PIPELINE_DATA_DIR": str(data_dir),
        "DUCKDB_PATH": str(data_dir / "warehouse.duckdb"),
        "PIPELINE_MODE": "production",
        "PIPELINE_RETRY_DELAY_SECONDS": "2",
        "AIRFLOW_API_PORT": str(_free_port()),
        "AIRFLOW_WORKER_LOG_PORT": str(_free_port()),
        "AIRFLOW_TRIGGER_LOG_PORT": str(_free_port()),
        **overrides,
    }


def airflow_api(env: dict[str, str]) -> Api:
    """A logged-in REST client (apache-airflow-client) of the sandbox Airflow ``env`` describes (its
    api-server is running), with the admin password Airflow generated in its home."""
    return connect(f"http://127.0.0.1:{env['AIRFLOW_API_PORT']}", Path(env["AIRFLOW_HOME"]))


def spoil_prices(csv_path: Path, share_in_tenths: int) -> None:
    """Negative prices on ``share_in_tenths``/10 of the rows: more than half the partition unusable."""
    rows = list(csv.reader(csv_path.open(newline="")))
    header, body = rows[0], rows[1:]
    price = header.index("price")
    for i, row in enumerate(body):
        if i % 10 < share_in_tenths:
            row[price] = "-5"
    with csv_path.open("w", newline="") as out:
        csv.writer(out).writerows([header, *body])
