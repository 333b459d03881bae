"""Every setting the project reads from the environment, in one validated object.

``get_settings()`` reads the variables below once per distinct environment and validates them
together: a bad value fails with an error that names the variable and says what it must be. Paths
derive from two of them, resolved the same way by the generator, dbt (``dbt_project/profiles.yml``
uses the same defaults), the DAGs and the tests, whatever the working directory:

* ``PIPELINE_DATA_DIR`` (default ``<repo>/data``): raw partitions, exports, logs.
* ``DUCKDB_PATH`` (default ``$PIPELINE_DATA_DIR/warehouse.duckdb``): the warehouse file.

The README's configuration table lists every variable; ``python -m ecompipe.settings`` prints the
values in force.
"""

from __future__ import annotations

import json
import os
import zlib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
RAW_FILE_NAME = "transactions.csv"
MAX_SNAPSHOT_DAYS = 366
# Derived from the checkout's path: a second checkout on the same machine gets other ports, and none
# is 8080, where another Airflow may already listen. Airflow takes 20000-34999, the docs 35000-39999.
_PORT_SEED = zlib.crc32(str(REPO_ROOT).encode()) % 5_000
DEFAULT_AIRFLOW_PORT_BASE = 20_000 + _PORT_SEED * 3
DEFAULT_DOCS_PORT = 35_000 + _PORT_SEED
# The cluster profile (`make cluster-up`): PostgreSQL, Redis, the cluster's api-server and triggerer log
# server, four ports per checkout in 40000-59999, apart from the embedded Airflow's.
DEFAULT_CLUSTER_PORT_BASE = 40_000 + _PORT_SEED * 4
# How Airflow hands a run's date to dbt (dbt_project/macros/run_scope.sql): by hand, --vars run_date.
RUN_DATE_ENV = "PIPELINE_RUN_DATE"
# dbt's unit tests check the models' SQL on fixed inputs: they run by hand and in CI (`make test`), not
# in every scheduled build of a date (dbt's own advice: no compute spent on them in production).
SCHEDULED_BUILD_EXCLUDES = ("--exclude-resource-type", "unit_test")
# Names that reach SQL and connection strings unquoted: plain lower-case identifiers only.
IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


class SettingsError(ValueError):
    """An environment variable has a value the project cannot use."""


