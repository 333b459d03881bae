"""The warehouse connection (both profiles), table fingerprints and the per-date summary.

Embedded profile: the DuckDB file ``DUCKDB_PATH``. Cluster profile (``PIPELINE_PROFILE=cluster``): the
DuckLake catalog (``ecompipe.core.lake``), attached as the default catalog, so every caller's SQL runs
unchanged on both.
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from ecompipe.settings import duckdb_path, get_settings

# DuckDB lets one process write a file, and refuses to open it while another holds the write lock.
# Pipeline tasks share a one-slot Airflow pool, but a dbt process outside it (a Cosmos sensor's
# fallback run, a `make sql` shell, a hand-run `dbt build`) may hold the lock for a while: wait.
log = logging.getLogger(__name__)

# The storage format of a warehouse file this project creates (dbt's profile sets the same, as
# `config_options`): DuckDB >= 1.3 reads it, and it writes a day's rows ~1.5x faster than the default
# (1.0) format. Only a new file takes it: an existing one keeps the format it was created with.
STORAGE_VERSION = "v1.3.0"

MART_TABLES = ("fct_transactions", "agg_customer_daily", "agg_customer_rolling", "fct_transaction_features")
MODEL_TABLES = (
    "stg_raw__partitions",
    "stg_raw__transactions",
    "stg_raw__rejects",
    "int_transactions__repeats",
    "int_transactions__classified",
    "int_partitions__row_accounting",
    *MART_TABLES,
)


class WarehouseLockedError(RuntimeError):
    """Another process kept the warehouse's lock for longer than we were willing to wait."""


