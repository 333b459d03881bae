"""What every benchmark shares: the knobs, measured subprocesses, raw data and sandboxes, dbt runs, checks.

A measured command runs as a user runs it (a subprocess in its own process group, started by a small
launcher: probes.py spawn): wall seconds from spawn to exit, CPU seconds (user + system) and the largest
resident set of the process and every descendant it waited for, from ``os.wait4``'s rusage. Repeated
runs are reported as medians.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from ecompipe.pipeline.generator import generate_partition
from ecompipe.settings import ENV_VARS, RAW_FILE_NAME, SCHEDULED_BUILD_EXCLUDES, dbt_run_executable

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "benchmarks"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
PYTHON = sys.executable
DBT = str(Path(PYTHON).parent / "dbt")
DAG_DBT = str(dbt_run_executable())  # what the DAG runs in dbt's place on the embedded profile
AIRFLOW = str(Path(PYTHON).parent / "airflow")
BASE_DAY, BASE_ROWS = date(2023, 12, 31), 1000  # a small day loaded first: timed runs take the incremental path
ONE_DAY = date(2024, 3, 1)  # the timed day of the one-day and Airflow comparisons
HISTORY_START = date(2024, 1, 1)  # day 1 of the incremental history, and of the year
EXPORTS = ("processed/date={}/transactions_clean.parquet", "features/daily/date={}/features.parquet")


@dataclass
class Config:
    """Every knob: field ``history_days`` is ``BENCH_HISTORY_DAYS`` in the environment, ``--history-days`` as a flag."""

    reps: int = 3
    # Raw rows of the one-day comparison: the fixed cost (1,000), and the marginal cost from 1M to 10M.
    sizes: tuple[int, ...] = (1000, 1_000_000, 10_000_000)
    history_days: int = 60
    history_rows: int = 100_000
    airflow_rows: int = 100_000
    generator_rows: int = 1_000_000
    backfill: bool = False  # add the real-scheduler backfill to the default set
    backfill_days: int = 7
    max_active_runs: int = 3
    year_days: int = 365
    year_rows: int = 100_000
    year_perday_days: int = 14  # the per-day backfill runs these first days, then is extrapolated
    year_chunk_days: tuple[int, ...] = (92,)
    work_dir: Path = BENCH_DIR / ".work"

    def set(self, name: str, text: str) -> None:
        kind = type(getattr(self, name))
        if kind is tuple:
            value: object = tuple(int(part) for part in text.replace(",", " ").split())
        elif kind is bool:
            value = text.lower() in ("1", "true", "yes", "on")
        else:
            value = kind(text)
        setattr(self, name, value)

    def from_environment(self) -> Config:
        for item in fields(self):
            if os.environ.get(f"BENCH_{item.name.upper()}"):
                self.set(item.name, os.environ[f"BENCH_{item.name.upper()}"])
        return self

    def as_dict(self) -> dict[str, object]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


QUICK = {"reps": 1, "sizes": (1000, 20_000), "history_days": 5, "history_rows": 5_000, "airflow_rows": 5_000}
QUICK |= {"generator_rows": 100_000, "backfill_days": 2, "year_days": 3, "year_rows": 1_000, "year_perday_days": 2}
QUICK |= {"year_chunk_days": (2,)}


def iso(day: date) -> str:
    return day.isoformat()


def days_from(start: date, count: int) -> list[date]:
    return [start + timedelta(days=offset) for offset in range(count)]


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def base_env(**extra: str) -> dict[str, str]:
    """The environment of every measured command: this one, minus the project's settings, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in ENV_VARS}
    env.update({"DO_NOT_TRACK": "1", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"})
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    return env | extra


# --------------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Sample:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)


class CommandFailed(RuntimeError):
    pass


DETACHED: dict[str, Any] = {"stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL, "start_new_session": True}


def measure(
    command: Sequence[str], log: Path, env: dict[str, str], cwd: Path = REPO_ROOT, timeout: float = 3600
) -> Sample:
    """Run ``command`` (output to ``log``) through probes.py's ``spawn``; killed with its process group
    after ``timeout`` seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    result = log.with_name(log.name + ".rusage.json")
    result.unlink(missing_ok=True)
    with log.open("wb") as out:
        spawn = [PYTHON, str(BENCH_DIR / "probes.py"), "spawn", str(result), *command]
        proc = subprocess.Popen(spawn, cwd=cwd, env=env, stdout=out, **DETACHED)
        killer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        killer.start()
        proc.wait()
        killer.cancel()
    usage = json.loads(result.read_text()) if result.exists() else {"returncode": f"killed after {timeout:.0f} s"}
    if usage["returncode"] != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise CommandFailed(f"`{' '.join(map(str, command))}` exited {usage['returncode']}; log {log}:\n{tail}")
    return Sample(usage["wall_s"], usage["cpu_s"], usage["max_rss_mb"], {"started_at": usage["started_at"]})


def median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else float("nan")


def stats(samples: Sequence[Sample], **more: object) -> dict[str, object]:
    """Median wall and CPU seconds, the largest process (MB) over the runs, every run's wall seconds."""
    return {
        "runs": len(samples),
        "wall_s": median(s.wall_s for s in samples),
        "cpu_s": median(s.cpu_s for s in samples),
        "max_rss_mb": max(s.max_rss_mb for s in samples),
        "walls": [round(s.wall_s, 3) for s in samples],
        **more,
    }


def alternate(reps: int, contenders: dict[str, Callable[[int], Sample]]) -> dict[str, list[Sample]]:
    """``reps`` runs of each contender, taking turns, so that load from other work hits them alike."""
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    for rep in range(reps):
        for name, run in contenders.items():
            samples[name].append(run(rep))
    return samples


def last_json_line(log: Path) -> dict[str, Any]:
    """The JSON summary a script printed last (warnings may come before it)."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON summary in {log}")


def script(command: Sequence[str], log: Path, env: dict[str, str] | None = None, timeout: float = 3600) -> Sample:
    """A measured Python script that prints its own JSON summary last (kept in ``extra``)."""
    sample = measure([PYTHON, *command], log, env or base_env(), timeout=timeout)
    sample.extra = last_json_line(log)
    return sample


# --------------------------------------------------------------------------------------------------
# Raw partitions (generated once, cached) and sandboxes


def ensure_raw(work_dir: Path, days: Iterable[date], rows: int) -> Path:
    """The cache folder holding the raw partitions of ``days`` with ``rows`` lines each (made if missing)."""
    folder = work_dir / "raw-cache" / f"rows={rows}"
    for day in days:
        generate_partition(day, folder, rows=rows)
    return folder


@dataclass
class Sandbox:
    """One scenario's ``PIPELINE_DATA_DIR`` (links to cached raw partitions, exports) and warehouse."""

    root: Path
    work_dir: Path

    @classmethod
    def create(cls, work_dir: Path, name: str) -> Sandbox:
        sandbox = cls(fresh_dir(work_dir / name), work_dir)
        (sandbox.data_dir / "raw").mkdir(parents=True)
        return sandbox

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    def link(self, days: Iterable[date], rows: int) -> None:
        days = list(days)
        cache = ensure_raw(self.work_dir, days, rows)
        for day in days:
            link = self.data_dir / "raw" / iso(day)
            link.unlink(missing_ok=True)
            link.symlink_to(cache / iso(day), target_is_directory=True)

    def raw_file(self, day: date) -> Path:
        return self.data_dir / "raw" / iso(day) / RAW_FILE_NAME

    def env(self, **extra: str) -> dict[str, str]:
        return base_env(PIPELINE_DATA_DIR=str(self.data_dir), DUCKDB_PATH=str(self.warehouse), **extra)

    def save(self, name: str) -> Path:
        """Copy the warehouse aside, to start every repetition from the same state."""
        return Path(shutil.copyfile(self.warehouse, self.root / f"{name}.duckdb"))

    def restore(self, saved: Path | None) -> None:
        """Back to a saved warehouse (``None``: no warehouse at all)."""
        self.warehouse.with_name(self.warehouse.name + ".wal").unlink(missing_ok=True)
        self.warehouse.unlink(missing_ok=True)
        if saved:
            shutil.copyfile(saved, self.warehouse)

    def exports(self, days: Iterable[date], base: Path | None = None) -> list[list[Path]]:
        """The two Parquet files of each date: [clean files, feature files]."""
        return [[(base or self.data_dir) / pattern.format(iso(day)) for day in days] for pattern in EXPORTS]


# --------------------------------------------------------------------------------------------------
# dbt, as a user runs it: the CLI, with its phases from dbt's JSON log and run_results.json


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def dag_env(box: Sandbox, day: date) -> dict[str, str]:
    """The environment the DAG gives dbt for ``day``: the date in PIPELINE_RUN_DATE, not in --vars."""
    return box.env(PIPELINE_RUN_DATE=iso(day))


def run_vars(first: date, last: date | None = None) -> str:
    if last is None:
        return "{run_date: " + iso(first) + "}"
    return "{start_date: " + iso(first) + ", end_date: " + iso(last) + "}"


def _log_ts(info: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(info["ts"]).replace("Z", "+00:00")).timestamp()


def dbt_build(variables: str | None, env: dict[str, str], run_dir: Path, parsed: Path | None = None) -> Sample:
    """``dbt build`` in a fresh target folder: ``--vars variables`` (a new date's vars force a full parse),
    or with no vars the way the DAG runs it: ``ecompipe-dbt-run``, the date in ``env`` (PIPELINE_RUN_DATE),
    no unit tests and, from ``parsed`` (an earlier build's target folder), dbt's partial-parse file, as
    Cosmos copies the project's.

    Phases: ``startup`` (spawn to dbt's first log line), ``parse`` (to "Found N models"), ``models`` and
    ``tests`` (their execution times), ``exit`` (end of the run to process exit).
    """
    fresh_dir(run_dir)
    if parsed is not None:
        (run_dir / "target").mkdir()
        shutil.copyfile(parsed / PARTIAL_PARSE_FILE, run_dir / "target" / PARTIAL_PARSE_FILE)
    command = [
        DBT if variables else DAG_DBT,
        "build",
        *(["--vars", variables] if variables else SCHEDULED_BUILD_EXCLUDES),
        "--target-path",
        str(run_dir / "target"),
        "--log-path",
        str(run_dir / "logs"),
        "--log-format-file",
        "json",
    ]
    sample = measure(command, run_dir / "stdout.log", env, cwd=DBT_PROJECT_DIR)
    spawned = sample.extra["started_at"]
    marks: dict[str, float] = {}
    for line in (run_dir / "logs" / "dbt.log").read_text(errors="replace").splitlines():
        info = json.loads(line).get("info", {}) if line.startswith("{") else {}
        if info.get("ts"):
            marks.setdefault("first", _log_ts(info))
            marks[info.get("name", "")] = _log_ts(info)
    kinds = {"model": 0.0, "test": 0.0}
    for result in json.loads((run_dir / "target" / "run_results.json").read_text())["results"]:
        kind = result["unique_id"].split(".", 1)[0].removeprefix("unit_")
        if kind in kinds:
            kinds[kind] += float(result.get("execution_time") or 0)
    end = marks.get("FinishedRunningStats", spawned + sample.wall_s)
    sample.extra = {
        "startup_s": marks.get("first", spawned) - spawned,
        "parse_s": marks.get("FoundStats", 0.0) - marks.get("first", 0.0),
        "models_s": kinds["model"],
        "tests_s": kinds["test"],
        "exit_s": spawned + sample.wall_s - end,
    }
    return sample


def dbt_stats(samples: Sequence[Sample], **more: object) -> dict[str, object]:
    phases = {key: median(float(s.extra[key]) for s in samples) for key in samples[0].extra}
    return stats(samples, phases=phases, **more)


# --------------------------------------------------------------------------------------------------
# Checks (outside the timings): did the contenders produce the same data?


def _parquet(files: Sequence[Path]) -> str:
    """Parquet files read as one table (their ``date=...`` folders are not a column)."""
    listed = ", ".join("'" + str(path).replace("'", "''") + "'" for path in files)
    return f"read_parquet([{listed}], hive_partitioning = false)"


def same_rows(reference: Sequence[Path], candidate: Sequence[Path]) -> dict[str, object]:
    """Do the candidate files hold the reference's rows, on the candidate's columns (the reference may have more)?
    Compared as (rows, order-independent hash of the rows)."""
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        columns = [row[0] for row in con.execute(f"describe select * from {_parquet(candidate[:1])}").fetchall()]
        selected = ", ".join(f'"{name}"' for name in columns)
        ref, cand = (
            con.execute(
                f"select count(*), sum(hash(t)::hugeint) from (select {selected} from {_parquet(files)}) t"
            ).fetchone()
            for files in (reference, candidate)
        )
    return {"equal": ref == cand, "rows_reference": ref[0], "rows_candidate": cand[0], "files": len(candidate)}


# --------------------------------------------------------------------------------------------------
# Facts about the run, and writing results


def machine() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory, 1), "platform": platform.platform()}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "apache-airflow", "astronomer-cosmos", "pandas", "pyarrow"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text.replace(f"{REPO_ROOT}/", ""))  # committed results: paths relative to the checkout
    os.replace(tmp, path)
