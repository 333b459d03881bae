"""Raw-file fingerprints: what each partition's file looked like when it was last loaded successfully.

``main.raw_partition_manifest`` holds one row per loaded partition date: size, data rows, sha256 and
the run that loaded it. A run compares the file on disk with it to skip a byte-identical partition,
and to find the late files of the previous days: re-delivered (changed since it was loaded) or never
loaded (a file that arrived after its run gave up, or whose run never happened).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from ecompipe.core.dates import parse_date
from ecompipe.core.files import file_sha256
from ecompipe.core.warehouse import connect_read_only
from ecompipe.settings import get_settings, raw_partition_path

CREATE_SQL = """
create table if not exists main.raw_partition_manifest (
    partition_date date primary key,
    source_file varchar,
    size_bytes bigint,
    sha256 varchar,
    data_rows bigint,
    run_id varchar,
    processed_at timestamp
)
"""


def _create_sql() -> str:
    """DuckLake (cluster profile) has no PRIMARY KEY: the delete-then-insert of ``record`` (under the
    registry's writer lock there) keeps one row per date without it."""
    if get_settings().pipeline_profile == "cluster":
        return CREATE_SQL.replace("partition_date date primary key", "partition_date date")
    return CREATE_SQL


@dataclass(frozen=True)
class PartitionFingerprint:
    partition_date: str
    path: Path
    size_bytes: int
    sha256: str


def fingerprint(day: str | date) -> PartitionFingerprint | None:
    """Size and sha256 of a date's raw partition, or None when there is no file."""
    text = parse_date(day, "partition date").isoformat()
    path = raw_partition_path(text)
    if not path.exists():
        return None
    return PartitionFingerprint(text, path, path.stat().st_size, file_sha256(path))


def recorded_sha256(days: list[str], warehouse: Path | None = None) -> dict[str, str]:
    """{date: sha256} of the manifest for these dates (empty when there is no warehouse or manifest).

    The warehouse is ``warehouse`` if given, else the profile's: the DuckDB file, or on the cluster
    profile the lake."""
    if not days:
        return {}
    try:
        connection = connect_read_only(warehouse)
    except FileNotFoundError:  # no warehouse yet: nothing was loaded
        return {}
    with connection as con:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_name = 'raw_partition_manifest'"
        ).fetchone()[0]
        if not exists:
            return {}
        rows = con.execute(
            "select partition_date::varchar, sha256 from main.raw_partition_manifest where partition_date::varchar in "
            f"({', '.join('?' for _ in days)})",
            days,
        ).fetchall()
    return dict(rows)


def record(con: duckdb.DuckDBPyConnection, day: str, run_id: str) -> None:
    """Upsert the date's manifest row from the file on disk and the warehouse's row accounting."""
    current = fingerprint(day)
    if current is None:
        return
    con.execute(_create_sql())
    rows = con.execute(
        "select raw_rows from int_partitions__row_accounting where partition_date = ?", [current.partition_date]
    ).fetchone()
    con.execute("delete from main.raw_partition_manifest where partition_date = ?", [current.partition_date])
    con.execute(
        "insert into main.raw_partition_manifest values (?, ?, ?, ?, ?, ?, current_timestamp::timestamp)",
        [
            current.partition_date,
            str(current.path),
            current.size_bytes,
            current.sha256,
            rows[0] if rows else None,
            run_id,
        ],
    )


# Why a previous date is loaded again by a later run; the run registry's run_type says which.
REDELIVERED = "late-data reprocess"
NEVER_LOADED = "late-data first load"


@dataclass(frozen=True)
class LateFile:
    partition_date: str
    run_type: str  # REDELIVERED or NEVER_LOADED


def late_in_lookback(run_date: str, lookback_days: int, warehouse: Path | None = None) -> list[LateFile]:
    """Previous dates (run_date-lookback .. run_date-1) with a raw file that is not loaded as it is:
    changed since it was loaded, or never loaded successfully."""
    day = parse_date(run_date, "run_date")
    days = [(day - timedelta(days=offset)).isoformat() for offset in range(lookback_days, 0, -1)]
    known = recorded_sha256(days, warehouse)
    late = []
    for previous in days:
        current = fingerprint(previous)
        if current is None:
            continue
        if previous not in known:
            late.append(LateFile(previous, NEVER_LOADED))
        elif current.sha256 != known[previous]:
            late.append(LateFile(previous, REDELIVERED))
    return late
