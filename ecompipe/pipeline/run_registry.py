"""The run registry: one record per (run_date, run id), in the warehouse and as JSON lines.

``main.pipeline_runs`` in the warehouse (for SQL and the dashboard) and
``$PIPELINE_DATA_DIR/pipeline_registry.jsonl`` (the lab's registry, for people who read files). Writing
the same (run_date, run_id) again replaces its record in both: recording is idempotent.

A missed deadline (``record_deadline_miss``, called by the DAG's deadline callback) sets
``deadline_time`` / ``deadline_missed_at`` on the run's record, creating it if the run has not
recorded itself yet; recording the run later keeps them. DuckDB allows one writing process per file:
every write here opens a short-lived connection, retrying while another process holds the lock, and
rewrites the JSON lines file while it holds that lock (so the lock also serialises the file).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from ecompipe.core.dates import parse_date
from ecompipe.core.files import write_text_atomically
from ecompipe.core.warehouse import WarehouseLockedError, writer_lock
from ecompipe.core.warehouse import connect as connect_warehouse
from ecompipe.pipeline import raw_fingerprints as manifest
from ecompipe.settings import data_dir, features_dir, get_settings, processed_dir

CREATE_SQL = """
create table if not exists main.pipeline_runs (
    run_date date,
    run_id varchar,
    run_type varchar,
    started_at timestamp,
    ended_at timestamp,
    status varchar,
    rows_in bigint,
    rows_kept bigint,
    rows_quarantined bigint,
    output_paths varchar,
    dbt_summary varchar,
    deadline_time timestamp,
    deadline_missed_at timestamp
)
"""
# Registries created before the deadline columns existed get them on their next write.
MIGRATE_SQL = (
    "alter table main.pipeline_runs add column if not exists deadline_time timestamp",
    "alter table main.pipeline_runs add column if not exists deadline_missed_at timestamp",
)
COLUMNS = (
    "run_date, run_id, run_type, started_at, ended_at, status, rows_in, rows_kept, rows_quarantined, "
    "output_paths, dbt_summary, deadline_time, deadline_missed_at"
)
DEADLINE_FIELDS = ("deadline_time", "deadline_missed_at")


@dataclass
class RunRecord:
    run_date: str
    run_id: str
    run_type: str
    started_at: str | None
    ended_at: str | None
    status: str
    rows_in: int | None = None
    rows_kept: int | None = None
    rows_quarantined: int | None = None
    output_paths: list[str] = field(default_factory=list)
    dbt_summary: str = ""
    deadline_time: str | None = None
    deadline_missed_at: str | None = None


def registry_path() -> Path:
    return data_dir() / "pipeline_registry.jsonl"


def _fill_from_warehouse(con: duckdb.DuckDBPyConnection, record: RunRecord) -> None:
    tables = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
    if "int_partitions__row_accounting" in tables:
        row = con.execute(
            "select raw_rows, kept_rows, quarantined_rows + rejected_rows from int_partitions__row_accounting "
            "where partition_date = ?",
            [record.run_date],
        ).fetchone()
        if row:
            record.rows_in, record.rows_kept, record.rows_quarantined = (int(value) for value in row)
    if "dq_daily" in tables:
        counts = con.execute(
            "select status, count(*) from dq_daily where partition_date = ? group by status order by status",
            [record.run_date],
        ).fetchall()
        checks = "checks: " + ", ".join(f"{count} {status}" for status, count in counts)
        record.dbt_summary = f"{record.dbt_summary}; {checks}" if record.dbt_summary else checks
    day = record.run_date
    candidates = [
        processed_dir() / f"date={day}" / "transactions_clean.parquet",
        features_dir() / f"date={day}" / "features.parquet",
        data_dir() / "logs" / "data_quality" / day / "report.json",
    ]
    record.output_paths = [str(path) for path in candidates if path.exists()]


def _rewrite_jsonl(records: list[RunRecord]) -> None:
    """Replace each key's line (keeping a deadline miss it recorded) or append one. Call with the lock held."""
    by_key = {(record.run_date, record.run_id): record for record in records}
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                kept.append(line)  # never drop what someone else wrote
                continue
            record = by_key.get((entry.get("run_date"), entry.get("run_id")))
            if record is None:
                kept.append(line)
            else:
                _keep_deadline(record, entry)
    kept.extend(json.dumps(asdict(record), sort_keys=True) for record in by_key.values())
    write_text_atomically(path, "\n".join(kept) + "\n")


def _keep_deadline(record: RunRecord, earlier: dict[str, object]) -> None:
    """A deadline miss recorded earlier for the same key survives the run's own record."""
    for name in DEADLINE_FIELDS:
        value = earlier.get(name)
        if getattr(record, name) is None and value is not None:
            setattr(record, name, value.isoformat() if isinstance(value, datetime) else str(value))


