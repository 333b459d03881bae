"""The I/O limit of one day: DuckDB scanning the day's CSV once and writing the two Parquet files' columns.

Nothing else: no trimming, no checks, no duplicates, no sorting, no features computed (the feature
columns are written as constants of their types). What any implementation of the day must at least
pay on this machine: the bare script and the dbt build are measured against it.

    python benchmarks/io_floor.py --csv data/raw/2024-01-15/transactions.csv --date 2024-01-15 --out /tmp/x

Prints {"clean_rows": ..., "feature_rows": ...} as JSON (every parsed row: nothing is set aside).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bare_duckdb import main, output_paths  # noqa: E402

# The clean file's columns (their order aside), typed by the CSV reader itself, cheapest casts only,
# read 32 MB at a time like the pipeline's staging.
SCAN_SQL = """
create temp table scanned as
select
    * exclude ("timestamp"),
    cast(price * quantity as decimal(18, 2)) as total_amount,
    cast("timestamp" as timestamp) as transaction_at,
    cast("timestamp" as date) as transaction_date,
    cast(0 as integer) as hour,
    cast(0 as integer) as day_of_week,
    cast($day as date) as partition_date,
from read_csv($csv, header = true, ignore_errors = true, hive_partitioning = false, buffer_size = 33554432, columns = {
    'transaction_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'product_id': 'VARCHAR', 'category': 'VARCHAR',
    'price': 'DECIMAL(18, 2)', 'quantity': 'INTEGER', 'payment_method': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ'
})
"""


def run(csv: Path, day: str, out_dir: Path) -> dict[str, int]:
    date.fromisoformat(day)  # refuse anything but a date before it reaches SQL
    clean_path, features_path = output_paths(out_dir, day)
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(SCAN_SQL, {"csv": str(csv), "day": day})
        features = (
            "select *, cast(0 as bigint) as customer_num_purchases, cast(0 as decimal(18, 2)) as "
            "customer_total_spent, cast(0 as double) as customer_avg_order_value from scanned"
        )
        for query, path in (("select * from scanned", clean_path), (features, features_path)):
            path.parent.mkdir(parents=True, exist_ok=True)
            target = str(path).replace("'", "''")
            con.execute(f"copy ({query}) to '{target}' (format parquet, compression zstd, dictionary_size_limit 8192)")
        rows = int(con.execute("select count(*) from scanned").fetchone()[0])
    return {"clean_rows": rows, "feature_rows": rows}


if __name__ == "__main__":
    raise SystemExit(main(run_day=run))
