"""Write the scope's dates of the marts to hive-partitioned Parquet, and record what was written.

The writing itself lives in ecompipe.exports (atomic rename, empty file for a date with no valid
rows). This model's table is the export log: one row per (date, dataset) with path, rows, sha256.
(dbt-duckdb materializes Python models as tables, so the log holds the latest invocation.)
"""

import datetime

import pyarrow as pa

from ecompipe.exports import TARGETS, export_date, records_as_columns


def _scope_dates(dbt, session):
    start, end = dbt.config.get("scope_start_date"), dbt.config.get("scope_end_date")
    if start and end:
        first, last = datetime.date.fromisoformat(str(start)), datetime.date.fromisoformat(str(end))
        return [(first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    # Full refresh: every partition that was staged, including days with no valid row.
    staged = dbt.ref("stg_raw__transactions")
    rows = staged.project("partition_date").distinct().fetchall()
    return sorted(row[0].isoformat() for row in rows)


def model(dbt, session):
    # dbt needs literal ref() calls to see the lineage.
    relations = {
        "fct_transactions": dbt.ref("fct_transactions"),
        "fct_transaction_features": dbt.ref("fct_transaction_features"),
    }
    records = []
    for day in _scope_dates(dbt, session):
        for target in TARGETS:
            rows = relations[target.model].filter(f"partition_date = date '{day}'").arrow()
            if isinstance(rows, pa.RecordBatchReader):
                rows = rows.read_all()
            records.append(export_date(rows, target, day))
    schema = pa.schema(
        [
            ("partition_date", pa.string()),
            ("dataset", pa.string()),
            ("path", pa.string()),
            ("row_count", pa.int64()),
            ("sha256", pa.string()),
        ]
    )
    table = pa.table(records_as_columns(records), schema=schema)
    return table.set_column(0, "partition_date", table.column("partition_date").cast(pa.date32()))
