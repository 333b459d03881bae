"""Real Airflow: `airflow dags test` for one date, and a real scheduler driven through the Makefile.

The scheduler test is the one that can see concurrency problems (`dags test` runs tasks one at a time):
a backfill with two active runs must give exactly what running the dates one by one gives.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from airflow_client.client import DAGRunResponse

from ecompipe import local_airflow as airflow_local
from ecompipe.core.warehouse import MART_TABLES, fingerprints
from ecompipe.local_airflow import Api
from tests.helpers.airflow import AIRFLOW, DAG_ID, dags_test_env, live_members, registry, supervised_service
from tests.helpers.sandbox import REPO_ROOT, Pipeline, airflow_api, airflow_sandbox_env, spoil_prices

pytestmark = pytest.mark.airflow
DATES = ["2024-01-01", "2024-01-02", "2024-01-03"]


def _dates(warehouse: Path, table: str = "fct_transactions") -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [str(row[0]) for row in con.sql(f"select distinct partition_date from {table} order by 1").fetchall()]


def _exports(data_dir: Path) -> dict[str, bytes]:
    files = sorted([*data_dir.glob("processed/*/*.parquet"), *data_dir.glob("features/daily/*/*.parquet")])
    return {str(path.relative_to(data_dir)): path.read_bytes() for path in files}


def _dags_test(env: dict[str, str], logical_date: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [AIRFLOW, "dags", "test", DAG_ID, logical_date], env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-3000:]
    return completed


def test_dags_test_processes_the_partition_of_its_logical_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`airflow dags test DAG 2024-01-02` (logical date 01-02 00:00, interval [01-02, 01-03)) processes 01-02."""
    env, data_dir = dags_test_env(tmp_path, monkeypatch, "demo")  # ingestion generates the partition
    _dags_test(env, "2024-01-02")
    assert (data_dir / "raw" / "2024-01-02" / "transactions.csv").exists()
    assert not (data_dir / "raw" / "2024-01-03").exists() and not (data_dir / "raw" / "2024-01-01").exists()
    assert _dates(data_dir / "warehouse.duckdb") == ["2024-01-02"]
    assert (data_dir / "features/daily/date=2024-01-02/features.parquet").exists()
    assert (data_dir / "logs/data_quality/2024-01-02/report.json").exists()
    assert [row[:3] for row in registry(data_dir / "warehouse.duckdb")] == [("2024-01-02", "manual", "success")]
    # Cosmos kept the build's dbt partial-parse file in this install's Airflow home, not in /tmp.
    assert list((Path(env["AIRFLOW_HOME"]) / "cosmos").glob("*/target/partial_parse.msgpack"))


def test_late_redelivery_is_reprocessed_and_unchanged_partition_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, data_dir = dags_test_env(tmp_path, monkeypatch, "production")
    pipeline = Pipeline(data_dir=data_dir, work_dir=tmp_path / "work")
    pipeline.generate("2024-01-01", "2024-01-02", "2024-01-03", rows=300)
    for logical in ("2024-01-01", "2024-01-02", "2024-01-03"):
        _dags_test(env, logical)
    warehouse = data_dir / "warehouse.duckdb"
    assert _dates(warehouse) == ["2024-01-01", "2024-01-02", "2024-01-03"]

    # Day D-2 is re-delivered with other rows; day D's run is repeated with D unchanged.
    pipeline.generate("2024-01-01", rows=250, seed=7, force=True)
    _dags_test(env, "2024-01-03")
    runs = registry(warehouse)
    assert runs[-2][:3] == ("2024-01-01", "late-data reprocess", "success")
    assert "kept rows before" in runs[-2][3] and "after" in runs[-2][3]
    assert runs[-1][:3] == ("2024-01-03", "manual", "skipped"), "an unchanged partition is skipped"

    # The warehouse now equals a clean run over the files as they are.
    clean = Pipeline(data_dir=data_dir, work_dir=tmp_path / "clean", warehouse_name="clean.duckdb")
    exports = _exports(data_dir)
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        clean.build(day)
    assert fingerprints(warehouse) == fingerprints(clean.warehouse)
    assert _exports(data_dir) == exports


