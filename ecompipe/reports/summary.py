"""Print the per-date summary of the warehouse: raw rows, kept rows, customers, dbt test results.

python -m ecompipe.reports.summary START END  (make summary)
"""

from __future__ import annotations

import sys

from ecompipe.core.dates import InvalidDateError, date_range
from ecompipe.core.warehouse import daily_summary
from ecompipe.settings import duckdb_path, features_dir, get_settings, logs_dir, processed_dir, raw_dir

HEADER = ("date", "raw rows", "kept", "dupes", "invalid", "quarant.", "rejected", "customers", "revenue", "dbt tests")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        wanted = [day.isoformat() for day in date_range(args[0], args[1])]
    except InvalidDateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        found = {str(row["partition_date"]): row for row in daily_summary(wanted[0], wanted[-1])}
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = [HEADER]
    for day in wanted:
        row = found.get(day)
        if row is None:
            rows.append((day, "not loaded", *[""] * (len(HEADER) - 2)))
            continue
        total_tests = row["tests_passed"] + row["tests_warned"] + row["tests_failed"]
        tests = f"{row['tests_passed']}/{total_tests} passed" if total_tests else "none recorded"
        if row["tests_warned"] or row["tests_failed"]:
            tests += f" ({row['tests_warned']} warn, {row['tests_failed']} fail)"
        rows.append(
            (
                day,
                f"{row['raw_rows']:,}",
                f"{row['kept_rows']:,}",
                f"{row['duplicate_rows']:,}",
                f"{row['invalid_rows']:,}",
                f"{row['quarantined_rows']:,}",
                f"{row['rejected_rows']:,}",
                f"{row['customers']:,}",
                f"{row['revenue']:,.2f}",
                tests,
            )
        )
    print(_table(rows))
    missing = [day for day in wanted if day not in found]
    print(
        f"\n{len(wanted) - len(missing)}/{len(wanted)} date(s) loaded"
        + (f"; missing: {', '.join(missing)}" if missing else "")
        + "."
    )
    print(f"Warehouse : {duckdb_path()}  (make sql)")
    print(f"Raw       : {raw_dir()}/YYYY-MM-DD/transactions.csv")
    print(f"Parquet   : {processed_dir()}/date=YYYY-MM-DD/transactions_clean.parquet")
    print(f"            {features_dir()}/date=YYYY-MM-DD/features.parquet")
    print(f"Logs      : {logs_dir()} and {get_settings().airflow_home / 'logs'}/")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