class Settings(BaseSettings):
    """The environment variables of the project (field name = variable name, case-insensitive)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    # Where data lives.
    pipeline_data_dir: Path = Field(REPO_ROOT / "data", description="raw partitions, warehouse, exports, logs")
    duckdb_path: Path | None = Field(
        None, description="the warehouse file (default $PIPELINE_DATA_DIR/warehouse.duckdb)"
    )
    # How the daily DAG behaves.
    pipeline_mode: Literal["demo", "production"] = Field(
        "production", description="demo: a missing raw partition is generated; production: waited for"
    )
    pipeline_lookback_days: int = Field(3, ge=0, le=31, description="previous days re-checked for late files")
    pipeline_retry_delay_seconds: int = Field(300, ge=0, description="seconds between a task's tries")
    pipeline_sensor_poke_seconds: float = Field(
        300.0, gt=0, description="production: seconds between looks for the file"
    )
    pipeline_sensor_timeout_seconds: float = Field(21_600.0, gt=0, description="production: give up waiting after")
    pipeline_deadline_minutes: float = Field(120.0, gt=0, description="a scheduled run is late this long after its day")
    pipeline_schedule_end_date: date | None = Field(None, description="last date the schedule runs (demos, tests)")
    # Waiting for the DuckDB warehouse's write lock, held by another process.
    pipeline_lock_wait_seconds: float = Field(300.0, ge=0, description="pipeline connections wait this long")
    pipeline_registry_lock_wait_seconds: float = Field(300.0, ge=0, description="the run registry waits this long")
    # Training snapshots.
    pipeline_snapshot_days: int = Field(
        30, ge=1, le=MAX_SNAPSHOT_DAYS, description="days of features in a training snapshot"
    )
    pipeline_snapshot_lock_timeout: float = Field(300.0, ge=0, description="seconds a snapshot waits for the lock")
    # The local Airflow (`make airflow`).
    airflow_home: Path = Field(REPO_ROOT / "airflow_home", description="Airflow's home: config, metadata DB, logs")
    airflow_api_host: str = Field("127.0.0.1", description="address the Airflow api-server (UI) binds")
    airflow_api_port: int = Field(DEFAULT_AIRFLOW_PORT_BASE, gt=0, lt=65_536, description="port of the UI / REST API")
    airflow_worker_log_port: int = Field(DEFAULT_AIRFLOW_PORT_BASE + 1, gt=0, lt=65_536, description="task log server")
    airflow_trigger_log_port: int = Field(DEFAULT_AIRFLOW_PORT_BASE + 2, gt=0, lt=65_536, description="triggerer logs")
    # The profile: embedded (one DuckDB file, one-slot pool, LocalExecutor) or cluster (PostgreSQL,
    # Celery workers, the warehouse on DuckLake); see docs/scaling-out.md.
    pipeline_profile: Literal["embedded", "cluster"] = Field(
        "embedded", description="embedded: DuckDB file + LocalExecutor; cluster: DuckLake + Celery workers"
    )
    pipeline_cluster_dir: Path = Field(
        REPO_ROOT / "cluster", description="cluster profile: PostgreSQL data, secrets, logs, lake files"
    )
    cluster_workers: int = Field(2, ge=1, le=16, description="cluster profile: Celery workers `cluster up` starts")
    cluster_worker_concurrency: int = Field(4, ge=1, le=64, description="cluster profile: task slots per worker")
    cluster_worker_name: str | None = Field(
        None, pattern=r"^w[0-9]{1,2}$", description="set by `cluster up` for each worker: w1, w2, ..."
    )
    cluster_redis_port: int = Field(DEFAULT_CLUSTER_PORT_BASE + 1, gt=0, lt=65_536, description="Redis (Celery broker)")
    lake_pg_host: str = Field("127.0.0.1", description="PostgreSQL of the DuckLake catalog and Airflow's metadata")
    lake_pg_port: int = Field(DEFAULT_CLUSTER_PORT_BASE, gt=0, lt=65_536, description="port of that PostgreSQL")
    lake_pg_user: str = Field("pipeline", pattern=IDENTIFIER, description="PostgreSQL role of the pipeline")
    lake_pg_db: str = Field("ducklake", pattern=IDENTIFIER, description="database of the DuckLake catalog")
    lake_data_path: str | None = Field(
        None, description="DuckLake data files: a folder or s3:// URL (default $PIPELINE_CLUSTER_DIR/lake/)"
    )
    duckdb_extension_dir: Path | None = Field(
        None, description="offline DuckDB extensions (default $PIPELINE_CLUSTER_DIR/duckdb_extensions)"
    )
    # The dbt docs site (`make docs`).
    dbt_docs_host: str = Field("127.0.0.1", description="address `make docs` serves on")
    dbt_docs_port: int = Field(DEFAULT_DOCS_PORT, gt=0, lt=65_536, description="port `make docs` serves on")

    @property
    def data_dir(self) -> Path:
        return self.pipeline_data_dir.expanduser().resolve()

    @property
    def warehouse_path(self) -> Path:
        return self.duckdb_path.expanduser().resolve() if self.duckdb_path else self.data_dir / "warehouse.duckdb"

    @property
    def cluster_dir(self) -> Path:
        return self.pipeline_cluster_dir.expanduser().resolve()

    @property
    def lake_data(self) -> str:
        """Where DuckLake writes its Parquet files, ending in '/' (a local folder or an object-store URL)."""
        path = self.lake_data_path or str(self.cluster_dir / "lake")
        return path if path.endswith("/") else path + "/"

    @property
    def extension_dir(self) -> Path:
        return (self.duckdb_extension_dir or self.cluster_dir / "duckdb_extensions").expanduser().resolve()

    @property
    def pgpass_file(self) -> Path:
        """libpq's password file (PGPASSFILE): generated by `cluster up`, mode 0600."""
        return self.cluster_dir / "secrets" / "pgpass"