def connect(
    path: Path | None = None, read_only: bool = False, wait_seconds: float | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse, retried with backoff while another process holds its lock.

    On the cluster profile (and no explicit ``path``): the lake, where nothing holds a process lock."""
    if path is None and get_settings().pipeline_profile == "cluster":
        from ecompipe.core import lake

        return lake.connect(read_only=read_only)
    db = str(path or duckdb_path())
    give_up = time.monotonic() + (get_settings().pipeline_lock_wait_seconds if wait_seconds is None else wait_seconds)
    delay, told = 0.25, False
    while True:
        try:
            if read_only:
                return duckdb.connect(db, read_only=True)
            return duckdb.connect(db, config={"storage_compatibility_version": STORAGE_VERSION})
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() + delay > give_up:
                raise WarehouseLockedError(
                    f"The warehouse {db} stayed locked by another process ({exc}). If it is a `make sql` "
                    "shell or a hand-run dbt, close it or let it finish, then retry."
                ) from exc
            if not told:  # say it once: a long silent wait looks like a hang
                remaining, told = give_up - time.monotonic(), True
                log.info("Warehouse %s is locked by another process: waiting up to %.0f s", db, remaining)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)  # short: the holder is usually a task done in seconds


@contextlib.contextmanager
def writer_lock(name: str) -> Iterator[None]:
    """Serialise a read-modify-write of ``name`` (a table and its files) across processes.

    Embedded profile: nothing to do, the DuckDB file's write lock already serialises writers. Cluster
    profile: DuckLake lets writers run together, so a PostgreSQL advisory lock per name stands in."""
    if get_settings().pipeline_profile != "cluster":
        yield
        return
    from ecompipe.core import lake

    with lake.advisory_locks([(lake.REGISTRY_LOCK_NAMESPACE, zlib.crc32(name.encode()) & 0x7FFFFFFF)]):
        yield


def connect_read_only(path: Path | None = None) -> duckdb.DuckDBPyConnection:
    if path is None and get_settings().pipeline_profile == "cluster":
        return connect(read_only=True)
    db = path or duckdb_path()
    if not db.exists():
        raise FileNotFoundError(f"No warehouse at {db}: run the pipeline first (make demo, or dbt build).")
    return connect(db, read_only=True)


def table_fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """(row count, order-independent hash of all rows); equal iff the same multiset of rows, in practice."""
    if table not in MODEL_TABLES:
        raise ValueError(f"unknown table {table!r}")
    # Summing (not XOR-ing) row hashes keeps duplicates visible.
    count, total = con.execute(f"select count(*), coalesce(sum(hash(t)::hugeint), 0) from {table} as t").fetchone()
    return int(count), int(total)


def fingerprints(path: Path | None = None, tables: tuple[str, ...] = MODEL_TABLES) -> dict[str, tuple[int, int]]:
    with connect_read_only(path) as con:
        return {table: table_fingerprint(con, table) for table in tables}


SUMMARY_SQL = """
with raw as (
    select
        partition_date,
        raw_rows,
        kept_rows,
        duplicate_rows,
        negative_price_rows + price_above_max_rows + non_positive_quantity_rows as invalid_rows,
        quarantined_rows,
        rejected_rows,
    from int_partitions__row_accounting
    where partition_date between $start and $end
),
customers as (
    select transaction_date as partition_date, count(*) as customers, sum(total_spent) as revenue
    from agg_customer_daily
    where transaction_date between $start and $end
    group by transaction_date
),
latest_tests as (
    -- The latest outcome of each test for each date (a full refresh covers every date).
    select raw.partition_date, results.test_name, results.status
    from raw
    join {test_results} as results
        on raw.partition_date between coalesce(results.scope_start, raw.partition_date)
                                  and coalesce(results.scope_end, raw.partition_date)
    qualify row_number() over (partition by raw.partition_date, results.test_name order by results.recorded_at desc) = 1
),
tests as (
    select
        partition_date,
        count(*) filter (status = 'pass') as tests_passed,
        count(*) filter (status = 'warn') as tests_warned,
        count(*) filter (status in ('fail', 'error')) as tests_failed,
    from latest_tests
    group by partition_date
)
select
    raw.*,
    coalesce(customers.customers, 0) as customers,
    coalesce(customers.revenue, 0) as revenue,
    coalesce(tests.tests_passed, 0) as tests_passed,
    coalesce(tests.tests_warned, 0) as tests_warned,
    coalesce(tests.tests_failed, 0) as tests_failed,
from raw
left join customers using (partition_date)
left join tests using (partition_date)
order by partition_date
"""

EMPTY_TEST_RESULTS = (
    "(select null::date as scope_start, null::date as scope_end, null::varchar as test_name, "
    "null::varchar as status, null::timestamp as recorded_at where false)"
)


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    query = "select count(*) from information_schema.tables where table_schema = 'main' and table_name = ?"
    return con.execute(query, [table]).fetchone()[0] > 0


def daily_summary(start: str, end: str, path: Path | None = None) -> list[dict[str, object]]:
    """Per partition date in [start, end]: row accounting, customers, revenue and dbt test outcomes."""
    with connect_read_only(path) as con:
        if not _has_table(con, "int_partitions__row_accounting"):
            return []
        results = "main.dbt_test_results" if _has_table(con, "dbt_test_results") else EMPTY_TEST_RESULTS
        cursor = con.execute(SUMMARY_SQL.format(test_results=results), {"start": start, "end": end})
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _json_ready(row: dict[str, object]) -> dict[str, object]:
    return {
        key: value if isinstance(value, int | float | str) or value is None else str(value)
        for key, value in row.items()
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m ecompipe.core.warehouse summary START END``: the per-date summary as JSON."""
    import argparse
    import json

    from ecompipe.core.dates import parse_date

    parser = argparse.ArgumentParser(prog="python -m ecompipe.core.warehouse")
    parser.add_argument("command", choices=["summary"])
    parser.add_argument("start")
    parser.add_argument("end")
    args = parser.parse_args(argv)
    start, end = parse_date(args.start, "start").isoformat(), parse_date(args.end, "end").isoformat()
    print(json.dumps([_json_ready(row) for row in daily_summary(start, end)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
