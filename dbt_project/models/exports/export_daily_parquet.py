"""Write the scope's dates of the marts to hive-partitioned Parquet, and record what was written.

``processed/date=D/transactions_clean.parquet`` (fct_transactions) and
``features/daily/date=D/features.parquet`` (fct_transaction_features), under the data folder
(config ``export_data_dir``: ``$PIPELINE_DATA_DIR``, like profiles.yml). Self-contained: dbt runs
it with the adapter's own DuckDB and the standard library, nothing else.

* Rows are sorted by transaction_id and written by DuckDB itself (``COPY ... TO``, zstd,
  ``PARQUET_OPTIONS``), so the same rows give the same bytes and no row passes through Python.
* One sort a date: the features file is written sorted, and the clean file is its columns less the
  three customer ones, read back from it in file order (DuckDB keeps a single file's order while
  ``preserve_insertion_order`` is on, its default; otherwise the clean file is sorted again). A date's
  two files replace the old ones only once both are written.
* A range's dates are written side by side, as many at once as DuckDB has threads, each through its
  own cursor: a day's file of up to ~120k rows is one Parquet row group, which DuckDB writes on one
  thread, so a range of days written one file at a time would leave the other cores idle.
* Each file is written to a temporary file in its folder, then renamed over the old one
  (``os.replace``, atomic on POSIX): a reader sees the old file or the new one, never half of one.
  The temporary name (``.<name>.<random>.tmp``) matches no ``*.parquet`` glob.
* A date with no valid rows gets an empty file with the full schema, so a re-delivered day can shrink
  to nothing without a stale file surviving.

The model's table is the export log: one row per (date, dataset) with path, rows and sha256.
(dbt-duckdb materializes Python models as tables, so the log holds the latest invocation.)

No pyarrow, pandas or bound query parameters here: binding a Python value to a query makes DuckDB
import pandas, and an Arrow table handed back makes dbt-duckdb import pyarrow's dataset module, ~0.5 s
of every build however few its rows. Values reach SQL as literals (``_sql_literal``).
"""

import datetime
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

# (dataset, folder under the data dir, file name): the clean transactions, then their features.
CLEAN = ("processed", ("processed",), "transactions_clean.parquet")
FEATURES = ("features", ("features", "daily"), "features.parquet")

# DuckDB's Parquet options for both files. A column gets a dictionary while a row group of it has at
# most 8,192 distinct values (DuckDB's default: a fifth of the row group, 24,576): a column with more,
# such as a day's prices and amounts, is then written plain at once instead of after a dictionary
# built for nothing. The two files of a 10M-row day are written in ~1 s less and come out a little
# smaller (docs/performance.md).
PARQUET_OPTIONS = "format parquet, compression zstd, dictionary_size_limit 8192"

# The export log's columns and their DuckDB types.
LOG_COLUMNS = (
    ("partition_date", "date"),
    ("dataset", "varchar"),
    ("path", "varchar"),
    ("row_count", "bigint"),
    ("sha256", "varchar"),
)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _checked_date(value) -> str:
    """A real YYYY-MM-DD calendar date, or an error: dates become folder names."""
    text = str(value)
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"partition_date must be a date in YYYY-MM-DD form, got {text!r}")
    return datetime.date.fromisoformat(text).isoformat()


def _data_dir(dbt) -> Path:
    # A plain dbt.config.get("<literal>") call: dbt finds the keys a Python model reads by parsing it.
    configured = dbt.config.get("export_data_dir")
    if not configured:
        raise ValueError("config export_data_dir is not set (dbt_project.yml, models: exports)")
    return Path(configured).expanduser().resolve()


