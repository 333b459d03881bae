"""The per-date data-quality report as a JSON file: ``$PIPELINE_DATA_DIR/logs/data_quality/D/report.json``.

Built from the ``dq_daily`` view (row conservation + the latest outcome of every dbt test covering the
date). Written atomically and with no timestamp in it, so rewriting a date's report after a rerun with
the same outcome gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from ecompipe.core.dates import parse_date
from ecompipe.core.files import write_text_atomically
from ecompipe.core.warehouse import connect_read_only
from ecompipe.settings import logs_dir


def report_path(day: str) -> Path:
    return logs_dir() / "data_quality" / parse_date(day, "date").isoformat() / "report.json"


def build_report(day: str, warehouse: Path | None = None) -> dict[str, object]:
    with connect_read_only(warehouse) as con:
        return _report(con, day)


def _report(con: duckdb.DuckDBPyConnection, day: str) -> dict[str, object]:
    date_text = parse_date(day, "date").isoformat()
    cursor = con.execute(
        "select check_name, model_name, severity, status, failures, message from dq_daily "
        "where partition_date = ? order by check_name",
        [date_text],
    )
    names = [column[0] for column in cursor.description]
    checks = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    accounting = con.execute(
        "select raw_rows, kept_rows, duplicate_rows, negative_price_rows, price_above_max_rows, "
        "non_positive_quantity_rows, quarantined_rows, rejected_rows, unaccounted_rows, extra_columns "
        "from int_partitions__row_accounting where partition_date = ?",
        [date_text],
    )
    row = accounting.fetchone()
    counts = dict(zip([c[0] for c in accounting.description], row, strict=True)) if row else {}
    statuses = [check["status"] for check in checks]
    overall = "fail" if {"fail", "error"} & set(statuses) else ("warn" if "warn" in statuses else "pass")
    if not checks:
        overall = "not_processed"
    return {
        "date": date_text,
        "status": overall,
        "rows": counts,
        "checks": checks,
        "summary": {status: statuses.count(status) for status in sorted(set(statuses))},
    }


def write_report(day: str, warehouse: Path | None = None) -> Path:
    return _write(build_report(day, warehouse))


def write_reports(days: list[str], warehouse: Path | None = None) -> list[Path]:
    """``write_report`` for many dates (a bulk chunk's) through one connection."""
    with connect_read_only(warehouse) as con:
        return [_write(_report(con, day)) for day in days]


def _write(report: dict[str, object]) -> Path:
    path = report_path(str(report["date"]))
    write_text_atomically(path, json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    return path


def report_with_summary(day: str) -> dict[str, object]:
    """Write the date's JSON report; return its path and status, and the date's summary row (empty if
    the date has no rows), as JSON-ready values."""
    from ecompipe.core.warehouse import daily_summary

    day = parse_date(day, "date").isoformat()
    report = build_report(day)
    path = _write(report)
    rows = daily_summary(day, day)
    summary = {
        key: value if isinstance(value, int | float | str) or value is None else str(value)
        for key, value in (rows[0] if rows else {}).items()
    }
    return {"summary": summary, "quality_report": str(path), "quality_status": report["status"]}
