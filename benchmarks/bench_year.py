"""Issue #8, "Measure": a year of raw partitions loaded three ways, wall and CPU seconds of each.

(a) **bulk**: a real Airflow (scheduler, dag-processor, triggerer, api-server) in a fresh sandbox runs
    the DAG ``end_to_end_data_pipeline_bulk`` over the whole range (one ``dbt build`` per chunk),
    measured from starting the components to their stop: one process tree, every CPU second of it.
    Each chunk size of ``--chunk-days`` is tried in its own sandbox (the first always, the others if
    ``--deadline`` allows); the fastest is the result.
(b) **per-day**: the daily DAG backfilled through the REST API (``make backfill``'s code path,
    ``max_active_runs`` as the Makefile's default) over the first ``--perday-days`` dates, in its own
    sandbox, then extrapolated linearly to the whole range (a year of it would take hours).
(c) **bare DuckDB**: ``benchmarks/bare_duckdb.py``'s ``run`` over every date of the range in one
    process (cleaning, aggregates, features, the two Parquet files; no warehouse, no tests).

Outside the timings: the bulk warehouse must equal the per-day one on the per-day dates (every model
table, order-independent hash, sandbox paths normalised), the Parquet exports too; the chunk sizes'
warehouses must equal each other on every date; bare DuckDB's files must equal the bulk exports.

    python -m benchmarks.bench_year                       # make bench-year: 365 days x 100,000 rows
    python -m benchmarks.bench_year --days 20 --rows 2000 --perday-days 3 --chunk-days "7 20" \\
        --results-dir benchmarks/.work/year-small-results  # a small validation run

Knobs (flags or environment): BENCH_YEAR_DAYS (365), BENCH_YEAR_ROWS (100000), BENCH_YEAR_PERDAY_DAYS
(14), BENCH_YEAR_CHUNK_DAYS ("92 31"), BENCH_YEAR_START (2024-01-01), BENCH_YEAR_MAX_ACTIVE_RUNS
(MAX_ACTIVE_RUNS, else 3), BENCH_YEAR_DEADLINE (UTC "HH:MM" or ISO time: chunk sizes after the first
are skipped if they would end later), BENCH_YEAR_NOTE (free text for the report, e.g. who else used
the machine), BENCH_YEAR_KEEP=1 (keep the sandboxes' warehouses and exports). Raw partitions are
generated once into ``<work>/raw-cache/rows=N/`` (generation timed there, reported apart); sandboxes
go to ``<work>/year/``. Results: ``year.json`` and ``year.md`` in the results directory.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import filecmp
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import psutil

from benchmarks import common, measure, report, verify
from benchmarks.common import PYTHON, REPO_ROOT, base_env, days_from, fresh_dir, iso
from benchmarks.datasets import Sandbox, cache_dir
from ecompipe.settings import RAW_FILE_NAME

BULK_DAG_ID = "end_to_end_data_pipeline_bulk"
TARGET_DAYS = 365
TARGET_S = 15 * 60
GENERATION_LOG = "generation.json"
# Bookkeeping: run ids and timestamps differ by design between two loads of the same data, and
# export_daily_parquet lists the last invocation's files only (the files themselves are compared).
NOT_COMPARED = ("dbt_test_results", "pipeline_runs", "raw_partition_manifest", "export_daily_parquet")
DATE_COLUMNS = ("partition_date", "transaction_date")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass
class YearConfig:
    """The knobs (flags win over ``BENCH_YEAR_*`` variables)."""

    work_dir: Path = field(default_factory=lambda: Path(_env("BENCH_WORK_DIR", str(common.BENCH_DIR / ".work"))))
    results_dir: Path = field(default_factory=lambda: Path(_env("BENCH_RESULTS_DIR", str(common.RESULTS_DIR))))
    start: date = field(default_factory=lambda: date.fromisoformat(_env("BENCH_YEAR_START", "2024-01-01")))
    days: int = field(default_factory=lambda: int(_env("BENCH_YEAR_DAYS", "365")))
    rows: int = field(default_factory=lambda: int(_env("BENCH_YEAR_ROWS", "100000")))
    perday_days: int = field(default_factory=lambda: int(_env("BENCH_YEAR_PERDAY_DAYS", "14")))
    chunk_days: tuple[int, ...] = field(default_factory=lambda: _ints(_env("BENCH_YEAR_CHUNK_DAYS", "92 31")))
    max_active_runs: int = field(
        default_factory=lambda: int(_env("BENCH_YEAR_MAX_ACTIVE_RUNS", _env("MAX_ACTIVE_RUNS", "3")))
    )
    deadline: datetime | None = field(default_factory=lambda: _deadline(os.environ.get("BENCH_YEAR_DEADLINE")))
    note: str = field(default_factory=lambda: os.environ.get("BENCH_YEAR_NOTE", ""))
    keep: bool = field(default_factory=lambda: os.environ.get("BENCH_YEAR_KEEP", "") in ("1", "true", "yes"))
    command: str = "python -m benchmarks.bench_year"

    @property
    def dates(self) -> list[date]:
        return days_from(self.start, self.days)

    @property
    def root(self) -> Path:
        return self.work_dir / "year"

    def as_dict(self) -> dict[str, object]:
        return {
            "start": iso(self.start),
            "days": self.days,
            "rows_per_day": self.rows,
            "perday_days": self.perday_days,
            "chunk_days": list(self.chunk_days),
            "max_active_runs": self.max_active_runs,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "work_dir": str(self.work_dir),
        }


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(",", " ").split())


def _deadline(text: str | None) -> datetime | None:
    """``HH:MM`` (UTC, the next such time) or an ISO date-time."""
    if not text:
        return None
    now = datetime.now(UTC)
    if len(text) <= 5 and ":" in text:
        hours, minutes = (int(part) for part in text.split(":"))
        moment = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Child processes: the measured commands (``python -m benchmarks.bench_year _<what> ...``)


def _become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process, so that their CPU time reaches us."""
    pr_set_child_subreaper = 36
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _tree_cpu_s() -> float:
    """CPU seconds of this process, its waited-for descendants and its live descendants, now."""
    own, done = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + done.ru_utime + done.ru_stime
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _reap_children(timeout: float = 60.0) -> list[int]:
    """Wait for every child (so its rusage counts); kill what is still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    killed: list[int] = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return killed
        if pid:
            continue
        if time.monotonic() > deadline and not killed:
            for child in psutil.Process().children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
            if not killed:
                return killed
        time.sleep(0.1)


def _wait_for_dag(dag_id: str, timeout: float = 180.0) -> None:
    from ecompipe import local_airflow as airflow_local

    api = airflow_local.client()
    started = time.monotonic()
    while True:
        try:
            api.get(f"/api/v2/dags/{dag_id}")
            return
        except RuntimeError:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(2)


def _run_timings(dag_id: str) -> dict[str, object]:
    """Per run (and per mapped chunk) start/end times, from Airflow's REST API."""
    import urllib.parse

    from ecompipe import local_airflow as airflow_local

    def seconds(item: dict[str, Any]) -> float | None:
        if not item.get("start_date") or not item.get("end_date"):
            return None
        start = datetime.fromisoformat(str(item["start_date"]).replace("Z", "+00:00"))
        return (datetime.fromisoformat(str(item["end_date"]).replace("Z", "+00:00")) - start).total_seconds()

    api = airflow_local.client()
    runs = api.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=1000&order_by=logical_date")["dag_runs"]  # type: ignore[index]
    found: dict[str, object] = {
        "runs": [
            {"run_id": r["dag_run_id"], "state": r["state"], "seconds": seconds(r), "start": r.get("start_date")}
            for r in runs
        ]
    }
    dags = api.get("/api/v2/dags?limit=100")["dags"]  # type: ignore[index]
    found["dags_paused"] = {str(d["dag_id"]): d["is_paused"] for d in dags}
    if dag_id == BULK_DAG_ID and runs:
        quoted = urllib.parse.quote(str(runs[-1]["dag_run_id"]), safe="")
        instances = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]  # type: ignore[index]
        found["tasks"] = sorted(
            (
                {"task_id": ti["task_id"], "map_index": ti["map_index"], "state": ti["state"], "seconds": seconds(ti)}
                for ti in instances
            ),
            key=lambda ti: (str(ti["task_id"]), int(ti["map_index"])),
        )
    return found


