"""What PIPELINE_PROFILE changes where the DAGs are parsed: the pool, the dbt target and executable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "from ecompipe.airflow.task_defaults import WAREHOUSE_POOL\n"
    "from ecompipe.settings import dbt_executable, dbt_target, pipeline_env\n"
    "print(WAREHOUSE_POOL, dbt_target(), dbt_executable().name, sorted(pipeline_env()))"
)


def _probe(**env: str) -> str:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("PIPELINE_", "LAKE_"))}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_embedded_keeps_the_one_slot_pool_and_dbt_itself() -> None:
    assert _probe() == "duckdb_warehouse dev ecompipe-dbt-run ['DUCKDB_PATH', 'PIPELINE_DATA_DIR']"


def test_cluster_writes_side_by_side_through_ecompipe_dbt_on_duckLake() -> None:
    pool, target, executable, names = _probe(PIPELINE_PROFILE="cluster", LAKE_PG_PORT="45999").split(" ", 3)
    assert (pool, target, executable) == ("default_pool", "cluster", "ecompipe-dbt")
    assert "'LAKE_PG_PORT'" in names and "'PGPASSFILE'" in names and "'DUCKDB_EXTENSION_DIR'" in names


@pytest.mark.parametrize("value", ["bad db", "x;drop", "Upper"])
def test_names_that_reach_sql_are_plain_identifiers(value: str) -> None:
    clean = {key: val for key, val in os.environ.items() if not key.startswith(("PIPELINE_", "LAKE_"))}
    code = "from ecompipe.settings import get_settings; get_settings()"
    done = subprocess.run([sys.executable, "-c", code], env={**clean, "LAKE_PG_DB": value}, capture_output=True)
    assert done.returncode != 0 and b"LAKE_PG_DB must be" in done.stderr
