"""The pipeline's own warehouse connections wait while another process holds DuckDB's lock.

Cosmos's sensors run outside the warehouse pool (ecompipe.airflow.task_defaults), so a sensor's fallback dbt run
may hold the file while a pooled task opens it: that task must wait, not fail; and say what to do when
the lock outlasts its patience.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ecompipe.core.warehouse import WarehouseLockedError, connect

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select 1 as x")
    return path


def test_a_connection_waits_for_the_lock_then_gets_it(warehouse: Path) -> None:
    holder = _hold_lock(warehouse, 2.0)
    started = time.monotonic()
    with connect(warehouse, read_only=True, wait_seconds=60) as con:
        waited = time.monotonic() - started
        assert con.execute("select x from t").fetchone() == (1,)
    assert holder.wait(timeout=30) == 0
    assert waited > 1.0, "the holder had the lock: the connection cannot have opened at once"


def test_a_lock_held_too_long_fails_naming_the_file_and_what_to_do(warehouse: Path) -> None:
    holder = _hold_lock(warehouse, 20.0)
    try:
        with pytest.raises(WarehouseLockedError) as failure:
            connect(warehouse, wait_seconds=1.0)
    finally:
        holder.kill()
        holder.wait()
    message = str(failure.value)
    assert str(warehouse) in message and "lock" in message and "close it" in message
