"""Paths, configuration knobs, machine and version facts shared by the benchmark sections."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable
DBT = str(VENV_BIN / "dbt")
AIRFLOW = str(VENV_BIN / "airflow")
DAG_ID = "end_to_end_data_pipeline"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_ints(name: str, default: str) -> tuple[int, ...]:
    return tuple(int(part) for part in os.environ.get(name, default).replace(",", " ").split())


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


@dataclass
class Config:
    """Every knob, from the environment (``BENCH_*``) or the command line."""

    work_dir: Path = field(default_factory=lambda: Path(os.environ.get("BENCH_WORK_DIR", BENCH_DIR / ".work")))
    reps: int = field(default_factory=lambda: _env_int("BENCH_REPS", 3))
    sizes: tuple[int, ...] = field(default_factory=lambda: _env_ints("BENCH_SIZES", "100000 1000000"))
    startup_rows: int = field(default_factory=lambda: _env_int("BENCH_STARTUP_ROWS", 1000))
    history_days: int = field(default_factory=lambda: _env_int("BENCH_HISTORY_DAYS", 60))
    history_rows: int = field(default_factory=lambda: _env_int("BENCH_HISTORY_ROWS", 100_000))
    airflow_rows: int = field(default_factory=lambda: _env_int("BENCH_AIRFLOW_ROWS", 100_000))
    generator_rows: int = field(default_factory=lambda: _env_int("BENCH_GENERATOR_ROWS", 1_000_000))
    backfill: bool = field(default_factory=lambda: _env_flag("BENCH_BACKFILL"))
    backfill_days: int = field(default_factory=lambda: _env_int("BENCH_BACKFILL_DAYS", 7))
    experiments: bool = field(default_factory=lambda: _env_flag("BENCH_EXPERIMENTS"))
    sections: tuple[str, ...] = ()
    render_only: bool = False

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["work_dir"] = str(self.work_dir)
        return data


# Dates: every benchmark day is a fixed calendar date, so raw files are generated once and cached.
BASE_DAY = date(2023, 12, 31)  # a small day loaded first, so timed runs take the incremental path
ONE_DAY = date(2024, 3, 1)  # the timed day of the one-day comparison
HISTORY_START = date(2024, 1, 1)  # day 1 of the incremental-flatness history


def iso(day: date) -> str:
    return day.isoformat()


def days_from(start: date, count: int) -> list[date]:
    return [start + timedelta(days=offset) for offset in range(count)]


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (removed first if it exists)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def base_env() -> dict[str, str]:
    """The environment of every measured command: ours, minus anything that points elsewhere."""
    env = dict(os.environ)
    for inherited in ("PIPELINE_DATA_DIR", "DUCKDB_PATH", "PIPELINE_MODE", "PIPELINE_SCHEDULE_END_DATE"):
        env.pop(inherited, None)
    env.update({"DO_NOT_TRACK": "1", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"})
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def pipeline_env(data_dir: Path, warehouse: Path) -> dict[str, str]:
    env = base_env()
    env.update({"PIPELINE_DATA_DIR": str(data_dir), "DUCKDB_PATH": str(warehouse)})
    return env


VERSIONED_PACKAGES = (
    "duckdb",
    "dbt-core",
    "dbt-duckdb",
    "apache-airflow",
    "astronomer-cosmos",
    "pandas",
    "pyarrow",
    "numpy",
    "psutil",
)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    memory = psutil.virtual_memory()
    return {
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_total_gib": round(memory.total / 2**30, 1),
        "memory_available_gib_at_start": round(memory.available / 2**30, 1),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_json_atomically(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # Results are committed: paths inside the checkout are written relative to it, not as this machine's.
    text = json.dumps(payload, indent=2, default=str).replace(f"{REPO_ROOT}/", "")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
