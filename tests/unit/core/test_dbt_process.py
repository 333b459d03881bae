"""``ecompipe-dbt-run``, what the pipeline runs in dbt's place: dbt's own work, output and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.helpers.sandbox import VENV_BIN, Pipeline

RUN = [str(VENV_BIN / "ecompipe-dbt-run")]
DAY = "2024-01-01"


def _sandbox(root: Path) -> Pipeline:
    pipeline = Pipeline(data_dir=root / "data", work_dir=root / "work")
    pipeline.generate(DAY, rows=200)
    return pipeline


def test_a_build_through_it_leaves_everything_dbt_writes(tmp_path: Path) -> None:
    pipeline = _sandbox(tmp_path)
    done = pipeline.dbt("build", variables={"run_date": DAY}, launcher=RUN)

    # dbt's last words reached the console and its log file before the process ended.
    assert "Completed successfully" in done.stdout
    assert "Command `dbt build` succeeded" in (pipeline.work_dir / "logs" / "dbt.log").read_text()
    results = json.loads((pipeline.work_dir / "target" / "run_results.json").read_text())["results"]
    assert results and {result["status"] for result in results} <= {"success", "pass", "no-op"}
    # The warehouse was closed (checkpointed) by dbt, not left to a write-ahead log.
    assert not pipeline.warehouse.with_name(pipeline.warehouse.name + ".wal").exists()
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        kept = con.execute("select count(*) from main.fct_transactions where partition_date = ?", [DAY]).fetchone()
    assert kept is not None and kept[0] > 0


def test_a_failing_command_exits_as_dbt_does(tmp_path: Path) -> None:
    pipeline = _sandbox(tmp_path)
    missing = {"run_date": "2024-01-02"}  # no raw partition for that date
    by_dbt = pipeline.dbt("build", variables=missing, check=False)
    by_run = pipeline.dbt("build", variables=missing, check=False, launcher=RUN)

    assert by_run.returncode == by_dbt.returncode != 0
    assert "Raw partition missing for 1 date(s): 2024-01-02" in by_run.stdout
    unknown = pipeline.dbt("no-such-command", check=False, launcher=RUN)
    assert unknown.returncode == 2 and "Usage: dbt " in unknown.stderr