@pytest.fixture(scope="module")
def scheduler_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("scheduler")
    settings = airflow_sandbox_env(
        root,
        PIPELINE_SCHEDULE_END_DATE="2024-01-05",
        # Production mode waits for a missing partition (6 h by default): the failing date gives up fast.
        PIPELINE_SENSOR_POKE_SECONDS="3",
        PIPELINE_SENSOR_TIMEOUT_SECONDS="15",
    )
    env = {**os.environ, **settings}
    Pipeline(data_dir=root / "data", work_dir=root / "work").generate(*DATES, rows=300)
    yield env
    subprocess.run(["make", "-s", "airflow-stop"], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)


def _make(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _wait_until(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _groups(env: dict[str, str]) -> list[int]:
    run_dir = Path(env["AIRFLOW_HOME"]) / "run"
    return [int(p.read_text()) for p in run_dir.glob("*.pid")]


def _fresh_runs(api: Api, day: str) -> list[DAGRunResponse]:
    """The manual runs that processed ``day`` (param run_date)."""
    runs = airflow_local.list_runs(api, run_type=["manual"], order_by=["run_after"])
    return [run for run in runs if (run.conf or {}).get("run_date") == day]


def _backfill_run(api: Api, day: str) -> DAGRunResponse:
    [run] = [run for run in airflow_local.runs_in_range(api, day, day) if run.run_type == "backfill"]
    return run


def _assert_one_dbt_build(api: Api, run: DAGRunResponse) -> None:
    """The run succeeded at the first try of every task: its producer ran the date's one `dbt build`
    (a producer on a later try skips itself and each model's sensor runs dbt for that model)."""
    assert run.state == "success", run
    instances = {ti.task_id: ti for ti in airflow_local.list_task_instances(api, DAG_ID, run.dag_run_id)}
    producer = instances["dbt.dbt_producer_watcher"]
    assert (producer.state, producer.try_number) == ("success", 1), producer
    # The daily DAG's 18 tasks: one per dbt model (12), the producer and its gate, and the pipeline's 4.
    assert len(instances) >= 18 and {(ti.state, ti.try_number) for ti in instances.values()} == {("success", 1)}


def _deadlines(env: dict[str, str], run: DAGRunResponse) -> int:
    """Deadline rows Airflow created for a run (its metadata database is SQLite here)."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db", timeout=30) as con:
        query = "select count(*) from deadline join dag_run on deadline.dagrun_id = dag_run.id where dag_run.run_id = ?"
        return con.execute(query, [run.dag_run_id]).fetchone()[0]


def test_real_scheduler_backfill_rerun_full_refresh_bulk_and_stop(
    scheduler_env: dict[str, str], tmp_path: Path
) -> None:
    env = scheduler_env
    data_dir = Path(env["PIPELINE_DATA_DIR"])
    warehouse = Path(env["DUCKDB_PATH"])

    started = _make(env, "airflow")
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"Airflow UI: http://127.0.0.1:{env['AIRFLOW_API_PORT']}" in started.stdout
    assert "login: admin / " in started.stdout
    groups = _groups(env)
    assert len(groups) == 4 and all(live_members(pgid) for pgid in groups)

    # The scheduler exits (on SQLite it can, on a write conflict with the api-server): its supervisor
    # starts it again, with no command of the user's.
    home = Path(env["AIRFLOW_HOME"])
    first = supervised_service(home, "scheduler")
    assert first is not None and "scheduler" in Path(f"/proc/{first}/cmdline").read_text()
    os.kill(first, signal.SIGKILL)
    assert _wait_until(lambda: supervised_service(home, "scheduler") not in (None, first), seconds=60)
    scheduler_log = (home / "logs" / "services" / "scheduler.log").read_text()
    assert "ecompipe supervisor: scheduler exited (code -9)" in scheduler_log

    # The scheduler dies with its supervisor (killed): the next command starts it again instead of
    # leaving its runs queued forever.
    scheduler = int((home / "run" / "scheduler.pid").read_text())
    os.killpg(scheduler, signal.SIGKILL)
    assert _wait_until(lambda: not live_members(scheduler)), "the scheduler's processes outlived SIGKILL"

    # Backfill three dates with two active runs: no task may fail on the DuckDB lock.
    backfill = _make(env, "backfill", "START=2024-01-01", "END=2024-01-03", "MAX_ACTIVE_RUNS=2")
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    assert "Airflow's scheduler stopped" in backfill.stdout and "starting it again" in backfill.stdout
    assert "3/3 dates done, 0 failed" in backfill.stdout
    assert _dates(warehouse) == DATES
    with duckdb.connect(str(warehouse), read_only=True) as con:
        dupes = con.sql("select count(*) - count(distinct transaction_id) from fct_transactions").fetchone()[0]
    assert dupes == 0

    # Every run is in the registry, once per (date, run id), in the warehouse and the JSON lines file.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        runs = con.sql("select run_date::varchar, run_type, status, rows_in from pipeline_runs order by 1").fetchall()
    assert runs == [(day, "backfill", "success", 300) for day in DATES]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        manifest = con.sql("select count(*), count(distinct sha256) from raw_partition_manifest").fetchone()
    assert manifest == (3, 3), "each processed partition is in the manifest"
    registry_lines = (data_dir / "pipeline_registry.jsonl").read_text().splitlines()
    assert len(registry_lines) == 3

    # Per-date results equal running the dates one by one (same raw files, another warehouse).
    sequential = Pipeline(data_dir=data_dir, work_dir=tmp_path / "seq", warehouse_name="sequential.duckdb")
    exports_after_backfill = _exports(data_dir)
    for day in DATES:
        sequential.build(day)
    incremental = fingerprints(warehouse)
    assert fingerprints(sequential.warehouse) == incremental
    assert _exports(data_dir) == exports_after_backfill

    # Rerun one date: a fresh manual run, not a cleared one (Cosmos WATCHER would then run one dbt per
    # model), so its producer runs the one `dbt build`. Nothing changes.
    rerun = _make(env, "rerun", "DATE=2024-01-02")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Rerun of 2024-01-02: fresh manual run manual__" in rerun.stdout
    assert "1/1 dates done, 0 failed" in rerun.stdout
    assert fingerprints(warehouse) == incremental
    assert _exports(data_dir) == exports_after_backfill
    api = airflow_api(env)
    [rerun_run] = _fresh_runs(api, "2024-01-02")
    assert rerun_run.logical_date is None and rerun_run.conf == {"run_date": "2024-01-02", "force": True}
    _assert_one_dbt_build(api, rerun_run)
    # No logical date: the deadline alert (counted from it) gave the rerun no deadline, unlike the
    # date's backfill run (whose deadline had passed long before: missed, and not recorded).
    assert _deadlines(env, rerun_run) == 0 and _deadlines(env, _backfill_run(api, "2024-01-02")) >= 1
    with duckdb.connect(str(warehouse), read_only=True) as con:
        records = con.sql(
            "select run_type, status, deadline_missed_at from pipeline_runs where run_date = '2024-01-02' order by 1"
        ).fetchall()
    assert records == [("backfill", "success", None), ("manual", "success", None)], "a new record per run"
    assert len((data_dir / "pipeline_registry.jsonl").read_text().splitlines()) == 4

    # A reprocessing backfill: 2024-01-03 has a run, so it gets a fresh manual run (one dbt build);
    # 2024-01-04 has none, so Airflow's backfill runs it. The result equals running them one by one.
    sequential.generate("2024-01-04", rows=300)
    reprocess = _make(env, "backfill", "START=2024-01-03", "END=2024-01-04", "REPROCESS=completed")
    assert reprocess.returncode == 0, reprocess.stdout + reprocess.stderr
    assert "1 date(s) 2024-01-04 .. 2024-01-04" in reprocess.stdout
    assert "Fresh manual runs (REPROCESS=completed" in reprocess.stdout and "1 date(s) 2024-01-03" in reprocess.stdout
    assert "2/2 dates done, 0 failed" in reprocess.stdout
    [fresh_run] = _fresh_runs(api, "2024-01-03")
    _assert_one_dbt_build(api, fresh_run)
    _assert_one_dbt_build(api, _backfill_run(api, "2024-01-04"))
    sequential.build("2024-01-04")
    incremental = fingerprints(warehouse)
    assert fingerprints(sequential.warehouse) == incremental
    exports_after_backfill = _exports(data_dir)
    loaded = [*DATES, "2024-01-04"]
    assert _dates(warehouse) == loaded

    # A date without its partition fails, and the backfill says which and where the logs are.
    failing = _make(env, "backfill", "START=2024-01-05", "END=2024-01-05")
    assert failing.returncode != 0
    assert "FAILED 2024-01-05" in failing.stdout and "logs in" in failing.stdout
    # ... and which task failed, with its error (read from the task's log).
    assert "wait_for_raw_partition failed (try " in failing.stdout, failing.stdout
    assert "Raw partition for 2024-01-05 did not arrive" in failing.stdout, failing.stdout
    assert _dates(warehouse) == loaded
    with duckdb.connect(str(warehouse), read_only=True) as con:
        failed = con.sql("select status from pipeline_runs where run_date = '2024-01-05'").fetchall()
    assert failed == [("failed",)]

    # A re-delivered date whose data fails the quality gate, through the scheduler: the one `dbt build`
    # fails on its data tests and is not retried; the marts keep the date's rows.
    spoiled = data_dir / "raw" / "2024-01-04" / "transactions.csv"
    delivered = spoiled.read_bytes()
    spoil_prices(spoiled, 6)
    gated = _make(env, "backfill", "START=2024-01-04", "END=2024-01-04", "REPROCESS=completed")
    assert gated.returncode != 0 and "FAILED 2024-01-04" in gated.stdout, gated.stdout
    assert "The dbt build of 2024-01-04 failed data tests: " in gated.stdout, gated.stdout
    [gated_run] = _fresh_runs(airflow_api(env), "2024-01-04")
    instances = {
        ti.task_id: ti for ti in airflow_local.list_task_instances(airflow_api(env), DAG_ID, gated_run.dag_run_id)
    }
    producer = instances["dbt.dbt_producer_watcher"]
    assert (producer.state, producer.try_number) == ("failed", 1), producer
    assert fingerprints(warehouse, MART_TABLES) == {table: incremental[table] for table in MART_TABLES}
    spoiled.write_bytes(delivered)  # the full refresh below reads every partition on disk

    # Full refresh from every raw partition equals the union of the daily runs.
    refresh = _make(env, "full-refresh")
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    assert fingerprints(warehouse) == incremental
    assert _exports(data_dir) == exports_after_backfill

    # Bulk backfill: 10 days in 3 chunks equals the per-day runs of the same days, hash for hash.
    bulk_dates = [f"2024-02-{day:02d}" for day in range(1, 11)]
    sequential.generate(*bulk_dates, rows=300)
    bulk = _make(env, "backfill-bulk", "START=2024-02-01", "END=2024-02-10", "CHUNK_DAYS=4")
    assert bulk.returncode == 0, bulk.stdout + bulk.stderr
    assert "in 3 chunk(s)" in bulk.stdout and "3/3 chunks done, 0 failed" in bulk.stdout
    exports_after_bulk = _exports(data_dir)
    for day in bulk_dates:
        sequential.build(day)
    assert fingerprints(warehouse) == fingerprints(sequential.warehouse)
    assert _exports(data_dir) == exports_after_bulk
    assert (data_dir / "logs/data_quality/2024-02-10/report.json").exists()

    # A bad date fails its chunk, naming the date; the other chunk's dates are loaded and correct.
    sequential.generate("2024-02-11", "2024-02-12", "2024-02-14", rows=300)
    (data_dir / "raw/2024-02-13").mkdir(parents=True)
    (data_dir / "raw/2024-02-13/transactions.csv").write_text(
        "transaction_id,customer_id,product_id,price,quantity,timestamp\n"
    )
    partial = _make(env, "backfill-bulk", "START=2024-02-11", "END=2024-02-14", "CHUNK_DAYS=2")
    assert partial.returncode != 0
    assert "1 chunk(s) succeeded, 1 failed" in partial.stdout
    assert "FAILED chunk 2024-02-13..2024-02-14: logs in" in partial.stdout
    log_dir = Path(partial.stdout.split("FAILED chunk 2024-02-13..2024-02-14: logs in ")[1].split()[0])
    task_log = "\n".join(path.read_text() for path in log_dir.rglob("*") if path.is_file())
    assert "2024-02-13" in task_log and "has 0 data row(s)" in task_log
    loaded = _dates(warehouse)
    assert {"2024-02-11", "2024-02-12"} <= set(loaded) and not {"2024-02-13", "2024-02-14"} & set(loaded)

    stopped = _make(env, "airflow-stop", timeout=120)
    assert stopped.returncode == 0 and "Airflow stopped (4 component(s))" in stopped.stdout
    assert not [pid for pgid in groups for pid in live_members(pgid)], "an Airflow process survived the stop"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", int(env["AIRFLOW_API_PORT"])))  # the api-server's port is free again


def test_stop_when_nothing_runs_is_harmless(tmp_path: Path) -> None:
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "nothing_here"))
    stopped = _make(env, "airflow-stop", timeout=60)
    assert stopped.returncode == 0 and "Airflow was not running" in stopped.stdout
