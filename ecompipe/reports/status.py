"""The status of each partition of a date range: loaded, failed, no raw file, never run (``make status``).

Read from what is on disk and in the warehouse, not from Airflow: the raw file, the raw-file
fingerprints (a date is loaded when a run loaded it successfully) and the run registry (the latest
attempt). A loaded date whose file changed since is "changed since loaded" (the next run in its
lookback reloads it). ``make backfill START=.. END=.. REPROCESS=failed`` mends the failed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ecompipe.core.dates import InvalidDateError, date_range, parse_date
from ecompipe.core.warehouse import connect_read_only
from ecompipe.pipeline.raw_fingerprints import fingerprint
from ecompipe.settings import duckdb_path, get_settings, raw_dir

LOADED, CHANGED, FAILED, NO_RAW_FILE, NEVER_RUN = "loaded", "changed since loaded", "failed", "no raw file", "never run"
STATUSES = (LOADED, CHANGED, FAILED, NO_RAW_FILE, NEVER_RUN)


@dataclass(frozen=True)
class PartitionStatus:
    partition_date: str
    status: str
    last_run_id: str | None
    last_run_type: str | None
    last_run_status: str | None
    last_run_ended_at: str | None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}


def _loaded_sha256(con: duckdb.DuckDBPyConnection, days: list[str]) -> dict[str, str]:
    if "raw_partition_manifest" not in _tables(con):
        return {}
    rows = con.execute(
        "select partition_date::varchar, sha256 from main.raw_partition_manifest "
        "where partition_date between ?::date and ?::date",
        [days[0], days[-1]],
    ).fetchall()
    return dict(rows)


def _latest_runs(con: duckdb.DuckDBPyConnection, days: list[str]) -> dict[str, tuple[str, str, str, str | None]]:
    if "pipeline_runs" not in _tables(con):
        return {}
    rows = con.execute(
        "select run_date::varchar, run_id, run_type, status, ended_at::varchar from main.pipeline_runs "
        "where run_date between ?::date and ?::date "
        "qualify row_number() over (partition by run_date order by ended_at desc nulls last) = 1",
        [days[0], days[-1]],
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def statuses(con: duckdb.DuckDBPyConnection | None, days: list[str]) -> list[PartitionStatus]:
    """One status per date of ``days`` (ISO, ascending), the warehouse read through ``con`` (None: no
    warehouse yet, so nothing is loaded or run)."""
    loaded, latest = (_loaded_sha256(con, days), _latest_runs(con, days)) if con is not None and days else ({}, {})
    result = []
    for day in days:
        current = fingerprint(day)
        run = latest.get(day)
        if day in loaded:
            status = CHANGED if current is not None and current.sha256 != loaded[day] else LOADED
        elif run is not None and run[2] == "failed":
            status = FAILED
        elif current is None:
            status = NO_RAW_FILE
        else:
            status = NEVER_RUN
        result.append(PartitionStatus(day, status, *(run or (None, None, None, None))))
    return result


def partition_status(start: str, end: str, warehouse: Path | None = None) -> list[PartitionStatus]:
    """One status per date of [start, end] (validated: YYYY-MM-DD, start <= end). ``warehouse`` None:
    the profile's warehouse (the DuckDB file, or the cluster profile's DuckLake)."""
    days = [day.isoformat() for day in date_range(start, end)]
    if warehouse is None and get_settings().pipeline_profile == "cluster":
        with connect_read_only() as con:
            return statuses(con, days)
    db = warehouse or duckdb_path()
    if not db.exists():
        return statuses(None, days)
    with connect_read_only(db) as con:
        return statuses(con, days)


def raw_dates() -> list[str]:
    """The dates with a raw file (``raw/<YYYY-MM-DD>/transactions.csv``), ascending."""
    found = []
    for path in raw_dir().glob("*/transactions.csv"):
        try:
            found.append(parse_date(path.parent.name, "raw folder").isoformat())
        except InvalidDateError:
            continue  # not a partition folder
    return sorted(found)


def next_steps(rows: list[PartitionStatus]) -> list[str]:
    """What to do about the dates that are not loaded."""
    steps = []
    if any(row.status == FAILED for row in rows):
        steps.append(
            f"Mend the failed dates: make backfill START={rows[0].partition_date} "
            f"END={rows[-1].partition_date} REPROCESS=failed"
        )
    if any(row.status == NEVER_RUN for row in rows):
        steps.append("Never-run dates with a raw file: make backfill START=... END=... (or the next run's lookback)")
    return steps


def format_status(rows: list[PartitionStatus]) -> str:
    """A table, then one line of counts and what to do about what is not loaded."""
    header = ("date", "status", "last run", "run type", "ended at")
    cells = [header] + [
        (row.partition_date, row.status, row.last_run_id or "-", row.last_run_type or "-", row.last_run_ended_at or "-")
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in cells) for i in range(len(header))]
    lines = ["  ".join(str(value).ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    counts = {status: sum(row.status == status for row in rows) for status in STATUSES}
    lines.append(", ".join(f"{count} {status}" for status, count in counts.items() if count))
    return "\n".join([*lines, *next_steps(rows)])
