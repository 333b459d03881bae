"""Opt-in (``--only cluster``, about an hour at full size): the daily DAG's backfill of N dates on the
embedded profile (LocalExecutor, one-slot warehouse pool) against the cluster profile (CeleryExecutor,
DuckLake, no pool) with 1, 2 and 4 workers. Knobs: BENCH_CLUSTER_DAYS (20), BENCH_CLUSTER_ROWS (100000),
BENCH_CLUSTER_WORKERS ("1,2,4"), BENCH_MAX_ACTIVE_RUNS (runs at once, default 4 here), BENCH_CLUSTER_EMBEDDED
(1; 0 leaves the embedded variant out).

Wall seconds of the backfill alone (services already up); CPU seconds of the whole machine meanwhile
(/proc/stat: the cluster's processes are not our children); DuckLake conflict retries from
``logs/dbt/lake_retries.jsonl``. The projection fits ``wall = serial + parallel / workers`` to the
measured points and reads it at 8 and 16 workers, each with its own cores (which this machine has not:
beyond its core count the measured points show contention, not scale).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks import harness as h

ECOMPIPE = str(Path(h.PYTHON).parent / "ecompipe")


def _free_port() -> str:
    from benchmarks.cases import _free_port as free_port  # cases imports this module: import late

    return free_port()


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (user + nice + system) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:4]
    return sum(int(value) for value in fields) / os.sysconf("SC_CLK_TCK")


def _run(args: list[str], env: dict[str, str], log: Path, timeout: float = 6 * 3600) -> float:
    started = time.perf_counter()
    with log.open("a") as out:
        done = subprocess.run([ECOMPIPE, *args], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if done.returncode != 0:
        raise h.CommandFailed(f"ecompipe {' '.join(args)} failed: see {log}")
    return time.perf_counter() - started


def _variant(name: str, root: Path, raw: Path, days: list[date], extra: dict[str, str]) -> dict[str, object]:
    root = h.fresh_dir(root / name)
    data = root / "data"
    data.mkdir()
    (data / "raw").symlink_to(raw)
    env = h.base_env(
        PIPELINE_DATA_DIR=str(data),
        DUCKDB_PATH=str(data / "warehouse.duckdb"),
        AIRFLOW_HOME=str(root / "airflow_home"),
        PIPELINE_MODE="production",
        PIPELINE_SCHEDULE_END_DATE=h.iso(days[-1]),
        AIRFLOW_API_PORT=_free_port(),
        AIRFLOW_WORKER_LOG_PORT=_free_port(),
        AIRFLOW_TRIGGER_LOG_PORT=_free_port(),
        **extra,
    )
    cluster = extra.get("PIPELINE_PROFILE") == "cluster"
    log = root / "bench.log"
    runs = os.environ.get("BENCH_MAX_ACTIVE_RUNS", "4")
    print(f"  {name}: {len(days)} dates ...", flush=True)
    try:
        start_s = _run(["cluster", "up"] if cluster else ["airflow", "start"], env, log)
        cpu_before = _busy_cpu_seconds()
        wall = _run(["backfill", h.iso(days[0]), h.iso(days[-1]), "--max-active-runs", runs], env, log)
        cpu = _busy_cpu_seconds() - cpu_before
    finally:
        _run(["cluster", "down"] if cluster else ["airflow", "stop"], env, log)
    retries_log = data / "logs" / "dbt" / "lake_retries.jsonl"
    retries = len(retries_log.read_text().splitlines()) if retries_log.exists() else 0
    shutil.rmtree(root / "cluster", ignore_errors=True)  # PostgreSQL and the lake files: gigabytes
    shutil.rmtree(data, ignore_errors=True)
    result = {"start_s": round(start_s, 1), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
    result["conflict_retries"] = retries
    print(f"  {name}: {result}", flush=True)  # the section is written at the end: keep each variant's numbers
    return result


def projection(result: dict[str, Any]) -> dict[str, object]:
    """Throughput for 8 and 16 workers, from what one worker costs and how conflicts grow.

    On this machine the workers share its cores, so a fit of wall time over worker counts says
    nothing about bigger machines (more workers only compete for the same CPU). Instead: the machine
    CPU seconds a date costs with one worker (the scheduler, PostgreSQL and Redis included) give the
    ceiling of ``n`` workers that each bring as many cores as this machine has: ``n * cores * 3600 /
    cpu_per_date`` dates an hour, if nothing shared limits it; the conflict retries per date at each
    measured worker count show how the DuckLake conflicts grow as more builds commit at once."""
    one = result.get("cluster_1_workers")
    if not one or not result.get("days"):
        return {}
    days, cores = int(result["days"]), int(result.get("cores") or 1)
    cpu_per_date = float(one["cpu_s"]) / days
    retries = {
        key.split("_")[1]: round(int(item["conflict_retries"]) / days, 2)
        for key, item in result.items()
        if key.startswith("cluster_") and isinstance(item, dict)
    }
    return {
        "cpu_s_per_date": round(cpu_per_date, 1),
        "dates_per_hour_measured": {
            key.split("_")[1]: round(3600 * days / float(item["wall_s"]), 1)
            for key, item in result.items()
            if key.startswith("cluster_") and isinstance(item, dict)
        },
        "ceiling_dates_per_hour": {str(n): round(n * cores * 3600 / cpu_per_date) for n in (8, 16)},
        "retries_per_date": retries,
    }


def cluster(cfg: h.Config) -> dict[str, object]:
    days = h.days_from(date(2024, 3, 1), int(os.environ.get("BENCH_CLUSTER_DAYS", "20")))
    rows = int(os.environ.get("BENCH_CLUSTER_ROWS", "100000"))
    workers = [int(n) for n in os.environ.get("BENCH_CLUSTER_WORKERS", "1,2,4").split(",")]
    raw = h.ensure_raw(cfg.work_dir, days, rows)
    root = cfg.work_dir / "cluster"
    result: dict[str, object] = {"days": len(days), "rows_per_day": rows, "cores": os.cpu_count()}
    if os.environ.get("BENCH_CLUSTER_EMBEDDED", "1") != "0":  # 0: the cluster variants only
        result["embedded"] = _variant("embedded", root, raw, days, {})
    for count in workers:
        extra = {
            "PIPELINE_PROFILE": "cluster",
            "PIPELINE_CLUSTER_DIR": str(root / f"workers={count}" / "cluster"),
            "CLUSTER_WORKERS": str(count),
            "LAKE_PG_PORT": _free_port(),
            "CLUSTER_REDIS_PORT": _free_port(),
        }
        result[f"cluster_{count}_workers"] = _variant(f"workers={count}", root, raw, days, extra)
    return result