def airflow_driver(mode: str, start: str, end: str, chunk_days: int, max_active_runs: int, out: Path) -> int:
    """Start Airflow, run the bulk DAG or the per-day backfill, stop Airflow; phases to ``out``.

    The components are this process's children and orphans come back to it (subreaper), so the CPU
    time the harness reads from this process's rusage covers the whole Airflow process tree.
    """
    from ecompipe import local_airflow as airflow_local

    _become_subreaper()
    began = time.perf_counter()
    marks: dict[str, tuple[float, float]] = {"began": (0.0, _tree_cpu_s())}
    outcome: int | None = None
    timings: dict[str, object] = {}
    retries: list[str] = []
    error = None
    try:
        airflow_local.start(wait=True)
        if mode == "bulk":
            _wait_for_dag(BULK_DAG_ID)
        marks["started"] = (time.perf_counter() - began, _tree_cpu_s())
        for attempt in range(6):
            try:
                if mode == "bulk":
                    outcome = airflow_local.bulk_backfill(start, end, chunk_days, timeout=4 * 3600)
                else:
                    outcome = airflow_local.backfill(start, end, max_active_runs, "none", timeout=4 * 3600)
                break
            except RuntimeError as exc:
                # SQLite metadata DB busy (a loaded machine): Airflow refuses to *create* the backfill or
                # the run with a 503 and creates nothing, so asking again is safe. Anything else is fatal.
                text = str(exc)
                if attempt == 5 or "answered 503" not in text or not ("POST" in text or "PATCH" in text):
                    raise
                retries.append(text[:300])
                print(f"Airflow answered 503 (metadata DB busy); asking again in 5 s: {text[:200]}", flush=True)
                time.sleep(5)
        marks["finished"] = (time.perf_counter() - began, _tree_cpu_s())
        with contextlib.suppress(Exception):  # timings are a bonus; the measurement stands without them
            timings = _run_timings(BULK_DAG_ID if mode == "bulk" else airflow_local.DAG_ID)
    except Exception as exc:
        error = repr(exc)[:2000]
        raise
    finally:
        airflow_local.stop()
        killed = _reap_children()
        marks["stopped"] = (time.perf_counter() - began, _tree_cpu_s())
        out.write_text(
            json.dumps(
                {
                    "mode": mode,
                    "outcome": outcome,
                    "error": error,
                    "marks": {name: {"wall_s": w, "cpu_s": c} for name, (w, c) in marks.items()},
                    "killed_after_stop": killed,
                    "retries_on_busy_db": retries,
                    "timings": timings,
                },
                indent=2,
            )
        )
    return 0 if outcome == 0 else 1


def bare_driver(raw_dir: Path, first: str, days: int, out_dir: Path, budget_s: float = 0) -> int:
    """``bare_duckdb.run`` over every date, in this one process (stopping after ``budget_s`` if > 0)."""
    from benchmarks import bare_duckdb

    began = time.perf_counter()
    totals = {"clean_rows": 0, "feature_rows": 0, "days": 0}
    for day in days_from(date.fromisoformat(first), days):
        if budget_s and time.perf_counter() - began > budget_s:
            break
        counts = bare_duckdb.run(raw_dir / iso(day) / RAW_FILE_NAME, iso(day), out_dir)
        totals["clean_rows"] += counts["clean_rows"]
        totals["feature_rows"] += counts["feature_rows"]
        totals["days"] += 1
    print(json.dumps(totals))
    return 0