ENV_VARS = tuple(name.upper() for name in Settings.model_fields)
_cache: dict[tuple[tuple[str, str], ...], Settings] = {}


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "?"
        what = str(item["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")
        lines.append(f"{name} must be {what}, got {item.get('input')!r}: fix or unset it.")
    return "Invalid setting in the environment:\n  " + "\n  ".join(lines)


def get_settings() -> Settings:
    """The settings of the current environment, validated once per distinct set of values."""
    key = tuple((name, os.environ[name]) for name in ENV_VARS if os.environ.get(name, "").strip())
    if key not in _cache:
        try:
            _cache[key] = Settings(**{name.lower(): value.strip() for name, value in key})
        except ValidationError as error:
            raise SettingsError(_describe(error)) from None
    return _cache[key]


def data_dir() -> Path:
    """Root of all generated data (``PIPELINE_DATA_DIR``), absolute."""
    return get_settings().data_dir


def duckdb_path() -> Path:
    """The DuckDB warehouse file (``DUCKDB_PATH``), absolute."""
    return get_settings().warehouse_path


def raw_dir() -> Path:
    return data_dir() / "raw"


def raw_partition_path(partition_date: str, base_dir: Path | None = None) -> Path:
    """``<raw>/YYYY-MM-DD/transactions.csv``; callers validate the date first."""
    return (base_dir or raw_dir()) / partition_date / RAW_FILE_NAME


def processed_dir() -> Path:
    return data_dir() / "processed"


def features_dir() -> Path:
    return data_dir() / "features" / "daily"


def logs_dir() -> Path:
    return data_dir() / "logs"


def pipeline_env() -> dict[str, str]:
    """The two path variables, resolved, for handing to a subprocess (dbt, airflow); on the cluster
    profile also what dbt's `cluster` target and libpq read (profiles.yml, PGPASSFILE)."""
    settings = get_settings()
    env = {"PIPELINE_DATA_DIR": str(data_dir()), "DUCKDB_PATH": str(duckdb_path())}
    if settings.pipeline_profile == "cluster":
        env.update(
            {
                "PIPELINE_PROFILE": "cluster",
                "PIPELINE_CLUSTER_DIR": str(settings.cluster_dir),
                "LAKE_PG_HOST": settings.lake_pg_host,
                "LAKE_PG_PORT": str(settings.lake_pg_port),
                "LAKE_PG_USER": settings.lake_pg_user,
                "LAKE_PG_DB": settings.lake_pg_db,
                "LAKE_DATA_PATH": settings.lake_data,
                "DUCKDB_EXTENSION_DIR": str(settings.extension_dir),
                "PGPASSFILE": str(settings.pgpass_file),
            }
        )
    return env


def dbt_run_executable() -> Path:
    """``ecompipe-dbt-run``: dbt itself, with fewer garbage collections (ecompipe.core.dbt_process); every
    dbt process the pipeline starts is one."""
    import sys

    return Path(sys.executable).parent / "ecompipe-dbt-run"


def dbt_executable() -> Path:
    """What the pipeline runs for a build: ``dbt_run_executable()``, or on the cluster profile
    ``ecompipe-dbt``, which runs that under a per-date build lock, retrying DuckLake's write conflicts
    (ecompipe.pipeline.lake_dbt)."""
    if get_settings().pipeline_profile == "cluster":
        return dbt_run_executable().with_name("ecompipe-dbt")
    return dbt_run_executable()


def dbt_target() -> str:
    """The dbt target of the profile: `dev` (the DuckDB file) or `cluster` (DuckLake)."""
    return "cluster" if get_settings().pipeline_profile == "cluster" else "dev"


def main() -> int:
    """``python -m ecompipe.settings``: the settings in force, as JSON (a bad one: the error, exit 2)."""
    try:
        print(json.dumps(get_settings().model_dump(mode="json"), indent=2))
    except SettingsError as error:
        print(error)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
