"""The warehouse of the cluster profile: a DuckLake catalog in PostgreSQL, Parquet files under a data path.

* Extensions come from pinned PyPI packages (``duckdb-extension-ducklake``, ``duckdb-extension-postgres``)
  and are installed offline into a folder the project owns (``DUCKDB_EXTENSION_DIR``): nothing is
  downloaded at run time, and every process (dbt, the tasks, ``make sql``) loads the same binaries.
* ``connect`` attaches the lake as ``lake`` and makes it the default catalog, so the pipeline's SQL
  (``main.pipeline_runs``, ``from fct_transactions``) runs unchanged on both profiles.
* ``advisory_locks`` takes PostgreSQL advisory locks: what stands in for DuckDB's one-writer lock where
  DuckLake needs one (two builds of one date; the run registry's read-modify-write).

The password never appears in a connection string: libpq reads it from ``PGPASSFILE`` (mode 0600).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import duckdb

from ecompipe.settings import get_settings

LAKE_ALIAS = "lake"
DUCKDB_VERSION = f"v{duckdb.__version__}"
# Advisory-lock namespaces (the first int of pg_advisory_lock(int, int)): 'ECPD' and 'ECPR' in ASCII.
DATE_LOCK_NAMESPACE = 0x45435044
REGISTRY_LOCK_NAMESPACE = 0x45435052
ALL_DATES_KEY = 0  # a full refresh locks every date: exclusive on this key; date builds share it


class LakeError(RuntimeError):
    """The lake cannot be reached or set up; the message says what to do."""


def _packaged_extension(package: str, name: str) -> Path:
    """The extension binary shipped inside a pinned PyPI package."""
    module = importlib.import_module(package)
    found = Path(module.__file__).parent / "extensions" / DUCKDB_VERSION / f"{name}.duckdb_extension"
    if not found.exists():
        raise LakeError(f"{found} is missing: reinstall the pinned requirements (make install).")
    return found


def install_extensions(target: Path | None = None) -> Path:
    """Install ducklake and postgres into ``target`` from the pinned packages, offline; idempotent.

    The postgres binary must be installed as ``postgres_scanner``: DuckDB derives the entry point
    from the file name, and the shipped ``postgres.duckdb_extension`` does not load under that name.
    """
    target = target or get_settings().extension_dir
    target.mkdir(parents=True, exist_ok=True)
    sources = {
        "ducklake": _packaged_extension("duckdb_extension_ducklake", "ducklake"),
        "postgres_scanner": _packaged_extension("duckdb_extension_postgres", "postgres"),
    }
    with tempfile.TemporaryDirectory() as staging, duckdb.connect(config=_offline_config(target)) as con:
        for name, source in sources.items():
            staged = Path(staging) / f"{name}.duckdb_extension"
            shutil.copyfile(source, staged)
            con.execute(f"force install '{_sql_text(str(staged))}'")
    return target


def _offline_config(extension_dir: Path) -> dict[str, str]:
    return {"extension_directory": str(extension_dir), "autoinstall_known_extensions": "false"}


def _sql_text(value: str) -> str:
    """A value for inside a single-quoted SQL literal."""
    return value.replace("'", "''")


def libpq_dsn(dbname: str | None = None) -> str:
    """A libpq key=value connection string for the lake's PostgreSQL (no password: PGPASSFILE)."""
    settings = get_settings()
    return (
        f"dbname={dbname or settings.lake_pg_db} host={settings.lake_pg_host} "
        f"port={settings.lake_pg_port} user={settings.lake_pg_user}"
    )


def attach_sql(read_only: bool = False, snapshot_version: int | None = None) -> str:
    """The ATTACH of the lake; ``snapshot_version`` reads the catalog as it was at that snapshot."""
    options = [f"DATA_PATH '{_sql_text(get_settings().lake_data)}'"]
    if read_only:
        options.append("READ_ONLY")
    if snapshot_version is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot_version)}")
    return f"ATTACH 'ducklake:postgres:{_sql_text(libpq_dsn())}' AS {LAKE_ALIAS} ({', '.join(options)})"


def connect(read_only: bool = False, snapshot_version: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as the default catalog.

    DuckLake has no process lock: readers read a snapshot and never block writers, so there is nothing
    to wait for here (unlike the embedded profile's file lock)."""
    settings = get_settings()
    os.environ.setdefault("PGPASSFILE", str(settings.pgpass_file))  # libpq reads the password from it
    con = duckdb.connect(config=_offline_config(settings.extension_dir))
    try:
        con.execute("load ducklake; load postgres")
    except duckdb.Error as exc:
        con.close()
        raise LakeError(
            f"The DuckLake extensions are not installed in {settings.extension_dir} ({exc}): "
            "run `make cluster-up` (or `ecompipe cluster install-extensions`)."
        ) from exc
    try:
        con.execute(attach_sql(read_only, snapshot_version))
    except duckdb.Error as exc:
        con.close()
        raise LakeError(
            f"Cannot attach the DuckLake catalog {libpq_dsn()} ({str(exc).splitlines()[0]}): "
            "is the cluster running (make cluster-status)?"
        ) from exc
    con.execute(f"use {LAKE_ALIAS}")
    return con


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The id of the lake snapshot this connection reads (the latest committed when it attached)."""
    return int(con.execute(f"select id from {LAKE_ALIAS}.current_snapshot()").fetchone()[0])


def date_lock_keys(dates: Iterable[str]) -> list[tuple[int, int]]:
    """(namespace, yyyymmdd) per date, sorted: every process takes them in one order, so none deadlocks."""
    return sorted({(DATE_LOCK_NAMESPACE, int(day.replace("-", ""))) for day in dates})


@contextlib.contextmanager
def advisory_locks(
    exclusive: Sequence[tuple[int, int]],
    shared: Sequence[tuple[int, int]] = (),
    on_wait: Callable[[tuple[int, int]], None] | None = None,
) -> Iterator[None]:
    """Hold PostgreSQL session advisory locks (shared ones first, then exclusive, each sorted) while the
    block runs. They go with the session: a process killed mid-block releases them on disconnect.

    ``on_wait(key)`` is called when a lock is held by someone else, before waiting for it."""
    import psycopg2  # the cluster profile's dependency: imported only there

    settings = get_settings()
    os.environ.setdefault("PGPASSFILE", str(settings.pgpass_file))
    try:
        conn = psycopg2.connect(libpq_dsn(), application_name="ecompipe-lock")
    except psycopg2.OperationalError as exc:
        raise LakeError(f"Cannot reach PostgreSQL for the pipeline's locks ({exc}): make cluster-status") from exc
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for kind, keys in (("_shared", sorted(shared)), ("", sorted(exclusive))):
                for key in keys:
                    cur.execute(f"select pg_try_advisory_lock{kind}(%s, %s)", key)
                    if not cur.fetchone()[0]:
                        if on_wait is not None:
                            on_wait(key)
                        cur.execute(f"select pg_advisory_lock{kind}(%s, %s)", key)
        yield
    finally:
        conn.close()  # releases every lock of the session