def generate_driver(folder: Path, first: str, days: int, rows: int) -> int:
    """Generate the missing partitions; each one's seconds go to ``<folder>/generation.json``."""
    from ecompipe.pipeline.generator import generate_partition

    log_path = folder / GENERATION_LOG
    log: dict[str, Any] = json.loads(log_path.read_text()) if log_path.exists() else {}
    made = 0
    for day in days_from(date.fromisoformat(first), days):
        if (folder / iso(day) / RAW_FILE_NAME).exists():
            continue
        started = time.perf_counter()
        generate_partition(day, folder, rows=rows)
        log[iso(day)] = {"seconds": time.perf_counter() - started, "at": datetime.now(UTC).isoformat()}
        made += 1
        if made % 20 == 0:
            common.write_json_atomically(log_path, log)
    common.write_json_atomically(log_path, log)
    print(json.dumps({"generated": made}))
    return 0


# --------------------------------------------------------------------------------------------------
# The harness


class YearSandbox(Sandbox):
    """A ``datasets.Sandbox`` (raw links to the cache, exports, warehouse) plus an Airflow home."""

    @property
    def home(self) -> Path:
        return self.root / "airflow_home"

    def airflow_env(self, schedule_end: date) -> dict[str, str]:
        from benchmarks.bench_airflow import _free_port

        env = base_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PIPELINE_DATA_DIR": str(self.data_dir),
                "DUCKDB_PATH": str(self.warehouse),
                "PIPELINE_MODE": "production",
                "PIPELINE_SCHEDULE_END_DATE": iso(schedule_end),
                "PIPELINE_RETRY_DELAY_SECONDS": "2",
                "AIRFLOW_API_PORT": str(_free_port()),
                "AIRFLOW_WORKER_LOG_PORT": str(_free_port()),
                "AIRFLOW_TRIGGER_LOG_PORT": str(_free_port()),
                "AIRFLOW__COSMOS__CACHE_DIR": str(self.root / "cosmos-cache"),
            }
        )
        return env

    def stop_airflow(self, env: dict[str, str]) -> None:
        """Safety net: stop whatever the driver may have left (a no-op when it stopped everything)."""
        subprocess.run(
            [PYTHON, str(REPO_ROOT / "scripts" / "airflow_local.py"), "stop"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=120,
            check=False,
        )

    def drop_bulk(self) -> None:
        """Remove the large outputs (the logs stay)."""
        for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
            (self.root / name).unlink(missing_ok=True)
        for name in ("processed", "features", "out"):
            shutil.rmtree(self.data_dir / name, ignore_errors=True)
        shutil.rmtree(self.root / "out", ignore_errors=True)


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


RSS_POLL_SECONDS = 1.0  # these runs last minutes: sample memory once a second, not measure.run's 20 times


def measured(command: list[str], log: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """One measured run plus the machine's load: CPU seconds used by everything else meanwhile."""
    busy, load = _machine_busy_s(), os.getloadavg()[0]
    sample = measure.run(command, log_path=log, cwd=REPO_ROOT, env=env, timeout=timeout, poll_seconds=RSS_POLL_SECONDS)
    others = max(0.0, _machine_busy_s() - busy - sample.cpu_s)
    return {
        "wall_s": sample.wall_s,
        "cpu_s": sample.cpu_s,
        "peak_tree_rss_mb": sample.peak_tree_rss_mb,
        "max_rss_mb": sample.max_rss_mb,
        "log": str(log),
        "load_1min_at_start": round(load, 2),
        "load_1min_at_end": round(os.getloadavg()[0], 2),
        "other_processes_cpu_s": others,
        "other_processes_cores": others / sample.wall_s if sample.wall_s else None,
    }


def _self_command(*args: str) -> list[str]:
    return [PYTHON, "-m", "benchmarks.bench_year", *args]


def ensure_manifest() -> dict[str, object]:
    """The dbt manifest the daily DAG renders from, up to date with the models on disk."""
    started = time.perf_counter()
    completed = subprocess.run(
        ["make", "-s", "manifest"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"`make manifest` failed:\n{(completed.stdout + completed.stderr)[-2000:]}")
    return {"seconds": time.perf_counter() - started}


def generate(cfg: YearConfig) -> dict[str, object]:
    folder = cache_dir(cfg.work_dir, cfg.rows)
    folder.mkdir(parents=True, exist_ok=True)
    missing = [day for day in cfg.dates if not (folder / iso(day) / RAW_FILE_NAME).exists()]
    run = None
    if missing:
        print(f"  generating {len(missing)} raw partition(s) of {cfg.rows:,} rows into {folder} ...", flush=True)
        args = ["_generate", str(folder), iso(cfg.start), str(cfg.days), str(cfg.rows)]
        run = measured(_self_command(*args), cfg.root / "logs" / "generate.log", base_env(), 3 * 3600)
    log_path = folder / GENERATION_LOG
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    timed = [log[iso(day)] for day in cfg.dates if iso(day) in log]
    raw_bytes = sum((folder / iso(day) / RAW_FILE_NAME).stat().st_size for day in cfg.dates)
    return {
        "generated_now": len(missing),
        "this_run": run,
        "partitions_timed": len(timed),
        "generation_s_timed_partitions": sum(item["seconds"] for item in timed),
        "generation_s_per_partition": (sum(item["seconds"] for item in timed) / len(timed)) if timed else None,
        "generated_at": [min((i["at"] for i in timed), default=None), max((i["at"] for i in timed), default=None)],
        "raw_gib": raw_bytes / 2**30,
        "cache": str(folder),
    }


def airflow_scenario(
    cfg: YearConfig, name: str, mode: str, days: list[date], chunk_days: int = 0
) -> tuple[dict[str, Any], YearSandbox]:
    sandbox = YearSandbox.create(cfg.root / name, cfg.work_dir)
    sandbox.link(days, cfg.rows)
    env = sandbox.airflow_env(days[-1])
    phases = sandbox.root / "driver.json"
    args = ["_airflow", mode, iso(days[0]), iso(days[-1]), str(chunk_days), str(cfg.max_active_runs), str(phases)]
    print(f"  {name}: {mode} over {iso(days[0])}..{iso(days[-1])} ({len(days)} days) ...", flush=True)
    try:
        result = measured(_self_command(*args), sandbox.root / "driver.log", env, 5 * 3600)
    finally:
        sandbox.stop_airflow(env)
    driver = json.loads(phases.read_text())
    marks = driver["marks"]
    result.update(
        {
            "mode": mode,
            "dates": [iso(days[0]), iso(days[-1])],
            "days": len(days),
            "chunk_days": chunk_days or None,
            "max_active_runs": cfg.max_active_runs if mode == "perday" else None,
            "start_s": marks["started"]["wall_s"],
            "run_s": marks["finished"]["wall_s"] - marks["started"]["wall_s"],
            "stop_s": marks["stopped"]["wall_s"] - marks["finished"]["wall_s"],
            "run_cpu_s_approx": marks["finished"]["cpu_s"] - marks["started"]["cpu_s"],
            "killed_after_stop": driver["killed_after_stop"],
            "retries_on_busy_db": driver.get("retries_on_busy_db", []),
            "timings": driver["timings"],
            "warehouse_mb": sandbox.warehouse.stat().st_size / 2**20 if sandbox.warehouse.exists() else None,
        }
    )
    print(f"    {name}: {result['wall_s']:.0f}s wall, {result['cpu_s']:.0f}s CPU", flush=True)
    return result, sandbox


def bare_scenario(cfg: YearConfig, reserve_s: float = 300) -> tuple[dict[str, Any], Path]:
    """Bare DuckDB over the range; with a deadline, it stops in time and the rest is extrapolated."""
    out = fresh_dir(cfg.root / "bare")
    raw = cache_dir(cfg.work_dir, cfg.rows)
    budget = 0.0
    if cfg.deadline:
        budget = max(60.0, (cfg.deadline - datetime.now(UTC)).total_seconds() - reserve_s)
    print(f"  bare DuckDB over {cfg.days} days" + (f" (budget {budget:.0f}s) ..." if budget else " ..."), flush=True)
    log = out / "bare.log"
    args = ["_bare", str(raw), iso(cfg.start), str(cfg.days), str(out / "out"), str(budget)]
    result = measured(_self_command(*args), log, base_env(), 5 * 3600)
    result.update(verify.last_json_line(log))
    result["budget_s"] = budget or None
    print(f"    bare: {result['wall_s']:.0f}s wall, {result['cpu_s']:.0f}s CPU", flush=True)
    return result, out / "out"


# --------------------------------------------------------------------------------------------------
# Verification (outside the timings)


def _table_fingerprints(warehouse: Path, data_dir: Path, dates: tuple[str, str] | None) -> dict[str, Any]:
    """Per model table: (rows, order-independent hash) over ``dates``; sandbox paths normalised."""
    found: dict[str, Any] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'main' and table_type = 'BASE TABLE' order by 1"
            ).fetchall()
        ]
        root = str(data_dir).replace("'", "''")
        for table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'main' and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
            names = [name for name, _ in columns]
            date_column = next((name for name in DATE_COLUMNS if name in names), None)
            if table in NOT_COMPARED or date_column is None:
                found[table] = "not compared"
                continue
            selected = ", ".join(
                f"replace(\"{name}\", '{root}', '$PIPELINE_DATA_DIR') as \"{name}\""
                if kind == "VARCHAR"
                else f'"{name}"'
                for name, kind in columns
            )
            where = f"where \"{date_column}\" between '{dates[0]}' and '{dates[1]}'" if dates else ""
            count, total = con.execute(
                f'select count(*), coalesce(sum(hash(t)::hugeint), 0) from (select {selected} from "{table}" {where}) t'
            ).fetchone()
            found[table] = [int(count), str(total)]
    return found


def compare_warehouses(a: YearSandbox, b: YearSandbox, dates: tuple[str, str] | None) -> dict[str, Any]:
    left = _table_fingerprints(a.warehouse, a.data_dir, dates)
    right = _table_fingerprints(b.warehouse, b.data_dir, dates)
    compared = sorted(t for t in set(left) | set(right) if left.get(t) != "not compared")
    differ = [t for t in compared if left.get(t) != right.get(t)]
    return {
        "dates": list(dates) if dates else "all",
        "equal": not differ and bool(compared),
        "tables_compared": {t: left.get(t) for t in compared},
        "tables_differing": {t: [left.get(t), right.get(t)] for t in differ},
        "tables_not_compared": sorted(t for t in left if left[t] == "not compared"),
    }


def compare_exports(a: Path, b: Path, days: list[date]) -> dict[str, Any]:
    """The two Parquet files of each date: same rows (order-independent hash, all columns)."""
    differ: list[str] = []
    files = same_bytes = 0
    for day in days:
        for relative in (
            Path("processed") / f"date={iso(day)}" / "transactions_clean.parquet",
            Path("features") / "daily" / f"date={iso(day)}" / "features.parquet",
        ):
            left, right = a / relative, b / relative
            if not left.exists() or not right.exists():
                differ.append(f"{relative} missing")
                continue
            files += 1
            same_bytes += filecmp.cmp(left, right, shallow=False)
            columns = verify.parquet_columns(left)
            if verify.fingerprint(left, columns) != verify.fingerprint(right, columns):
                differ.append(str(relative))
    return {"files_compared": files, "equal": not differ, "differing": differ[:20], "byte_identical": same_bytes}


def compare_bare(bulk_data: Path, bare_out: Path, days: list[date]) -> dict[str, Any]:
    """Bare DuckDB's files vs the bulk exports of the same dates, all at once (on bare's columns)."""
    checks: dict[str, Any] = {}
    for kind, pattern in (
        ("transactions_clean", "processed/date={}/transactions_clean.parquet"),
        ("features", "features/daily/date={}/features.parquet"),
    ):
        relative = [pattern.format(iso(day)) for day in days]
        columns = verify.parquet_columns(bare_out / relative[0], hive_partitioning=False)
        bulk = verify.fingerprint([bulk_data / item for item in relative], columns, hive_partitioning=False)
        bare = verify.fingerprint([bare_out / item for item in relative], columns, hive_partitioning=False)
        checks[kind] = {"equal": bulk == bare, "rows_reference": bulk[0], "rows_candidate": bare[0]}
    return {"dates": len(days), "equal": all(item["equal"] for item in checks.values()), "files": checks}


# --------------------------------------------------------------------------------------------------
# Results


def _git() -> dict[str, object]:
    def git(*args: str) -> str:
        completed = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return completed.stdout.rstrip()

    dirty = git("status", "--porcelain", "--", "dags", "dbt_project", "ecompipe", "benchmarks", "Makefile", "mk")
    return {
        "commit": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "uncommitted_files_measured": [line[3:] for line in dirty.splitlines() if ".work" not in line],
    }


def _extrapolate(item: dict[str, Any], days: int) -> dict[str, float]:
    """Start and stop once, the run's seconds scaled linearly from its days to ``days``."""
    scale = days / item["days"]
    fixed_cpu = item["cpu_s"] - item["run_cpu_s_approx"]
    return {
        "days": days,
        "wall_s": item["start_s"] + item["stop_s"] + item["run_s"] * scale,
        "cpu_s": fixed_cpu + item["run_cpu_s_approx"] * scale,
        "run_s_per_day": item["run_s"] / item["days"],
        "run_cpu_s_per_day": item["run_cpu_s_approx"] / item["days"],
    }


def summarize(cfg: YearConfig, results: dict[str, Any]) -> dict[str, Any]:
    bulk = {k: v for k, v in results.get("bulk", {}).items() if isinstance(v, dict) and "wall_s" in v}
    summary: dict[str, Any] = {}
    if bulk:
        best_key = min(bulk, key=lambda k: bulk[k]["wall_s"])
        best = bulk[best_key]
        summary["bulk_best_chunk_days"] = int(best_key)
        summary["bulk"] = {"wall_s": best["wall_s"], "cpu_s": best["cpu_s"], "days": best["days"]}
        summary["bulk_year"] = _extrapolate(best, TARGET_DAYS) if best["days"] != TARGET_DAYS else None
    perday = results.get("perday")
    if perday:
        summary["perday_extrapolated"] = _extrapolate(perday, cfg.days)
        summary["perday_year"] = _extrapolate(perday, TARGET_DAYS)
    bare = results.get("bare")
    if bare:
        scale = cfg.days / bare["days"] if bare["days"] else float("nan")
        summary["bare"] = {
            "wall_s": bare["wall_s"] * scale,
            "cpu_s": bare["cpu_s"] * scale,
            "days": cfg.days,
            "days_measured": bare["days"],
            "extrapolated": bare["days"] < cfg.days,
        }
        year_scale = TARGET_DAYS / bare["days"] if bare["days"] else float("nan")
        summary["bare_year"] = {"wall_s": bare["wall_s"] * year_scale, "cpu_s": bare["cpu_s"] * year_scale}
    ratios: dict[str, float] = {}
    if bulk and perday:
        ratios["perday_over_bulk_wall"] = summary["perday_extrapolated"]["wall_s"] / summary["bulk"]["wall_s"]
        ratios["perday_over_bulk_cpu"] = summary["perday_extrapolated"]["cpu_s"] / summary["bulk"]["cpu_s"]
    if bulk and bare:
        ratios["bulk_over_bare_wall"] = summary["bulk"]["wall_s"] / summary["bare"]["wall_s"]
        ratios["bulk_over_bare_cpu"] = summary["bulk"]["cpu_s"] / summary["bare"]["cpu_s"]
    if perday and bare:
        ratios["perday_over_bare_wall"] = summary["perday_extrapolated"]["wall_s"] / summary["bare"]["wall_s"]
        ratios["perday_over_bare_cpu"] = summary["perday_extrapolated"]["cpu_s"] / summary["bare"]["cpu_s"]
    summary["ratios"] = ratios
    if bulk:
        measured_year = summary["bulk"]["days"] >= TARGET_DAYS
        value = summary["bulk"]["wall_s"] if measured_year else summary["bulk_year"]["wall_s"]
        summary["target"] = {
            "what": f"a year ({TARGET_DAYS} days x {cfg.rows:,} rows) by bulk backfill, Airflow start to stop",
            "goal_s": TARGET_S,
            "value_s": value,
            "basis": "measured" if measured_year else f"extrapolated from {summary['bulk']['days']} days",
            "passed": value <= TARGET_S,
            "full_scale": measured_year and cfg.rows >= 100_000,
        }
    return summary


def _s(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f}"


def _min(value: Any) -> str:
    return "n/a" if value is None else f"{float(value) / 60:.1f}"


def render(results: dict[str, Any]) -> str:
    cfg, summary, mach = results["config"], results.get("summary", {}), results["machine"]
    lines = [
        "# Benchmark: a year of partitions, bulk backfill vs per-day backfill vs bare DuckDB (issue #8)",
        "",
        f"Generated {results['generated_at']} by `{results['command']}` in {results['duration_s'] / 60:.1f} min"
        + ("" if results.get("complete") else " (**incomplete**: written after each step; not finished)")
        + ".",
        "",
        f"Workload: {cfg['days']} days from {cfg['start']} x {cfg['rows_per_day']:,} raw rows a day "
        f"({cfg['days'] * cfg['rows_per_day']:,} rows). Per-day backfill over the first {cfg['perday_days']} "
        f"days, max_active_runs {cfg['max_active_runs']}. Chunk sizes asked: {cfg['chunk_days']}.",
        "",
        f"Code: commit `{results['git']['commit'][:12]}` ({results['git']['subject']})"
        + (
            f", plus uncommitted changes in {', '.join(f'`{f}`' for f in results['git']['uncommitted_files_measured'])}"
            if results["git"]["uncommitted_files_measured"]
            else ""
        )
        + ".",
        "",
        f"Machine: {mach['cores_logical']} logical cores ({mach['cpu_model']}), {mach['memory_total_gib']} GiB "
        f"RAM, {mach['platform']}. Load average at start {mach['load_average_at_start']}, at end "
        f"{results.get('load_average_at_end')}.",
        "",
        "**Shared machine**: other work ran alongside (the `others` column: CPU seconds every other process "
        "used meanwhile, and as cores). Wall times are inflated by it; CPU seconds (the whole process tree: "
        "every Airflow component, task and dbt process) much less."
        + (f" Note: {results['note']}" if results.get("note") else ""),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
        "",
    ]
    target = summary.get("target")
    if target:
        verdict = "**PASS**" if target["passed"] else "**MISS**"
        lines += [
            "## Target",
            "",
            "| measure | target | measured | result |",
            "|---|---|---|---|",
            f"| {target['what']} ({target['basis']}) | <= {target['goal_s'] / 60:.0f} min | "
            f"{_min(target['value_s'])} min | {verdict} |",
            "",
        ]
        if not target["full_scale"]:
            lines += ["(Not the full workload: the verdict is indicative only.)", ""]
        year = summary.get("bulk_year") or summary["bulk"]
        best = results["bulk"][str(summary["bulk_best_chunk_days"])]
        lines += [
            f"For scale: the bulk process tree used {_s(year['cpu_s'])} CPU s for {TARGET_DAYS} days"
            + (" (extrapolated)" if summary.get("bulk_year") else "")
            + f", i.e. {year['cpu_s'] / 60:.1f} min of one core (a wall-time floor of {year['cpu_s'] / 120:.1f} min "
            f"with both cores to itself); other processes used {best.get('other_processes_cores') or 0:.2f} of the "
            "2 cores on average while it ran.",
            "",
        ]
    lines += [
        "## Results",
        "",
        "Wall and CPU seconds of the whole process: Airflow scenarios from starting the four components to "
        "their stop (metadata DB migration included); bare DuckDB one process over every date.",
        "",
        "| scenario | days | wall s | wall min | CPU s | peak RSS MB | others CPU s (cores) |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(label: str, item: dict[str, Any]) -> str:
        cores = item.get("other_processes_cores")
        return (
            f"| {label} | {item.get('days', cfg['days'])} | {_s(item['wall_s'])} | {_min(item['wall_s'])} | "
            f"{_s(item['cpu_s'])} | {_s(item.get('peak_tree_rss_mb'))} | "
            f"{_s(item.get('other_processes_cpu_s'))} ({'n/a' if cores is None else f'{cores:.2f}'}) |"
        )

    for key, item in results.get("bulk", {}).items():
        if isinstance(item, dict) and "wall_s" in item:
            best = " (best)" if summary.get("bulk_best_chunk_days") == int(key) else ""
            lines.append(row(f"bulk backfill, chunks of {key} days{best}", item))
        else:
            lines.append(f"| bulk backfill, chunks of {key} days | skipped: {item} | | | | | |")
    if results.get("perday"):
        lines.append(row("per-day Airflow backfill (measured)", results["perday"]))
        ext = summary["perday_extrapolated"]
        lines.append(
            f"| per-day Airflow backfill, **extrapolated** to {ext['days']} days | {ext['days']} | "
            f"{_s(ext['wall_s'])} | {_min(ext['wall_s'])} | {_s(ext['cpu_s'])} | | |"
        )
    if results.get("bare"):
        bare = results["bare"]
        lines.append(row("bare DuckDB script (measured)", bare))
        if summary["bare"]["extrapolated"]:
            ext = summary["bare"]
            lines.append(
                f"| bare DuckDB script, **extrapolated** to {ext['days']} days (stopped at its time budget) | "
                f"{ext['days']} | {_s(ext['wall_s'])} | {_min(ext['wall_s'])} | {_s(ext['cpu_s'])} | | |"
            )
    lines.append("")
    if results.get("perday"):
        ext = summary["perday_extrapolated"]
        lines += [
            f"The per-day figure is **extrapolated**, not measured: start and stop once, plus the backfill's "
            f"{results['perday']['days']} measured days scaled linearly ({ext['run_s_per_day']:.1f} s wall, "
            f"{ext['run_cpu_s_per_day']:.1f} s CPU per day) to {ext['days']} days. Later days of a year cost "
            f"somewhat more (a day on 60 days of history takes about 1.15x day 1, see latest.md), so this is "
            f"if anything low.",
            "",
        ]
    year = summary.get("bulk_year")
    if year:
        lines += [
            f"**Fewer than {TARGET_DAYS} days were measured**: each contender extrapolated linearly to a year "
            "(start and stop once; the measured days' seconds scaled):",
            "",
            f"| contender | {TARGET_DAYS} days: wall s | wall min | CPU s |",
            "|---|---|---|---|",
            f"| bulk backfill (chunks of {summary['bulk_best_chunk_days']} days) | {_s(year['wall_s'])} | "
            f"{_min(year['wall_s'])} | {_s(year['cpu_s'])} |",
        ]
        for label, key in (("per-day Airflow backfill", "perday_year"), ("bare DuckDB script", "bare_year")):
            if summary.get(key):
                item = summary[key]
                lines.append(f"| {label} | {_s(item['wall_s'])} | {_min(item['wall_s'])} | {_s(item['cpu_s'])} |")
        lines.append("")
    ratios = summary.get("ratios", {})
    if ratios:
        lines += ["| ratio | wall | CPU |", "|---|---|---|"]
        for label, wall, cpu in (
            ("per-day (extrapolated) / bulk", "perday_over_bulk_wall", "perday_over_bulk_cpu"),
            ("bulk / bare DuckDB", "bulk_over_bare_wall", "bulk_over_bare_cpu"),
            ("per-day (extrapolated) / bare DuckDB", "perday_over_bare_wall", "perday_over_bare_cpu"),
        ):
            if wall in ratios:
                cpu_text = f"{ratios[cpu]:.2f}x" if cpu and cpu in ratios else "n/a"
                lines.append(f"| {label} | {ratios[wall]:.2f}x | {cpu_text} |")
        lines.append("")
    lines += _phases(results)
    lines += _verification(results)
    gen = results.get("generation")
    if gen:
        lines += [
            "## Raw data generation (not in any timing above)",
            "",
            f"{cfg['days']} partitions, {gen['raw_gib']:.2f} GiB of CSV, cached in `{gen['cache']}`. "
            f"Generated in this run: {gen['generated_now']}. Generation time of the "
            f"{gen['partitions_timed']} partitions timed when they were made: "
            f"{_s(gen['generation_s_timed_partitions'])} s"
            + (
                f" ({gen['generation_s_per_partition']:.2f} s a partition; made between "
                f"{str(gen['generated_at'][0])[:16]} and {str(gen['generated_at'][1])[:16]} UTC)"
                if gen["generation_s_per_partition"]
                else ""
            )
            + ".",
            "",
        ]
    if results.get("errors"):
        lines += ["## Errors", "", *[f"- {error}" for error in results["errors"]], ""]
    return "\n".join(lines)


def _phases(results: dict[str, Any]) -> list[str]:
    items = [(f"bulk, chunks of {k}", v) for k, v in results.get("bulk", {}).items() if isinstance(v, dict)]
    if results.get("perday"):
        items.append(("per-day", results["perday"]))
    rows = []
    for label, item in items:
        timings = item.get("timings") or {}
        durations = [
            t["seconds"] for t in timings.get("tasks", []) if t.get("task_id") == "build_chunk" and t.get("seconds")
        ] or [r["seconds"] for r in timings.get("runs", []) if r.get("seconds")]
        rows.append(
            [
                label,
                *(_s(item[key]) for key in ("start_s", "run_s", "stop_s", "run_cpu_s_approx")),
                _s(max(durations) if durations else None),
                _s(measure.median(durations) if durations else None),
            ]
        )
    header = ["scenario", "start s", "run s", "stop s", "run CPU s", "slowest task/run s", "median task/run s"]
    lines = [
        "## Where the Airflow time goes",
        "",
        "`start`: migrate the metadata DB, start the components, wait until healthy and the DAG is parsed; "
        "`run`: trigger to the end of the run(s); `stop`: stop and reap every process. Run CPU is a "
        "process-tree snapshot (approximate); the total CPU is exact (rusage of the reaped tree).",
        "",
        *report._table(header, rows),
    ]
    unpaused = sorted(
        {
            dag
            for _, item in items
            for dag, paused in (item.get("timings") or {}).get("dags_paused", {}).items()
            if not paused
        }
    )
    if unpaused:
        lines += [
            f"Unpaused during the runs: {', '.join(f'`{d}`' for d in unpaused)} (each scenario unpauses only the "
            "DAG it measures; the others stay paused as after a fresh start, so no downstream run, e.g. an "
            "asset-triggered one, is in these timings).",
            "",
        ]
    return lines


def _verification(results: dict[str, Any]) -> list[str]:
    checks = results.get("verification", {})
    if not checks:
        return []
    lines = ["## Same data?", ""]
    for name, check in checks.items():
        verdict = "yes" if check.get("equal") else "**NO**"
        detail = ""
        if "tables_compared" in check:
            detail = f" ({len(check['tables_compared'])} tables: {', '.join(check['tables_compared'])})"
            if check["tables_differing"]:
                detail += f"; differing: {', '.join(check['tables_differing'])}"
        elif "files_compared" in check:
            detail = f" ({check['files_compared']} Parquet files, {check.get('byte_identical', '?')} byte-identical)"
            if check["differing"]:
                detail += f"; differing: {', '.join(check['differing'][:5])}"
        elif "files" in check:
            detail = (
                f" ({check.get('dates')} dates; "
                + ", ".join(
                    f"{rel}: bulk {item.get('rows_reference', '?')} vs bare {item.get('rows_candidate', '?')} rows"
                    for rel, item in check["files"].items()
                )
                + ")"
            )
        lines.append(f"- {name}: {verdict}{detail}")
    not_compared = next((c["tables_not_compared"] for c in checks.values() if "tables_not_compared" in c), None)
    if not_compared:
        lines.append(f"- not compared (bookkeeping: run ids, timestamps, or no date column): {', '.join(not_compared)}")
    return [*lines, ""]


def _write(cfg: YearConfig, results: dict[str, Any], started: float) -> None:
    results["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["duration_s"] = time.perf_counter() - started
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["summary"] = summarize(cfg, results)
    common.write_json_atomically(cfg.results_dir / "year.json", results)
    common.write_text_atomically(
        cfg.results_dir / "year.md", render(json.loads((cfg.results_dir / "year.json").read_text()))
    )


def _step(results: dict[str, Any], name: str, action: Any) -> Any:
    try:
        return action()
    except Exception as exc:  # one failed scenario must not lose the others' numbers
        results["errors"].append(f"{name}: {exc!r}"[:3000])
        traceback.print_exc()
        return None


def run(cfg: YearConfig) -> dict[str, Any]:
    """Every scenario, in order of importance; results written after each step."""
    started = time.perf_counter()
    days = cfg.dates
    perday_days = days[: cfg.perday_days]
    results: dict[str, Any] = {
        "command": cfg.command,
        "note": cfg.note,
        "machine": common.machine(),
        "versions": common.versions(),
        "git": _git(),
        "config": cfg.as_dict(),
        "complete": False,
        "errors": [],
        "bulk": {},
        "verification": {},
    }
    cfg.root.mkdir(parents=True, exist_ok=True)
    print(f"== year: {cfg.days} days x {cfg.rows:,} rows from {iso(cfg.start)}", flush=True)
    results["manifest"] = ensure_manifest()
    results["generation"] = generate(cfg)
    _write(cfg, results, started)
    sandboxes: dict[int, YearSandbox] = {}

    def bulk(chunk: int) -> None:
        item, sandbox = airflow_scenario(cfg, f"bulk-{chunk}", "bulk", days, chunk)
        results["bulk"][str(chunk)] = item
        sandboxes[chunk] = sandbox

    first, *others = cfg.chunk_days
    _step(results, f"bulk chunk_days={first}", partial(bulk, first))
    _write(cfg, results, started)
    perday = _step(results, "perday", lambda: airflow_scenario(cfg, "perday", "perday", perday_days))
    if perday:
        results["perday"] = perday[0]
    _write(cfg, results, started)
    bare = _step(results, "bare", lambda: bare_scenario(cfg))
    if bare:
        results["bare"] = bare[0]
    _write(cfg, results, started)
    overlap = (iso(perday_days[0]), iso(perday_days[-1]))

    def check_bulk(chunk: int) -> None:
        sandbox = sandboxes[chunk]
        if perday:
            results["verification"][f"bulk ({chunk}-day chunks) = per-day, warehouse, {overlap[0]}..{overlap[1]}"] = (
                compare_warehouses(sandbox, perday[1], overlap)
            )
            results["verification"][f"bulk ({chunk}-day chunks) = per-day, Parquet exports of those dates"] = (
                compare_exports(sandbox.data_dir, perday[1].data_dir, perday_days)
            )
        if bare and chunk == first:
            bare_days = days[: int(bare[0]["days"])]
            results["verification"][f"bare DuckDB files = bulk ({chunk}-day chunks) exports, every date bare did"] = (
                compare_bare(sandbox.data_dir, bare[1], bare_days)
            )

    if first in sandboxes:
        _step(results, "verification", partial(check_bulk, first))
    _write(cfg, results, started)
    for chunk in others:
        expected = 1.15 * results["bulk"][str(first)]["wall_s"] + 120 if first in sandboxes else 0
        if cfg.deadline and datetime.now(UTC) + timedelta(seconds=expected) > cfg.deadline:
            results["bulk"][str(chunk)] = f"not run (would end after the deadline {cfg.deadline:%H:%M} UTC)"
            continue
        _step(results, f"bulk chunk_days={chunk}", partial(bulk, chunk))
        if chunk in sandboxes:
            _step(results, "verification", partial(check_bulk, chunk))
        if chunk in sandboxes and first in sandboxes:
            name = f"bulk ({chunk}-day chunks) = bulk ({first}-day chunks), every date"
            same = partial(compare_warehouses, sandboxes[chunk], sandboxes[first], None)
            results["verification"][name] = _step(results, "verification", same) or {"equal": False}
        _write(cfg, results, started)
    if not cfg.keep:
        for sandbox in sandboxes.values():
            sandbox.drop_bulk()
        if bare:
            shutil.rmtree(bare[1], ignore_errors=True)
    results["complete"] = True
    _write(cfg, results, started)
    return results


def run_section(cfg: common.Config) -> dict[str, object]:
    """``python -m benchmarks.run --only year``: writes year.{json,md}; returns the summary for latest.json."""
    year = YearConfig(work_dir=cfg.work_dir)
    year.command = "python -m benchmarks.run --only year"
    results = run(year)
    return {"summary": results["summary"], "verification_equal": _all_equal(results), "errors": results["errors"]}


def _all_equal(results: dict[str, Any]) -> bool:
    return all(check.get("equal") for check in results.get("verification", {}).values())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_airflow":
        mode, start, end, chunk, runs, out = argv[1:7]
        return airflow_driver(mode, start, end, int(chunk), int(runs), Path(out))
    if argv and argv[0] == "_bare":
        return bare_driver(Path(argv[1]), argv[2], int(argv[3]), Path(argv[4]), float(argv[5]))
    if argv and argv[0] == "_generate":
        return generate_driver(Path(argv[1]), argv[2], int(argv[3]), int(argv[4]))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_year", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--perday-days", type=int)
    parser.add_argument("--chunk-days", help='chunk sizes to try, in order, e.g. "92 31"')
    parser.add_argument("--start", help="first date (YYYY-MM-DD)")
    parser.add_argument("--deadline", help='UTC "HH:MM" or ISO: skip further chunk sizes that would end later')
    parser.add_argument("--note", help="free text for the report (e.g. other load on the machine)")
    parser.add_argument("--results-dir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the sandboxes' warehouses and exports")
    args = parser.parse_args(argv)
    cfg = YearConfig()
    cfg.command = "python -m benchmarks.bench_year " + " ".join(argv)
    if args.days:
        cfg.days = args.days
    if args.rows:
        cfg.rows = args.rows
    if args.perday_days:
        cfg.perday_days = args.perday_days
    if args.chunk_days:
        cfg.chunk_days = _ints(args.chunk_days)
    if args.start:
        cfg.start = date.fromisoformat(args.start)
    if args.deadline:
        cfg.deadline = _deadline(args.deadline)
    if args.note:
        cfg.note = args.note
    if args.results_dir:
        cfg.results_dir = args.results_dir
    cfg.keep = cfg.keep or args.keep
    if not 1 <= cfg.perday_days <= cfg.days or not cfg.chunk_days:
        parser.error("need 1 <= --perday-days <= --days and at least one chunk size")
    results = run(cfg)
    summary = results["summary"]
    print(f"\nResults: {cfg.results_dir / 'year.json'} and {cfg.results_dir / 'year.md'}")
    print(json.dumps({"summary": summary, "verification_equal": _all_equal(results)}, indent=2))
    for error in results["errors"]:
        print(f"  ERROR {error[:500]}", file=sys.stderr)
    return 1 if results["errors"] or not _all_equal(results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