def connect(warehouse: Path | None = None, wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """A read-write connection, retried while another process holds DuckDB's write lock."""
    try:
        return connect_warehouse(
            warehouse,
            wait_seconds=get_settings().pipeline_registry_lock_wait_seconds if wait_seconds is None else wait_seconds,
        )
    except WarehouseLockedError as exc:
        raise RuntimeError(f"Could not open the warehouse to write the run registry: {exc}") from exc


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(CREATE_SQL)
    for statement in MIGRATE_SQL:
        con.execute(statement)


def _existing(con: duckdb.DuckDBPyConnection, run_date: str, run_id: str) -> dict[str, object] | None:
    found = con.execute(
        f"select {', '.join(DEADLINE_FIELDS)} from main.pipeline_runs where run_date = ? and run_id = ?",
        [run_date, run_id],
    ).fetchone()
    return dict(zip(DEADLINE_FIELDS, found, strict=True)) if found else None


def _insert(con: duckdb.DuckDBPyConnection, record: RunRecord) -> None:
    con.execute("delete from main.pipeline_runs where run_date = ? and run_id = ?", [record.run_date, record.run_id])
    con.execute(
        f"insert into main.pipeline_runs ({COLUMNS}) values ({', '.join('?' * 13)})",
        [
            record.run_date,
            record.run_id,
            record.run_type,
            record.started_at,
            record.ended_at,
            record.status,
            record.rows_in,
            record.rows_kept,
            record.rows_quarantined,
            json.dumps(record.output_paths),
            record.dbt_summary,
            record.deadline_time,
            record.deadline_missed_at,
        ],
    )


def record_run(record: RunRecord, warehouse: Path | None = None) -> RunRecord:
    """Complete the record from the warehouse and write it (replacing any earlier one for the key)."""
    return record_runs([record], warehouse)[0]


def record_runs(records: list[RunRecord], warehouse: Path | None = None) -> list[RunRecord]:
    """``record_run`` for many dates at once (a bulk chunk's): one connection, one transaction, one
    rewrite of the JSONL file, instead of one of each per date."""
    for record in records:
        record.run_date = parse_date(record.run_date, "run_date").isoformat()
    with writer_lock("pipeline_runs"), connect(warehouse) as con:  # cluster: one registry writer at a time
        for record in records:
            _fill_from_warehouse(con, record)
        _ensure_table(con)
        con.execute("begin")
        for record in records:
            _keep_deadline(record, _existing(con, record.run_date, record.run_id) or {})
            _insert(con, record)
            if record.status == "success":
                # The partition as processed now: later runs skip it while it stays byte-identical.
                manifest.record(con, record.run_date, record.run_id)
        con.execute("commit")
        _rewrite_jsonl(records)  # while the lock is held: it serialises writers of the file too
    return records


def record_deadline_miss(record: RunRecord, warehouse: Path | None = None) -> RunRecord:
    """Set the deadline fields on the run's record (created with ``record``'s fields if the run has not
    recorded itself yet). Idempotent per (run_date, run_id): the first miss recorded is kept."""
    record.run_date = parse_date(record.run_date, "run_date").isoformat()
    with writer_lock("pipeline_runs"), connect(warehouse) as con:  # cluster: one registry writer at a time
        _ensure_table(con)
        con.execute("begin")
        if _existing(con, record.run_date, record.run_id) is None:
            _insert(con, record)
        con.execute(
            "update main.pipeline_runs set deadline_time = coalesce(deadline_time, ?::timestamp), "
            "deadline_missed_at = coalesce(deadline_missed_at, ?::timestamp) where run_date = ? and run_id = ?",
            [record.deadline_time, record.deadline_missed_at, record.run_date, record.run_id],
        )
        stored = con.execute(
            f"select {COLUMNS} from main.pipeline_runs where run_date = ? and run_id = ?",
            [record.run_date, record.run_id],
        ).fetchone()
        con.execute("commit")
        merged = _record_from_row(stored)
        _rewrite_jsonl([merged])
    return merged


def _record_from_row(row: tuple | None) -> RunRecord:
    assert row is not None
    values = dict(zip([name.strip() for name in COLUMNS.split(",")], row, strict=True))
    for name, value in values.items():
        if name in ("run_date", "started_at", "ended_at", *DEADLINE_FIELDS) and value is not None:
            values[name] = value.isoformat()
    values["output_paths"] = json.loads(values["output_paths"] or "[]")
    values["dbt_summary"] = values["dbt_summary"] or ""
    return RunRecord(**values)


def main(argv: list[str] | None = None) -> int:
    """``python -m ecompipe.pipeline.run_registry [deadline-missed] '<RunRecord as JSON>'``: record a run, or a missed
    deadline (used by the DAGs' tasks and the deadline callback)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "deadline-missed":
        record = record_deadline_miss(RunRecord(**json.loads(args[1])))
    else:
        record = record_run(RunRecord(**json.loads(args[0])))
    print(json.dumps(asdict(record)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
