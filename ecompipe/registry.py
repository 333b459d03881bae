"""The run registry: one record per (run_date, run id), in the warehouse and as JSON lines.

``main.pipeline_runs`` in the warehouse (for SQL and the dashboard) and
``$PIPELINE_DATA_DIR/pipeline_registry.jsonl`` (the lab's registry, for people who read files). Writing
the same (run_date, run_id) again replaces its record in both: recording is idempotent.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from ecompipe import manifest
from ecompipe.dates import parse_date
from ecompipe.settings import data_dir, duckdb_path, features_dir, processed_dir

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
    dbt_summary varchar
)
"""


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


def _rewrite_jsonl(record: RunRecord) -> None:
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
            if (entry.get("run_date"), entry.get("run_id")) != (record.run_date, record.run_id):
                kept.append(line)
    kept.append(json.dumps(asdict(record), sort_keys=True))
    handle, tmp_name = tempfile.mkstemp(prefix=".registry.", dir=path.parent)
    with os.fdopen(handle, "w") as tmp:
        tmp.write("\n".join(kept) + "\n")
    os.replace(tmp_name, path)


def record_run(record: RunRecord, warehouse: Path | None = None) -> RunRecord:
    """Complete the record from the warehouse and write it (replacing any earlier one for the key)."""
    record.run_date = parse_date(record.run_date, "run_date").isoformat()
    with duckdb.connect(str(warehouse or duckdb_path())) as con:
        _fill_from_warehouse(con, record)
        con.execute(CREATE_SQL)
        con.execute("begin")
        con.execute(
            "delete from main.pipeline_runs where run_date = ? and run_id = ?", [record.run_date, record.run_id]
        )
        con.execute(
            "insert into main.pipeline_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ],
        )
        if record.status == "success":
            # The partition as processed now: later runs skip it while it stays byte-identical.
            manifest.record(con, record.run_date, record.run_id)
        con.execute("commit")
    _rewrite_jsonl(record)
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m ecompipe.registry '<RunRecord as JSON>'``: record a run (used by the DAGs' tasks)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    record = record_run(RunRecord(**json.loads(args[0])))
    print(json.dumps(asdict(record)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