def _sql_literal(value: str | int) -> str:
    """A SQL literal: an integer as is, text quoted with its quotes doubled (DuckDB's strings take no
    backslash escapes)."""
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (files can be larger than memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file next to ``path``, renamed over it when the block succeeds, removed if not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _copy(cursor, query: str, path: Path) -> int:
    """Write a query's rows to a Parquet file; returns the row count from the file's footer."""
    literal = _sql_literal(str(path))
    cursor.execute(f"copy ({query}) to {literal} ({PARQUET_OPTIONS})")
    return cursor.sql(f"select num_rows from parquet_file_metadata({literal})").fetchone()[0]


def _export_day(
    session, features_query: str, clean_query: Callable[[str], str], paths: tuple[Path, Path]
) -> list[tuple[int, str]]:
    """Write one date's two files through a cursor of its own (dates are written side by side):
    [(rows, sha256) of the clean file, (rows, sha256) of the features file]."""
    clean_path, features_path = paths
    cursor = session.cursor()
    try:
        with _replacing(features_path) as features_tmp:
            feature_rows = _copy(cursor, features_query, features_tmp)
            with _replacing(clean_path) as clean_tmp:
                clean_rows = _copy(cursor, clean_query(_sql_literal(str(features_tmp))), clean_tmp)
    finally:
        cursor.close()
    return [(clean_rows, _file_sha256(clean_path)), (feature_rows, _file_sha256(features_path))]


def _clean_query(columns: list[str], keeps_order: bool, features_file: str) -> str:
    """The clean file from its date's features file (a SQL literal): the clean columns, in the file's
    order, or sorted again if DuckDB may reorder rows."""
    selected = ", ".join('"' + name.replace('"', '""') + '"' for name in columns)
    source = f"read_parquet({features_file}, hive_partitioning = false)"
    return f"select {selected} from {source}" + ("" if keeps_order else " order by transaction_id")


def _writers(session, dates: int) -> int:
    # Dates side by side only for several dates: a day's files of many row groups each already use
    # every thread, and two at once would only compete for them (and hold two sorts in memory).
    # Never more than DuckDB's threads: more files at once would only wait for them.
    threads = session.sql("select current_setting('threads')").fetchone()[0]
    return max(1, min(int(threads), dates))


def _scope_dates(dbt) -> list[str]:
    # The date vars (rendered into config when the project is parsed), else the date Airflow hands
    # over in the environment (macros/run_scope.sql: never read while parsing).
    start, end = dbt.config.get("scope_start_date"), dbt.config.get("scope_end_date")
    if not (start or end):
        start = end = os.environ.get("PIPELINE_RUN_DATE", "")
    if start and end:
        first = datetime.date.fromisoformat(_checked_date(start))
        last = datetime.date.fromisoformat(_checked_date(end))
        return [(first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    # Full refresh: every partition that was staged, including days with no valid row.
    staged = dbt.ref("stg_raw__transactions")
    rows = staged.project("partition_date").distinct().fetchall()
    return sorted(row[0].isoformat() for row in rows)


def model(dbt, session):
    # dbt needs literal ref() calls to see the lineage.
    transactions = dbt.ref("fct_transactions")
    features = dbt.ref("fct_transaction_features")
    data_dir = _data_dir(dbt)
    keeps_order = session.sql("select current_setting('preserve_insertion_order')").fetchone()[0]
    clean_query = partial(_clean_query, transactions.columns, bool(keeps_order))
    jobs = []
    for day in _scope_dates(dbt):
        day = _checked_date(day)
        rows = features.filter(f"partition_date = date '{day}'").order("transaction_id")
        paths = tuple(data_dir.joinpath(*folder, f"date={day}", name) for _, folder, name in (CLEAN, FEATURES))
        jobs.append((day, rows.sql_query(), paths))
    with ThreadPoolExecutor(max_workers=_writers(session, len(jobs))) as pool:
        written = list(pool.map(lambda job: _export_day(session, job[1], clean_query, job[2]), jobs))
    entries = [
        (day, dataset, str(path), row_count, digest)
        for (day, _, paths), files in zip(jobs, written, strict=True)
        for (dataset, _, _), path, (row_count, digest) in zip((CLEAN, FEATURES), paths, files, strict=True)
    ]
    return _log_relation(session, entries)


def _log_relation(session, entries: list[tuple[str, str, str, int, str]]):
    """The export log as a DuckDB relation, its columns typed by LOG_COLUMNS (also when empty)."""
    if not entries:
        typed_nulls = ", ".join(f"null::{kind} as {name}" for name, kind in LOG_COLUMNS)
        return session.sql(f"select {typed_nulls} where false")
    names = ", ".join(name for name, _ in LOG_COLUMNS)
    typed = ", ".join(f"{name}::{kind} as {name}" for name, kind in LOG_COLUMNS)
    values = ", ".join("(" + ", ".join(_sql_literal(value) for value in entry) + ")" for entry in entries)
    return session.sql(f"select {typed} from (values {values}) as export_log ({names})")
